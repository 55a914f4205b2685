//! The flags of `instadns serve`: each overrides the configuration file's value
//! ([`serve_config`]).

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use anyhow::{Result, bail};
use clap::Args;
use instadns::{fastpath::loader::XdpModeArg, store::DbLocation};

use super::config::{Config, DEFAULT_CONFIG_PATH, InstanceDb, Interface};

#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (default: /etc/instadns/instadns.toml if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Interface to attach the XDP program to; repeat for several (replaces the config's).
    #[arg(long = "iface", value_name = "IFACE")]
    pub ifaces: Vec<String>,
    /// XDP attach mode of the --iface interfaces: auto tries native (driver) mode and falls
    /// back to generic (SKB) mode.
    #[arg(long, value_enum)]
    pub xdp_mode: Option<XdpModeArg>,
    /// Serve from userspace only, without the XDP fast path.
    #[arg(long, conflicts_with_all = ["ifaces", "xdp_mode"])]
    pub no_xdp: bool,
    /// The database: sqlite:PATH (or a plain path; a new file starts empty) or postgres://...
    #[arg(long, env = "INSTADNS_DB")]
    pub db: Option<DbLocation>,
    /// When --db is a PostgreSQL hot standby: its primary, where this node writes (its
    /// reports, pruning the log); changes are then read from the standby by polling.
    #[arg(long, value_name = "URL")]
    pub db_primary: Option<DbLocation>,
    /// Address to listen on (UDP and TCP); repeat for several. Default: all IPv4 and IPv6 addresses.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<IpAddr>,
    /// DNS port, for the sockets and the XDP program [default: 53].
    #[arg(long)]
    pub port: Option<u16>,
    /// UDP payload size advertised in EDNS(0) responses, 512 to 4096 [default: 1232].
    #[arg(long, value_parser = clap::value_parser!(u16).range(512..=4096))]
    pub edns_payload: Option<u16>,
    /// Names the XDP maps hold (spread over the name-length buckets, short names first). LRU
    /// maps start evicting before they are full: leave headroom over the hot set [default: 262144].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1024..))]
    pub map_entries: Option<u32>,
    /// Distinct answers the XDP answer array holds; names with identical answers share one
    /// [default: 16384].
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..))]
    pub answer_slots: Option<u32>,
    /// Serve Prometheus /metrics, /health and /ready on this address, e.g. 127.0.0.1:9153.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Serve the HTTP management API on this address, e.g. 127.0.0.1:8053 (off by default).
    #[arg(long, value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// The API's TLS certificate chain (PEM); with --api-tls-key, the API is HTTPS.
    #[arg(long, value_name = "FILE", requires = "api_tls_key")]
    pub api_tls_certificate: Option<std::path::PathBuf>,
    /// The API's TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "api_tls_certificate")]
    pub api_tls_key: Option<std::path::PathBuf>,
    /// A network whose clients may transfer zones unsigned, e.g. 198.18.0.0/15; repeat
    /// for several.
    #[arg(long = "transfer-allow", value_name = "NETWORK")]
    pub transfer_allow: Vec<instadns::model::prefix::Prefix>,
    /// A secondary to send NOTIFY to on every serial change, e.g. 198.18.0.2:53; repeat
    /// for several.
    #[arg(long = "notify", value_name = "ADDR")]
    pub notify: Vec<SocketAddr>,
    /// Sign NOTIFY messages with this key (a name from `instadns key list`).
    #[arg(long, value_name = "KEY", value_parser = instadns::model::key::key_name)]
    pub notify_key: Option<hickory_proto::rr::Name>,
    /// Most TCP connections served at once [default: 1024].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub tcp_max_connections: Option<u64>,
    /// TCP connections of one client address (IPv6: /64) [default: 64].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub tcp_max_per_client: Option<u64>,
    /// Seconds an idle TCP connection stays open [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tcp_idle_timeout: Option<u64>,
    /// Where to pin the maps and links on bpffs, so restarts keep the fast path answering
    /// [default: /sys/fs/bpf/instadns].
    #[arg(long, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
    /// Detach the XDP program and remove the pins when stopping.
    #[arg(long)]
    pub detach_on_exit: bool,
    /// Look instances up in the platform's own PostgreSQL instead of our instances table
    /// (with --instance-sql).
    #[arg(long, value_name = "URL", requires = "instance_sql")]
    pub instance_db: Option<String>,
    /// The SQL mapping an instance id ($1) to a cluster name (first column) and optionally a
    /// TTL (second column), e.g. 'SELECT cluster FROM apps WHERE id = $1'.
    #[arg(long, value_name = "SQL", requires = "instance_db")]
    pub instance_sql: Option<String>,
    /// This node's name in `instadns fleet status` [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Seconds between this node's reports to the fleet table [default: 5].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub node_report_every: Option<u64>,
    /// Misses per zone per second that may ask the database (names the fast path cannot
    /// rule out; 0: no cap) [default: 1000].
    #[arg(long, value_name = "N")]
    pub lookups_per_zone: Option<u32>,
    /// Response rate limit: responses per second per client network (/24, /56) and
    /// answer; 0 turns it off [default: 100].
    #[arg(long, value_name = "N")]
    pub rrl_rate: Option<u32>,
    /// Every Nth response over the rate goes out truncated, the rest are dropped (0: drop
    /// all, 1: truncate all) [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub rrl_slip: Option<u32>,
    /// Seconds of debt a flooding network can run up [default: 15].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub rrl_window: Option<u32>,
    /// A network never rate limited, e.g. 198.18.0.0/24; repeat for several.
    #[arg(long = "rrl-exempt", value_name = "NETWORK")]
    pub rrl_exempt: Vec<instadns::model::prefix::Prefix>,
}

