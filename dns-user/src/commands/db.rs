//! `instadns db`: migrations and the demo data.

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
    }
    Ok(())
}
