//! The TCP front end (RFC 7766): length-prefixed messages, pipelined queries answered
//! concurrently and possibly out of order, an idle timeout, and caps that a client
//! cannot use to lock others out: connections per client network and in all (the
//! stalest connection makes room, see [`super::connections`]), queries in flight per
//! connection, bytes buffered by all connections together, and a deadline on every
//! read, wait and write.

use std::net::IpAddr;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};

use super::connections::{Admitted, ConnectionLimits, Registry};
use crate::engine::{Handler, Transport, is_transfer};
use crate::store::Store;

#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    pub max_connections: usize,
    /// Connections of one client network (an IPv4 address, an IPv6 /64).
    pub max_per_client: usize,
    /// Close a connection that sends nothing, or cannot take a response, for this long
    /// (RFC 7766 section 6.2.3).
    pub idle_timeout: Duration,
    /// Queries of one connection being answered at once.
    pub max_in_flight: usize,
    /// Bytes of queries and responses held by all connections together.
    pub buffer_bytes: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_per_client: 64,
            idle_timeout: Duration::from_secs(10),
            max_in_flight: 16,
            buffer_bytes: 32 << 20,
        }
    }
}

/// What the connections of one front end share.
pub struct TcpFrontEnd {
    pub limits: TcpLimits,
    pub connections: Arc<Registry>,
    /// Permits are bytes of messages held.
    buffers: Arc<Semaphore>,
}

impl TcpFrontEnd {
    pub fn new(limits: TcpLimits) -> Arc<Self> {
        let connections = Registry::new(ConnectionLimits {
            max_total: limits.max_connections,
            max_per_client: limits.max_per_client,
        });
        let bytes = limits.buffer_bytes.clamp(u16::MAX as usize * 2, Semaphore::MAX_PERMITS);
        Arc::new(Self { limits, connections, buffers: Arc::new(Semaphore::new(bytes)) })
    }

    /// Holds `bytes` of the shared buffer budget, waiting at most the idle timeout.
    async fn hold(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(bytes).ok()?;
        tokio::time::timeout(self.limits.idle_timeout, self.buffers.clone().acquire_many_owned(n))
            .await
            .ok()?
            .ok()
    }
}

pub async fn serve<S: Store>(listener: TcpListener, handler: Arc<Handler<S>>, front: Arc<TcpFrontEnd>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let client = peer.ip().to_canonical();
        let place = front.connections.admit(client);
        let (handler, front) = (handler.clone(), front.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = place.evicted() => {}
                () = connection(stream, client, &handler, &front, &place) => {}
            }
        });
    }
}

/// A response on its way out, length prefix included, holding its share of the budget.
struct Outgoing {
    framed: Vec<u8>,
    _held: OwnedSemaphorePermit,
}

impl Outgoing {
    /// `response` with its length prefix (RFC 1035 section 4.2.2); None if it is longer
    /// than a TCP message can be.
    fn new(response: &[u8], held: OwnedSemaphorePermit) -> Option<Self> {
        let len = u16::try_from(response.len()).ok()?;
        let mut framed = Vec::with_capacity(2 + response.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(response);
        Some(Self { framed, _held: held })
    }
}

/// Ends when the writer does: on a write that cannot finish in time, or once the reader
/// has stopped and every response of the queries read is written.
async fn connection<S: Store>(
    stream: TcpStream,
    client: IpAddr,
    handler: &Arc<Handler<S>>,
    front: &Arc<TcpFrontEnd>,
    place: &Admitted,
) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(front.limits.max_in_flight);
    let transfers = Arc::new(AtomicUsize::new(0));
    let writing = write_responses(writer, rx, front.limits.idle_timeout, place);
    let reading = read_queries(reader, tx, client, handler, front, place, &transfers);
    tokio::pin!(writing);
    tokio::select! {
        () = &mut writing => {}
        () = reading => {
            // No more queries: the answers of those in flight still go out, in time; a
            // zone transfer takes as long as it takes while the client reads (each
            // write has its deadline).
            while tokio::time::timeout(front.limits.idle_timeout, &mut writing).await.is_err() {
                if transfers.load(Ordering::Relaxed) == 0 {
                    break;
                }
            }
        }
    }
}

/// Sends a zone transfer's messages (see [`Handler::transfer`]) to the connection's
/// writer, each holding its share of the buffer budget.
async fn transfer<S: Store>(
    msg: Vec<u8>,
    client: IpAddr,
    handler: Arc<Handler<S>>,
    front: Arc<TcpFrontEnd>,
    tx: mpsc::Sender<Outgoing>,
) {
    let (messages, mut produced) = mpsc::channel::<Vec<u8>>(2);
    let producing = async move { handler.transfer(&msg, client, &messages).await };
    // Owns the receiver: if the client goes, it is dropped and the transfer stops.
    let forwarding = async move {
        while let Some(message) = produced.recv().await {
            let Some(held) = front.hold(2 + message.len()).await else { return };
            let Some(outgoing) = Outgoing::new(&message, held) else { return };
            if tx.send(outgoing).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(producing, forwarding);
}

async fn read_queries<S: Store>(
    mut reader: OwnedReadHalf,
    tx: mpsc::Sender<Outgoing>,
    client: IpAddr,
    handler: &Arc<Handler<S>>,
    front: &Arc<TcpFrontEnd>,
    place: &Admitted,
    transfers: &Arc<AtomicUsize>,
) {
    let limits = front.limits;
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    loop {
        let len = match tokio::time::timeout(limits.idle_timeout, reader.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return, // idle, closed or reset
        };
        // A query is held from its first byte to its response's last, in the budget.
        let Some(held) = front.hold(len).await else { return };
        let mut msg = vec![0u8; len];
        match tokio::time::timeout(limits.idle_timeout, reader.read_exact(&mut msg)).await {
            Ok(Ok(_)) => place.progressed(),
            _ => return,
        }
        let Ok(Ok(permit)) =
            tokio::time::timeout(limits.idle_timeout, in_flight.clone().acquire_owned()).await
        else {
            return; // the client does not take its answers
        };
        if is_transfer(&msg) {
            drop(held);
            transfers.fetch_add(1, Ordering::Relaxed);
            let (handler, front, tx, transfers) =
                (handler.clone(), front.clone(), tx.clone(), transfers.clone());
            tokio::spawn(async move {
                transfer(msg, client, handler, front, tx).await;
                transfers.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
            continue;
        }
        let (handler, front, tx) = (handler.clone(), front.clone(), tx.clone());
        tokio::spawn(async move {
            let mut held = held;
            if let Some(response) = handler.handle(&msg, Transport::Tcp, client).await
                && u16::try_from(response.len()).is_ok()
            {
                drop(msg);
                let Some(more) = front.hold(2 + response.len()).await else { return };
                held.merge(more);
                let outgoing = Outgoing::new(&response, held);
                drop(response);
                if let Some(outgoing) = outgoing {
                    let _ = tx.send(outgoing).await;
                }
            }
            drop(permit);
        });
    }
}

async fn write_responses(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    timeout: Duration,
    place: &Admitted,
) {
    while let Some(out) = rx.recv().await {
        match tokio::time::timeout(timeout, writer.write_all(&out.framed)).await {
            Ok(Ok(())) => place.progressed(),
            _ => return, // reset, or the client stopped reading
        }
    }
}