/// The configuration file's settings with the flags' overrides.
pub fn serve_config(args: &ServeArgs) -> Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => Config::load(Path::new(DEFAULT_CONFIG_PATH))?,
        None => Config::default(),
    };
    if let Some(db) = &args.db {
        config.db = db.clone();
    }
    if let Some(primary) = &args.db_primary {
        config.db_primary = Some(primary.clone());
    }
    if !args.ifaces.is_empty() {
        config.interfaces = args
            .ifaces
            .iter()
            .map(|name| Interface { name: name.clone(), xdp_mode: args.xdp_mode.unwrap_or(XdpModeArg::Auto) })
            .collect();
    } else if let Some(mode) = args.xdp_mode {
        config.interfaces.iter_mut().for_each(|i| i.xdp_mode = mode);
    }
    if !args.transfer_allow.is_empty() {
        config.transfer.allow_networks = args.transfer_allow.clone();
    }
    if !args.notify.is_empty() {
        config.transfer.notify = args.notify.clone();
    }
    if args.notify_key.is_some() {
        config.transfer.notify_key = args.notify_key.clone();
    }
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    config.rrl.responses_per_second = args.rrl_rate.unwrap_or(config.rrl.responses_per_second);
    config.rrl.slip = args.rrl_slip.unwrap_or(config.rrl.slip);
    config.rrl.window = args.rrl_window.unwrap_or(config.rrl.window);
    if !args.rrl_exempt.is_empty() {
        config.rrl.exempt = args.rrl_exempt.clone();
    }
    config.port = args.port.unwrap_or(config.port);
    config.edns_payload = args.edns_payload.unwrap_or(config.edns_payload);
    config.maps.entries = args.map_entries.unwrap_or(config.maps.entries);
    config.maps.answer_slots = args.answer_slots.unwrap_or(config.maps.answer_slots);
    config.metrics = args.metrics.or(config.metrics);
    config.api.listen = args.api_listen.or(config.api.listen);
    if let (Some(certificate), Some(key)) = (&args.api_tls_certificate, &args.api_tls_key) {
        config.api.tls_certificate = Some(certificate.clone());
        config.api.tls_key = Some(key.clone());
    }
    config.tcp.max_connections = args.tcp_max_connections.map_or(config.tcp.max_connections, |n| n as usize);
    config.tcp.max_per_client = args.tcp_max_per_client.map_or(config.tcp.max_per_client, |n| n as usize);
    config.tcp.idle_timeout = args.tcp_idle_timeout.unwrap_or(config.tcp.idle_timeout);
    if let Some(dir) = &args.pin_dir {
        config.pin_dir = dir.clone();
    }
    config.detach_on_exit |= args.detach_on_exit;
    config.database.lookups_per_zone = args.lookups_per_zone.unwrap_or(config.database.lookups_per_zone);
    if let Some(name) = &args.node_name {
        config.fleet.name = name.clone();
    }
    config.fleet.report_every_s = args.node_report_every.unwrap_or(config.fleet.report_every_s);
    if let (Some(url), Some(sql)) = (&args.instance_db, &args.instance_sql) {
        config.instance_db = Some(InstanceDb { url: url.clone(), sql: sql.clone() });
    }
    if args.no_xdp {
        config.interfaces.clear();
    } else if config.interfaces.is_empty() {
        bail!(
            "no interface to attach XDP to: give --iface IFACE, add an [[interface]] to the configuration, or run with --no-xdp"
        );
    }
    Ok(config)
}
