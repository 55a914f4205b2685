//! Keeps answers consistent with the database: follows the change log (SQLite: polled,
//! cheaply, through `PRAGMA data_version`; PostgreSQL: LISTEN/NOTIFY, with a catch-up
//! from the log after every reconnect), turns each change into the tags of the answers
//! it affects, and replaces those answers (in the userspace cache and the XDP maps) or,
//! for large batches, removes them.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{
    engine::Handler,
    model::{acme::ACME_LABEL, time::unix_now},
    resolution::{Tag, known::Source},
    store::{
        CHANGE_CHANNEL, Database, StoreError, ZoneRow,
        changes::{Change, ChangeOp, Table},
        sqlite::data_version,
    },
};

/// How often SQLite is polled for commits by other processes.
pub const SQLITE_POLL: Duration = Duration::from_millis(5);
/// Up to this many affected answers are re-resolved in place; beyond, removed.
pub const REPLACE_LIMIT: usize = 1000;
/// Changes read per query.
const BATCH: i64 = 10_000;
/// How far back a reconnecting follower re-reads the log (commits can land out of id
/// order in PostgreSQL; re-applying a change is harmless).
const CATCH_UP_OVERLAP: i64 = 1000;
/// Change notifications waiting to be read; past it the follower reads the log instead
/// (the log holds every change, so nothing is lost).
const NOTIFICATION_QUEUE: usize = 4096;
/// Log entries older than this are pruned.
const KEEP_CHANGES: Duration = Duration::from_secs(24 * 3600);

/// What the follower did, for metrics.
#[derive(Default)]
pub struct FollowerStats {
    /// Changes applied.
    pub changes: AtomicU64,
    /// Cached answers replaced or removed because of them.
    pub answers: AtomicU64,
}

#[derive(Clone)]
pub struct Follower {
    db: Database,
    handler: Arc<Handler<Database>>,
    pub stats: Arc<FollowerStats>,
    /// Serializes applying changes and rebuilding the known names: they are the only
    /// writers of the known names.
    known: Arc<tokio::sync::Mutex<KnownFollow>>,
}

/// The follower's view of the change log, for the known names.
#[derive(Default)]
struct KnownFollow {
    /// Instances whose update's old half was seen and new half not yet.
    open_updates: HashSet<i64>,
    /// Change ids already applied (re-read logs apply nothing twice); the oldest are
    /// forgotten beyond [`APPLIED_IDS`].
    applied: std::collections::BTreeSet<i64>,
}

/// Change ids remembered as applied.
const APPLIED_IDS: usize = 100_000;

impl Follower {
    pub fn new(db: Database, handler: Arc<Handler<Database>>) -> Self {
        Self { db, handler, stats: Default::default(), known: Default::default() }
    }

    /// Rebuilds the known names if they are not trusted and publishes them to the fast
    /// path, or renews the fast path's trust in them: a periodic tick (a failed rebuild
    /// is retried by the next one).
    pub async fn ensure_known(&self) {
        let _serial = self.known.lock().await;
        if self.handler.resolver().known_names().is_ready() && self.handler.cache().negatives_complete() {
            self.handler.renew_negatives();
        } else {
            self.refresh_known().await;
        }
    }

    /// Builds the known names at start and publishes them. What an earlier daemon
    /// published (adopted pinned maps) keeps answering meanwhile, within its lease.
    pub async fn build_known(&self) {
        let _serial = self.known.lock().await;
        if let Err(e) = self.handler.resolver().refresh_known().await {
            tracing::warn!(error = %e, "building the known names failed; NXDOMAIN answers come from userspace");
        }
        self.handler.publish_negatives();
    }

    async fn refresh_known(&self) {
        let resolver = self.handler.resolver();
        if !resolver.known_names().is_ready() {
            // Untrusted names must not answer while they are rebuilt.
            self.handler.publish_negatives();
            if let Err(e) = resolver.refresh_known().await {
                tracing::warn!(error = %e, "rebuilding the known names failed; NXDOMAIN answers come from userspace");
            }
        }
        self.handler.publish_negatives();
    }

