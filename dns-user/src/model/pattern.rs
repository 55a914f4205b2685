//! Name patterns: how a query name under a zone maps to an instance.
//!
//! A pattern is written relative to the zone apex, one template per label, with the
//! placeholders `{id}` (decimal instance id), `{service}`, `{name}` and `{owner}`
//! (letters, digits, `-` and `_`) between literal text: `{service}-{id}.apps`,
//! `{name}.{owner}`, `{id}`. A leading `*` label makes the rule a wildcard (RFC 4592):
//! `*.{id}` answers every name below an instance's `{id}` name that does not exist
//! itself, as a `*.{id}` record in the zone would.

use std::fmt;

use super::Invalid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Id,
    Service,
    Name,
    Owner,
}

impl Var {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "id" => Self::Id,
            "service" => Self::Service,
            "name" => Self::Name,
            "owner" => Self::Owner,
            _ => return None,
        })
    }

    /// Whether `value` is a possible value of this placeholder.
    fn accepts(self, value: &[u8]) -> bool {
        match self {
            // Canonical decimal only (no leading zeros), so one instance has one name.
            Self::Id => {
                !value.is_empty()
                    && value.len() <= 18
                    && value.iter().all(u8::is_ascii_digit)
                    && (value[0] != b'0' || value.len() == 1)
            }
            _ => {
                !value.is_empty()
                    && value
                        .iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Lit(Vec<u8>),
    Var(Var),
}

/// A parsed name pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    labels: Vec<Vec<Segment>>,
}

/// What a match captured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures {
    pub id: Option<i64>,
    pub service: Option<String>,
    pub name: Option<String>,
    pub owner: Option<String>,
}

impl Captures {
    fn set(&mut self, var: Var, value: &[u8]) {
        let text = String::from_utf8_lossy(value).into_owned();
        match var {
            Var::Id => self.id = text.parse().ok(),
            Var::Service => self.service = Some(text),
            Var::Name => self.name = Some(text),
            Var::Owner => self.owner = Some(text),
        }
    }

    fn clear(&mut self, var: Var) {
        match var {
            Var::Id => self.id = None,
            Var::Service => self.service = None,
            Var::Name => self.name = None,
            Var::Owner => self.owner = None,
        }
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        Self::parse_text(text).map_err(Invalid)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.ends_with('.') || text.starts_with('.') {
            return Err(format!("pattern {text:?} must be a relative name such as {{service}}-{{id}}.apps"));
        }
        let mut labels = Vec::new();
        let mut seen = Vec::new();
        for (i, label) in text.split('.').enumerate() {
            if label == "*" {
                if i != 0 {
                    return Err(format!("pattern {text:?}: '*' may only be the first label (*.{{id}})"));
                }
                labels.push(vec![Segment::Lit(b"*".to_vec())]);
                continue;
            }
            let segments = parse_label(label).map_err(|e| format!("pattern {text:?}: {e}"))?;
            for s in &segments {
                if let Segment::Var(v) = s {
                    if seen.contains(v) {
                        return Err(format!("pattern {text:?} uses {{{}}} twice", var_name(*v)));
                    }
                    seen.push(*v);
                }
            }
            labels.push(segments);
        }
        let has = |v| seen.contains(&v);
        if !(has(Var::Id) || (has(Var::Name) && has(Var::Owner))) {
            return Err(format!(
                "pattern {text:?} must identify an instance: use {{id}}, or {{name}} and {{owner}}"
            ));
        }
        Ok(Self { text: text.to_owned(), labels })
    }

    /// Whether the first label is `*`: the rule answers names below the rest that do
    /// not exist themselves (matched at the source of synthesis `*.<rest>`).
    pub fn is_wildcard(&self) -> bool {
        self.labels.first().is_some_and(|l| *l == [Segment::Lit(b"*".to_vec())])
    }

    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    pub fn uses(&self, var: Var) -> bool {
        self.labels.iter().flatten().any(|s| *s == Segment::Var(var))
    }

    /// Matches the labels of a name below the apex (leftmost first), all of them.
    pub fn matches(&self, labels: &[&[u8]]) -> Option<Captures> {
        if labels.len() != self.labels.len() {
            return None;
        }
        self.match_tail(labels)
    }

    /// The relative name the pattern gives for these values, and the names above it
    /// that the pattern makes exist (its empty non-terminals), nearest first. `None` if
    /// a placeholder the pattern uses has no value.
    pub fn instantiate(&self, caps: &Captures) -> Option<Vec<String>> {
        let mut labels = Vec::with_capacity(self.labels.len());
        for template in &self.labels {
            let mut label = String::new();
            for segment in template {
                match segment {
                    Segment::Lit(l) => label.push_str(&String::from_utf8_lossy(l)),
                    Segment::Var(Var::Id) => label.push_str(&caps.id?.to_string()),
                    Segment::Var(Var::Service) => label.push_str(caps.service.as_deref()?),
                    Segment::Var(Var::Name) => label.push_str(caps.name.as_deref()?),
                    Segment::Var(Var::Owner) => label.push_str(caps.owner.as_deref()?),
                }
            }
            labels.push(label);
        }
        Some((0..labels.len()).map(|skip| labels[skip..].join(".")).collect())
    }

