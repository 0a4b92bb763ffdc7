//! Image rows (Image API v2): what a server is built from.

use crate::sql::{list, lit};
use crate::{Cas, Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};
use std::str::FromStr;
use stratus_types::ImageId;
use stratus_types::image::{ContainerFormat, DiskFormat, ImageStatus, Visibility};

/// An image record; its bytes live in the data dir, named by id.
#[derive(Clone, Debug)]
pub struct ImageRow {
    /// Image id.
    pub id: ImageId,
    /// Display name.
    pub name: Option<String>,
    /// Owning project.
    pub owner: String,
    /// Where the image is in its life.
    pub status: ImageStatus,
    /// Who may see it.
    pub visibility: Visibility,
    /// Unset until the client names it (needed before data is uploaded).
    pub disk_format: Option<DiskFormat>,
    /// Unset until the client names it (needed before data is uploaded).
    pub container_format: Option<ContainerFormat>,
    /// Bytes, once uploaded.
    pub size: Option<i64>,
    /// MD5 hex, once uploaded (Glance's legacy checksum).
    pub checksum: Option<String>,
    /// SHA-512 hex (`os_hash_value`).
    pub os_hash_value: Option<String>,
    /// Minimum disk GB.
    pub min_disk: i64,
    /// Minimum RAM MB.
    pub min_ram: i64,
    /// Protected images cannot be deleted.
    pub protected: bool,
    /// Extra properties, JSON object.
    pub properties: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
}

/// A column decode error naming the column.
fn decode_err(col: &'static str) -> impl Fn(DbError) -> sqlx::Error {
    move |e| sqlx::Error::ColumnDecode { index: col.into(), source: Box::new(e) }
}

// By hand rather than derived: the enum columns are stored as their strings.
crate::per_backend! {
/// Decode an enum column stored as its string.
pub(crate) fn enum_col<T: FromStr>(row: &dbk::Row, col: &str) -> Result<T, sqlx::Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e: T::Err| sqlx::Error::ColumnDecode { index: col.into(), source: Box::new(e) })
}

/// Decode an optional enum column stored as its string.
pub(crate) fn opt_enum_col<T: FromStr>(row: &dbk::Row, col: &str) -> Result<Option<T>, sqlx::Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| s.parse().map_err(|e: T::Err| sqlx::Error::ColumnDecode { index: col.into(), source: Box::new(e) }))
        .transpose()
}

impl<'r> FromRow<'r, dbk::Row> for ImageRow {
    fn from_row(row: &'r dbk::Row) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            owner: row.try_get("owner")?,
            status: enum_col(row, "status")?,
            visibility: enum_col(row, "visibility")?,
            disk_format: opt_enum_col(row, "disk_format")?,
            container_format: opt_enum_col(row, "container_format")?,
            size: row.try_get("size")?,
            checksum: row.try_get("checksum")?,
            os_hash_value: row.try_get("os_hash_value")?,
            min_disk: row.try_get("min_disk")?,
            min_ram: row.try_get("min_ram")?,
            protected: row.try_get("protected")?,
            properties: row.try_get("properties")?,
            created_at: row.try_get::<crate::TsText, _>("created_at")?.try_into().map_err(decode_err("created_at"))?,
            updated_at: row.try_get::<crate::TsText, _>("updated_at")?.try_into().map_err(decode_err("updated_at"))?,
        })
    }
}

}

const IMAGE_COLS: &str = "id, name, owner, status, visibility, disk_format, container_format, size, checksum, os_hash_value, min_disk, min_ram, protected, properties, created_at, updated_at";

/// What a project's images use, for its image quotas (Glance's
/// `image_count_total`, `image_size_total`, `image_count_uploading`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageUsage {
    /// Images the project owns (not deleted).
    pub count: i64,
    /// Their stored bytes.
    pub bytes: i64,
    /// Of them, uploads in progress (`saving`).
    pub uploading: i64,
}

