//! Abuse of the connection-oriented front ends (issue 18), in the style of Knot's
//! tests-extra: clients that never read, clients that trickle, oversized and slow
//! requests. Each scenario asserts that the server keeps answering others and that its
//! memory stays bounded.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, ResponseCode},
    rr::RecordType,
};
use socket2::{Domain, Socket, Type};
use tests::{
    dns::QueryBuilder,
    netns::{CLIENT_V4, SERVER_V4, VethRig, in_netns, sh},
    server::{Deployment, METRICS_ADDR, ServerProcess, dig},
};

const NAME: &str = "blog.alice.example.org";
const SILENT_CLIENTS: usize = 2000;
const TRICKLING_CLIENTS: usize = 2000;
/// Addresses the abusive clients connect from (more than one client network, so both
/// the per-client and the total cap are reached).
const ABUSIVE_SOURCES: u8 = 64;
/// Memory the daemon may grow by under any of these scenarios.
const RSS_GROWTH_BOUND: u64 = 192 << 20;

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// Adds addresses 198.18.0.100.. to the client's veth; returns them.
fn abusive_sources(rig: &VethRig) -> Vec<IpAddr> {
    (0..ABUSIVE_SOURCES)
        .map(|k| {
            let ip = Ipv4Addr::new(198, 18, 0, 100 + k);
            sh("ip", &["-n", &rig.client_ns, "addr", "add", &format!("{ip}/24"), "dev", &rig.client_if]);
            IpAddr::V4(ip)
        })
        .collect()
}

/// A TCP connection to the server's port 53 from `source` (call inside the client
/// namespace), with a receive buffer of `receive_buffer` bytes if given; None if the
/// server did not take it within 5 s.
fn connect_from(source: IpAddr, receive_buffer: Option<usize>) -> Option<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).ok()?;
    }
    socket.bind(&SocketAddr::new(source, 0).into()).ok()?;
    socket.connect_timeout(&SocketAddr::new(SERVER_V4.into(), 53).into(), Duration::from_secs(5)).ok()?;
    Some(socket.into())
}

/// A well-behaved client from the client's own address: connects, asks, and must have
/// its answer within 1 s of starting.
fn served_within_a_second(rig: &VethRig, id: u16) -> Result<(), String> {
    in_netns(&rig.client_ns, move || {
        let started = Instant::now();
        let stream = connect_from(CLIENT_V4.into(), None).ok_or("could not connect")?;
        let left = Duration::from_secs(1).saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        (&stream)
            .write_all(&framed(&QueryBuilder::new(NAME, RecordType::A).id(id).bytes()))
            .map_err(|e| e.to_string())?;
        let response =
            read_framed(&stream).map_err(|e| format!("no answer ({e}) after {:?}", started.elapsed()))?;
        if started.elapsed() > Duration::from_secs(1) {
            return Err(format!("answered after {:?}", started.elapsed()));
        }
        let message = Message::from_vec(&response).map_err(|e| e.to_string())?;
        if message.metadata.id != id
            || message.metadata.response_code != ResponseCode::NoError
            || message.answers.is_empty()
        {
            return Err(format!("wrong answer: {message:?}"));
        }
        Ok(())
    })
}

fn read_framed(mut stream: &TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message)?;
    Ok(message)
}

fn metric(server: &ServerProcess, name: &str) -> f64 {
    server.metrics().get(name).copied().unwrap_or_else(|| panic!("metric {name} missing"))
}

