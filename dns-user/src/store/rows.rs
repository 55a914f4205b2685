//! The rows of the tables, typed, with one mapping from a result row each
//! ([`FromRow`]). Columns with a CHECK constraint (kinds, orders) are parsed into their
//! setting types here; a value outside them means the database was written around our
//! schema, and the error says which value. Free-form columns (names, addresses, record
//! data) stay text: the catalog parses them and skips a bad row with a warning, so one
//! bad row written by another program never takes every answer down.

use serde::{Deserialize, Serialize};

use super::{StoreError, sql::Row};
use crate::model::{AcmeKind, AddressOrder, CheckKind, CheckTarget, Fallback, HealthCheck, Pick, RuleKind};

/// A type read from a result row whose columns are `COLUMNS`, in that order.
pub trait FromRow: Sized {
    const COLUMNS: &'static str;
    fn from_row(row: &Row) -> Result<Self, StoreError>;
}

/// Parses a CHECK-constrained text column into its setting type.
fn setting<T: std::str::FromStr<Err = crate::model::Invalid>>(row: &Row, i: usize) -> Result<T, StoreError> {
    row.text(i)?.parse().map_err(|e: crate::model::Invalid| StoreError::Invalid(format!("stored {e}")))
}

/// A zone's apex data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ZoneRow {
    #[serde(skip)]
    pub id: i64,
    pub apex: String,
    pub soa_mname: String,
    pub soa_rname: String,
    pub soa_serial: u32,
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    pub soa_minimum: u32,
    pub soa_ttl: u32,
    pub ns_ttl: u32,
    /// TTL of static records added without one.
    pub default_ttl: u32,
}

impl FromRow for ZoneRow {
    const COLUMNS: &'static str = "id, apex, soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, \
                                   soa_expire, soa_minimum, soa_ttl, ns_ttl, default_ttl";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            apex: r.text(1)?,
            soa_mname: r.text(2)?,
            soa_rname: r.text(3)?,
            soa_serial: r.u32(4)?,
            soa_refresh: r.u32(5)?,
            soa_retry: r.u32(6)?,
            soa_expire: r.u32(7)?,
            soa_minimum: r.u32(8)?,
            soa_ttl: r.u32(9)?,
            ns_ttl: r.u32(10)?,
            default_ttl: r.u32(11)?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct NsRow {
    pub zone_id: i64,
    pub nsdname: String,
}

impl FromRow for NsRow {
    const COLUMNS: &'static str = "zone_id, nsdname";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self { zone_id: r.int(0)?, nsdname: r.text(1)? })
    }
}

/// A static record in presentation format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordRow {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub zone_id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}

impl FromRow for RecordRow {
    const COLUMNS: &'static str = "id, zone_id, name, rtype, ttl, rdata";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            zone_id: r.int(1)?,
            name: r.text(2)?,
            rtype: r.text(3)?,
            ttl: r.u32(4)?,
            data: r.text(5)?,
        })
    }
}

/// A name pattern of a zone that maps query names to instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleRow {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub zone_id: i64,
    pub pattern: String,
    pub kind: RuleKind,
    pub ttl: u32,
}

impl FromRow for RuleRow {
    const COLUMNS: &'static str = "id, zone_id, pattern, kind, ttl";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            zone_id: r.int(1)?,
            pattern: r.text(2)?,
            kind: setting(r, 3)?,
            ttl: r.u32(4)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterRow {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub order: AddressOrder,
    pub pick: Pick,
    pub fallback: Fallback,
}

impl FromRow for ClusterRow {
    const COLUMNS: &'static str = "id, name, address_order, pick, fallback";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            name: r.text(1)?,
            order: setting(r, 2)?,
            pick: setting(r, 3)?,
            fallback: setting(r, 4)?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct ServiceRow {
    pub cluster_id: i64,
    pub service: String,
    pub target: String,
}

impl FromRow for ServiceRow {
    const COLUMNS: &'static str = "cluster_id, service, target";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self { cluster_id: r.int(0)?, service: r.text(1)?, target: r.text(2)? })
    }
}

#[derive(Clone, Debug)]
pub struct AddressRow {
    pub cluster_id: i64,
    pub address: String,
    pub weight: u32,
    pub queue: u32,
    pub territory: Option<String>,
}

impl FromRow for AddressRow {
    const COLUMNS: &'static str = "cluster_id, address, weight, queue, territory";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            cluster_id: r.int(0)?,
            address: r.text(1)?,
            weight: r.u32(2)?,
            queue: r.u32(3)?,
            territory: r.opt_text(4)?,
        })
    }
}

