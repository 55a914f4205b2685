//! One battery of store checks, run against every store: an embedded SQLite file and a
//! real PostgreSQL server started for the test. Both must give the same answers, the
//! same management behaviour and the same change log.

use std::sync::{Arc, atomic::Ordering};

use hickory_proto::{
    op::Message,
    rr::{Name, RecordType},
};
use instadns::{
    control::Follower,
    engine::{AnswerCache, Handler, Transport},
    model::{AcmeKind, AddressOrder, AddressSpec, time::unix_now},
    protocol::presentation::presentation,
    resolution::Resolver,
    store::{
        AcmeChallenge, ByoInstances, ClusterUpdate, Database, DbLocation, NewZone, StoreError,
        changes::Change,
    },
};
use tests::{db::TestDb, dns::QueryBuilder, postgres::PgServer};

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// "RCODE | record; record" for a resolution, records in presentation form.
async fn answer(db: &Database, qname: &str, qtype: RecordType) -> String {
    let resolver = Resolver::new(db.clone()).await.expect("resolver");
    let r = resolver.resolve(&name(qname), qtype).await.expect("resolve");
    let records: Vec<String> = r
        .sections
        .answers
        .iter()
        .map(|r| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), presentation(&r.data)))
        .collect();
    format!("{} | {}", r.rcode, records.join("; "))
}

async fn demo_answers(db: &Database) {
    let a = answer(db, "ws-123456.apps.example.com.", RecordType::A).await;
    assert_eq!(
        a,
        "0 | ws-123456.apps.example.com. 300 IN CNAME ws-mt1.example.com.; ws-mt1.example.com. 300 IN A 192.0.2.11"
    );
    assert_eq!(
        answer(db, "blog.alice.example.org.", RecordType::AAAA).await,
        "0 | blog.alice.example.org. 60 IN AAAA 2001:db8::1"
    );
    assert_eq!(
        answer(db, "234567.example.org.", RecordType::A).await,
        "0 | 234567.example.org. 60 IN A 192.0.2.2"
    );
    assert_eq!(answer(db, "alice.example.org.", RecordType::A).await, "0 | ", "empty non-terminal: NODATA");
    assert_eq!(answer(db, "apps.example.com.", RecordType::A).await, "0 | ", "empty non-terminal: NODATA");
    assert_eq!(answer(db, "nope.example.org.", RecordType::A).await, "3 | ", "NXDOMAIN");
    assert_eq!(answer(db, "ws-1.apps.example.com.", RecordType::A).await, "3 | ", "no instance 1");
    assert_eq!(answer(db, "example.net.", RecordType::A).await, "5 | ", "REFUSED outside our zones");
    assert!(answer(db, "example.org.", RecordType::NS).await.contains("IN NS ns1.example.com."));
}

