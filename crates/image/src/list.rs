//! The image list rules: which visible rows a parsed
//! [`ListImagesQuery`] selects (exact or `in:` filters, tags, sizes, custom
//! properties), in which order, and which page of them.

use crate::ImageError;
use crate::rules::{hidden_of, props_of, tags_of, visible_to};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;
use stratus_api::image::{FilterField, ListImagesQuery, SortKey, VisibilityFilter};
use stratus_auth::AuthContext;
use stratus_db::ImageRow;
use stratus_types::ImageId;
use stratus_types::image::MemberStatus;
use stratus_types::image::Visibility;

/// One page of the image list.
#[derive(Clone, Debug)]
pub struct ImagePage {
    /// The images on this page, in order.
    pub images: Vec<ImageRow>,
    /// The marker of the next page, when there is one.
    pub next_marker: Option<String>,
}

/// Does the query select this (visible) row for this caller?
fn matches(q: &ListImagesQuery, ctx: &AuthContext, r: &ImageRow) -> bool {
    let shown = match q.visibility {
        VisibilityFilter::Default => r.visibility != Visibility::Community || r.owner == ctx.project_id,
        VisibilityFilter::All => true,
        VisibilityFilter::Only(v) => r.visibility == v,
    };
    if !shown {
        return false;
    }
    let props = props_of(r);
    let id = r.id.to_string();
    let field = |f: FilterField| -> Option<&str> {
        match f {
            FilterField::Name => r.name.as_deref(),
            FilterField::Status => Some(r.status.as_str()),
            FilterField::Owner => Some(r.owner.as_str()),
            FilterField::DiskFormat => r.disk_format.map(|d| d.as_str()),
            FilterField::ContainerFormat => r.container_format.map(|c| c.as_str()),
            FilterField::Id => Some(id.as_str()),
        }
    };
    q.fields.iter().all(|(f, filter)| matches_filter(filter, field(*f)))
        && hidden_of(&props) == q.hidden
        && q.protected.is_none_or(|p| r.protected == p)
        && q.size_min.is_none_or(|m| r.size.is_some_and(|s| s >= m))
        && q.size_max.is_none_or(|m| r.size.is_some_and(|s| s <= m))
        && {
            let have = tags_of(&props);
            q.tags.iter().all(|t| have.iter().any(|h| h == t))
        }
        && q.props.iter().all(|(k, v)| props.get(k).and_then(Value::as_str) == Some(v.as_str()))
}

/// Is the row in the caller's list at all? Visible without a membership,
/// or a shared image whose membership answer is the one `member_status`
/// asks for (Glance's default: only accepted ones).
/// `visibility=shared` asks for the images shared *with* the caller only
/// (its own shared images are not in that list).
fn listed(q: &ListImagesQuery, ctx: &AuthContext, r: &ImageRow, members: &HashMap<ImageId, MemberStatus>) -> bool {
    let as_member = r.visibility == Visibility::Shared
        && members.get(&r.id).is_some_and(|s| q.member_status.is_none_or(|want| *s == want));
    if q.visibility == VisibilityFilter::Only(Visibility::Shared) && !ctx.is_admin() {
        return as_member && r.owner != ctx.project_id;
    }
    visible_to(ctx, r) || as_member
}

/// Filter, sort and page `rows` (already scoped to the caller's project);
/// `members` holds the caller's memberships of shared images.
pub(crate) fn select(
    q: &ListImagesQuery,
    ctx: &AuthContext,
    rows: Vec<ImageRow>,
    members: &HashMap<ImageId, MemberStatus>,
) -> Result<ImagePage, ImageError> {
    let mut rows: Vec<ImageRow> =
        rows.into_iter().filter(|r| listed(q, ctx, r, members) && matches(q, ctx, r)).collect();
    rows.sort_by(|a, b| {
        q.order.iter().fold(Ordering::Equal, |acc, (key, desc)| {
            acc.then_with(|| {
                let o = compare_by(*key, a, b);
                if *desc { o.reverse() } else { o }
            })
        })
    });
    let start = match &q.marker {
        Some(m) => match rows.iter().position(|r| r.id.to_string() == *m) {
            Some(i) => i + 1,
            None => {
                return Err(ImageError::BadRequest(format!("Invalid marker. Image {m} could not be found.")));
            }
        },
        None => 0,
    };
    let total = rows.len();
    let images: Vec<ImageRow> = rows.into_iter().skip(start).take(q.limit).collect();
    let more = start + images.len() < total;
    let next_marker = images.last().filter(|_| more).map(|r| r.id.to_string());
    Ok(ImagePage { images, next_marker })
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
fn compare_by(key: SortKey, a: &ImageRow, b: &ImageRow) -> Ordering {
    match key {
        SortKey::Name => a.name.cmp(&b.name),
        SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
        SortKey::Visibility => a.visibility.as_str().cmp(b.visibility.as_str()),
        SortKey::Owner => a.owner.cmp(&b.owner),
        SortKey::DiskFormat => a.disk_format.map(|d| d.as_str()).cmp(&b.disk_format.map(|d| d.as_str())),
        SortKey::ContainerFormat => a.container_format.map(|c| c.as_str()).cmp(&b.container_format.map(|c| c.as_str())),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::MinDisk => a.min_disk.cmp(&b.min_disk),
        SortKey::MinRam => a.min_ram.cmp(&b.min_ram),
        SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
        SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        SortKey::Id => a.id.cmp(&b.id),
    }
}
