//! What a command acts on: the database, or the HTTP management API of a running
//! node (`--api URL --token-file F`). Each operation is said once here for both, and
//! answers the same rows either way, so a command prints the same output on both.

use std::path::PathBuf;

use anyhow::{Result, bail};
use axum::http::{Method, header};
use clap::Args;
use instadns::{
    api::{node::MadeKey, ttl::TtlApplied, zones::Removed},
    control::ttl,
    model::{
        Prefix,
        key::{KeyScope, Secret, TsigAlgorithm},
        rule::RuleSpec,
    },
    store::{
        AcmeChallenge, ClusterInfo, ClusterUpdate, Database, DomainRow, InstanceInfo, NewZone, RecordRow,
        RuleRow, StoreError, Tombstone, ZoneInfo, ZoneUpdate, instances::InstanceListed, keys::KeyRow,
        territories::TerritoryInfo,
    },
};
use serde_json::{Value, json};

use super::{
    DbArg,
    output::Usage,
    remote::{ApiClient, encode},
};

/// The flags of the commands that act on the database or through the API.
#[derive(Args, Clone)]
pub struct TargetArg {
    #[command(flatten)]
    pub db: DbArg,
    /// Act through the HTTP management API of a running node at URL
    /// (https://HOST:PORT) instead of on the database; needs --token-file.
    #[arg(long, global = true, env = "INSTADNS_API", conflicts_with = "db", requires = "token_file")]
    pub api: Option<String>,
    /// The file holding the API token (`instadns token add` prints one).
    #[arg(long, global = true, env = "INSTADNS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust the authorities in this PEM file for the API's certificate (default: the
    /// system's).
    #[arg(long, global = true, env = "INSTADNS_API_CA")]
    pub api_ca: Option<PathBuf>,
}

impl TargetArg {
    pub async fn open(&self) -> Result<Target> {
        match (&self.api, &self.token_file) {
            (Some(url), Some(token)) => ApiClient::new(url, token, self.api_ca.as_deref())
                .map(Target::Api)
                .map_err(|e| Usage(format!("{e:#}")).into()),
            (Some(_), None) => {
                Err(Usage("--api needs --token-file FILE (the token `instadns token add` printed)".into())
                    .into())
            }
            (None, _) => Ok(Target::Db(self.db.open().await?)),
        }
    }
}

pub enum Target {
    Db(Database),
    Api(ApiClient),
}

/// What an API method answers that a command does not print.
type Ignored = serde::de::IgnoredAny;

impl Target {
    /// The database, for the operations the API does not offer.
    pub fn database(&self, what: &str) -> Result<&Database> {
        match self {
            Self::Db(db) => Ok(db),
            Self::Api(_) => {
                bail!("{what} works on the database only: run it with --db where the database is")
            }
        }
    }

    // Instances.

