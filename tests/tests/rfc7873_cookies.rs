//! DNS Cookies with the clients and servers operators run (RFC 7873, RFC 9018): dig, a
//! BIND client that sends a client cookie by default, gets a server cookie and its
//! answer from XDP, and sending that cookie back gets it back unchanged, again from
//! XDP; and knotd, another RFC 9018 implementation given the same secret, makes cookies
//! instadns accepts as its own (an anycast set of mixed servers interoperates). The
//! byte-level rules are BPF_PROG_TEST_RUN fixtures in `xdp_fixtures`.

use tests::{
    netns::{Background, SERVER_V4, ns_exec},
    server::{Deployment, demo_db, dig, kdig},
    wait::eventually,
};

const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const KNOT_PORT: u16 = 5300;
const HOST: &str = "blog.alice.example.org";

/// The hex of the first `COOKIE:` line of dig's or kdig's output.
fn cookie_of(output: &str) -> Option<String> {
    let line = output.lines().find(|l| l.contains("COOKIE:"))?;
    let hex = line.split("COOKIE:").nth(1)?.split_whitespace().next()?;
    Some(hex.to_ascii_lowercase())
}

fn start_knot(d: &Deployment) -> Background {
    let dir = d.dir.path().join("knot");
    std::fs::create_dir_all(&dir).unwrap();
    let d_ = dir.display();
    std::fs::write(
        dir.join("example.org.zone"),
        "$ORIGIN example.org.\n$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n",
    )
    .unwrap();
    let conf = format!(
        "server:\n  rundir: \"{d_}\"\n  listen: {SERVER_V4}@{KNOT_PORT}\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n  storage: \"{d_}\"\n\
         mod-cookies:\n  - id: shared\n    secret: 0x{SECRET}\n\
         template:\n  - id: default\n    storage: \"{d_}\"\n    global-module: mod-cookies/shared\n\
         zone:\n  - domain: example.org\n    file: example.org.zone\n"
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    let conf = dir.join("knot.conf");
    Background::start(&d.rig.server_ns, "knotd", &["-c", conf.to_str().unwrap()], &dir.join("knot.log"))
}

#[test]
fn bind_clients_get_cookies_from_xdp_and_knot_cookies_are_accepted() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = demo_db(dir.path());
    let config = dir.path().join("instadns.toml");
    std::fs::write(&config, format!("[cookies]\nsecret = \"{SECRET}\"\n")).unwrap();
    let d = Deployment::start_on(&db, dir, &["--xdp-mode", "native", "--config", config.to_str().unwrap()]);
    let at = format!("@{SERVER_V4}");

    // dig sends a client cookie by default: the answer carries our server cookie.
    let first = dig(&d.rig, &[&at, HOST, "A"]);
    assert!(first.contains("192.0.2.1"), "{first}");
    let hits = d.server.xdp("hit");
    let second = dig(&d.rig, &[&at, HOST, "A"]);
    assert_eq!(d.server.xdp("hit"), hits + 1, "the cookie query was answered by XDP:\n{second}");
    let cookie = cookie_of(&second).unwrap_or_else(|| panic!("a COOKIE in the answer:\n{second}"));
    assert_eq!(cookie.len(), 48, "client cookie (8 bytes) and server cookie (16 bytes): {cookie}");
    assert!(second.contains("(good)"), "dig finds its client cookie echoed:\n{second}");
    assert_eq!(&cookie[16..18], "01", "an RFC 9018 server cookie (version 1): {cookie}");

    // Sent back, the fresh cookie comes back unchanged, from XDP.
    let hits = d.server.xdp("hit");
    let again = dig(&d.rig, &[&at, &format!("+cookie={cookie}"), HOST, "A"]);
    assert_eq!(cookie_of(&again).as_deref(), Some(cookie.as_str()), "sent back as it is:\n{again}");
    assert_eq!(d.server.xdp("hit"), hits + 1, "answered by XDP");

    // knotd with the same secret: its cookie is one of ours.
    // (A cookie is bound to the client's address: both servers see the client's.)
    let knot = start_knot(&d);
    let port = KNOT_PORT.to_string();
    eventually("knotd answers", std::time::Duration::from_secs(10), || {
        let out = ns_exec(
            &d.rig.client_ns,
            "kdig",
            &["+time=1", "+retry=0", &at, "-p", &port, "example.org", "SOA"],
        );
        String::from_utf8_lossy(&out.stdout).contains("status: NOERROR")
    });
    let knot_answer = kdig(&d.rig, &["+cookie", &at, "-p", &KNOT_PORT.to_string(), "example.org", "SOA"]);
    let knot_cookie = cookie_of(&knot_answer).unwrap_or_else(|| {
        panic!("knotd sends a server cookie:\n{knot_answer}\n--- knot log ---\n{}", knot.log_text())
    });
    assert_eq!(knot_cookie.len(), 48, "{knot_answer}");
    let ours = kdig(&d.rig, &[&format!("+cookie={knot_cookie}"), &at, HOST, "A"]);
    assert_eq!(
        cookie_of(&ours).as_deref(),
        Some(knot_cookie.as_str()),
        "knotd's cookie is valid and fresh here, so it comes back unchanged:\n{ours}"
    );
}
