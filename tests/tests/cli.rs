//! The command line, table-driven: every verb of every noun, run against SQLite and a
//! real PostgreSQL, with the text and `--json` output, the refusals (removing what
//! others depend on), the errors that name the problem, and the exit codes (0 done, 1
//! operational error, 2 usage error).

use serde_json::{Value, json};
use tests::{
    db::TestDb,
    server::{cli, cli_run},
};

/// What a step's stdout must show.
enum Out {
    /// Every string appears in the text.
    Text(&'static [&'static str]),
    /// The JSON document, where every field of `expected` has the expected value (arrays
    /// and objects compared recursively; extra fields allowed).
    Json(Value),
    /// Nothing checked beyond the exit code (errors: stderr is checked instead).
    Any,
}

/// One CLI run: arguments, exit code, stdout, and what stderr must name.
struct Step {
    args: Vec<String>,
    code: i32,
    out: Out,
    stderr: &'static [&'static str],
}

fn ok(args: &str, out: Out) -> Step {
    Step { args: split(args), code: 0, out, stderr: &[] }
}

/// An operational error (exit 1) whose message names `what`.
fn fails(args: &str, what: &'static [&'static str]) -> Step {
    Step { args: split(args), code: 1, out: Out::Any, stderr: what }
}

/// A usage error (exit 2) whose message names `what`.
fn usage(args: &str, what: &'static [&'static str]) -> Step {
    Step { args: split(args), code: 2, out: Out::Any, stderr: what }
}

/// Splits on spaces, keeping 'quoted words' together.
fn split(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut word = String::new();
    for c in args.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether `got` holds every field of `expected` with its value.
fn matches(got: &Value, expected: &Value) -> bool {
    match (got, expected) {
        (Value::Object(g), Value::Object(e)) => {
            e.iter().all(|(k, v)| g.get(k).is_some_and(|gv| matches(gv, v)))
        }
        (Value::Array(g), Value::Array(e)) => {
            g.len() == e.len() && g.iter().zip(e).all(|(g, e)| matches(g, e))
        }
        (g, e) => g == e,
    }
}

/// A daemon configuration whose instances come from the platform's database.
fn instance_db_config() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("instadns-cli-{}-instance-db.toml", std::process::id()));
    std::fs::write(
        &path,
        "[instance_db]\nurl = \"postgres://platform@localhost/platform\"\nsql = \"SELECT cluster FROM apps WHERE id = $1\"\n",
    )
    .expect("writing a configuration");
    path
}

