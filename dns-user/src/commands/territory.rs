//! `instadns territory`: named sets of client networks for directional answers.

use std::{fmt::Write as _, path::Path, path::PathBuf};

use anyhow::{Context as _, Result, anyhow};
use clap::Subcommand;
use instadns::{model::Prefix, store::territories::TerritoryInfo};

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum TerritoryCommand {
    /// Add a territory: client networks that get their own directional answers.
    Add {
        name: String,
        /// A client network in CIDR notation (IPv4 or IPv6); repeat.
        #[arg(long = "prefix")]
        prefixes: Vec<Prefix>,
        /// A file of networks, one per line ('#' starts a comment).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Change a territory's networks.
    Set {
        name: String,
        #[arg(long = "prefix")]
        prefixes: Vec<Prefix>,
        #[arg(long = "remove-prefix")]
        remove_prefixes: Vec<Prefix>,
        /// Replace every network with those of this file (and --prefix).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Remove a territory (no cluster address may use it).
    #[command(alias = "remove")]
    Rm { name: String },
    /// List territories and their networks.
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Show one territory.
    Show {
        name: String,
        #[command(flatten)]
        format: Format,
    },
}

/// Networks from `--file` (one per line, '#' comments) and `--prefix`.
fn prefixes(mut out: Vec<Prefix>, file: Option<&Path>) -> Result<Vec<Prefix>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("--file {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if !line.is_empty() {
                out.push(line.parse().map_err(|e| anyhow!("{}:{}: {e}", path.display(), n + 1))?);
            }
        }
    }
    Ok(out)
}

pub async fn run(target: &Target, command: TerritoryCommand) -> Result<()> {
    match command {
        TerritoryCommand::Add { name, prefixes: given, file } => {
            let prefixes = prefixes(given, file.as_deref())?;
            target.add_territory(&name, &prefixes).await?;
            println!("territory {name} added with {} network(s)", prefixes.len());
        }
        TerritoryCommand::Set { name, prefixes: given, remove_prefixes, file } => {
            let replace = file.is_some();
            let prefixes = prefixes(given, file.as_deref())?;
            target.set_territory(&name, replace, &prefixes, &remove_prefixes).await?;
            println!("territory {name} updated");
        }
        TerritoryCommand::Rm { name } => {
            target.remove_territory(&name).await?;
            println!("territory {name} removed");
        }
        TerritoryCommand::List { format } => {
            emit(format.json, &target.list_territories().await?, |list| list.iter().map(describe).collect())?
        }
        TerritoryCommand::Show { name, format } => {
            emit(format.json, &target.show_territory(&name).await?, describe)?
        }
    }
    Ok(())
}

fn describe(t: &TerritoryInfo) -> String {
    let mut out = format!("{}  {} network(s), index {}\n", t.name, t.prefixes.len(), t.index);
    for p in &t.prefixes {
        let _ = writeln!(out, "    {p}");
    }
    out
}
