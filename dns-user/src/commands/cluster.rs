//! `instadns cluster`: clusters, their services, addresses and health checks.

use std::{fmt::Write as _, net::IpAddr};

use anyhow::Result;
use clap::{Args, Subcommand};
use instadns::{
    model::{
        AddressOrder, AddressSpec, CheckTarget, Fallback, HealthCheck, Pick,
        cluster::check_defaults::{EXPECT_STATUS, FALL, INTERVAL_MS, RISE, TIMEOUT_MS},
    },
    store::{ClusterInfo, ClusterUpdate},
};

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Add a cluster.
    Add {
        name: String,
        #[command(flatten)]
        args: ClusterArgs,
    },
    /// Change a cluster's services, addresses, steering or health check.
    Set {
        name: String,
        #[command(flatten)]
        args: ClusterArgs,
    },
    /// Remove a cluster that hosts no instance.
    Rm { name: String },
    /// List clusters.
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Show one cluster.
    Show {
        name: String,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Args, Clone)]
pub struct ClusterArgs {
    /// A service and its CNAME target, SERVICE=TARGET (e.g. ws=ws-mt1.example.com); repeat.
    #[arg(long = "service", value_parser = parse_service, value_name = "SERVICE=TARGET")]
    services: Vec<(String, String)>,
    /// Remove a service.
    #[arg(long = "remove-service")]
    remove_services: Vec<String>,
    /// A load-balancer address, IP[,weight=N][,queue=N][,territory=NAME]; repeat. An
    /// existing address takes the new attributes. weight: share of `--pick one` answers
    /// (default 1, 0 = never); queue: failover position (default 0, lower answers first
    /// while healthy); territory: answered only to that territory's clients.
    #[arg(long = "address")]
    addresses: Vec<AddressSpec>,
    /// Remove an address.
    #[arg(long = "remove-address")]
    remove_addresses: Vec<IpAddr>,
    /// Address order of host answers: fixed, or rotate (round robin) [add: fixed].
    #[arg(long, value_enum)]
    order: Option<AddressOrder>,
    /// How many addresses a host answer carries: all, or one (picked by weight per query) [add: all].
    #[arg(long, value_enum)]
    pick: Option<Pick>,
    /// What a failover queue answers when every address is down: all, or last (the last
    /// queue position's addresses) [add: all].
    #[arg(long, value_enum)]
    fallback: Option<Fallback>,
    /// Health-check the addresses: tcp:PORT (connect) or http:PORT/PATH (GET, expecting
    /// --check-expect). Unhealthy addresses leave the answers (see queue=).
    #[arg(long, value_name = "tcp:PORT|http:PORT/PATH")]
    check: Option<CheckTarget>,
    /// Stop health-checking (every address counts as healthy).
    #[arg(long, conflicts_with = "check")]
    no_check: bool,
    /// HTTP status the check expects.
    #[arg(long, default_value_t = EXPECT_STATUS, requires = "check")]
    check_expect: u16,
    /// Host header of HTTP checks (default: the address).
    #[arg(long, requires = "check")]
    check_host: Option<String>,
    /// Milliseconds between probes of each address.
    #[arg(long, default_value_t = INTERVAL_MS, requires = "check")]
    check_interval_ms: u32,
    /// Milliseconds a probe may take.
    #[arg(long, default_value_t = TIMEOUT_MS, requires = "check")]
    check_timeout_ms: u32,
    /// Consecutive successes that bring a down address back.
    #[arg(long, default_value_t = RISE, requires = "check")]
    rise: u32,
    /// Consecutive failures that take an address down.
    #[arg(long, default_value_t = FALL, requires = "check")]
    fall: u32,
}

/// `SERVICE=TARGET`.
fn parse_service(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((service, target)) if !service.is_empty() && !target.is_empty() => {
            Ok((service.to_owned(), target.to_owned()))
        }
        _ => Err(format!("{text:?}: expected SERVICE=TARGET")),
    }
}

impl ClusterArgs {
    fn update(self) -> ClusterUpdate {
        ClusterUpdate {
            set_services: self.services,
            remove_services: self.remove_services,
            add_addresses: self.addresses,
            remove_addresses: self.remove_addresses,
            order: self.order,
            pick: self.pick,
            fallback: self.fallback,
            check: self.check.map(|target| HealthCheck {
                target,
                host: self.check_host,
                expect_status: self.check_expect,
                interval_ms: self.check_interval_ms,
                timeout_ms: self.check_timeout_ms,
                rise: self.rise,
                fall: self.fall,
            }),
            remove_check: self.no_check,
        }
    }
}

pub async fn run(target: &Target, command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Add { name, args } => {
            target.add_cluster(&name, &args.update()).await?;
            println!("cluster {name} added");
        }
        ClusterCommand::Set { name, args } => {
            target.set_cluster(&name, &args.update()).await?;
            println!("cluster {name} updated");
        }
        ClusterCommand::Rm { name } => {
            target.remove_cluster(&name).await?;
            println!("cluster {name} removed");
        }
        ClusterCommand::List { format } => emit(format.json, &target.list_clusters().await?, |clusters| {
            clusters.iter().map(describe).collect()
        })?,
        ClusterCommand::Show { name, format } => {
            emit(format.json, &target.show_cluster(&name).await?, describe)?
        }
    }
    Ok(())
}

fn describe(c: &ClusterInfo) -> String {
    let mut out = format!(
        "{}  order {}  pick {}  fallback {}  instances {}\n",
        c.cluster.name, c.cluster.order, c.cluster.pick, c.cluster.fallback, c.instances
    );
    if let Some(k) = &c.check {
        let what = match k.target.kind {
            instadns::model::CheckKind::Http => format!("{} expect {}", k.target, k.expect_status),
            instadns::model::CheckKind::Tcp => k.target.to_string(),
        };
        let _ = writeln!(
            out,
            "    check {what} every {} ms, timeout {} ms, rise {} fall {}",
            k.interval_ms, k.timeout_ms, k.rise, k.fall
        );
    }
    for s in &c.services {
        let _ = writeln!(out, "    service {} -> {}", s.service, s.target);
    }
    for a in &c.addresses {
        let _ = writeln!(out, "    address {a}");
    }
    out
}
