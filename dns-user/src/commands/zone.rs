//! `instadns zone`: zones (apex, SOA, name servers), zone files; rules and static records
//! are sub-nouns ([`super::rule`], [`super::record`]).

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use instadns::{
    model::rule::RuleSpec,
    store::{NewZone, ZoneInfo, ZoneUpdate},
};

use super::{Format, output::emit, record, rule, target::Target};
use crate::daemon::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Subcommand)]
pub enum ZoneCommand {
    /// Add a zone.
    Add {
        /// The zone apex, e.g. example.com
        apex: String,
        /// A name server of the zone (repeat for several).
        #[arg(long, required = true)]
        ns: Vec<String>,
        /// SOA MNAME (default: the first --ns).
        #[arg(long)]
        mname: Option<String>,
        /// SOA RNAME, the contact mailbox as a name (default: hostmaster.APEX).
        #[arg(long)]
        rname: Option<String>,
        /// TTL of the SOA and NS records, and default TTL of static records.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// SOA MINIMUM: the TTL of negative answers (RFC 2308).
        #[arg(long, default_value_t = 60)]
        minimum: u32,
        /// A name rule PATTERN=KIND[:TTL], e.g. '{service}-{id}.apps=service:300' or '{id}=host'
        /// (kinds: service, host, tombstone); repeat for several.
        #[arg(long = "rule", value_name = "PATTERN=KIND[:TTL]")]
        rules: Vec<RuleSpec>,
    },
    /// Change a zone's SOA fields or name servers.
    Set {
        apex: String,
        #[arg(long)]
        mname: Option<String>,
        #[arg(long)]
        rname: Option<String>,
        /// TTL of the SOA and NS records, and default TTL of static records.
        #[arg(long)]
        ttl: Option<u32>,
        /// SOA MINIMUM: the TTL of negative answers.
        #[arg(long)]
        minimum: Option<u32>,
        #[arg(long)]
        refresh: Option<u32>,
        #[arg(long)]
        retry: Option<u32>,
        #[arg(long)]
        expire: Option<u32>,
        /// Add a name server (repeat for several).
        #[arg(long = "add-ns")]
        add_ns: Vec<String>,
        /// Remove a name server (the last one cannot go).
        #[arg(long = "remove-ns")]
        remove_ns: Vec<String>,
    },
    /// Remove a zone. One that holds rules, records or custom domains needs --force,
    /// which removes them with it.
    Rm {
        apex: String,
        #[arg(long)]
        force: bool,
    },
    /// List zones with their name servers and rules, and whether their names can all be
    /// listed (then the fast path answers NXDOMAIN for every other name itself).
    List {
        #[command(flatten)]
        format: Format,
        /// The daemon's configuration, which says whether instances come from the
        /// platform's database [default: /etc/instadns/instadns.toml if present].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show one zone: SOA, name servers, rules, how many records.
    Show {
        apex: String,
        #[command(flatten)]
        format: Format,
        /// As for `zone list`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Import an RFC 1035 zone file (creates the zone or replaces its static records).
    Import {
        file: PathBuf,
        /// The origin, if the file has no $ORIGIN.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print a zone's static data as an RFC 1035 zone file.
    Export { zone: String },
    /// Name rules of a zone.
    Rule {
        #[command(subcommand)]
        command: rule::RuleCommand,
    },
    /// Static records of a zone.
    Record {
        #[command(subcommand)]
        command: record::RecordCommand,
    },
}

pub async fn run(target: &Target, command: ZoneCommand) -> Result<()> {
    match command {
        ZoneCommand::Add { apex, ns, mname, rname, ttl, minimum, rules } => {
            let zone = NewZone::new(&apex, ns, mname, rname, minimum, ttl, rules);
            target.add_zone(&zone).await.with_context(|| format!("zone add {apex}"))?;
            println!("zone {apex} added");
        }
        ZoneCommand::Set { apex, mname, rname, ttl, minimum, refresh, retry, expire, add_ns, remove_ns } => {
            let update = ZoneUpdate {
                soa_mname: mname,
                soa_rname: rname,
                ttl,
                soa_minimum: minimum,
                soa_refresh: refresh,
                soa_retry: retry,
                soa_expire: expire,
                add_ns,
                remove_ns,
            };
            target.set_zone(&apex, &update).await?;
            println!("zone {apex} updated");
        }
        ZoneCommand::Rm { apex, force } => {
            target.remove_zone(&apex, force).await?;
            println!("zone {apex} removed");
        }
        ZoneCommand::List { format, config } => {
            let byo = instances_from_platform(config.as_deref())?;
            let zones: Vec<Listed> =
                target.list_zones().await?.into_iter().map(|info| Listed::new(info, byo)).collect();
            emit(format.json, &zones, |zones| zones.iter().map(summary).collect())?
        }
        ZoneCommand::Show { apex, format, config } => {
            let byo = instances_from_platform(config.as_deref())?;
            emit(format.json, &Listed::new(target.show_zone(&apex).await?, byo), details)?
        }
        ZoneCommand::Import { file, origin } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("FILE {}", file.display()))?;
            let (apex, n) = target
                .database("zone import")?
                .import_zone(&text, origin.as_deref())
                .await
                .with_context(|| format!("FILE {}", file.display()))?;
            println!("zone {apex}: {n} records imported");
        }
        ZoneCommand::Export { zone } => {
            print!("{}", target.database("zone export")?.export_zone(&zone).await?)
        }
        ZoneCommand::Rule { command } => rule::run(target, command).await?,
        ZoneCommand::Record { command } => record::run(target, command).await?,
    }
    Ok(())
}

/// A zone as listed: with whether every name it has can be listed.
#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    info: ZoneInfo,
    /// Every name is known (records, and rules over our instances table): the fast
    /// path answers NXDOMAIN for the others itself. False when the rules make names from
    /// instances looked up in the platform's database (`[instance_db]`), which cannot be
    /// listed: such misses go to userspace within the database budget.
    enumerable: bool,
}