fn table() -> Vec<Step> {
    use Out::{Json, Text};
    vec![
        // The demo, loaded into the empty database; only into an empty one.
        ok("db migrate", Text(&["schema up to date"])),
        fails("db demo", &["already holds zones", "example.com."]),
        // Zones.
        ok(
            "zone list",
            Text(&["example.com.  SOA ns1.example.com.", "rule {service}-{id}.apps -> service (TTL 300)"]),
        ),
        ok(
            "zone add shop.test --ns ns1.shop.test --ns ns2.shop.test --ttl 600 --minimum 30 --rule '{id}=host:45'",
            Text(&["zone shop.test added"]),
        ),
        fails("zone add shop.test --ns ns1.shop.test", &["zone shop.test. already exists"]),
        usage("zone add bad.test --ns ns1.bad.test --rule '{nope}=host'", &["--rule", "{nope}"]),
        usage("zone add bad.test --ns ns1.bad.test --rule '{id}=cname'", &["--rule", "rule kind \"cname\""]),
        usage("zone add a..b --ns ns1.example.com", &["zone apex", "a..b"]),
        usage("zone add x.test", &["--ns"]),
        ok(
            "zone set shop.test --minimum 20 --add-ns ns3.shop.test --remove-ns ns2.shop.test",
            Text(&["updated"]),
        ),
        fails("zone set shop.test --remove-ns nope.shop.test", &["name server nope.shop.test."]),
        ok(
            "zone show shop.test --json",
            Json(json!({
                "apex": "shop.test.", "soa_minimum": 20, "soa_ttl": 600, "ns": ["ns1.shop.test.", "ns3.shop.test."],
                "rules": [{"pattern": "{id}", "kind": "host", "ttl": 45}], "records": 0
            })),
        ),
        ok(
            "zone show shop.test",
            Text(&["shop.test.  SOA", "minimum 20", "0 static record(s)", "names: all known"]),
        ),
        ok("zone show shop.test --json", Json(json!({"apex": "shop.test.", "enumerable": true}))),
        // With instances from the platform's database, a zone with rules cannot be listed.
        ok(
            &format!("zone show shop.test --json --config {}", instance_db_config().display()),
            Json(json!({"apex": "shop.test.", "enumerable": false})),
        ),
        ok(
            &format!("zone list --config {}", instance_db_config().display()),
            Text(&["names: not enumerable (instances come from [instance_db]"]),
        ),
        fails("zone show nope.test", &["zone nope.test.", "not found"]),
        // Rules.
        ok(
            "zone rule add shop.test {name}.{owner} host --ttl 30",
            Text(&["rule {name}.{owner} -> host added"]),
        ),
        fails("zone rule add shop.test {name}.{owner} host", &["already has a rule", "zone rule set"]),
        ok("zone rule set shop.test {name}.{owner} host --ttl 40", Text(&["now host (TTL 40)"])),
        ok(
            "zone rule list shop.test --json",
            Json(json!([
                {"pattern": "{id}", "kind": "host", "ttl": 45},
                {"pattern": "{name}.{owner}", "kind": "host", "ttl": 40}
            ])),
        ),
        ok("zone rule list shop.test", Text(&["{name}.{owner} -> host (TTL 40)"])),
        usage("zone rule add shop.test {id}.{id} host", &["{id}"]),
        ok("zone rule rm shop.test {name}.{owner}", Text(&["removed"])),
        fails("zone rule rm shop.test {name}.{owner}", &["rule", "not found"]),
        // Static records.
        ok("zone record add shop.test www.shop.test A 192.0.2.80 --ttl 90", Text(&["record added"])),
        ok("zone record add shop.test www.shop.test A 192.0.2.81", Text(&["record added"])),
        usage("zone record add shop.test www.shop.test A not-an-address", &["not valid A data"]),
        usage("zone record add shop.test www.example.org A 192.0.2.1", &["outside zone shop.test."]),
        usage("zone record add shop.test www.shop.test SOA x", &["zone definition"]),
        ok(
            "zone record list shop.test --json",
            Json(json!([
                {"name": "www.shop.test.", "type": "A", "ttl": 90, "data": "192.0.2.80"},
                {"name": "www.shop.test.", "type": "A", "ttl": 600, "data": "192.0.2.81"}
            ])),
        ),
        ok("zone record show shop.test www.shop.test", Text(&["www.shop.test. 90 IN A 192.0.2.80"])),
        ok("zone record rm shop.test www.shop.test A 192.0.2.81", Text(&["1 record(s) removed"])),
        fails("zone record rm shop.test www.shop.test AAAA", &["not found"]),
        ok("zone export shop.test", Text(&["shop.test. 600 IN SOA", "www.shop.test. 90 IN A 192.0.2.80"])),
        // RFC 1034 section 3.6.2: a CNAME owns its name.
        usage(
            "zone record add shop.test www.shop.test CNAME other.shop.test.",
            &["www.shop.test. CNAME", "already has A data"],
        ),
        ok("zone record add shop.test alias.shop.test CNAME www.shop.test.", Text(&["record added"])),
        usage("zone record add shop.test alias.shop.test TXT x", &["alias.shop.test. TXT", "has a CNAME"]),
        usage("zone record add shop.test alias.shop.test CNAME other.shop.test.", &["at most one CNAME"]),
        usage("zone record add shop.test shop.test CNAME other.shop.test.", &["already has SOA data"]),
        ok("zone record add shop.test t.shop.test TXT 'two words'", Text(&["record added"])),
        ok("zone record show shop.test t.shop.test", Text(&["t.shop.test. 600 IN TXT \"two\" \"words\""])),
        ok("zone record rm shop.test alias.shop.test CNAME", Text(&["1 record(s) removed"])),
        ok("zone record rm shop.test t.shop.test TXT", Text(&["1 record(s) removed"])),
        // Removing a zone that holds data needs --force.
        fails("zone rm shop.test", &["still holds 1 name rule(s), 1 static record(s)", "--force"]),
        ok("zone rm shop.test --force", Text(&["zone shop.test removed"])),
        fails("zone rm shop.test", &["not found"]),
        // Clusters.
        usage("cluster add mt4 --order sideways", &["--order", "sideways"]),
        usage("cluster add mt4 --check udp:53", &["--check", "check kind \"udp\""]),
        usage("cluster add mt4 --address 192.0.2.4,weight=x", &["--address", "weight"]),
        usage("cluster add 'bad name'", &["cluster \"bad name\""]),
        ok(
            "cluster add mt3 --service ws=ws-mt3.example.com --address 192.0.2.3 --address 2001:db8::3,queue=1 --order rotate",
            Text(&["cluster mt3 added"]),
        ),
        fails("cluster add mt3", &["cluster \"mt3\" already exists"]),
        usage(
            "cluster set mt3 --check http:8080/healthz --check-timeout-ms 9000 --check-interval-ms 1000",
            &["check timeout 9000 ms"],
        ),
        ok(
            "cluster set mt3 --pick one --fallback last --check http:8080/healthz --rise 1",
            Text(&["cluster mt3 updated"]),
        ),
        ok(
            "cluster show mt3 --json",
            Json(json!({
                "name": "mt3", "order": "rotate", "pick": "one", "fallback": "last", "instances": 0,
                "services": [{"service": "ws", "target": "ws-mt3.example.com."}],
                "addresses": [
                    {"ip": "192.0.2.3", "weight": 1, "queue": 0, "territory": null},
                    {"ip": "2001:db8::3", "weight": 1, "queue": 1, "territory": null}
                ],
                "check": {"kind": "http", "port": 8080, "path": "/healthz", "expect_status": 200, "rise": 1, "fall": 3}
            })),
        ),
        ok(
            "cluster show mt3",
            Text(&[
                "mt3  order rotate  pick one  fallback last",
                "check http:8080/healthz expect 200",
                "address 2001:db8::3,queue=1",
            ]),
        ),
        ok("cluster list --json", Json(json!([{"name": "mt1"}, {"name": "mt2"}, {"name": "mt3"}]))),
        ok("cluster list", Text(&["mt1  order fixed", "service ws -> ws-mt1.example.com."])),
        fails("cluster rm mt1", &["cluster mt1 still hosts 1 instance(s)", "instance move"]),
        fails("cluster show nope", &["cluster \"nope\"", "not found"]),
        // Instances.
        ok(
            "instance add 777 --cluster mt3 --name app --owner carol --ttl 20",
            Text(&["instance 777 added on cluster mt3"]),
        ),
        fails("instance add 777 --cluster mt3", &["instance 777 already exists"]),
        fails("instance add 778 --cluster nope", &["cluster \"nope\""]),
        fails("instance add 779 --cluster mt3 --name app --owner carol", &["app.carol is taken"]),
        usage("instance add 780 --cluster mt3 --name App! --owner carol", &["instance name \"App!\""]),
        usage("instance add 781 --cluster mt3 --name solo", &["--owner"]),
        usage("instance add -5 --cluster mt3", &["-5", "ID"]),
        ok("instance set 777 --ttl 25", Text(&["instance 777 updated"])),
        usage("instance set 777", &["--ttl"]),
        ok("instance move 777 --to mt1", Text(&["moved from mt3 to mt1"])),
        fails("instance move 777 --to mt1", &["already on cluster"]),
        ok(
            "instance show 777 --json",
            Json(json!({
                "id": 777, "name": "app", "owner": "carol", "ttl": 25, "cluster": "mt1", "domains": [],
                "tombstones": [{"from_cluster": "mt3", "to_cluster": "mt1"}]
            })),
        ),
        ok(
            "instance show 777",
            Text(&[
                "instance 777",
                "cluster  mt1",
                "name     app.carol",
                "ttl      25s",
                "moved    mt3 -> mt1",
            ]),
        ),
        ok(
            "instance list --cluster mt1 --json",
            Json(json!([{"id": 777, "cluster": "mt1"}, {"id": 123456, "cluster": "mt1"}])),
        ),
        ok("instance list --after 777 --limit 1", Text(&["123456  mt1  blog.alice  -"])),
        fails("instance show 4242", &["instance 4242", "not found"]),
        // Territories.
        usage("territory add eu --prefix 198.18.0.0/16 --prefix fd00:eu::/32", &["--prefix", "fd00:eu::/32"]),
        ok("territory add eu --prefix 198.18.0.0/16", Text(&["territory eu added with 1 network(s)"])),
        fails("territory add eu", &["territory \"eu\" already exists"]),
        usage("territory add us --prefix 198.18.1.0/15", &["host bits"]),
        ok("territory set eu --prefix 2001:db8:e::/48", Text(&["territory eu updated"])),
        ok(
            "territory show eu --json",
            Json(
                json!({"name": "eu", "index": 1, "prefixes": ["198.18.0.0/16", "2001:db8:e::/48"], "addresses": 0}),
            ),
        ),
        // Indices are stable: removing a territory shifts no other; a new one takes the
        // lowest free index.
        ok("territory add us --prefix 198.19.0.0/16", Text(&["territory us added"])),
        ok("territory add ap --prefix 198.18.200.0/24", Text(&["territory ap added"])),
        ok("territory rm us", Text(&["territory us removed"])),
        ok("territory show ap --json", Json(json!({"name": "ap", "index": 3}))),
        ok("territory add sa --prefix 198.18.201.0/24", Text(&["territory sa added"])),
        ok("territory show sa --json", Json(json!({"name": "sa", "index": 2}))),
        ok("territory rm sa", Text(&["removed"])),
        ok("territory rm ap", Text(&["removed"])),
        ok("cluster set mt3 --address 192.0.2.33,territory=eu", Text(&["updated"])),
        ok("territory list", Text(&["eu  2 network(s)", "    198.18.0.0/16"])),
        fails("territory rm eu", &["used by 1 cluster address(es)"]),
        ok("cluster set mt3 --remove-address 192.0.2.33", Text(&["updated"])),
        ok("territory rm eu", Text(&["territory eu removed"])),
        ok("territory list --json", Json(json!([]))),
        // Custom domains.
        ok(
            "domain add www.customer.example.org --instance 777",
            Text(&["www.customer.example.org -> instance 777"]),
        ),
        fails("domain add www.customer.example.org --instance 123456", &["already belongs to instance 777"]),
        fails("domain add other.example.org --instance 4242", &["instance 4242"]),
        usage(
            "domain add www.customer.com --instance 777",
            &["outside every zone", "zone add customer.com", "CNAME"],
        ),
        ok(
            "domain show www.customer.example.org --json",
            Json(json!({"hostname": "www.customer.example.org.", "instance": 777})),
        ),
        ok("domain set www.customer.example.org --instance 123456", Text(&["-> instance 123456"])),
        ok(
            "domain list --json",
            Json(json!([{"hostname": "www.customer.example.org.", "instance": 123456}])),
        ),
        ok("domain list --instance 777", Text(&[])),
        ok("domain set www.customer.example.org --instance 777", Text(&["-> instance 777"])),
        // An instance with custom domains goes only with --force.
        fails("instance rm 777", &["still has 1 custom domain(s)", "www.customer.example.org.", "--force"]),
        // ACME challenges.
        ok(
            "acme set app.carol.example.org --txt token-one",
            Text(&["_acme-challenge.app.carol.example.org set"]),
        ),
        ok("acme set app.carol.example.org --txt token-two --expires 3600", Text(&["set"])),
        usage("acme set app.carol.example.org --txt a --cname b.example.net", &["--cname"]),
        usage("acme set app.carol.example.org", &["--txt"]),
        ok(
            "acme show app.carol.example.org --json",
            Json(json!([
                {"name": "app.carol.example.org.", "kind": "txt", "value": "token-one", "ttl": 60, "expires_at": null},
                {"name": "app.carol.example.org.", "kind": "txt", "value": "token-two", "ttl": 60}
            ])),
        ),
        ok("acme list", Text(&["_acme-challenge.app.carol.example.org. 60 txt token-one", "expires"])),
        ok("acme rm app.carol.example.org --txt token-one", Text(&["1 challenge answer(s) removed"])),
        ok("acme set app.carol.example.org --cname app-carol.acme.example.net", Text(&["set"])),
        ok("acme list --json", Json(json!([{"kind": "cname", "value": "app-carol.acme.example.net."}]))),
        ok("acme rm app.carol.example.org", Text(&["1 challenge answer(s) removed"])),
        fails("acme rm app.carol.example.org", &["challenge for app.carol.example.org.", "not found"]),
        // TSIG keys.
        ok(
            "key add certbot --zone example.org --name '_acme-challenge.*' --allow update",
            Text(&["key \"certbot\" {", "algorithm hmac-sha256;", "secret \"", "update in example.org."]),
        ),
        fails("key add certbot", &["key certbot. already exists", "key rm"]),
        fails("key add other --zone nope.test", &["zone nope.test.", "not found"]),
        usage("key add other --name 'a.*.b'", &["name pattern", "a.*.b"]),
        usage("key add other --algorithm hmac-md5", &["hmac-md5"]),
        usage("key add other --secret 'not base64!'", &["base64"]),
        ok(
            "key add xfr --algorithm hmac-sha512 --allow transfer --secret c2VjcmV0",
            Text(&["algorithm hmac-sha512;", "secret \"c2VjcmV0\";"]),
        ),
        ok(
            "key list --json",
            Json(json!([
                {"name": "certbot.", "algorithm": "hmac-sha256", "zones": ["example.org."],
                 "names": ["_acme-challenge.*"], "operations": ["update"]},
                {"name": "xfr.", "algorithm": "hmac-sha512", "zones": [], "names": [], "operations": ["transfer"]}
            ])),
        ),
        ok("key show xfr", Text(&["secret \"c2VjcmV0\";"])),
        ok("key rm xfr", Text(&["key xfr removed"])),
        fails("key show xfr", &["key xfr.", "not found"]),
        // Removing what depends on nothing any more.
        ok("instance rm 777 --force", Text(&["instance 777 removed"])),
        fails("instance rm 777", &["instance 777", "not found"]),
        ok("cluster rm mt3", Text(&["cluster mt3 removed"])),
        fails("cluster rm mt3", &["cluster \"mt3\"", "not found"]),
        // TTL management.
        ok(
            "ttl apply --cluster mt2 --ttl 7 --dry-run",
            Text(&["would set TTL of 1 instance(s) on cluster mt2"]),
        ),
        usage("ttl apply --cluster mt2", &["--ttl"]),
        usage("ttl apply --ttl 5", &["--cluster"]),
        // What the server would answer.
        ok("query ws-123456.apps.example.com", Text(&["NOERROR", "CNAME", "ws-mt1.example.com."])),
        ok("query nope.example.org TXT", Text(&["NXDOMAIN"])),
        usage("query example.org NOTATYPE", &["TYPE", "NOTATYPE"]),
        // Usage errors clap finds.
        usage("zone frobnicate", &["frobnicate"]),
        usage("cluster add", &["NAME"]),
        usage("instance add notanumber --cluster mt1", &["notanumber"]),
    ]
}

