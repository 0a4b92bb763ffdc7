//! Image members (Image API v2 sharing): which projects a `shared` image is
//! offered to, and whether each accepted it. The image service decides who
//! may read or change these rows; this module only stores them.

use crate::{Datastore, DbError, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use stratus_types::ImageId;
use stratus_types::image::MemberStatus;

/// One project's membership of one image.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct ImageMemberRow {
    /// The shared image.
    pub image_id: ImageId,
    /// The consumer project.
    pub member_id: String,
    /// Its answer.
    #[sqlx(try_from = "String")]
    pub status: MemberStatus,
    /// When the owner shared it.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// When the status last changed.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "image_id, member_id, status, created_at, updated_at";

fn key(image: &ImageId, member: &str) -> String {
    format!("{image} / {member}")
}

impl Datastore {
    /// Offer `image` to `member` (status `pending`); `Conflict` when it
    /// already is a member, `QuotaExceeded` past `limit` members (negative:
    /// unlimited), counted in the same transaction.
    pub async fn image_member_create(
        &self,
        image: &ImageId,
        member: &str,
        limit: i64,
    ) -> Result<ImageMemberRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM image_members WHERE image_id = $1")
                .bind(image)
                .fetch_one(&mut *tx)
                .await?;
            if crate::exceeds(held, 1, limit) {
                return Err(DbError::QuotaExceeded(crate::QuotaExceeded {
                    overs: vec!["image_members"],
                    requested: vec![1],
                    used: vec![held],
                    allowed: vec![limit],
                }));
            }
            let now = self.now();
            let row: ImageMemberRow = sqlx::query_as(&format!(
                "INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) VALUES ($1,$2,$3,$4,$4) RETURNING {COLS}"
            ))
            .bind(image)
            .bind(member)
            .bind(MemberStatus::Pending.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                if crate::is_unique_violation(&e) {
                    DbError::conflict(RowKind::ImageMember, format!("{member} is already a member of image {image}."))
                } else {
                    e.into()
                }
            })?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// One membership; `NotFound` when `member` is not a member of `image`.
    pub async fn image_member_get(&self, image: &ImageId, member: &str) -> Result<ImageMemberRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {COLS} FROM image_members WHERE image_id = $1 AND member_id = $2"))
                .bind(image)
                .bind(member)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::ImageMember, key(image, member)))
        })
    }

    /// An image's members, oldest first.
    pub async fn image_member_list(&self, image: &ImageId) -> Result<Vec<ImageMemberRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLS} FROM image_members WHERE image_id = $1 ORDER BY created_at, member_id"
            ))
            .bind(image)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Every image `member` is a member of (for its image list).
    pub async fn image_memberships(&self, member: &str) -> Result<Vec<ImageMemberRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {COLS} FROM image_members WHERE member_id = $1"))
                .bind(member)
                .fetch_all(rp)
                .await?)
        })
    }

    /// Record a member's answer.
    pub async fn image_member_set_status(
        &self,
        image: &ImageId,
        member: &str,
        status: MemberStatus,
    ) -> Result<ImageMemberRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query(
                    "UPDATE image_members SET status = $3, updated_at = $4 WHERE image_id = $1 AND member_id = $2",
                )
                .bind(image)
                .bind(member)
                .bind(status.as_str())
                .bind(self.now()),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::ImageMember, key(image, member)));
            }
            self.image_member_get(image, member).await
        })
    }

    /// Withdraw `image` from `member`; `NotFound` when it was not a member.
    pub async fn image_member_delete(&self, image: &ImageId, member: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member_id = $2")
                    .bind(image)
                    .bind(member),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::ImageMember, key(image, member)));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::store;
    use crate::{DbError, ImageRow};
    use stratus_types::ImageId;
    use stratus_types::image::{ImageStatus, MemberStatus, Visibility};

    fn image(owner: &str) -> ImageRow {
        ImageRow {
            id: ImageId::new(),
            name: Some("shared".into()),
            owner: owner.into(),
            status: ImageStatus::Queued,
            visibility: Visibility::Shared,
            disk_format: None,
            container_format: None,
            size: None,
            checksum: None,
            os_hash_value: None,
            min_disk: 0,
            min_ram: 0,
            protected: false,
            properties: "{}".into(),
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
        }
    }

    /// Members are unique per image, bounded, answerable, and go with the
    /// image; a member's image list includes the shared image.
    #[tokio::test]
    async fn image_members_round_trip() {
        let (ds, _db) = store().await;
        let img = image("p1");
        ds.image_create(&img).await.expect("image");
        let m = ds.image_member_create(&img.id, "p2", 2).await.expect("member");
        assert_eq!((m.member_id.as_str(), m.status), ("p2", MemberStatus::Pending));
        assert!(matches!(ds.image_member_create(&img.id, "p2", 2).await, Err(DbError::Conflict { .. })));
        ds.image_member_create(&img.id, "p3", 2).await.expect("second member");
        assert!(matches!(ds.image_member_create(&img.id, "p4", 2).await, Err(DbError::QuotaExceeded(_))));
        assert_eq!(ds.image_member_list(&img.id).await.expect("list").len(), 2);
        let m = ds.image_member_set_status(&img.id, "p2", MemberStatus::Accepted).await.expect("accept");
        assert_eq!(m.status, MemberStatus::Accepted);
        assert_eq!(ds.image_memberships("p2").await.expect("memberships")[0].image_id, img.id);
        assert!(ds.image_list(Some("p2")).await.expect("list").iter().any(|r| r.id == img.id));
        assert!(!ds.image_list(Some("p9")).await.expect("list").iter().any(|r| r.id == img.id));
        ds.image_member_delete(&img.id, "p3").await.expect("delete");
        assert!(matches!(ds.image_member_get(&img.id, "p3").await, Err(DbError::NotFound { .. })));
        assert!(matches!(ds.image_member_delete(&img.id, "p3").await, Err(DbError::NotFound { .. })));
        ds.image_delete(&img.id).await.expect("image delete");
        assert!(ds.image_memberships("p2").await.expect("memberships").is_empty());
    }
}
