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
    maps::{
        Array, HashMap as BpfHashMap, IterableMap as _, LpmTrie, MapData, MapError, PerCpuArray,
        lpm_trie::Key as LpmKey,
    },
};
use dns_common::{
    limits::{ANSWER_MAX_LEN, bucket_for},
    maps::{
        ANSWER_MAP_NAME, AnswerSlot, NAME_MAP_NAMES, NameEntry, NameKey, NameKey0, NameKey1, NameKey2,
        NameKey3, STATS_MAP_NAME, TERRITORY_V4_MAP_NAME, TERRITORY_V6_MAP_NAME, TerritoryV4, TerritoryV6,
        select,
    },
    stats::Outcome,
    wire::{csum_add_bytes, csum_fold},
};
use thiserror::Error;

use super::CacheKey;
use crate::{
    answer::{EncodedAnswer, Steered, VariantChoice},
    steering::territory::{Prefix, Territories},
};

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
    territories_v4: LpmTrie<MapData, TerritoryV4, u32>,
    territories_v6: LpmTrie<MapData, TerritoryV6, u32>,
    /// What the territory tries hold.
    territory_prefixes: Vec<(Prefix, u8)>,
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
            territories_v4: take(ebpf, TERRITORY_V4_MAP_NAME)?,
            territories_v6: take(ebpf, TERRITORY_V6_MAP_NAME)?,
            territory_prefixes: Vec::new(),
            slots: SlotTable::new(answer_slots),
        })
    }

    /// Makes the territory tries hold exactly `territories`' prefixes. New and changed
    /// prefixes are written before stale ones are removed, so no client falls through
    /// to the default in between.
    pub fn set_territories(&mut self, territories: &Territories) -> Result<(), MapsError> {
        let mut held: Vec<(Prefix, u8)> = self.kernel_territories();
        let wanted = territories.prefixes();
        for (prefix, index) in wanted {
            if !held.contains(&(*prefix, *index)) {
                self.put_territory(prefix, Some(*index as u32))?;
            }
        }
        held.retain(|(p, _)| !wanted.iter().any(|(w, _)| w == p));
        for (prefix, _) in held {
            self.put_territory(&prefix, None)?;
        }
        self.territory_prefixes = wanted.to_vec();
        Ok(())
    }

    /// The prefixes the kernel's tries hold (pinned maps keep an earlier daemon's).
    fn kernel_territories(&self) -> Vec<(Prefix, u8)> {
        let mut out = Vec::new();
        for (key, value) in self.territories_v4.iter().filter_map(Result::ok) {
            out.push((Prefix::of(std::net::IpAddr::from(key.data()), key.prefix_len() as u8), value as u8));
        }
        for (key, value) in self.territories_v6.iter().filter_map(Result::ok) {
            out.push((Prefix::of(std::net::IpAddr::from(key.data()), key.prefix_len() as u8), value as u8));
        }
        out
    }

    fn put_territory(&mut self, prefix: &Prefix, index: Option<u32>) -> Result<(), MapsError> {
        let len = prefix.len as u32;
        match (prefix.addr, index) {
            (std::net::IpAddr::V4(a), Some(i)) => {
                self.territories_v4.insert(&LpmKey::new(len, a.octets()), i, 0)?
            }
            (std::net::IpAddr::V4(a), None) => self.territories_v4.remove(&LpmKey::new(len, a.octets()))?,
            (std::net::IpAddr::V6(a), Some(i)) => {
                self.territories_v6.insert(&LpmKey::new(len, a.octets()), i, 0)?
            }
            (std::net::IpAddr::V6(a), None) => self.territories_v6.remove(&LpmKey::new(len, a.octets()))?,
        }
        Ok(())
    }

    /// Points `key` at the answer, valid until `expires_ns` (CLOCK_MONOTONIC); releases
    /// `previous`, the first slot of the run the key pointed at before. Returns the
    /// first slot of the run now used (one slot per variant).
    pub fn install(
        &mut self,
        key: &CacheKey,
        answer: &Arc<Steered>,
        expires_ns: u64,
        previous: Option<u32>,
    ) -> Result<u32, MapsError> {
        let (slot, fresh) = self.slots.acquire(answer).ok_or(MapsError::SlotsFull(self.slots.capacity))?;
        if fresh {
            for (i, value) in answer_slots(answer).into_iter().enumerate() {
                if let Err(e) = self.answers.set(slot + i as u32, value, 0) {
                    self.slots.release(slot);
                    return Err(e.into());
                }
            }
        }
        let select = match answer.choice {
            VariantChoice::Fixed => select::FIXED,
            VariantChoice::Weighted(_) => select::WEIGHTED,
            VariantChoice::Directional => select::DIRECTIONAL,
        };
        let entry = NameEntry { expires_ns, answer: slot, variants: answer.variants.len() as u16, select };
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
    pub fn adopt(&mut self, entries: &[(CacheKey, NameEntry)]) -> Vec<Option<Arc<Steered>>> {
        let mut contents: HashMap<u32, Option<Arc<Steered>>> = HashMap::new();
        for (_, entry) in entries {
            contents.entry(entry.answer).or_insert_with(|| self.read_run(entry).map(Arc::new));
        }
        for (_, entry) in entries {
            if let Some(Some(content)) = contents.get(&entry.answer) {
                self.slots.adopt(entry.answer, content);
            }
        }
        self.slots.finish_adoption();
        entries.iter().map(|(_, e)| contents.get(&e.answer).cloned().flatten()).collect()
    }

    /// The answer a name entry's run of slots holds.
    fn read_run(&self, entry: &NameEntry) -> Option<Steered> {
        let slots: Vec<AnswerSlot> = (0..entry.variants.max(1) as u32)
            .map(|i| self.answers.get(&(entry.answer + i), 0).ok())
            .collect::<Option<_>>()?;
        let choice = match entry.select {
            select::WEIGHTED => VariantChoice::Weighted(slots.iter().map(|s| s.pick_below).collect()),
            select::DIRECTIONAL => VariantChoice::Directional,
            _ => VariantChoice::Fixed,
        };
        Some(Steered { variants: slots.iter().map(|s| Arc::new(answer_of_slot(s))).collect(), choice })
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

/// The map values of an answer's variants, in order.
pub fn answer_slots(answer: &Steered) -> Vec<AnswerSlot> {
    answer
        .variants
        .iter()
        .enumerate()
        .map(|(i, variant)| {
            let mut slot = answer_slot(variant);
            if let VariantChoice::Weighted(bounds) = &answer.choice {
                slot.pick_below = bounds.get(i).copied().unwrap_or(dns_common::maps::PICK_SCALE);
            }
            slot
        })
        .collect()
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

/// Allocation of runs of answer slots (one slot per variant), shared by content.
struct SlotTable {
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

    /// The first slot of a run holding `content`, and whether it is new (and must be
    /// written). A free run at least as long is split; else fresh slots are used.
    fn acquire(&mut self, content: &Arc<Steered>) -> Option<(u32, bool)> {
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
    fn adopt(&mut self, slot: u32, content: &Arc<Steered>) {
        let entry = self.used.entry(slot).or_insert_with(|| (content.clone(), 0));
        entry.1 += 1;
        self.by_content.entry(content.clone()).or_insert(slot);
        self.next_fresh = self.next_fresh.max(slot + content.variants.len().max(1) as u32);
    }

    /// After adopting: the slots below the highest adopted one that nothing points at
    /// are free (they are not in use, so reusing them at once is safe).
    fn finish_adoption(&mut self) {
        let mut taken = vec![false; self.next_fresh as usize];
        let runs = self.used.iter().map(|(s, (c, _))| (*s, c.variants.len().max(1) as u32));
        for (start, len) in runs.chain(self.quarantine.iter().map(|(_, s, l)| (*s, *l))) {
            for s in start..(start + len).min(self.next_fresh) {
                taken[s as usize] = true;
            }
        }
        self.free = (0..self.next_fresh).filter(|s| !taken[*s as usize]).map(|s| (s, 1)).collect();
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
            self.quarantine.push_back((Instant::now(), slot, content.variants.len().max(1) as u32));
        }
    }

    fn reclaim(&mut self, now: Instant) {
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

    fn encoded(byte: u8) -> Arc<EncodedAnswer> {
        Arc::new(EncodedAnswer {
            rcode: 0,
            authoritative: true,
            counts: [1, 0, 0],
            data: vec![byte; 16],
            rotate: None,
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
