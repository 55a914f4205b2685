//! `instadns status`, `instadns detach` and `instadns prepare-pins`: the pinned fast
//! path, read from bpffs (no daemon needed).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use dns_common::{maps::NAME_MAP_NAMES, stats::Outcome};
use instadns::fastpath::{MapUsage, pin, pinned_keys, stats::pinned_counters};

use crate::daemon::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_PIN_DIR};

#[derive(Args)]
pub struct PinArgs {
    /// The pin directory (default: the config file's, else /sys/fs/bpf/instadns).
    #[arg(long, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
    /// The configuration file to take the pin directory from.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl PinArgs {
    fn dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.pin_dir {
            return Ok(dir.clone());
        }
        let path = self.config.clone().unwrap_or_else(|| DEFAULT_CONFIG_PATH.into());
        if self.config.is_some() || path.exists() {
            return Ok(Config::load(&path)?.pin_dir);
        }
        Ok(DEFAULT_PIN_DIR.into())
    }
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pins: PinArgs,
    /// Seconds to sample the counters for queries per second.
    #[arg(long, default_value_t = 1.0, value_parser = parse_interval)]
    interval: f64,
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.01..=3600.0).contains(&s) => Ok(s),
        _ => Err(format!("{text:?}: seconds between 0.01 and 3600")),
    }
}

pub fn detach(args: PinArgs) -> Result<()> {
    let dir = args.dir()?;
    let removed = pin::detach_all(&dir)?;
    if removed.is_empty() {
        println!("nothing pinned under {}", dir.display());
    } else {
        println!("removed {} from {}: {}", removed.len(), dir.display(), removed.join(", "));
    }
    Ok(())
}

#[derive(Args)]
pub struct PreparePinsArgs {
    #[command(flatten)]
    pins: PinArgs,
    /// The user the daemon runs as: a name, or UID[:GID].
    #[arg(long, value_name = "USER")]
    owner: String,
}

/// A user name or UID[:GID] as (uid, gid); a name's gid is its primary group.
fn owner_ids(owner: &str) -> Result<(u32, u32)> {
    if let Some(first) = owner.split(':').next()
        && let Ok(uid) = first.parse::<u32>()
    {
        let gid = match owner.split_once(':') {
            Some((_, g)) => {
                g.parse::<u32>().with_context(|| format!("--owner {owner:?}: GID is not a number"))?
            }
            None => uid,
        };
        return Ok((uid, gid));
    }
    let name = std::ffi::CString::new(owner).with_context(|| format!("--owner {owner:?}"))?;
    // SAFETY: getpwnam with a NUL-terminated name; the record is read before any other call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!("--owner {owner:?}: no such user (cargo xtask install creates `instadns`)");
    }
    // SAFETY: non-null, points to the static passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok((uid, gid))
}

/// Hands the pin directory to the daemon's user (see [`pin::hand_over`]).
pub fn prepare_pins(args: PreparePinsArgs) -> Result<()> {
    let dir = args.pins.dir()?;
    let (uid, gid) = owner_ids(&args.owner)?;
    let changed = pin::hand_over(&dir, uid, gid)?;
    if changed.is_empty() {
        println!("{} is ready for {uid}:{gid}", dir.display());
    }
    for change in changed {
        println!("{change}");
    }
    Ok(())
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let pin_dir = args.pins.dir()?;
    let links = pin::pinned_links(&pin_dir);
    if links.is_empty() {
        println!("no XDP attachment pinned under {}", pin_dir.display());
    }
    for link in &links {
        match link.ifindex {
            Some(_) => println!("interface {}: XDP {}", link.iface, link.mode),
            None => println!(
                "interface {}: XDP {} (stale: the interface is gone; the daemon removes the pin, or `instadns detach`)",
                link.iface, link.mode
            ),
        }
    }
    for dir in layouts(&pin_dir) {
        layout_status(&dir, args.interval).await?;
    }
    Ok(())
}

fn layouts(pin_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(pin_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("layout-")))
        .collect()
}

async fn layout_status(dir: &Path, interval: f64) -> Result<()> {
    let names = pinned_keys(dir).len();
    let capacity: u64 = NAME_MAP_NAMES
        .iter()
        .filter_map(|m| MapUsage::of_pin(m, &dir.join(m)))
        .map(|u| u.max_entries as u64)
        .sum();
    println!(
        "maps {}: {names} names of {capacity} ({:.1}% full)",
        dir.display(),
        names as f64 * 100.0 / capacity.max(1) as f64
    );
    let before = pinned_counters(dir)?;
    tokio::time::sleep(Duration::from_secs_f64(interval)).await;
    let after = pinned_counters(dir)?;
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a.saturating_sub(*b)).collect();
    // Each query once: refinements of a hit are counted beside it.
    let dns = |v: &[u64]| {
        v.iter()
            .zip(Outcome::ALL)
            .filter(|(_, o)| o.is_query() && !o.is_refinement())
            .map(|(n, _)| *n)
            .sum::<u64>()
    };
    let hit = Outcome::Hit as usize;
    println!(
        "queries: {:.0}/s now, {:.1}% answered by XDP now, {:.1}% since the counters started ({} queries)",
        dns(&delta) as f64 / interval,
        delta[hit] as f64 * 100.0 / dns(&delta).max(1) as f64,
        after[hit] as f64 * 100.0 / dns(&after).max(1) as f64,
        dns(&after)
    );
    for (o, n) in Outcome::ALL.iter().zip(&after) {
        println!("  {:<20} {n}", o.name());
    }
    Ok(())
}
