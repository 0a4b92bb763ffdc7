//! Cinder's sorting and paging (`sort`/`sort_key`/`sort_dir`, `marker`,
//! `limit`, a `next` link on a full page) for the Block Storage lists that
//! are sorted in memory: messages (3.5) and transfers (3.59).

use crate::error::ApiError;
use serde_json::Value;
use std::collections::HashMap;
use stratus_api::volume::SortDir;

/// Cinder's `osapi_max_limit`: no page is larger, asked for or not.
const MAX_PAGE: usize = 1000;

/// Sort `rows` as the query asks (`sort=k1:dir,k2` or the older
/// `sort_key`/`sort_dir`, not both; a key without a direction is
/// descending), else `created_at` descending; `id` breaks ties. `key`
/// gives a row's comparable value for a sort key, `None` for a key the
/// resource has not (400, as Cinder's invalid sort key).
pub(super) fn sort<T>(
    rows: &mut [T],
    q: &HashMap<String, String>,
    key: impl Fn(&T, &str) -> Option<String>,
) -> Result<(), ApiError> {
    let mut keys: Vec<(String, SortDir)> = Vec::new();
    let dir = |d: &str| match d.to_ascii_lowercase().as_str() {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        other => Err(ApiError::BadRequest(format!(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc': {other}"
        ))),
    };
    match (q.get("sort"), q.get("sort_key").or(q.get("sort_dir"))) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "Invalid input received: The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.".into(),
            ));
        }
        (Some(s), None) => {
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
                keys.push((k.trim().to_string(), dir(d.trim())?));
            }
        }
        (None, _) => {
            let d = dir(q.get("sort_dir").map_or("desc", String::as_str))?;
            keys.push((q.get("sort_key").cloned().unwrap_or_else(|| "created_at".into()), d));
        }
    }
    if !keys.iter().any(|(k, _)| k == "id") {
        let last = keys.last().map_or(SortDir::Desc, |(_, d)| *d);
        keys.push(("id".into(), last));
    }
    if let Some(first) = rows.first() {
        for (k, _) in &keys {
            if key(first, k).is_none() {
                return Err(ApiError::BadRequest(format!("Invalid input received: Invalid sort key {k}")));
            }
        }
    }
    rows.sort_by(|a, b| {
        for (k, d) in &keys {
            let o = key(a, k).cmp(&key(b, k));
            let o = if *d == SortDir::Desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(())
}

/// Where a full page continues: the page size and the last id.
pub(super) type Next = (usize, String);

/// The page after `marker` (an id; unknown is 400) of at most `limit`
/// rows, and the id to continue from when the page is full (Cinder links a
/// full page onwards).
pub(super) fn page<T>(
    mut rows: Vec<T>,
    q: &HashMap<String, String>,
    id: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<Next>), ApiError> {
    if let Some(marker) = q.get("marker").filter(|m| !m.is_empty()) {
        let Some(i) = rows.iter().position(|r| id(r) == *marker) else {
            return Err(ApiError::BadRequest(format!("Marker {marker} could not be found.")));
        };
        rows.drain(..=i);
    }
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("Invalid input received: limit {l} must be an integer.")))?
            .min(MAX_PAGE),
        None => MAX_PAGE,
    };
    rows.truncate(limit);
    let next = (rows.len() == limit).then(|| rows.last().map(|r| (limit, id(r)))).flatten();
    Ok((rows, next))
}

/// The `<collection>_links` value: `next` to `path` with the caller's query.
pub(super) fn next_link(
    public_url: &str,
    project: &str,
    path: &str,
    q: &HashMap<String, String>,
    limit: usize,
    marker: &str,
) -> Value {
    let mut query: Vec<(String, String)> = q.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    query.sort();
    stratus_api::volume::collection_next_link(public_url, project, path, &query, limit, marker)
}
