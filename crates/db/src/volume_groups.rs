//! Group types (Cinder's `/group_types`, 3.11), generic volume groups
//! (`/groups`, 3.13) and the volumes' membership (`volumes.group_id`).
//! A group's volume types are kept as one JSON array of type ids; a volume
//! belongs to at most one group.

use crate::{Datastore, DbError, QuotaExceeded, RowKind};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::collections::BTreeMap;
use stratus_types::VolumeId;

/// A group type row (`group_specs` as a JSON object of strings).
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct GroupTypeRow {
    /// Id (UUID).
    pub id: String,
    /// Name (unique among live types).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Visible to every project.
    pub is_public: bool,
    /// The specs, a JSON object.
    pub group_specs: String,
}

impl GroupTypeRow {
    /// The specs as a map.
    pub fn spec_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.group_specs).unwrap_or_default()
    }
}

/// A group type's changeable fields (`None`: unchanged).
#[derive(Clone, Debug, Default)]
pub struct GroupTypeChange {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)`: cleared).
    pub description: Option<Option<String>>,
    /// New visibility.
    pub is_public: Option<bool>,
}

/// A volume group row.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct VolumeGroupRow {
    /// Id (UUID).
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Cinder's group status (`available`, `error`, ...).
    pub status: String,
    /// The group type.
    pub group_type_id: String,
    /// The volume types allowed in the group, a JSON array of ids.
    pub volume_type_ids: String,
    /// Availability zone.
    pub availability_zone: String,
    /// The group it was copied from (3.14).
    pub source_group_id: Option<String>,
    /// The group snapshot it was built from (3.14).
    pub group_snapshot_id: Option<String>,
    /// Created.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
}

impl VolumeGroupRow {
    /// The volume type ids, in the order they were given.
    pub fn volume_types(&self) -> Vec<String> {
        serde_json::from_str(&self.volume_type_ids).unwrap_or_default()
    }
}

const TCOLS: &str = "id, name, description, is_public, group_specs";
const GCOLS: &str = "id, project_id, user_id, name, description, status, group_type_id, volume_type_ids, availability_zone, source_group_id, created_at, group_snapshot_id";

fn type_name_taken(name: &str) -> DbError {
    DbError::conflict(RowKind::GroupType, format!("Group Type {name} already exists."))
}

impl Datastore {
    /// Record a group type; a live type of the same name is a `Conflict`.
    pub async fn group_type_create(&self, t: &GroupTypeRow) -> Result<GroupTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let taken: Option<(String,)> =
                sqlx::query_as("SELECT id FROM group_types WHERE name = $1 AND deleted = FALSE")
                    .bind(&t.name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if taken.is_some() {
                return Err(type_name_taken(&t.name));
            }
            let row: GroupTypeRow = sqlx::query_as(&format!(
                "INSERT INTO group_types ({TCOLS}, created_at, updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,$6,FALSE) RETURNING {TCOLS}"
            ))
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.description)
            .bind(t.is_public)
            .bind(&t.group_specs)
            .bind(self.now())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// A live group type, by id.
    pub async fn group_type_get(&self, id: &str) -> Result<GroupTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {TCOLS} FROM group_types WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::GroupType, id))
        })
    }

    /// A live group type, by name.
    pub async fn group_type_by_name(&self, name: &str) -> Result<GroupTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {TCOLS} FROM group_types WHERE name = $1 AND deleted = FALSE"))
                .bind(name)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::GroupType, name))
        })
    }

    /// Live group types (only public or only private ones when `is_public`
    /// says so), by name.
    pub async fn group_type_list(&self, is_public: Option<bool>) -> Result<Vec<GroupTypeRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {TCOLS} FROM group_types WHERE deleted = FALSE AND ($1 IS NULL OR is_public = $1) ORDER BY name, id"
            ))
            .bind(is_public)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Change a group type's name, description or visibility; a name that
    /// another live type has is a `Conflict`.
    pub async fn group_type_update(&self, id: &str, c: &GroupTypeChange) -> Result<GroupTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let cur: GroupTypeRow =
                sqlx::query_as(&format!("SELECT {TCOLS} FROM group_types WHERE id = $1 AND deleted = FALSE"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| DbError::not_found(RowKind::GroupType, id))?;
            if let Some(name) = &c.name {
                let taken: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM group_types WHERE name = $1 AND deleted = FALSE AND id <> $2")
                        .bind(name)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    return Err(type_name_taken(name));
                }
            }
            let name = c.name.clone().unwrap_or(cur.name);
            let description = c.description.clone().unwrap_or(cur.description);
            let is_public = c.is_public.unwrap_or(cur.is_public);
            let row: GroupTypeRow = sqlx::query_as(&format!(
                "UPDATE group_types SET name = $2, description = $3, is_public = $4, updated_at = $5 WHERE id = $1 RETURNING {TCOLS}"
            ))
            .bind(id)
            .bind(&name)
            .bind(&description)
            .bind(is_public)
            .bind(self.now())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Replace a group type's specs (the caller merged them).
    pub async fn group_type_set_specs(&self, id: &str, specs: &str) -> Result<GroupTypeRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!(
                "UPDATE group_types SET group_specs = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE RETURNING {TCOLS}"
            ))
            .bind(id)
            .bind(specs)
            .bind(self.now())
            .fetch_optional(wp)
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::GroupType, id))
        })
    }

    /// Delete a group type; one that a live group uses is a `Conflict`.
    pub async fn group_type_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let used: Option<(String,)> =
                sqlx::query_as("SELECT id FROM volume_groups WHERE group_type_id = $1 AND deleted = FALSE LIMIT 1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if used.is_some() {
                return Err(DbError::conflict(
                    RowKind::GroupType,
                    format!("Group Type {id} deletion is not allowed with groups present with the type."),
                ));
            }
            let r = sqlx::query("UPDATE group_types SET deleted = TRUE, deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::not_found(RowKind::GroupType, id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Record a group within the project's `groups` limit (-1: unlimited):
    /// `QuotaExceeded` (`groups`) when it has no room.
    pub async fn volume_group_create(&self, g: &VolumeGroupRow, max_groups: i64) -> Result<VolumeGroupRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM volume_groups WHERE project_id = $1 AND deleted = FALSE")
                    .bind(&g.project_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if max_groups >= 0 && n + 1 > max_groups {
                return Err(DbError::QuotaExceeded(QuotaExceeded {
                    overs: vec!["groups"],
                    requested: vec![1],
                    used: vec![n],
                    allowed: vec![max_groups],
                }));
            }
            let row: VolumeGroupRow = sqlx::query_as(&format!(
                "INSERT INTO volume_groups ({GCOLS}, updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$11,FALSE) RETURNING {GCOLS}"
            ))
            .bind(&g.id)
            .bind(&g.project_id)
            .bind(&g.user_id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(&g.status)
            .bind(&g.group_type_id)
            .bind(&g.volume_type_ids)
            .bind(&g.availability_zone)
            .bind(&g.source_group_id)
            .bind(self.now())
            .bind(&g.group_snapshot_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// A live group.
    pub async fn volume_group_get(&self, id: &str) -> Result<VolumeGroupRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {GCOLS} FROM volume_groups WHERE id = $1 AND deleted = FALSE"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::VolumeGroup, id))
        })
    }

    /// Live groups of a project (or of all), newest first.
    pub async fn volume_group_list(&self, project_id: Option<&str>) -> Result<Vec<VolumeGroupRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {GCOLS} FROM volume_groups WHERE deleted = FALSE AND ($1 IS NULL OR project_id = $1) ORDER BY created_at DESC, id"
            ))
            .bind(project_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Live groups of a project (the `groups` quota's usage).
    pub async fn volume_group_count(&self, project_id: &str) -> Result<i64, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM volume_groups WHERE project_id = $1 AND deleted = FALSE")
                    .bind(project_id)
                    .fetch_one(rp)
                    .await?;
            Ok(n)
        })
    }

    /// Rename or describe a group (`None`: unchanged).
    pub async fn volume_group_rename(
        &self,
        id: &str,
        name: Option<Option<String>>,
        description: Option<Option<String>>,
    ) -> Result<VolumeGroupRow, DbError> {
        let cur = self.volume_group_get(id).await?;
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!(
                "UPDATE volume_groups SET name = $2, description = $3, updated_at = $4 WHERE id = $1 AND deleted = FALSE RETURNING {GCOLS}"
            ))
            .bind(id)
            .bind(name.clone().unwrap_or(cur.name.clone()))
            .bind(description.clone().unwrap_or(cur.description.clone()))
            .bind(self.now())
            .fetch_optional(wp)
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::VolumeGroup, id))
        })
    }

    /// Set a group's status; with `from`, only from one of those
    /// (`Conflict` otherwise).
    pub async fn volume_group_set_status(&self, id: &str, from: Option<&[&str]>, to: &str) -> Result<(), DbError> {
        let cur = self.volume_group_get(id).await?;
        if let Some(from) = from
            && !from.contains(&cur.status.as_str())
        {
            return Err(DbError::conflict(RowKind::VolumeGroup, format!("group {id} is {}", cur.status)));
        }
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query(
                "UPDATE volume_groups SET status = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE AND status = $4",
            )
            .bind(id)
            .bind(to)
            .bind(self.now())
            .bind(&cur.status)
            .execute(wp)
            .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::conflict(RowKind::VolumeGroup, format!("group {id} changed meanwhile")));
            }
            Ok(())
        })
    }

    /// Mark a group deleted; `Conflict` while a live volume is still in it.
    pub async fn volume_group_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let member: Option<(VolumeId,)> =
                sqlx::query_as("SELECT id FROM volumes WHERE group_id = $1 AND deleted = FALSE LIMIT 1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if member.is_some() {
                return Err(DbError::conflict(RowKind::VolumeGroup, format!("group {id} still has volumes")));
            }
            let r = sqlx::query("UPDATE volume_groups SET deleted = TRUE, deleted_at = $2, updated_at = $2, status = 'deleted' WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::not_found(RowKind::VolumeGroup, id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ids of the live volumes in a group, oldest first.
    pub async fn volume_group_members(&self, id: &str) -> Result<Vec<VolumeId>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(VolumeId,)> = sqlx::query_as(
                "SELECT id FROM volumes WHERE group_id = $1 AND deleted = FALSE ORDER BY created_at, id",
            )
            .bind(id)
            .fetch_all(rp)
            .await?;
            Ok(rows.into_iter().map(|(v,)| v).collect())
        })
    }

    /// Put a live volume in a group (`Some`) or take it out (`None`):
    /// `Conflict` when it is in another group already (adding) or not in
    /// `expect` (removing).
    pub async fn volume_set_group(
        &self,
        vol: &VolumeId,
        group: Option<&str>,
        expect: Option<&str>,
    ) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query(
                "UPDATE volumes SET group_id = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE AND ((group_id IS NULL AND $4 IS NULL) OR group_id = $4)",
            )
            .bind(vol)
            .bind(group)
            .bind(self.now())
            .bind(expect)
            .execute(wp)
            .await?;
            if r.rows_affected() != 1 {
                return Err(DbError::conflict(RowKind::Volume, format!("volume {vol} changed group meanwhile")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    fn group(id: &str, project: &str, gt: &str) -> VolumeGroupRow {
        VolumeGroupRow {
            id: id.into(),
            project_id: project.into(),
            user_id: "u".into(),
            name: Some(id.into()),
            description: None,
            status: "available".into(),
            group_type_id: gt.into(),
            volume_type_ids: format!("[\"{}\"]", crate::DEFAULT_VOLUME_TYPE_ID),
            availability_zone: "nova".into(),
            source_group_id: None,
            group_snapshot_id: None,
            created_at: crate::SET_ON_INSERT,
        }
    }

    /// Cinder's group types: unique live names, private ones filtered, a
    /// type in use cannot go; groups: the `groups` quota is counted, and a
    /// group with a volume cannot be deleted until the volume leaves.
    #[tokio::test]
    async fn group_types_and_groups_on_both_backends() {
        let (ds, _d) = store().await;
        let t = GroupTypeRow {
            id: "gt1".into(),
            name: "a".into(),
            description: None,
            is_public: true,
            group_specs: "{}".into(),
        };
        ds.group_type_create(&t).await.expect("create");
        let dup = GroupTypeRow { id: "gt2".into(), ..t.clone() };
        assert!(matches!(ds.group_type_create(&dup).await, Err(DbError::Conflict { .. })));
        let private = GroupTypeRow { id: "gt3".into(), name: "b".into(), is_public: false, ..t.clone() };
        ds.group_type_create(&private).await.expect("private");
        assert_eq!(ds.group_type_list(Some(false)).await.expect("list").len(), 1);
        assert_eq!(ds.group_type_list(None).await.expect("list").len(), 2);
        let c = GroupTypeChange { name: Some("b".into()), ..Default::default() };
        assert!(matches!(ds.group_type_update("gt1", &c).await, Err(DbError::Conflict { .. })));
        let t = ds.group_type_set_specs("gt1", r#"{"k":"v"}"#).await.expect("specs");
        assert_eq!(t.spec_map().get("k").map(String::as_str), Some("v"));

        ds.volume_group_create(&group("g1", "p", "gt1"), 1).await.expect("group");
        assert!(matches!(
            ds.volume_group_create(&group("g2", "p", "gt1"), 1).await,
            Err(DbError::QuotaExceeded(q)) if q.overs == vec!["groups"]
        ));
        assert_eq!(ds.volume_group_count("p").await.expect("count"), 1);
        assert!(matches!(ds.group_type_delete("gt1").await, Err(DbError::Conflict { .. })));

        let id = stratus_types::VolumeId::new();
        let v = crate::VolumeRow {
            id,
            name: None,
            description: None,
            project_id: "p".into(),
            user_id: "u".into(),
            size_gb: 1,
            status: stratus_types::VolumeStatus::Available,
            volume_type_id: Some(crate::DEFAULT_VOLUME_TYPE_ID.into()),
            volume_type: None,
            availability_zone: "nova".into(),
            bootable: false,
            image_id: None,
            backend_name: format!("volume-{id}"),
            metadata: "{}".into(),
            group_id: Some("g1".into()),
            snapshot_id: None,
            source_volid: None,
            created_at: crate::SET_ON_INSERT,
            updated_at: crate::SET_ON_INSERT,
            deleted_at: None,
            deleted: false,
        };
        let v = ds.volume_create(&v, -1, -1).await.expect("volume in group");
        assert_eq!(v.group_id.as_deref(), Some("g1"));
        assert_eq!(ds.volume_group_members("g1").await.expect("members"), vec![id]);
        assert!(matches!(ds.volume_group_delete("g1").await, Err(DbError::Conflict { .. })));
        assert!(matches!(ds.volume_set_group(&id, Some("g1"), None).await, Err(DbError::Conflict { .. })));
        ds.volume_set_group(&id, None, Some("g1")).await.expect("leave");
        ds.volume_group_delete("g1").await.expect("delete");
        assert!(matches!(ds.volume_group_get("g1").await, Err(DbError::NotFound { .. })));
        ds.group_type_delete("gt1").await.expect("type delete");

        // Messages: kept until they expire, deleted once.
        let m = crate::VolumeMessageRow {
            id: "m1".into(),
            project_id: "p".into(),
            request_id: "req-1".into(),
            resource_type: Some("VOLUME".into()),
            resource_uuid: Some(id.to_string()),
            event_id: "VOLUME_VOLUME_001_003".into(),
            action_id: "001".into(),
            detail_id: "003".into(),
            message_level: "ERROR".into(),
            created_at: crate::SET_ON_INSERT,
            expires_at: crate::SET_ON_INSERT,
        };
        let m = ds.volume_message_create(&m, chrono::Duration::days(30)).await.expect("message");
        assert!(m.expires_at > m.created_at);
        assert_eq!(ds.volume_message_list(Some("p")).await.expect("list").len(), 1);
        assert!(ds.volume_message_list(Some("q")).await.expect("list").is_empty());
        ds.volume_message_delete("m1").await.expect("delete");
        assert!(matches!(ds.volume_message_delete("m1").await, Err(DbError::NotFound { .. })));
    }
}