/// Writes one byte a second to each stream, cycling through `bytes`, until stopped.
struct Trickle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trickle {
    fn start(streams: Vec<TcpStream>, bytes: Vec<u8>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(streams));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                for i in 0.. {
                    for _ in 0..10 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let byte = [bytes[i % bytes.len()]];
                    for s in streams.lock().unwrap().iter() {
                        let _ = s.set_nonblocking(true);
                        let _ = (&*s).write(&byte); // closed by the server: fine
                    }
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// 2,000 clients that pipeline queries and never read and 2,000 that send a byte a
/// second, from 64 addresses: more than the connection caps. A normal client is still
/// served within 1 s, again and again, and the daemon's memory stays bounded.
#[test]
fn tcp_clients_that_never_read_or_trickle_lock_no_one_out() {
    let Deployment { server, rig, .. } = &Deployment::start(&[]);
    let sources = abusive_sources(rig);
    served_within_a_second(rig, 1).expect("served before the abuse");
    let rss_before = server.rss_bytes();

    let query = framed(&QueryBuilder::new(NAME, RecordType::A).bytes());
    let pipelined: Vec<u8> = (0..100).flat_map(|_| query.clone()).collect();
    let (silent, trickling) = in_netns(&rig.client_ns, || {
        let silent: Vec<TcpStream> = (0..SILENT_CLIENTS)
            .filter_map(|i| {
                let s = connect_from(sources[i % sources.len()], Some(4096))?;
                let _ = (&s).write_all(&pipelined);
                Some(s)
            })
            .collect();
        let trickling: Vec<TcpStream> = (0..TRICKLING_CLIENTS)
            .filter_map(|i| connect_from(sources[(i + 7) % sources.len()], None))
            .collect();
        (silent, trickling)
    });
    let trickle = Trickle::start(trickling, query.clone());
    assert!(
        silent.len() > SILENT_CLIENTS / 2,
        "only {} of {SILENT_CLIENTS} abusive connections were made: the rig is broken",
        silent.len()
    );

    let mut failures = Vec::new();
    for round in 0..5u16 {
        if let Err(e) = served_within_a_second(rig, 100 + round) {
            failures.push(format!("round {round}: {e}"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(failures.is_empty(), "the normal client was not served:\n{}", failures.join("\n"));

    let open = metric(server, "instadns_tcp_connections");
    assert!(open <= 1024.0, "{open} connections open: over the cap");
    let evicted = metric(server, "instadns_tcp_connections_evicted_total");
    assert!(evicted > 0.0, "nothing was evicted");
    let growth = server.rss_bytes().saturating_sub(rss_before);
    eprintln!(
        "{} silent and {} trickling connections made; {open} open, {evicted} evicted; RSS grew {} MiB",
        silent.len(),
        SILENT_CLIENTS.min(TRICKLING_CLIENTS),
        growth >> 20
    );
    assert!(growth < RSS_GROWTH_BOUND, "the daemon grew by {} MiB", growth >> 20);
    drop(trickle);
    drop(silent);
    assert!(dig(rig, &["@198.18.0.1", NAME, "A", "+norec"]).contains("status: NOERROR"));
}

/// Clients that pipeline far more than they read: the server stops reading them, and
/// once a response cannot be written within the idle timeout it closes the connection
/// (it used to wait forever, holding the connection, its tasks and their buffers).
#[test]
fn a_connection_that_does_not_take_its_answers_is_closed() {
    let Deployment { server, rig, .. } = &Deployment::start(&["--tcp-idle-timeout", "2"]);
    let query = framed(&QueryBuilder::new(NAME, RecordType::A).bytes());
    // More than the socket buffers on both sides hold (the server's grow to a few MiB).
    let pipelined: Vec<u8> = (0..300_000).flat_map(|_| query.clone()).collect();
    let stuck: Vec<TcpStream> = in_netns(&rig.client_ns, || {
        (0..4)
            .map(|_| {
                let s = connect_from(CLIENT_V4.into(), Some(4096)).expect("connection");
                socket2::SockRef::from(&s).set_send_buffer_size(4096).unwrap();
                s.set_nonblocking(true).unwrap();
                let mut sent = 0;
                // Until the server stops reading and both buffers are full.
                let started = Instant::now();
                while sent < pipelined.len() && started.elapsed() < Duration::from_secs(5) {
                    match (&s).write(&pipelined[sent..]) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        Err(_) => break, // the server has already given up on it
                    }
                }
                assert!(sent < pipelined.len(), "the server read 300,000 queries it could not answer");
                s
            })
            .collect()
    });
    // The server gives up on them: no connection left open, though the clients never
    // closed theirs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(server, "instadns_tcp_connections") > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(server, "instadns_tcp_connections"), 0.0, "stuck connections are still open");
    for s in &stuck {
        s.set_nonblocking(false).unwrap();
        // The server's orphaned socket still sends what it had queued: after a long zero
        // window its probes are seconds apart, so each read may wait that long.
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut sink = vec![0u8; 1 << 16];
        let mut drained = 0;
        let ended = loop {
            match (&*s).read(&mut sink) {
                Ok(0) => break Ok(()),
                Ok(n) => drained += n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        assert!(
            ended.is_ok(),
            "the server did not close a connection it could not write to: {ended:?} after {drained} bytes"
        );
    }
    served_within_a_second(rig, 7).expect("served after");
}

/// Queries of 64 KiB full of additional records (about 6,000 each), pipelined on many
/// connections: each is answered, the buffers they take are bounded, others are served.
#[test]
fn queries_of_64_kib_full_of_additional_records_are_bounded() {
    let Deployment { server, rig, .. } = &Deployment::start(&[]);
    let rss_before = server.rss_bytes();
    let mut query = QueryBuilder::new(NAME, RecordType::A).id(0x6464).bytes();
    // Root-owned A records with empty data, 11 bytes each, up to the 65,535-byte limit.
    let record = [0u8, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
    let count = (u16::MAX as usize - query.len()) / record.len();
    for _ in 0..count {
        query.extend_from_slice(&record);
    }
    query[10..12].copy_from_slice(&(count as u16).to_be_bytes());
    let pipelined: Vec<u8> = (0..10).flat_map(|_| framed(&query)).collect();
    let answered = in_netns(&rig.client_ns, move || {
        let streams: Vec<TcpStream> =
            (0..50).map(|_| connect_from(CLIENT_V4.into(), None).expect("connection")).collect();
        let writers: Vec<_> = streams
            .iter()
            .map(|s| {
                let (s, bytes) = (s.try_clone().unwrap(), pipelined.clone());
                std::thread::spawn(move || (&s).write_all(&bytes).is_ok())
            })
            .collect();
        let mut answered = 0;
        for s in &streams {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            for _ in 0..10 {
                let response = read_framed(s).expect("an answer");
                assert_eq!(&response[..2], &[0x64, 0x64], "the ID is echoed");
                assert!(response[2] & 0x80 != 0, "a response");
                answered += 1;
            }
        }
        writers.into_iter().for_each(|w| assert!(w.join().unwrap()));
        answered
    });
    assert_eq!(answered, 500);
    let growth = server.rss_bytes().saturating_sub(rss_before);
    assert!(growth < RSS_GROWTH_BOUND, "the daemon grew by {} MiB", growth >> 20);
    served_within_a_second(rig, 9).expect("served after");
}

/// Runs `f` with a connection to the metrics endpoint (inside the server namespace).
fn with_metrics_connection<T: Send>(server: &ServerProcess, f: impl FnOnce(TcpStream) -> T + Send) -> T {
    in_netns(&server.ns, move || {
        let stream = TcpStream::connect_timeout(&METRICS_ADDR.parse().unwrap(), Duration::from_secs(2))
            .expect("metrics connection");
        f(stream)
    })
}

/// Whether the server closes `stream` within `within` (reading and discarding).
fn closed_by_server(mut stream: &TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true, // reset
        }
    }
    false
}

/// An oversized request line, a slow request, a crowd of idle connections and a burst
/// of /ready: the endpoint closes the first two, keeps serving scrapes, and probes the
/// database at most about once a second.
#[test]
fn the_metrics_endpoint_survives_oversized_slow_and_crowded_requests() {
    let Deployment { server, .. } = &Deployment::start(&[]);

    // A megabyte with no end of line: closed once the head limit is passed (it used to be
    // read until an idle timeout of 30 s).
    let closed = with_metrics_connection(server, |s| {
        let _ = (&s).write_all(&vec![b'A'; 1 << 20]);
        closed_by_server(&s, Duration::from_secs(3))
    });
    assert!(closed, "an oversized request line was not refused");

    // A head trickled a byte every 300 ms: closed at the head deadline (5 s).
    let closed = with_metrics_connection(server, |s| {
        let head = b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let started = Instant::now();
        for byte in head {
            if (&s).write_all(&[*byte]).is_err() || closed_by_server(&s, Duration::from_millis(300)) {
                return Some(started.elapsed());
            }
        }
        None
    });
    let after = closed.expect("a request trickled over 15 s was served");
    assert!(after < Duration::from_secs(8), "closed only after {after:?}");

    // 200 idle connections: scrapes go on.
    let idle: Vec<TcpStream> = in_netns(&server.ns, || {
        (0..200)
            .filter_map(|_| {
                TcpStream::connect_timeout(&METRICS_ADDR.parse().unwrap(), Duration::from_secs(2)).ok()
            })
            .collect()
    });
    assert!(server.http_get("/metrics").is_some_and(|m| m.contains("instadns_tcp_connections")));
    drop(idle);

    // A burst of /ready shares its database probes: the statements it adds over those of
    // an equally long quiet spell (the follower's polling) are about one a second.
    let statements = || metric(server, "instadns_db_query_seconds_count");
    let before = statements();
    let started = Instant::now();
    for _ in 0..50 {
        assert_eq!(server.http_get("/ready").as_deref(), Some("ready\n"));
    }
    let spell = started.elapsed();
    let burst = statements() - before;
    let before = statements();
    std::thread::sleep(spell);
    let quiet = statements() - before;
    let allowed = spell.as_secs_f64().ceil() + 1.0;
    assert!(
        burst - quiet <= allowed,
        "50 /ready in {spell:?} cost {burst} statements against {quiet} when quiet (allowed {allowed} more)"
    );
}