async fn management(db: &Database) {
    // Zones.
    let zone = NewZone {
        apex: "Example.NET".into(),
        soa_mname: "ns1.example.com".into(),
        soa_rname: "hostmaster.example.net".into(),
        ns: vec!["ns1.example.com".into(), "ns2.example.com".into()],
        soa_minimum: 30,
        ttl: 600,
        rules: vec!["{id}=host:45".parse().unwrap()],
    };
    db.add_zone(&zone).await.expect("zone add");
    assert!(matches!(db.add_zone(&zone).await, Err(StoreError::Conflict(_))), "duplicate zone");
    // A bad rule cannot reach the store: rules are typed (the CLI test checks the
    // error names --rule and the pattern).
    let e = "{nope}=host".parse::<instadns::model::rule::RuleSpec>().unwrap_err().to_string();
    assert!(e.contains("{nope}"), "the error names the bad rule: {e}");
    let e = db.add_zone(&NewZone { apex: "a..b".into(), ..zone.clone() }).await.unwrap_err().to_string();
    assert!(e.contains("zone apex") && e.contains("a..b"), "{e}");
    let zones = db.list_zones().await.unwrap();
    let net = zones.iter().find(|z| z.zone.apex == "example.net.").expect("listed, lower-cased");
    assert_eq!((net.ns.len(), net.rules[0].pattern.as_str(), net.zone.soa_minimum), (2, "{id}", 30));

    // Clusters.
    let update = ClusterUpdate {
        set_services: vec![("ws".into(), "ws-mt3.example.com".into())],
        add_addresses: vec![
            "192.0.2.3".parse::<AddressSpec>().unwrap(),
            "192.0.2.33".parse().unwrap(),
            "2001:db8::3".parse().unwrap(),
        ],
        ..Default::default()
    };
    db.add_cluster("mt3", &update).await.expect("cluster add");
    assert!(matches!(db.add_cluster("mt3", &update).await, Err(StoreError::Conflict(_))));
    assert!(db.add_cluster("bad name", &update).await.unwrap_err().to_string().contains("\"bad name\""));
    // An unknown order cannot reach the store (the CLI test checks --order's error).
    assert!("sideways".parse::<AddressOrder>().unwrap_err().to_string().contains("sideways"));
    let remove = ClusterUpdate {
        remove_addresses: vec!["192.0.2.33".parse().unwrap()],
        order: Some(AddressOrder::Rotate),
        ..Default::default()
    };
    db.set_cluster("mt3", &remove).await.unwrap();
    let mt3 = db.list_clusters().await.unwrap().into_iter().find(|c| c.cluster.name == "mt3").unwrap();
    let addresses: Vec<String> = mt3.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addresses, ["192.0.2.3", "2001:db8::3"]);
    assert_eq!(mt3.cluster.order, AddressOrder::Rotate);
    let services: Vec<(String, String)> =
        mt3.services.iter().map(|s| (s.service.clone(), s.target.clone())).collect();
    assert_eq!(services, [("ws".to_owned(), "ws-mt3.example.com.".to_owned())]);
    assert!(matches!(db.set_cluster("nope", &remove).await, Err(StoreError::NotFound(_))));

    // Instances.
    db.add_instance(777, "mt3", Some("app"), Some("carol"), Some(20)).await.expect("instance add");
    assert!(matches!(db.add_instance(777, "mt3", None, None, None).await, Err(StoreError::Conflict(_))));
    assert!(matches!(db.add_instance(778, "nope", None, None, None).await, Err(StoreError::NotFound(_))));
    assert!(
        matches!(
            db.add_instance(779, "mt3", Some("app"), Some("carol"), None).await,
            Err(StoreError::Conflict(_))
        ),
        "name taken"
    );
    assert!(
        db.add_instance(780, "mt3", Some("App!"), Some("carol"), None)
            .await
            .unwrap_err()
            .to_string()
            .contains("instance name \"App!\"")
    );
    assert_eq!(
        answer(db, "app.carol.example.org.", RecordType::A).await,
        "0 | app.carol.example.org. 20 IN A 192.0.2.3"
    );
    assert_eq!(answer(db, "777.example.net.", RecordType::A).await, "0 | 777.example.net. 20 IN A 192.0.2.3");
    let t = db.move_instance(777, "mt1").await.expect("move");
    assert_eq!((t.from_cluster.as_str(), t.to_cluster.as_str()), ("mt3", "mt1"));
    assert!(matches!(db.move_instance(777, "mt1").await, Err(StoreError::Conflict(_))), "already there");
    assert!(matches!(db.move_instance(1, "mt1").await, Err(StoreError::NotFound(_))));
    assert_eq!(
        answer(db, "ws-777.apps.example.com.", RecordType::CNAME).await,
        "0 | ws-777.apps.example.com. 20 IN CNAME ws-mt1.example.com."
    );
    let info = db.show_instance(777).await.unwrap();
    assert_eq!((info.cluster.as_str(), info.tombstones.len()), ("mt1", 1));
    let tomb = answer(db, "_moved.777.example.org.", RecordType::TXT).await;
    assert!(tomb.contains("from=mt3 to=mt1 moved_at=20"), "tombstone TXT: {tomb}");

    // Custom domains.
    db.add_domain("WWW.Customer.example.org", 777).await.expect("domain add");
    assert!(matches!(db.add_domain("www.customer.example.org", 123456).await, Err(StoreError::Conflict(_))));
    assert!(matches!(db.add_domain("x.example.org", 4242).await, Err(StoreError::NotFound(_))));
    assert_eq!(
        answer(db, "www.customer.example.org.", RecordType::A).await,
        "0 | www.customer.example.org. 20 IN A 192.0.2.1"
    );
    assert_eq!(db.show_instance(777).await.unwrap().domains, ["www.customer.example.org."]);
    db.remove_domain("www.customer.example.org").await.unwrap();
    assert_eq!(answer(db, "www.customer.example.org.", RecordType::A).await, "3 | ");

    // ACME DNS-01.
    let txt = |value: &str, expires_at| AcmeChallenge {
        name: "app.carol.example.org".into(),
        kind: AcmeKind::Txt,
        value: value.into(),
        ttl: 60,
        expires_at,
    };
    db.set_acme(&txt("one", None)).await.unwrap();
    db.set_acme(&txt("two", Some(unix_now() + 30))).await.unwrap();
    db.set_acme(&txt("gone", Some(unix_now() - 1))).await.unwrap();
    let a = answer(db, "_acme-challenge.app.carol.example.org.", RecordType::TXT).await;
    assert!(
        a.contains("IN TXT \"one\"") && a.contains("IN TXT \"two\"") && !a.contains("gone"),
        "live values only: {a}"
    );
    assert!(
        a.contains(" 30 IN TXT \"two\"") || a.contains(" 29 IN TXT \"two\""),
        "TTL capped by the expiry: {a}"
    );
    let delegate =
        AcmeChallenge { kind: AcmeKind::Cname, value: "app-carol.acme.example.net".into(), ..txt("", None) };
    db.set_acme(&delegate).await.unwrap();
    assert_eq!(
        answer(db, "_acme-challenge.app.carol.example.org.", RecordType::TXT).await,
        "3 | _acme-challenge.app.carol.example.org. 60 IN CNAME app-carol.acme.example.net.",
        "CNAME delegation replaces the TXT values; the target is in our zone example.net but does not exist"
    );
    assert_eq!(db.clear_acme("app.carol.example.org", None).await.unwrap(), 1);
    assert!(matches!(db.clear_acme("app.carol.example.org", None).await, Err(StoreError::NotFound(_))));

    db.remove_instance(777, false).await.unwrap();
    assert!(matches!(db.remove_instance(777, false).await, Err(StoreError::NotFound(_))));
    assert_eq!(answer(db, "app.carol.example.org.", RecordType::A).await, "3 | ");
}

