//! The configuration file (`/etc/instadns/instadns.toml`). Every value has a default and
//! a `serve` flag that overrides it; `instadns check-config` reports the first error
//! with its line and key.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use instadns::{
    engine::CachePolicy,
    fastpath::{
        cookies::CookieSettings,
        loader::XdpModeArg,
        rrl::{MAX_EXEMPT_PREFIXES, RrlSettings},
    },
    model::prefix::Prefix,
    store::DbLocation,
};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/instadns/instadns.toml";
pub const DEFAULT_DB: &str = "sqlite:/var/lib/instadns/instadns.sqlite";
const DEFAULT_DB_PATH: &str = "/var/lib/instadns/instadns.sqlite";
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/instadns";

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The database: sqlite:PATH or postgres://...
    pub db: DbLocation,
    /// When `db` is a PostgreSQL hot standby: its primary, for the daemon's writes.
    pub db_primary: Option<DbLocation>,
    /// Addresses the UDP and TCP listeners bind.
    pub listen: Vec<IpAddr>,
    pub port: u16,
    /// UDP payload size advertised in EDNS(0) responses.
    pub edns_payload: u16,
    /// Prometheus /metrics, /health and /ready.
    pub metrics: Option<SocketAddr>,
    /// Where the maps and links are pinned (bpffs), so restarts and upgrades keep the
    /// fast path answering.
    pub pin_dir: PathBuf,
    /// Detach the XDP program and remove the pins when the daemon stops (SIGTERM).
    pub detach_on_exit: bool,
    /// RFC 1035 zone files imported on start and on SIGHUP.
    pub zone_files: Vec<PathBuf>,
    /// Interfaces the XDP program is attached to.
    #[serde(rename = "interface")]
    pub interfaces: Vec<Interface>,
    pub maps: Maps,
    pub tcp: Tcp,
    pub ttl: Ttl,
    pub database: DatabaseLimits,
    pub instance_db: Option<InstanceDb>,
    pub fleet: Fleet,
    pub transfer: Transfer,
    pub rrl: Rrl,
    pub cookies: Cookies,
    pub api: Api,
}

/// The HTTP management API (`instadns::api`): off unless `listen` is set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain and private key: HTTPS. Unset: plain HTTP (keep it on a
    /// loopback or management address then).
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// DNS Cookies (RFC 7873) with RFC 9018 server cookies, in XDP and userspace alike.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cookies {
    pub enabled: bool,
    /// The server secret, 32 hex digits; nodes of an anycast set share one. None: a
    /// random secret of this node's own at every start.
    #[serde(deserialize_with = "secret_field")]
    pub secret: Option<[u8; 16]>,
    /// The secret before a rotation: cookies made with it stay valid (and are replaced).
    #[serde(deserialize_with = "secret_field")]
    pub previous_secret: Option<[u8; 16]>,
}

impl Default for Cookies {
    fn default() -> Self {
        Self { enabled: true, secret: None, previous_secret: None }
    }
}

impl Cookies {
    pub fn settings(&self) -> CookieSettings {
        if !self.enabled {
            return CookieSettings::off();
        }
        match self.secret {
            Some(secret) => CookieSettings { enabled: true, secret, previous: self.previous_secret },
            None => CookieSettings::random(),
        }
    }
}

/// A 16-byte secret written as 32 hex digits.
fn secret_field<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<[u8; 16]>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    let Some(text) = text.filter(|t| !t.is_empty()) else { return Ok(None) };
    let bytes: Option<Vec<u8>> = (text.len() == 32)
        .then(|| (0..16).map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()).collect())
        .flatten();
    bytes.and_then(|b| b.try_into().ok()).map(Some).ok_or_else(|| {
        serde::de::Error::custom("must be 32 hex digits (16 bytes), e.g. from `openssl rand -hex 16`")
    })
}