impl Listed {
    fn new(info: ZoneInfo, instances_from_platform: bool) -> Self {
        let enumerable = !instances_from_platform || info.rules.is_empty();
        Self { info, enumerable }
    }
}

/// Whether the daemon's configuration (`file`, else the default one if present) looks
/// instances up in the platform's database.
fn instances_from_platform(file: Option<&std::path::Path>) -> Result<bool> {
    let default = std::path::Path::new(DEFAULT_CONFIG_PATH);
    let path = match file {
        Some(f) => f,
        None if default.exists() => default,
        None => return Ok(false),
    };
    Ok(Config::load(path)?.instance_db.is_some())
}

/// A zone's line in `zone list`, its rules and whether its names can all be listed.
fn summary(listed: &Listed) -> String {
    let z = &listed.info;
    let mut out = format!(
        "{}  SOA {} {} serial {}  NS {}\n",
        z.zone.apex,
        z.zone.soa_mname,
        z.zone.soa_rname,
        z.zone.soa_serial,
        z.ns.join(" ")
    );
    for r in &z.rules {
        let _ = writeln!(out, "    rule {} -> {} (TTL {})", r.pattern, r.kind, r.ttl);
    }
    out.push_str(if listed.enumerable {
        "    names: all known (XDP answers NXDOMAIN for the others)\n"
    } else {
        "    names: not enumerable (instances come from [instance_db]; misses go to userspace within the database budget)\n"
    });
    out
}

fn details(listed: &Listed) -> String {
    let z = &listed.info;
    let s = &z.zone;
    let mut out = summary(listed);
    let _ = writeln!(
        out,
        "    refresh {} retry {} expire {} minimum {}  TTL: SOA {} NS {} records {}",
        s.soa_refresh, s.soa_retry, s.soa_expire, s.soa_minimum, s.soa_ttl, s.ns_ttl, s.default_ttl
    );
    let _ = writeln!(out, "    {} static record(s)", z.records);
    out
}
