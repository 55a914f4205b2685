//! `cargo xtask bench management`: writes per second through the automation
//! interfaces, against the store's own write rate measured in the same run (the
//! baseline: the same `set_acme` called in-process, no protocol around it), on SQLite
//! and PostgreSQL. The HTTP API is driven over one keep-alive connection (plain HTTP:
//! TLS is a one-time handshake per connection), RFC 2136 by nsupdate -k sending one
//! signed UPDATE after another. Writes `benchmarks/management.md`.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    time::{Duration, Instant},
};

use tests::{
    netns::{SERVER_V4, in_netns, ns_exec},
    postgres::PgServer,
    server::{Deployment, cli, demo_db},
};

const API_PORT: u16 = 8053;

struct Row {
    db: &'static str,
    path: &'static str,
    writes: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Against the store's in-process rate on the same database.
    ratio: f64,
}

pub fn management(writes: usize, out: &std::path::Path) {
    tests::require_root();
    let mut rows = Vec::new();
    let pg = PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let sqlite = demo_db(dir.path());
    for (label, db) in [("SQLite", sqlite.as_str()), ("PostgreSQL", pg.url.as_str())] {
        rows.extend(measure(label, db, writes));
    }
    let mut text = String::from(
        "# Management writes per second\n\n\
         `cargo xtask bench management` (this file is written by it). Each write sets one\n\
         ACME TXT value (`_acme-challenge.NAME`), one after another from one client. The\n\
         ratio is against the store's own rate in the same run: the same write called\n\
         in-process, with no protocol around it.\n\n\
         | Database | Path | Writes | Writes/s | p50 ms | p99 ms | vs store |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in &rows {
        text.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2}x |\n",
            r.db, r.path, r.writes, r.per_second, r.p50_ms, r.p99_ms, r.ratio
        ));
    }
    print!("{text}");
    std::fs::create_dir_all(out).expect("benchmarks directory");
    std::fs::write(out.join("management.md"), text).expect("benchmarks/management.md");
}

fn measure(label: &'static str, db: &str, writes: usize) -> Vec<Row> {
    // The baseline: the store in-process.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store =
        runtime.block_on(instadns::store::Database::open(&db.parse().expect("database"))).expect("open");
    let mut latencies = Vec::with_capacity(writes);
    let started = Instant::now();
    for i in 0..writes {
        let t = Instant::now();
        let challenge = instadns::store::AcmeChallenge {
            name: format!("store-{i}.example.org"),
            kind: instadns::model::AcmeKind::Txt,
            value: format!("value-{i}"),
            ttl: 60,
            expires_at: None,
        };
        runtime.block_on(store.set_acme(&challenge)).expect("set_acme");
        latencies.push(t.elapsed());
    }
    let store_rate = writes as f64 / started.elapsed().as_secs_f64();
    let mut rows = vec![row(label, "store, in-process (baseline)", &mut latencies, store_rate, store_rate)];

    let token = cli(db, &["token", "add", "bench", "--access", "write"]).trim().to_owned();
    let key_clause = cli(db, &["key", "add", "bench", "--zone", "example.org", "--allow", "update"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let key_file = dir.path().join("bench.key");
    std::fs::write(&key_file, key_clause).expect("key file");
    let listen = format!("{SERVER_V4}:{API_PORT}");
    let d =
        Deployment::start_on(db, dir, &["--xdp-mode", "native", "--api-listen", &listen, "--rrl-rate", "0"]);

    // The HTTP API: one keep-alive connection, one POST after another.
    let (mut latencies, rate) = in_netns(&d.rig.client_ns, || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect((SERVER_V4, API_PORT)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("connecting to the API: {e}"),
            }
        };
        stream.set_nodelay(true).expect("nodelay");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let mut latencies = Vec::with_capacity(writes);
        let started = Instant::now();
        for i in 0..writes {
            let body = format!(r#"{{"txt":"value-{i}"}}"#);
            let request = format!(
                "POST /v1/acme/api-{i}.example.org HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let t = Instant::now();
            writer.write_all(request.as_bytes()).expect("request");
            let status = read_response(&mut reader);
            assert_eq!(status, 201, "API write {i}");
            latencies.push(t.elapsed());
        }
        (latencies, writes as f64 / started.elapsed().as_secs_f64())
    });
    rows.push(row(label, "HTTP API (POST /v1/acme/NAME)", &mut latencies, rate, store_rate));

    // RFC 2136: nsupdate -k, one signed UPDATE after another.
    let mut script = format!("server {SERVER_V4}\nzone example.org\n");
    for i in 0..writes {
        script
            .push_str(&format!("update add _acme-challenge.ns-{i}.example.org 60 TXT \"value-{i}\"\nsend\n"));
    }
    let script_file = d.dir.path().join("updates.txt");
    std::fs::write(&script_file, script).expect("update script");
    let started = Instant::now();
    let out = ns_exec(
        &d.rig.client_ns,
        "nsupdate",
        &["-t", "5", "-k", key_file.to_str().expect("UTF-8"), script_file.to_str().expect("UTF-8")],
    );
    let elapsed = started.elapsed();
    assert!(out.status.success(), "nsupdate: {}", String::from_utf8_lossy(&out.stderr));
    let rate = writes as f64 / elapsed.as_secs_f64();
    // nsupdate reports no per-update times: the mean stands for both percentiles.
    let mean = elapsed / writes as u32;
    let mut flat = vec![mean; writes];
    rows.push(row(label, "RFC 2136 (nsupdate -k, mean latency)", &mut flat, rate, store_rate));
    rows
}

fn row(db: &'static str, path: &'static str, latencies: &mut [Duration], rate: f64, baseline: f64) -> Row {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    Row {
        db,
        path,
        writes: latencies.len(),
        per_second: rate,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        ratio: rate / baseline,
    }
}

/// Reads one HTTP/1.1 response (head, then Content-Length bytes); returns its status.
fn read_response(reader: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).expect("body");
    status
}
