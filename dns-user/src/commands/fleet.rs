//! `instadns fleet`: the nodes following this database, as they last reported.

use anyhow::{Context as _, Result};
use clap::Subcommand;
use instadns::{
    model::time::unix_now,
    store::{Database, nodes::NodeRow},
};
use serde::Serialize;

use super::{Format, output::emit};

#[derive(Subcommand)]
pub enum FleetCommand {
    /// List every node that reported: version, addresses, map fill, XDP hit ratio, how
    /// far it follows the change log, and whether it still reports.
    Status {
        #[command(flatten)]
        format: Format,
    },
    /// Forget a node taken out of the fleet (it reappears if it reports again).
    #[command(alias = "remove")]
    Rm { name: String },
}

/// A node with what the database knows beside its report.
#[derive(Serialize)]
struct NodeStatus {
    #[serde(flatten)]
    node: NodeRow,
    /// Changes logged after its cursor (at its last report).
    behind: i64,
    /// Seconds since its last report.
    silent_s: i64,
    /// "up", or "stopped reporting".
    state: &'static str,
}

pub async fn run(db: &Database, command: FleetCommand) -> Result<()> {
    match command {
        FleetCommand::Status { format } => {
            let now = unix_now();
            let mut nodes = Vec::new();
            for node in db.nodes().await.context("reading the fleet table")? {
                let behind = db.changes_after(node.change_cursor).await?;
                let state = if node.is_silent(now) { "stopped reporting" } else { "up" };
                nodes.push(NodeStatus { silent_s: (now - node.last_seen).max(0), behind, state, node });
            }
            emit(format.json, &nodes, |nodes| {
                if nodes.is_empty() {
                    return "no node has reported to this database\n".to_owned();
                }
                nodes.iter().map(line).collect()
            })
        }
        FleetCommand::Rm { name } => {
            db.remove_node(&name).await?;
            println!("node {name} removed");
            Ok(())
        }
    }
}

fn line(s: &NodeStatus) -> String {
    let n = &s.node;
    let maps = match n.map_capacity {
        0 => "no XDP".to_owned(),
        capacity => format!(
            "maps {} of {capacity} names, XDP answered {} of {} queries",
            n.map_names,
            n.hit_permille.map_or_else(|| "-".to_owned(), |p| format!("{:.1}%", p as f64 / 10.0)),
            n.queries
        ),
    };
    let state = match s.state {
        "up" => format!("up (reported {}s ago)", s.silent_s),
        state => format!("{state} (last report {}s ago)", s.silent_s),
    };
    format!(
        "{}: {state}, version {}, answering on {}, {maps}, change {} ({} behind)\n",
        n.name,
        n.version,
        if n.addresses.is_empty() { "-" } else { &n.addresses },
        n.change_cursor,
        s.behind
    )
}
