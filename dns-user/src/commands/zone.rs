//! `instadns zone`: zones (apex, SOA, name servers), zone files; rules and static records
//! are sub-nouns ([`super::rule`], [`super::record`]).

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use instadns::{
    model::rule::RuleSpec,
    store::{Database, NewZone, ZoneInfo, ZoneUpdate},
};

use super::{Format, output::emit, record, rule};

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
    /// List zones with their name servers and rules.
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Show one zone: SOA, name servers, rules, how many records.
    Show {
        apex: String,
        #[command(flatten)]
        format: Format,
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

pub async fn run(db: &Database, command: ZoneCommand) -> Result<()> {
    match command {
        ZoneCommand::Add { apex, ns, mname, rname, ttl, minimum, rules } => {
            let mname = mname.or_else(|| ns.first().cloned()).unwrap_or_default();
            let rname = rname.unwrap_or_else(|| format!("hostmaster.{}", apex.trim_end_matches('.')));
            let zone = NewZone {
                apex: apex.clone(),
                soa_mname: mname,
                soa_rname: rname,
                ns,
                soa_minimum: minimum,
                ttl,
                rules,
            };
            db.add_zone(&zone).await.with_context(|| format!("zone add {apex}"))?;
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
            db.set_zone(&apex, &update).await?;
            println!("zone {apex} updated");
        }
        ZoneCommand::Rm { apex, force } => {
            db.remove_zone(&apex, force).await?;
            println!("zone {apex} removed");
        }
        ZoneCommand::List { format } => {
            emit(format.json, &db.list_zones().await?, |zones| zones.iter().map(summary).collect())?
        }
        ZoneCommand::Show { apex, format } => emit(format.json, &db.show_zone(&apex).await?, details)?,
        ZoneCommand::Import { file, origin } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("FILE {}", file.display()))?;
            let (apex, n) = db
                .import_zone(&text, origin.as_deref())
                .await
                .with_context(|| format!("FILE {}", file.display()))?;
            println!("zone {apex}: {n} records imported");
        }
        ZoneCommand::Export { zone } => print!("{}", db.export_zone(&zone).await?),
        ZoneCommand::Rule { command } => rule::run(db, command).await?,
        ZoneCommand::Record { command } => record::run(db, command).await?,
    }
    Ok(())
}

/// A zone's line in `zone list`, and its rules.
fn summary(z: &ZoneInfo) -> String {
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
    out
}

fn details(z: &ZoneInfo) -> String {
    let s = &z.zone;
    let mut out = summary(z);
    let _ = writeln!(
        out,
        "    refresh {} retry {} expire {} minimum {}  TTL: SOA {} NS {} records {}",
        s.soa_refresh, s.soa_retry, s.soa_expire, s.soa_minimum, s.soa_ttl, s.ns_ttl, s.default_ttl
    );
    let _ = writeln!(out, "    {} static record(s)", z.records);
    out
}
