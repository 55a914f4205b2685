//! Writing answers into the BPF maps.
//!
//! Answer slots are shared by content: every name whose answer bytes are identical
//! points at one slot. A slot whose last name is gone waits in quarantine before reuse,
//! so an XDP run that read the old name entry an instant earlier never copies a slot
//! being rewritten.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, IterableMap as _, MapData, MapError, PerCpuArray},
};
use dns_common::{
    limits::{ANSWER_MAX_LEN, bucket_for},
    maps::{
        ANSWER_MAP_NAME, AnswerSlot, NAME_MAP_NAMES, NameEntry, NameKey, NameKey0, NameKey1, NameKey2,
        NameKey3, STATS_MAP_NAME, select,
    },
    stats::Outcome,
    wire::{csum_add_bytes, csum_fold},
};
use thiserror::Error;

use super::CacheKey;
use crate::answer::EncodedAnswer;

/// How long a freed answer slot waits before reuse. An XDP run lasts microseconds.
const SLOT_QUARANTINE: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum MapsError {
    #[error("the XDP object lacks map {0}")]
    MissingMap(&'static str),
    #[error("BPF map operation failed: {0}")]
    Map(#[from] MapError),
    #[error("all {0} answer slots are in use; raise --answer-slots")]
    SlotsFull(u32),
    #[error("the name does not fit any name map bucket")]
    NameTooLong,
}

pub struct KernelMaps {
    names0: BpfHashMap<MapData, NameKey0, NameEntry>,
    names1: BpfHashMap<MapData, NameKey1, NameEntry>,
    names2: BpfHashMap<MapData, NameKey2, NameEntry>,
    names3: BpfHashMap<MapData, NameKey3, NameEntry>,
    answers: Array<MapData, AnswerSlot>,
    stats: PerCpuArray<MapData, u64>,
    slots: SlotTable,
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, MapsError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    Ok(T::try_from(ebpf.take_map(name).ok_or(MapsError::MissingMap(name))?)?)
}

impl KernelMaps {
    /// Takes ownership of the maps of a loaded program.
    pub fn from_ebpf(ebpf: &mut Ebpf, answer_slots: u32) -> Result<Self, MapsError> {
        Ok(Self {
            names0: take(ebpf, NAME_MAP_NAMES[0])?,
            names1: take(ebpf, NAME_MAP_NAMES[1])?,
            names2: take(ebpf, NAME_MAP_NAMES[2])?,
            names3: take(ebpf, NAME_MAP_NAMES[3])?,
            answers: take(ebpf, ANSWER_MAP_NAME)?,
            stats: take(ebpf, STATS_MAP_NAME)?,
            slots: SlotTable::new(answer_slots),
        })
    }

    /// Points `key` at the answer, valid until `expires_ns` (CLOCK_MONOTONIC); releases
    /// `previous`, the slot the key pointed at before. Returns the slot now used.
    pub fn install(
        &mut self,
        key: &CacheKey,
        answer: &EncodedAnswer,
        expires_ns: u64,
        previous: Option<u32>,
    ) -> Result<u32, MapsError> {
        let content = Arc::new(answer.clone());
        let (slot, fresh) = self.slots.acquire(&content).ok_or(MapsError::SlotsFull(self.slots.capacity))?;
        if fresh && let Err(e) = self.answers.set(slot, answer_slot(answer), 0) {
            self.slots.release(slot);
            return Err(e.into());
        }
        let entry = NameEntry { expires_ns, answer: slot, variants: 1, select: select::FIXED };
        if let Err(e) = self.put_name(key, &entry) {
            self.slots.release(slot);
            return Err(e);
        }
        if let Some(old) = previous {
            self.slots.release(old);
        }
        Ok(slot)
    }

    /// Removes `key` from the name maps (if the kernel still has it) and releases
    /// `slot`, the answer slot it pointed at.
    pub fn remove(&mut self, key: &CacheKey, slot: Option<u32>) {
        if let Err(e) = self.delete_name(key) {
            tracing::trace!(error = %e, "name already gone from the map");
        }
        if let Some(slot) = slot {
            self.slots.release(slot);
        }
    }

    /// Whether the kernel's map holds `key` (it evicts least recently used entries).
    pub fn contains(&self, key: &CacheKey) -> bool {
        let (name, qtype) = (key.name(), key.qtype());
        let found = match bucket_for(name.len()) {
            Some(0) => get(&self.names0, name, qtype),
            Some(1) => get(&self.names1, name, qtype),
            Some(2) => get(&self.names2, name, qtype),
            Some(3) => get(&self.names3, name, qtype),
            _ => None,
        };
        found.is_some()
    }

    pub fn reclaim_quarantine(&mut self) {
        self.slots.reclaim(Instant::now());
    }

    /// Every name entry the kernel holds (after adopting an earlier daemon's pinned maps).
    pub fn entries(&self) -> Vec<(CacheKey, NameEntry)> {
        let mut out = Vec::new();
        collect(&self.names0, &mut out);
        collect(&self.names1, &mut out);
        collect(&self.names2, &mut out);
        collect(&self.names3, &mut out);
        out
    }

    /// Takes over the answer slots that `entries` (found in adopted maps) point at: the
    /// slot table learns their contents and reference counts, so new answers neither
    /// overwrite them nor leak them. Returns each entry's answer, as the kernel holds it.
    pub fn adopt(&mut self, entries: &[(CacheKey, NameEntry)]) -> Vec<Option<Arc<EncodedAnswer>>> {
        let mut contents: HashMap<u32, Option<Arc<EncodedAnswer>>> = HashMap::new();
        for (_, entry) in entries {
            contents.entry(entry.answer).or_insert_with(|| {
                self.answers.get(&entry.answer, 0).ok().map(|slot| Arc::new(answer_of_slot(&slot)))
            });
        }
        for (_, entry) in entries {
            if let Some(Some(content)) = contents.get(&entry.answer) {
                self.slots.adopt(entry.answer, content);
            }
        }
        self.slots.finish_adoption();
        entries.iter().map(|(_, e)| contents.get(&e.answer).cloned().flatten()).collect()
    }

    /// Capacity and kernel memory of each map, as the kernel reports them.
    pub fn usage(&self) -> Vec<MapUsage> {
        let named = |name: &'static str, data: &MapData| MapUsage::of(name, data);
        vec![
            named(NAME_MAP_NAMES[0], self.names0.map()),
            named(NAME_MAP_NAMES[1], self.names1.map()),
            named(NAME_MAP_NAMES[2], self.names2.map()),
            named(NAME_MAP_NAMES[3], self.names3.map()),
            named(ANSWER_MAP_NAME, self.answers.map()),
        ]
    }

    /// Answer slots in use.
    pub fn slots_used(&self) -> usize {
        self.slots.used.len()
    }

    /// An outcome counter summed over all CPUs.
    pub fn counter(&self, outcome: Outcome) -> u64 {
        self.stats.get(&(outcome as u32), 0).map(|values| values.iter().sum()).unwrap_or(0)
    }

    fn put_name(&mut self, key: &CacheKey, entry: &NameEntry) -> Result<(), MapsError> {
        let (name, qtype) = (key.name(), key.qtype());
        match bucket_for(name.len()) {
            Some(0) => put(&mut self.names0, name, qtype, entry),
            Some(1) => put(&mut self.names1, name, qtype, entry),
            Some(2) => put(&mut self.names2, name, qtype, entry),
            Some(3) => put(&mut self.names3, name, qtype, entry),
            _ => Err(MapsError::NameTooLong),
        }
    }

    fn delete_name(&mut self, key: &CacheKey) -> Result<(), MapsError> {
        let (name, qtype) = (key.name(), key.qtype());
        match bucket_for(name.len()) {
            Some(0) => delete(&mut self.names0, name, qtype),
            Some(1) => delete(&mut self.names1, name, qtype),
            Some(2) => delete(&mut self.names2, name, qtype),
            Some(3) => delete(&mut self.names3, name, qtype),
            _ => Err(MapsError::NameTooLong),
        }
    }
}

fn collect<const N: usize>(
    map: &BpfHashMap<MapData, NameKey<N>, NameEntry>,
    out: &mut Vec<(CacheKey, NameEntry)>,
) where
    NameKey<N>: aya::Pod,
{
    for (key, entry) in map.iter().filter_map(Result::ok) {
        if let Some(len) = wire_len(&key.name) {
            out.push((CacheKey::new(&key.name[..len], u16::from_be_bytes(key.qtype)), entry));
        }
    }
}

/// Length of the wire name at the start of a zero-padded key (None if malformed).
fn wire_len(name: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = *name.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            return Some(pos);
        }
        pos += len;
    }
}

