//! dig's output, parsed: status, flags, EDNS line, sections.

/// kdig's statistics of a transfer, `;; Received B B (M messages, R records)`:
/// (bytes, messages, records).
pub fn kdig_received(output: &str) -> Option<(u64, u64, u64)> {
    let line = output.lines().find(|l| l.starts_with(";; Received ") && l.contains("messages"))?;
    let mut numbers = line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    let mut next = || numbers.next()?.parse().ok();
    Some((next()?, next()?, next()?))
}

/// What dig printed, parsed.
pub struct Dig {
    pub text: String,
}

impl Dig {
    pub fn parse(stdout: &[u8]) -> Self {
        Self { text: String::from_utf8_lossy(stdout).into_owned() }
    }

    pub fn status(&self) -> &str {
        self.text.split("status: ").nth(1).and_then(|r| r.split(',').next()).unwrap_or("?")
    }

    pub fn flags(&self) -> Vec<&str> {
        self.text
            .lines()
            .find(|l| l.starts_with(";; flags:"))
            .and_then(|l| l.strip_prefix(";; flags:"))
            .and_then(|l| l.split(';').next())
            .map(|f| f.split_whitespace().collect())
            .unwrap_or_default()
    }

    pub fn has_flag(&self, f: &str) -> bool {
        self.flags().contains(&f)
    }

    pub fn edns_line(&self) -> Option<&str> {
        self.text.lines().find(|l| l.starts_with("; EDNS:"))
    }

    pub fn answer_has(&self, rtype: &str) -> bool {
        self.section("ANSWER").iter().any(|l| l.split_whitespace().nth(3) == Some(rtype))
    }

    pub fn section(&self, name: &str) -> Vec<&str> {
        let header = format!(";; {name} SECTION:");
        self.text.lines().skip_while(|l| *l != header).skip(1).take_while(|l| !l.is_empty()).collect()
    }

    /// The records of a section as (owner, TTL, type, data).
    pub fn records(&self, section: &str) -> Vec<(String, u32, String, String)> {
        self.section(section)
            .iter()
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let owner = f.next()?.to_owned();
                let ttl = f.next()?.parse().ok()?;
                let _class = f.next()?;
                let rtype = f.next()?.to_owned();
                Some((owner, ttl, rtype, f.collect::<Vec<_>>().join(" ")))
            })
            .collect()
    }
}

#[cfg(test)]
mod kdig_output {
    #[test]
    fn transfer_statistics_are_read() {
        let text = ";; Received 8388749 B (1024 messages, 200023 records)\n;; Time 2026-12-06 22:00:00 UTC\n";
        assert_eq!(super::kdig_received(text), Some((8388749, 1024, 200023)));
        assert_eq!(super::kdig_received(";; Received 61 B\n"), None);
    }
}
