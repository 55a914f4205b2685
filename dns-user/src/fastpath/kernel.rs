//! The kernel maps: writing answers into the name maps and the answer array, the
//! territory tries, and reading back what a pinned layout holds.
//!
//! Answer slots are shared by content: every name whose answer bytes are identical
//! points at one slot ([`super::slots`]). A slot whose last name is gone waits in
//! quarantine before reuse, so an XDP run that read the old name entry an instant
//! earlier never copies a slot being rewritten.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Instant};

use aya::{
    Ebpf,
    maps::{
        Array, HashMap as BpfHashMap, IterableMap as _, LpmTrie, MapData, MapError, PerCpuArray,
        lpm_trie::Key as LpmKey,
    },
};
use dns_common::{
    limits::bucket_for,
    maps::{
        ANSWER_MAP_NAME, AnswerSlot, IFACE_MACS_MAP_NAME, LOCAL_V4_MAP_NAME, LOCAL_V6_MAP_NAME,
        MAX_TERRITORIES, MAX_WEIGHTED_VARIANTS, NAME_MAP_NAMES, NameEntry, NameKey, NameKey0, NameKey1,
        NameKey2, NameKey3, PICK_SCALE, STATS_MAP_NAME, TERRITORY_V4_MAP_NAME, TERRITORY_V6_MAP_NAME,
        TerritoryV4, TerritoryV6, key_check, select, wildcard_key_check,
    },
    negative::{
        KNOWN_NAMES_MAP_NAME, KnownName, NEGATIVE_CONFIG_MAP_NAME, NegativeConfig, WILDCARD_ANSWERS_MAP_NAME,
        WildcardKey, ZONE_FACTS_MAP_NAME, ZoneFacts, zone_flags,
    },
    stats::Outcome,
};
use thiserror::Error;

