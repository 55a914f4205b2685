//! A TCP proxy that injects network faults between the daemon and PostgreSQL (issue
//! 18): it listens inside a network namespace and forwards each connection to the
//! server's Unix socket, and on command adds latency, stalls (holds every byte, as a
//! partition does, until the fault is lifted) or resets every connection (RST, and
//! every new one at once) while the fault lasts.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::watch,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bytes are forwarded as they come.
    None,
    /// Each chunk waits this long before it is forwarded, in both directions.
    Latency(Duration),
    /// Nothing is forwarded (held, then delivered when the fault is lifted); new
    /// connections are accepted and hang.
    Stall,
    /// Every connection is reset, and every new one as soon as it is accepted.
    Reset,
}

pub struct FaultProxy {
    /// Where the proxy listens, inside the namespace it was started in.
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
    accepted: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Largest chunk forwarded at once.
const CHUNK: usize = 16 * 1024;

impl FaultProxy {
    /// A proxy on 127.0.0.1 (a free port) inside network namespace `ns`, to the Unix
    /// socket `upstream`.
    pub fn start(ns: &str, upstream: PathBuf) -> Self {
        let listener = crate::netns::in_netns(ns, || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy listener");
            listener.set_nonblocking(true).expect("non-blocking listener");
            listener
        });
        let addr = listener.local_addr().expect("proxy address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let (fault, faults) = watch::channel(Fault::None);
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                // Closing with linger 0 sends RST: what a reset fault is made of. (The
                // deprecation is about a lingering close blocking; a zero one never does.)
                #[allow(deprecated)]
                let _ = client.set_linger(Some(Duration::ZERO));
                tokio::spawn(forward(client, upstream.clone(), faults.clone()));
            }
        });
        Self { addr, fault, accepted, runtime: Some(runtime) }
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn forward(client: tokio::net::TcpStream, upstream: PathBuf, mut faults: watch::Receiver<Fault>) {
    if !wait_out(&mut faults, false).await {
        return;
    }
    let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else { return };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending (EOF, an error, a reset) ends both: the sockets close.
    tokio::select! {
        _ = pump(client_read, server_write, faults.clone()) => {}
        _ = pump(server_read, client_write, faults) => {}
    }
}

/// Waits while the link is stalled; false on a reset (or when the proxy stops). With
/// `delay`, a latency fault is served here too.
async fn wait_out(faults: &mut watch::Receiver<Fault>, delay: bool) -> bool {
    loop {
        let fault = *faults.borrow_and_update();
        match fault {
            Fault::Reset => return false,
            Fault::Stall => {
                if faults.changed().await.is_err() {
                    return false;
                }
            }
            Fault::Latency(d) if delay => {
                tokio::time::sleep(d).await;
                return true;
            }
            Fault::Latency(_) | Fault::None => return true,
        }
    }
}

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut faults: watch::Receiver<Fault>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        if !wait_out(&mut faults, false).await {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // A new fault while idle: look at it first (a reset must not wait for data).
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        if !wait_out(&mut faults, true).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
