//! TTL management: lowering (and restoring) the TTL of a cluster's, an instance's or a
//! name's answers, and the prepared migration that uses it: lower the TTL, wait until
//! every cache holding the old TTL has expired it, switch the cluster, then restore the
//! TTL. Every change goes through the database, so the daemons' change feeds rewrite the
//! XDP map entries at once.

use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use thiserror::Error;

use crate::{
    protocol::parse_user_name,
    resolution::{Resolver, Tag},
    store::{Database, Instance, StoreError},
};

#[derive(Debug, Error)]
pub enum TtlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// What `ttl apply` changes.
#[derive(Clone, Debug)]
pub enum Target {
    /// Every instance on the cluster.
    Cluster(String),
    Instance(i64),
    /// The static records at a name, or else the instance the name belongs to.
    Name(String),
}

/// The rows `apply` would change or changed, described for the operator.
#[derive(Debug)]
pub struct Applied {
    pub lines: Vec<String>,
}

fn describe(ttl: Option<u32>) -> String {
    ttl.map_or_else(|| "the rule's default".to_owned(), |t| format!("{t}s"))
}

/// Sets (`Some`) or clears (`None`: back to the rules' defaults) the TTL of `target`'s
/// answers; with `dry_run`, only says what would change.
pub async fn apply(
    db: &Database,
    target: &Target,
    ttl: Option<u32>,
    dry_run: bool,
) -> Result<Applied, TtlError> {
    let verb = if dry_run { "would set" } else { "set" };
    let mut lines = Vec::new();
    match target {
        Target::Cluster(cluster) => {
            let by_ttl = db.cluster_instance_ttls(cluster).await?;
            if by_ttl.is_empty() {
                lines.push(format!("cluster {cluster} has no instances: nothing to change"));
            }
            for (current, count) in by_ttl {
                lines.push(format!(
                    "{verb} TTL of {count} instance(s) on cluster {cluster} from {} to {}",
                    describe(current),
                    describe(ttl)
                ));
            }
            if !dry_run {
                db.set_cluster_instances_ttl(cluster, ttl).await?;
            }
        }
        Target::Instance(id) => {
            let instance = instance(db, *id).await?;
            lines.push(format!(
                "{verb} TTL of instance {id} from {} to {}",
                describe(instance.ttl),
                describe(ttl)
            ));
            if !dry_run {
                db.set_instance_ttl(*id, ttl).await?;
            }
        }
        Target::Name(name) => {
            let qname = absolute(name)?;
            let lower = qname.to_ascii().to_ascii_lowercase();
            let records = db.record_ttls_at(&lower).await?;
            if !records.is_empty() {
                let Some(ttl) = ttl else {
                    return Err(TtlError::Invalid(format!(
                        "{lower} holds static records, which always carry a TTL: give --ttl"
                    )));
                };
                for (rtype, current) in records {
                    lines.push(format!("{verb} TTL of {lower} {rtype} from {current}s to {ttl}s"));
                }
                if !dry_run {
                    db.set_record_ttl(&lower, ttl).await?;
                }
            } else {
                let id = instance_of_name(db, &qname).await?.ok_or_else(|| {
                    TtlError::Invalid(format!("{lower}: neither static records nor an instance's name"))
                })?;
                let instance = instance(db, id).await?;
                lines.push(format!(
                    "{lower} is a name of instance {id}: {verb} its TTL from {} to {}",
                    describe(instance.ttl),
                    describe(ttl)
                ));
                if !dry_run {
                    db.set_instance_ttl(id, ttl).await?;
                }
            }
        }
    }
    Ok(Applied { lines })
}

async fn instance(db: &Database, id: i64) -> Result<Instance, TtlError> {
    db.instance(id).await?.ok_or_else(|| TtlError::Invalid(format!("no instance {id}")))
}

fn absolute(name: &str) -> Result<Name, TtlError> {
    parse_user_name(name).map_err(|e| TtlError::Invalid(format!("{name:?}: {e}")))
}