/// The keys held by the name maps pinned in `layout_dir` (of any earlier layout with the
/// same key format), for warming new maps before they replace old ones.
pub fn pinned_keys(layout_dir: &std::path::Path) -> Vec<CacheKey> {
    fn keys<const N: usize>(path: &std::path::Path, out: &mut Vec<CacheKey>)
    where
        NameKey<N>: aya::Pod,
    {
        let Ok(data) = MapData::from_pin(path) else { return };
        let Ok(map) =
            BpfHashMap::<MapData, NameKey<N>, NameEntry>::try_from(aya::maps::Map::LruHashMap(data))
        else {
            return;
        };
        let mut entries = Vec::new();
        collect(&map, &mut entries);
        out.extend(entries.into_iter().map(|(k, _)| k));
    }
    let mut out = Vec::new();
    keys::<{ dns_common::limits::NAME_BUCKETS[0] }>(&layout_dir.join(NAME_MAP_NAMES[0]), &mut out);
    keys::<{ dns_common::limits::NAME_BUCKETS[1] }>(&layout_dir.join(NAME_MAP_NAMES[1]), &mut out);
    keys::<{ dns_common::limits::NAME_BUCKETS[2] }>(&layout_dir.join(NAME_MAP_NAMES[2]), &mut out);
    keys::<{ dns_common::limits::NAME_BUCKETS[3] }>(&layout_dir.join(NAME_MAP_NAMES[3]), &mut out);
    out
}