fn run_table(db: &TestDb) {
    let url = db.url();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(db.open_empty());
    // The demo data, on request only: the database starts empty.
    assert_eq!(
        cli(&url, &["zone", "list", "--json"]).trim(),
        "[]",
        "{}: a new database has no zones",
        db.name()
    );
    assert!(cli(&url, &["db", "demo"]).contains("demo data loaded"));
    let mut failures = Vec::new();
    for step in table() {
        let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
        let run = cli_run(&url, &args);
        let shown = format!("instadns {}", step.args.join(" "));
        if run.code != step.code {
            failures.push(format!(
                "{shown}: exit {} (expected {})\n  stdout: {}\n  stderr: {}",
                run.code, step.code, run.stdout, run.stderr
            ));
            continue;
        }
        for what in step.stderr {
            if !run.stderr.contains(what) {
                failures.push(format!("{shown}: stderr lacks {what:?}: {}", run.stderr));
            }
        }
        match &step.out {
            Out::Text(parts) => {
                for part in *parts {
                    if !run.stdout.contains(part) {
                        failures.push(format!("{shown}: stdout lacks {part:?}:\n{}", run.stdout));
                    }
                }
            }
            Out::Json(expected) => match serde_json::from_str::<Value>(&run.stdout) {
                Ok(got) if matches(&got, expected) => {}
                Ok(got) => failures.push(format!("{shown}: JSON {got} does not hold {expected}")),
                Err(e) => failures.push(format!("{shown}: not JSON ({e}): {}", run.stdout)),
            },
            Out::Any => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {} steps failed:\n{}",
        db.name(),
        failures.len(),
        table().len(),
        failures.join("\n")
    );
}

#[test]
fn every_verb_of_every_noun_on_sqlite() {
    run_table(&TestDb::sqlite());
}

#[test]
fn every_verb_of_every_noun_on_postgresql() {
    run_table(&TestDb::postgres());
}

/// A command on a database path that does not exist creates an empty database (no
/// demo data: a typo or a missing mount must never serve example.com); `db demo` loads
/// the demo on request.
#[test]
fn a_missing_database_path_starts_empty_and_db_demo_loads_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/new.sqlite");
    let db = path.to_str().unwrap();
    assert!(!path.exists());
    assert_eq!(cli(db, &["zone", "list"]), "", "no zones");
    assert!(path.exists(), "the command created the database");
    assert_eq!(cli(db, &["zone", "list", "--json"]).trim(), "[]");
    let refused = cli(db, &["query", "ws-123456.apps.example.com"]);
    assert!(refused.contains("REFUSED"), "an empty database answers nothing: {refused}");
    assert!(cli(db, &["db", "demo"]).contains("demo data loaded"));
    let zones = cli(db, &["zone", "list"]);
    assert!(zones.contains("example.com.") && zones.contains("example.org."), "{zones}");
    let answer = cli(db, &["query", "ws-123456.apps.example.com"]);
    assert!(answer.contains("ws-mt1.example.com."), "{answer}");
}

