//! Query strings of the compute API (`GET /servers`, `/os-services`,
//! `/limits`), decoded the way Nova reads them.

use super::RequestError;
use crate::Microversion;
use chrono::{DateTime, Utc};
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
    /// `ip6`: a pattern over IPv6 addresses (admins always; everyone from
    /// 2.5). No server here holds an IPv6 address, so it matches none.
    pub ip6: Option<String>,
    /// Whether `ip6` applies to non-admins too (2.5+).
    pub ip6_for_everyone: bool,
    /// A `status` value naming no state: below 2.38 Nova answers an
    /// empty list rather than a 400.
    pub unknown_status: bool,
    /// `tags` (2.26): every one of these.
    pub tags: Vec<String>,
    /// `tags-any` (2.26): at least one of these.
    pub tags_any: Vec<String>,
    /// `not-tags` (2.26): not all of these together.
    pub not_tags: Vec<String>,
    /// `not-tags-any` (2.26): none of these.
    pub not_tags_any: Vec<String>,
    /// `locked` (2.73): only locked (or only unlocked) servers.
    pub locked: Option<bool>,
    /// `changes-since`: servers changed at or after this time, deleted ones included.
    pub changes_since: Option<DateTime<Utc>>,
    /// `changes-before` (2.66): servers changed at or before this time, deleted ones included.
    pub changes_before: Option<DateTime<Utc>>,
    /// Column filters, each with whether non-admins may use it at this
    /// microversion (2.83 opens most, 2.90 `hostname`; admins may always).
    pub columns: Vec<(stratus_db::ServerColumn, String, bool)>,
    /// `config_drive`: no server has a config drive here (Nova shows `""`),
    /// so a pattern that does not match the empty text matches no server.
    /// Holds (matches no server, non-admins may use it (2.83)).
    pub config_drive: Option<(bool, bool)>,
}

/// The column filter a query key names, and the microversion from which
/// non-admins may use it.
fn column_filter(key: &str) -> Option<(stratus_db::ServerColumn, u32)> {
    use stratus_db::ServerColumn as C;
    Some(match key {
        "user_id" => (C::UserId, 83),
        "vm_state" => (C::VmState, 83),
        "task_state" => (C::TaskState, 83),
        "key_name" => (C::KeyName, 83),
        "availability_zone" => (C::AvailabilityZone, 83),
        "power_state" => (C::PowerState, 83),
        "progress" => (C::Progress, 83),
        "created_at" => (C::CreatedAt, 83),
        "launched_at" => (C::LaunchedAt, 83),
        "terminated_at" => (C::TerminatedAt, 83),
        "hostname" => (C::Hostname, 90),
        _ => return None,
    })
}

/// The query parameters Nova's server list schema names (2.75 refuses any
/// other; below, unknown ones are ignored). Those that need a later
/// microversion are added by [`known_list_param`].
const LIST_PARAMS: &[&str] = &[
    "user_id",
    "project_id",
    "tenant_id",
    "launch_index",
    "image_ref",
    "image",
    "kernel_id",
    "ramdisk_id",
    "hostname",
    "key_name",
    "power_state",
    "vm_state",
    "task_state",
    "host",
    "node",
    "flavor",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "availability_zone",
    "name",
    "display_name",
    "description",
    "display_description",
    "locked_by",
    "uuid",
    "root_device_name",
    "config_drive",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "progress",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "soft_deleted",
    "deleted",
    "status",
    "changes-since",
    "ip",
    "ip6",
    "created_at",
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
    "limit",
    "marker",
    "page_reverse",
];

/// Is `key` a server list parameter of Nova's schema at `mv`?
fn known_list_param(key: &str, mv: Microversion) -> bool {
    LIST_PARAMS.contains(&key)
        || (mv.at_least(26) && matches!(key, "tags" | "tags-any" | "not-tags" | "not-tags-any"))
        || (mv.at_least(66) && key == "changes-before")
        || (mv.at_least(73) && key == "locked")
}

/// An ISO 8601 time as Nova's `parse_isotime` reads it (no zone: UTC).
fn iso_time(key: &str, v: &str) -> Result<DateTime<Utc>, RequestError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    Err(RequestError::BadRequest(format!("Invalid filter field: {key}.")))
}

impl ServerListQuery {
    /// Parse a raw query at the base microversion.
    pub fn parse(raw: Option<&str>) -> Result<Self, RequestError> {
        Self::parse_at(raw, crate::MIN_COMPUTE)
    }

    /// Parse a raw query as Nova reads it at `mv`; unknown parameters are
    /// ignored, as Nova does.
    pub fn parse_at(raw: Option<&str>, mv: Microversion) -> Result<Self, RequestError> {
        let mut out = Self { ip6_for_everyone: mv.at_least(5), ..Self::default() };
        let tag_list = |v: &str| v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
        for (k, v) in parse_query(raw) {
            if mv.at_least(75) && !known_list_param(&k, mv) {
                return Err(RequestError::BadRequest(format!(
                    "Invalid input for query parameters. Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            if let Some((col, from)) = column_filter(&k) {
                let value = if matches!(
                    col,
                    stratus_db::ServerColumn::UserId
                        | stratus_db::ServerColumn::VmState
                        | stratus_db::ServerColumn::TaskState
                ) {
                    v
                } else {
                    name_pattern(&v)
                };
                out.columns.push((col, value, mv.at_least(from)));
                continue;
            }
            match k.as_str() {
                "config_drive" => {
                    let none = !regex::Regex::new(&name_pattern(&v)).is_ok_and(|r| r.is_match(""));
                    out.config_drive = Some((none, mv.at_least(83)))
                }
                "ip6" => out.ip6 = Some(v),
                "locked" if mv.at_least(73) => {
                    out.locked = Some(match v.to_ascii_lowercase().as_str() {
                        "1" | "t" | "true" | "on" | "y" | "yes" => true,
                        "0" | "f" | "false" | "off" | "n" | "no" => false,
                        _ => {
                            return Err(RequestError::BadRequest(format!(
                                "Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
                            )));
                        }
                    })
                }
                "changes-since" => out.changes_since = Some(iso_time(&k, &v)?),
                "changes-before" if mv.at_least(66) => out.changes_before = Some(iso_time(&k, &v)?),
                "tags" if mv.at_least(26) => out.tags = tag_list(&v),
                "tags-any" if mv.at_least(26) => out.tags_any = tag_list(&v),
                "not-tags" if mv.at_least(26) => out.not_tags = tag_list(&v),
                "not-tags-any" if mv.at_least(26) => out.not_tags_any = tag_list(&v),
                "all_tenants" => out.all_tenants = truthy(&v),
                "name" => out.name = Some(name_pattern(&v)),
                "flavor" => out.flavor = Some(super::ref_id(&v).to_string()),
                "image" => out.image = Some(super::ref_id(&v).to_string()),
                "status" => match vm_states_for_status(&v) {
                    Some(states) => out.vm_states.get_or_insert_with(Vec::new).extend(states),
                    None if mv.at_least(38) => {
                        return Err(RequestError::BadRequest(format!("Invalid status value: {v}")));
                    }
                    None => out.unknown_status = true,
                },
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
        if let (Some(since), Some(before)) = (out.changes_since, out.changes_before)
            && before < since
        {
            return Err(RequestError::BadRequest(
                "The value of changes-since must be less than or equal to changes-before.".into(),
            ));
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