/// Response rate limiting (`dns_common::rrl`), of XDP's and userspace's UDP answers.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rrl {
    /// Responses per second per client network (/24, /56) and answer; 0: off.
    pub responses_per_second: u32,
    /// Every `slip`-th response over the rate goes out truncated (0: none, 1: all).
    pub slip: u32,
    /// Seconds of debt a flooding network can run up.
    pub window: u32,
    /// Networks never limited (monitoring, known resolvers).
    pub exempt: Vec<Prefix>,
    /// Buckets kept (least recently used go first).
    pub buckets: u32,
}

impl Default for Rrl {
    fn default() -> Self {
        let d = RrlSettings::default();
        Self {
            responses_per_second: d.rate,
            slip: d.slip,
            window: d.window,
            exempt: d.exempt,
            buckets: d.buckets,
        }
    }
}

impl Rrl {
    pub fn settings(&self) -> RrlSettings {
        RrlSettings {
            rate: self.responses_per_second,
            slip: self.slip,
            window: self.window,
            exempt: self.exempt.clone(),
            buckets: self.buckets,
        }
    }
}

/// Zone transfers out (AXFR over TCP, IXFR) and NOTIFY to secondaries.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Transfer {
    /// Networks whose clients may transfer every zone unsigned (a key whose scope has
    /// the transfer operation may from anywhere).
    pub allow_networks: Vec<Prefix>,
    /// Secondaries sent a NOTIFY when a zone's serial changes.
    pub notify: Vec<SocketAddr>,
    /// The key NOTIFY messages are signed with (as `instadns key list` names it).
    #[serde(deserialize_with = "key_name_field")]
    pub notify_key: Option<hickory_proto::rr::Name>,
}

/// A key's name, checked as `instadns key add` checks it.
fn key_name_field<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<hickory_proto::rr::Name>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|t| instadns::model::key::key_name(&t).map_err(|e| serde::de::Error::custom(e.0))).transpose()
}

/// How this node reports itself to the fleet (`instadns fleet status`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Fleet {
    /// The node's name in the fleet; empty: the host name.
    pub name: String,
    /// Seconds between reports (silent for three: shown as stopped reporting).
    pub report_every_s: u64,
}

impl Default for Fleet {
    fn default() -> Self {
        Self { name: String::new(), report_every_s: 5 }
    }
}

impl Fleet {
    /// The name reported: the configured one, else the host name.
    pub fn node_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        host_name().unwrap_or_else(|| "instadns".to_owned())
    }
}

/// The host name from uname(2): /proc/sys is hidden in the unit's sandbox (ProcSubset=pid).
fn host_name() -> Option<String> {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    let name = unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return None;
        }
        std::ffi::CStr::from_ptr(uts.nodename.as_ptr()).to_string_lossy().trim().to_owned()
    };
    (!name.is_empty()).then_some(name)
}

/// What the daemon may ask of the database.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseLimits {
    /// Misses per zone per second that may ask the database (queries whose names the
    /// fast path cannot rule out; each costs a few statements), 0: no cap; over it,
    /// stale answers or SERVFAIL.
    pub lookups_per_zone: u32,
    /// Longest a PostgreSQL statement of the daemon may run, in milliseconds.
    pub statement_timeout_ms: u64,
    /// How long the change log keeps changes, in hours: a node cut off from the
    /// database for longer reloads everything when it is back.
    pub keep_changes_hours: u64,
}