use super::{
    codec::{answer_of_slot, answer_slots},
    slots::SlotTable,
    stats::MapUsage,
};
use crate::{
    model::Prefix,
    protocol::{CacheKey, Steered, VariantChoice},
};

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
    local_v4: BpfHashMap<MapData, [u8; 4], u32>,
    local_v6: BpfHashMap<MapData, [u8; 16], u32>,
    iface_macs: BpfHashMap<MapData, u32, [u8; 8]>,
    known_names: BpfHashMap<MapData, u64, KnownName>,
    zone_facts: BpfHashMap<MapData, u32, ZoneFacts>,
    negative_config: Array<MapData, NegativeConfig>,
    wildcard_answers: BpfHashMap<MapData, WildcardKey, NameEntry>,
    /// Each zone's NXDOMAIN answer, as installed (its slot run is held while it is).
    zone_negatives: HashMap<u32, (Arc<Steered>, u32)>,
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
            local_v4: take(ebpf, LOCAL_V4_MAP_NAME)?,
            local_v6: take(ebpf, LOCAL_V6_MAP_NAME)?,
            iface_macs: take(ebpf, IFACE_MACS_MAP_NAME)?,
            known_names: take(ebpf, KNOWN_NAMES_MAP_NAME)?,
            zone_facts: take(ebpf, ZONE_FACTS_MAP_NAME)?,
            negative_config: take(ebpf, NEGATIVE_CONFIG_MAP_NAME)?,
            wildcard_answers: take(ebpf, WILDCARD_ANSWERS_MAP_NAME)?,
            zone_negatives: HashMap::new(),
            slots: SlotTable::new(answer_slots),
        })
    }

    /// Makes the territory tries hold exactly `wanted` (prefix, territory index). New
    /// and changed prefixes are written before stale ones are removed, so no client
    /// falls through to the default in between.
    pub fn set_territories(&mut self, wanted: &[(Prefix, u8)]) -> Result<(), MapsError> {
        let mut held: Vec<(Prefix, u8)> = self.kernel_territories();
        for (prefix, index) in wanted {
            if !held.contains(&(*prefix, *index)) {
                self.put_territory(prefix, Some(*index as u32))?;
            }
        }
        held.retain(|(p, _)| !wanted.iter().any(|(w, _)| w == p));
        for (prefix, _) in held {
            self.put_territory(&prefix, None)?;
        }
        Ok(())
    }

    /// Makes the local-address maps hold exactly `addresses`: the program answers only
    /// frames to them. New ones are written before stale ones go.
    pub fn set_local_addresses(&mut self, addresses: &[IpAddr]) -> Result<(), MapsError> {
        for a in addresses {
            match a {
                IpAddr::V4(v4) => self.local_v4.insert(v4.octets(), 1, 0)?,
                IpAddr::V6(v6) => self.local_v6.insert(v6.octets(), 1, 0)?,
            }
        }
        let stale_v4: Vec<[u8; 4]> = self
            .local_v4
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !addresses.contains(&IpAddr::from(*k)))
            .collect();
        for k in stale_v4 {
            self.local_v4.remove(&k)?;
        }
        let stale_v6: Vec<[u8; 16]> = self
            .local_v6
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !addresses.contains(&IpAddr::from(*k)))
            .collect();
        for k in stale_v6 {
            self.local_v6.remove(&k)?;
        }
        Ok(())
    }

    /// Records the MAC of an interface the program is attached to (by ifindex): the
    /// program answers only frames to it.
    pub fn set_interface_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), MapsError> {
        let mut value = [0u8; 8];
        value[..6].copy_from_slice(&mac);
        Ok(self.iface_macs.insert(ifindex, value, 0)?)
    }

    /// Publishes that the name with this hash exists (`Some`) or no longer does.
    pub fn set_known_name(&mut self, hash: u64, known: Option<KnownName>) -> Result<(), MapsError> {
        match known {
            Some(k) => Ok(self.known_names.insert(hash, k, 0)?),
            None => absent_is_fine(self.known_names.remove(&hash)),
        }
    }

    /// Sets a zone's NXDOMAIN answer (`None`: the zone is not enumerable, or is gone:
    /// no negative answers from the kernel).
    pub fn set_zone_negative(&mut self, zone: u32, answer: Option<&Arc<Steered>>) -> Result<(), MapsError> {
        let Some(answer) = answer else {
            if let Some((_, slot)) = self.zone_negatives.remove(&zone) {
                absent_is_fine(self.zone_facts.remove(&zone))?;
                self.slots.release(slot);
            }
            return Ok(());
        };
        if self.zone_negatives.get(&zone).is_some_and(|(held, _)| held == answer) {
            return Ok(());
        }
        let slot = self.acquire_written(answer)?;
        let facts = ZoneFacts { nxdomain_slot: slot, flags: zone_flags::ENUMERABLE };
        if let Err(e) = self.zone_facts.insert(zone, facts, 0) {
            self.slots.release(slot);
            return Err(e.into());
        }
        if let Some((_, old)) = self.zone_negatives.insert(zone, (answer.clone(), slot)) {
            self.slots.release(old);
        }
        Ok(())
    }

    /// Points the wildcard answer `key` at `answer` until `expires_ns`; releases
    /// `previous`. Returns the slot used.
    pub fn install_wildcard(
        &mut self,
        key: WildcardKey,
        answer: &Arc<Steered>,
        expires_ns: u64,
        previous: Option<u32>,
    ) -> Result<u32, MapsError> {
        let slot = self.acquire_written(answer)?;
        let entry = NameEntry {
            check: wildcard_key_check(key.encloser, key.qtype),
            ..name_entry(answer, slot, expires_ns)
        };
        if let Err(e) = self.wildcard_answers.insert(key, entry, 0) {
            self.slots.release(slot);
            return Err(e.into());
        }
        if let Some(old) = previous {
            self.slots.release(old);
        }
        Ok(slot)
    }

    /// Removes a wildcard answer and releases its slot.
    pub fn remove_wildcard(&mut self, key: &WildcardKey, slot: Option<u32>) {
        let _ = absent_is_fine(self.wildcard_answers.remove(key));
        if let Some(slot) = slot {
            self.slots.release(slot);
        }
    }

    /// Forgets the wildcard answers of adopted maps (this daemon does not know what they
    /// depend on): before any slot is written, so none points at a reused slot.
    pub fn clear_wildcards(&mut self) {
        let keys: Vec<WildcardKey> = self.wildcard_answers.keys().filter_map(Result::ok).collect();
        for key in keys {
            let _ = self.wildcard_answers.remove(&key);
        }
    }

    /// A run of slots holding `answer` (shared with identical answers), written.
    fn acquire_written(&mut self, answer: &Arc<Steered>) -> Result<u32, MapsError> {
        let (slot, fresh) = self.slots.acquire(answer).ok_or(MapsError::SlotsFull(self.slots.capacity()))?;
        if fresh {
            for (i, value) in answer_slots(answer).into_iter().enumerate() {
                if let Err(e) = self.answers.set(slot + i as u32, value, 0) {
                    self.slots.release(slot);
                    return Err(e.into());
                }
            }
        }
        Ok(slot)
    }

    /// The zones with a negative answer installed.
    pub fn negative_zones(&self) -> Vec<u32> {
        self.zone_negatives.keys().copied().collect()
    }

    /// The hash seed of the published names (0: none published), so a daemon adopting
    /// pinned maps goes on with the same hashes.
    pub fn negative_seed(&self) -> u64 {
        self.negative_config.get(&0, 0).map_or(0, |c| c.seed)
    }

    /// Removes every published name whose hash `keep` rejects (names that went away
    /// while no daemon followed the database); returns how many.
    pub fn prune_known_names(&mut self, keep: impl Fn(u64) -> bool) -> usize {
        let stale: Vec<u64> = self.known_names.keys().filter_map(Result::ok).filter(|h| !keep(*h)).collect();
        for hash in &stale {
            let _ = self.known_names.remove(hash);
        }
        stale.len()
    }

    /// Lets the program trust the published names until `valid_until_ns` (0: not at all).
    pub fn set_negative_lease(&mut self, valid_until_ns: u64, seed: u64) -> Result<(), MapsError> {
        Ok(self.negative_config.set(0, NegativeConfig { valid_until_ns, seed }, 0)?)
    }

    /// The prefixes the kernel's tries hold (pinned maps keep an earlier daemon's).
    fn kernel_territories(&self) -> Vec<(Prefix, u8)> {
        let mut out = Vec::new();
        for (key, value) in self.territories_v4.iter().filter_map(Result::ok) {
            out.push((Prefix::of(IpAddr::from(key.data()), key.prefix_len() as u8), value as u8));
        }
        for (key, value) in self.territories_v6.iter().filter_map(Result::ok) {
            out.push((Prefix::of(IpAddr::from(key.data()), key.prefix_len() as u8), value as u8));
        }
        out
    }

    fn put_territory(&mut self, prefix: &Prefix, index: Option<u32>) -> Result<(), MapsError> {
        let len = prefix.len as u32;
        match (prefix.addr, index) {
            (IpAddr::V4(a), Some(i)) => self.territories_v4.insert(&LpmKey::new(len, a.octets()), i, 0)?,
            (IpAddr::V4(a), None) => self.territories_v4.remove(&LpmKey::new(len, a.octets()))?,
            (IpAddr::V6(a), Some(i)) => self.territories_v6.insert(&LpmKey::new(len, a.octets()), i, 0)?,
            (IpAddr::V6(a), None) => self.territories_v6.remove(&LpmKey::new(len, a.octets()))?,
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
        let slot = self.acquire_written(answer)?;
        let entry = name_entry(answer, slot, expires_ns);
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
        self.clear_wildcards();
        let mut contents: HashMap<u32, Option<Arc<Steered>>> = HashMap::new();
        let mut corrupt = Vec::new();
        // Each entry's answer if the entry can be adopted: its run is one we could have
        // written, seen as long as by every entry pointing at it, and its check is its key's.
        let adoptable: Vec<Option<Arc<Steered>>> = entries
            .iter()
            .map(|(key, entry)| {
                let content = contents
                    .entry(entry.answer)
                    .or_insert_with(|| match self.read_run(entry) {
                        Ok(run) => Some(Arc::new(run)),
                        Err(why) => {
                            corrupt.push((entry.answer, why));
                            None
                        }
                    })
                    .clone()?;
                let why = if entry.check != key_check(key.name(), key.qtype().to_be_bytes()) {
                    "an entry with another key's check"
                } else if content.variants.len() != entry.variants.max(1) as usize {
                    "entries disagree on the run"
                } else {
                    return Some(content);
                };
                corrupt.push((entry.answer, why));
                None
            })
            .collect();
        // The others are removed, so neither the kernel nor userspace ever serves them;
        // their names resolve afresh.
        let mut discarded = 0;
        for ((key, entry), content) in entries.iter().zip(&adoptable) {
            match content {
                Some(content) => self.slots.adopt(entry.answer, content),
                None => {
                    let _ = self.delete_name(key);
                    discarded += 1;
                }
            }
        }
        if discarded > 0 {
            corrupt.sort_unstable();
            corrupt.dedup_by_key(|(slot, _)| *slot);
            let (slot, why) = corrupt.first().copied().unwrap_or((0, "?"));
            tracing::warn!(
                discarded,
                runs = corrupt.len(),
                first_slot = slot,
                why,
                "discarded pinned name entries whose answer slots are not valid answers"
            );
        }
        // The zones' NXDOMAIN slots, which the pinned zone facts point at.
        let zones: Vec<(u32, ZoneFacts)> = self.zone_facts.iter().filter_map(Result::ok).collect();
        for (zone, facts) in zones {
            let entry = NameEntry {
                expires_ns: 0,
                answer: facts.nxdomain_slot,
                variants: 1,
                select: select::FIXED,
                check: 0,
                _pad: 0,
            };
            match self.read_run(&entry) {
                Ok(content) => {
                    let content = Arc::new(content);
                    self.slots.adopt(facts.nxdomain_slot, &content);
                    self.zone_negatives.insert(zone, (content, facts.nxdomain_slot));
                }
                Err(why) => {
                    // No NXDOMAIN from the kernel for this zone until userspace sets it again.
                    tracing::warn!(zone, why, "discarded a pinned zone NXDOMAIN slot");
                    let _ = self.zone_facts.remove(&zone);
                }
            }
        }
        self.slots.finish_adoption();
        adoptable
    }

    /// The answer a name entry's run of slots holds, if it is one we could have written.
    fn read_run(&self, entry: &NameEntry) -> Result<Steered, &'static str> {
        let variants = entry.variants.max(1) as u32;
        let limit = match entry.select {
            select::FIXED => 1,
            select::WEIGHTED => MAX_WEIGHTED_VARIANTS as u32,
            select::DIRECTIONAL => MAX_TERRITORIES as u32 + 1,
            _ => return Err("unknown selection"),
        };
        if variants > limit
            || entry.answer.checked_add(variants).is_none_or(|end| end > self.slots.capacity())
        {
            return Err("run outside the answer slots");
        }
        let slots: Vec<AnswerSlot> = (0..variants)
            .map(|i| self.answers.get(&(entry.answer + i), 0).map_err(|_| "unreadable slot"))
            .collect::<Result<_, _>>()?;
        let choice = match entry.select {
            select::WEIGHTED => {
                let bounds: Vec<u32> = slots.iter().map(|s| s.pick_below).collect();
                if !bounds.is_sorted() || bounds.last().is_some_and(|b| *b > PICK_SCALE) {
                    return Err("weights out of order");
                }
                VariantChoice::Weighted(bounds)
            }
            select::DIRECTIONAL => VariantChoice::Directional,
            _ => VariantChoice::Fixed,
        };
        let variants = slots
            .iter()
            .map(|s| answer_of_slot(s).map(Arc::new).map_err(|e| e.message()))
            .collect::<Result<_, _>>()?;
        Ok(Steered { variants, choice })
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
            named(KNOWN_NAMES_MAP_NAME, self.known_names.map()),
        ]
    }

    /// Answer slots in use.
    pub fn slots_used(&self) -> usize {
        self.slots.in_use()
    }

    /// An outcome counter summed over all CPUs.
    pub fn counter(&self, outcome: Outcome) -> u64 {
        self.counter_per_cpu(outcome).iter().sum()
    }

    /// An outcome's count on each possible CPU, in CPU order.
    pub fn counter_per_cpu(&self, outcome: Outcome) -> Vec<u64> {
        self.stats
            .get(&(outcome as u32), 0)
            .map(|values| values.iter().copied().collect())
            .unwrap_or_default()
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

/// The name entry pointing at `answer`'s run of slots from `slot`.
fn name_entry(answer: &Steered, slot: u32, expires_ns: u64) -> NameEntry {
    let select = match answer.choice {
        VariantChoice::Fixed => select::FIXED,
        VariantChoice::Weighted(_) => select::WEIGHTED,
        VariantChoice::Directional => select::DIRECTIONAL,
    };
    // The check is the key's, set where the key is known (`put`, `install_wildcard`).
    NameEntry { expires_ns, answer: slot, variants: answer.variants.len() as u16, select, check: 0, _pad: 0 }
}

/// A removal that found nothing to remove is done.
fn absent_is_fine(result: Result<(), MapError>) -> Result<(), MapsError> {
    match result {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => Ok(other?),
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
    let entry = NameEntry { check: key_check(name, qtype.to_be_bytes()), ..*entry };
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