async fn change_log(db: &Database) {
    let cursor = db.change_cursor().await.unwrap();
    db.add_instance(4242, "mt2", Some("web"), Some("dave"), None).await.unwrap();
    db.move_instance(4242, "mt1").await.unwrap();
    db.add_domain("shop.dave.example.org", 4242).await.unwrap();
    db.remove_instance(4242, true).await.unwrap();
    let changes: Vec<(String, String, String, Option<String>)> = db
        .changes_since(cursor, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|Change { table, key, op, detail, .. }| {
            let op = match op {
                instadns::store::changes::ChangeOp::Insert => "I",
                instadns::store::changes::ChangeOp::Update => "U",
                instadns::store::changes::ChangeOp::Delete => "D",
                instadns::store::changes::ChangeOp::Truncate => "T",
            };
            (table.as_str().to_owned(), key, op.to_owned(), detail)
        })
        .collect();
    let has = |t: &str, k: &str, op: &str, d: Option<&str>| {
        changes.iter().any(|c| c.0 == t && c.1 == k && c.2 == op && c.3.as_deref() == d)
    };
    assert!(has("instances", "4242", "I", Some("dave web")), "{changes:?}");
    assert!(has("tombstones", "4242", "I", None), "{changes:?}");
    assert!(has("instances", "4242", "U", Some("dave web")), "{changes:?}");
    assert!(has("domains", "4242", "I", Some("shop.dave.example.org.")), "{changes:?}");
    assert!(has("domains", "4242", "D", Some("shop.dave.example.org.")), "cascade logged: {changes:?}");
    assert!(has("instances", "4242", "D", Some("dave web")), "{changes:?}");
}

/// The log's bounds: pruning remembers the newest id it deleted (a follower older than
/// it missed changes), changes are read by sparse ids, and the bounds survive a log
/// pruned empty.
async fn change_log_pruning(db: &Database) {
    db.add_instance(4343, "mt2", None, None, None).await.unwrap();
    db.move_instance(4343, "mt1").await.unwrap();
    let (newest, pruned_before) = db.log_bounds().await.unwrap();
    assert_eq!(newest, db.change_cursor().await.unwrap());
    assert!(pruned_before < newest);
    let ids = db.newest_change_ids(3).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let sparse = [ids[2], ids[0], newest + 1000];
    let found: Vec<i64> = db.changes_by_id(&sparse).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(found, [ids[2], ids[0]], "oldest first, ids without a row left out");

    let pruned = db.prune_changes(std::time::Duration::ZERO).await.unwrap();
    assert!(pruned >= 2, "{pruned}");
    assert_eq!(db.log_bounds().await.unwrap(), (0, newest), "empty log, pruned through the newest");
    assert!(db.changes_since(0, 10).await.unwrap().is_empty());
    // Pruning an empty log keeps the mark; new changes go on numbering after it.
    db.prune_changes(std::time::Duration::ZERO).await.unwrap();
    db.remove_instance(4343, true).await.unwrap();
    let (after, through) = db.log_bounds().await.unwrap();
    assert_eq!(through, newest);
    assert!(after > newest);
}

