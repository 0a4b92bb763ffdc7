//! `limit` / `marker` paging of the compute lists Nova pages from a
//! microversion on (hypervisors 2.33, key pairs 2.35, tenant usage 2.40,
//! instance actions 2.58), and the `*_links` a full page carries.

use super::RequestError;
use super::query::query_value;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Nova's `[api] max_limit`: the largest page, and the page size when the
/// client gives none.
pub const MAX_PAGE: usize = 1000;

/// The paging parameters of a list request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// `limit` (capped at [`MAX_PAGE`]); `None`: not given.
    pub limit: Option<usize>,
    /// `marker`: the key of the last item of the previous page.
    pub marker: Option<String>,
}

impl Page {
    /// Read `limit` and `marker` from a decoded query, as Nova's
    /// `get_limit_and_marker`: `limit` a non-negative integer.
    pub fn parse(q: &[(String, String)]) -> Result<Self, RequestError> {
        let limit = match query_value(q, "limit") {
            None => None,
            Some(v) => {
                let n: i64 =
                    v.parse().map_err(|_| RequestError::BadRequest(format!("limit param must be an integer: {v}")))?;
                let n =
                    usize::try_from(n).map_err(|_| RequestError::BadRequest("limit param must be positive".into()))?;
                Some(n.min(MAX_PAGE))
            }
        };
        Ok(Self { limit, marker: query_value(q, "marker").map(str::to_string) })
    }

    /// The page of `items` (already in the list's order): those after the
    /// one whose `key` is the marker (none has it: 400 as Nova's
    /// `marker [...] not found`), at most `limit` (or [`MAX_PAGE`]).
    pub fn apply<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Result<Vec<T>, RequestError> {
        let start = match &self.marker {
            None => 0,
            Some(m) => {
                let at = items
                    .iter()
                    .position(|i| key(i) == *m)
                    .ok_or_else(|| RequestError::BadRequest(format!("marker [{m}] not found")))?;
                at + 1
            }
        };
        Ok(items.into_iter().skip(start).take(self.size()).collect())
    }

    /// The page size in force: the `limit` given, else [`MAX_PAGE`].
    pub fn size(&self) -> usize {
        self.limit.unwrap_or(MAX_PAGE)
    }

    /// A page of `n` items is full: Nova then gives a `next` link (a
    /// client reads pages until one comes without it).
    pub fn is_full(&self, n: usize) -> bool {
        n > 0 && n == self.size()
    }
}

/// The `next` link of a full page: `{public}/compute/v2.1/{path}` with the
/// request's query parameters (sorted) and `marker` set to `last`.
pub fn next_link(public: &str, path: &str, params: &[(String, String)], last: &str) -> Value {
    let mut q: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    q.insert("marker", last);
    let query: Vec<String> =
        q.iter().map(|(k, v)| format!("{}={}", super::views::form_encode(k), super::views::form_encode(v))).collect();
    json!([{"rel": "next", "href": format!("{public}/compute/v2.1/{path}?{}", query.join("&"))}])
}

/// Refuse query parameters outside `allowed` (Nova's query schemas with
/// `additionalProperties: false`: most lists from 2.75, hypervisors from
/// 2.53, instance actions from 2.58).
pub fn only_params(q: &[(String, String)], allowed: &[&str]) -> Result<(), RequestError> {
    match q.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(RequestError::BadRequest(format!(
            "Invalid input for query parameters {k}. Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// [`only_params`] from microversion 2.`from` on (no check below it).
pub fn only_params_from(
    raw: Option<&str>,
    mv: crate::Microversion,
    from: u32,
    allowed: &[&str],
) -> Result<(), RequestError> {
    if mv.at_least(from) { only_params(&super::query::parse_query(raw), allowed) } else { Ok(()) }
}

/// `changes-since` / `changes-before` of instance actions and migrations
/// (2.58, 2.66): an ISO 8601 time, else 400 with Nova's message.
pub fn parse_time(q: &[(String, String)], key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, RequestError> {
    let Some(v) = query_value(q, key) else { return Ok(None) };
    let bad = || {
        RequestError::BadRequest(format!(
            "Invalid input for query parameters {key}. Value: {v}. '{v}' is not a 'date-time'"
        ))
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(bad())
}

/// A `changes-since` / `changes-before` pair (either may be absent).
pub type ChangesWindow = (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>);

/// The `changes-since` / `changes-before` window of a list: each read when
/// its flag says the microversion has it, and 400 with Nova's message when
/// the window is empty (before earlier than since).
pub fn changes_window(
    q: &[(String, String)],
    with_since: bool,
    with_before: bool,
) -> Result<ChangesWindow, RequestError> {
    let since = if with_since { parse_time(q, "changes-since")? } else { None };
    let before = if with_before { parse_time(q, "changes-before")? } else { None };
    if let (Some(s), Some(b)) = (since, before)
        && b < s
    {
        return Err(RequestError::BadRequest(
            "The value of changes-since must be less than or equal to changes-before.".into(),
        ));
    }
    Ok((since, before))
}

/// `GET /servers/{id}/os-instance-actions` parameters: from 2.58 `limit`,
/// `marker` (a request id) and `changes-since`, from 2.66 `changes-before`,
/// and nothing else (Nova's query schema); before 2.58 none is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangesQuery {
    /// Paging.
    pub page: Page,
    /// Only rows updated at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only rows updated at or before this time.
    pub before: Option<chrono::DateTime<chrono::Utc>>,
}

impl ChangesQuery {
    /// Parse the instance-action list parameters at `mv`.
    pub fn parse_actions(raw: Option<&str>, mv: crate::Microversion) -> Result<Self, RequestError> {
        if !mv.at_least(58) {
            return Ok(Self::default());
        }
        let q = super::query::parse_query(raw);
        let mut allowed = vec!["limit", "marker", "changes-since"];
        if mv.at_least(66) {
            allowed.push("changes-before");
        }
        only_params(&q, &allowed)?;
        let (since, before) = changes_window(&q, true, mv.at_least(66))?;
        Ok(Self { page: Page::parse(&q)?, since, before })
    }

    /// Is a row last updated at `t` inside the window?
    pub fn admits(&self, t: chrono::DateTime<chrono::Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.before.is_none_or(|b| t <= b)
    }
}
