//! `instadns zone rule`: the name rules of a zone.

use anyhow::Result;
use clap::{Args, Subcommand};
use instadns::model::{Pattern, RuleKind, rule::RuleSpec};

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum RuleCommand {
    /// Add a name rule.
    Add(RuleArgs),
    /// Change the kind or TTL of a rule.
    Set(RuleArgs),
    /// Remove a name rule.
    Rm { zone: String, pattern: String },
    /// List a zone's rules, in the order they are tried.
    List {
        zone: String,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Args)]
pub struct RuleArgs {
    zone: String,
    /// The pattern, relative to the apex: {service}-{id}.apps, {name}.{owner}, {id}, _moved.{id}
    pattern: Pattern,
    /// service (CNAME to the cluster's service target), host (A/AAAA of the cluster),
    /// tombstone (TXT of the last move).
    #[arg(value_enum)]
    kind: RuleKind,
    /// TTL of the rule's answers [default: 300 for service, else 60].
    #[arg(long)]
    ttl: Option<u32>,
}

impl RuleArgs {
    fn rule(self) -> (String, RuleSpec) {
        let ttl = self.ttl.unwrap_or(self.kind.default_ttl());
        (self.zone, RuleSpec { pattern: self.pattern, kind: self.kind, ttl })
    }
}

pub async fn run(target: &Target, command: RuleCommand) -> Result<()> {
    match command {
        RuleCommand::Add(args) => {
            let (zone, rule) = args.rule();
            target.put_rule(&zone, &rule, false).await?;
            println!("rule {} -> {} added to {zone}", rule.pattern, rule.kind);
        }
        RuleCommand::Set(args) => {
            let (zone, rule) = args.rule();
            target.put_rule(&zone, &rule, true).await?;
            println!("rule {} of {zone} is now {} (TTL {})", rule.pattern, rule.kind, rule.ttl);
        }
        RuleCommand::Rm { zone, pattern } => {
            target.remove_rule(&zone, &pattern).await?;
            println!("rule {pattern} removed from {zone}");
        }
        RuleCommand::List { zone, format } => emit(format.json, &target.list_rules(&zone).await?, |rules| {
            rules.iter().map(|r| format!("{} -> {} (TTL {})\n", r.pattern, r.kind, r.ttl)).collect()
        })?,
    }
    Ok(())
}
