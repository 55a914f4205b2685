//! Helpers the benchmarks share.

pub use tests::testrun::pin_to_cpu;

pub fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

/// A program's cumulative run time and count, as the kernel accounts them with
/// `kernel.bpf_stats_enabled=1`.
pub fn prog_stats(id: u64) -> (u64, u64) {
    let out = tests::netns::sh("bpftool", &["-j", "prog", "show", "id", &id.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        text.split(&format!("\"{key}\":"))
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("run_time_ns"), field("run_cnt"))
}

/// The id of the XDP program attached to `iface` in namespace `ns`.
pub fn attached_prog_id(ns: &str, iface: &str) -> u64 {
    let out = tests::netns::sh("ip", &["-n", ns, "-d", "link", "show", "dev", iface]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("prog/xdp id ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("an XDP program on the server veth")
}

/// Restores a sysctl when dropped.
pub struct Sysctl {
    key: &'static str,
    old: String,
}

impl Sysctl {
    pub fn set(key: &'static str, value: &str) -> Self {
        let old = std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/")))
            .unwrap_or_default()
            .trim()
            .to_owned();
        tests::netns::sh("sysctl", &["-qw", &format!("{key}={value}")]);
        Self { key, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if !self.old.is_empty() {
            let _ = std::process::Command::new("sysctl")
                .args(["-qw", &format!("{}={}", self.key, self.old)])
                .status();
        }
    }
}
