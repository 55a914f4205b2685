//! Keeps answers consistent with the database: follows the change log (SQLite: polled,
//! cheaply, through `PRAGMA data_version`; PostgreSQL: LISTEN/NOTIFY, with a catch-up
//! from the log after every reconnect), turns each change into the tags of the answers
//! it affects, and replaces those answers (in the userspace cache and the XDP maps) or,
//! for large batches, removes them. Where it stands in the log is a [`ChangeCursor`]:
//! no change is lost (read before the data at start, LISTEN before each catch-up, the
//! log read every [`CATCH_UP_EVERY`] too, a pruned or restarted log noticed and
//! answered with a full reload).

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use super::cursor::{ChangeCursor, LogState};
use crate::{
    engine::Handler,
    model::acme::ACME_LABEL,
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
/// The log is read this often even without a notification or a commit seen: a lost
/// notification, a silently dead LISTEN connection or a missing id costs at most this.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// How often a node reading a hot standby reads its change log (LISTEN does not work
/// on a standby).
pub const REPLICA_POLL: Duration = Duration::from_millis(10);
/// How long LISTEN may take before the connection is made again.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);
/// Change notifications waiting to be read; past it the follower reads the log instead
/// (the log holds every change, so nothing is lost).
const NOTIFICATION_QUEUE: usize = 4096;
/// Log entries older than this are pruned, by default (`[database] keep_changes_hours`).
pub const KEEP_CHANGES: Duration = Duration::from_secs(24 * 3600);
/// How often the log is pruned, the first time this long after start (start-up is
/// busy enough, and a write then would contend with the operator's).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_FIRST: Duration = Duration::from_secs(60);

/// What the follower did, for metrics.
pub struct FollowerStats {
    /// Changes applied.
    pub changes: AtomicU64,
    /// Cached answers replaced or removed because of them.
    pub answers: AtomicU64,
    /// Everything reloaded because changes were missed or a table truncated.
    pub full_reloads: AtomicU64,
    /// The newest change applied.
    pub cursor: AtomicI64,
    /// Change ids below the cursor waited for (transactions not committed yet).
    pub holes: AtomicU64,
    /// Ids no longer waited for (rolled back, or waited for too long).
    pub holes_given_up: AtomicU64,
    /// How far the hot standby read replays behind its primary, in milliseconds
    /// (-1: not reading a standby).
    pub replica_lag_ms: AtomicI64,
}

impl Default for FollowerStats {
    fn default() -> Self {
        Self {
            changes: Default::default(),
            answers: Default::default(),
            full_reloads: Default::default(),
            cursor: Default::default(),
            holes: Default::default(),
            holes_given_up: Default::default(),
            replica_lag_ms: AtomicI64::new(-1),
        }
    }
}

#[derive(Clone)]
pub struct Follower {
    db: Database,
    handler: Arc<Handler<Database>>,
    pub stats: Arc<FollowerStats>,
    /// Serializes applying changes and rebuilding the known names: they are the only
    /// writers of the known names.
    known: Arc<tokio::sync::Mutex<KnownFollow>>,
    keep_changes: Duration,
}

/// The follower's view of the change log, for the known names.
#[derive(Default)]
struct KnownFollow {
    /// Instances whose update's old half was seen and new half not yet.
    open_updates: HashSet<i64>,
}

impl Follower {
    pub fn new(db: Database, handler: Arc<Handler<Database>>) -> Self {
        Self { db, handler, stats: Default::default(), known: Default::default(), keep_changes: KEEP_CHANGES }
    }

    /// How long the log keeps changes (a node cut off for longer reloads everything).
    pub fn with_keep_changes(mut self, keep: Duration) -> Self {
        self.keep_changes = keep;
        self
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

    /// Follows changes after `cursor` (read before the catalog was loaded, so a change
    /// committed meanwhile is applied) until the process ends.
    pub async fn run(self, mut cursor: ChangeCursor) {
        tracing::info!(cursor = cursor.newest(), "following database changes");
        self.stats.cursor.store(cursor.newest(), Ordering::Relaxed);
        self.ensure_known().await;
        let prune = tokio::spawn(prune_loop(self.db.clone(), self.keep_changes));
        if self.db.is_replica() {
            self.follow_replica(&mut cursor).await;
        } else if self.db.postgres().is_some() {
            self.follow_postgres(&mut cursor).await;
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
    /// another connection committed, and every [`CATCH_UP_EVERY`] in any case.
    async fn poll_sqlite(&self, cursor: &mut ChangeCursor) -> Result<(), StoreError> {
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
        self.catch_up(cursor).await?;
        let mut tick = catch_up_ticker();
        loop {
            tokio::select! {
                wake = rx.recv() => {
                    if wake.is_none() {
                        break;
                    }
                    while rx.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
            }
            self.catch_up(cursor).await?;
        }
        match watcher.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Worker(e.to_string())),
        }
    }

    /// Applies every logged change the cursor has not seen: the ids it still waits
    /// for, and everything after its newest. A log pruned past the cursor, or started
    /// over, means changes were missed: everything is reloaded.
    async fn catch_up(&self, cursor: &mut ChangeCursor) -> Result<(), StoreError> {
        let (newest_in_log, pruned_through) = self.db.log_bounds().await?;
        match cursor.state(newest_in_log, pruned_through) {
            LogState::Complete => {}
            state => {
                tracing::warn!(cursor = cursor.newest(), ?state, "changes were missed; reloading everything");
                // The new cursor before the data, as at start.
                let fresh = ChangeCursor::start(&self.db).await?;
                self.reload_everything().await;
                *cursor = fresh;
            }
        }
        cursor.expire_holes(Instant::now());
        let holes = cursor.holes();
        if !holes.is_empty() {
            let found = self.db.changes_by_id(&holes).await?;
            self.apply_new(cursor, found).await;
        }
        loop {
            let changes = self.db.changes_since(cursor.newest(), BATCH).await?;
            let full = changes.len() as i64 == BATCH;
            self.apply_new(cursor, changes).await;
            if !full {
                break;
            }
        }
        self.stats.holes.store(cursor.holes().len() as u64, Ordering::Relaxed);
        self.stats.holes_given_up.store(cursor.given_up(), Ordering::Relaxed);
        Ok(())
    }

    /// Applies the changes the cursor has not seen yet.
    async fn apply_new(&self, cursor: &mut ChangeCursor, changes: Vec<Change>) {
        let new = cursor.take_new(changes, Instant::now());
        self.apply(&new).await;
        self.stats.cursor.store(cursor.newest(), Ordering::Relaxed);
    }

    async fn follow_postgres(&self, cursor: &mut ChangeCursor) {
        let Some(pg) = self.db.postgres().cloned() else { return };
        let mut backoff = Duration::from_millis(100);
        loop {
            let (tx, mut rx) = mpsc::channel::<String>(NOTIFICATION_QUEUE);
            let overflowed = Arc::new(AtomicBool::new(false));
            let (listening_tx, listening) = tokio::sync::oneshot::channel();
            let mut listener = {
                let (pg, overflowed) = (pg.clone(), overflowed.clone());
                tokio::spawn(async move { pg.listen(CHANGE_CHANNEL, tx, &overflowed, listening_tx).await })
            };
            // LISTEN first, then the catch-up: a change committed in between is notified.
            let listening = tokio::select! {
                ready = listening => ready.is_ok(),
                _ = tokio::time::sleep(LISTEN_DEADLINE) => false,
            };
            if listening {
                if let Err(e) = self.catch_up(cursor).await {
                    tracing::warn!(error = %e, "catching up with the change log failed");
                }
                backoff = Duration::from_millis(100);
                let mut tick = catch_up_ticker();
                loop {
                    let ids = tokio::select! {
                        first = rx.recv() => {
                            let Some(first) = first else { break };
                            let mut ids: Vec<i64> = first.parse().into_iter().collect();
                            while let Ok(more) = rx.try_recv() {
                                ids.extend(more.parse::<i64>());
                            }
                            ids
                        }
                        _ = tick.tick() => Vec::new(),
                    };
                    // A notified change is committed: if its row is gone, it was pruned
                    // before we read it, which the catch-up finds. Notifications dropped
                    // while the queue was full are in the log too.
                    let mut read_log = ids.is_empty() || overflowed.swap(false, Ordering::Relaxed);
                    if !ids.is_empty() {
                        match self.db.changes_by_id(&ids).await {
                            Ok(changes) => {
                                read_log |= changes.len() < ids.len();
                                self.apply_new(cursor, changes).await;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "reading notified changes failed");
                                read_log = true;
                            }
                        }
                    }
                    if read_log && let Err(e) = self.catch_up(cursor).await {
                        tracing::warn!(error = %e, "catching up with the change log failed");
                    }
                }
            } else {
                listener.abort();
            }
            match (&mut listener).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "lost the PostgreSQL change feed; reconnecting"),
                Ok(Ok(())) => return,
                Err(e) if e.is_cancelled() => {
                    tracing::warn!("LISTEN took longer than {LISTEN_DEADLINE:?}; reconnecting")
                }
                Err(e) => tracing::warn!(error = %e, "the change listener failed; reconnecting"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Follows a hot standby, where LISTEN does not work: the log is read every
    /// [`REPLICA_POLL`], and the replay lag measured every [`CATCH_UP_EVERY`].
    async fn follow_replica(&self, cursor: &mut ChangeCursor) {
        let mut poll = tokio::time::interval(REPLICA_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lag_measured = Instant::now() - CATCH_UP_EVERY;
        loop {
            poll.tick().await;
            if lag_measured.elapsed() >= CATCH_UP_EVERY {
                lag_measured = Instant::now();
                match self.db.replica_lag_ms().await {
                    Ok(lag) => self.stats.replica_lag_ms.store(lag, Ordering::Relaxed),
                    Err(e) => tracing::debug!(error = %e, "measuring the replica's lag failed"),
                }
            }
            if let Err(e) = self.catch_up(cursor).await {
                tracing::warn!(error = %e, "reading the replica's change log failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// After missed changes (or a TRUNCATE): the catalog, the custom domains and the
    /// known names read again and every cached answer re-resolved, as if the daemon
    /// had started now (but answering all along).
    async fn reload_everything(&self) {
        // Counted when decided (with the warning that says why), not when done: the
        // answers it fixes can be served before the last cached one is replaced.
        self.stats.full_reloads.fetch_add(1, Ordering::Relaxed);
        let mut follow = self.known.lock().await;
        let resolver = self.handler.resolver();
        while let Err(e) = resolver.reload().await {
            tracing::warn!(error = %e, "reloading everything failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        follow.open_updates.clear();
        resolver.known_names().invalidate();
        drop(follow);
        self.refresh_known().await;
        if let Some(catalog) = resolver.catalog() {
            self.handler.cache().set_territories(catalog.territories.prefixes());
        }
        let keys = self.handler.cache().begin_full_invalidation();
        self.replace_answers(keys).await;
    }

    /// Turns changes into invalidated answers.
    pub async fn apply(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        if let Some(c) = changes.iter().find(|c| c.op == ChangeOp::Truncate) {
            tracing::warn!(table = c.table.as_str(), "a watched table was truncated; reloading everything");
            self.reload_everything().await;
            self.stats.changes.fetch_add(changes.len() as u64, Ordering::Relaxed);
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
        // Adopted answers not re-resolved yet may depend on anything that changed.
        let keys = self.handler.cache().begin_invalidation(tags.iter().chain([&Tag::Unresolved]));
        self.replace_answers(keys).await;
    }

    /// Re-resolves the answers of `keys` (or, when many, removes them).
    async fn replace_answers(&self, keys: Vec<crate::protocol::CacheKey>) {
        if keys.len() <= REPLACE_LIMIT {
            for key in &keys {
                self.handler.refresh(key).await;
            }
        } else {
            self.handler.cache().remove(&keys);
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
        // The cursor hands each change over once.
        for c in changes {
            let Ok(id) = c.key.parse::<i64>() else { continue };
            let (owner, name) = owner_and_name(c.detail.as_deref());
            let source =
                Source::Instance { id, owner: owner.map(str::to_owned), name: name.map(str::to_owned) };
            let present = match c.op {
                ChangeOp::Insert => true,
                ChangeOp::Delete | ChangeOp::Truncate => false,
                // The old half opens the update, the new half closes it.
                ChangeOp::Update => !self.open_updates.insert(id) && self.open_updates.remove(&id),
            };
            resolver.known_source_changed(&source, present);
        }
    }
}

/// Splits an instance change's detail, "owner name" (either may be empty).
fn owner_and_name(detail: Option<&str>) -> (Option<&str>, Option<&str>) {
    let Some((owner, name)) = detail.and_then(|d| d.split_once(' ')) else { return (None, None) };
    ((!owner.is_empty()).then_some(owner), (!name.is_empty()).then_some(name))
}

fn catch_up_ticker() -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + CATCH_UP_EVERY, CATCH_UP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

async fn prune_loop(db: Database, keep: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PRUNE_FIRST, PRUNE_EVERY);
    loop {
        tick.tick().await;
        match db.prune_changes(keep).await {
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