impl Default for DatabaseLimits {
    fn default() -> Self {
        Self { lookups_per_zone: 1000, statement_timeout_ms: 2000, keep_changes_hours: 24 }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub name: String,
    #[serde(default = "default_mode")]
    pub xdp_mode: XdpModeArg,
}

fn default_mode() -> XdpModeArg {
    XdpModeArg::Auto
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Maps {
    /// Names the XDP maps hold (LRU maps evict before full: leave headroom).
    pub entries: u32,
    /// Distinct answers the answer array holds.
    pub answer_slots: u32,
    /// Existing names the fast path knows, for its NXDOMAIN answers (kernel memory is
    /// used as names are added, about 100 bytes each).
    pub known_names: u32,
}

/// Room for the largest query and the largest response.
const MIN_TCP_BUFFER_BYTES: usize = 2 * (2 + u16::MAX as usize);

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tcp {
    pub max_connections: usize,
    /// Connections of one client network (an IPv4 address, an IPv6 /64); a client over
    /// it, or anyone over max_connections, replaces the stalest connection.
    pub max_per_client: usize,
    /// Seconds a connection may send nothing, or take no response, before it is closed.
    pub idle_timeout: u64,
    /// Bytes of queries and responses held by all connections together.
    pub buffer_bytes: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ttl {
    /// TTL of a stale answer re-served while the database is unreachable (RFC 8767).
    #[serde(alias = "stale")]
    pub stale_answer_ttl: u32,
    /// How long after expiry an answer may still be served stale, in seconds.
    pub stale_max: u64,
    /// Cap on how long any answer stays in the cache and the XDP maps, whatever its TTL.
    pub max_cache: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceDb {
    pub url: String,
    pub sql: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db: DbLocation::Sqlite(DEFAULT_DB_PATH.into()),
            db_primary: None,
            listen: vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
            port: 53,
            edns_payload: dns_common::limits::DEFAULT_EDNS_PAYLOAD,
            metrics: None,
            pin_dir: DEFAULT_PIN_DIR.into(),
            detach_on_exit: false,
            zone_files: Vec::new(),
            interfaces: Vec::new(),
            maps: Maps::default(),
            tcp: Tcp::default(),
            ttl: Ttl::default(),
            database: DatabaseLimits::default(),
            instance_db: None,
            fleet: Fleet::default(),
            transfer: Transfer::default(),
            rrl: Rrl::default(),
            cookies: Cookies::default(),
            api: Api::default(),
        }
    }
}

impl Default for Maps {
    fn default() -> Self {
        Self { entries: 262_144, answer_slots: 16_384, known_names: 4_194_304 }
    }
}

impl Default for Tcp {
    fn default() -> Self {
        Self { max_connections: 1024, max_per_client: 64, idle_timeout: 10, buffer_bytes: 32 << 20 }
    }
}

impl Ttl {
    pub fn policy(&self) -> CachePolicy {
        CachePolicy {
            max_cache: self.max_cache,
            stale_answer_ttl: self.stale_answer_ttl,
            stale_max: std::time::Duration::from_secs(self.stale_max),
        }
    }
}

impl Default for Ttl {
    fn default() -> Self {
        Self { stale_answer_ttl: 30, stale_max: 3600, max_cache: 86_400 }
    }
}

/// A configuration error: what and where.
#[derive(Debug, thiserror::Error)]
#[error("{file}{location}: {message}")]
pub struct ConfigError {
    pub file: String,
    /// ":LINE" when known.
    pub location: String,
    pub message: String,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            location: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            let message = e.message().trim().to_owned();
            // serde's messages name the type but not the key (unless the key itself is
            // the problem, as in "unknown field `colour`"): name it from the line.
            let message = match line.and_then(|l| key_at(text, l)) {
                Some(key) if !message.contains(&format!("`{}`", key.rsplit('.').next().unwrap_or(&key))) => {
                    format!("{key}: {message}")
                }
                _ => message,
            };
            ConfigError {
                file: file.into(),
                location: line.map(|l| format!(":{l}")).unwrap_or_default(),
                message,
            }
        })?;
        config.validate().map_err(|(key, message)| ConfigError {
            file: file.into(),
            location: line_of(text, key.rsplit('.').next().unwrap_or(key))
                .map(|l| format!(":{l}"))
                .unwrap_or_default(),
            message: format!("{key}: {message}"),
        })?;
        Ok(config)
    }

    /// Checks what the types cannot: returns the key and the problem.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.listen.is_empty() {
            return Err(("listen", "at least one address".into()));
        }
        if !(512..=4096).contains(&self.edns_payload) {
            return Err(("edns_payload", format!("{} is not within 512..=4096", self.edns_payload)));
        }
        if self.maps.entries < 1024 {
            return Err(("maps.entries", format!("{} is below 1024", self.maps.entries)));
        }
        if self.tcp.buffer_bytes < MIN_TCP_BUFFER_BYTES {
            // Two largest messages: one query and its response always fit.
            return Err((
                "tcp.buffer_bytes",
                format!("{} is below {MIN_TCP_BUFFER_BYTES}", self.tcp.buffer_bytes),
            ));
        }
        if self.tcp.max_connections == 0 || self.tcp.max_per_client == 0 {
            return Err(("tcp", "max_connections and max_per_client must be at least 1".into()));
        }
        if self.ttl.stale_answer_ttl == 0 || self.ttl.max_cache == 0 {
            return Err(("ttl", "stale_answer_ttl and max_cache must be at least 1 second".into()));
        }
        if self.database.statement_timeout_ms < 10 {
            return Err((
                "database.statement_timeout_ms",
                format!("{} is below 10", self.database.statement_timeout_ms),
            ));
        }
        if self.fleet.report_every_s == 0 || self.fleet.report_every_s > 3600 {
            return Err((
                "fleet.report_every_s",
                format!("{} is not within 1 to 3600", self.fleet.report_every_s),
            ));
        }
        if self.database.keep_changes_hours == 0 {
            return Err((
                "database.keep_changes_hours",
                "0: the log must keep changes at least an hour".into(),
            ));
        }
        if self.rrl.slip > 10 {
            return Err((
                "rrl.slip",
                format!("{} is above 10 (0: drop all, 1: truncate all)", self.rrl.slip),
            ));
        }
        if !(1..=3600).contains(&self.rrl.window) {
            return Err(("rrl.window", format!("{} is not within 1 to 3600 seconds", self.rrl.window)));
        }
        if self.rrl.buckets < 1024 {
            return Err(("rrl.buckets", format!("{} is below 1024", self.rrl.buckets)));
        }
        for family in [true, false] {
            if self.rrl.exempt.iter().filter(|p| p.addr.is_ipv4() == family).count() > MAX_EXEMPT_PREFIXES {
                return Err((
                    "rrl.exempt",
                    format!("more than {MAX_EXEMPT_PREFIXES} networks of one family"),
                ));
            }
        }
        if self.cookies.previous_secret.is_some() && self.cookies.secret.is_none() {
            return Err(("cookies.previous_secret", "needs cookies.secret (the new one)".into()));
        }
        if self.api.tls_certificate.is_some() != self.api.tls_key.is_some() {
            return Err(("api.tls_key", "api.tls_certificate and api.tls_key go together".into()));
        }
        if self.maps.known_names < 1024 {
            return Err(("maps.known_names", format!("{} is below 1024", self.maps.known_names)));
        }
        if self.maps.answer_slots < 16 {
            return Err(("maps.answer_slots", format!("{} is below 16", self.maps.answer_slots)));
        }
        if !self.pin_dir.is_absolute() {
            return Err(("pin_dir", "must be an absolute path under a bpffs mount".into()));
        }
        for i in &self.interfaces {
            if i.name.is_empty() || i.name.len() > 15 || i.name.contains('/') {
                return Err(("interface.name", format!("{:?} is not an interface name", i.name)));
            }
        }
        for z in &self.zone_files {
            if !z.exists() {
                return Err(("zone_files", format!("{} does not exist", z.display())));
            }
        }
        if let Some(b) = &self.instance_db {
            if !b.sql.contains("$1") {
                return Err(("instance_db.sql", "must take the instance id as $1".into()));
            }
            if !matches!(DbLocation::parse(&b.url), Ok(DbLocation::Postgres(_))) {
                return Err(("instance_db.url", "must be a postgres:// URL".into()));
            }
        }
        Ok(())
    }
}