/// Answers cached by the server are replaced in place after a change (the next query
/// is a cache hit with the new answer), negative answers included.
async fn invalidation(db: &Database) {
    let resolver = Arc::new(Resolver::new(db.clone()).await.unwrap());
    let cache = Arc::new(AnswerCache::new(1 << 16, None));
    let handler = Arc::new(Handler::new(resolver, cache, dns_common::limits::DEFAULT_EDNS_PAYLOAD));
    let follower = Follower::new(db.clone(), handler.clone());
    let ask = |qname: &'static str| {
        let handler = handler.clone();
        async move {
            let r = handler
                .handle(
                    &QueryBuilder::new(qname, RecordType::A).bytes(),
                    Transport::Udp,
                    [198, 18, 0, 2].into(),
                )
                .await
                .unwrap();
            Message::from_vec(&r).unwrap()
        }
    };
    let target = |m: &Message| m.answers.first().map(|r| r.data.to_string()).unwrap_or_default();
    let catch_up = |cursor: i64| {
        let (db, follower) = (db.clone(), &follower);
        async move {
            let changes = db.changes_since(cursor, 1000).await.unwrap();
            follower.apply(&changes).await;
        }
    };

    let cursor = db.change_cursor().await.unwrap();
    assert_eq!(target(&ask("ws-123456.apps.example.com").await), "ws-mt1.example.com.");
    assert_eq!(ask("ws-5150.apps.example.com").await.metadata.response_code.low(), 3, "NXDOMAIN, cached");
    db.move_instance(123456, "mt2").await.unwrap();
    db.add_instance(5150, "mt1", None, None, None).await.unwrap();
    catch_up(cursor).await;
    let hits = handler.stats.cache_hits.load(Ordering::Relaxed);
    assert_eq!(target(&ask("ws-123456.apps.example.com").await), "ws-mt2.example.com.", "moved");
    assert_eq!(
        target(&ask("ws-5150.apps.example.com").await),
        "ws-mt1.example.com.",
        "the new instance exists"
    );
    assert_eq!(
        handler.stats.cache_hits.load(Ordering::Relaxed),
        hits + 2,
        "both answers were replaced in the cache"
    );

    // A cluster change re-resolves the names of its instances.
    let cursor = db.change_cursor().await.unwrap();
    let update = ClusterUpdate {
        set_services: vec![("ws".into(), "ws-mt2b.example.com".into())],
        ..Default::default()
    };
    db.set_cluster("mt2", &update).await.unwrap();
    catch_up(cursor).await;
    assert_eq!(target(&ask("ws-123456.apps.example.com").await), "ws-mt2b.example.com.");
    db.move_instance(123456, "mt1").await.unwrap();
}

async fn zone_files(db: &Database) {
    let exported = db.export_zone("example.com").await.unwrap();
    assert!(
        exported.contains("example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com."),
        "{exported}"
    );
    assert!(exported.contains("ws-mt1.example.com. 300 IN A 192.0.2.11"), "{exported}");
    let (apex, n) = db.import_zone(&exported, None).await.unwrap();
    assert_eq!((apex.as_str(), n), ("example.com.", 4));
    assert_eq!(db.export_zone("example.com").await.unwrap(), exported, "round trip");
    let text = "$ORIGIN imported.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 86400 30\n@ IN NS ns1\nns1 IN A 192.0.2.200\nwww 60 IN CNAME ns1\ntxt IN TXT \"hello world\" \"second\"\n";
    let (apex, n) = db.import_zone(text, None).await.unwrap();
    assert_eq!((apex.as_str(), n), ("imported.test.", 3));
    assert_eq!(
        answer(db, "www.imported.test.", RecordType::A).await,
        "0 | www.imported.test. 60 IN CNAME ns1.imported.test.; ns1.imported.test. 300 IN A 192.0.2.200"
    );
    let txt = answer(db, "txt.imported.test.", RecordType::TXT).await;
    assert!(txt.contains("TXT \"hello world\" \"second\""), "{txt}");
    assert!(db.export_zone("imported.test").await.unwrap().contains("IN TXT \"hello world\" \"second\""));
    let e =
        db.import_zone("$ORIGIN x.test.\n$TTL 60\nwww IN A 192.0.2.1\n", None).await.unwrap_err().to_string();
    assert!(e.contains("no SOA"), "{e}");
    let e = db.import_zone("$ORIGIN x.test.\nwww IN A 192.0.2.1\n", None).await.unwrap_err().to_string();
    assert!(e.contains("zone file") && e.contains("ttl"), "{e}");
    record_types_round_trip(db).await;
}

