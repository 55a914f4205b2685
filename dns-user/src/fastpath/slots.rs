//! Allocation of answer slots: runs of consecutive slots (one per variant), shared by
//! content, freed slots quarantined before reuse. Pure bookkeeping: the kernel maps are
//! written by [`super::kernel`].

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::protocol::Steered;

/// How long a freed answer slot waits before reuse. An XDP run lasts microseconds.
pub const SLOT_QUARANTINE: Duration = Duration::from_secs(2);

/// Allocation of runs of answer slots (one slot per variant), shared by content.
pub struct SlotTable {
    capacity: u32,
    /// Slots never used yet start here.
    next_fresh: u32,
    /// Free runs by first slot: their lengths. Neighbours are merged, and a run that
    /// reaches `next_fresh` goes back to it, so churn never splinters the table.
    free: BTreeMap<u32, u32>,
    quarantine: VecDeque<(Instant, u32, u32)>,
    by_content: HashMap<Arc<Steered>, u32>,
    /// Per run (by first slot): its content and how many names point at it.
    used: HashMap<u32, (Arc<Steered>, u32)>,
}

impl SlotTable {
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            next_fresh: 0,
            free: BTreeMap::new(),
            quarantine: VecDeque::new(),
            by_content: HashMap::new(),
            used: HashMap::new(),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Runs in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// The first slot of a run holding `content`, and whether it is new (and must be
    /// written). A free run at least as long is split; else fresh slots are used.
    pub fn acquire(&mut self, content: &Arc<Steered>) -> Option<(u32, bool)> {
        if let Some(&slot) = self.by_content.get(content) {
            if let Some((_, refs)) = self.used.get_mut(&slot) {
                *refs += 1;
            }
            return Some((slot, false));
        }
        self.reclaim(Instant::now());
        let len = content.variants.len().max(1) as u32;
        // The shortest free run that fits, so single slots do not split long runs.
        let best =
            self.free.iter().filter(|(_, l)| **l >= len).min_by_key(|(_, l)| **l).map(|(s, l)| (*s, *l));
        let slot = match best {
            Some((start, free_len)) => {
                self.free.remove(&start);
                if free_len > len {
                    self.free.insert(start + len, free_len - len);
                }
                start
            }
            None if self.next_fresh + len <= self.capacity => {
                self.next_fresh += len;
                self.next_fresh - len
            }
            None => return None,
        };
        self.by_content.insert(content.clone(), slot);
        self.used.insert(slot, (content.clone(), 1));
        Some((slot, true))
    }

    /// Records one more reference to the run at `slot` holding `content` (from adopted maps).
    pub fn adopt(&mut self, slot: u32, content: &Arc<Steered>) {
        let entry = self.used.entry(slot).or_insert_with(|| (content.clone(), 0));
        entry.1 += 1;
        self.by_content.entry(content.clone()).or_insert(slot);
        self.next_fresh = self.next_fresh.max(slot + content.variants.len().max(1) as u32);
    }

    /// After adopting: the slots below the highest adopted one that nothing points at
    /// are free (they are not in use, so reusing them at once is safe).
    pub fn finish_adoption(&mut self) {
        let mut taken = vec![false; self.next_fresh as usize];
        let runs = self.used.iter().map(|(s, (c, _))| (*s, c.variants.len().max(1) as u32));
        for (start, len) in runs.chain(self.quarantine.iter().map(|(_, s, l)| (*s, *l))) {
            for s in start..(start + len).min(self.next_fresh) {
                taken[s as usize] = true;
            }
        }
        self.free.clear();
        for s in (0..self.next_fresh).filter(|s| !taken[*s as usize]) {
            self.free_run(s, 1);
        }
    }

    /// Returns a run to the free runs, merged with its neighbours.
    fn free_run(&mut self, mut start: u32, mut len: u32) {
        if let Some((&before, &before_len)) = self.free.range(..start).next_back()
            && before + before_len == start
        {
            self.free.remove(&before);
            start = before;
            len += before_len;
        }
        if let Some(after_len) = self.free.remove(&(start + len)) {
            len += after_len;
        }
        if start + len == self.next_fresh {
            self.next_fresh = start;
        } else {
            self.free.insert(start, len);
        }
    }