/// A cluster's health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRow {
    pub cluster_id: i64,
    pub check: HealthCheck,
}

impl FromRow for CheckRow {
    const COLUMNS: &'static str =
        "cluster_id, kind, port, path, host, expect_status, interval_ms, timeout_ms, rise, fall";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        let small = |i: usize| -> Result<u16, StoreError> {
            u16::try_from(r.int(i)?).map_err(|_| StoreError::Invalid(format!("column {i} out of range")))
        };
        let kind: CheckKind = setting(r, 1)?;
        Ok(Self {
            cluster_id: r.int(0)?,
            check: HealthCheck {
                target: CheckTarget { kind, port: small(2)?, path: r.text(3)? },
                host: r.opt_text(4)?,
                expect_status: small(5)?,
                interval_ms: r.u32(6)?,
                timeout_ms: r.u32(7)?,
                rise: r.u32(8)?,
                fall: r.u32(9)?,
            },
        })
    }
}

/// A territory's prefix (directional answers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerritoryPrefixRow {
    pub territory: String,
    pub prefix: String,
}

impl FromRow for TerritoryPrefixRow {
    const COLUMNS: &'static str = "t.name, p.prefix";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self { territory: r.text(0)?, prefix: r.text(1)? })
    }
}

/// A tenant instance: where it runs decides its answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Instance {
    pub id: i64,
    pub name: Option<String>,
    pub owner: Option<String>,
    #[serde(skip)]
    pub cluster_id: i64,
    /// TTL override of the instance's answers (None: the rules' TTLs).
    pub ttl: Option<u32>,
}

impl FromRow for Instance {
    const COLUMNS: &'static str = "id, name, owner, cluster_id, ttl";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            name: r.opt_text(1)?,
            owner: r.opt_text(2)?,
            cluster_id: r.int(3)?,
            ttl: r.opt_u32(4)?,
        })
    }
}

/// A custom domain of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DomainRow {
    pub hostname: String,
    pub instance: i64,
}

impl FromRow for DomainRow {
    const COLUMNS: &'static str = "hostname, instance_id";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self { hostname: r.text(0)?, instance: r.int(1)? })
    }
}

/// A DNS-01 challenge answer at `_acme-challenge.<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcmeChallenge {
    /// The name being validated (absolute, lower-case).
    pub name: String,
    pub kind: AcmeKind,
    /// The TXT value, or the CNAME target.
    pub value: String,
    pub ttl: u32,
    /// Unix time after which the value is no longer served.
    pub expires_at: Option<i64>,
}

impl FromRow for AcmeChallenge {
    const COLUMNS: &'static str = "name, kind, value, ttl, expires_at";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            name: r.text(0)?,
            kind: setting(r, 1)?,
            value: r.text(2)?,
            ttl: r.u32(3)?,
            expires_at: r.opt_int(4)?,
        })
    }
}

/// The record of a move between clusters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tombstone {
    #[serde(skip)]
    pub instance_id: i64,
    pub from_cluster: String,
    pub to_cluster: String,
    pub moved_at: i64,
}

impl FromRow for Tombstone {
    const COLUMNS: &'static str = "instance_id, from_cluster, to_cluster, moved_at";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            instance_id: r.int(0)?,
            from_cluster: r.text(1)?,
            to_cluster: r.text(2)?,
            moved_at: r.int(3)?,
        })
    }
}

/// The small tables, loaded whole into the resolver's catalog.
#[derive(Clone, Debug, Default)]
pub struct CatalogRows {
    pub zones: Vec<ZoneRow>,
    pub ns: Vec<NsRow>,
    pub records: Vec<RecordRow>,
    pub rules: Vec<RuleRow>,
    pub clusters: Vec<ClusterRow>,
    pub services: Vec<ServiceRow>,
    pub addresses: Vec<AddressRow>,
    pub checks: Vec<CheckRow>,
    /// Every territory, with or without prefixes (in id order).
    pub territories: Vec<(String, u8)>,
    pub territory_prefixes: Vec<TerritoryPrefixRow>,
    pub keys: Vec<super::keys::KeyRow>,
}
