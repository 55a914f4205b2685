//! DNS-01 certificates (RFC 8555 section 8.4) issued through instadns by the real
//! clients: certbot with its dns-rfc2136 plugin and lego with its rfc2136 provider,
//! against a Pebble ACME server (in the client namespace) whose validation authority
//! asks instadns for the challenge TXT. Each client finds the zone by SOA queries
//! (certbot's signed with its key), adds the value by a TSIG-signed RFC 2136 update
//! with a key that may only touch `_acme-challenge.*` of one zone, gets a certificate
//! for the name once Pebble has seen the value, and deletes the value again.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use tests::{
    dig::Dig,
    netns::{SERVER_V4, die_with_parent, in_netns, ns_exec},
    server::{Deployment, cli, key_secret},
    tls::Authority,
    wait::eventually,
};

/// Where Pebble serves its ACME directory, in the client namespace.
const PEBBLE_LISTEN: &str = "127.0.0.1:14000";
/// The longest a client may take to get its certificate.
const CLIENT_TIMEOUT_S: &str = "120";

/// A Pebble ACME server trusting instadns's answers for DNS-01; killed on drop.
struct Pebble {
    child: Child,
    /// The CA certificate of Pebble's HTTPS listener, for the clients to trust.
    ca: PathBuf,
    log: PathBuf,
}

