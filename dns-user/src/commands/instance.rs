//! `instadns instance`: which cluster runs each tenant instance.

use std::fmt::Write as _;

use anyhow::Result;
use clap::{ArgGroup, Subcommand};
use instadns::{
    control::ttl,
    model::time::rfc3339,
    store::{InstanceInfo, instances::InstanceListed},
};

use super::{
    Format,
    output::{emit, or_dash},
    target::Target,
};

#[derive(Subcommand)]
pub enum InstanceCommand {
    /// Add an instance.
    Add {
        /// The platform's instance id (0 or more).
        #[arg(allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        id: i64,
        #[arg(long)]
        cluster: String,
        /// Instance name, for {name}.{owner} host names (with --owner).
        #[arg(long, requires = "owner")]
        name: Option<String>,
        #[arg(long, requires = "name")]
        owner: Option<String>,
        /// TTL of the instance's answers (default: the rule's).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Change an instance's name and owner, or its TTL (see also `ttl apply`).
    #[command(group(ArgGroup::new("change").required(true).multiple(true).args(["name", "clear_names", "ttl", "clear_ttl"])))]
    Set {
        id: i64,
        /// New instance name (with --owner).
        #[arg(long, requires = "owner", conflicts_with = "clear_names")]
        name: Option<String>,
        #[arg(long, requires = "name")]
        owner: Option<String>,
        /// Remove the name and owner ({name}.{owner} names stop answering).
        #[arg(long)]
        clear_names: bool,
        #[arg(long, conflicts_with = "clear_ttl")]
        ttl: Option<u32>,
        /// Back to the rules' TTLs.
        #[arg(long)]
        clear_ttl: bool,
    },
    /// Move an instance to another cluster; records a tombstone and changes the answers at once.
    Move {
        id: i64,
        #[arg(long)]
        to: String,
        /// First lower the TTL to --ttl and wait out the old one, so resolvers switch within
        /// --ttl seconds of the move; restore the TTL afterwards. Prints each step.
        #[arg(long)]
        prepare: bool,
        /// The TTL during a prepared move.
        #[arg(long, default_value_t = 30, requires = "prepare")]
        ttl: u32,
        /// Print the steps of a prepared move without changing anything.
        #[arg(long, requires = "prepare")]
        dry_run: bool,
    },
    /// Remove an instance (one with custom domains needs --force, which removes them too).
    Rm {
        id: i64,
        #[arg(long)]
        force: bool,
    },
    /// Show an instance, its custom domains and its moves.
    Show {
        id: i64,
        #[command(flatten)]
        format: Format,
    },
    /// List instances by id (a page at a time: --after the last id shown).
    List {
        #[arg(long)]
        cluster: Option<String>,
        /// Only instances with an id above this.
        #[arg(long, default_value_t = -1)]
        after: i64,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(target: &Target, command: InstanceCommand) -> Result<()> {
    match command {
        InstanceCommand::Add { id, cluster, name, owner, ttl } => {
            target.add_instance(id, &cluster, name.as_deref(), owner.as_deref(), ttl).await?;
            println!("instance {id} added on cluster {cluster}");
        }
        InstanceCommand::Set { id, name, owner, clear_names, ttl, clear_ttl } => {
            let names = (name.is_some() || clear_names).then_some((name.as_deref(), owner.as_deref()));
            target.change_instance(id, names, (ttl.is_some() || clear_ttl).then_some(ttl)).await?;
            println!("instance {id} updated");
        }
        InstanceCommand::Move { id, to, prepare: true, ttl, dry_run } => {
            let db = target.database("a prepared move (--prepare)")?;
            let plan = ttl::plan_move(db, id, &to, ttl).await?;
            let started = std::time::Instant::now();
            let mut print = |line: &str| println!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
            ttl::prepared_move(db, &plan, dry_run, &mut print).await?;
        }
        InstanceCommand::Move { id, to, .. } => {
            let t = target.move_instance(id, &to).await?;
            println!(
                "instance {id} moved from {} to {} at {} (tombstone recorded)",
                t.from_cluster,
                t.to_cluster,
                rfc3339(t.moved_at)
            );
        }
        InstanceCommand::Rm { id, force } => {
            target.remove_instance(id, force).await?;
            println!("instance {id} removed");
        }
        InstanceCommand::Show { id, format } => {
            emit(format.json, &target.show_instance(id).await?, describe)?
        }
        InstanceCommand::List { cluster, after, limit, format } => {
            emit(format.json, &target.list_instances(cluster.as_deref(), after, limit).await?, |list| {
                list.iter().map(line).collect()
            })?
        }
    }
    Ok(())
}

fn host_name(name: &Option<String>, owner: &Option<String>) -> Option<String> {
    Some(format!("{}.{}", name.as_ref()?, owner.as_ref()?))
}

fn describe(info: &InstanceInfo) -> String {
    let i = &info.instance;
    let mut out = format!("instance {}\n  cluster  {}\n", i.id, info.cluster);
    if let Some(n) = host_name(&i.name, &i.owner) {
        let _ = writeln!(out, "  name     {n}");
    }
    let _ = writeln!(out, "  ttl      {}", i.ttl.map_or("rule default".into(), |t| format!("{t}s")));
    for d in &info.domains {
        let _ = writeln!(out, "  domain   {d}");
    }
    for t in &info.tombstones {
        let _ = writeln!(out, "  moved    {} -> {} at {}", t.from_cluster, t.to_cluster, rfc3339(t.moved_at));
    }
    out
}

fn line(l: &InstanceListed) -> String {
    let i = &l.instance;
    format!("{}  {}  {}  {}\n", i.id, l.cluster, or_dash(host_name(&i.name, &i.owner)), or_dash(i.ttl))
}