/// Every record type a zone file may carry is parsed, stored, answered and exported in a
/// form that reads back the same.
async fn record_types_round_trip(db: &Database) {
    const TYPES: &[(&str, &str)] = &[
        ("A", "192.0.2.1"),
        ("AAAA", "2001:db8::1"),
        ("CNAME", "target.types.test."),
        ("TXT", "\"hello world\" \"two\""),
        ("MX", "10 mail.types.test."),
        ("SRV", "10 5 443 svc.types.test."),
        ("CAA", "0 issue \"letsencrypt.org\""),
        ("NS", "ns1.child.types.test."),
        ("PTR", "host.types.test."),
        ("TLSA", "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("SSHFP", "4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("HTTPS", "1 . alpn=h2,h3 ipv4hint=192.0.2.1,192.0.2.2"),
        ("SVCB", "1 svc.types.test. port=8443"),
        ("DS", "12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"),
        ("NAPTR", "100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" ."),
    ];
    let mut text = String::from(
        "$ORIGIN types.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 86400 30\n@ IN NS ns1\n",
    );
    for (i, (rtype, data)) in TYPES.iter().enumerate() {
        let owner = if *rtype == "NS" || *rtype == "DS" { "child".to_owned() } else { format!("r{i}") };
        text += &format!("{owner} IN {rtype} {data}\n");
    }
    let (_, n) = db.import_zone(&text, None).await.expect("every type imports");
    assert_eq!(n, TYPES.len());
    let exported = db.export_zone("types.test").await.unwrap();
    for (rtype, data) in TYPES {
        assert!(
            exported.contains(&format!(" IN {rtype} {data}\n")),
            "{rtype} {data} exported as is:\n{exported}"
        );
    }
    // What was exported reads back to the same data.
    db.import_zone(&exported, None).await.expect("the export imports");
    assert_eq!(db.export_zone("types.test").await.unwrap(), exported, "round trip");
    // A CNAME owns its name.
    let e = db
        .import_zone(&format!("{text}r0 IN CNAME other.types.test.\n"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("r0.types.test. CNAME") && e.contains("3.6.2"), "{e}");
}

/// RFC 2136 updates as the store applies them (section 3.2 and 3.4): conditions
/// checked and writes made in one transaction with one serial bump, or nothing;
/// challenge TXT values at `_acme-challenge` names land in the ACME table; the CNAME
/// rules of section 3.4.2.2.
async fn dynamic_updates(db: &Database) {
    use instadns::store::update::{Condition, UpdateOutcome, Write, ZoneUpdate};
    let zone_id = db.zone_id("example.org").await.unwrap();
    let serial = || async { db.zone_row(zone_id).await.unwrap().soa_serial };
    let now = unix_now();
    let update = |conditions: Vec<Condition>, writes: Vec<Write>| ZoneUpdate {
        zone_id,
        conditions,
        writes,
        now,
        acme_expires_at: now + 3600,
    };
    let add = |owner: &str, rtype: &str, ttl: u32, rdata: &str| Write::Add {
        owner: owner.into(),
        rtype: rtype.into(),
        ttl,
        rdata: rdata.into(),
    };
    let records = |owner: &'static str| async move {
        let mut rows: Vec<String> = db
            .list_records("example.org", Some(owner))
            .await
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {}", r.rtype, r.ttl, r.data))
            .collect();
        rows.sort();
        rows.join("; ")
    };
    let www = "upd.example.org.";

    // Two adds and a TTL change of the RRset: one transaction, one serial.
    let before = serial().await;
    let outcome = db
        .apply_update(&update(
            vec![Condition::NameNotInUse { owner: www.into() }],
            vec![
                add(www, "A", 300, "192.0.2.50"),
                add(www, "A", 120, "192.0.2.51"),
                add(www, "TXT", 60, "\"hi\""),
            ],
        ))
        .await
        .unwrap();
    assert!(matches!(outcome, UpdateOutcome::Applied { .. }), "{outcome:?}");
    assert_eq!(records(www).await, "A 120 192.0.2.50; A 120 192.0.2.51; TXT 60 \"hi\"");
    assert_eq!(serial().await, before.wrapping_add(1), "one serial bump for the whole update");

    // Each condition kind, holding and not; a failing one writes nothing.
    let cases = [
        (Condition::NameInUse { owner: www.into() }, true),
        (Condition::NameInUse { owner: "none.example.org.".into() }, false),
        (Condition::NameNotInUse { owner: www.into() }, false),
        (Condition::RrsetExists { owner: www.into(), rtype: "A".into() }, true),
        (Condition::RrsetExists { owner: www.into(), rtype: "MX".into() }, false),
        (Condition::RrsetAbsent { owner: www.into(), rtype: "MX".into() }, true),
        (Condition::RrsetAbsent { owner: www.into(), rtype: "TXT".into() }, false),
        (
            Condition::RrsetEquals {
                owner: www.into(),
                rtype: "A".into(),
                rdata: vec!["192.0.2.51".into(), "192.0.2.50".into()],
            },
            true,
        ),
        (
            Condition::RrsetEquals { owner: www.into(), rtype: "A".into(), rdata: vec!["192.0.2.50".into()] },
            false,
        ),
        (
            Condition::RrsetEquals {
                owner: www.into(),
                rtype: "A".into(),
                rdata: vec!["192.0.2.50".into(), "192.0.2.51".into(), "192.0.2.52".into()],
            },
            false,
        ),
    ];
    for (condition, holds) in cases {
        let before = serial().await;
        let probe = add(www, "MX", 60, "10 mail.example.org.");
        let outcome = db.apply_update(&update(vec![condition.clone()], vec![probe])).await.unwrap();
        if holds {
            assert!(matches!(outcome, UpdateOutcome::Applied { .. }), "{condition:?} holds: {outcome:?}");
            assert_eq!(serial().await, before.wrapping_add(1));
            let removed = db
                .apply_update(&update(
                    vec![],
                    vec![Write::DeleteRrset { owner: www.into(), rtype: "MX".into() }],
                ))
                .await
                .unwrap();
            assert_eq!(removed, UpdateOutcome::Applied { rows: 1 }, "{condition:?}");
        } else {
            assert_eq!(outcome, UpdateOutcome::ConditionFailed(0), "{condition:?} does not hold");
            assert_eq!(serial().await, before, "nothing written, no serial bump");
            assert!(!records(www).await.contains("MX"), "{condition:?}: nothing written");
        }
    }

    // CNAME rules (RFC 2136 section 3.4.2.2): a CNAME beside data is ignored, a record
    // beside a CNAME is ignored, a CNAME replaces a CNAME.
    let alias = "alias-upd.example.org.";
    db.apply_update(&update(vec![], vec![add(www, "CNAME", 60, "elsewhere.example.org.")])).await.unwrap();
    assert!(!records(www).await.contains("CNAME"), "CNAME beside other data ignored");
    db.apply_update(&update(vec![], vec![add(alias, "CNAME", 60, "one.example.org.")])).await.unwrap();
    db.apply_update(&update(vec![], vec![add(alias, "CNAME", 60, "two.example.org.")])).await.unwrap();
    db.apply_update(&update(vec![], vec![add(alias, "TXT", 60, "\"beside\"")])).await.unwrap();
    assert_eq!(records(alias).await, "CNAME 60 two.example.org.");

    // A challenge value goes to the ACME table, expiring; deleting it removes it.
    let challenge = "_acme-challenge.upd.example.org.";
    db.apply_update(&update(
        vec![Condition::RrsetAbsent { owner: challenge.into(), rtype: "TXT".into() }],
        vec![add(challenge, "TXT", 30, "\"token-1\""), add(challenge, "TXT", 30, "\"token-2\"")],
    ))
    .await
    .unwrap();
    let acme = db.list_acme(Some("upd.example.org")).await.unwrap();
    assert_eq!(acme.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(), ["token-1", "token-2"]);
    assert!(acme.iter().all(|c| c.expires_at == Some(now + 3600) && c.ttl == 30), "{acme:?}");
    assert_eq!(records(challenge).await, "", "not a static record");
    let equals = Condition::RrsetEquals {
        owner: challenge.into(),
        rtype: "TXT".into(),
        rdata: vec!["\"token-2\"".into(), "\"token-1\"".into()],
    };
    let delete_one =
        Write::DeleteRecord { owner: challenge.into(), rtype: "TXT".into(), rdata: "\"token-1\"".into() };
    assert_eq!(
        db.apply_update(&update(vec![equals], vec![delete_one])).await.unwrap(),
        UpdateOutcome::Applied { rows: 1 }
    );
    let outcome = db
        .apply_update(&update(
            vec![Condition::RrsetExists { owner: challenge.into(), rtype: "TXT".into() }],
            vec![Write::DeleteName { owner: challenge.into() }, Write::DeleteName { owner: www.into() }],
        ))
        .await
        .unwrap();
    assert!(matches!(outcome, UpdateOutcome::Applied { .. }));
    assert!(db.list_acme(Some("upd.example.org")).await.unwrap().is_empty());
    assert_eq!(records(www).await, "");
    // An expired value does not count as data.
    let expired =
        ZoneUpdate { acme_expires_at: now - 1, ..update(vec![], vec![add(challenge, "TXT", 30, "\"old\"")]) };
    db.apply_update(&expired).await.unwrap();
    assert_eq!(
        db.apply_update(&update(vec![Condition::NameInUse { owner: challenge.into() }], vec![]))
            .await
            .unwrap(),
        UpdateOutcome::ConditionFailed(0)
    );
    db.clear_acme("upd.example.org", None).await.unwrap();
    db.apply_update(&update(vec![], vec![Write::DeleteName { owner: alias.into() }])).await.unwrap();
}

/// Runs the battery on `backend`, loading the demo data first unless it `has_demo`.
fn run_battery(backend: TestDb, has_demo: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let db = if has_demo { backend.open_empty().await } else { backend.open_demo().await };
        demo_answers(&db).await;
        management(&db).await;
        change_log(&db).await;
        change_log_pruning(&db).await;
        invalidation(&db).await;
        zone_files(&db).await;
        dynamic_updates(&db).await;
    });
}

