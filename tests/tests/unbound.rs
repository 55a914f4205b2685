//! Unbound, started by the test as a resolver in the client namespace with stub zones
//! pointing at instadns, with QNAME minimisation (which trips over empty non-terminals
//! answered NXDOMAIN) and 0x20 case randomisation (which rejects answers that do not
//! echo the question's case), resolves the platform's names through instadns.

use std::{
    os::unix::process::CommandExt as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    netns::{SERVER_V4, ns_exec},
    server::Deployment,
};

struct Unbound {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- unbound log ---\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }
}

fn start_unbound(d: &Deployment) -> Unbound {
    let dir = d.dir.path();
    let conf = dir.join("unbound.conf");
    let log = dir.join("unbound.log");
    let stubs: String = ["example.com", "example.org", "customer.test"]
        .iter()
        .map(|z| format!("stub-zone:\n  name: \"{z}\"\n  stub-addr: {SERVER_V4}\n"))
        .collect();
    std::fs::write(
        &conf,
        format!(
            "server:\n  interface: 127.0.0.1\n  port: 53\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  \
             directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"{log}\"\n  verbosity: 1\n  \
             access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  \
             qname-minimisation: yes\n  qname-minimisation-strict: no\n  use-caps-for-id: yes\n  \
             do-ip6: no\n  cache-max-ttl: 0\n  \
             # Unbound answers the special-use test. zone (RFC 6761) itself unless told.\n  \
             local-zone: \"test.\" nodefault\n{stubs}",
            dir = dir.display(),
            log = log.display()
        ),
    )
    .unwrap();
    let check =
        Command::new("unbound-checkconf").arg(&conf).output().expect("unbound-checkconf (package unbound)");
    assert!(check.status.success(), "unbound.conf: {}", String::from_utf8_lossy(&check.stdout));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &d.rig.client_ns, "unbound", "-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let unbound = Unbound { child: cmd.spawn().expect("starting unbound"), log };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out =
            ns_exec(&d.rig.client_ns, "dig", &["@127.0.0.1", "+time=1", "+tries=1", "example.com", "SOA"]);
        if String::from_utf8_lossy(&out.stdout).contains("status: NOERROR") {
            return unbound;
        }
        assert!(Instant::now() < deadline, "unbound did not answer within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn resolve(d: &Deployment, name: &str, qtype: &str) -> String {
    let out = ns_exec(&d.rig.client_ns, "dig", &["@127.0.0.1", "+time=3", "+tries=1", name, qtype]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unbound_with_qname_minimisation_and_0x20_resolves_through_instadns() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    // The customer's own zone, CNAMEing its www to the instance's host name.
    let db = d.db();
    let cli = |args: &[&str]| tests::server::cli(&db, args);
    cli(&["zone", "add", "customer.test", "--ns", "ns1.example.com"]);
    cli(&["zone", "record", "add", "customer.test", "www.customer.test", "CNAME", "123456.example.org."]);
    cli(&["domain", "add", "www.customer.test", "--instance", "123456"]);
    std::thread::sleep(Duration::from_millis(200));
    let _unbound = start_unbound(&d);

    let service = resolve(&d, "ws-123456.apps.example.com", "A");
    assert!(service.contains("status: NOERROR"), "{service}");
    assert!(service.contains("CNAME\tws-mt1.example.com.") && service.contains("192.0.2.11"), "{service}");

    let host = resolve(&d, "blog.alice.example.org", "AAAA");
    assert!(host.contains("status: NOERROR") && host.contains("2001:db8::1"), "{host}");

    let by_id = resolve(&d, "234567.example.org", "A");
    assert!(by_id.contains("status: NOERROR") && by_id.contains("192.0.2.2"), "{by_id}");

    let custom = resolve(&d, "www.customer.test", "A");
    assert!(custom.contains("status: NOERROR"), "{custom}");
    assert!(
        custom.contains("CNAME\t123456.example.org.") && custom.contains("192.0.2.1"),
        "through the CNAME: {custom}"
    );

    let missing = resolve(&d, "nope.example.org", "A");
    assert!(missing.contains("status: NXDOMAIN"), "{missing}");
    let missing_deep = resolve(&d, "a.b.nope.example.org", "A");
    assert!(missing_deep.contains("status: NXDOMAIN"), "{missing_deep}");

    // The case-randomised queries Unbound sent were answered, some by XDP.
    assert!(d.server.xdp("hit") + d.server.xdp("miss") > 0);
}
