//! The HTTP management API (`[api]`), driven with curl over HTTPS (the daemon's rustls,
//! a certificate of a test authority) from the client namespace against the daemon
//! with XDP attached: every endpoint with its status codes, RFC 9457 problem bodies,
//! scopes (a read token cannot write, a zone's token cannot touch another zone or the
//! nouns outside zones), bounded bodies, pages that follow each other, the audit log of
//! every write, a write's answer served from XDP, and `/openapi.json` validated by
//! openapi-spec-validator (PyPI).

use std::time::Duration;

use serde_json::Value;
use tests::{
    OPENAPI_VALIDATOR,
    dig::Dig,
    netns::{SERVER_V4, ns_exec},
    server::{Deployment, cli, demo_db},
    tls::Authority,
    wait::eventually,
};

const API_PORT: u16 = 8053;

struct Api<'a> {
    d: &'a Deployment,
    ca: std::path::PathBuf,
}

/// An answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Api<'_> {
    fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Answer {
        let url = format!("https://{SERVER_V4}:{API_PORT}{path}");
        let marker = "\n--curl--";
        let mut args: Vec<String> = [
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            self.ca.to_str().expect("UTF-8 path"),
            "-X",
            method,
            "-w",
            &format!("{marker}%{{http_code}} %{{content_type}}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = token {
            args.extend(["-H".into(), format!("Authorization: Bearer {t}")]);
        }
        if let Some(b) = body {
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                b.into(),
            ]);
        }
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ns_exec(&self.d.rig.client_ns, "curl", &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, tail) = text
            .rsplit_once(marker)
            .unwrap_or_else(|| panic!("curl {method} {path}: {}", String::from_utf8_lossy(&out.stderr)));
        let (status, content_type) = tail.split_once(' ').unwrap_or((tail, ""));
        Answer {
            status: status.parse().unwrap_or(0),
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// A daemon on `db` (working in `dir`) with XDP, serving the API over HTTPS at
/// [`API_PORT`] with a certificate of a test authority made in `ca_dir`; and that
/// authority's certificate, for clients.
fn serve_api(db: &str, dir: tempfile::TempDir, ca_dir: &std::path::Path) -> (Deployment, std::path::PathBuf) {
    let authority = Authority::new(ca_dir, "api-ca");
    let (cert, key) = authority.issue_server("api", &SERVER_V4.to_string());
    let listen = format!("{SERVER_V4}:{API_PORT}");
    let d = Deployment::start_on(
        db,
        dir,
        &[
            "--xdp-mode",
            "native",
            "--api-listen",
            &listen,
            "--api-tls-certificate",
            cert.to_str().expect("UTF-8"),
            "--api-tls-key",
            key.to_str().expect("UTF-8"),
        ],
    );
    (d, authority.cert())
}

struct Row {
    what: &'static str,
    /// 0 none, 1 read, 2 write (every zone), 3 write in example.org only.
    token: usize,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    status: u16,
    /// Text the body holds.
    holds: &'static str,
}

const fn row(
    what: &'static str,
    token: usize,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    status: u16,
    holds: &'static str,
) -> Row {
    Row { what, token, method, path, body, status, holds }
}

const NONE: usize = 0;
const READ: usize = 1;
const WRITE: usize = 2;
const ZONE: usize = 3;

const ROWS: &[Row] = &[
    row("no token", NONE, "GET", "/v1/zones", None, 401, "Authorization: Bearer"),
    row("an unknown token", NONE + 4, "GET", "/v1/zones", None, 401, "unknown token"),
    row("zones", READ, "GET", "/v1/zones", None, 200, "\"apex\":\"example.com.\""),
    row("one zone", READ, "GET", "/v1/zones/example.org", None, 200, "{name}.{owner}"),
    row("a zone we lack", READ, "GET", "/v1/zones/example.net", None, 404, "zone example.net."),
    row("a zone's records", READ, "GET", "/v1/zones/example.com/records", None, 200, "\"items\""),
    row("a zone's rules", READ, "GET", "/v1/zones/example.com/rules", None, 200, "{service}-{id}.apps"),
    row(
        "a read token writes",
        READ,
        "POST",
        "/v1/zones/example.org/records",
        Some(r#"{"name":"api.example.org","type":"A","data":"198.18.7.1"}"#),
        403,
        "may only read",
    ),
    row(
        "the zone's token adds a record",
        ZONE,
        "POST",
        "/v1/zones/example.org/records",
        Some(r#"{"name":"api.example.org","type":"A","data":"198.18.7.1","ttl":120}"#),
        201,
        "198.18.7.1",
    ),
    row(
        "the zone's token in another zone",
        ZONE,
        "POST",
        "/v1/zones/example.com/records",
        Some(r#"{"name":"api.example.com","type":"A","data":"198.18.7.1"}"#),
        403,
        "may not touch zone example.com.",
    ),
    row(
        "the zone's token reads another zone",
        ZONE,
        "GET",
        "/v1/zones/example.com",
        None,
        403,
        "example.com.",
    ),
    row("the zone's token on instances", ZONE, "GET", "/v1/instances", None, 403, "every zone"),
    row(
        "bad record data",
        WRITE,
        "POST",
        "/v1/zones/example.org/records",
        Some(r#"{"name":"bad.example.org","type":"A","data":"not-an-address"}"#),
        422,
        "not valid A data",
    ),
    row(
        "a record outside its zone",
        WRITE,
        "POST",
        "/v1/zones/example.org/records",
        Some(r#"{"name":"www.example.com","type":"A","data":"198.18.7.2"}"#),
        422,
        "outside zone",
    ),
    row("bad JSON", WRITE, "POST", "/v1/zones/example.org/records", Some("{nope"), 400, "JSON"),
    row(
        "an unknown field",
        WRITE,
        "POST",
        "/v1/zones/example.org/records",
        Some(r#"{"name":"x.example.org","type":"A","data":"198.18.7.3","colour":"red"}"#),
        422,
        "colour",
    ),
    row(
        "a rule",
        WRITE,
        "POST",
        "/v1/zones/example.org/rules",
        Some(r#"{"pattern":"api-{id}","kind":"host"}"#),
        201,
        "api-{id}",
    ),
    row(
        "the rule changed",
        ZONE,
        "PATCH",
        "/v1/zones/example.org/rules",
        Some(r#"{"pattern":"api-{id}","kind":"tombstone","ttl":90}"#),
        200,
        "\"kind\":\"tombstone\",\"ttl\":90",
    ),
    row(
        "a rule we lack changed",
        WRITE,
        "PATCH",
        "/v1/zones/example.org/rules",
        Some(r#"{"pattern":"web-{id}","kind":"host"}"#),
        404,
        "web-{id}",
    ),
    row(
        "the rule removed",
        WRITE,
        "DELETE",
        "/v1/zones/example.org/rules?pattern=api-%7Bid%7D",
        None,
        204,
        "",
    ),
    row(
        "a zone added",
        WRITE,
        "POST",
        "/v1/zones",
        Some(r#"{"apex":"api.test","ns":["ns1.api.test"],"rules":["{id}=host:30"]}"#),
        201,
        "\"soa_rname\":\"hostmaster.api.test.\"",
    ),
    row(
        "a zone added by a zone's token",
        ZONE,
        "POST",
        "/v1/zones",
        Some(r#"{"apex":"b.test","ns":["ns1.b.test"]}"#),
        403,
        "every zone",
    ),
    row(
        "a zone without name servers",
        WRITE,
        "POST",
        "/v1/zones",
        Some(r#"{"apex":"c.test","ns":[]}"#),
        422,
        "at least one name server",
    ),
    row(
        "the zone's SOA changed by its token",
        ZONE,
        "PATCH",
        "/v1/zones/example.org",
        Some(r#"{"soa_minimum":90}"#),
        200,
        "\"soa_minimum\":90",
    ),
    row(
        "the new zone removed with what it holds",
        WRITE,
        "DELETE",
        "/v1/zones/api.test?force=true",
        None,
        204,
        "",
    ),
    row(
        "a cluster added",
        WRITE,
        "POST",
        "/v1/clusters",
        Some(
            r#"{"name":"mt9","services":{"ws":"ws-mt9.example.com."},"addresses":["198.18.9.1,weight=3","198.18.9.2"],"pick":"one","check":{"target":"tcp:80"}}"#,
        ),
        201,
        "\"weight\":3",
    ),
    row(
        "a cluster with a bad address",
        WRITE,
        "POST",
        "/v1/clusters",
        Some(r#"{"name":"mt8","addresses":["198.18.9.300"]}"#),
        422,
        "198.18.9.300",
    ),
    row(
        "a cluster with an unknown field",
        WRITE,
        "POST",
        "/v1/clusters",
        Some(r#"{"name":"mt8","colour":"red"}"#),
        422,
        "colour",
    ),
    row(
        "the cluster changed",
        WRITE,
        "PATCH",
        "/v1/clusters/mt9",
        Some(r#"{"remove_addresses":["198.18.9.2"],"remove_check":true}"#),
        200,
        "\"check\":null",
    ),
    row("the cluster removed", WRITE, "DELETE", "/v1/clusters/mt9", None, 204, ""),
    row("clusters", READ, "GET", "/v1/clusters", None, 200, "\"mt1\""),
    row("one cluster", READ, "GET", "/v1/clusters/mt1", None, 200, "\"services\""),
    row("an instance", READ, "GET", "/v1/instances/123456", None, 200, "\"owner\":\"alice\""),
    row("an instance we lack", READ, "GET", "/v1/instances/99", None, 404, "instance 99"),
    row(
        "an instance added",
        WRITE,
        "POST",
        "/v1/instances",
        Some(r#"{"id":777001,"cluster":"mt1","name":"api","owner":"carol"}"#),
        201,
        "\"cluster\":\"mt1\"",
    ),
    row(
        "the same again",
        WRITE,
        "POST",
        "/v1/instances",
        Some(r#"{"id":777001,"cluster":"mt1"}"#),
        409,
        "already exists",
    ),
    row(
        "the instance moved",
        WRITE,
        "POST",
        "/v1/instances/777001/move",
        Some(r#"{"cluster":"mt2"}"#),
        200,
        "\"to_cluster\":\"mt2\"",
    ),
    row(
        "the instance's TTL changed",
        WRITE,
        "PATCH",
        "/v1/instances/777001",
        Some(r#"{"ttl":30}"#),
        200,
        "\"ttl\":30",
    ),
    row(
        "a name without its owner",
        WRITE,
        "PATCH",
        "/v1/instances/777001",
        Some(r#"{"name":"web"}"#),
        422,
        "together",
    ),
    row(
        "a custom domain added",
        WRITE,
        "PUT",
        "/v1/domains/shop.example.org",
        Some(r#"{"instance":777001}"#),
        201,
        "\"instance\":777001",
    ),
    row(
        "the custom domain moved",
        ZONE,
        "PUT",
        "/v1/domains/shop.example.org",
        Some(r#"{"instance":123456}"#),
        200,
        "\"instance\":123456",
    ),
    row(
        "the zone's token on a domain elsewhere",
        ZONE,
        "PUT",
        "/v1/domains/shop.example.com",
        Some(r#"{"instance":123456}"#),
        403,
        "example.com.",
    ),
    row("custom domains", READ, "GET", "/v1/domains", None, 200, "shop.example.org."),
    row("the custom domain removed", WRITE, "DELETE", "/v1/domains/shop.example.org", None, 204, ""),
    row(
        "a cluster's TTL lowered",
        WRITE,
        "POST",
        "/v1/ttl",
        Some(r#"{"cluster":"mt2","ttl":30,"dry_run":true}"#),
        200,
        "would set TTL of",
    ),
    row("a TTL for nobody", WRITE, "POST", "/v1/ttl", Some(r#"{"ttl":30}"#), 422, "one of cluster"),
    row("the instance removed", WRITE, "DELETE", "/v1/instances/777001", None, 204, ""),
    row(
        "a challenge answer",
        ZONE,
        "POST",
        "/v1/acme/www.example.org",
        Some(r#"{"txt":"token-value-1","expires_in":600}"#),
        201,
        "token-value-1",
    ),
    row(
        "txt and cname at once",
        ZONE,
        "POST",
        "/v1/acme/www.example.org",
        Some(r#"{"txt":"a","cname":"b.example.net"}"#),
        422,
        "one of txt and cname",
    ),
    row("challenge answers", ZONE, "GET", "/v1/acme", None, 200, "token-value-1"),
    row(
        "the challenge answer removed",
        ZONE,
        "DELETE",
        "/v1/acme/www.example.org?txt=token-value-1",
        None,
        200,
        "\"removed\":1",
    ),
    row("health", READ, "GET", "/v1/health", None, 200, "["),
    row("the fleet", READ, "GET", "/v1/fleet", None, 200, "\"items\""),
    row(
        "a territory added",
        WRITE,
        "POST",
        "/v1/territories",
        Some(r#"{"name":"eu","prefixes":["198.18.64.0/18","fd00:64::/32"]}"#),
        201,
        "198.18.64.0/18",
    ),
    row(
        "a territory with a bad network",
        WRITE,
        "POST",
        "/v1/territories",
        Some(r#"{"name":"us","prefixes":["198.18.64.0/33"]}"#),
        422,
        "198.18.64.0/33",
    ),
    row(
        "the territory changed",
        WRITE,
        "PATCH",
        "/v1/territories/eu",
        Some(r#"{"remove":["fd00:64::/32"]}"#),
        200,
        "\"prefixes\":[\"198.18.64.0/18\"]",
    ),
    row("territories", READ, "GET", "/v1/territories", None, 200, "\"name\":\"eu\""),
    row("one territory", READ, "GET", "/v1/territories/eu", None, 200, "\"index\":"),
    row("a territory we lack", READ, "GET", "/v1/territories/us", None, 404, "us"),
    row("the territory removed", WRITE, "DELETE", "/v1/territories/eu", None, 204, ""),
    row(
        "a key made",
        WRITE,
        "POST",
        "/v1/keys",
        Some(
            r#"{"name":"acme-api","zones":["example.org"],"names":["_acme-challenge.*"],"operations":["update"]}"#,
        ),
        201,
        "\"secret\":\"",
    ),
    row("a key by a zone's token", ZONE, "POST", "/v1/keys", Some(r#"{"name":"mine"}"#), 403, "every zone"),
    row("keys, without secrets", READ, "GET", "/v1/keys", None, 200, "\"name\":\"acme-api.\""),
    row("the key removed", WRITE, "DELETE", "/v1/keys/acme-api", None, 204, ""),
    row("tokens, without secrets", READ, "GET", "/v1/tokens", None, 200, "\"name\":\"zoned\""),
    row("a bad limit", READ, "GET", "/v1/instances?limit=0", None, 400, "limit 0"),
    row("a bad cursor", READ, "GET", "/v1/instances?after=x", None, 400, "cursor"),
    row("no such path", READ, "GET", "/v1/nothing", None, 404, "no such resource"),
    row("a method not allowed", WRITE, "PATCH", "/v1/zones", None, 405, "PATCH"),
];

#[test]
fn every_endpoint_with_its_scopes_problems_pages_and_audit_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = demo_db(dir.path());
    every_endpoint(&db, dir);
}

#[test]
fn every_endpoint_with_its_scopes_problems_pages_and_audit_postgres() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pg = tests::postgres::PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    every_endpoint(&pg.url, dir);
}

fn every_endpoint(db: &str, dir: tempfile::TempDir) {
    let db = db.to_owned();
    let tokens = [
        String::new(),
        cli(&db, &["token", "add", "reader"]).trim().to_owned(),
        cli(&db, &["token", "add", "ops", "--access", "write"]).trim().to_owned(),
        cli(&db, &["token", "add", "zoned", "--access", "write", "--zone", "example.org"]).trim().to_owned(),
        "instadns_not-a-token-we-made".to_owned(),
    ];
    assert!(tokens[1..4].iter().all(|t| t.starts_with("instadns_") && t.len() > 40), "{tokens:?}");
    let ca_dir = dir.path().to_owned();
    let (d, ca) = serve_api(&db, dir, &ca_dir);
    let api = Api { d: &d, ca };
    eventually("the API answers", Duration::from_secs(10), || {
        api.call(None, "GET", "/openapi.json", None).status == 200
    });

    let mut failures = Vec::new();
    let mut writes = 0;
    for r in ROWS {
        let token = (r.token != NONE).then(|| tokens[r.token].as_str());
        let answer = api.call(token, r.method, r.path, r.body);
        if r.method != "GET" {
            writes += 1;
        }
        let problem = r.status >= 400;
        let type_ok = if problem {
            answer.content_type == "application/problem+json"
                && answer.json()["status"] == r.status
                && answer.json()["title"].is_string()
        } else {
            r.status == 204 || answer.content_type == "application/json"
        };
        if answer.status != r.status || !answer.body.contains(r.holds) || !type_ok {
            failures.push(format!(
                "{}: {} {} answered {} {} {}, expected {} holding {:?}",
                r.what, r.method, r.path, answer.status, answer.content_type, answer.body, r.status, r.holds
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );

    // The record added through the API is answered, from XDP after the first miss.
    let at = format!("@{SERVER_V4}");
    let ask = || {
        Dig::parse(
            &ns_exec(
                &d.rig.client_ns,
                "dig",
                &["+time=2", "+tries=1", "+norec", &at, "api.example.org", "A"],
            )
            .stdout,
        )
    };
    eventually("the API's record is answered", Duration::from_secs(5), || {
        ask().records("ANSWER").iter().any(|(_, _, t, data)| t == "A" && data == "198.18.7.1")
    });
    let hits = d.server.xdp("hit");
    for _ in 0..5 {
        assert!(ask().records("ANSWER").iter().any(|(_, ttl, _, data)| data == "198.18.7.1" && *ttl <= 120));
    }
    assert!(d.server.xdp("hit") >= hits + 5, "the API's record is not answered from XDP");

    // A body over the bound is refused before it is parsed.
    let big = format!(r#"{{"name":"big.example.org","type":"TXT","data":"{}"}}"#, "a".repeat(70_000));
    let answer = api.call(Some(&tokens[WRITE]), "POST", "/v1/zones/example.org/records", Some(&big));
    assert_eq!(answer.status, 413, "{}", answer.body);
    writes += 1;

    // Pages follow each other: every instance once, as the CLI lists them.
    let mut paged = Vec::new();
    let mut path = "/v1/instances?limit=1".to_owned();
    loop {
        let page = api.call(Some(&tokens[READ]), "GET", &path, None).json();
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= 1, "{page}");
        paged.extend(items.iter().map(|i| i["id"].as_i64().expect("id")));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/instances?limit=1&after={next}"),
            None => break,
        }
    }
    let listed: Value = serde_json::from_str(&cli(&db, &["instance", "list", "--json"])).expect("JSON");
    let cli_ids: Vec<i64> =
        listed.as_array().expect("list").iter().map(|i| i["id"].as_i64().expect("id")).collect();
    assert_eq!(paged, cli_ids);

    // Every write is in the audit log, with who and how it ended; reads are not.
    let audit = api.call(Some(&tokens[READ]), "GET", "/v1/audit?limit=1000", None).json();
    let rows = audit["items"].as_array().expect("items");
    assert_eq!(rows.len(), writes, "{audit}");
    assert!(rows.iter().all(|r| r["method"] != "GET"));
    let find = |token: &str, status: u64| rows.iter().any(|r| r["token"] == token && r["status"] == status);
    assert!(find("reader", 403) && find("zoned", 201) && find("ops", 409) && find("ops", 413), "{audit}");
    assert!(rows.iter().any(|r| r["request"].as_str().is_some_and(|b| b.contains("777001"))), "{audit}");

    // Plain HTTP to the HTTPS listener gets no answer.
    let plain = ns_exec(
        &d.rig.client_ns,
        "curl",
        &["-s", "--max-time", "5", &format!("http://{SERVER_V4}:{API_PORT}/v1/zones")],
    );
    assert!(!plain.status.success() || plain.stdout.is_empty());

    // The OpenAPI document passes an external validator and lists every route.
    let doc = api.call(None, "GET", "/openapi.json", None);
    assert_eq!(doc.status, 200);
    let file = d.dir.path().join("openapi.json");
    std::fs::write(&file, &doc.body).expect("openapi.json");
    let out = std::process::Command::new(OPENAPI_VALIDATOR)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{OPENAPI_VALIDATOR}: {e} (run `cargo xtask setup`)"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let paths = doc.json()["paths"].as_object().expect("paths").len();
    assert_eq!(paths, 22, "{}", doc.body);
}

/// `instadns token` on SQLite and PostgreSQL: a token is printed once and stored only
/// as its hash; names, access and zones are checked; list and rm.
#[test]
fn tokens_are_made_listed_and_removed_on_both_databases() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pg = tests::postgres::PgServer::start();
    for db in [demo_db(dir.path()), pg.url.clone()] {
        if db.starts_with("postgres") {
            cli(&db, &["db", "demo"]);
        }
        let secret = cli(&db, &["token", "add", "deploy", "--access", "write", "--zone", "Example.ORG"]);
        let secret = secret.trim();
        assert!(secret.starts_with("instadns_"), "{secret}");
        let listed: Value =
            serde_json::from_str(&cli(&db, &["token", "list", "--json"])).expect("token list --json");
        assert_eq!(listed[0]["name"], "deploy", "{listed}");
        assert_eq!(listed[0]["access"], "write");
        assert_eq!(listed[0]["zones"], serde_json::json!(["example.org."]));
        assert!(!listed.to_string().contains(&secret[9..]), "the secret is listed: {listed}");
        let text = cli(&db, &["token", "list"]);
        assert!(text.starts_with("deploy  write in example.org."), "{text}");
        let refused = [
            (&["token", "add", "deploy"][..], 1, "already exists"),
            (&["token", "add", "bad name"][..], 2, "token name"),
            (&["token", "add", "x", "--zone", "example.net"][..], 1, "zone example.net."),
            (&["token", "add", "x", "--access", "admin"][..], 2, "admin"),
            (&["token", "rm", "nobody"][..], 1, "token nobody"),
        ];
        for (args, code, says) in refused {
            let run = tests::server::cli_run(&db, args);
            assert!(
                run.code == code && run.stderr.contains(says),
                "{args:?} on {db}: {} {}",
                run.code,
                run.stderr
            );
        }
        assert_eq!(cli(&db, &["token", "rm", "deploy"]).trim(), "token deploy removed");
        assert_eq!(cli(&db, &["token", "list"]), "");
    }
}

/// The commands `--api` supports, with what they find: run once on a database and once
/// through the API of a node serving a copy of it, each prints the same output, ends
/// with the same exit code and says the same error.
const THROUGH_THE_API: &[&[&str]] = &[
    &["cluster", "list"],
    &["cluster", "list", "--json"],
    &["cluster", "show", "mt1"],
    &[
        "cluster",
        "add",
        "mt3",
        "--service",
        "ws=ws-mt3.example.com",
        "--address",
        "198.18.9.1,weight=3",
        "--address",
        "2001:db8::3,queue=1",
        "--order",
        "rotate",
        "--check",
        "http:8080/healthz",
        "--check-host",
        "lb.example.com",
        "--rise",
        "3",
    ],
    &["cluster", "show", "mt3", "--json"],
    &["cluster", "set", "mt3", "--remove-address", "2001:db8::3", "--pick", "one", "--no-check"],
    &["cluster", "set", "mt3", "--service", "api=api-mt3.example.com", "--remove-service", "ws"],
    &["cluster", "show", "mt3"],
    &["cluster", "add", "mt3"],
    &["cluster", "add", "bad name"],
    &["cluster", "set", "nope", "--pick", "all"],
    &["instance", "add", "345678", "--cluster", "mt3", "--name", "cafe", "--owner", "carol", "--ttl", "30"],
    &["instance", "show", "345678", "--json"],
    &["instance", "set", "345678", "--clear-names", "--clear-ttl"],
    &["instance", "show", "345678"],
    &["instance", "set", "345678", "--name", "deli", "--owner", "dave", "--ttl", "20"],
    &["instance", "set", "999", "--ttl", "20"],
    &["instance", "set", "345678", "--name", "no_underscore", "--owner", "dave"],
    &["instance", "add", "345679", "--cluster", "nope"],
    &["instance", "add", "345678", "--cluster", "mt1"],
    &["instance", "list"],
    &["instance", "list", "--json", "--cluster", "mt1"],
    &["instance", "list", "--after", "123456", "--limit", "1"],
    &["instance", "move", "345678", "--to", "mt1"],
    &["instance", "show", "345678", "--json"],
    &["instance", "show", "999"],
    &["domain", "add", "www.carol.example.org", "--instance", "345678"],
    &["domain", "add", "www.carol.example.org", "--instance", "123456"],
    &["domain", "add", "www.carol.example.net", "--instance", "345678"],
    &["domain", "set", "www.carol.example.org", "--instance", "123456"],
    &["domain", "set", "nowhere.example.org", "--instance", "123456"],
    &["domain", "show", "www.carol.example.org", "--json"],
    &["domain", "show", "nowhere.example.org"],
    &["domain", "add", "shop.dave.example.org", "--instance", "345678"],
    &["domain", "list"],
    &["domain", "list", "--instance", "123456", "--json"],
    &["acme", "set", "dave.example.org", "--txt", "token-one", "--expires", "3600"],
    &["acme", "set", "dave.example.org", "--txt", "token-two"],
    &["acme", "set", "deli.example.org", "--cname", "deli.validation.example.com", "--ttl", "120"],
    &["acme", "show", "dave.example.org"],
    &["acme", "list", "--json"],
    &["acme", "rm", "dave.example.org", "--txt", "token-one"],
    &["acme", "list"],
    &["acme", "rm", "dave.example.org"],
    &["zone", "list"],
    &["zone", "show", "example.org", "--json"],
    &[
        "zone",
        "add",
        "example.net",
        "--ns",
        "ns1.example.com",
        "--ns",
        "ns2.example.com",
        "--rule",
        "{id}=host:30",
        "--minimum",
        "30",
    ],
    &["zone", "add", "example.net", "--ns", "ns1.example.com"],
    &["zone", "add", "bad..name", "--ns", "ns1.example.com"],
    &[
        "zone",
        "set",
        "example.net",
        "--refresh",
        "7200",
        "--add-ns",
        "ns3.example.com",
        "--remove-ns",
        "ns2.example.com",
    ],
    &["zone", "set", "nope.test", "--ttl", "60"],
    &["zone", "show", "example.net"],
    &["zone", "rule", "add", "example.net", "{name}.{owner}", "host", "--ttl", "45"],
    &["zone", "rule", "add", "example.net", "{name}.{owner}", "host"],
    &["zone", "rule", "set", "example.net", "{name}.{owner}", "tombstone"],
    &["zone", "rule", "list", "example.net"],
    &["zone", "rule", "list", "example.net", "--json"],
    &["zone", "rule", "rm", "example.net", "{id}"],
    &["zone", "rule", "rm", "example.net", "{id}"],
    &["zone", "record", "add", "example.net", "www.example.net", "A", "198.18.7.7", "--ttl", "120"],
    &["zone", "record", "add", "example.net", "www.example.net", "A", "198.18.7.8"],
    &["zone", "record", "add", "example.net", "mail.example.net", "MX", "10 mx.example.net."],
    &["zone", "record", "add", "example.net", "www.example.net", "TXT", "v=spf1 -all"],
    &["zone", "record", "add", "example.net", "bad.example.net", "A", "not-an-address"],
    &["zone", "record", "add", "example.net", "www.example.org", "A", "198.18.7.9"],
    &["zone", "record", "list", "example.net"],
    &["zone", "record", "show", "example.net", "www.example.net", "--json"],
    &["zone", "record", "rm", "example.net", "www.example.net", "A", "198.18.7.7"],
    &["zone", "record", "rm", "example.net", "www.example.net", "A"],
    &["zone", "record", "list", "example.net", "--name", "www.example.net"],
    &["territory", "add", "eu", "--prefix", "198.18.64.0/18", "--prefix", "fd00:64::/32"],
    &["territory", "add", "eu", "--prefix", "198.18.96.0/19"],
    &["territory", "set", "eu", "--prefix", "198.18.128.0/18", "--remove-prefix", "fd00:64::/32"],
    &["territory", "show", "eu", "--json"],
    &["territory", "list"],
    &["cluster", "set", "mt1", "--address", "198.18.9.9,territory=eu"],
    &["territory", "rm", "eu"],
    &["cluster", "set", "mt1", "--remove-address", "198.18.9.9"],
    &["territory", "rm", "eu"],
    &["territory", "show", "eu"],
    &[
        "key",
        "add",
        "acme-cli",
        "--zone",
        "example.org",
        "--name",
        "_acme-challenge.*",
        "--allow",
        "update",
        "--algorithm",
        "hmac-sha512",
        "--secret",
        "c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    ],
    &["key", "add", "acme-cli", "--secret", "c2VjcmV0LXNlY3JldC1zZWNyZXQ="],
    &["key", "add", "other", "--zone", "bad..zone"],
    &["key", "add", "other", "--secret", "not base64!"],
    &["key", "list"],
    &["key", "list", "--json"],
    &["key", "rm", "acme-cli"],
    &["key", "rm", "acme-cli"],
    &["ttl", "apply", "--cluster", "mt1", "--ttl", "30", "--dry-run"],
    &["ttl", "apply", "--cluster", "mt1", "--ttl", "30"],
    &["ttl", "apply", "--cluster", "nope", "--ttl", "30"],
    &["ttl", "apply", "--instance", "123456", "--clear"],
    &["ttl", "apply", "--instance", "999", "--ttl", "30"],
    &["ttl", "apply", "--name", "mail.example.net", "--ttl", "90"],
    &["ttl", "apply", "--name", "mail.example.net", "--clear"],
    &["ttl", "apply", "--name", "blog.alice.example.org", "--ttl", "45"],
    &["ttl", "apply", "--name", "nothing.example.org", "--ttl", "5"],
    &["instance", "list"],
    &["zone", "record", "list", "example.net"],
    &["zone", "rm", "example.net"],
    &["zone", "rm", "example.net", "--force"],
    &["zone", "list", "--json"],
    &["instance", "rm", "345678"],
    &["instance", "rm", "345678", "--force"],
    &["cluster", "rm", "mt2"],
    &["cluster", "rm", "mt3"],
    &["cluster", "rm", "mt3"],
    &["domain", "rm", "www.carol.example.org"],
    &["domain", "rm", "www.carol.example.org"],
    &["cluster", "list"],
    &["instance", "list", "--json"],
];

/// Unix times and RFC 3339 times as `<time>`: the two runs may be a second apart.
fn without_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let shape = |at: usize, pattern: &[u8]| {
        bytes.len() >= at + pattern.len()
            && pattern
                .iter()
                .zip(&bytes[at..])
                .all(|(p, b)| if *p == b'9' { b.is_ascii_digit() } else { p == b })
    };
    let (mut out, mut at) = (String::new(), 0);
    while at < bytes.len() {
        let digits = bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if shape(at, b"9999-99-99T99:99:99Z") {
            out.push_str("<time>");
            at += 20;
        } else if digits == 10 && (at == 0 || !bytes[at - 1].is_ascii_digit()) {
            out.push_str("<time>");
            at += 10;
        } else {
            let len = text[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[at..at + len]);
            at += len;
        }
    }
    out
}

/// `instadns --api URL --token-file F` (issue 15): the commands of zones, rules,
/// records, clusters, instances, custom domains, ACME answers, territories and keys act
/// through the HTTP API of a running node and
/// print what they print on the database; a read token cannot write; what the API
/// does not offer says so.
#[test]
fn the_cli_through_the_api_prints_what_it_prints_on_the_database_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let served = demo_db(dir.path());
    the_cli_through_the_api(&served, dir);
}

/// The same with the node on PostgreSQL, against the CLI on SQLite: the API and the
/// other database print the same too.
#[test]
fn the_cli_through_the_api_prints_what_it_prints_on_the_database_postgres() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pg = tests::postgres::PgServer::start();
    cli(&pg.url, &["db", "demo"]);
    the_cli_through_the_api(&pg.url, dir);
}

fn the_cli_through_the_api(served: &str, dir: tempfile::TempDir) {
    let served = served.to_owned();
    let direct_dir = tempfile::tempdir().expect("temporary directory");
    let direct = demo_db(direct_dir.path());
    let token_file = |name: &str, access: &str| {
        let token = cli(&served, &["token", "add", name, "--access", access]);
        let file = direct_dir.path().join(name);
        std::fs::write(&file, token).expect("token file");
        file.to_str().expect("UTF-8").to_owned()
    };
    let (ops, reader) = (token_file("ops", "write"), token_file("reader", "read"));
    let (d, ca) = serve_api(&served, dir, direct_dir.path());
    let url = format!("https://{SERVER_V4}:{API_PORT}");
    let through = |token: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--api", &url, "--token-file", token, "--api-ca", ca.to_str().expect("UTF-8")]);
        let bin = tests::server::instadns_bin();
        tests::server::CliRun::from(ns_exec(&d.rig.client_ns, bin.to_str().expect("UTF-8"), &all))
    };
    eventually("the API answers", Duration::from_secs(10), || {
        through(&reader, &["cluster", "list"]).code == 0
    });

    fn error(stderr: &str) -> Vec<&str> {
        stderr.lines().filter(|l| l.starts_with("instadns: error:")).collect()
    }
    let mut failures = Vec::new();
    let mut failed_on_purpose = 0;
    for args in THROUGH_THE_API {
        let want = tests::server::cli_run(&direct, args);
        let got = through(&ops, args);
        failed_on_purpose += usize::from(want.code != 0);
        if got.code != want.code
            || without_times(&got.stdout) != without_times(&want.stdout)
            || error(&got.stderr) != error(&want.stderr)
        {
            failures.push(format!(
                "{args:?}: on the database {} {:?} {:?}, through the API {} {:?} {:?}",
                want.code, want.stdout, want.stderr, got.code, got.stdout, got.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} commands differ:\n{}",
        failures.len(),
        THROUGH_THE_API.len(),
        failures.join("\n")
    );
    // The table holds refusals of every kind: not found, conflict, invalid (exit 2).
    assert!(failed_on_purpose >= 12, "{failed_on_purpose}");

    // The writes went to the served database, not to a copy of the client's.
    let listed: Value = serde_json::from_str(&cli(&served, &["instance", "list", "--json"])).expect("JSON");
    let ids: Vec<i64> =
        listed.as_array().expect("list").iter().map(|i| i["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, [123456, 234567], "{listed}");
    assert_eq!(cli(&served, &["cluster", "list"]), cli(&direct, &["cluster", "list"]));

    // A read token reads and cannot write; the API's refusal is the CLI's error.
    assert_eq!(
        through(&reader, &["instance", "show", "123456"]).stdout,
        cli(&direct, &["instance", "show", "123456"])
    );
    let refused = through(&reader, &["instance", "add", "1", "--cluster", "mt1"]);
    assert!(refused.code == 1 && refused.stderr.contains("read"), "{} {}", refused.code, refused.stderr);
    assert!(
        tests::server::cli_run(&served, &["instance", "show", "1"]).code == 1,
        "the refused write happened"
    );

    // A key made through the API: its secret printed once, in the BIND clause.
    let made = through(&ops, &["key", "add", "xfr", "--allow", "transfer"]);
    let secret = tests::server::key_secret(&made.stdout);
    assert!(made.code == 0 && secret.len() == 44, "{} {}", made.stdout, made.stderr);
    assert!(cli(&served, &["key", "show", "xfr"]).contains(&secret));

    // What needs the database, and what is wrong with the flags, says what to do.
    for needs_the_database in [
        &["instance", "move", "123456", "--to", "mt1", "--prepare"][..],
        &["zone", "export", "example.org"],
        &["key", "show", "xfr"],
    ] {
        let run = through(&ops, needs_the_database);
        assert!(run.code == 1 && run.stderr.contains("--db"), "{needs_the_database:?}: {}", run.stderr);
    }
    let missing = d.dir.path().join("no-such-token");
    let no_token = through(missing.to_str().expect("UTF-8"), &["cluster", "list"]);
    assert!(no_token.code == 2 && no_token.stderr.contains("--token-file"), "{}", no_token.stderr);
    let out = std::process::Command::new(tests::server::instadns_bin())
        .args(["cluster", "list", "--api", &url])
        .output()
        .expect("instadns");
    assert!(out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("--token-file"));
    let unknown = direct_dir.path().join("unknown");
    std::fs::write(&unknown, "instadns_not-a-token-we-made\n").expect("token file");
    let stranger = through(unknown.to_str().expect("UTF-8"), &["cluster", "list"]);
    assert!(stranger.code == 1 && stranger.stderr.contains("token"), "{}", stranger.stderr);
}
