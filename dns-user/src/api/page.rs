//! Lists come in pages: `?limit=N` (1 to 1,000, default 100) items after the cursor
//! `?after=CURSOR`, and the cursor of the next page (`next`, null on the last).

use serde::{Deserialize, Serialize};

use super::problem::Problem;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(Problem::bad_request(format!("limit {n}: use 1 to {MAX_LIMIT}"))),
        }
    }

    /// The cursor as a number (lists ordered by id).
    pub fn after_id(&self) -> Result<i64, Problem> {
        match &self.after {
            None => Ok(-1),
            Some(a) => {
                a.parse().map_err(|_| Problem::bad_request(format!("after {a:?}: not a cursor of this list")))
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page (`?after=`), null on the last.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page of a list held in memory: sorted by `key`, the items after the cursor.
    pub fn of(mut items: Vec<T>, query: &PageQuery, key: impl Fn(&T) -> String) -> Result<Self, Problem> {
        let limit = query.limit()?;
        items.sort_by_key(|item| key(item));
        let start = match &query.after {
            Some(after) => items.partition_point(|item| key(item) <= *after),
            None => 0,
        };
        Ok(Self::fetched(items.into_iter().skip(start).take(limit + 1).collect(), limit, key))
    }

    /// A page from the store, which was asked for `limit + 1` items in `key` order: the
    /// extra one says that there is a next page.
    pub fn fetched(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(&key)
        } else {
            None
        };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let all: Vec<u32> = (0..25).rev().collect();
        let key = |n: &u32| format!("{n:010}");
        let mut query = PageQuery { limit: Some(10), after: None };
        let mut seen = Vec::new();
        loop {
            let page = Page::of(all.clone(), &query, key).unwrap();
            seen.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        assert!(PageQuery { limit: Some(0), after: None }.limit().is_err());
        assert!(PageQuery { limit: Some(1001), after: None }.limit().is_err());
    }
}
