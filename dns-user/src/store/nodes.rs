//! The fleet's nodes: each daemon reports itself here periodically (who it is, what it
//! serves, how full its maps are, how far it has followed the change log), so
//! `instadns fleet status` shows every node and which stopped reporting.

use serde::Serialize;

use super::{Database, FromRow, Row, StoreError, sql::params};

/// What a node last reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub name: String,
    pub version: String,
    /// The addresses it answers on, space-separated.
    pub addresses: String,
    /// Unix times.
    pub started_at: i64,
    pub last_seen: i64,
    /// How often it reports, in seconds (a node silent for three of these is shown as
    /// stopped reporting).
    pub report_every_s: i64,
    /// Names in its XDP maps, and their capacity (0: no XDP).
    pub map_names: i64,
    pub map_capacity: i64,
    /// DNS queries its XDP program saw, and how many per thousand it answered.
    pub queries: i64,
    pub hit_permille: Option<i64>,
    /// The newest change log id it applied.
    pub change_cursor: i64,
}

impl FromRow for NodeRow {
    const COLUMNS: &'static str = "name, version, addresses, started_at, last_seen, report_every_s, \
                                   map_names, map_capacity, queries, hit_permille, change_cursor";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            name: r.text(0)?,
            version: r.text(1)?,
            addresses: r.text(2)?,
            started_at: r.int(3)?,
            last_seen: r.int(4)?,
            report_every_s: r.int(5)?,
            map_names: r.int(6)?,
            map_capacity: r.int(7)?,
            queries: r.int(8)?,
            hit_permille: r.opt_int(9)?,
            change_cursor: r.int(10)?,
        })
    }
}

impl NodeRow {
    /// Whether the node has stopped reporting at Unix time `now`.
    pub fn is_silent(&self, now: i64) -> bool {
        now - self.last_seen > 3 * self.report_every_s.max(1)
    }
}

impl Database {
    /// Records a node's report (the newest replaces the one before).
    pub async fn report_node(&self, node: &NodeRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO nodes (name, version, addresses, started_at, last_seen, report_every_s, \
                                map_names, map_capacity, queries, hit_permille, change_cursor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, addresses = excluded.addresses, \
                 started_at = excluded.started_at, last_seen = excluded.last_seen, \
                 report_every_s = excluded.report_every_s, map_names = excluded.map_names, \
                 map_capacity = excluded.map_capacity, queries = excluded.queries, \
                 hit_permille = excluded.hit_permille, change_cursor = excluded.change_cursor",
            params![
                node.name.as_str(),
                node.version.as_str(),
                node.addresses.as_str(),
                node.started_at,
                node.last_seen,
                node.report_every_s,
                node.map_names,
                node.map_capacity,
                node.queries,
                node.hit_permille,
                node.change_cursor
            ],
        )
        .await
        .map(|_| ())
    }

    /// Every node that ever reported, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.select("FROM nodes ORDER BY name", vec![]).await
    }

    /// Forgets a node (one taken out of the fleet).
    pub async fn remove_node(&self, name: &str) -> Result<(), StoreError> {
        match self.execute("DELETE FROM nodes WHERE name = $1", params![name]).await? {
            0 => Err(StoreError::NotFound(format!("node {name}"))),
            _ => Ok(()),
        }
    }
}