    /// Matches fewer labels than the pattern has against the pattern's rightmost
    /// labels: the name would be an empty non-terminal above names of this pattern.
    pub fn matches_ancestor(&self, labels: &[&[u8]]) -> Option<Captures> {
        if labels.is_empty() || labels.len() >= self.labels.len() {
            return None;
        }
        self.match_tail(labels)
    }

    fn match_tail(&self, labels: &[&[u8]]) -> Option<Captures> {
        let templates = &self.labels[self.labels.len() - labels.len()..];
        let mut caps = Captures::default();
        for (template, label) in templates.iter().zip(labels) {
            if !match_segments(template, label, &mut caps) {
                return None;
            }
        }
        Some(caps)
    }
}

impl std::str::FromStr for Pattern {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Self, Invalid> {
        Self::parse(text)
    }
}

impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn var_name(v: Var) -> &'static str {
    match v {
        Var::Id => "id",
        Var::Service => "service",
        Var::Name => "name",
        Var::Owner => "owner",
    }
}

fn parse_label(label: &str) -> Result<Vec<Segment>, String> {
    if label.is_empty() || label.len() > 63 {
        return Err(format!("label {label:?} must be 1 to 63 characters"));
    }
    let mut segments = Vec::new();
    let mut rest = label;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or_else(|| format!("unclosed placeholder in {label:?}"))?;
            let var = Var::parse(&after[..end]).ok_or_else(|| {
                format!(
                    "unknown placeholder {{{}}}: use {{id}}, {{service}}, {{name}} or {{owner}}",
                    &after[..end]
                )
            })?;
            if matches!(segments.last(), Some(Segment::Var(_))) {
                return Err(format!("placeholders in {label:?} need literal text between them"));
            }
            segments.push(Segment::Var(var));
            rest = &after[end + 1..];
        } else {
            let end = rest.find('{').unwrap_or(rest.len());
            let lit = &rest[..end];
            if !lit.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
                return Err(format!("literal {lit:?} may hold only lower-case letters, digits, '-' and '_'"));
            }
            segments.push(Segment::Lit(lit.as_bytes().to_vec()));
            rest = &rest[end..];
        }
    }
    Ok(segments)
}

/// Backtracking match of one label against its template (labels are at most 63 bytes).
fn match_segments(segments: &[Segment], text: &[u8], caps: &mut Captures) -> bool {
    match segments.split_first() {
        None => text.is_empty(),
        Some((Segment::Lit(lit), rest)) => {
            text.starts_with(lit) && match_segments(rest, &text[lit.len()..], caps)
        }
        Some((Segment::Var(var), rest)) => {
            for end in (1..=text.len()).rev() {
                if var.accepts(&text[..end]) {
                    caps.set(*var, &text[..end]);
                    if match_segments(rest, &text[end..], caps) {
                        return true;
                    }
                    caps.clear(*var);
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(s: &str) -> Vec<&[u8]> {
        s.split('.').map(str::as_bytes).collect()
    }

    #[test]
    fn service_pattern_splits_service_and_id() {
        let p = Pattern::parse("{service}-{id}.apps").unwrap();
        let c = p.matches(&labels("my-svc-123456.apps")).unwrap();
        assert_eq!((c.service.as_deref(), c.id), (Some("my-svc"), Some(123456)));
        assert!(p.matches(&labels("ws-0123.apps")).is_none(), "leading zero");
        assert!(p.matches(&labels("ws-12.other")).is_none());
        assert!(p.matches(&labels("ws-12")).is_none());
        assert!(p.matches_ancestor(&labels("apps")).is_some());
        assert!(p.matches_ancestor(&labels("other")).is_none());
        let caps = Captures { id: Some(7), service: Some("ws".into()), ..Default::default() };
        assert_eq!(p.instantiate(&caps).unwrap(), ["ws-7.apps", "apps"]);
        assert!(p.instantiate(&Captures { id: Some(7), ..Default::default() }).is_none());
    }

    #[test]
    fn host_patterns() {
        let p = Pattern::parse("{name}.{owner}").unwrap();
        let c = p.matches(&labels("blog.alice")).unwrap();
        assert_eq!((c.name.as_deref(), c.owner.as_deref()), (Some("blog"), Some("alice")));
        assert_eq!(p.matches_ancestor(&labels("alice")).unwrap().owner.as_deref(), Some("alice"));
        let id = Pattern::parse("{id}").unwrap();
        assert_eq!(id.matches(&labels("123456")).unwrap().id, Some(123456));
        assert!(id.matches(&labels("blog")).is_none());
    }

    #[test]
    fn wildcard_patterns_match_their_source_of_synthesis() {
        let p = Pattern::parse("*.{id}").unwrap();
        assert!(p.is_wildcard() && !Pattern::parse("{id}").unwrap().is_wildcard());
        assert_eq!(p.matches(&labels("*.42")).unwrap().id, Some(42));
        assert!(p.matches(&labels("www.42")).is_none(), "matched at *.42 only, by the resolver");
        assert_eq!(p.matches_ancestor(&labels("42")).unwrap().id, Some(42));
        assert!(Pattern::parse("{id}.*").is_err() && Pattern::parse("*").is_err());
        assert!(Pattern::parse("a*.{id}").is_err());
    }

    #[test]
    fn rejects_bad_patterns_with_reasons() {
        for bad in ["", "{id}.", "{foo}", "{service}{id}", "{id}.{id}", "{name}", "{id}.Apps", "{id"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