    pub async fn add_instance(
        &self,
        id: i64,
        cluster: &str,
        name: Option<&str>,
        owner: Option<&str>,
        ttl: Option<u32>,
    ) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.add_instance(id, cluster, name, owner, ttl).await?),
            Self::Api(api) => {
                let body = json!({"id": id, "cluster": cluster, "name": name, "owner": owner, "ttl": ttl});
                api.json::<Ignored>(Method::POST, "/v1/instances", Some(body), None).await.map(drop)
            }
        }
    }

    /// Changes the name and owner (`Some((None, None))` removes them) and the TTL
    /// (`Some(None)`: back to the rules').
    pub async fn change_instance(
        &self,
        id: i64,
        names: Option<(Option<&str>, Option<&str>)>,
        ttl: Option<Option<u32>>,
    ) -> Result<()> {
        match self {
            Self::Db(db) => {
                if let Some((name, owner)) = names {
                    db.set_instance_names(id, name, owner).await?;
                }
                if let Some(ttl) = ttl {
                    db.set_instance_ttl(id, ttl).await?;
                }
                Ok(())
            }
            Self::Api(api) => {
                let mut body = serde_json::Map::new();
                match names {
                    Some((Some(name), Some(owner))) => {
                        body.insert("name".into(), name.into());
                        body.insert("owner".into(), owner.into());
                    }
                    Some(_) => drop(body.insert("clear_names".into(), true.into())),
                    None => {}
                }
                match ttl {
                    Some(Some(ttl)) => drop(body.insert("ttl".into(), ttl.into())),
                    Some(None) => drop(body.insert("clear_ttl".into(), true.into())),
                    None => {}
                }
                let path = format!("/v1/instances/{id}");
                api.json::<Ignored>(Method::PATCH, &path, Some(Value::Object(body)), None).await.map(drop)
            }
        }
    }

    pub async fn move_instance(&self, id: i64, to: &str) -> Result<Tombstone> {
        match self {
            Self::Db(db) => Ok(db.move_instance(id, to).await?),
            Self::Api(api) => {
                let path = format!("/v1/instances/{id}/move");
                api.json(Method::POST, &path, Some(json!({"cluster": to})), None).await
            }
        }
    }

    pub async fn remove_instance(&self, id: i64, force: bool) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_instance(id, force).await?),
            Self::Api(api) => api.call(Method::DELETE, &format!("/v1/instances/{id}?force={force}")).await,
        }
    }

    pub async fn show_instance(&self, id: i64) -> Result<InstanceInfo> {
        match self {
            Self::Db(db) => Ok(db.show_instance(id).await?),
            Self::Api(api) => api.get(&format!("/v1/instances/{id}")).await,
        }
    }

    pub async fn list_instances(
        &self,
        cluster: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<InstanceListed>> {
        match self {
            Self::Db(db) => Ok(db.list_instances(cluster, after, limit).await?),
            Self::Api(api) => {
                let filters = cluster.map(|c| format!("cluster={}", encode(c))).unwrap_or_default();
                let after = (after >= 0).then(|| after.to_string());
                api.list("/v1/instances", &filters, after, usize::try_from(limit)?).await
            }
        }
    }

    // Clusters.

    pub async fn add_cluster(&self, name: &str, update: &ClusterUpdate) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.add_cluster(name, update).await?),
            Self::Api(api) => {
                let mut body = cluster_change(update);
                body.insert("name".into(), name.into());
                api.json::<Ignored>(Method::POST, "/v1/clusters", Some(Value::Object(body)), None)
                    .await
                    .map(drop)
            }
        }
    }

    pub async fn set_cluster(&self, name: &str, update: &ClusterUpdate) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.set_cluster(name, update).await?),
            Self::Api(api) => {
                let path = format!("/v1/clusters/{}", encode(name));
                let body = Value::Object(cluster_change(update));
                api.json::<Ignored>(Method::PATCH, &path, Some(body), None).await.map(drop)
            }
        }
    }

    pub async fn remove_cluster(&self, name: &str) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_cluster(name).await?),
            Self::Api(api) => api.call(Method::DELETE, &format!("/v1/clusters/{}", encode(name))).await,
        }
    }

    pub async fn list_clusters(&self) -> Result<Vec<ClusterInfo>> {
        match self {
            Self::Db(db) => Ok(db.list_clusters().await?),
            Self::Api(api) => api.list("/v1/clusters", "", None, usize::MAX).await,
        }
    }

    pub async fn show_cluster(&self, name: &str) -> Result<ClusterInfo> {
        match self {
            Self::Db(db) => Ok(db.show_cluster(name).await?),
            Self::Api(api) => api.get(&format!("/v1/clusters/{}", encode(name))).await,
        }
    }

    // Custom domains.

    /// Adds a custom domain (`moving`: moves one that exists instead).
    pub async fn put_domain(&self, hostname: &str, instance: i64, moving: bool) -> Result<()> {
        match self {
            Self::Db(db) if moving => Ok(db.set_domain(hostname, instance).await?),
            Self::Db(db) => Ok(db.add_domain(hostname, instance).await?),
            Self::Api(api) => {
                let path = format!("/v1/domains/{}", encode(hostname));
                let only = if moving { header::IF_MATCH } else { header::IF_NONE_MATCH };
                let body = json!({"instance": instance});
                api.json::<Ignored>(Method::PUT, &path, Some(body), Some(only)).await.map(drop)
            }
        }
    }

    pub async fn remove_domain(&self, hostname: &str) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_domain(hostname).await?),
            Self::Api(api) => api.call(Method::DELETE, &format!("/v1/domains/{}", encode(hostname))).await,
        }
    }

    pub async fn domain(&self, hostname: &str) -> Result<DomainRow> {
        let not_found = || StoreError::NotFound(format!("custom domain {hostname}"));
        match self {
            Self::Db(db) => Ok(db.domain(hostname).await?.ok_or_else(not_found)?),
            Self::Api(api) => api.get(&format!("/v1/domains/{}", encode(hostname))).await,
        }
    }

    pub async fn list_domains(
        &self,
        instance: Option<i64>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DomainRow>> {
        match self {
            Self::Db(db) => Ok(db.list_domains(instance, after, limit).await?),
            Self::Api(api) => {
                let filters = instance.map(|i| format!("instance={i}")).unwrap_or_default();
                let after = (!after.is_empty()).then(|| after.to_owned());
                api.list("/v1/domains", &filters, after, usize::try_from(limit)?).await
            }
        }
    }

    // ACME challenge answers.

    /// Adds a challenge answer that expires `expires_in` seconds from now, if given.
    pub async fn set_acme(&self, challenge: &AcmeChallenge, expires_in: Option<u32>) -> Result<()> {
        match self {
            Self::Db(db) => {
                let expires_at = expires_in.map(|s| instadns::model::time::unix_now() + i64::from(s));
                Ok(db.set_acme(&AcmeChallenge { expires_at, ..challenge.clone() }).await?)
            }
            Self::Api(api) => {
                let path = format!("/v1/acme/{}", encode(&challenge.name));
                let mut body = json!({"ttl": challenge.ttl, "expires_in": expires_in});
                body[challenge.kind.as_str()] = challenge.value.clone().into();
                api.json::<Ignored>(Method::POST, &path, Some(body), None).await.map(drop)
            }
        }
    }

    /// Removes `name`'s challenge answers (only the TXT value `txt`, if given): how many.
    pub async fn clear_acme(&self, name: &str, txt: Option<&str>) -> Result<u64> {
        match self {
            Self::Db(db) => Ok(db.clear_acme(name, txt).await?),
            Self::Api(api) => {
                let mut path = format!("/v1/acme/{}", encode(name));
                if let Some(value) = txt {
                    path = format!("{path}?txt={}", encode(value));
                }
                let removed: Removed = api.json(Method::DELETE, &path, None, None).await?;
                Ok(removed.removed)
            }
        }
    }

    /// The challenge answers of `name`, or all.
    pub async fn list_acme(&self, name: Option<&str>) -> Result<Vec<AcmeChallenge>> {
        match (self, name) {
            (Self::Db(db), _) => Ok(db.list_acme(name).await?),
            (Self::Api(api), Some(name)) => api.get(&format!("/v1/acme/{}", encode(name))).await,
            (Self::Api(api), None) => api.list("/v1/acme", "", None, usize::MAX).await,
        }
    }

    // Zones, their rules and static records.

    pub async fn add_zone(&self, zone: &NewZone) -> Result<()> {
        match self {
            Self::Db(db) => db.add_zone(zone).await.map(drop).map_err(Into::into),
            Self::Api(api) => {
                let body = json!({
                    "apex": zone.apex,
                    "ns": zone.ns,
                    "soa_mname": zone.soa_mname,
                    "soa_rname": zone.soa_rname,
                    "soa_minimum": zone.soa_minimum,
                    "ttl": zone.ttl,
                    "rules": zone.rules.iter().map(RuleSpec::to_string).collect::<Vec<_>>(),
                });
                api.json::<Ignored>(Method::POST, "/v1/zones", Some(body), None).await.map(drop)
            }
        }
    }

    pub async fn set_zone(&self, apex: &str, update: &ZoneUpdate) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.set_zone(apex, update).await?),
            Self::Api(api) => {
                let body = serde_json::to_value(update)?;
                let path = format!("/v1/zones/{}", encode(apex));
                api.json::<Ignored>(Method::PATCH, &path, Some(body), None).await.map(drop)
            }
        }
    }

    pub async fn remove_zone(&self, apex: &str, force: bool) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_zone(apex, force).await?),
            Self::Api(api) => {
                api.call(Method::DELETE, &format!("/v1/zones/{}?force={force}", encode(apex))).await
            }
        }
    }

    pub async fn list_zones(&self) -> Result<Vec<ZoneInfo>> {
        match self {
            Self::Db(db) => Ok(db.list_zones().await?),
            Self::Api(api) => api.list("/v1/zones", "", None, usize::MAX).await,
        }
    }

    pub async fn show_zone(&self, apex: &str) -> Result<ZoneInfo> {
        match self {
            Self::Db(db) => Ok(db.show_zone(apex).await?),
            Self::Api(api) => api.get(&format!("/v1/zones/{}", encode(apex))).await,
        }
    }

    /// Adds a rule, or (`change`) changes the kind and TTL of the rule with its pattern.
    pub async fn put_rule(&self, apex: &str, rule: &RuleSpec, change: bool) -> Result<()> {
        match self {
            Self::Db(db) if change => Ok(db.set_rule(apex, rule).await?),
            Self::Db(db) => Ok(db.add_rule(apex, rule).await?),
            Self::Api(api) => {
                let path = format!("/v1/zones/{}/rules", encode(apex));
                let method = if change { Method::PATCH } else { Method::POST };
                let body =
                    json!({"pattern": rule.pattern.to_string(), "kind": rule.kind.as_str(), "ttl": rule.ttl});
                api.json::<Ignored>(method, &path, Some(body), None).await.map(drop)
            }
        }
    }

    pub async fn remove_rule(&self, apex: &str, pattern: &str) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_rule(apex, pattern).await?),
            Self::Api(api) => {
                let path = format!("/v1/zones/{}/rules?pattern={}", encode(apex), encode(pattern));
                api.call(Method::DELETE, &path).await
            }
        }
    }

    pub async fn list_rules(&self, apex: &str) -> Result<Vec<RuleRow>> {
        match self {
            Self::Db(db) => Ok(db.list_rules(apex).await?),
            Self::Api(api) => api.get(&format!("/v1/zones/{}/rules", encode(apex))).await,
        }
    }

    pub async fn add_record(
        &self,
        apex: &str,
        name: &str,
        rtype: &str,
        ttl: Option<u32>,
        data: &str,
    ) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.add_record(apex, name, rtype, ttl, data).await?),
            Self::Api(api) => {
                let path = format!("/v1/zones/{}/records", encode(apex));
                let body = json!({"name": name, "type": rtype, "ttl": ttl, "data": data});
                api.json::<Ignored>(Method::POST, &path, Some(body), None).await.map(drop)
            }
        }
    }

    /// Removes the records of `name` and `rtype` (only the one with `data`, if given):
    /// how many.
    pub async fn remove_record(
        &self,
        apex: &str,
        name: &str,
        rtype: &str,
        data: Option<&str>,
    ) -> Result<u64> {
        match self {
            Self::Db(db) => Ok(db.remove_record(apex, name, rtype, data).await?),
            Self::Api(api) => {
                let mut path = format!(
                    "/v1/zones/{}/records?name={}&type={}",
                    encode(apex),
                    encode(name),
                    encode(rtype)
                );
                if let Some(data) = data {
                    path = format!("{path}&data={}", encode(data));
                }
                let removed: Removed = api.json(Method::DELETE, &path, None, None).await?;
                Ok(removed.removed)
            }
        }
    }

    pub async fn list_records(&self, apex: &str, name: Option<&str>) -> Result<Vec<RecordRow>> {
        match self {
            Self::Db(db) => Ok(db.list_records(apex, name).await?),
            Self::Api(api) => {
                let filters = name.map(|n| format!("name={}", encode(n))).unwrap_or_default();
                api.list(&format!("/v1/zones/{}/records", encode(apex)), &filters, None, usize::MAX).await
            }
        }
    }

    // Territories.

    pub async fn add_territory(&self, name: &str, prefixes: &[Prefix]) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.add_territory(name, prefixes).await?),
            Self::Api(api) => {
                let body = json!({"name": name, "prefixes": texts(prefixes)});
                api.json::<Ignored>(Method::POST, "/v1/territories", Some(body), None).await.map(drop)
            }
        }
    }

    /// Adds and removes networks; `replace` drops every other one first.
    pub async fn set_territory(
        &self,
        name: &str,
        replace: bool,
        add: &[Prefix],
        remove: &[Prefix],
    ) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.set_territory(name, replace, add, remove).await?),
            Self::Api(api) => {
                let path = format!("/v1/territories/{}", encode(name));
                let body = json!({"replace": replace, "add": texts(add), "remove": texts(remove)});
                api.json::<Ignored>(Method::PATCH, &path, Some(body), None).await.map(drop)
            }
        }
    }

    pub async fn remove_territory(&self, name: &str) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_territory(name).await?),
            Self::Api(api) => api.call(Method::DELETE, &format!("/v1/territories/{}", encode(name))).await,
        }
    }

    pub async fn list_territories(&self) -> Result<Vec<TerritoryInfo>> {
        match self {
            Self::Db(db) => Ok(db.list_territories().await?),
            Self::Api(api) => api.list("/v1/territories", "", None, usize::MAX).await,
        }
    }

    pub async fn show_territory(&self, name: &str) -> Result<TerritoryInfo> {
        match self {
            Self::Db(db) => Ok(db.show_territory(name).await?),
            Self::Api(api) => api.get(&format!("/v1/territories/{}", encode(name))).await,
        }
    }

    // TSIG keys.

    /// Adds a key with `secret`, or a new random one: the key with its secret.
    pub async fn add_key(
        &self,
        name: &str,
        algorithm: TsigAlgorithm,
        secret: Option<Secret>,
        scope: &KeyScope,
    ) -> Result<KeyRow> {
        match self {
            Self::Db(db) => {
                let secret = secret.unwrap_or_else(|| Secret::generate(algorithm.output_len()));
                Ok(db.add_key(name, algorithm, &secret, scope).await?)
            }
            Self::Api(api) => {
                let body = json!({
                    "name": name,
                    "algorithm": algorithm.as_str(),
                    "zones": scope.zones.iter().map(|z| z.to_ascii()).collect::<Vec<_>>(),
                    "names": scope.names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    "operations": scope.operations.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
                    "secret": secret.map(|s| s.to_base64()),
                });
                let made: MadeKey = api.json(Method::POST, "/v1/keys", Some(body), None).await?;
                Ok(KeyRow { secret: Secret::from_base64(&made.secret)?, ..made.key })
            }
        }
    }

    pub async fn remove_key(&self, name: &str) -> Result<()> {
        match self {
            Self::Db(db) => Ok(db.remove_key(name).await?),
            Self::Api(api) => api.call(Method::DELETE, &format!("/v1/keys/{}", encode(name))).await,
        }
    }

    /// The keys, without their secrets through the API.
    pub async fn list_keys(&self) -> Result<Vec<KeyRow>> {
        match self {
            Self::Db(db) => Ok(db.list_keys().await?),
            Self::Api(api) => api.list("/v1/keys", "", None, usize::MAX).await,
        }
    }

    // TTL changes.

    /// Sets (`Some`) or clears the TTL of `whose` answers; with `dry_run` only says
    /// what would change. A line per change.
    pub async fn apply_ttl(
        &self,
        whose: &ttl::Target,
        ttl: Option<u32>,
        dry_run: bool,
    ) -> Result<Vec<String>> {
        match self {
            Self::Db(db) => Ok(ttl::apply(db, whose, ttl, dry_run).await?.lines),
            Self::Api(api) => {
                let mut body = json!({"ttl": ttl, "clear": ttl.is_none(), "dry_run": dry_run});
                match whose {
                    ttl::Target::Cluster(cluster) => body["cluster"] = cluster.as_str().into(),
                    ttl::Target::Instance(id) => body["instance"] = (*id).into(),
                    ttl::Target::Name(name) => body["name"] = name.as_str().into(),
                }
                let applied: TtlApplied = api.json(Method::POST, "/v1/ttl", Some(body), None).await?;
                Ok(applied.lines)
            }
        }
    }
}

