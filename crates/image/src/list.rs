//! The image list: Glance's filters (exact or `in:` lists, tags, sizes,
//! custom properties), multi-key sort and marker paging, parsed once from
//! the query string into a [`ListQuery`] and applied to visible rows.

use crate::ImageError;
use crate::rules::{hidden_of, props_of, tags_of, visible_to};
use serde_json::Value;
use std::cmp::Ordering;
use stratus_auth::AuthContext;
use stratus_db::ImageRow;
use stratus_types::image::Visibility;

/// Default page size of the image list (Glance's `limit_param_default`).
const DEFAULT_LIMIT: usize = 25;
/// Largest page size (Glance's `api_limit_max`).
const MAX_LIMIT: usize = 1000;

/// Query parameters that are not property filters and are handled (or
/// deliberately ignored) by name.
const LIST_PARAMS: &[&str] = &[
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "sort",
    "member_status",
    "created_at",
    "updated_at",
    "name",
    "visibility",
    "status",
    "owner",
    "disk_format",
    "container_format",
    "id",
    "tag",
    "protected",
    "os_hidden",
    "size_min",
    "size_max",
];

/// Attributes filtered by exact value or `in:a,b`.
const FIELD_FILTERS: &[&str] = &["name", "status", "owner", "disk_format", "container_format", "id"];

/// Keys the list may be sorted by.
const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "visibility",
    "owner",
    "disk_format",
    "container_format",
    "size",
    "min_disk",
    "min_ram",
    "created_at",
    "updated_at",
    "id",
];

/// Which visibilities a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// Glance's default: other projects' community images are left out.
    Default,
    /// `visibility=all`.
    All,
    /// One visibility.
    Only(Visibility),
}

/// A parsed image-list query.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// Page size.
    pub limit: usize,
    /// Start after this image id.
    pub marker: Option<String>,
    /// `(key, descending)` pairs, always ending with `id`.
    pub order: Vec<(String, bool)>,
    /// Visibility filter.
    pub visibility: VisibilityFilter,
    /// Show hidden (`os_hidden`) images instead of visible ones.
    pub hidden: bool,
    /// Only (un)protected images.
    pub protected: Option<bool>,
    /// Smallest size.
    pub size_min: Option<i64>,
    /// Largest size.
    pub size_max: Option<i64>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// `(attribute, filter)` on core attributes.
    pub fields: Vec<(String, String)>,
    /// `(property, value)` on custom properties.
    pub props: Vec<(String, String)>,
}

fn parse_size(attr: &str, v: &str) -> Result<i64, ImageError> {
    v.parse().map_err(|_| ImageError::BadRequest(format!("Invalid value '{v}' for {attr}: an integer is required.")))
}

fn parse_flag(attr: &str, v: &str) -> Result<bool, ImageError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ImageError::BadRequest(format!("Invalid value '{v}' for {attr}: a boolean is required."))),
    }
}

impl ListQuery {
    /// Parse the query string pairs (repeated keys allowed).
    pub fn parse(params: &[(String, String)]) -> Result<Self, ImageError> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let limit = match get("limit") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| {
                    ImageError::BadRequest(format!("Invalid limit '{l}': a non-negative integer is required."))
                })?
                .min(MAX_LIMIT),
            None => DEFAULT_LIMIT,
        };
        let order = sort_order(params)?;
        let visibility = match get("visibility") {
            None => VisibilityFilter::Default,
            Some("all") => VisibilityFilter::All,
            Some(v) => VisibilityFilter::Only(
                v.parse().map_err(|_| ImageError::BadRequest(format!("Invalid visibility value: {v}")))?,
            ),
        };
        let hidden = get("os_hidden").map(|v| parse_flag("os_hidden", v)).transpose()?.unwrap_or(false);
        let protected = get("protected").map(|v| parse_flag("protected", v)).transpose()?;
        let size_min = get("size_min").map(|v| parse_size("size_min", v)).transpose()?;
        let size_max = get("size_max").map(|v| parse_size("size_max", v)).transpose()?;
        let tags = params.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.clone()).collect();
        let fields = FIELD_FILTERS.iter().filter_map(|f| get(f).map(|v| ((*f).to_string(), v.to_string()))).collect();
        let props = params.iter().filter(|(k, _)| !LIST_PARAMS.contains(&k.as_str())).cloned().collect();
        Ok(Self {
            limit,
            marker: get("marker").map(str::to_string),
            order,
            visibility,
            hidden,
            protected,
            size_min,
            size_max,
            tags,
            fields,
            props,
        })
    }

    /// Does the caller get this (visible) row in the list?
    fn matches(&self, ctx: &AuthContext, r: &ImageRow) -> bool {
        let shown = match self.visibility {
            VisibilityFilter::Default => r.visibility != Visibility::Community || r.owner == ctx.project_id,
            VisibilityFilter::All => true,
            VisibilityFilter::Only(v) => r.visibility == v,
        };
        if !shown {
            return false;
        }
        let props = props_of(r);
        let field = |name: &str| -> Option<&str> {
            match name {
                "name" => r.name.as_deref(),
                "status" => Some(r.status.as_str()),
                "owner" => Some(r.owner.as_str()),
                "disk_format" => r.disk_format.map(|d| d.as_str()),
                "container_format" => r.container_format.map(|c| c.as_str()),
                _ => Some(r.id.as_str()),
            }
        };
        self.fields.iter().all(|(name, f)| matches_filter(f, field(name)))
            && hidden_of(&props) == self.hidden
            && self.protected.is_none_or(|p| r.protected == p)
            && self.size_min.is_none_or(|m| r.size.is_some_and(|s| s >= m))
            && self.size_max.is_none_or(|m| r.size.is_some_and(|s| s <= m))
            && {
                let have = tags_of(&props);
                self.tags.iter().all(|t| have.iter().any(|h| h == t))
            }
            && self.props.iter().all(|(k, v)| props.get(k).and_then(Value::as_str) == Some(v.as_str()))
    }

    /// Filter, sort and page `rows` (already scoped to the caller's project).
    pub(crate) fn apply(&self, ctx: &AuthContext, rows: Vec<ImageRow>) -> Result<ImagePage, ImageError> {
        let mut rows: Vec<ImageRow> =
            rows.into_iter().filter(|r| visible_to(ctx, r)).filter(|r| self.matches(ctx, r)).collect();
        rows.sort_by(|a, b| {
            self.order.iter().fold(Ordering::Equal, |acc, (key, desc)| {
                acc.then_with(|| {
                    let o = compare_by(key, a, b);
                    if *desc { o.reverse() } else { o }
                })
            })
        });
        let start = match &self.marker {
            Some(m) => match rows.iter().position(|r| r.id == *m) {
                Some(i) => i + 1,
                None => {
                    return Err(ImageError::BadRequest(format!("Invalid marker. Image {m} could not be found.")));
                }
            },
            None => 0,
        };
        let total = rows.len();
        let images: Vec<ImageRow> = rows.into_iter().skip(start).take(self.limit).collect();
        let more = start + images.len() < total;
        let next_marker = images.last().filter(|_| more).map(|r| r.id.clone());
        Ok(ImagePage { images, next_marker })
    }
}