impl Datastore {
    /// The image usage of `project`.
    pub async fn image_usage(&self, project: &str) -> Result<ImageUsage, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (count, bytes, uploading): (i64, f64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), {total}, CAST(COALESCE(SUM(CASE WHEN status = {saving} THEN 1 ELSE 0 END), 0) AS BIGINT) FROM images WHERE owner = $1 AND status <> {deleted}",
            total = dbk::total("COALESCE(size, 0)"),
            saving = lit(ImageStatus::Saving),
            deleted = lit(ImageStatus::Deleted)
        ))
        .bind(project)
        .fetch_one(rp)
        .await?;
            // The total is a float; clamp instead of wrapping on absurd sums.
            let bytes = if bytes >= i64::MAX as f64 { i64::MAX } else { bytes.max(0.0) as i64 };
            Ok(ImageUsage { count, bytes, uploading })
        })
    }

    /// Insert an image record (status `queued` until data arrives).
    /// The id of a deleted image stays reserved (Glance: 409).
    pub async fn image_create(&self, i: &ImageRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let reserved: Option<(String,)> = sqlx::query_as("SELECT id FROM deleted_image_ids WHERE id = $1")
                .bind(i.id)
                .fetch_optional(&mut *tx)
                .await?;
            if reserved.is_some() {
                return Err(DbError::conflict(
                    RowKind::Image,
                    format!("Image with identifier {} already exists!", i.id),
                ));
            }
            sqlx::query("INSERT INTO images (id, name, owner, status, visibility, disk_format, container_format, size, checksum, os_hash_value, min_disk, min_ram, protected, properties, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$15)")
            .bind(i.id).bind(&i.name).bind(&i.owner).bind(i.status.as_str()).bind(i.visibility.as_str()).bind(i.disk_format.map(DiskFormat::as_str)).bind(i.container_format.map(ContainerFormat::as_str))
            .bind(i.size).bind(&i.checksum).bind(&i.os_hash_value).bind(i.min_disk).bind(i.min_ram).bind(i.protected).bind(&i.properties).bind(now)
            .execute(&mut *tx).await
            .map_err(|e| if crate::is_unique_violation(&e) { DbError::conflict(RowKind::Image, format!("image {} already exists", i.id)) } else { e.into() })?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Images visible to `project` (its own, public/community ones, and the
    /// shared ones it is a member of, whatever its answer); all for admins.
    pub async fn image_list(&self, project: Option<&str>) -> Result<Vec<ImageRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!(
                "SELECT {IMAGE_COLS} FROM images WHERE status <> {image_deleted} AND ($1 IS NULL OR owner = $1 OR visibility IN ({open_visibility}) OR (visibility = {shared} AND id IN (SELECT image_id FROM image_members WHERE member_id = $1))) ORDER BY created_at DESC, id",
                image_deleted = lit(ImageStatus::Deleted),
                open_visibility = list(&Visibility::OPEN),
                shared = lit(Visibility::Shared)
            );
            Ok(sqlx::query_as(&sql).bind(project).fetch_all(rp).await?)
        })
    }

    /// One image by id (visibility is checked by the caller).
    pub async fn image_get(&self, id: &ImageId) -> Result<ImageRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!(
                "SELECT {IMAGE_COLS} FROM images WHERE id = $1 AND status <> {image_deleted}",
                image_deleted = lit(ImageStatus::Deleted)
            );
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Image, id))
        })
    }

    /// The first non-deleted image with this name visible to `project`.
    pub async fn image_find_by_name(&self, name: &str, project: Option<&str>) -> Result<ImageRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let sql = format!(
                "SELECT {IMAGE_COLS} FROM images WHERE name = $1 AND status <> {image_deleted} AND ($2 IS NULL OR owner = $2 OR visibility IN ({open_visibility})) ORDER BY created_at LIMIT 1",
                image_deleted = lit(ImageStatus::Deleted),
                open_visibility = list(&Visibility::OPEN)
            );
            sqlx::query_as(&sql)
                .bind(name)
                .bind(project)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Image, name))
        })
    }

    /// Record uploaded data: size, checksums, status `active`.
    pub async fn image_set_data(&self, id: &ImageId, size: i64, md5: &str, sha512: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(wp, sqlx::query(&format!("UPDATE images SET size = $2, checksum = $3, os_hash_value = $4, status = {image_active}, updated_at = $5 WHERE id = $1 AND status IN ({uploadable})", image_active = lit(ImageStatus::Active), uploadable = list(&[ImageStatus::Queued, ImageStatus::Saving, ImageStatus::Active])))
            .bind(id).bind(size).bind(md5).bind(sha512).bind(self.now())).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Image, id));
            }
            Ok(())
        })
    }

    /// Update mutable metadata (name, visibility, protected, min sizes,
    /// properties, formats, and the owner an admin may hand it to).
    pub async fn image_update(&self, i: &ImageRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(wp, sqlx::query(&format!("UPDATE images SET name = $2, visibility = $3, protected = $4, min_disk = $5, min_ram = $6, properties = $7, disk_format = $8, container_format = $9, updated_at = $10, owner = $11 WHERE id = $1 AND status <> {image_deleted}", image_deleted = lit(ImageStatus::Deleted)))
            .bind(i.id).bind(&i.name).bind(i.visibility.as_str()).bind(i.protected).bind(i.min_disk).bind(i.min_ram).bind(&i.properties).bind(i.disk_format.map(DiskFormat::as_str)).bind(i.container_format.map(ContainerFormat::as_str)).bind(self.now()).bind(&i.owner)
            ).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Image, i.id));
            }
            Ok(())
        })
    }

    /// Delete an image record (idempotent: `NotFound` when already gone).
    /// The id stays reserved ([`Datastore::image_create`] refuses it).
    pub async fn image_delete(&self, id: &ImageId) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query("DELETE FROM images WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Image, id));
            }
            sqlx::query("DELETE FROM image_members WHERE image_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO deleted_image_ids (id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Move an image from one of `from` to `to` (an upload claims a queued
    /// image as `saving`, and gives it back if the upload fails).
    pub async fn image_set_status(&self, id: &ImageId, from: &[ImageStatus], to: ImageStatus) -> Result<Cas, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query(&format!(
                    "UPDATE images SET status = $2, updated_at = $3 WHERE id = $1 AND status IN ({})",
                    list(from)
                ))
                .bind(id)
                .bind(to.as_str())
                .bind(self.now()),
            )
            .await?;
            if r.rows_affected() > 0 {
                return Ok(Cas::Updated);
            }
            let cur = self.image_get(id).await?;
            Ok(if cur.status == to { Cas::AlreadySo } else { Cas::Conflict })
        })
    }

    /// Images held in one of `statuses` (an upload, stage or import under
    /// way) whose holder has not refreshed them since `updated_before`: the
    /// process that held them is gone (holders refresh while they run).
    pub async fn image_list_stale_holds(
        &self,
        statuses: &[ImageStatus],
        updated_before: DateTime<Utc>,
    ) -> Result<Vec<ImageRow>, DbError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        crate::with_db!(self, |wp, rp| {
            let sql = format!(
                "SELECT {IMAGE_COLS} FROM images WHERE status IN ({}) AND updated_at < $1 ORDER BY updated_at, id",
                list(statuses)
            );
            Ok(sqlx::query_as(&sql).bind(crate::ts(updated_before)).fetch_all(rp).await?)
        })
    }

    /// Record an upload's data and make the image active, only if it is
    /// still the `saving` image this upload claimed (`NotFound` otherwise:
    /// deleted meanwhile).
    pub async fn image_finish_upload(&self, id: &ImageId, size: i64, md5: &str, sha512: &str) -> Result<(), DbError> {
        self.image_finish_data(id, ImageStatus::Saving, size, md5, sha512).await
    }

    /// Record stored data and make the image active, only if it is still in
    /// `from` (`saving` for an upload, `importing` for an import).
    pub async fn image_finish_data(
        &self,
        id: &ImageId,
        from: ImageStatus,
        size: i64,
        md5: &str,
        sha512: &str,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(wp, sqlx::query(&format!("UPDATE images SET size = $2, checksum = $3, os_hash_value = $4, status = {image_active}, updated_at = $5 WHERE id = $1 AND status = {from}", image_active = lit(ImageStatus::Active), from = lit(from)))
            .bind(id).bind(size).bind(md5).bind(sha512).bind(self.now())).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Image, id));
            }
            Ok(())
        })
    }
}
