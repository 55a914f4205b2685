//! The small SQL surface both backends implement: typed parameter values, rows, and
//! statements written once with `$1`, `$2`... placeholders (PostgreSQL's syntax; the
//! SQLite backend rewrites them to SQLite's numbered `?1`, `?2`, same meaning).

use super::StoreError;

/// A parameter or column value. Integers are 64-bit everywhere (BIGINT in PostgreSQL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(Some(v.into()))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<Option<u32>> for Value {
    fn from(v: Option<u32>) -> Self {
        Value::Int(v.map(i64::from))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

/// Builds a parameter list: `params![a, b, c]`.
macro_rules! params {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::sql::Value::from($v)),*] };
}
pub(crate) use params;

/// One result row.
#[derive(Clone, Debug, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value, StoreError> {
        self.0.get(i).ok_or_else(|| StoreError::Invalid(format!("result has no column {i}")))
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| StoreError::Invalid(format!("column {i} is NULL")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            Value::Text(None) => Ok(None),
            Value::Text(Some(t)) => {
                t.parse().map(Some).map_err(|_| StoreError::Invalid(format!("column {i} is not a number")))
            }
        }
    }

    /// An integer column that must fit in u32 (TTLs, SOA fields).
    pub fn u32(&self, i: usize) -> Result<u32, StoreError> {
        u32::try_from(self.int(i)?).map_err(|_| StoreError::Invalid(format!("column {i} is out of range")))
    }

    pub fn opt_u32(&self, i: usize) -> Result<Option<u32>, StoreError> {
        self.opt_int(i)?
            .map(|v| u32::try_from(v).map_err(|_| StoreError::Invalid(format!("column {i} is out of range"))))
            .transpose()
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or_else(|| StoreError::Invalid(format!("column {i} is NULL")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            Value::Int(v) => Ok(v.map(|n| n.to_string())),
        }
    }
}

/// A statement and its parameters, for transactions.
pub type Statement = (String, Vec<Value>);

/// `$1`, `$2`... to SQLite's `?1`, `?2`... (our statements hold no `$` otherwise).
pub fn to_sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_for_sqlite() {
        assert_eq!(to_sqlite_placeholders("SELECT $2, $1 WHERE x = $10"), "SELECT ?2, ?1 WHERE x = ?10");
        assert_eq!(to_sqlite_placeholders("SELECT '$'"), "SELECT '$'");
    }

    #[test]
    fn rows_convert_columns() {
        let r = Row(vec![Value::Int(Some(7)), Value::Text(Some("x".into())), Value::Int(None)]);
        assert_eq!((r.int(0).unwrap(), r.text(1).unwrap(), r.opt_int(2).unwrap()), (7, "x".into(), None));
        assert!(r.int(2).is_err());
        assert_eq!(r.opt_text(0).unwrap().as_deref(), Some("7"));
    }
}
