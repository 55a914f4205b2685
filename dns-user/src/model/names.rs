//! The shapes names of our own objects must have.

use super::Invalid;
use crate::protocol::name::parse_user_name;

/// An absolute, lower-cased domain name from user input; errors name `what` it is.
pub fn absolute(input: &str, what: &str) -> Result<String, Invalid> {
    parse_user_name(input).map(|n| n.to_ascii()).map_err(|e| Invalid(format!("{what}: {e}")))
}

/// Cluster and territory names: letters, digits, '-' and '_'.
pub fn identifier(what: &str, name: &str) -> Result<(), Invalid> {
    if name.is_empty()
        || name.len() > 63
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Invalid(format!("{what} {name:?}: 1 to 63 letters, digits, '-' and '_'")));
    }
    Ok(())
}

/// Instance names, owners and service names: one DNS label of lower-case letters,
/// digits, '-' and '_' (what the name rules' placeholders match).
pub fn label(what: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty()
        || value.len() > 63
        || !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(Invalid(format!(
            "{what} {value:?}: a DNS label of lower-case letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_labels() {
        assert!(identifier("cluster", "mt-1_B").is_ok());
        assert!(identifier("cluster", "bad name").unwrap_err().0.contains("\"bad name\""));
        assert!(label("instance name", "blog-2").is_ok());
        assert!(label("instance name", "App!").unwrap_err().0.contains("instance name \"App!\""));
        assert!(label("owner", &"a".repeat(64)).is_err());
    }
}
