//! `instadns zone record`: the static records of a zone.

use anyhow::Result;
use clap::Subcommand;
use instadns::store::RecordRow;

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum RecordCommand {
    /// Add a static record, e.g. `zone record add example.com www.example.com A 192.0.2.7`.
    Add {
        zone: String,
        name: String,
        #[arg(value_name = "TYPE")]
        rtype: String,
        /// The record data in zone-file form.
        data: String,
        /// TTL (default: the zone's).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Remove the records of TYPE at NAME (only the one with DATA, if given).
    Rm {
        zone: String,
        name: String,
        #[arg(value_name = "TYPE")]
        rtype: String,
        data: Option<String>,
    },
    /// List a zone's static records (or those at --name).
    List {
        zone: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Show the static records at NAME.
    Show {
        zone: String,
        name: String,
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(target: &Target, command: RecordCommand) -> Result<()> {
    match command {
        RecordCommand::Add { zone, name, rtype, data, ttl } => {
            target.add_record(&zone, &name, &rtype, ttl, &data).await?;
            println!("record added");
        }
        RecordCommand::Rm { zone, name, rtype, data } => {
            let n = target.remove_record(&zone, &name, &rtype, data.as_deref()).await?;
            println!("{n} record(s) removed");
        }
        RecordCommand::List { zone, name, format } => {
            emit(format.json, &target.list_records(&zone, name.as_deref()).await?, |r| lines(r))?
        }
        RecordCommand::Show { zone, name, format } => {
            emit(format.json, &target.list_records(&zone, Some(&name)).await?, |r| lines(r))?
        }
    }
    Ok(())
}

/// Records in zone-file form.
fn lines(records: &[RecordRow]) -> String {
    records.iter().map(|r| format!("{} {} IN {} {}\n", r.name, r.ttl, r.rtype, r.data)).collect()
}
