//! Server-side CPU: what the server's processes consumed (user and system time of every
//! thread) plus the softirq time of all CPUs, where the kernel's receive path, XDP
//! programs included, runs on a veth. The kernel here samples both at each tick
//! (CONFIG_TICK_CPU_ACCOUNTING, 250 Hz), so a run must last seconds to be meaningful.
//!
//! Softirq time also holds the client veth's receive of the answers and the sink program
//! counting them: the same per answer for every server. The floor line of the report
//! (an XDP program that bounces every query straight back) shows that constant.

/// USER_HZ: the unit of /proc's tick counts.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    /// user + system ticks of the server's processes.
    process: u64,
    /// softirq ticks over all CPUs.
    softirq: u64,
    /// steal ticks over all CPUs (the hypervisor took the CPU: a noisy run).
    steal: u64,
}

impl CpuSample {
    pub fn take(pids: &[u32]) -> Self {
        let process = pids.iter().map(|p| process_ticks(*p)).sum();
        let (softirq, steal) = system_ticks();
        Self { process, softirq, steal }
    }

    /// CPU seconds from `self` to `later`: (server processes + softirq, steal).
    pub fn seconds_until(&self, later: &CpuSample) -> (f64, f64) {
        let used = (later.process - self.process) + (later.softirq - self.softirq);
        (used as f64 / TICKS_PER_SECOND, (later.steal - self.steal) as f64 / TICKS_PER_SECOND)
    }
}

/// utime + stime of a process (all its threads), in ticks; 0 once it is gone.
fn process_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the man page are the 12th and 13th after the name.
    let get = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// (softirq, steal) ticks summed over all CPUs.
fn system_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return (0, 0) };
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (f.get(6).copied().unwrap_or(0), f.get(7).copied().unwrap_or(0))
}

/// The processes whose command line starts with `program` (the server and its workers).
pub fn pids_of(program: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).next().is_some_and(|arg0| arg0.ends_with(program.as_bytes())))
                .unwrap_or(false)
        })
        .collect()
}
