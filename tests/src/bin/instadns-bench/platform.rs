//! The benchmark's data: a platform-style zone (service CNAME names and host A names of
//! many instances spread over a few clusters), loaded into instadns's database as
//! instances and name rules and into the peers as an RFC 1035 zone file, and the query
//! mixes drawn from it.

use std::fmt::Write as _;

pub const ZONE: &str = "bench.test";
pub const CLUSTERS: u32 = 8;
/// Instance ids start here, so every id has six digits and every name of a kind has the
/// same length (identical answers then share one slot of instadns's answer array).
pub const FIRST_ID: u32 = 100_000;
/// Non-existent instance ids of the nx10 mix start here.
const NX_FIRST_ID: u32 = 900_000;
/// Names in the hot set.
pub const HOT_NAMES: usize = 1_000;
/// Non-existent names in the nx10 mix's pool.
const NX_NAMES: usize = 5_000;
/// Template slots of the weighted mixes (the generator picks one at random per query).
const WEIGHTED_SLOTS: usize = 65_536;

/// A small deterministic PRNG (the fuzzing campaigns' xorshift64*), so every run and
/// every server gets the same names and query files.
pub struct Rng(tests::fuzz::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(tests::fuzz::Rng::seeded(seed))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }

    pub fn label(&mut self, len: usize) -> String {
        (0..len).map(|_| (b'a' + self.below(26) as u8) as char).collect()
    }
}

/// The platform: `instances` instances, each with a service name and a host name.
pub struct Platform {
    pub instances: u32,
}

impl Platform {
    pub fn ids(&self) -> impl Iterator<Item = u32> {
        FIRST_ID..FIRST_ID + self.instances
    }

    pub fn cluster_of(id: u32) -> u32 {
        id % CLUSTERS + 1
    }

    pub fn service_name(id: u32) -> String {
        format!("ws-{id}.apps.{ZONE}")
    }

    pub fn host_name(id: u32) -> String {
        format!("{id}.{ZONE}")
    }

    /// The address of cluster `c`'s load balancer, and of its service domain.
    fn cluster_address(c: u32) -> String {
        format!("198.51.100.{c}")
    }

    fn service_address(c: u32) -> String {
        format!("192.0.2.{}", 10 + c)
    }

    /// Every name that exists and is queried (A): service names then host names.
    pub fn names(&self) -> Vec<String> {
        self.ids().map(Self::service_name).chain(self.ids().map(Self::host_name)).collect()
    }

    /// SQL (valid on SQLite and PostgreSQL) that replaces the data of a migrated instadns
    /// database (a new one holds the demo data) with the platform. SQLite needs
    /// `PRAGMA foreign_keys = ON` for the deletes to cascade.
    pub fn sql(&self) -> String {
        let mut sql = format!(
            "DELETE FROM instances; DELETE FROM clusters; DELETE FROM zones;
             INSERT INTO zones (apex, soa_mname, soa_rname, soa_serial, soa_minimum, soa_ttl, ns_ttl)
                VALUES ('{ZONE}.', 'ns1.{ZONE}.', 'hostmaster.{ZONE}.', 1, 60, 3600, 3600);
             INSERT INTO zone_ns (zone_id, nsdname) SELECT id, 'ns1.{ZONE}.' FROM zones;
             INSERT INTO records (zone_id, name, rtype, ttl, rdata) SELECT id, 'ns1.{ZONE}.', 'A', 3600, '192.0.2.53' FROM zones;
             INSERT INTO name_rules (zone_id, pattern, kind, ttl) SELECT id, '{{service}}-{{id}}.apps', 'service', 300 FROM zones;
             INSERT INTO name_rules (zone_id, pattern, kind, ttl) SELECT id, '{{id}}', 'host', 60 FROM zones;\n"
        );
        for c in 1..=CLUSTERS {
            let _ = writeln!(
                sql,
                "INSERT INTO records (zone_id, name, rtype, ttl, rdata) SELECT id, 'ws-mt{c}.{ZONE}.', 'A', 300, '{}' FROM zones;
                 INSERT INTO clusters (name) VALUES ('mt{c}');
                 INSERT INTO cluster_services (cluster_id, service, target) SELECT id, 'ws', 'ws-mt{c}.{ZONE}.' FROM clusters WHERE name = 'mt{c}';
                 INSERT INTO cluster_addresses (cluster_id, address) SELECT id, '{}' FROM clusters WHERE name = 'mt{c}';",
                Self::service_address(c),
                Self::cluster_address(c),
            );
        }
        let ids: Vec<u32> = self.ids().collect();
        for chunk in ids.chunks(1000) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|id| {
                    format!("({id}, (SELECT id FROM clusters WHERE name = 'mt{}'))", Self::cluster_of(*id))
                })
                .collect();
            let _ = writeln!(sql, "INSERT INTO instances (id, cluster_id) VALUES {};", rows.join(", "));
        }
        sql
    }

    /// The same data as an RFC 1035 zone file for the peers.
    pub fn zone_file(&self) -> String {
        let mut z = format!(
            "$ORIGIN {ZONE}.\n$TTL 3600\n@ SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 604800 60\n@ NS ns1.{ZONE}.\nns1 A 192.0.2.53\n"
        );
        for c in 1..=CLUSTERS {
            let _ = writeln!(z, "ws-mt{c} 300 A {}", Self::service_address(c));
        }
        for id in self.ids() {
            let c = Self::cluster_of(id);
            let _ = writeln!(z, "ws-{id}.apps 300 CNAME ws-mt{c}.{ZONE}.");
            let _ = writeln!(z, "{id} 60 A {}", Self::cluster_address(c));
        }
        z
    }
}

