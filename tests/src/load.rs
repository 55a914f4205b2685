//! A steady load of known queries from a client namespace, each checked against its
//! expected response, for tests that must prove no answer was lost while the server
//! restarts or changes underneath.

use std::{
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// How long a query waits for its response before it counts as lost.
pub const LOSS_TIMEOUT: Duration = Duration::from_secs(1);

/// What a [`SteadyLoad`] saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub sent: u64,
    pub answered: u64,
    /// Offsets from the start of the load at which a query got no response.
    pub lost: Vec<Duration>,
    /// Responses that differed from the expected bytes (ID aside), with the query index.
    pub wrong: Vec<usize>,
}

/// Queries sent one after another (each waits for its answer) until stopped: one client
/// asking the same names thousands of times a second, which response rate limiting (on
/// by default) limits; servers under such a load run with `--rrl-rate 0`.
pub struct SteadyLoad {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<LoadReport>,
}

impl SteadyLoad {
    /// Starts sending `queries` round robin from namespace `ns` to `server`; each response
    /// must equal the matching entry of `expected` but for its ID.
    pub fn start(ns: &str, server: SocketAddr, queries: Vec<Vec<u8>>, expected: Vec<Vec<u8>>) -> Self {
        assert_eq!(queries.len(), expected.len());
        let stop = Arc::new(AtomicBool::new(false));
        let ns = ns.to_owned();
        let stop_flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {ns}: {}", std::io::Error::last_os_error());
            run(&stop_flag, server, &queries, &expected)
        });
        Self { stop, handle }
    }

    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("load thread")
    }
}

fn run(stop: &AtomicBool, server: SocketAddr, queries: &[Vec<u8>], expected: &[Vec<u8>]) -> LoadReport {
    let bind: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(bind).expect("client socket");
    let started = Instant::now();
    let mut report = LoadReport::default();
    let mut buf = vec![0u8; 65535];
    let mut seq: u16 = 0;
    while !stop.load(Ordering::SeqCst) {
        let i = report.sent as usize % queries.len();
        seq = seq.wrapping_add(1);
        let mut query = queries[i].clone();
        query[..2].copy_from_slice(&seq.to_be_bytes());
        socket.send_to(&query, server).expect("send");
        report.sent += 1;
        let deadline = Instant::now() + LOSS_TIMEOUT;
        let response = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            socket.set_read_timeout(Some(left)).expect("timeout");
            match socket.recv_from(&mut buf) {
                // A late answer to an earlier query is skipped.
                Ok((n, _)) if n >= 2 && buf[..2] == seq.to_be_bytes() => break Some(&buf[..n]),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        match response {
            None => report.lost.push(started.elapsed()),
            Some(r) => {
                report.answered += 1;
                if r[2..] != expected[i][2..] {
                    report.wrong.push(i);
                }
            }
        }
    }
    report
}