#[test]
fn battery_on_sqlite() {
    run_battery(TestDb::sqlite(), false);
}

#[test]
fn battery_on_postgresql() {
    run_battery(TestDb::postgres(), false);
}

/// The SQLite layout the first releases created under version 1, and their demo data
/// (before the control plane: no change log, custom domains, challenges or tombstones).
/// The very first lacked `clusters.address_order` too.
const FIRST_LAYOUT: &str = r#"
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE zones (
    id INTEGER PRIMARY KEY,
    apex TEXT NOT NULL UNIQUE,
    soa_mname TEXT NOT NULL,
    soa_rname TEXT NOT NULL,
    soa_serial INTEGER NOT NULL DEFAULT 1,
    soa_refresh INTEGER NOT NULL DEFAULT 3600,
    soa_retry INTEGER NOT NULL DEFAULT 600,
    soa_expire INTEGER NOT NULL DEFAULT 604800,
    soa_minimum INTEGER NOT NULL DEFAULT 60,
    soa_ttl INTEGER NOT NULL DEFAULT 3600,
    ns_ttl INTEGER NOT NULL DEFAULT 3600
);
CREATE TABLE zone_ns (
    zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    nsdname TEXT NOT NULL,
    PRIMARY KEY (zone_id, nsdname)
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rtype TEXT NOT NULL,
    ttl INTEGER NOT NULL,
    rdata TEXT NOT NULL
);
CREATE INDEX records_zone ON records(zone_id);
CREATE TABLE clusters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- How host names answer the cluster's addresses: all in a fixed order, or all
    -- rotated per response (round robin).
    address_order TEXT NOT NULL DEFAULT 'fixed' CHECK (address_order IN ('fixed', 'rotate'))
);
CREATE TABLE cluster_services (
    cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (cluster_id, service)
);
CREATE TABLE cluster_addresses (
    cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (cluster_id, address)
);
CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    name TEXT,
    owner TEXT,
    cluster_id INTEGER NOT NULL REFERENCES clusters(id),
    ttl INTEGER,
    UNIQUE (owner, name)
);
CREATE INDEX instances_owner ON instances(owner);
CREATE TABLE name_rules (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service', 'host')),
    ttl INTEGER NOT NULL,
    UNIQUE (zone_id, pattern)
);