/// The dotted key assigned on line `line` (1-based), with its table: `maps.entries`.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let key = lines.get(line - 1)?.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// The first line assigning `key` (for errors found after parsing).
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The documented default configuration, as installed.
pub const DEFAULT_CONFIG: &str = r#"# instadns configuration. Every value can be overridden by a flag of `instadns serve`;
# `instadns check-config` validates this file.

# The database: sqlite:PATH (a new file starts empty) or postgres://USER@HOST/DB.
db = "sqlite:/var/lib/instadns/instadns.sqlite"
# When db is a PostgreSQL hot standby: its primary, where this node writes (its fleet
# reports, pruning the change log); changes are read from the standby every 10 ms.
# db_primary = "postgres://USER@PRIMARY/DB"

# UDP and TCP listeners, and the port the XDP program answers.
listen = ["0.0.0.0", "::"]
port = 53
edns_payload = 1232

# Prometheus /metrics, /health and /ready.
metrics = "127.0.0.1:9153"

# Maps and links are pinned here, so restarts and upgrades never stop the fast path.
pin_dir = "/sys/fs/bpf/instadns"
# Detach and unpin when the service stops (otherwise XDP keeps answering what it holds).
detach_on_exit = false

# Zone files imported on start and on reload (SIGHUP).
zone_files = []

