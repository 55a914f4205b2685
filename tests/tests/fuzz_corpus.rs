//! The seed corpora of the libFuzzer targets (`dns-user/fuzz`, issue 18) are made from
//! the fixtures: the fuzzing seeds' queries, signed queries, transfers, updates and
//! notifies, the garbage corpus's messages, slots of real answers, exported zones and
//! the documented configuration.
//! This test checks that the committed corpora are exactly what the fixtures make now;
//! `INSTADNS_WRITE_CORPUS=1` rewrites them.

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{DNSClass, Name, RData, Record, RecordType, rdata},
};
use instadns::{
    fastpath::codec::answer_slot,
    protocol::{encode, parse_absolute, tsig},
    store::{Database, DbLocation},
};
use tests::{
    data::fixture_sql,
    dns::{QueryBuilder, wire_name},
    fuzz::{FUZZ_SIGNED_AT, fuzz_key, seed_message, seeds},
    server::instadns_bin,
    testrun::UserspaceRig,
};

fn corpus_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dns-user/fuzz/corpus")
}

fn message(op: OpCode, zone: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(0x4242, MessageType::Query, op);
    let mut q = Query::query(Name::from_ascii(zone).expect("a name"), qtype);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    m
}

fn record(owner: &str, ttl: u32, class: DNSClass, data: RData) -> Record {
    let mut r = Record::from_rdata(Name::from_ascii(owner).expect("a name"), ttl, data);
    r.dns_class = class;
    r
}

/// UPDATE messages with every prerequisite and change kind (RFC 2136 2.4, 2.5), and a
/// NOTIFY: unsigned and signed.
fn updates() -> Vec<Vec<u8>> {
    let a = || RData::A("192.0.2.77".parse().expect("an address"));
    let txt = || RData::TXT(rdata::TXT::new(vec!["token".into()]));
    let zone = "example.org.";
    let web = "web.example.org.";
    let mut out = Vec::new();
    let kinds: Vec<(Vec<Record>, Vec<Record>)> = vec![
        (vec![], vec![record(web, 300, DNSClass::IN, a())]),
        (vec![record(web, 0, DNSClass::ANY, RData::Update0(RecordType::A))], vec![]),
        (vec![record(web, 0, DNSClass::IN, a())], vec![record(web, 0, DNSClass::NONE, a())]),
        (vec![record(web, 0, DNSClass::NONE, RData::Update0(RecordType::A))], vec![]),
        (vec![record(web, 0, DNSClass::ANY, RData::Update0(RecordType::ANY))], vec![]),
        (vec![record(web, 0, DNSClass::NONE, RData::Update0(RecordType::ANY))], vec![]),
        (vec![], vec![record(web, 0, DNSClass::ANY, RData::Update0(RecordType::A))]),
        (vec![], vec![record(web, 0, DNSClass::ANY, RData::Update0(RecordType::ANY))]),
        (vec![], vec![record("_acme-challenge.blog.alice.example.org.", 60, DNSClass::IN, txt())]),
    ];
    for (prerequisites, changes) in kinds {
        let mut m = message(OpCode::Update, zone, RecordType::SOA);
        m.answers = prerequisites;
        m.authorities = changes;
        let bytes = m.to_vec().expect("an update");
        let mut signed = bytes.clone();
        tsig::sign_request(&mut signed, &fuzz_key(), FUZZ_SIGNED_AT);
        out.extend([bytes, signed]);
    }
    let notify = message(OpCode::Notify, zone, RecordType::SOA).to_vec().expect("a notify");
    let mut signed = notify.clone();
    tsig::sign_request(&mut signed, &fuzz_key(), FUZZ_SIGNED_AT);
    out.extend([notify, signed]);
    out
}

/// Queries beyond the seeds: signed ones, AXFR, IXFR with the client's SOA.
fn special_queries() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (name, qtype) in [("example.org.", RecordType::SOA), ("blog.alice.example.org.", RecordType::A)] {
        let mut signed = message(OpCode::Query, name, qtype).to_vec().expect("a query");
        tsig::sign_request(&mut signed, &fuzz_key(), FUZZ_SIGNED_AT);
        out.push(signed);
    }
    out.push(message(OpCode::Query, "example.org.", RecordType::AXFR).to_vec().expect("AXFR"));
    let mut ixfr = message(OpCode::Query, "example.org.", RecordType::IXFR);
    let soa = rdata::SOA::new(
        Name::from_ascii("ns1.example.org.").expect("a name"),
        Name::from_ascii("hostmaster.example.org.").expect("a name"),
        1,
        3600,
        600,
        86400,
        60,
    );
    ixfr.authorities = vec![record("example.org.", 60, DNSClass::IN, RData::SOA(soa))];
    out.push(ixfr.to_vec().expect("IXFR"));
    out
}