impl Pebble {
    fn start(ns: &str, dir: &Path) -> Self {
        let tls = dir.join("pebble-tls");
        std::fs::create_dir(&tls).expect("pebble directory");
        let authority = Authority::new(&tls, "ca");
        let (cert, key) = authority.issue_server("acme", "127.0.0.1");
        let config = dir.join("pebble.json");
        let json = serde_json::json!({ "pebble": {
            "listenAddress": PEBBLE_LISTEN,
            "managementListenAddress": "127.0.0.1:15000",
            "certificate": cert,
            "privateKey": key,
            "httpPort": 5002,
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(&config, json.to_string()).expect("pebble config");
        let log = dir.join("pebble.log");
        let out = std::fs::File::create(&log).expect("pebble log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "pebble", "-config"])
            .arg(&config)
            .args(["-dnsserver", &format!("{SERVER_V4}:53")])
            // Validate at once (not after up to 15 s) and accept every nonce.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::from(out.try_clone().expect("log handle")))
            .stderr(Stdio::from(out));
        let child = die_with_parent(&mut cmd).spawn().expect("starting pebble");
        let pebble = Self { child, ca: authority.cert(), log };
        eventually("pebble listens", Duration::from_secs(20), || {
            in_netns(ns, || TcpStream::connect(PEBBLE_LISTEN).is_ok())
        });
        pebble
    }

    fn directory(&self) -> String {
        format!("https://{PEBBLE_LISTEN}/dir")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("pebble log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }
}

/// A key that may update `_acme-challenge.*` of example.org and nothing else: (name,
/// base64 secret).
fn acme_key(db: &str, name: &str) -> (String, String) {
    let clause = cli(
        db,
        &["key", "add", name, "--zone", "example.org", "--name", "_acme-challenge.*", "--allow", "update"],
    );
    (name.to_owned(), key_secret(&clause))
}

/// Runs `program` in the client namespace with `env`, bounded by [`CLIENT_TIMEOUT_S`].
fn run_client(d: &Deployment, env: &[String], program: &str, args: &[&str]) -> Output {
    let mut all: Vec<&str> = env.iter().map(String::as_str).collect();
    all.extend(["timeout", CLIENT_TIMEOUT_S, program]);
    all.extend_from_slice(args);
    ns_exec(&d.rig.client_ns, "env", &all)
}

/// The client succeeded and left a certificate for `name` at `cert` (`log`: the
/// client's own log, printed if not).
fn assert_issued(out: &Output, log: &str, cert: &Path, name: &str) {
    assert!(
        out.status.success(),
        "the ACME client failed: {}{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let names = subject_names(cert);
    assert!(names.contains(&format!("DNS:{name}")), "the certificate is for {name}: {names}");
}

/// The subject alternative names of a PEM certificate, as openssl prints them.
fn subject_names(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{cert:?} is no certificate: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a client did to the server: the challenge value is gone again (from the
/// answers and the ACME table), and its add and delete were applied updates.
fn assert_cleaned_up(d: &Deployment, name: &str, updates_before: f64) {
    let challenge = format!("_acme-challenge.{name}");
    let at = format!("@{SERVER_V4}");
    eventually("the challenge value is deleted", Duration::from_secs(5), || {
        let out =
            ns_exec(&d.rig.client_ns, "dig", &["+time=2", "+tries=1", "+norec", &at, &challenge, "TXT"]);
        Dig::parse(&out.stdout).records("ANSWER").is_empty()
    });
    let table = cli(&d.db(), &["acme", "list"]);
    assert!(!table.contains(name), "the ACME table holds no value for {name} afterwards:\n{table}");
    let applied = updates_applied(d) - updates_before;
    assert!(applied >= 2.0, "the add and the delete were applied updates ({applied})");
}

fn updates_applied(d: &Deployment) -> f64 {
    d.server.sample("instadns_updates_total{rcode=\"NOERROR\"}")
}

/// Waits for the keys (new rows) to reach the daemon: a signed update of nothing.
fn wait_for_key(d: &Deployment, key: &(String, String)) {
    let script = d.dir.path().join(format!("{}.nsupdate", key.0));
    std::fs::write(
        &script,
        format!(
            "server {SERVER_V4}\nkey hmac-sha256:{} {}\nzone example.org\nprereq nxdomain _acme-challenge.never.example.org\nsend\n",
            key.0, key.1
        ),
    )
    .expect("nsupdate script");
    let script = script.to_string_lossy().into_owned();
    eventually("the key is known", Duration::from_secs(10), || {
        ns_exec(&d.rig.client_ns, "nsupdate", &["-t", "3", &script]).status.success()
    });
}

#[test]
fn certbot_gets_a_certificate_through_rfc2136_updates() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let dir = d.dir.path().to_owned();
    let pebble = Pebble::start(&d.rig.client_ns, &dir);
    let key = acme_key(&d.db(), "certbot");
    wait_for_key(&d, &key);
    let credentials = dir.join("rfc2136.ini");
    std::fs::write(
        &credentials,
        format!(
            "dns_rfc2136_server = {SERVER_V4}\ndns_rfc2136_port = 53\ndns_rfc2136_name = {}\ndns_rfc2136_secret = {}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
            key.0, key.1
        ),
    )
    .expect("credentials");
    // certbot warns about credentials others can read.
    std::fs::set_permissions(&credentials, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");

    let name = "blog.alice.example.org";
    let before = updates_applied(&d);
    let certbot = dir.join("certbot");
    let path = |sub: &str| certbot.join(sub).to_string_lossy().into_owned();
    let args = [
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--server",
        &pebble.directory(),
        "--authenticator",
        "dns-rfc2136",
        "--dns-rfc2136-credentials",
        &credentials.to_string_lossy(),
        "--dns-rfc2136-propagation-seconds",
        "1",
        "--config-dir",
        &path("config"),
        "--work-dir",
        &path("work"),
        "--logs-dir",
        &path("logs"),
        "-d",
        name,
    ];
    let env = [format!("REQUESTS_CA_BUNDLE={}", pebble.ca.display())];
    let out = run_client(&d, &env, "certbot", &args);
    let log = std::fs::read_to_string(certbot.join("logs/letsencrypt.log")).unwrap_or_default();
    assert_issued(&out, &log, &certbot.join(format!("config/live/{name}/fullchain.pem")), name);
    assert_cleaned_up(&d, name, before);
}

#[test]
fn lego_gets_a_certificate_through_rfc2136_updates() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let dir = d.dir.path().to_owned();
    let pebble = Pebble::start(&d.rig.client_ns, &dir);
    let key = acme_key(&d.db(), "lego");
    wait_for_key(&d, &key);

    // A name with no records at all: DNS-01 proves control of the zone, not of a host.
    let name = "shop.example.org";
    let before = updates_applied(&d);
    let lego = dir.join("lego");
    let server = format!("{SERVER_V4}:53");
    let args = [
        "--accept-tos",
        "--email",
        "certs@example.org",
        "--server",
        &pebble.directory(),
        "--dns",
        "rfc2136",
        "--dns.resolvers",
        &server,
        // lego's own propagation check asks the zone's NS hosts, which exist only in
        // the demo's data; Pebble's validation is the check that matters here.
        "--dns.disable-cp",
        "--path",
        &lego.to_string_lossy(),
        "--domains",
        name,
        "run",
    ];
    let env = [
        format!("LEGO_CA_CERTIFICATES={}", pebble.ca.display()),
        format!("RFC2136_NAMESERVER={server}"),
        format!("RFC2136_TSIG_KEY={}", key.0),
        format!("RFC2136_TSIG_SECRET={}", key.1),
        "RFC2136_TSIG_ALGORITHM=hmac-sha256.".into(),
    ];
    let out = run_client(&d, &env, "lego", &args);
    assert_issued(&out, "", &lego.join(format!("certificates/{name}.crt")), name);
    assert_cleaned_up(&d, name, before);
}