/// One page of the image list.
#[derive(Clone, Debug)]
pub struct ImagePage {
    /// The images on this page, in order.
    pub images: Vec<ImageRow>,
    /// The marker of the next page, when there is one.
    pub next_marker: Option<String>,
}

/// A filter value, either exact or `in:a,b,c`.
fn matches_filter(filter: &str, value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    match filter.strip_prefix("in:") {
        Some(list) => list.split(',').any(|f| f.trim().trim_matches('"') == value),
        None => filter == value,
    }
}

/// Compare two images by one sort key (enum columns by their strings, as stored).
fn compare_by(key: &str, a: &ImageRow, b: &ImageRow) -> Ordering {
    match key {
        "name" => a.name.cmp(&b.name),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "visibility" => a.visibility.as_str().cmp(b.visibility.as_str()),
        "owner" => a.owner.cmp(&b.owner),
        "disk_format" => a.disk_format.map(|d| d.as_str()).cmp(&b.disk_format.map(|d| d.as_str())),
        "container_format" => a.container_format.map(|c| c.as_str()).cmp(&b.container_format.map(|c| c.as_str())),
        "size" => a.size.cmp(&b.size),
        "min_disk" => a.min_disk.cmp(&b.min_disk),
        "min_ram" => a.min_ram.cmp(&b.min_ram),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "id" => a.id.cmp(&b.id),
        _ => a.created_at.cmp(&b.created_at),
    }
}

/// The `(key, descending)` sort order from `sort`, or `sort_key`/`sort_dir`.
fn sort_order(params: &[(String, String)]) -> Result<Vec<(String, bool)>, ImageError> {
    let bad_key = |k: &str| ImageError::BadRequest(format!("Unsupported sort key '{k}'."));
    let bad_dir = |d: &str| ImageError::BadRequest(format!("Unsupported sort direction '{d}'; use asc or desc."));
    let dir_desc = |d: &str| match d {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(bad_dir(other)),
    };
    let mut order = Vec::new();
    let sort: Vec<&str> = params.iter().filter(|(k, _)| k == "sort").map(|(_, v)| v.as_str()).collect();
    let keys: Vec<&str> = params.iter().filter(|(k, _)| k == "sort_key").map(|(_, v)| v.as_str()).collect();
    let dirs: Vec<&str> = params.iter().filter(|(k, _)| k == "sort_dir").map(|(_, v)| v.as_str()).collect();
    if !sort.is_empty() {
        if !keys.is_empty() || !dirs.is_empty() {
            return Err(ImageError::BadRequest(
                "The 'sort' parameter cannot be combined with sort_key or sort_dir.".into(),
            ));
        }
        for item in sort.iter().flat_map(|s| s.split(',')) {
            let mut parts = item.trim().splitn(2, ':');
            let key = parts.next().unwrap_or("").trim();
            let desc = match parts.next() {
                Some(d) => dir_desc(d.trim())?,
                None => true,
            };
            if !SORT_KEYS.contains(&key) {
                return Err(bad_key(key));
            }
            order.push((key.to_string(), desc));
        }
    } else {
        if dirs.len() > keys.len().max(1) {
            return Err(ImageError::BadRequest("More sort directions than sort keys were given.".into()));
        }
        let default_desc = match dirs.first() {
            Some(d) if dirs.len() == 1 => dir_desc(d)?,
            _ => true,
        };
        for (i, key) in keys.iter().enumerate() {
            if !SORT_KEYS.contains(key) {
                return Err(bad_key(key));
            }
            let desc = if dirs.len() > 1 {
                match dirs.get(i) {
                    Some(d) => dir_desc(d)?,
                    None => default_desc,
                }
            } else {
                default_desc
            };
            order.push((key.to_string(), desc));
        }
        if order.is_empty() {
            order.push(("created_at".into(), default_desc));
        }
    }
    if !order.iter().any(|(k, _)| k == "id") {
        let desc = order.last().map(|(_, d)| *d).unwrap_or(true);
        order.push(("id".into(), desc));
    }
    Ok(order)
}
