//! The benchmark's own XDP programs (`cargo xtask bench`), run with BPF_PROG_TEST_RUN on
//! crafted frames: the numbers in BENCHMARKS.md are only as good as the generator that
//! makes the queries, the sink that counts the answers and the reflector that sets the
//! floor.

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, PerCpuArray},
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use dns_common::bench::{
    DNS_ID_OFFSET, GenConfig, RANDOM_MAX, SINK_DROP, SINK_PASS, SINK_SLOTS, SinkSlot, TEMPLATE_MAX, Template,
    UDP_SOURCE_PORT_OFFSET,
};
use dns_common::xdp::XDP_DROP;
use hickory_proto::{
    op::{Message, ResponseCode},
    rr::RecordType,
};
use tests::{
    dns::QueryBuilder,
    packet::{Frame, check_checksums},
    testrun::{XDP_PASS, XDP_TX},
};

struct BenchObject(Ebpf);

impl BenchObject {
    fn load() -> Self {
        tests::require_root();
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("TEMPLATES", 4)
            .load(instadns::fastpath::loader::BENCH_XDP_OBJECT)
            .expect("the bench object loads");
        for name in ["bench_gen", "bench_sink", "bench_reflect"] {
            let prog: &mut Xdp = ebpf.program_mut(name).expect(name).try_into().expect("XDP");
            prog.load().unwrap_or_else(|e| panic!("{name} passes the verifier: {e}"));
        }
        Self(ebpf)
    }

    fn run(&self, program: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        let prog: &Xdp = self.0.program(program).expect(program).try_into().expect("XDP");
        let mut out = vec![0u8; frame.len() + 256];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn counts(&self) -> [u64; SINK_SLOTS as usize] {
        let counters: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.0.map("COUNTS").expect("COUNTS")).unwrap();
        std::array::from_fn(|i| counters.get(&(i as u32), 0).expect("counter").iter().sum())
    }

    fn set_sink_mode(&mut self, mode: u32) {
        let mut config: Array<_, u32> = Array::try_from(self.0.map_mut("SINK_CONFIG").unwrap()).unwrap();
        config.set(0, mode, 0).unwrap();
    }

    fn set_templates(&mut self, frames: &[Vec<u8>], config: GenConfig) {
        let mut templates: Array<_, Template> =
            Array::try_from(self.0.map_mut("TEMPLATES").unwrap()).unwrap();
        for (i, frame) in frames.iter().enumerate() {
            let mut t = Template { len: frame.len() as u16, _pad: [0; 6], bytes: [0; TEMPLATE_MAX] };
            t.bytes[..frame.len()].copy_from_slice(frame);
            templates.set(i as u32, t, 0).unwrap();
        }
        let mut gen_config: Array<_, GenConfig> =
            Array::try_from(self.0.map_mut("GEN_CONFIG").unwrap()).unwrap();
        gen_config.set(0, config, 0).unwrap();
    }
}

fn query(name: &str) -> Vec<u8> {
    QueryBuilder::new(name, RecordType::A).bytes()
}

/// A response frame from port 53 with `rcode` and, if `tc`, the TC bit.
fn response(rcode: ResponseCode, tc: bool) -> Vec<u8> {
    let q = query("a.bench.test");
    let mut msg = Message::from_vec(&q).unwrap();
    msg.metadata.message_type = hickory_proto::op::MessageType::Response;
    msg.metadata.response_code = rcode;
    msg.metadata.truncation = tc;
    let request = Frame::v4(q);
    request.reply(msg.to_vec().unwrap()).build()
}

/// The generator's template: the query frame with a zero UDP checksum (IPv4 allows it;
/// the generator changes the port and ID without recomputing).
fn template(name: &str) -> Vec<u8> {
    let mut frame = Frame::v4(query(name)).build();
    frame[UDP_SOURCE_PORT_OFFSET + 6..UDP_SOURCE_PORT_OFFSET + 8].copy_from_slice(&[0, 0]);
    frame
}

#[test]
fn generator_turns_each_frame_into_a_query_from_the_template_table() {
    let mut bench = BenchObject::load();
    let names = ["ws-100001.apps.bench.test", "100002.bench.test"];
    let frames: Vec<Vec<u8>> = names.iter().map(|n| template(n)).collect();
    bench.set_templates(&frames, GenConfig { slots: 2, random_offset: 0, random_len: 0 });
    let mut seen = [0usize; 2];
    let mut ports = std::collections::HashSet::new();
    for _ in 0..200 {
        let (action, out) = bench.run("bench_gen", &[0u8; TEMPLATE_MAX]);
        assert_eq!(action, XDP_TX);
        let slot =
            frames.iter().position(|f| f.len() == out.len()).expect("the output has a template's length");
        let expected = &frames[slot];
        // Everything but the source port and the DNS ID is the template.
        let mask = |b: &[u8]| {
            let mut b = b.to_vec();
            b[UDP_SOURCE_PORT_OFFSET..UDP_SOURCE_PORT_OFFSET + 2].fill(0);
            b[DNS_ID_OFFSET..DNS_ID_OFFSET + 2].fill(0);
            b
        };
        assert_eq!(mask(&out), mask(expected), "query for {}", names[slot]);
        let port = u16::from_be_bytes([out[UDP_SOURCE_PORT_OFFSET], out[UDP_SOURCE_PORT_OFFSET + 1]]);
        assert!(port >= 0x8000, "source port {port} in the ephemeral range");
        ports.insert(port);
        let msg = Message::from_vec(&out[DNS_ID_OFFSET..]).expect("a DNS query");
        assert_eq!(msg.queries[0].name().to_string(), format!("{}.", names[slot]));
        seen[slot] += 1;
    }
    assert!(seen.iter().all(|n| *n > 50), "both templates picked about equally: {seen:?}");
    assert!(ports.len() > 150, "source ports vary per query: {} distinct of 200", ports.len());
    assert_eq!(bench.counts()[SinkSlot::Sent as usize], 200);
}

