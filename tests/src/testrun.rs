//! BPF_PROG_TEST_RUN rig: the real XDP program loaded from the embedded object, its maps
//! filled by the real daemon code path (SQLite demo database -> resolver -> handler ->
//! map writer), and packets run through it in the kernel.

use std::{path::Path, sync::Arc, time::Duration};

use aya::{
    Ebpf,
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use instadns::{
    control::follower::Follower,
    engine::{AnswerCache, Handler, Transport},
    fastpath::{
        KernelMaps,
        cookies::{CookieSettings, ServerCookies},
        loader::{self, XdpConfig},
        rrl::{RateLimiter, RrlSettings},
    },
    resolution::Resolver,
    store::{Database, DbLocation},
};

pub use dns_common::xdp::{XDP_DROP, XDP_PASS, XDP_TX};
/// The interface BPF_PROG_TEST_RUN frames arrive on: the loopback device of the calling
/// thread's network namespace.
pub const TEST_RUN_IFINDEX: u32 = 1;
/// The baselines of the benchmark object: the empty program and the cheapest XDP_TX.
pub const BENCH_PASS: &str = "bench_pass";
pub const BENCH_FLOOR: &str = "bench_floor";
/// The EDNS payload size the rig's program and handler advertise.
pub const OUR_PAYLOAD: u16 = dns_common::limits::DEFAULT_EDNS_PAYLOAD;

/// Pins the calling thread to one CPU: BPF_PROG_TEST_RUN runs on the caller's CPU, so
/// runs see the same per-CPU state (the rotation counter, the counters), and migrations
/// between runs add noise to timings.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The demo database at `path` plus `sql`, run on the real SQLite file before the
/// server reads it.
fn demo_database(rt: &tokio::runtime::Runtime, path: &Path, sql: &str) -> Database {
    let location = DbLocation::Sqlite(path.to_owned());
    rt.block_on(async { Database::open(&location).await?.seed_demo().await }).expect("demo database");
    if !sql.is_empty() {
        rusqlite::Connection::open(path).and_then(|c| c.execute_batch(sql)).expect("test data");
    }
    rt.block_on(Database::open(&location)).expect("database")
}

/// The query path without the kernel: the handler over a demo database plus `sql`, its
/// cache writing no maps. Needs no privileges (the libFuzzer `handler` target runs it).
pub struct UserspaceRig {
    pub rt: tokio::runtime::Runtime,
    pub handler: Arc<Handler<Database>>,
    _dir: tempfile::TempDir,
}

impl UserspaceRig {
    pub fn with_sql(sql: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let db = demo_database(&rt, &dir.path().join("demo.sqlite"), sql);
        let resolver = rt.block_on(Resolver::new(db.clone())).expect("resolver");
        let cache = Arc::new(AnswerCache::new(1 << 16, None));
        let handler = Arc::new(Handler::new(Arc::new(resolver), cache, OUR_PAYLOAD));
        rt.block_on(Follower::new(db, handler.clone()).ensure_known());
        Self { rt, handler, _dir: dir }
    }
}

pub struct FastPathRig {
    pub rt: tokio::runtime::Runtime,
    pub handler: Arc<Handler<Database>>,
    /// The daemon's change follower over the rig's database (see [`FastPathRig::follow`]).
    pub follower: Follower,
    /// The newest change applied.
    cursor: std::sync::atomic::AtomicI64,
    ebpf: Ebpf,
    /// The benchmark object: `bench_floor` and `bench_pass`, the cost baselines.
    bench: Ebpf,
    _dir: tempfile::TempDir,
}

impl FastPathRig {
    /// A rig over a fresh demo database.
    pub fn new() -> Self {
        Self::with_capacity(4096, 256)
    }

    pub fn with_capacity(names: u32, answer_slots: u32) -> Self {
        Self::with_sql(names, answer_slots, "")
    }

    /// A rig over the demo database plus `sql`, run on the real SQLite file before the
    /// server reads it.
    pub fn with_sql(names: u32, answer_slots: u32, sql: &str) -> Self {
        Self::with_settings(names, answer_slots, sql, RrlSettings::off(), CookieSettings::off())
    }

    /// The same with response rate limiting (off in the other rigs: their fixtures ask
    /// one name many times from one client).
    pub fn with_rate_limit(names: u32, answer_slots: u32, sql: &str, rrl: RrlSettings) -> Self {
        Self::with_settings(names, answer_slots, sql, rrl, CookieSettings::off())
    }

    /// The same with response rate limiting and DNS cookies as given (both off in the
    /// other rigs).
    pub fn with_settings(
        names: u32,
        answer_slots: u32,
        sql: &str,
        rrl: RrlSettings,
        cookies: CookieSettings,
    ) -> Self {
        crate::require_root();
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::open(&dir.path().join("demo.sqlite"), names, answer_slots, sql, (rrl, cookies), dir)
    }

    fn open(
        db: &Path,
        names: u32,
        answer_slots: u32,
        sql: &str,
        (rrl, cookies): (RrlSettings, CookieSettings),
        dir: tempfile::TempDir,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let db = demo_database(&rt, db, sql);
        let cursor = rt.block_on(db.change_cursor()).expect("change cursor");
        let resolver = rt.block_on(Resolver::new(db.clone())).expect("resolver");
        let config = XdpConfig::with_capacity(53, OUR_PAYLOAD, names, answer_slots);
        let mut ebpf = loader::load(&config).expect("the XDP program loads (and passes the verifier)");
        let mut bench = Ebpf::load(loader::BENCH_XDP_OBJECT).expect("the benchmark object");
        for aux in [BENCH_PASS, BENCH_FLOOR] {
            let prog: &mut Xdp =
                bench.program_mut(aux).expect("program in the object").try_into().expect("XDP");
            prog.load().expect("loading a baseline program");
        }
        let maps = KernelMaps::from_ebpf(&mut ebpf, config.answer_slots).expect("maps");
        let limiter = Arc::new(RateLimiter::kernel(&mut ebpf, rrl).expect("rate-limit maps"));
        let cookies = Arc::new(ServerCookies::kernel(&mut ebpf, &cookies).expect("cookie map"));
        // No daemon renews the lease of the kernel's negative answers: an hour is the run.
        let cache = Arc::new(
            AnswerCache::new((names as usize).max(1 << 20), Some(maps))
                .with_negative_lease(Duration::from_secs(3600)),
        );
        // Test runs come in on the loopback device of the caller's namespace (ifindex 1),
        // addressed to the server of the packet builder's frames.
        cache.set_local_addresses(&[crate::netns::SERVER_V4.into(), crate::netns::SERVER_V6.into()]);
        cache.set_interface_mac(TEST_RUN_IFINDEX, crate::packet::SERVER_MAC);
        let handler = Arc::new(
            Handler::new(Arc::new(resolver), cache, OUR_PAYLOAD)
                .with_rate_limiter(limiter)
                .with_cookies(cookies),
        );
        // The known names, built and published as the daemon's follower does at start.
        let follower = Follower::new(db, handler.clone());
        rt.block_on(follower.ensure_known());
        Self { rt, handler, follower, cursor: cursor.into(), ebpf, bench, _dir: dir }
    }

    /// Runs `sql` on the rig's database, then applies the changes it logged as the
    /// daemon's follower does.
    pub fn change(&self, sql: &str) {
        let db = self.handler.resolver().store().clone();
        let path = db.sqlite().expect("a SQLite rig").path().to_owned();
        rusqlite::Connection::open(path).and_then(|c| c.execute_batch(sql)).expect("test change");
        let from = self.cursor.load(std::sync::atomic::Ordering::SeqCst);
        let changes = self.rt.block_on(db.changes_since(from, 1_000_000)).expect("change log");
        if let Some(last) = changes.last() {
            self.cursor.store(last.id, std::sync::atomic::Ordering::SeqCst);
        }
        self.rt.block_on(self.follower.apply(&changes));
    }

    /// Asks userspace, as if XDP had passed the query up; userspace answers and installs
    /// the answer in the maps. Returns userspace's response.
    pub fn userspace(&self, query: &[u8]) -> Option<Vec<u8>> {
        self.userspace_from(query, crate::netns::CLIENT_V4.into())
    }

    /// The same, as asked by `client` (territories and ECS depend on it).
    pub fn userspace_from(&self, query: &[u8], client: std::net::IpAddr) -> Option<Vec<u8>> {
        self.rt.block_on(self.handler.handle(query, Transport::Udp, client))
    }

    /// What XDP answered to `frame` with `reply` (an XDP_TX output) and what userspace
    /// answers the same frame's UDP payload from the same source, as the kernel's stack
    /// would deliver it: (XDP's DNS message, userspace's). An error says why the reply
    /// cannot be right: not addressed back, a checksum that fails, a frame without a
    /// well-formed datagram, or a query userspace drops.
    pub fn xdp_and_userspace(&self, frame: &[u8], reply: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        use crate::packet::{addressed_back, check_checksums, source_address, udp_payload};
        if !addressed_back(frame, reply) {
            return Err("the XDP answer is not addressed back to the sender".into());
        }
        let from_xdp = check_checksums(reply).map_err(|e| format!("the XDP answer: {e}"))?;
        // The UDP payload as sent: its checksum is not checked by XDP, which may see
        // offloaded partial sums.
        let (Some(payload), Some(client)) = (udp_payload(frame), source_address(frame)) else {
            return Err("XDP answered a frame that holds no well-formed UDP datagram".into());
        };
        let from_userspace = self
            .userspace_from(payload, client)
            .ok_or_else(|| format!("XDP answered what userspace drops: {from_xdp:02x?}"))?;
        Ok((from_xdp, from_userspace))
    }

    /// A program of the fast-path object, or a baseline of the benchmark object.
    fn program(&self, name: &str) -> &Xdp {
        let program = self.ebpf.program(name).or_else(|| self.bench.program(name));
        program.expect("program in the objects").try_into().expect("an XDP program")
    }

    /// Runs the fast path on `frame`: (action, output frame).
    pub fn run(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.run_program(loader::PROGRAM_NAME, frame)
    }

    pub fn run_program(&self, name: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        let (action, out, _) = self.run_timed(name, frame, 1);
        (action, out)
    }

    /// One BPF_PROG_TEST_RUN call; returns the action, the output and the kernel's
    /// average duration per repetition.
    pub fn run_timed(&self, name: &str, frame: &[u8], repeat: u32) -> (u32, Vec<u8>, Duration) {
        let mut out = vec![0u8; frame.len() + 4096];
        let result = self
            .program(name)
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out, result.duration)
    }

    /// A map of the fast path by name, opened anew (the daemon's map writer owns the
    /// loaded object's): for tests that put the kernel in states userspace never writes.
    pub fn map(&self, name: &str) -> aya::maps::MapData {
        let info = self.program(loader::PROGRAM_NAME).info().expect("program info");
        let ids = info.map_ids().expect("map ids").expect("the kernel reports map ids");
        ids.into_iter()
            .filter_map(|id| aya::maps::MapData::from_id(id).ok())
            .find(|m| m.info().ok().and_then(|i| i.name_as_str().map(|n| n == name)).unwrap_or(false))
            .unwrap_or_else(|| panic!("map {name} of the fast path"))
    }

    /// XDP outcome counters.
    pub fn counter(&self, outcome: dns_common::stats::Outcome) -> u64 {
        self.handler
            .cache()
            .xdp_counters()
            .and_then(|c| c.into_iter().find(|(o, _)| *o == outcome).map(|(_, v)| v))
            .unwrap_or(0)
    }
}

impl Default for FastPathRig {
    fn default() -> Self {
        Self::new()
    }
}