/// Writers on one SQLite file wait for each other within the busy timeout: CLI writers
/// started together, while another process holds the write lock for a second and then
/// commits, all succeed (a deferred transaction that read first used to fail at once
/// with "database is locked" when another writer committed after its read).
#[test]
fn concurrent_writers_on_sqlite_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sqlite");
    let db = path.to_str().unwrap().to_owned();
    cli(&db, &["db", "demo"]);
    let holder = {
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE; UPDATE zones SET id = id WHERE 0;").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1000));
            conn.execute_batch("COMMIT").unwrap();
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let writers: Vec<_> = (0..8)
        .map(|k| {
            let db = db.clone();
            std::thread::spawn(move || {
                let name = format!("busy{k}.example.org");
                cli_run(
                    &db,
                    &["zone", "record", "add", "example.org", &name, "A", &format!("192.0.2.{}", 10 + k)],
                )
            })
        })
        .collect();
    let runs: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    holder.join().unwrap();
    for (k, run) in runs.iter().enumerate() {
        assert_eq!(run.code, 0, "writer {k} failed: {}", run.stderr);
    }
    let listed = cli(&db, &["zone", "record", "list", "example.org"]);
    for k in 0..8 {
        assert!(listed.contains(&format!("busy{k}.example.org")), "record {k} missing:\n{listed}");
    }
}
