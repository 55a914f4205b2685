//! `instadns domain`: custom domains of instances.

use anyhow::Result;
use clap::Subcommand;
use instadns::store::DomainRow;

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Attach a custom domain to an instance.
    Add {
        hostname: String,
        #[arg(long)]
        instance: i64,
    },
    /// Move a custom domain to another instance.
    Set {
        hostname: String,
        #[arg(long)]
        instance: i64,
    },
    /// Detach a custom domain.
    Rm { hostname: String },
    /// List custom domains by hostname (a page at a time: --after the last one shown).
    List {
        /// Only this instance's.
        #[arg(long)]
        instance: Option<i64>,
        #[arg(long, default_value = "")]
        after: String,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        #[command(flatten)]
        format: Format,
    },
    /// Show which instance a custom domain belongs to.
    Show {
        hostname: String,
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(target: &Target, command: DomainCommand) -> Result<()> {
    match command {
        DomainCommand::Add { hostname, instance } => {
            target.put_domain(&hostname, instance, false).await?;
            println!("{hostname} -> instance {instance}");
        }
        DomainCommand::Set { hostname, instance } => {
            target.put_domain(&hostname, instance, true).await?;
            println!("{hostname} -> instance {instance}");
        }
        DomainCommand::Rm { hostname } => {
            target.remove_domain(&hostname).await?;
            println!("{hostname} removed");
        }
        DomainCommand::List { instance, after, limit, format } => {
            emit(format.json, &target.list_domains(instance, &after, limit).await?, |list| {
                list.iter().map(line).collect()
            })?
        }
        DomainCommand::Show { hostname, format } => {
            emit(format.json, &target.domain(&hostname).await?, line)?
        }
    }
    Ok(())
}

fn line(d: &DomainRow) -> String {
    format!("{} -> instance {}\n", d.hostname, d.instance)
}
