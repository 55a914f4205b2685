//! `instadns ttl apply`: the TTL of a cluster's instances, one instance, or one name.

use anyhow::Result;
use clap::{Args, Subcommand};
use instadns::control::ttl;

use super::{output::Usage, target::Target};

#[derive(Subcommand)]
pub enum TtlCommand {
    /// Set the TTL of the answers of a cluster's instances, one instance, or one name
    /// (its static records, or else the instance it names).
    Apply {
        #[command(flatten)]
        target: TtlTarget,
        /// The TTL in seconds.
        #[arg(long, required_unless_present = "clear", conflicts_with = "clear")]
        ttl: Option<u32>,
        /// Back to the name rules' default TTL (instances only).
        #[arg(long)]
        clear: bool,
        /// Print what would change without changing it.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct TtlTarget {
    /// Every instance on this cluster.
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long)]
    instance: Option<i64>,
    /// A name: its static records, or the instance it belongs to.
    #[arg(long)]
    name: Option<String>,
}

pub async fn run(target_of: &Target, command: TtlCommand) -> Result<()> {
    match command {
        TtlCommand::Apply { target, ttl, clear: _, dry_run } => {
            // clap makes one of --ttl and --clear present.
            let target = match (target.cluster, target.instance, target.name) {
                (Some(c), _, _) => ttl::Target::Cluster(c),
                (_, Some(id), _) => ttl::Target::Instance(id),
                (_, _, Some(name)) => ttl::Target::Name(name),
                (None, None, None) => return Err(Usage("give --cluster, --instance or --name".into()).into()),
            };
            for line in target_of.apply_ttl(&target, ttl, dry_run).await? {
                println!("{line}");
            }
        }
    }
    Ok(())
}