INSERT INTO zones (id, apex, soa_mname, soa_rname, soa_serial, soa_minimum, soa_ttl, ns_ttl) VALUES
    (1, 'example.com.', 'ns1.example.com.', 'hostmaster.example.com.', 1, 60, 3600, 3600),
    (2, 'example.org.', 'ns1.example.com.', 'hostmaster.example.com.', 1, 60, 3600, 3600);
INSERT INTO zone_ns (zone_id, nsdname) VALUES
    (1, 'ns1.example.com.'), (1, 'ns2.example.com.'),
    (2, 'ns1.example.com.'), (2, 'ns2.example.com.');
INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES
    (1, 'ns1.example.com.', 'A', 3600, '192.0.2.53'),
    (1, 'ns2.example.com.', 'A', 3600, '192.0.2.54'),
    (1, 'ws-mt1.example.com.', 'A', 300, '192.0.2.11'),
    (1, 'ws-mt2.example.com.', 'A', 300, '192.0.2.12');
INSERT INTO clusters (id, name) VALUES (1, 'mt1'), (2, 'mt2');
INSERT INTO cluster_services (cluster_id, service, target) VALUES
    (1, 'ws', 'ws-mt1.example.com.'),
    (2, 'ws', 'ws-mt2.example.com.');
INSERT INTO cluster_addresses (cluster_id, address) VALUES
    (1, '192.0.2.1'), (1, '2001:db8::1'),
    (2, '192.0.2.2'), (2, '2001:db8::2');
