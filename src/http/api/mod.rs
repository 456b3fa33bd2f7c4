//! The authenticated JSON API, one module per resource.

pub mod customers;
pub mod events;
pub mod flags;
pub mod invoices;
pub mod payments;
pub mod subscriptions;

use serde::Serialize;

use super::error::ApiError;

/// `{"data": [...], "has_more": bool}`.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> From<(Vec<T>, bool)> for List<T> {
    fn from((data, has_more): (Vec<T>, bool)) -> Self {
        List { data, has_more }
    }
}

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// The `limit` of a list: 20 when absent, at most 100. (Query structs name `limit` and
/// `starting_after` themselves: `serde(flatten)` breaks numbers in query strings.)
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}