# One block per interface the XDP program answers on (xdp_mode: auto, native, skb).
# [[interface]]
# name = "eth0"
# xdp_mode = "auto"

[maps]
entries = 262144
answer_slots = 16384
# Existing names the fast path knows, to answer NXDOMAIN for every other name itself
# (kernel memory grows with the names, about 100 bytes each). A database with more
# names than this gets NXDOMAIN from userspace.
known_names = 4194304

[database]
# Misses per zone per second that may ask the database (names the fast path cannot
# rule out: zones whose instances are looked up in [instance_db]; each costs a few
# statements); over it, queries get the stale answer or SERVFAIL. 0: no cap.
lookups_per_zone = 1000
# Longest a PostgreSQL statement of the daemon may run.
statement_timeout_ms = 2000
# How long the change log keeps changes (every node prunes it); a node cut off from
# the database for longer reloads everything when it is back.
keep_changes_hours = 24

[fleet]
# This node's name in `instadns fleet status` (empty: the host name), and how often it
# reports itself to a PostgreSQL database (silent for three reports: shown as stopped).
name = ""
report_every_s = 5

[transfer]
# Zone transfers (AXFR, IXFR over TCP): clients of these networks may transfer every
# zone unsigned; a key whose scope has the transfer operation may from anywhere.
allow_networks = []
# Secondaries sent a NOTIFY when a zone's serial changes, signed with notify_key if set.
notify = []
# notify_key = "xfr-key."

[rrl]
# Response rate limiting, in XDP and userspace alike: responses per second per client
# network (/24 for IPv4, /56 for IPv6) and answer (the name asked; the zone for the
# NXDOMAIN of names that do not exist; the zone for errors). Over the rate, every
# slip-th response goes out truncated (a real resolver retries over TCP, which cannot
# be spoofed) and the rest are dropped, so no one can aim our answers at a victim.
# On by default: a resolver network asks one name a few times per TTL, far below this.
# 0 turns it off.
responses_per_second = 100
slip = 2
# Seconds of debt a flooding network can run up (it is limited that long after it stops).
window = 15
# Networks never limited, e.g. ["198.18.0.0/24", "fd00:53::/56"].
exempt = []
buckets = 131072

[cookies]
# DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018), answered by XDP
# and userspace alike; a query with a valid server cookie is exempt from [rrl].
enabled = true
# The server secret, 32 hex digits (`openssl rand -hex 16`): nodes of an anycast set
# that share it accept each other's cookies. Unset: a random secret per start.
# To rotate, move the old one to previous_secret: its cookies stay valid meanwhile.
# secret = "..."
# previous_secret = "..."

[api]
# The HTTP management API (JSON; the OpenAPI document at /openapi.json): off unless
# listen is set. Requests carry a bearer token (`instadns token add NAME --access write`).
# listen = "127.0.0.1:8053"
# With both, HTTPS (PEM files); without, plain HTTP: keep it on a management address.
# tls_certificate = "/etc/instadns/api.crt"
# tls_key = "/etc/instadns/api.key"

