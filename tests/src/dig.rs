//! dig's output, parsed: status, flags, EDNS line, sections.

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