/// Every target's seeds, by target.
fn corpora() -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    let rig = UserspaceRig::with_sql(&fixture_sql());
    let mut queries: Vec<(Vec<u8>, bool)> =
        seeds().iter().enumerate().map(|(i, s)| (seed_message(s, i as u16), s.v6)).collect();
    queries.extend(special_queries().into_iter().map(|q| (q, false)));
    // The handler: the first byte picks TCP (bit 0) and an IPv6 client (bit 1).
    let mut handler: Vec<Vec<u8>> = queries
        .iter()
        .enumerate()
        .map(|(i, (q, v6))| [vec![(i % 2) as u8 | if *v6 { 2 } else { 0 }], q.clone()].concat())
        .collect();
    handler.extend(updates().into_iter().map(|u| [vec![1], u].concat()));
    let mut query: Vec<Vec<u8>> = queries.iter().map(|(q, _)| q.clone()).collect();
    // The garbage corpus's DNS messages (those that reach a socket), over UDP.
    let garbage: Vec<Vec<u8>> = tests::garbage::cases()
        .iter()
        .filter(|c| c.userspace != tests::garbage::Userspace::Kernel)
        .filter_map(|c| tests::packet::udp_payload(&c.frame).map(<[u8]>::to_vec))
        .collect();
    handler.extend(garbage.iter().map(|g| [vec![0], g.clone()].concat()));
    query.extend(garbage);
    let mut names: Vec<Vec<u8>> = seeds().iter().map(|s| wire_name(s.name)).collect();
    names.dedup();
    // Compressed names: a message whose answers point back into the question.
    names.extend(rig_responses(&rig).into_iter().take(8));

    let mut slots = Vec::new();
    for seed in seeds().iter().filter(|s| s.edns.is_none() && !s.v6) {
        let name = parse_absolute(&format!("{}.", seed.name)).expect("a seed name");
        let resolution =
            rig.rt.block_on(rig.handler.resolver().resolve(&name, seed.qtype)).expect("resolves");
        let qtype = u16::from(seed.qtype);
        let Ok(encoded) = encode(
            &name,
            qtype,
            resolution.rcode,
            resolution.authoritative,
            &resolution.sections,
            resolution.rotate.clone(),
        ) else {
            continue;
        };
        let slot = answer_slot(&encoded);
        // SAFETY: AnswerSlot is repr(C) of integers and bytes.
        let raw = unsafe {
            std::slice::from_raw_parts(
                (&raw const slot).cast::<u8>(),
                std::mem::size_of::<dns_common::maps::AnswerSlot>(),
            )
        };
        // The header and the used data: the target zero-fills the rest.
        let used = std::mem::offset_of!(dns_common::maps::AnswerSlot, data) + slot.len as usize;
        slots.push([vec![0], raw[..used].to_vec()].concat());
    }
    slots.dedup();

    let zone_files = demo_zone_files();
    let config =
        Command::new(instadns_bin()).arg("default-config").output().expect("instadns default-config");
    assert!(config.status.success(), "instadns default-config failed");
    let configs = vec![
        config.stdout,
        b"db = \"sqlite:/var/lib/instadns/instadns.sqlite\"\nlisten = [\"198.18.0.1\", \"fd00:53::1\"]\n\n[[interface]]\nname = \"eth0\"\nxdp_mode = \"native\"\n\n[transfer]\nallow_networks = [\"198.18.0.0/15\"]\nnotify = [\"198.18.0.2:53\"]\nnotify_key = \"xfr\"\n".to_vec(),
    ];
    BTreeMap::from([
        ("handler", handler),
        ("query", query),
        ("update", updates()),
        ("name", names),
        ("slot", slots),
        ("zone_file", zone_files),
        ("config", configs),
    ])
}

/// Responses of the rig to the seeds without EDNS: messages with compressed names.
fn rig_responses(rig: &UserspaceRig) -> Vec<Vec<u8>> {
    let client = tests::netns::CLIENT_V4.into();
    ["blog.alice.example.org", "ws-123456.apps.example.com", "www.carol.example.org", "example.org"]
        .iter()
        .flat_map(|name| [RecordType::A, RecordType::NS].map(|t| QueryBuilder::new(name, t).bytes()))
        .filter_map(|q| rig.rt.block_on(rig.handler.handle(&q, instadns::engine::Transport::Udp, client)))
        .collect()
}

/// The demo zones as `instadns zone export` writes them, and one with every record
/// type the importer knows.
fn demo_zone_files() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let location = DbLocation::Sqlite(dir.path().join("zones.sqlite"));
    let db = rt.block_on(async { Database::open(&location).await?.seed_demo().await.map(|_| ()) });
    db.expect("demo database");
    let db = rt.block_on(Database::open(&location)).expect("database");
    let mut out: Vec<Vec<u8>> = ["example.org.", "example.com."]
        .iter()
        .map(|apex| rt.block_on(db.export_zone(apex)).expect("export").into_bytes())
        .collect();
    out.push(
        b"$ORIGIN fuzz.example.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nns1 AAAA 2001:db8::1\nwww CNAME ns1\n@ MX 10 mail\n@ TXT \"v=spf1 -all\" \"two\"\n_sip._udp SRV 0 5 5060 sip\n@ CAA 0 issue \"letsencrypt.org\"\nchild NS ns.child\n*.wild A 192.0.2.7\n"
            .to_vec(),
    );
    out
}

#[test]
fn the_committed_fuzz_corpora_are_what_the_fixtures_make() {
    let rewrite = std::env::var_os("INSTADNS_WRITE_CORPUS").is_some();
    let mut problems = Vec::new();
    for (target, inputs) in corpora() {
        assert!(!inputs.is_empty(), "no seeds for {target}");
        let dir = corpus_root().join(target);
        if rewrite {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("corpus directory");
        }
        let mut expected: Vec<String> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let file = format!("seed-{i:03}");
            let path = dir.join(&file);
            if rewrite {
                std::fs::write(&path, input).expect("writing a seed");
            } else if std::fs::read(&path).ok().as_ref() != Some(input) {
                problems.push(format!("{target}/{file} is missing or differs"));
            }
            expected.push(file);
        }
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        present.sort();
        if present != expected {
            problems.push(format!(
                "{target}: {} files where the fixtures make {}",
                present.len(),
                expected.len()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the fuzz corpora are not what the fixtures make (rewrite them with \
         INSTADNS_WRITE_CORPUS=1 cargo xtask test -p tests --test fuzz_corpus):\n{}",
        problems.join("\n")
    );
}