[tcp]
# A client over max_per_client (per IPv4 address or IPv6 /64), or anyone over
# max_connections, replaces the connection that has made no progress for longest.
max_connections = 1024
max_per_client = 64
# Seconds a connection may send nothing, or take no response, before it is closed.
idle_timeout = 10
# Bytes of queries and responses held by all connections together.
buffer_bytes = 33554432

[ttl]
# TTL of stale answers served while the database is unreachable (RFC 8767 section 4).
stale_answer_ttl = 30
# How long after expiry an answer may be served stale, in seconds.
stale_max = 3600
# Longest any answer stays in the cache and the XDP maps, whatever its TTL.
max_cache = 86400

# Look instances up in the platform's own PostgreSQL instead:
# [instance_db]
# url = "postgres://platform@db.internal/platform"
# sql = "SELECT cluster FROM apps WHERE id = $1"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_default_is_the_default() {
        let parsed = Config::parse(DEFAULT_CONFIG, "default").unwrap();
        let expected = Config { metrics: Some("127.0.0.1:9153".parse().unwrap()), ..Config::default() };
        assert_eq!(parsed, expected);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e =
            Config::parse("db = \"sqlite:x\"\nport = \"fifty-three\"\n", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml:2: port:") && e.contains("string"), "{e}");
        let e = Config::parse("[maps]\nentries = -5\n", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml:2: maps.entries:"), "{e}");
        let e = Config::parse("[maps]\nentries = 10\n", "f.toml").unwrap_err().to_string();
        assert_eq!(e, "f.toml:2: maps.entries: 10 is below 1024");
        let e = Config::parse("[rrl]\nslip = 50\n", "f.toml").unwrap_err().to_string();
        assert_eq!(e, "f.toml:2: rrl.slip: 50 is above 10 (0: drop all, 1: truncate all)");
        let e = Config::parse("[rrl]\nwindow = 0\n", "f.toml").unwrap_err().to_string();
        assert_eq!(e, "f.toml:2: rrl.window: 0 is not within 1 to 3600 seconds");
        let e = Config::parse("[rrl]\nexempt = [\"198.18.0.1/24\"]\n", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml:2:") && e.contains("host bits"), "{e}");
        let e = Config::parse("[cookies]\nsecret = \"abc\"\n", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml:2: cookies.secret:") && e.contains("32 hex digits"), "{e}");
        let e =
            Config::parse("[cookies]\nprevious_secret = \"000102030405060708090a0b0c0d0e0f\"\n", "f.toml")
                .unwrap_err()
                .to_string();
        assert_eq!(e, "f.toml:2: cookies.previous_secret: needs cookies.secret (the new one)");
        let e =
            Config::parse("[api]\nlisten = \"127.0.0.1:8053\"\ntls_certificate = \"/etc/a.crt\"\n", "f.toml")
                .unwrap_err()
                .to_string();
        assert!(e.contains("api.tls_certificate and api.tls_key go together"), "{e}");
        let api = Config::parse("[api]\nlisten = \"127.0.0.1:8053\"\n", "f.toml").unwrap().api;
        assert_eq!(api.listen, Some("127.0.0.1:8053".parse().unwrap()));
        let parsed =
            Config::parse("[cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n", "f.toml").unwrap();
        assert_eq!(parsed.cookies.secret, Some(core::array::from_fn(|i| i as u8)));
        let e = Config::parse("colour = 1\n", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml:1:") && e.contains("colour"), "{e}");
        let e =
            Config::parse("listen = [\"0.0.0.0\"]\nedns_payload = 100\n", "f.toml").unwrap_err().to_string();
        assert_eq!(e, "f.toml:2: edns_payload: 100 is not within 512..=4096");
        let e = Config::parse("[[interface]]\nname = \"eth0\"\nxdp_mode = \"turbo\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:3:") && e.contains("turbo"), "{e}");
        let e = Config::parse("db = \"mysql://x\"\n", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml:1: db:"), "{e}");
    }
}
