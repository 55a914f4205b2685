//! `instadns db`: migrations, the demo data, pruning the change log.

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::DbArg;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply pending schema migrations (the server also does this on start).
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Load the demo data into an empty database (README: "The demo data").
    Demo {
        #[command(flatten)]
        db: DbArg,
    },
    /// Delete change log entries older than --keep-hours (the daemons do this hourly
    /// with `[database] keep_changes_hours`); nodes whose cursor is older reload
    /// everything.
    Prune {
        #[command(flatten)]
        db: DbArg,
        /// Keep the changes of the last this many hours (0: prune every change).
        #[arg(long, default_value_t = 24)]
        keep_hours: u64,
    },
}

pub async fn run(command: DbCommand) -> Result<()> {
    match command {
        DbCommand::Migrate { db } => {
            db.open().await?;
            println!("schema up to date");
        }
        DbCommand::Demo { db } => {
            let db = db.open().await?;
            db.seed_demo().await.context("loading the demo data")?;
            println!("demo data loaded");
        }
        DbCommand::Prune { db, keep_hours } => {
            let db = db.open().await?;
            let keep = std::time::Duration::from_secs(keep_hours.saturating_mul(3600));
            let pruned = db.prune_changes(keep).await.context("pruning the change log")?;
            let (_, through) = db.log_bounds().await.context("reading the change log")?;
            println!("pruned {pruned} changes; the log now starts after change {through}");
        }
    }
    Ok(())
}