INSERT INTO instances (id, name, owner, cluster_id, ttl) VALUES
    (123456, 'blog', 'alice', 1, NULL),
    (234567, 'shop', 'bob', 2, NULL);
INSERT INTO name_rules (zone_id, pattern, kind, ttl) VALUES
    (1, '{service}-{id}.apps', 'service', 300),
    (2, '{name}.{owner}', 'host', 60),
    (2, '{id}', 'host', 60);
"#;

/// A database of the first layout is upgraded in place on open, every row kept, and
/// then passes the whole battery.
#[test]
fn battery_on_a_sqlite_database_of_the_first_layout() {
    for with_address_order in [true, false] {
        let backend = TestDb::sqlite();
        let DbLocation::Sqlite(path) = backend.location() else { unreachable!("a SQLite test database") };
        let mut layout = FIRST_LAYOUT.to_owned();
        if !with_address_order {
            let line = layout.lines().find(|l| l.contains("address_order TEXT")).unwrap().to_owned();
            layout = layout
                .replace(&format!("{line}\n"), "")
                .replace("name TEXT NOT NULL UNIQUE,\n    -- How", "name TEXT NOT NULL UNIQUE\n    -- How");
        }
        rusqlite::Connection::open(&path).unwrap().execute_batch(&layout).expect("the first layout");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let db = Database::open(&DbLocation::Sqlite(path.clone())).await.expect("upgraded on open");
            // Every row kept ...
            assert_eq!(
                answer(&db, "blog.alice.example.org.", RecordType::A).await,
                "0 | blog.alice.example.org. 60 IN A 192.0.2.1"
            );
            // ... and the one demo row the first releases did not have (data, which an
            // upgrade never invents), so that the battery's demo assumptions hold.
            db.add_rule("example.org", &"_moved.{id}=tombstone:60".parse().unwrap()).await.unwrap();
        });
        run_battery(backend, true);
    }
}

/// Bring your own database: the platform's own table says where instances run.
#[test]
fn instances_from_the_platforms_own_postgresql() {
    let pg = PgServer::start();
    pg.psql("CREATE SCHEMA platform; CREATE TABLE platform.apps (app_id BIGINT PRIMARY KEY, placement TEXT, ttl BIGINT)");
    pg.psql(
        "INSERT INTO platform.apps VALUES (5555, 'mt2', NULL), (6666, 'mt1', 15), (7777, 'nowhere', NULL)",
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ours = TestDb::postgres();
        let db = ours.open_demo().await;
        let e = ByoInstances::connect(&pg.url, "SELECT placement FROM platform.apps WHERE app_id = 1")
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("$1"), "{e}");
        let byo =
            ByoInstances::connect(&pg.url, "SELECT placement, ttl FROM platform.apps WHERE app_id = $1")
                .await
                .unwrap();
        let db = db.with_byo(byo);
        assert_eq!(
            answer(&db, "ws-5555.apps.example.com.", RecordType::CNAME).await,
            "0 | ws-5555.apps.example.com. 300 IN CNAME ws-mt2.example.com."
        );
        assert_eq!(
            answer(&db, "6666.example.org.", RecordType::A).await,
            "0 | 6666.example.org. 15 IN A 192.0.2.1"
        );
        assert_eq!(
            answer(&db, "ws-123456.apps.example.com.", RecordType::A).await,
            "3 | ",
            "not in the platform's table"
        );
        let resolver = Resolver::new(db.clone()).await.unwrap();
        let e = resolver.resolve(&name("ws-7777.apps.example.com."), RecordType::A).await.unwrap_err();
        assert!(e.to_string().contains("nowhere"), "an unknown cluster is an error, not a guess: {e}");
    });
}