    pub fn release(&mut self, slot: u32) {
        let Some((content, refs)) = self.used.get_mut(&slot) else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            let content = content.clone();
            self.by_content.remove(&content);
            self.used.remove(&slot);
            self.quarantine.push_back((Instant::now(), slot, content.variants.len().max(1) as u32));
        }
    }

    pub fn reclaim(&mut self, now: Instant) {
        while let Some(&(since, slot, len)) = self.quarantine.front() {
            if now.duration_since(since) < SLOT_QUARANTINE {
                break;
            }
            self.quarantine.pop_front();
            self.free_run(slot, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fastpath::codec::answer_slots,
        protocol::{EncodedAnswer, VariantChoice},
    };

    fn encoded(byte: u8) -> Arc<EncodedAnswer> {
        Arc::new(EncodedAnswer {
            rcode: 0,
            authoritative: true,
            counts: [1, 0, 0],
            data: vec![byte; 16],
            rotate: None,
            stale: false,
            optional: Vec::new(),
        })
    }

    fn answer(byte: u8) -> Arc<Steered> {
        Arc::new(Steered::fixed(encoded(byte)))
    }

    #[test]
    fn variant_runs_are_contiguous_and_free_runs_are_split() {
        let mut t = SlotTable::new(8);
        let run = Arc::new(Steered {
            variants: vec![encoded(1), encoded(2), encoded(3)],
            choice: VariantChoice::Weighted(vec![100, 200, 65536]),
        });
        assert_eq!(t.acquire(&answer(9)).unwrap(), (0, true));
        assert_eq!(t.acquire(&run).unwrap(), (1, true), "slots 1, 2, 3");
        assert_eq!(t.acquire(&answer(8)).unwrap(), (4, true));
        t.release(1);
        t.reclaim(Instant::now() + SLOT_QUARANTINE);
        assert_eq!(t.acquire(&answer(7)).unwrap(), (1, true), "the freed run is split");
        assert_eq!(t.free, BTreeMap::from([(2, 2)]));
        let slots = answer_slots(&run);
        assert_eq!(slots.iter().map(|s| s.pick_below).collect::<Vec<_>>(), vec![100, 200, 65536]);
    }

    #[test]
    fn identical_answers_share_a_slot_and_freed_slots_wait_in_quarantine() {
        let mut t = SlotTable::new(2);
        let (a, fresh_a) = t.acquire(&answer(1)).unwrap();
        let (a2, fresh_a2) = t.acquire(&answer(1)).unwrap();
        assert_eq!((a, fresh_a, a2, fresh_a2), (0, true, 0, false));
        let (b, _) = t.acquire(&answer(2)).unwrap();
        assert_eq!(b, 1);
        assert!(t.acquire(&answer(3)).is_none(), "capacity 2");
        t.release(a);
        t.release(a);
        assert!(t.acquire(&answer(3)).is_none(), "slot 0 is still in quarantine");
        t.reclaim(Instant::now() + SLOT_QUARANTINE);
        assert_eq!(t.acquire(&answer(3)).unwrap(), (0, true));
    }

    #[test]
    fn adopted_slots_are_neither_reused_nor_leaked() {
        let mut t = SlotTable::new(4);
        t.adopt(2, &answer(7));
        t.adopt(2, &answer(7));
        t.finish_adoption();
        assert_eq!(t.acquire(&answer(7)).unwrap(), (2, false), "the adopted content is shared");
        let (a, _) = t.acquire(&answer(8)).unwrap();
        let (b, _) = t.acquire(&answer(9)).unwrap();
        assert!(a != 2 && b != 2 && a != b, "fresh answers avoid the adopted slot");
        for _ in 0..3 {
            t.release(2);
        }
        t.reclaim(Instant::now() + SLOT_QUARANTINE);
        assert_eq!(
            t.acquire(&answer(10)).unwrap(),
            (2, true),
            "released by its last name, the slot is freed"
        );
    }

    fn run(variants: usize, tag: u16) -> Arc<Steered> {
        let tagged = |i: usize| {
            let mut e = (*encoded(i as u8)).clone();
            e.data[..2].copy_from_slice(&tag.to_be_bytes());
            Arc::new(e)
        };
        Arc::new(Steered {
            variants: (0..variants).map(tagged).collect(),
            choice: VariantChoice::Directional,
        })
    }

    /// What the table must hold after any sequence of operations.
    fn check_invariants(t: &SlotTable) -> Result<(), String> {
        let mut owner = vec![None; t.next_fresh as usize];
        let mut mark = |start: u32, len: u32, what: &str| -> Result<(), String> {
            for s in start..start + len {
                let cell = owner
                    .get_mut(s as usize)
                    .ok_or(format!("{what} run at {start}+{len} beyond next_fresh"))?;
                if let Some(other) = cell.replace(what.to_owned()) {
                    return Err(format!("slot {s} is both {other} and {what}"));
                }
            }
            Ok(())
        };
        for (start, (content, refs)) in &t.used {
            if *refs == 0 {
                return Err(format!("run {start} in use with no reference"));
            }
            mark(*start, content.variants.len() as u32, "used")?;
        }
        for (start, len) in &t.free {
            mark(*start, *len, "free")?;
        }
        for (_, start, len) in &t.quarantine {
            mark(*start, *len, "quarantined")?;
        }
        if let Some(s) = owner.iter().position(Option::is_none) {
            return Err(format!("slot {s} below next_fresh is neither used, free nor quarantined"));
        }
        let runs: Vec<(u32, u32)> = t.free.iter().map(|(s, l)| (*s, *l)).collect();
        if runs.windows(2).any(|w| w[0].0 + w[0].1 == w[1].0) {
            return Err(format!("adjacent free runs not merged: {runs:?}"));
        }
        if runs.last().is_some_and(|(s, l)| s + l == t.next_fresh) {
            return Err("a free run ends at next_fresh".into());
        }
        if t.next_fresh > t.capacity {
            return Err("next_fresh beyond capacity".into());
        }
        Ok(())
    }

    proptest::proptest! {
        /// Random acquire (runs of 1 to 8 variants) and release, with quarantines ending:
        /// slots are never shared by two runs or leaked, free runs stay merged, and an
        /// acquire fails only when no free run nor the fresh tail can hold the run.
        #[test]
        fn slot_table_invariants_hold_under_churn(ops in proptest::collection::vec((0u8..3, 1usize..=8, 0u16..40), 1..400)) {
            let mut t = SlotTable::new(64);
            let mut held: Vec<u32> = Vec::new();
            let later = || Instant::now() + SLOT_QUARANTINE;
            for (op, variants, tag) in ops {
                match op {
                    0 => {
                        let content = run(variants, tag);
                        match t.acquire(&content) {
                            Some((slot, _)) => held.push(slot),
                            None => {
                                let fits_free = t.free.values().any(|l| *l as usize >= variants);
                                let fits_fresh = t.next_fresh as usize + variants <= t.capacity as usize;
                                proptest::prop_assert!(!fits_free && !fits_fresh, "acquire of {} failed with room", variants);
                            }
                        }
                    }
                    1 if !held.is_empty() => {
                        let slot = held.swap_remove(tag as usize % held.len());
                        t.release(slot);
                    }
                    _ => t.reclaim(later()),
                }
                if let Err(e) = check_invariants(&t) {
                    proptest::prop_assert!(false, "{}", e);
                }
            }
            // Everything released and reclaimed: the whole table is free again, in one piece.
            for slot in held.drain(..) {
                t.release(slot);
            }
            t.reclaim(later());
            proptest::prop_assert_eq!(t.next_fresh, 0);
            proptest::prop_assert!(t.free.is_empty());
        }
    }
}