#[test]
fn generator_writes_a_fresh_random_label_for_a_flood() {
    let mut bench = BenchObject::load();
    let name = format!("{}.bench.test", "x".repeat(RANDOM_MAX));
    let frame = template(&name);
    let label_offset = DNS_ID_OFFSET + 12 + 1;
    let config = GenConfig { slots: 1, random_offset: label_offset as u16, random_len: RANDOM_MAX as u16 };
    bench.set_templates(std::slice::from_ref(&frame), config);
    let mut labels = std::collections::HashSet::new();
    for _ in 0..100 {
        let (action, out) = bench.run("bench_gen", &[0u8; TEMPLATE_MAX]);
        assert_eq!(action, XDP_TX);
        assert_eq!(out.len(), frame.len());
        let label = &out[label_offset..label_offset + RANDOM_MAX];
        assert!(label.iter().all(u8::is_ascii_lowercase), "letters only: {label:?}");
        assert_eq!(out[label_offset + RANDOM_MAX..], frame[label_offset + RANDOM_MAX..], "the zone stays");
        labels.insert(label.to_vec());
    }
    assert_eq!(labels.len(), 100, "every query a new name");
}

#[test]
fn generator_without_templates_sends_nothing() {
    let bench = BenchObject::load();
    let (action, _) = bench.run("bench_gen", &[0u8; TEMPLATE_MAX]);
    assert_eq!(action, XDP_DROP, "no slots configured: the frame is dropped, not sent as garbage");
}

#[test]
fn sink_counts_answers_by_rcode_and_drops_or_passes_them() {
    let mut bench = BenchObject::load();
    let cases = [
        (ResponseCode::NoError, false, SinkSlot::NoError),
        (ResponseCode::NXDomain, false, SinkSlot::NxDomain),
        (ResponseCode::ServFail, false, SinkSlot::ServFail),
        (ResponseCode::Refused, false, SinkSlot::Refused),
        (ResponseCode::NotImp, false, SinkSlot::OtherRcode),
        (ResponseCode::NoError, true, SinkSlot::NoError),
    ];
    for (mode, action) in [(SINK_DROP, XDP_DROP), (SINK_PASS, XDP_PASS)] {
        bench.set_sink_mode(mode);
        for (rcode, tc, slot) in cases {
            let before = bench.counts();
            let frame = response(rcode, tc);
            let (got, out) = bench.run("bench_sink", &frame);
            assert_eq!(got, action, "{rcode:?} tc={tc} in mode {mode}");
            if action == XDP_PASS {
                assert_eq!(out, frame, "passed untouched");
            }
            let after = bench.counts();
            let delta = |s: SinkSlot| after[s as usize] - before[s as usize];
            assert_eq!(delta(SinkSlot::Responses), 1);
            assert_eq!(delta(slot), 1, "{rcode:?} counted under {slot:?}");
            assert_eq!(delta(SinkSlot::Truncated), u64::from(tc));
        }
    }
    // Queries (the other direction) and non-DNS traffic pass uncounted.
    bench.set_sink_mode(SINK_DROP);
    let before = bench.counts();
    let q = Frame::v4(query("a.bench.test")).build();
    assert_eq!(bench.run("bench_sink", &q), (XDP_PASS, q.clone()));
    let other = Frame::udp(
        tests::packet::Ips::V4("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap()),
        123,
        40000,
        vec![0; 48],
    )
    .build();
    assert_eq!(bench.run("bench_sink", &other).0, XDP_PASS);
    assert_eq!(bench.counts(), before);
}

#[test]
fn reflector_answers_each_query_with_itself_and_valid_checksums() {
    let bench = BenchObject::load();
    let q = query("ws-100001.apps.bench.test");
    let request = Frame::v4(q.clone());
    let (action, out) = bench.run("bench_reflect", &request.build());
    assert_eq!(action, XDP_TX);
    let mut answer = q;
    answer[2] |= 0x80;
    let mut expected = request.reply(answer);
    expected.ttl = request.ttl;
    assert_eq!(out, expected.build(), "addresses, ports and MACs swapped, QR set");
    check_checksums(&out).expect("checksums stay valid");

    // Responses, IPv6 and other ports are not for the reflector.
    for frame in [
        response(ResponseCode::NoError, false),
        Frame::v6(query("a.bench.test")).build(),
        Frame::udp(request.ips.clone(), 40000, 5353, query("a.bench.test")).build(),
    ] {
        assert_eq!(bench.run("bench_reflect", &frame), (XDP_PASS, frame.clone()));
    }
}