fn put<const N: usize>(
    map: &mut BpfHashMap<MapData, NameKey<N>, NameEntry>,
    name: &[u8],
    qtype: u16,
    entry: &NameEntry,
) -> Result<(), MapsError>
where
    NameKey<N>: aya::Pod,
{
    let key = NameKey::<N>::new(name, qtype).ok_or(MapsError::NameTooLong)?;
    Ok(map.insert(key, entry, 0)?)
}

fn delete<const N: usize>(
    map: &mut BpfHashMap<MapData, NameKey<N>, NameEntry>,
    name: &[u8],
    qtype: u16,
) -> Result<(), MapsError>
where
    NameKey<N>: aya::Pod,
{
    let key = NameKey::<N>::new(name, qtype).ok_or(MapsError::NameTooLong)?;
    Ok(map.remove(&key)?)
}

fn get<const N: usize>(
    map: &BpfHashMap<MapData, NameKey<N>, NameEntry>,
    name: &[u8],
    qtype: u16,
) -> Option<NameEntry>
where
    NameKey<N>: aya::Pod,
{
    map.get(&NameKey::<N>::new(name, qtype)?, 0).ok()
}

/// What a map holds and costs.
#[derive(Clone, Debug)]
pub struct MapUsage {
    pub name: &'static str,
    pub max_entries: u32,
    /// Kernel memory of the map (`memlock` in the map's fdinfo).
    pub memory_bytes: u64,
}

impl MapUsage {
    /// The usage of a pinned map.
    pub fn of_pin(name: &'static str, path: &std::path::Path) -> Option<Self> {
        MapData::from_pin(path).ok().map(|data| Self::of(name, &data))
    }

    fn of(name: &'static str, data: &MapData) -> Self {
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let fd = data.fd().as_fd().as_raw_fd();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Self { name, max_entries: field("max_entries:") as u32, memory_bytes: field("memlock:") }
    }
}

/// The map value for an answer: its bytes, counts, RCODE and checksum contribution.
pub fn answer_slot(answer: &EncodedAnswer) -> AnswerSlot {
    let mut slot = AnswerSlot::zeroed();
    let len = answer.data.len().min(ANSWER_MAX_LEN);
    slot.data[..len].copy_from_slice(&answer.data[..len]);
    slot.len = len as u16;
    slot.flags = answer.rcode & dns_common::maps::answer_flags::RCODE_MASK;
    slot.ancount = answer.counts[0];
    slot.nscount = answer.counts[1];
    slot.arcount = answer.counts[2];
    slot.csum = csum_fold(csum_add_bytes(0, &answer.data[..len]));
    if let Some(r) = answer.rotate {
        slot.rotate_offset = r.offset;
        slot.rotate_count = r.count;
        slot.rotate_size = r.size;
    }
    slot
}

