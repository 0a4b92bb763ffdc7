//! Identity rows added after the first schema: project tags, application
//! credentials and role assignments on the system. The identity service
//! checks names, limits and policy; this module only stores the rows.

use crate::{Datastore, DbError, RowKind, is_unique_violation, ts};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// An application credential: a named secret of a user on one project,
/// carrying a subset of the user's roles there. Only the secret's argon2id
/// hash is stored.
#[derive(Clone, Debug, FromRow)]
pub struct AppCredRow {
    /// 32 hex digits.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The project its tokens are scoped to.
    pub project_id: String,
    /// Unique per user.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// PHC string (argon2id) of the secret.
    pub secret_hash: String,
    /// The role ids it carries, as a JSON array.
    pub role_ids: String,
    /// When it stops working (`None`: never).
    #[sqlx(try_from = "crate::OptTsText")]
    pub expires_at: Option<DateTime<Utc>>,
    /// May create application credentials and trusts itself.
    pub unrestricted: bool,
}

/// A role of a user on the system, with the role's name.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct SystemAssignmentRow {
    /// User.
    pub user_id: String,
    /// Role id.
    pub role_id: String,
    /// Role name.
    pub role_name: String,
}

/// What adding one tag to a project did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectTagAdded {
    /// Stored.
    Added,
    /// The project already had it (nothing changed).
    Existed,
    /// The project already has the maximum number of tags (nothing changed).
    Full,
}

const APP_CRED_COLS: &str =
    "id, user_id, project_id, name, description, secret_hash, role_ids, expires_at, unrestricted";

