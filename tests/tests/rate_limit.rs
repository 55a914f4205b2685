//! Response rate limiting end to end (issue: "under attack"): queries carrying a
//! victim's source address get at most the configured rate of answers back, plus small
//! truncated slips, from XDP, so we amplify nothing; a real client in that network still
//! gets its answer, over TCP after a slip (dig retries); the limiter's work is in
//! `/metrics`. The kernel-level sequences (per /24 and /56, per answer, exempt networks,
//! the bytes of a slip) are BPF_PROG_TEST_RUN fixtures in `xdp_fixtures`.

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use hickory_proto::rr::RecordType;
use tests::{
    dns::QueryBuilder,
    netns::{CLIENT_V4, SERVER_V4, in_netns, ns_exec, sh},
    server::{Deployment, udp_exchange},
};

const RATE: u32 = 20;
const HOST: &str = "blog.alice.example.org";
/// The victim's address: held by the client namespace so the responses aimed at it can
/// be counted there; to the server it is just another source.
const VICTIM: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 7);
/// Queries sent with the victim's address, and how fast.
const QUERIES: u64 = 3000;
const PER_SECOND: u64 = 2000;

/// What reached the victim.
#[derive(Default)]
struct Received {
    answers: AtomicU64,
    truncated: AtomicU64,
    bytes: AtomicU64,
}

#[test]
fn a_spoofed_victim_gets_at_most_the_rate_and_a_real_client_gets_its_answer_over_tcp() {
    let d = Deployment::start(&["--xdp-mode", "native", "--rrl-rate", &RATE.to_string(), "--rrl-slip", "2"]);
    sh("ip", &["-n", &d.rig.client_ns, "addr", "add", &format!("{VICTIM}/32"), "dev", &d.rig.client_if]);
    sh("ip", &["-n", &d.rig.server_ns, "route", "add", "198.18.7.0/24", "via", &CLIENT_V4.to_string()]);
    let server = SocketAddr::new(SERVER_V4.into(), 53);
    let query = QueryBuilder::new(HOST, RecordType::A).bytes();
    // From the client's own network: answered, then from XDP.
    udp_exchange(&d.rig, server, &query);
    let hits = d.server.xdp("hit");
    udp_exchange(&d.rig, server, &query);
    assert_eq!(d.server.xdp("hit"), hits + 1, "the name is answered from XDP");

    let received = Received::default();
    let (sent_bytes, elapsed) = in_netns(&d.rig.client_ns, || {
        let socket = UdpSocket::bind(SocketAddr::new(VICTIM.into(), 0)).expect("the victim's socket");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [0u8; 2048];
                let mut quiet_since = None;
                loop {
                    match socket.recv(&mut buf) {
                        Ok(n) => {
                            quiet_since = None;
                            received.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            let counter =
                                if buf[2] & 0x02 != 0 { &received.truncated } else { &received.answers };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) if done.load(Ordering::Relaxed) => {
                            // Stragglers get half a second after the last query.
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_millis(500) {
                                break;
                            }
                        }
                        Err(_) => {}
                    }
                }
            });
            let started = Instant::now();
            let mut sent_bytes = 0u64;
            for i in 0..QUERIES {
                let mut q = query.clone();
                q[..2].copy_from_slice(&(i as u16).to_be_bytes());
                sent_bytes += socket.send_to(&q, server).expect("send") as u64;
                let due = started + Duration::from_micros(i * 1_000_000 / PER_SECOND);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let elapsed = started.elapsed();
            done.store(true, Ordering::Relaxed);
            (sent_bytes, elapsed)
        })
    });
    let answers = received.answers.load(Ordering::Relaxed);
    let truncated = received.truncated.load(Ordering::Relaxed);
    let bytes = received.bytes.load(Ordering::Relaxed);
    let amplification = bytes as f64 / sent_bytes as f64;
    eprintln!(
        "{QUERIES} queries with the victim's address in {elapsed:?}: {answers} answers, {truncated} truncated slips, \
         {bytes} bytes back for {sent_bytes} sent (amplification {amplification:.3})"
    );
    // A full bucket, then the rate each second that began (a second boundary before and
    // after the run included).
    let most = RATE as u64 * (elapsed.as_secs() + 3);
    assert!(answers <= most, "{answers} full answers reached the victim, at most {most} allowed");
    assert!(answers >= RATE as u64, "the first {RATE} are answered: {answers}");
    assert!(truncated > 0, "every 2nd response over the rate is slipped");
    assert!(
        truncated <= (QUERIES - answers) / 2 + 1,
        "{truncated} slips for {} responses over the rate: slip 2 sends every second one",
        QUERIES - answers
    );
    assert!(amplification < 1.0, "bytes back / bytes sent = {amplification:.3}, must not amplify");
    assert!(d.server.xdp("rrl_dropped") > 0 && d.server.xdp("rrl_slipped") > 0, "counted by XDP");
    let counted = d.server.sample("instadns_rrl_responses_total{path=\"xdp\",outcome=\"dropped\"}");
    assert!(counted > 0.0, "/metrics: {counted}");

    // A real client in the limited network: its UDP query is dropped or slipped; after a
    // slip dig asks again over TCP and gets the answer.
    let out = ns_exec(
        &d.rig.client_ns,
        "dig",
        &["+time=1", "+tries=4", "-b", &VICTIM.to_string(), "@198.18.0.1", HOST, "A"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dig failed:\n{text}");
    assert!(text.contains("Truncated, retrying in TCP mode"), "dig got a slip:\n{text}");
    assert!(text.contains("status: NOERROR") && text.contains("192.0.2.1"), "answered over TCP:\n{text}");
}