fn texts(prefixes: &[Prefix]) -> Vec<String> {
    prefixes.iter().map(Prefix::to_string).collect()
}

/// A cluster update as the API's `ClusterChange` body.
fn cluster_change(update: &ClusterUpdate) -> serde_json::Map<String, Value> {
    let mut body = serde_json::Map::new();
    let services: serde_json::Map<String, Value> = update
        .set_services
        .iter()
        .map(|(service, target)| (service.clone(), target.clone().into()))
        .collect();
    body.insert("services".into(), services.into());
    body.insert("remove_services".into(), json!(update.remove_services));
    body.insert("addresses".into(), update.add_addresses.iter().map(|a| a.to_string()).collect());
    body.insert("remove_addresses".into(), update.remove_addresses.iter().map(|a| a.to_string()).collect());
    body.insert("order".into(), json!(update.order));
    body.insert("pick".into(), json!(update.pick));
    body.insert("fallback".into(), json!(update.fallback));
    if let Some(check) = &update.check {
        body.insert(
            "check".into(),
            json!({
                "target": check.target.to_string(),
                "host": check.host,
                "expect_status": check.expect_status,
                "interval_ms": check.interval_ms,
                "timeout_ms": check.timeout_ms,
                "rise": check.rise,
                "fall": check.fall,
            }),
        );
    }
    body.insert("remove_check".into(), update.remove_check.into());
    body
}