    /// Follows changes until the process ends.
    pub async fn run(self) {
        let mut cursor = loop {
            match self.db.change_cursor().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the change log failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        tracing::info!(cursor, "following database changes");
        self.ensure_known().await;
        let prune = tokio::spawn(prune_loop(self.db.clone()));
        if self.db.postgres().is_some() {
            self.follow_postgres(cursor).await;
        } else {
            loop {
                match self.poll_sqlite(&mut cursor).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "following SQLite changes failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        prune.abort();
    }

    /// Polls `PRAGMA data_version` on a dedicated connection; reads the log when
    /// another connection committed.
    async fn poll_sqlite(&self, cursor: &mut i64) -> Result<(), StoreError> {
        let Some(store) = self.db.sqlite() else { return Ok(()) };
        let path = store.path().to_owned();
        // One pending wake is enough: a wake reads everything committed before it.
        let (tx, mut rx) = mpsc::channel::<()>(1);
        // A blocking thread owns the connection: data_version is per connection.
        let watcher = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            let mut last = data_version(&conn)?;
            // Ends when the follower is gone (the daemon stopping), changed or not.
            while !tx.is_closed() {
                std::thread::sleep(SQLITE_POLL);
                let now = data_version(&conn)?;
                if now != last {
                    last = now;
                    if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        });
        // Catch up once (changes made while we were not watching), then on every wake.
        self.catch_up(cursor, 0).await?;
        while rx.recv().await.is_some() {
            while rx.try_recv().is_ok() {}
            self.catch_up(cursor, 0).await?;
        }
        match watcher.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Worker(e.to_string())),
        }
    }

    /// Applies every logged change after `cursor - overlap`.
    async fn catch_up(&self, cursor: &mut i64, overlap: i64) -> Result<(), StoreError> {
        let mut from = (*cursor - overlap).max(0);
        loop {
            let changes = self.db.changes_since(from, BATCH).await?;
            let Some(last) = changes.last().map(|c| c.id) else { return Ok(()) };
            from = last;
            *cursor = (*cursor).max(last);
            let full = changes.len() as i64 == BATCH;
            self.apply(&changes).await;
            if !full {
                return Ok(());
            }
        }
    }

    async fn follow_postgres(&self, mut cursor: i64) {
        let Some(pg) = self.db.postgres().cloned() else { return };
        let mut backoff = Duration::from_millis(100);
        loop {
            let (tx, mut rx) = mpsc::channel::<String>(NOTIFICATION_QUEUE);
            let overflowed = Arc::new(AtomicBool::new(false));
            let listener = {
                let (pg, overflowed) = (pg.clone(), overflowed.clone());
                tokio::spawn(async move { pg.listen(CHANGE_CHANNEL, tx, &overflowed).await })
            };
            // Whatever happened while we were not listening.
            if let Err(e) = self.catch_up(&mut cursor, CATCH_UP_OVERLAP).await {
                tracing::warn!(error = %e, "catching up with the change log failed");
            }
            while let Some(first) = rx.recv().await {
                backoff = Duration::from_millis(100);
                let mut ids: Vec<i64> = first.parse().into_iter().collect();
                while let Ok(more) = rx.try_recv() {
                    ids.extend(more.parse::<i64>());
                }
                match self.db.changes_by_id(&ids).await {
                    Ok(changes) => {
                        cursor = cursor.max(changes.iter().map(|c| c.id).max().unwrap_or(cursor));
                        self.apply(&changes).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "reading notified changes failed"),
                }
                // Notifications were dropped while the queue was full: read the log.
                if overflowed.swap(false, Ordering::Relaxed)
                    && let Err(e) = self.catch_up(&mut cursor, CATCH_UP_OVERLAP).await
                {
                    tracing::warn!(error = %e, "catching up with the change log failed");
                }
            }
            match listener.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "lost the PostgreSQL change feed; reconnecting"),
                Ok(Ok(())) => return,
                Err(e) => tracing::warn!(error = %e, "the change listener failed; reconnecting"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Turns changes into invalidated answers.
    pub async fn apply(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let mut follow = self.known.lock().await;
        let resolver = self.handler.resolver();
        let mut instance_changes = Vec::new();
        let mut challenges = Vec::new();
        let mut reload = false;
        let mut tags: HashSet<Tag> = HashSet::new();
        let mut domains = Vec::new();
        let mut territories = false;
        let mut zone_rows: HashSet<i64> = HashSet::new();
        for c in changes {
            let id = c.key.parse::<i64>().ok();
            match &c.table {
                // Most zone row changes are new serials: taken without a reload below.
                Table::Zones => zone_rows.extend(id),
                Table::ZoneNs | Table::Records | Table::NameRules => {
                    reload = true;
                    tags.extend(id.map(Tag::Zone));
                }
                Table::Clusters | Table::ClusterServices | Table::ClusterAddresses | Table::ClusterChecks => {
                    reload = true;
                    tags.extend(id.map(Tag::Cluster));
                }
                Table::Territories | Table::TerritoryPrefixes => {
                    reload = true;
                    territories = true;
                    tags.insert(Tag::Territories);
                }
                Table::Instances | Table::Tombstones => {
                    let Some(id) = id else { continue };
                    tags.insert(Tag::Instance(id));
                    let (owner, name) = owner_and_name(c.detail.as_deref());
                    tags.extend(resolver.names_of_instance(id, owner, name).into_iter().map(Tag::Name));
                    if c.table == Table::Instances {
                        instance_changes.push(c);
                    }
                }
                Table::Domains => {
                    tags.extend(id.map(Tag::Instance));
                    tags.extend(c.detail.as_deref().map(|h| Tag::Name(h.to_ascii_lowercase())));
                    domains.extend(c.detail.clone());
                }
                Table::AcmeChallenges => {
                    tags.insert(Tag::Name(format!("{ACME_LABEL}.{}", c.key.to_ascii_lowercase())));
                    challenges.push(c.key.to_ascii_lowercase());
                }
                // Keys are loaded with the catalog; no answer depends on them.
                Table::TsigKeys => reload = true,
                Table::Other(other) => tracing::debug!(table = other, "change of an unwatched table"),
            }
        }
        if !zone_rows.is_empty() {
            // New serials go straight into the catalog; any other change of a zone's row
            // (or a zone added or removed) needs the catalog reloaded.
            let rows = loop {
                match self.db.select::<ZoneRow>("FROM zones", vec![]).await {
                    Ok(rows) => break rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading zones after a change failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            let rows: Vec<ZoneRow> = rows.into_iter().filter(|r| zone_rows.contains(&r.id)).collect();
            let mut rebuild: HashSet<i64> = resolver.take_serials(&rows).into_iter().collect();
            rebuild.extend(zone_rows.iter().filter(|id| !rows.iter().any(|r| r.id == **id)));
            reload |= !rebuild.is_empty();
            for id in zone_rows {
                tags.insert(if rebuild.contains(&id) { Tag::Zone(id) } else { Tag::Soa(id) });
            }
        }
        if reload {
            // The catalog must be current before answers are re-resolved.
            while let Err(e) = resolver.reload_after_change().await {
                tracing::warn!(error = %e, "reloading zones after a change failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The resolver's set of custom domains must be current before answers are
        // re-resolved, as the catalog above.
        for hostname in &domains {
            resolver.domain_changed(hostname).await;
        }
        // The known names, before any answer is re-resolved: a new name is never denied.
        challenges.sort();
        challenges.dedup();
        for name in &challenges {
            resolver.acme_changed(name).await;
        }
        follow.apply_instances(resolver, &instance_changes);
        drop(follow);
        self.refresh_known().await;
        // New territory prefixes first: re-resolved directional answers index them.
        if territories && let Some(catalog) = resolver.catalog() {
            self.handler.cache().set_territories(catalog.territories.prefixes());
        }
        self.invalidate(&tags).await;
        self.stats.changes.fetch_add(changes.len() as u64, Ordering::Relaxed);
        tracing::debug!(changes = changes.len(), "applied database changes");
    }

    /// Re-resolves (or, when many, removes) the answers carrying any of `tags`: after a
    /// database change, or a health check's state change.
    pub async fn invalidate(&self, tags: &HashSet<Tag>) {
        let cache = self.handler.cache();
        let keys = cache.begin_invalidation(tags);
        if keys.len() <= REPLACE_LIMIT {
            for key in &keys {
                self.handler.refresh(key).await;
            }
        } else {
            cache.remove(&keys);
        }
        self.stats.answers.fetch_add(keys.len() as u64, Ordering::Relaxed);
        tracing::debug!(answers = keys.len(), "invalidated answers");
    }
}

impl KnownFollow {
    /// Applies instance rows of the change log to the known names: an insert adds the
    /// instance's names, a delete removes them, an update (logged as the old row, then
    /// the new) removes the old ones and adds the new.
    fn apply_instances(&mut self, resolver: &crate::resolution::Resolver<Database>, changes: &[&Change]) {
        for c in changes {
            if !self.applied.insert(c.id) {
                continue;
            }
            let Ok(id) = c.key.parse::<i64>() else { continue };
            let (owner, name) = owner_and_name(c.detail.as_deref());
            let source =
                Source::Instance { id, owner: owner.map(str::to_owned), name: name.map(str::to_owned) };
            let present = match c.op {
                ChangeOp::Insert => true,
                ChangeOp::Delete => false,
                // The old half opens the update, the new half closes it.
                ChangeOp::Update => !self.open_updates.insert(id) && self.open_updates.remove(&id),
            };
            resolver.known_source_changed(&source, present);
        }
        while self.applied.len() > APPLIED_IDS {
            self.applied.pop_first();
        }
    }
}

/// Splits an instance change's detail, "owner name" (either may be empty).
fn owner_and_name(detail: Option<&str>) -> (Option<&str>, Option<&str>) {
    let Some((owner, name)) = detail.and_then(|d| d.split_once(' ')) else { return (None, None) };
    ((!owner.is_empty()).then_some(owner), (!name.is_empty()).then_some(name))
}

async fn prune_loop(db: Database) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match db.prune_changes(unix_now() - KEEP_CHANGES.as_secs() as i64).await {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "pruned the change log"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pruning the change log failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_details_split() {
        assert_eq!(owner_and_name(Some("alice blog")), (Some("alice"), Some("blog")));
        assert_eq!(owner_and_name(Some(" ")), (None, None));
        assert_eq!(owner_and_name(None), (None, None));
    }
}