impl Datastore {
    /// A project's tags, sorted.
    pub async fn project_tags(&self, project_id: &str) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_scalar("SELECT tag FROM project_tags WHERE project_id = $1 ORDER BY tag")
                .bind(project_id)
                .fetch_all(rp)
                .await?)
        })
    }

    /// Every project's tags as `(project_id, tag)` pairs (for list filters).
    pub async fn project_tags_all(&self) -> Result<Vec<(String, String)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT project_id, tag FROM project_tags ORDER BY project_id, tag")
                .fetch_all(rp)
                .await?)
        })
    }

    /// Add one tag unless the project already has `max` tags, counted in
    /// the same transaction.
    pub async fn project_tag_add(&self, project_id: &str, tag: &str, max: i64) -> Result<ProjectTagAdded, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let tags: Vec<String> = sqlx::query_scalar("SELECT tag FROM project_tags WHERE project_id = $1")
                .bind(project_id)
                .fetch_all(&mut *tx)
                .await?;
            if tags.iter().any(|t| t == tag) {
                return Ok(ProjectTagAdded::Existed);
            }
            if i64::try_from(tags.len()).unwrap_or(i64::MAX) >= max {
                return Ok(ProjectTagAdded::Full);
            }
            sqlx::query("INSERT INTO project_tags (project_id, tag) VALUES ($1, $2)")
                .bind(project_id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ProjectTagAdded::Added)
        })
    }

    /// Replace all of a project's tags (`tags` must hold no duplicates).
    pub async fn project_tags_replace(&self, project_id: &str, tags: &[String]) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            sqlx::query("DELETE FROM project_tags WHERE project_id = $1").bind(project_id).execute(&mut *tx).await?;
            for t in tags {
                sqlx::query("INSERT INTO project_tags (project_id, tag) VALUES ($1, $2)")
                    .bind(project_id)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Remove one tag; `NotFound` if the project does not have it.
    pub async fn project_tag_delete(&self, project_id: &str, tag: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("DELETE FROM project_tags WHERE project_id = $1 AND tag = $2")
                .bind(project_id)
                .bind(tag)
                .execute(wp)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::ProjectTag, format!("{project_id}/{tag}")));
            }
            Ok(())
        })
    }

    /// Store an application credential; `Conflict` if its user already has one of that name.
    pub async fn app_cred_create(&self, a: &AppCredRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query(&format!(
                "INSERT INTO application_credentials ({APP_CRED_COLS}, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
            ))
            .bind(&a.id)
            .bind(&a.user_id)
            .bind(&a.project_id)
            .bind(&a.name)
            .bind(&a.description)
            .bind(&a.secret_hash)
            .bind(&a.role_ids)
            .bind(a.expires_at.map(ts))
            .bind(a.unrestricted)
            .bind(self.now())
            .execute(wp)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DbError::conflict(RowKind::AppCred, format!("application credential {} already exists", a.name))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
    }

    /// A user's application credentials, by name.
    pub async fn app_cred_list(&self, user_id: &str) -> Result<Vec<AppCredRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {APP_CRED_COLS} FROM application_credentials WHERE user_id = $1 ORDER BY name"
            ))
            .bind(user_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// An application credential by id.
    pub async fn app_cred_get(&self, id: &str) -> Result<AppCredRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {APP_CRED_COLS} FROM application_credentials WHERE id = $1"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::AppCred, id))
        })
    }

    /// An application credential by its user and name.
    pub async fn app_cred_by_name(&self, user_id: &str, name: &str) -> Result<AppCredRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!(
                "SELECT {APP_CRED_COLS} FROM application_credentials WHERE user_id = $1 AND name = $2"
            ))
            .bind(user_id)
            .bind(name)
            .fetch_optional(rp)
            .await?
            .ok_or_else(|| DbError::not_found(RowKind::AppCred, name))
        })
    }

    /// Delete an application credential and revoke the tokens issued from it.
    pub async fn app_cred_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query("DELETE FROM application_credentials WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::AppCred, id));
            }
            sqlx::query("UPDATE tokens SET revoked = TRUE WHERE app_cred_id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Delete a user's application credentials on a project (after one of
    /// its roles there was revoked, as Keystone does) and revoke their
    /// tokens; returns how many went.
    pub async fn app_cred_delete_on_project(&self, user_id: &str, project_id: &str) -> Result<u64, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            sqlx::query("UPDATE tokens SET revoked = TRUE WHERE app_cred_id IN (SELECT id FROM application_credentials WHERE user_id = $1 AND project_id = $2)")
                .bind(user_id)
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            let r = sqlx::query("DELETE FROM application_credentials WHERE user_id = $1 AND project_id = $2")
                .bind(user_id)
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(r.rows_affected())
        })
    }

    /// Create a role; `Conflict` if the name is taken.
    pub async fn role_create(&self, id: &str, name: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("INSERT INTO roles (id, name) VALUES ($1, $2)").bind(id).bind(name).execute(wp).await.map_err(
                |e| {
                    if is_unique_violation(&e) {
                        DbError::conflict(RowKind::Role, format!("role {name} already exists"))
                    } else {
                        e.into()
                    }
                },
            )?;
            Ok(())
        })
    }

    /// Delete a role with its assignments (on projects and on the system); `NotFound` if unknown.
    pub async fn role_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("DELETE FROM roles WHERE id = $1").bind(id).execute(wp).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Role, id));
            }
            Ok(())
        })
    }

    /// Grant a role on the system (idempotent).
    pub async fn system_grant_put(&self, user_id: &str, role_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query(
                "INSERT INTO system_role_assignments (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(role_id)
            .execute(wp)
            .await?;
            Ok(())
        })
    }

    /// Revoke a role on the system; `NotFound` if it was not granted.
    pub async fn system_grant_delete(&self, user_id: &str, role_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("DELETE FROM system_role_assignments WHERE user_id = $1 AND role_id = $2")
                .bind(user_id)
                .bind(role_id)
                .execute(wp)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::RoleAssignment, format!("{user_id}/system/{role_id}")));
            }
            Ok(())
        })
    }

    /// Role assignments on the system, optionally of one user.
    pub async fn system_grant_list(&self, user_id: Option<&str>) -> Result<Vec<SystemAssignmentRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT a.user_id, a.role_id, r.name AS role_name FROM system_role_assignments a JOIN roles r ON r.id = a.role_id WHERE ($1 IS NULL OR a.user_id = $1) ORDER BY a.user_id, r.name")
                .bind(user_id)
                .fetch_all(rp)
                .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::fresh;
    use crate::{AppCredRow, DbError, ProjectRow, ProjectTagAdded, UserRow};

    #[tokio::test]
    async fn tags_app_creds_and_system_grants_round_trip() {
        let (ds, _d) = fresh(std::sync::Arc::new(stratus_types::SystemClock)).await;
        let p = ProjectRow {
            id: "p".into(),
            name: "web".into(),
            domain_id: "default".into(),
            description: String::new(),
            enabled: true,
        };
        ds.project_create(&p).await.expect("project");
        let u = UserRow {
            id: "u".into(),
            name: "bob".into(),
            domain_id: "default".into(),
            password_hash: "h".into(),
            email: None,
            default_project_id: None,
            enabled: true,
        };
        ds.user_create(&u).await.expect("user");
        let r = ds.role_ensure("r1", "reader").await.expect("role");

        assert_eq!(ds.project_tag_add("p", "a", 2).await.expect("a"), ProjectTagAdded::Added);
        assert_eq!(ds.project_tag_add("p", "a", 2).await.expect("a again"), ProjectTagAdded::Existed);
        assert_eq!(ds.project_tag_add("p", "b", 2).await.expect("b"), ProjectTagAdded::Added);
        assert_eq!(ds.project_tag_add("p", "c", 2).await.expect("c"), ProjectTagAdded::Full);
        assert_eq!(ds.project_tags("p").await.expect("tags"), vec!["a", "b"]);
        ds.project_tags_replace("p", &["z".into()]).await.expect("replace");
        assert_eq!(ds.project_tags_all().await.expect("all"), vec![("p".to_string(), "z".to_string())]);
        assert!(matches!(ds.project_tag_delete("p", "a").await, Err(DbError::NotFound { .. })));
        ds.project_tag_delete("p", "z").await.expect("delete");

        let a = AppCredRow {
            id: "ac".into(),
            user_id: "u".into(),
            project_id: "p".into(),
            name: "ci".into(),
            description: None,
            secret_hash: "s".into(),
            role_ids: "[\"r1\"]".into(),
            expires_at: None,
            unrestricted: false,
        };
        ds.app_cred_create(&a).await.expect("app cred");
        assert!(matches!(
            ds.app_cred_create(&AppCredRow { id: "ac2".into(), ..a.clone() }).await,
            Err(DbError::Conflict { .. })
        ));
        assert_eq!(ds.app_cred_by_name("u", "ci").await.expect("by name").id, "ac");
        assert_eq!(ds.app_cred_list("u").await.expect("list").len(), 1);
        assert_eq!(ds.app_cred_delete_on_project("u", "p").await.expect("on project"), 1);
        assert!(matches!(ds.app_cred_get("ac").await, Err(DbError::NotFound { .. })));

        ds.system_grant_put("u", &r.id).await.expect("grant");
        ds.system_grant_put("u", &r.id).await.expect("idempotent");
        assert_eq!(ds.system_grant_list(Some("u")).await.expect("list")[0].role_name, "reader");
        ds.system_grant_delete("u", &r.id).await.expect("revoke");
        assert!(matches!(ds.system_grant_delete("u", &r.id).await, Err(DbError::NotFound { .. })));

        ds.role_create("r2", "auditor").await.expect("role");
        assert!(matches!(ds.role_create("r3", "auditor").await, Err(DbError::Conflict { .. })));
        ds.assignment_put("u", "p", "r2").await.expect("grant");
        ds.system_grant_put("u", "r2").await.expect("system grant");
        ds.role_delete("r2").await.expect("delete");
        assert!(ds.assignment_list(Some("u"), None).await.expect("list").is_empty(), "assignments go with the role");
        assert!(ds.system_grant_list(None).await.expect("list").is_empty());
        assert!(matches!(ds.role_delete("r2").await, Err(DbError::NotFound { .. })));
    }
}
