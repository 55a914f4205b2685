//! Allocation of answer slots: runs of consecutive slots (one per variant), shared by
//! content, freed slots quarantined before reuse. Pure bookkeeping: the kernel maps are
//! written by [`super::kernel`].

use std::{
    collections::{HashMap, VecDeque},
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
    /// Free runs: (first slot, length).
    free: Vec<(u32, u32)>,
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
            free: Vec::new(),
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
        let best = self.free.iter().enumerate().filter(|(_, (_, l))| *l >= len).min_by_key(|(_, (_, l))| *l);
        let slot = match best.map(|(i, _)| i) {
            Some(i) => {
                let (start, free_len) = self.free.swap_remove(i);
                if free_len > len {
                    self.free.push((start + len, free_len - len));
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
        self.free = (0..self.next_fresh).filter(|s| !taken[*s as usize]).map(|s| (s, 1)).collect();
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
            self.free.push((slot, len));
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
        assert_eq!(t.free, vec![(2, 2)]);
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
        assert!(t.free.contains(&(2, 1)), "released by its last name, the slot is freed");
    }
}