/// The instance whose rules make `name` (its A answer names the instance).
async fn instance_of_name(db: &Database, name: &Name) -> Result<Option<i64>, TtlError> {
    let resolver = Resolver::new(db.clone()).await?;
    let res = resolver.resolve(name, RecordType::A).await?;
    Ok(res.tags.iter().find_map(|t| match t {
        Tag::Instance(id) => Some(*id),
        _ => None,
    }))
}

/// The longest TTL any of the instance's names is answered with now: how long a resolver
/// may keep an answer given out just before a change.
pub async fn served_ttl(db: &Database, instance: &Instance) -> Result<u32, TtlError> {
    let resolver = Resolver::new(db.clone()).await?;
    let mut longest = 0;
    for name in resolver.names_of_instance(instance.id, instance.owner.as_deref(), instance.name.as_deref()) {
        let qname = absolute(&name)?;
        for qtype in [RecordType::A, RecordType::AAAA] {
            let res = resolver.resolve(&qname, qtype).await?;
            // The instance's own records: a CNAME target's TTL belongs to someone else.
            let own = res.sections.answers.iter().filter(|r| r.name == qname).map(|r| r.ttl);
            longest = own.fold(longest, u32::max);
        }
    }
    Ok(longest)
}

/// The plan of a prepared move.
#[derive(Debug, Clone)]
pub struct MovePlan {
    pub id: i64,
    pub to: String,
    /// The TTL during the move.
    pub low_ttl: u32,
    /// The longest TTL answered before the move: how long to wait after lowering.
    pub old_served: u32,
    /// The instance's TTL override to restore (None: the rules' defaults).
    pub restore: Option<u32>,
}

pub async fn plan_move(db: &Database, id: i64, to: &str, low_ttl: u32) -> Result<MovePlan, TtlError> {
    let instance = instance(db, id).await?;
    db.cluster_id(to).await?;
    let old_served = served_ttl(db, &instance).await?;
    Ok(MovePlan { id, to: to.to_owned(), low_ttl, old_served, restore: instance.ttl })
}

/// Runs a prepared move: lower the TTL, wait out the old one, move, wait out the low
/// one, restore; `step` is told each step. With `dry_run`, only the steps are told:
/// nothing changes and nothing waits.
pub async fn prepared_move(
    db: &Database,
    plan: &MovePlan,
    dry_run: bool,
    step: &mut impl FnMut(&str),
) -> Result<(), TtlError> {
    let id = plan.id;
    let prefix = if dry_run { "[dry run] " } else { "" };
    if plan.low_ttl >= plan.old_served {
        step(&format!(
            "{prefix}step 1/4: TTL of instance {id} is already {}s, not above {}s: nothing to lower",
            plan.old_served, plan.low_ttl
        ));
    } else {
        step(&format!(
            "{prefix}step 1/4: lowering the TTL of instance {id} from {}s to {}s",
            plan.old_served, plan.low_ttl
        ));
        if !dry_run {
            db.set_instance_ttl(id, Some(plan.low_ttl)).await?;
        }
        step(&format!(
            "{prefix}step 2/4: waiting {}s until caches holding the old TTL have expired it",
            plan.old_served
        ));
        wait(dry_run, plan.old_served).await;
    }
    step(&format!("{prefix}step 3/4: moving instance {id} to cluster {}", plan.to));
    if !dry_run {
        let t = db.move_instance(id, &plan.to).await?;
        step(&format!("moved from {} to {} (tombstone recorded)", t.from_cluster, t.to_cluster));
    }
    let low = plan.low_ttl.min(plan.old_served);
    step(&format!(
        "{prefix}step 4/4: waiting {low}s for the old cluster's answers to expire, then restoring the TTL to {}",
        describe(plan.restore)
    ));
    wait(dry_run, low).await;
    if !dry_run {
        db.set_instance_ttl(id, plan.restore).await?;
    }
    step(&format!(
        "{prefix}done: instance {id} is on cluster {} with TTL {}",
        plan.to,
        describe(plan.restore)
    ));
    Ok(())
}

async fn wait(dry_run: bool, seconds: u32) {
    if !dry_run {
        // One second more than the TTL: a cache that fetched at the last moment before
        // the change may round its expiry up.
        tokio::time::sleep(Duration::from_secs(u64::from(seconds) + 1)).await;
    }
}
