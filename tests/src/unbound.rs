//! Unbound as a resolver in a deployment's client namespace, with stub zones pointing at
//! instadns: QNAME minimisation and 0x20 case randomisation on, no cache.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    netns::{SERVER_V4, ns_exec},
    server::Deployment,
};

pub struct Unbound {
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

/// Starts Unbound in the deployment's client namespace on 127.0.0.1, with a stub zone
/// pointing at instadns for each of `stub_zones`; waits until it resolves the first.
pub fn start_unbound(d: &Deployment, stub_zones: &[&str]) -> Unbound {
    let dir = d.dir.path();
    let conf = dir.join("unbound.conf");
    let log = dir.join("unbound.log");
    let stubs: String = stub_zones
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
    crate::netns::die_with_parent(&mut cmd);
    let unbound = Unbound { child: cmd.spawn().expect("starting unbound"), log };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out =
            ns_exec(&d.rig.client_ns, "dig", &["@127.0.0.1", "+time=1", "+tries=1", stub_zones[0], "SOA"]);
        if String::from_utf8_lossy(&out.stdout).contains("status: NOERROR") {
            return unbound;
        }
        assert!(Instant::now() < deadline, "unbound did not answer within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Resolves `name` through the Unbound of `d`'s client namespace; dig's output.
pub fn resolve(d: &Deployment, name: &str, qtype: &str) -> String {
    let out = ns_exec(&d.rig.client_ns, "dig", &["@127.0.0.1", "+time=3", "+tries=1", name, qtype]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