/// The answer an answer slot holds.
fn answer_of_slot(slot: &AnswerSlot) -> EncodedAnswer {
    let len = (slot.len as usize).min(ANSWER_MAX_LEN);
    EncodedAnswer {
        rcode: slot.flags & dns_common::maps::answer_flags::RCODE_MASK,
        authoritative: true,
        counts: [slot.ancount, slot.nscount, slot.arcount],
        data: slot.data[..len].to_vec(),
        rotate: (slot.rotate_count >= 2).then_some(crate::answer::RotateSpan {
            offset: slot.rotate_offset,
            count: slot.rotate_count,
            size: slot.rotate_size,
        }),
    }
}

/// Allocation of answer slots, shared by content.
struct SlotTable {
    capacity: u32,
    /// Slots never used yet start here.
    next_fresh: u32,
    free: Vec<u32>,
    quarantine: VecDeque<(Instant, u32)>,
    by_content: HashMap<Arc<EncodedAnswer>, u32>,
    /// Per slot: its content and how many names point at it.
    used: HashMap<u32, (Arc<EncodedAnswer>, u32)>,
}

impl SlotTable {
    fn new(capacity: u32) -> Self {
        Self {
            capacity,
            next_fresh: 0,
            free: Vec::new(),
            quarantine: VecDeque::new(),
            by_content: HashMap::new(),
            used: HashMap::new(),
        }
    }

    /// A slot holding `content`, and whether it is new (and must be written).
    fn acquire(&mut self, content: &Arc<EncodedAnswer>) -> Option<(u32, bool)> {
        if let Some(&slot) = self.by_content.get(content) {
            if let Some((_, refs)) = self.used.get_mut(&slot) {
                *refs += 1;
            }
            return Some((slot, false));
        }
        self.reclaim(Instant::now());
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None if self.next_fresh < self.capacity => {
                self.next_fresh += 1;
                self.next_fresh - 1
            }
            None => return None,
        };
        self.by_content.insert(content.clone(), slot);
        self.used.insert(slot, (content.clone(), 1));
        Some((slot, true))
    }

    /// Records one more reference to `slot` holding `content` (from adopted maps).
    fn adopt(&mut self, slot: u32, content: &Arc<EncodedAnswer>) {
        let entry = self.used.entry(slot).or_insert_with(|| (content.clone(), 0));
        entry.1 += 1;
        self.by_content.entry(content.clone()).or_insert(slot);
        self.next_fresh = self.next_fresh.max(slot + 1);
    }

    /// After adopting: the slots below the highest adopted one that nothing points at
    /// are free (they are not in use, so reusing them at once is safe).
    fn finish_adoption(&mut self) {
        let quarantined: std::collections::HashSet<u32> = self.quarantine.iter().map(|(_, s)| *s).collect();
        self.free =
            (0..self.next_fresh).filter(|s| !self.used.contains_key(s) && !quarantined.contains(s)).collect();
    }

    fn release(&mut self, slot: u32) {
        let Some((content, refs)) = self.used.get_mut(&slot) else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            let content = content.clone();
            self.by_content.remove(&content);
            self.used.remove(&slot);
            self.quarantine.push_back((Instant::now(), slot));
        }
    }

    fn reclaim(&mut self, now: Instant) {
        while let Some(&(since, slot)) = self.quarantine.front() {
            if now.duration_since(since) < SLOT_QUARANTINE {
                break;
            }
            self.quarantine.pop_front();
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(byte: u8) -> Arc<EncodedAnswer> {
        Arc::new(EncodedAnswer {
            rcode: 0,
            authoritative: true,
            counts: [1, 0, 0],
            data: vec![byte; 16],
            rotate: None,
        })
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
        assert!(t.free.contains(&2), "released by its last name, the slot is freed");
    }

    #[test]
    fn slot_checksum_is_the_sum_of_the_data() {
        let a = EncodedAnswer {
            rcode: 3,
            authoritative: true,
            counts: [0, 1, 0],
            data: vec![0x12, 0x34, 0x56],
            rotate: None,
        };
        let s = answer_slot(&a);
        assert_eq!((s.len, s.flags, s.nscount), (3, 3, 1));
        assert_eq!(s.csum, csum_fold(csum_add_bytes(0, &[0x12, 0x34, 0x56])));
    }
}
