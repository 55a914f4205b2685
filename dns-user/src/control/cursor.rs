//! Where a follower stands in the change log. PostgreSQL hands out a change's id when
//! the row is written and shows the row at commit, so a transaction that began earlier
//! can commit a lower id after a higher one was read: the cursor keeps the newest id
//! seen and the ids below it not seen yet ("holes"), reads those again until they show
//! up or are old enough to be rollbacks, and tells a change read twice (a notification
//! and a catch-up) from a new one, so each is applied once.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use crate::store::{Database, StoreError, changes::Change};

/// How many of the newest changes a start looks at for holes: transactions that began
/// before it and commit after it.
pub const START_WINDOW: i64 = 1000;
/// How long a missing id is waited for. Past it, it counts as rolled back (a sequence
/// value never committed); a transaction open that long between writing its changes
/// and committing is applied when the log is next reloaded in full.
pub const HOLE_PATIENCE: Duration = Duration::from_secs(15 * 60);
/// Missing ids remembered; beyond, the oldest are given up (and counted).
pub const HOLE_LIMIT: usize = 10_000;

#[derive(Debug, Default)]
pub struct ChangeCursor {
    /// The newest change id seen (0: none).
    newest: i64,
    /// Ids below `newest` not seen yet, with when they were first missed.
    holes: BTreeMap<i64, Instant>,
    /// Holes given up on (too many, or waited for too long).
    given_up: u64,
}

/// What a catch-up found about the log as a whole.
#[derive(Debug, PartialEq, Eq)]
pub enum LogState {
    /// Every change after the cursor is still in the log.
    Complete,
    /// Changes this cursor never saw were pruned (the node was cut off for longer
    /// than the log keeps changes): only a full reload is right.
    Pruned { pruned_through: i64 },
    /// The log holds nothing as new as the cursor: it was emptied and started over.
    Restarted { newest_in_log: i64 },
}

impl ChangeCursor {
    /// A cursor for a follower that has seen every change with these ids (the newest
    /// ones of the log, read before the data they describe): ids missing between them
    /// are holes.
    pub fn from_seen(ids: &[i64], now: Instant) -> Self {
        let mut cursor = Self::default();
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        if let Some(&first) = ids.first() {
            cursor.newest = first;
            for id in ids {
                cursor.see(id, now);
            }
        }
        cursor
    }

    /// Reads the newest changes' ids: call before loading what they describe. A log
    /// pruned empty still has a newest id, its pruned mark: the cursor starts there
    /// (from 0, every catch-up would take the empty log for missed changes and reload
    /// everything again, once a second).
    pub async fn start(db: &Database) -> Result<Self, StoreError> {
        let ids = db.newest_change_ids(START_WINDOW).await?;
        let (_, pruned_through) = db.log_bounds().await?;
        let mut cursor = Self::from_seen(&ids, Instant::now());
        cursor.newest = cursor.newest.max(pruned_through);
        Ok(cursor)
    }

    pub fn newest(&self) -> i64 {
        self.newest
    }

    /// Ids below the newest still waited for, oldest first.
    pub fn holes(&self) -> Vec<i64> {
        self.holes.keys().copied().collect()
    }

    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    /// Keeps the changes not seen before (in id order) and records them as seen.
    pub fn take_new(&mut self, mut changes: Vec<Change>, now: Instant) -> Vec<Change> {
        changes.sort_by_key(|c| c.id);
        changes.dedup_by_key(|c| c.id);
        changes.retain(|c| self.see(c.id, now));
        changes
    }

    /// Records `id` as seen; whether it was new.
    fn see(&mut self, id: i64, now: Instant) -> bool {
        if id > self.newest {
            // Everything between the newest seen and this one is missing for now.
            let skipped = (id - self.newest - 1) as usize;
            let first_missing = self.newest + 1 + skipped.saturating_sub(HOLE_LIMIT) as i64;
            self.given_up += skipped.saturating_sub(HOLE_LIMIT) as u64;
            for missing in first_missing..id {
                self.holes.insert(missing, now);
            }
            self.newest = id;
            self.bound_holes();
            true
        } else {
            self.holes.remove(&id).is_some()
        }
    }

    /// Gives up holes waited for longer than [`HOLE_PATIENCE`].
    pub fn expire_holes(&mut self, now: Instant) {
        let before = self.holes.len();
        self.holes.retain(|_, since| now.duration_since(*since) < HOLE_PATIENCE);
        self.given_up += (before - self.holes.len()) as u64;
    }

    fn bound_holes(&mut self) {
        while self.holes.len() > HOLE_LIMIT {
            self.holes.pop_first();
            self.given_up += 1;
        }
    }

    /// Compares the cursor with the log's bounds: the newest id in it and the newest
    /// id ever pruned from it.
    pub fn state(&self, newest_in_log: i64, pruned_through: i64) -> LogState {
        if pruned_through > self.newest {
            LogState::Pruned { pruned_through }
        } else if newest_in_log < self.newest && pruned_through < self.newest {
            // Pruning everything keeps the newest id as the pruned mark: only a log
            // started over has neither.
            LogState::Restarted { newest_in_log }
        } else {
            LogState::Complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::changes::{ChangeOp, Table};

    fn change(id: i64) -> Change {
        Change { id, table: Table::Instances, key: "1".into(), op: ChangeOp::Insert, detail: None }
    }

    fn ids(changes: &[Change]) -> Vec<i64> {
        changes.iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_lower_id_committed_later_is_new_once() {
        let now = Instant::now();
        let mut cursor = ChangeCursor::from_seen(&[10], now);
        assert_eq!(ids(&cursor.take_new(vec![change(12), change(13)], now)), [12, 13]);
        assert_eq!(cursor.holes(), [11]);
        assert_eq!(ids(&cursor.take_new(vec![change(11), change(12)], now)), [11], "12 was seen");
        assert!(cursor.holes().is_empty());
        assert!(cursor.take_new(vec![change(11)], now).is_empty());
    }

    #[test]
    fn a_start_finds_the_holes_among_the_newest_ids() {
        let now = Instant::now();
        let cursor = ChangeCursor::from_seen(&[7, 3, 4, 9], now);
        assert_eq!(cursor.newest(), 9);
        assert_eq!(cursor.holes(), [5, 6, 8]);
        assert_eq!(ChangeCursor::from_seen(&[], now).newest(), 0);
    }

    #[test]
    fn holes_are_bounded_in_count_and_time() {
        let now = Instant::now();
        let mut cursor = ChangeCursor::from_seen(&[1], now);
        cursor.take_new(vec![change(1 + HOLE_LIMIT as i64 + 11)], now);
        assert_eq!(cursor.holes().len(), HOLE_LIMIT);
        assert_eq!(cursor.given_up(), 10);
        assert_eq!(cursor.holes()[0], 12, "the oldest are given up");
        cursor.expire_holes(now + HOLE_PATIENCE);
        assert!(cursor.holes().is_empty());
        assert_eq!(cursor.given_up(), 10 + HOLE_LIMIT as u64);
    }

    #[test]
    fn a_pruned_or_restarted_log_is_told_apart() {
        let cursor = ChangeCursor::from_seen(&[100], Instant::now());
        assert_eq!(cursor.state(150, 90), LogState::Complete);
        assert_eq!(cursor.state(150, 100), LogState::Complete, "pruned up to what we saw");
        assert_eq!(cursor.state(0, 100), LogState::Complete, "pruned empty, nothing new");
        assert_eq!(cursor.state(150, 120), LogState::Pruned { pruned_through: 120 });
        assert_eq!(cursor.state(5, 0), LogState::Restarted { newest_in_log: 5 });
    }
}
