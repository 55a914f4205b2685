//! The two load generators and the answer counter.
//!
//! - The fast generator: the `bench_gen` XDP program run with BPF_PROG_TEST_RUN in
//!   live-frames mode on the client's veth, each frame rewritten from a template table
//!   into a query and transmitted (XDP_TX), from a thread pinned to CPU 0. It offers far
//!   more than any server here answers; the `bench_sink` program on the same veth counts
//!   the answers by RCODE and drops them.
//! - dnsperf, the operators' tool, from the client namespace on CPU 0, with its own QPS,
//!   latency and loss figures (the sink then counts and passes the answers up).

use std::{
    os::fd::AsRawFd as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray},
    programs::{TestRun as _, TestRunAttrs, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use dns_common::bench::{
    GenConfig, SINK_DROP, SINK_PASS, SINK_SLOTS, SinkSlot, TEMPLATE_MAX, Template, UDP_SOURCE_PORT_OFFSET,
};
use tests::{
    dns::{EdnsQuery, QueryBuilder},
    netns::{CLIENT_V4, SERVER_V4, VethRig, ns_exec},
    packet::{Frame, Ips},
};

use crate::{platform::Workload, util::pin_to_cpu};

/// Template slots the generator's table holds (the uniform mix of 100,000 instances
/// needs 200,000).
pub const MAX_SLOTS: u32 = 1 << 18;
/// Frames per live-frames batch, and per BPF_PROG_TEST_RUN call.
const BATCH: u32 = 64;
const REPEAT: u32 = 1 << 17;
/// The CPU the clients run on (the servers get the other one).
pub const CLIENT_CPU: usize = 0;

/// Answers counted by the sink, by slot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts([u64; SINK_SLOTS as usize]);

impl Counts {
    pub fn get(&self, slot: SinkSlot) -> u64 {
        self.0[slot as usize]
    }

    fn since(&self, before: &Counts) -> Counts {
        let mut out = Counts::default();
        for (i, v) in out.0.iter_mut().enumerate() {
            *v = self.0[i] - before.0[i];
        }
        out
    }
}

/// One fast-generator run.
#[derive(Clone, Copy, Debug)]
pub struct GenRun {
    pub counts: Counts,
    pub elapsed: Duration,
}

impl GenRun {
    pub fn offered_qps(&self) -> f64 {
        self.counts.get(SinkSlot::Sent) as f64 / self.elapsed.as_secs_f64()
    }

    /// Complete answers: responses without TC (a truncated response, such as a rate
    /// limiter's slip, only tells the client to retry over TCP).
    pub fn answers(&self) -> u64 {
        self.counts.get(SinkSlot::Responses).saturating_sub(self.counts.get(SinkSlot::Truncated))
    }

    pub fn answered_qps(&self) -> f64 {
        self.answers() as f64 / self.elapsed.as_secs_f64()
    }

    /// `cpu` seconds per answer; 0 without answers (nothing to divide: tables show a
    /// dash, charts no bar).
    pub fn cpu_per_answer(&self, cpu: f64) -> f64 {
        match self.answers() {
            0 => 0.0,
            n => cpu / n as f64,
        }
    }
}

pub struct Traffic {
    ebpf: Ebpf,
    client_ns: String,
    client_ifindex: u32,
    client_link: Option<XdpLinkId>,
    server_link: Option<XdpLinkId>,
    reflector_link: Option<XdpLinkId>,
    server_mac: [u8; 6],
    client_mac: [u8; 6],
}

/// The MAC address of `iface` in namespace `ns`.
fn mac_of(ns: &str, iface: &str) -> Result<[u8; 6]> {
    // `ip netns exec` mounts the namespace's own /sys.
    let out = ns_exec(ns, "cat", &[&format!("/sys/class/net/{iface}/address")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: Vec<u8> = text.trim().split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    bytes.try_into().map_err(|_| anyhow::anyhow!("no MAC address for {iface} in {ns}: {text:?}"))
}

fn ifindex_in(ns: &str, iface: &str) -> Result<u32> {
    let out = ns_exec(ns, "cat", &[&format!("/sys/class/net/{iface}/ifindex")]);
    String::from_utf8_lossy(&out.stdout).trim().parse().with_context(|| format!("ifindex of {iface} in {ns}"))
}

/// Runs `f` on a thread inside namespace `ns` (with access to the caller's borrows).
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {ns}");
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

impl Traffic {
    /// Loads the generator and sink and attaches the sink to the client's veth.
    pub fn new(rig: &VethRig) -> Result<Self> {
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("TEMPLATES", MAX_SLOTS)
            .load(instadns::fastpath::loader::BENCH_XDP_OBJECT)
            .context("loading the bench object")?;
        for name in ["bench_gen", "bench_sink", "bench_reflect"] {
            let prog: &mut Xdp = ebpf.program_mut(name).context(name)?.try_into()?;
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        let mut traffic = Self {
            ebpf,
            client_ns: rig.client_ns.clone(),
            client_ifindex: ifindex_in(&rig.client_ns, &rig.client_if)?,
            client_link: None,
            server_link: None,
            reflector_link: None,
            server_mac: mac_of(&rig.server_ns, &rig.server_if)?,
            client_mac: mac_of(&rig.client_ns, &rig.client_if)?,
        };
        traffic.set_sink_mode(SINK_PASS)?;
        traffic.client_link = Some(traffic.attach_sink(&rig.client_ns, &rig.client_if)?);
        Ok(traffic)
    }

    fn attach_sink(&mut self, ns: &str, iface: &str) -> Result<XdpLinkId> {
        self.attach("bench_sink", ns, iface)
    }

    fn attach(&mut self, program: &str, ns: &str, iface: &str) -> Result<XdpLinkId> {
        let prog: &mut Xdp = self.ebpf.program_mut(program).context(program.to_owned())?.try_into()?;
        in_ns(ns, || prog.attach(iface, XdpMode::Driver))
            .with_context(|| format!("attaching {program} to {iface}"))
    }

    fn detach(&mut self, program: &str, link: XdpLinkId) -> Result<()> {
        let prog: &mut Xdp = self.ebpf.program_mut(program).context(program.to_owned())?.try_into()?;
        prog.detach(link).with_context(|| format!("detaching {program}"))
    }

    /// The floor program on the server's veth (instead of a server).
    pub fn attach_server_reflector(&mut self, rig: &VethRig) -> Result<()> {
        self.detach_server_sink()?;
        self.reflector_link = Some(self.attach("bench_reflect", &rig.server_ns, &rig.server_if)?);
        Ok(())
    }

    pub fn detach_server_reflector(&mut self) -> Result<()> {
        match self.reflector_link.take() {
            Some(link) => self.detach("bench_reflect", link),
            None => Ok(()),
        }
    }

    /// The sink on the server's veth too: native XDP_TX from the client's veth needs an
    /// XDP program on the peer, and socket-based servers have none of their own. It passes
    /// queries up untouched.
    pub fn attach_server_sink(&mut self, rig: &VethRig) -> Result<()> {
        if self.server_link.is_none() {
            self.server_link = Some(self.attach_sink(&rig.server_ns, &rig.server_if)?);
        }
        Ok(())
    }

    pub fn detach_server_sink(&mut self) -> Result<()> {
        match self.server_link.take() {
            Some(link) => self.detach("bench_sink", link),
            None => Ok(()),
        }
    }

    /// The query frame for `name` (A, EDNS(0) with a 1232-byte payload), IPv4 UDP checksum
    /// 0 (the generator rewrites the port and ID).
    pub fn frame(&self, name: &str) -> Vec<u8> {
        let query =
            QueryBuilder::new(name, hickory_proto::rr::RecordType::A).edns(EdnsQuery::default()).bytes();
        let mut frame = Frame::udp(Ips::V4(CLIENT_V4, SERVER_V4), 40000, 53, query);
        frame.src_mac = self.client_mac;
        frame.dst_mac = self.server_mac;
        let mut bytes = frame.build();
        bytes[UDP_SOURCE_PORT_OFFSET + 6..UDP_SOURCE_PORT_OFFSET + 8].copy_from_slice(&[0, 0]);
        bytes
    }

    /// Fills the template table and the generator's configuration for `workload`.
    pub fn load(&mut self, workload: &Workload) -> Result<()> {
        if workload.slots.len() > MAX_SLOTS as usize {
            bail!("{} slots exceed the generator's table of {MAX_SLOTS}", workload.slots.len());
        }
        let frames: Vec<Vec<u8>> = workload.names.iter().map(|n| self.frame(n)).collect();
        let mut templates: Array<&mut MapData, Template> =
            Array::try_from(self.ebpf.map_mut("TEMPLATES").context("TEMPLATES")?)?;
        for (slot, name_index) in workload.slots.iter().enumerate() {
            let frame = &frames[*name_index as usize];
            if frame.len() > TEMPLATE_MAX {
                bail!("a query frame of {} bytes exceeds the template size", frame.len());
            }
            let mut t = Template { len: frame.len() as u16, _pad: [0; 6], bytes: [0; TEMPLATE_MAX] };
            t.bytes[..frame.len()].copy_from_slice(frame);
            templates.set(slot as u32, t, 0)?;
        }
        // The random label starts right after its length byte, the first of the QNAME.
        let random_offset =
            if workload.random_label > 0 { (UDP_SOURCE_PORT_OFFSET + 8 + 12 + 1) as u16 } else { 0 };
        let config = GenConfig {
            slots: workload.slots.len() as u32,
            random_offset,
            random_len: workload.random_label as u16,
        };
        let mut gen_config: Array<&mut MapData, GenConfig> =
            Array::try_from(self.ebpf.map_mut("GEN_CONFIG").context("GEN_CONFIG")?)?;
        gen_config.set(0, config, 0)?;
        Ok(())
    }

    fn set_sink_mode(&mut self, mode: u32) -> Result<()> {
        let mut config: Array<&mut MapData, u32> =
            Array::try_from(self.ebpf.map_mut("SINK_CONFIG").context("SINK_CONFIG")?)?;
        config.set(0, mode, 0)?;
        Ok(())
    }

    pub fn counts(&self) -> Result<Counts> {
        let counters: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("COUNTS").context("COUNTS")?)?;
        let mut out = Counts::default();
        for (i, v) in out.0.iter_mut().enumerate() {
            *v = counters.get(&(i as u32), 0)?.iter().sum();
        }
        Ok(out)
    }

    /// Sends the loaded workload for `duration` as fast as one CPU can; returns what was
    /// sent and answered (answers still in flight after the end are counted too).
    pub fn generate(&mut self, duration: Duration) -> Result<GenRun> {
        self.set_sink_mode(SINK_DROP)?;
        let before = self.counts()?;
        let prog: &Xdp = self.ebpf.program("bench_gen").context("bench_gen")?.try_into()?;
        let ifindex = self.client_ifindex;
        let elapsed = in_ns(&self.client_ns, || -> Result<Duration> {
            pin_to_cpu(CLIENT_CPU);
            // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
            let ctx: Vec<u8> =
                [0u32, TEMPLATE_MAX as u32, 0, ifindex, 0, 0].iter().flat_map(|v| v.to_ne_bytes()).collect();
            let data = [0u8; TEMPLATE_MAX];
            let started = Instant::now();
            while started.elapsed() < duration {
                prog.test_run(TestRunOptions {
                    data_in: Some(&data),
                    ctx_in: Some(&ctx),
                    repeat: REPEAT,
                    attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
                    ..TestRunOptions::new()
                })
                .context("BPF_PROG_TEST_RUN in live-frames mode")?;
            }
            Ok(started.elapsed())
        })?;
        // Let answers in flight arrive, then let answers reach sockets again (dig-like
        // probes and dnsperf).
        std::thread::sleep(Duration::from_millis(100));
        let counts = self.counts()?.since(&before);
        self.set_sink_mode(SINK_PASS)?;
        Ok(GenRun { counts, elapsed })
    }

    /// Runs dnsperf with `queries` for `seconds` from the client namespace on the client
    /// CPU; the sink counts and passes the answers.
    pub fn dnsperf(&mut self, queries: &Path, seconds: u32) -> Result<DnsperfRun> {
        self.run_dnsperf(queries, &["-l", &seconds.to_string()])
    }

    /// dnsperf through `queries` once.
    pub fn dnsperf_once(&mut self, queries: &Path) -> Result<DnsperfRun> {
        self.run_dnsperf(queries, &["-n", "1"])
    }

    fn run_dnsperf(&mut self, queries: &Path, limit: &[&str]) -> Result<DnsperfRun> {
        self.set_sink_mode(SINK_PASS)?;
        let cpu = CLIENT_CPU.to_string();
        let server = SERVER_V4.to_string();
        let file = queries.to_str().context("query file path")?;
        let mut args =
            vec!["-c", &cpu, "dnsperf", "-s", &server, "-d", file, "-c", "8", "-q", "1000", "-e", "-S", "0"];
        args.extend_from_slice(limit);
        let out = ns_exec(&self.client_ns, "taskset", &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("dnsperf failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        }
        DnsperfRun::parse(&text)
    }
}

/// What dnsperf reported.
#[derive(Clone, Copy, Debug)]
pub struct DnsperfRun {
    pub qps: f64,
    pub sent: u64,
    pub lost: u64,
    pub latency_avg: Duration,
}

impl DnsperfRun {
    fn parse(text: &str) -> Result<Self> {
        let field = |key: &str| -> Option<&str> {
            text.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim)
        };
        let first_number = |s: &str| -> Option<f64> { s.split_whitespace().next()?.parse().ok() };
        let qps = field("Queries per second:").and_then(first_number).context("dnsperf: no QPS")?;
        let sent = field("Queries sent:").and_then(first_number).context("dnsperf: no count")? as u64;
        let lost = field("Queries lost:").and_then(first_number).unwrap_or(0.0) as u64;
        let latency = field("Average Latency (s):").and_then(first_number).context("dnsperf: no latency")?;
        Ok(Self { qps, sent, lost, latency_avg: Duration::from_secs_f64(latency) })
    }
}
