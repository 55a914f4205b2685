//! `instadns check-config`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::daemon::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Args)]
pub struct CheckConfigArgs {
    /// The file (default: /etc/instadns/instadns.toml).
    file: Option<PathBuf>,
}

pub fn check(args: CheckConfigArgs) -> Result<()> {
    let path = args.file.unwrap_or_else(|| DEFAULT_CONFIG_PATH.into());
    Config::load(&path)?;
    println!("{}: OK", path.display());
    Ok(())
}
