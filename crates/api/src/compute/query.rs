//! Query strings of the compute API (`GET /servers`, `/os-services`,
//! `/limits`), decoded the way Nova reads them.

use super::RequestError;
use stratus_types::{VmState, vm_states_for_status};

/// Decode a raw query string into ordered key/value pairs.
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    })
    .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Nova's reading of a boolean query or body string.
pub fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "" | "1" | "true" | "t" | "yes" | "y" | "on")
}

/// The first value of `key` in a decoded query.
pub fn query_value<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `GET /servers` and `/servers/detail` filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerListQuery {
    /// `all_tenants`.
    pub all_tenants: bool,
    /// `name`: a regular expression (text that is not one is matched literally).
    pub name: Option<String>,
    /// `flavor`: flavor id (or URL).
    pub flavor: Option<String>,
    /// `image`: image id (or URL).
    pub image: Option<String>,
    /// vm_states allowed by the `status` values.
    pub vm_states: Option<Vec<VmState>>,
    /// `host`.
    pub host: Option<String>,
    /// `project_id` or `tenant_id`.
    pub project_id: Option<String>,
    /// `limit`, capped at 1000.
    pub limit: Option<i64>,
    /// `marker`.
    pub marker: Option<String>,
}

impl ServerListQuery {
    /// Parse a raw query; unknown parameters are ignored, as Nova does.
    pub fn parse(raw: Option<&str>) -> Result<Self, RequestError> {
        let mut out = Self::default();
        for (k, v) in parse_query(raw) {
            match k.as_str() {
                "all_tenants" => out.all_tenants = truthy(&v),
                "name" => out.name = Some(name_pattern(&v)),
                "flavor" => out.flavor = Some(super::ref_id(&v).to_string()),
                "image" => out.image = Some(super::ref_id(&v).to_string()),
                "status" => {
                    let states = vm_states_for_status(&v)
                        .ok_or_else(|| RequestError::BadRequest(format!("Invalid status value: {v}")))?;
                    out.vm_states.get_or_insert_with(Vec::new).extend(states);
                }
                "host" => out.host = Some(v),
                "project_id" | "tenant_id" => out.project_id = Some(v),
                "limit" => {
                    let l: i64 = v
                        .parse()
                        .map_err(|_| RequestError::BadRequest(format!("limit param must be an integer: {v}")))?;
                    if l < 0 {
                        return Err(RequestError::BadRequest("limit param must be positive".into()));
                    }
                    out.limit = Some(l.min(1000));
                }
                "marker" => out.marker = Some(v),
                _ => {} // Nova ignores unknown query parameters on server lists.
            }
        }
        Ok(out)
    }
}

/// Nova filters server names by regular expression; a pattern that does not
/// compile is matched as plain text instead of failing the list.
fn name_pattern(v: &str) -> String {
    match regex::Regex::new(v) {
        Ok(_) => v.to_string(),
        Err(_) => regex::escape(v),
    }
}
