//! PostgreSQL over TLS: a server the harness starts with a certificate from its own CA
//! (TCP clients must use TLS), in the node's network namespace. The daemon serves,
//! follows changes (LISTEN over TLS) and every one of its connections is encrypted;
//! the URL's `sslmode` keeps libpq's meanings, and a certificate that cannot be
//! verified is refused with an error that says why.

use std::{process::Command, time::Duration};

use hickory_proto::rr::RecordType;
use tests::{
    dns::{QueryBuilder, answer_data},
    netns::VethRig,
    postgres::PgServer,
    server::{Deployment, ServerProcess, cli, instadns_bin, poll_until, server_v4 as server},
};

/// The CLI run inside the node's namespace (where the server's TCP port is).
fn cli_in(ns: &str, db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{ns}"))
        .arg(instadns_bin())
        .args(args)
        .args(["--db", db])
        .output()
        .expect("instadns CLI");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_daemon_follows_a_postgresql_it_reaches_over_verified_tls() {
    let rig = VethRig::new().with_client_pass_program();
    let pg = PgServer::start_tls(&rig.server_ns);
    cli(&pg.url, &["db", "demo"]);
    let ca = pg.ca_cert();
    let url = pg.tcp_url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    let dir = tempfile::tempdir().unwrap();
    let node = ServerProcess::start(&rig, &url, &dir.path().join("instadns.log"), &["--xdp-mode", "native"]);
    let d = Deployment { server: node, rig, dir };

    let query = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &query, Duration::from_secs(5), |r| answer_data(r) == ["192.0.2.1"])
        .expect("answered from the database over TLS");
    // Every TCP connection (the pool's and LISTEN's) is encrypted.
    let connections = "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
                       JOIN pg_stat_ssl s USING (pid) WHERE a.client_addr IS NOT NULL";
    let counts = pg.psql(connections);
    let (encrypted, all) = counts.trim().split_once('|').expect("two counts");
    assert!(all.parse::<u32>().unwrap() >= 2, "the pool and the LISTEN connection: {counts}");
    assert_eq!(encrypted, all, "every connection of the daemon is TLS: {counts}");
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_stat_activity a WHERE a.client_addr IS NOT NULL AND a.query LIKE 'LISTEN%'")
            .trim(),
        "1"
    );

    // A change (over the Unix socket) reaches the answers through LISTEN over TLS.
    cli(&pg.url, &["cluster", "set", "mt1", "--address", "192.0.2.77", "--remove-address", "192.0.2.1"]);
    let took =
        poll_until(&d.rig, server(), &query, Duration::from_secs(5), |r| answer_data(r) == ["192.0.2.77"])
            .unwrap_or_else(|| panic!("the change arrived\n{}", d.server.log_text()));
    eprintln!("change over TLS: answered after {took:?}");

    // The CLI over TLS, in the same namespace.
    let (ok, out) = cli_in(&d.rig.server_ns, &url, &["instance", "show", "123456"]);
    assert!(ok && out.contains("mt1"), "{out}");
}

#[test]
fn tls_modes_keep_libpq_meanings_and_unverifiable_certificates_are_refused() {
    let rig = VethRig::new();
    let pg = PgServer::start_tls(&rig.server_ns);
    cli(&pg.url, &["db", "demo"]);
    let ns = rig.server_ns.as_str();
    let (ca, other) = (pg.ca_cert(), pg.other_ca_cert());
    let ok = |host: &str, params: String| cli_in(ns, &pg.tcp_url(host, &params), &["zone", "list"]);

    let (good, out) = ok("127.0.0.1", format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    assert!(good && out.contains("example.com"), "verify-full with the right CA: {out}");
    let (good, out) = ok("127.0.0.1", "sslmode=require".into());
    assert!(good, "require: encrypted, the certificate not checked: {out}");

    let (good, out) = ok("127.0.0.1", format!("sslmode=verify-full&sslrootcert={}", other.display()));
    assert!(!good && out.contains("certificate"), "another CA's root: {out}");
    let (good, out) = ok("127.0.0.1", format!("sslmode=require&sslrootcert={}", other.display()));
    assert!(!good && out.contains("certificate"), "require with a root checks the chain (libpq): {out}");
    // The certificate names 127.0.0.1 only.
    let (good, out) = ok("localhost", format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    assert!(!good && out.contains("certificate"), "verify-full checks the name: {out}");
    let (good, out) = ok("localhost", format!("sslmode=verify-ca&sslrootcert={}", ca.display()));
    assert!(good, "verify-ca checks the chain, not the name: {out}");

    let (good, out) = ok("127.0.0.1", "sslmode=disable".into());
    assert!(!good && out.contains("pg_hba.conf"), "plaintext is rejected by this server: {out}");
    let (good, out) = ok("127.0.0.1", "sslmode=verify-full".into());
    assert!(!good && out.contains("need sslrootcert=PATH"), "verify-full without a root: {out}");
    let (good, out) = ok("127.0.0.1", "sslmode=strict".into());
    assert!(!good && out.contains("sslmode=strict is not one of"), "{out}");
}
