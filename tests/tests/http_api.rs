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
    let authority = Authority::new(dir.path(), "api-ca");
    let (cert, key) = authority.issue_server("api", &SERVER_V4.to_string());
    let listen = format!("{SERVER_V4}:{API_PORT}");
    let tokens = [
        String::new(),
        cli(&db, &["token", "add", "reader"]).trim().to_owned(),
        cli(&db, &["token", "add", "ops", "--access", "write"]).trim().to_owned(),
        cli(&db, &["token", "add", "zoned", "--access", "write", "--zone", "example.org"]).trim().to_owned(),
        "instadns_not-a-token-we-made".to_owned(),
    ];
    assert!(tokens[1..4].iter().all(|t| t.starts_with("instadns_") && t.len() > 40), "{tokens:?}");
    let d = Deployment::start_on(
        &db,
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
    let api = Api { d: &d, ca: authority.cert() };
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
    assert_eq!(paths, 21, "{}", doc.body);
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
