//! Reading the change log the triggers write (see `schema`).

use super::sql::{Value, params};
use super::{Database, FromRow, StoreError, sql::Row};

/// A watched table (see `schema::WATCHED`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Zones,
    ZoneNs,
    Records,
    NameRules,
    Clusters,
    ClusterServices,
    ClusterAddresses,
    ClusterChecks,
    Instances,
    Domains,
    AcmeChallenges,
    Tombstones,
    Territories,
    TerritoryPrefixes,
    TsigKeys,
    /// A table this binary does not watch (logged by a newer schema).
    Other(String),
}

impl Table {
    pub fn parse(name: &str) -> Self {
        match name {
            "zones" => Self::Zones,
            "zone_ns" => Self::ZoneNs,
            "records" => Self::Records,
            "name_rules" => Self::NameRules,
            "clusters" => Self::Clusters,
            "cluster_services" => Self::ClusterServices,
            "cluster_addresses" => Self::ClusterAddresses,
            "cluster_checks" => Self::ClusterChecks,
            "instances" => Self::Instances,
            "domains" => Self::Domains,
            "acme_challenges" => Self::AcmeChallenges,
            "tombstones" => Self::Tombstones,
            "territories" => Self::Territories,
            "territory_prefixes" => Self::TerritoryPrefixes,
            "tsig_keys" => Self::TsigKeys,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Zones => "zones",
            Self::ZoneNs => "zone_ns",
            Self::Records => "records",
            Self::NameRules => "name_rules",
            Self::Clusters => "clusters",
            Self::ClusterServices => "cluster_services",
            Self::ClusterAddresses => "cluster_addresses",
            Self::ClusterChecks => "cluster_checks",
            Self::Instances => "instances",
            Self::Domains => "domains",
            Self::AcmeChallenges => "acme_challenges",
            Self::Tombstones => "tombstones",
            Self::Territories => "territories",
            Self::TerritoryPrefixes => "territory_prefixes",
            Self::TsigKeys => "tsig_keys",
            Self::Other(name) => name,
        }
    }
}

/// What happened to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    Insert,
    /// Logged twice: the old row, then the new one.
    Update,
    Delete,
    /// The whole table changed (a PostgreSQL TRUNCATE): followers reload everything.
    Truncate,
}

impl ChangeOp {
    fn parse(op: &str) -> Result<Self, StoreError> {
        match op {
            "I" => Ok(Self::Insert),
            "U" => Ok(Self::Update),
            "D" => Ok(Self::Delete),
            "T" => Ok(Self::Truncate),
            other => {
                Err(StoreError::Invalid(format!("change log operation {other:?} is not one of I, U, D, T")))
            }
        }
    }
}

/// One logged change of a watched table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub table: Table,
    /// The identifying column's value (see `schema::WATCHED`).
    pub key: String,
    pub op: ChangeOp,
    /// An instance's "owner name", a domain's hostname.
    pub detail: Option<String>,
}

impl FromRow for Change {
    const COLUMNS: &'static str = "id, tbl, row_key, op, detail";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            table: Table::parse(&r.text(1)?),
            key: r.text(2)?,
            op: ChangeOp::parse(&r.text(3)?)?,
            detail: r.opt_text(4)?,
        })
    }
}

impl Database {
    /// The newest change's id (0 when none).
    pub async fn change_cursor(&self) -> Result<i64, StoreError> {
        self.count("SELECT COALESCE(MAX(id), 0) FROM changes", vec![]).await
    }

    /// Changes after `after`, oldest first, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        self.select("FROM changes WHERE id > $1 ORDER BY id LIMIT $2", params![after, limit]).await
    }

    /// The changes with the given ids (from PostgreSQL notifications, or ids a follower
    /// has not seen yet), oldest first; ids without a row (rolled back, or pruned) are
    /// missing from the result.
    pub async fn changes_by_id(&self, ids: &[i64]) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let params = chunk.iter().map(|id| Value::Int(Some(*id))).collect();
            changes.extend(
                self.select::<Change>(
                    &format!("FROM changes WHERE id IN ({}) ORDER BY id", list.join(", ")),
                    params,
                )
                .await?,
            );
        }
        changes.sort_by_key(|c| c.id);
        Ok(changes)
    }

    /// The ids of the newest `limit` changes, newest first.
    pub async fn newest_change_ids(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        let rows = self.query("SELECT id FROM changes ORDER BY id DESC LIMIT $1", params![limit]).await?;
        rows.iter().map(|r| r.int(0)).collect()
    }

    /// The log's bounds, in one statement: the newest change's id and the newest id
    /// ever pruned from it (0 when none); a follower that has not seen every change up
    /// to the latter missed some.
    pub async fn log_bounds(&self) -> Result<(i64, i64), StoreError> {
        let row = self
            .query_opt(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM changes), \
                        (SELECT COALESCE(MAX(last_id), 0) FROM changes_pruned)",
                vec![],
            )
            .await?
            .ok_or_else(|| StoreError::Invalid("the change log's bounds returned no row".into()))?;
        Ok((row.int(0)?, row.int(1)?))
    }

    /// Deletes changes logged more than `keep` ago (zero: every change, whatever second
    /// the database rounded its time to), remembering the newest id deleted; returns how
    /// many were deleted.
    pub async fn prune_changes(&self, keep: std::time::Duration) -> Result<u64, StoreError> {
        let before = match i64::try_from(keep.as_secs()) {
            Ok(0) => i64::MAX,
            Ok(keep) => crate::model::time::unix_now().saturating_sub(keep),
            Err(_) => return Ok(0),
        };
        let newest_pruned = "(SELECT COALESCE(MAX(id), 0) FROM changes WHERE at < $1)";
        let results = self
            .write_counted(vec![
                (
                    format!(
                        "UPDATE changes_pruned SET last_id = {newest_pruned} WHERE {newest_pruned} > last_id"
                    ),
                    params![before],
                ),
                ("DELETE FROM changes WHERE at < $1".to_owned(), params![before]),
            ])
            .await?;
        Ok(results.get(1).copied().unwrap_or(0))
    }

    /// How many logged changes are newer than `cursor`.
    pub async fn changes_after(&self, cursor: i64) -> Result<i64, StoreError> {
        self.count("SELECT COUNT(*) FROM changes WHERE id > $1", params![cursor]).await
    }
}

/// Ids asked for in one statement.
const IDS_PER_QUERY: usize = 500;
