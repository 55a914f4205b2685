//! What the kernel maps cost and count: capacity and memory of each map, and the
//! outcome counters (of a loaded program's maps, or of pinned ones for `instadns status`).

use std::path::Path;

use aya::maps::{Map, MapData, PerCpuArray};
use dns_common::{maps::STATS_MAP_NAME, stats::Outcome};

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
    pub fn of_pin(name: &'static str, path: &Path) -> Option<Self> {
        MapData::from_pin(path).ok().map(|data| Self::of(name, &data))
    }

    pub fn of(name: &'static str, data: &MapData) -> Self {
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

/// The outcome counters of a pinned layout, summed over CPUs, in [`Outcome::ALL`] order.
pub fn pinned_counters(layout_dir: &Path) -> Result<Vec<u64>, aya::maps::MapError> {
    let data = MapData::from_pin(layout_dir.join(STATS_MAP_NAME))?;
    let counters = PerCpuArray::<MapData, u64>::try_from(Map::PerCpuArray(data))?;
    Ok(Outcome::ALL
        .iter()
        .map(|o| counters.get(&(*o as u32), 0).map(|v| v.iter().sum()).unwrap_or(0))
        .collect())
}