/// The query mixes, the same for every server and both generators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Zipf-like (weight 1/rank) over 1,000 names, half service and half host names.
    Hot,
    /// Every name equally often.
    Uniform,
    /// The hot mix with 10% of the queries for 5,000 non-existent instances.
    Nx10,
    /// A random-subdomain flood: every query a fresh random label (NXDOMAIN).
    Flood,
}

impl Mix {
    pub const ALL: [Mix; 4] = [Mix::Hot, Mix::Uniform, Mix::Nx10, Mix::Flood];

    pub fn name(self) -> &'static str {
        match self {
            Mix::Hot => "hot",
            Mix::Uniform => "uniform",
            Mix::Nx10 => "nx10",
            Mix::Flood => "flood",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Mix::Hot => "Zipf-like (1/rank) over 1,000 names (half service CNAMEs, half host A)",
            Mix::Uniform => "uniform over all names (service CNAMEs and host A)",
            Mix::Nx10 => "the hot mix plus 10% queries for 5,000 non-existent instances",
            Mix::Flood => "random-subdomain flood: a fresh 16-letter label per query (NXDOMAIN)",
        }
    }
}

/// A mix made concrete: distinct names and a table of slots (indices into `names`) from
/// which a query is picked uniformly; or a random label per query.
pub struct Workload {
    pub names: Vec<String>,
    pub slots: Vec<u32>,
    /// Length of the random label in front of the zone (flood), else 0.
    pub random_label: usize,
}

/// The length of the flood's random label.
pub const FLOOD_LABEL: usize = 16;

impl Workload {
    pub fn new(platform: &Platform, mix: Mix) -> Self {
        let mut rng = Rng::new(0x5eed_0000 + mix as u64);
        match mix {
            Mix::Hot => Self::weighted(hot_names(platform, &mut rng), Vec::new(), 0.0),
            Mix::Nx10 => {
                let nx = (0..NX_NAMES as u32).map(|i| Platform::host_name(NX_FIRST_ID + i)).collect();
                Self::weighted(hot_names(platform, &mut rng), nx, 0.10)
            }
            Mix::Uniform => {
                let names = platform.names();
                let slots = (0..names.len() as u32).collect();
                Self { names, slots, random_label: 0 }
            }
            Mix::Flood => Self {
                names: vec![format!("{}.{ZONE}", "x".repeat(FLOOD_LABEL))],
                slots: vec![0],
                random_label: FLOOD_LABEL,
            },
        }
    }

    /// Zipf weights over `hot`, and `share` of the slots spread over `rest`.
    fn weighted(hot: Vec<String>, rest: Vec<String>, share: f64) -> Self {
        let harmonic: f64 = (1..=hot.len()).map(|r| 1.0 / r as f64).sum();
        let hot_slots = (WEIGHTED_SLOTS as f64 * (1.0 - share)) as usize;
        let mut slots = Vec::with_capacity(WEIGHTED_SLOTS);
        for rank in 1..=hot.len() {
            let n = ((hot_slots as f64 / rank as f64 / harmonic).round() as usize).max(1);
            slots.extend(std::iter::repeat_n(rank as u32 - 1, n));
        }
        // The slots rounding left over go to `rest`, or without it to the hottest name.
        let rest_slots = WEIGHTED_SLOTS.saturating_sub(slots.len());
        let first_rest = hot.len() as u32;
        slots.extend((0..rest_slots).map(|i| match rest.len() {
            0 => 0,
            n => first_rest + (i % n) as u32,
        }));
        let mut names = hot;
        names.extend(rest);
        Self { names, slots, random_label: 0 }
    }

    /// A dnsperf query file naming every name once, in a shuffled order.
    pub fn each_name_once_file(&self) -> String {
        let mut rng = Rng::new(0x0ce);
        let mut order: Vec<&String> = self.names.iter().collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        order.iter().map(|name| format!("{name} A\n")).collect()
    }

    /// `lines` lines of a dnsperf query file (`NAME A`) drawn from the same distribution.
    pub fn dnsperf_file(&self, lines: usize) -> String {
        let mut rng = Rng::new(0xd05e);
        let mut out = String::with_capacity(lines * 32);
        for _ in 0..lines {
            if self.random_label > 0 {
                let _ = writeln!(out, "{}.{ZONE} A", rng.label(self.random_label));
            } else {
                let _ = writeln!(out, "{} A", self.names[self.slots[rng.below(self.slots.len())] as usize]);
            }
        }
        out
    }
}

/// 1,000 names spread over the platform, half service and half host names, hottest first.
fn hot_names(platform: &Platform, rng: &mut Rng) -> Vec<String> {
    (0..HOT_NAMES)
        .map(|i| {
            let id = FIRST_ID + rng.below(platform.instances as usize) as u32;
            if i % 2 == 0 { Platform::service_name(id) } else { Platform::host_name(id) }
        })
        .collect()
}
