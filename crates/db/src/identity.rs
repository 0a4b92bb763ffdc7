//! Identity rows: projects, users, roles, role assignments and tokens.

use crate::{Datastore, DbError, RowKind, is_unique_violation, ts};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// A project (tenant).
#[derive(Clone, Debug, FromRow)]
pub struct ProjectRow {
    /// UUID without hyphens, as Keystone uses.
    pub id: String,
    /// Unique within its domain.
    pub name: String,
    /// Always `default` for now.
    pub domain_id: String,
    /// Free text.
    pub description: String,
    /// Disabled projects cannot get tokens.
    pub enabled: bool,
}

/// A user; the password is only ever stored as an argon2 hash.
#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    /// UUID without hyphens.
    pub id: String,
    /// Unique within its domain.
    pub name: String,
    /// Always `default` for now.
    pub domain_id: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Optional default project.
    pub default_project_id: Option<String>,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
}

/// A role.
#[derive(Clone, Debug, FromRow)]
pub struct RoleRow {
    /// Role id.
    pub id: String,
    /// `admin`, `member`, `reader`, ...
    pub name: String,
}

/// A role assignment of a user on a project, with names resolved.
#[derive(Clone, Debug, FromRow)]
pub struct AssignmentRow {
    /// User.
    pub user_id: String,
    /// Project.
    pub project_id: String,
    /// Role id.
    pub role_id: String,
    /// Role name.
    pub role_name: String,
}

/// A stored token (the token itself is never stored, only its hash).
#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Owner.
    pub user_id: String,
    /// Scope.
    pub project_id: String,
    /// Audit id shown to clients.
    pub audit_id: String,
    /// Issue time.
    #[sqlx(try_from = "crate::TsText")]
    pub issued_at: DateTime<Utc>,
    /// Expiry time.
    #[sqlx(try_from = "crate::TsText")]
    pub expires_at: DateTime<Utc>,
    /// Revoked by `DELETE /auth/tokens`.
    pub revoked: bool,
    /// The application credential it was issued from, if any: the token
    /// ends when the credential is deleted or expires.
    pub app_cred_id: Option<String>,
    /// Scoped to the system rather than a project (`project_id` is empty).
    pub system_scope: bool,
}

/// What must still hold when a token is stored, checked in the same
/// statement as the insert (see [`Datastore::token_insert_guarded`]).
#[derive(Clone, Copy, Debug)]
pub enum TokenGuard<'a> {
    /// Password authentication: the user's password hash is still the one
    /// the password was verified against.
    Password {
        /// The verified hash.
        password_hash: &'a str,
    },
    /// Token authentication: the token it was derived from is still stored
    /// and not revoked.
    Parent {
        /// Hash of the parent token.
        token_hash: &'a str,
    },
    /// Application credential authentication: the credential still exists
    /// (it is deleted with its user, its project, or a role it carries).
    AppCred {
        /// The credential's id.
        id: &'a str,
    },
}

impl Datastore {
    /// Create a project; `Conflict` if the name is taken.
    pub async fn project_create(&self, p: &ProjectRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query(
            "INSERT INTO projects (id, name, domain_id, description, enabled, created_at) VALUES ($1,$2,$3,$4,$5,$6)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.domain_id)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(self.now())
        .execute(wp)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                DbError::conflict(RowKind::Project, format!("project {} already exists", p.name))
            } else {
                e.into()
            }
        })?;
            Ok(())
        })
    }

    /// All projects, by name.
    pub async fn project_list(&self) -> Result<Vec<ProjectRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT id, name, domain_id, description, enabled FROM projects ORDER BY name")
                .fetch_all(rp)
                .await?)
        })
    }

    /// A project by id or (failing that) by name.
    pub async fn project_find(&self, id_or_name: &str) -> Result<ProjectRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as("SELECT id, name, domain_id, description, enabled FROM projects WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1")
            .bind(id_or_name).fetch_optional(rp).await?
            .ok_or_else(|| DbError::not_found(RowKind::Project, id_or_name))
        })
    }

    /// A project by exact id.
    pub async fn project_get(&self, id: &str) -> Result<ProjectRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as("SELECT id, name, domain_id, description, enabled FROM projects WHERE id = $1")
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Project, id))
        })
    }

    /// Delete a project and its role assignments.
    pub async fn project_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(wp).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Project, id));
            }
            Ok(())
        })
    }

    /// Create a user; `Conflict` if the name is taken.
    pub async fn user_create(&self, u: &UserRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("INSERT INTO users (id, name, domain_id, password_hash, email, default_project_id, enabled, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)")
            .bind(&u.id).bind(&u.name).bind(&u.domain_id).bind(&u.password_hash).bind(&u.email).bind(&u.default_project_id).bind(u.enabled).bind(self.now())
            .execute(wp).await
            .map_err(|e| if is_unique_violation(&e) { DbError::conflict(RowKind::User, format!("user {} already exists", u.name)) } else { e.into() })?;
            Ok(())
        })
    }

    /// All users, by name.
    pub async fn user_list(&self) -> Result<Vec<UserRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(
            "SELECT id, name, domain_id, password_hash, email, default_project_id, enabled FROM users ORDER BY name",
        )
        .fetch_all(rp)
        .await?)
        })
    }

    /// A user by id or name.
    pub async fn user_find(&self, id_or_name: &str) -> Result<UserRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as("SELECT id, name, domain_id, password_hash, email, default_project_id, enabled FROM users WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1")
            .bind(id_or_name).fetch_optional(rp).await?
            .ok_or_else(|| DbError::not_found(RowKind::User, id_or_name))
        })
    }

    /// The user's failed logins: how many in a row, and when the last was.
    pub async fn user_login_failures(&self, id: &str) -> Result<(i64, Option<DateTime<Utc>>), DbError> {
        crate::with_db!(self, |wp, rp| {
            let row: Option<(i64, crate::OptTsText)> =
                sqlx::query_as("SELECT failed_auth_count, failed_auth_at FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(rp)
                    .await?;
            let (n, at) = row.ok_or_else(|| DbError::not_found(RowKind::User, id))?;
            Ok((n, Option::<DateTime<Utc>>::try_from(at)?))
        })
    }

    /// Count one failed login of a user and return the count: it restarts at
    /// 1 when the previous failure is older than `window` (a lockout that
    /// ran out is forgotten). One statement, so concurrent failures on
    /// several API processes are all counted.
    pub async fn user_login_failed(&self, id: &str, window: chrono::Duration) -> Result<i64, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.clock.now();
            let row: Option<(i64,)> = sqlx::query_as(
                "UPDATE users SET
                   failed_auth_count = CASE WHEN failed_auth_at IS NULL OR failed_auth_at < $3 THEN 1 ELSE failed_auth_count + 1 END,
                   failed_auth_at = $2
                 WHERE id = $1 RETURNING failed_auth_count",
            )
            .bind(id)
            .bind(ts(now))
            .bind(ts(now - window))
            .fetch_optional(wp)
            .await?;
            row.map(|r| r.0).ok_or_else(|| DbError::not_found(RowKind::User, id))
        })
    }

    /// A successful login clears the user's failures (no write when there
    /// are none).
    pub async fn user_login_succeeded(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query(
                "UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL WHERE id = $1 AND failed_auth_count > 0",
            )
            .bind(id)
            .execute(wp)
            .await?;
            Ok(())
        })
    }

    /// Replace a user's password hash and revoke every token of the user in
    /// the same transaction (Keystone revokes a user's tokens when its
    /// password changes: whoever held the old password loses access); a
    /// login lockout is lifted too.
    pub async fn user_set_password(&self, id: &str, hash: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            // A new password also lifts a login lockout (as Keystone's reset does).
            let r = sqlx::query(
                "UPDATE users SET password_hash = $2, failed_auth_count = 0, failed_auth_at = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::User, id));
            }
            dbk::revoke_user_tokens(&mut tx, id).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Enable or disable a user. Disabling revokes every token of the user
    /// in the same transaction (Keystone does), so re-enabling it later
    /// revives none of them.
    pub async fn user_set_enabled(&self, id: &str, enabled: bool) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query("UPDATE users SET enabled = $2 WHERE id = $1")
                .bind(id)
                .bind(enabled)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::User, id));
            }
            if !enabled {
                dbk::revoke_user_tokens(&mut tx, id).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Delete a user, its assignments and its tokens.
    pub async fn user_delete(&self, id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            sqlx::query("DELETE FROM tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            let r = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::User, id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Create a role unless one with that name exists; returns the role.
    pub async fn role_ensure(&self, id: &str, name: &str) -> Result<RoleRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("INSERT INTO roles (id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(id)
                .bind(name)
                .execute(wp)
                .await?;
            self.role_find(name).await
        })
    }

    /// All roles.
    pub async fn role_list(&self) -> Result<Vec<RoleRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT id, name FROM roles ORDER BY name").fetch_all(rp).await?)
        })
    }

    /// A role by id or name.
    pub async fn role_find(&self, id_or_name: &str) -> Result<RoleRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as("SELECT id, name FROM roles WHERE id = $1 OR name = $1 LIMIT 1")
                .bind(id_or_name)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Role, id_or_name))
        })
    }

    /// Grant a role (idempotent).
    pub async fn assignment_put(&self, user_id: &str, project_id: &str, role_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query(
                "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(project_id)
            .bind(role_id)
            .execute(wp)
            .await?;
            Ok(())
        })
    }

    /// Revoke a role; `NotFound` if it was not granted.
    pub async fn assignment_delete(&self, user_id: &str, project_id: &str, role_id: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("DELETE FROM role_assignments WHERE user_id = $1 AND project_id = $2 AND role_id = $3")
                .bind(user_id)
                .bind(project_id)
                .bind(role_id)
                .execute(wp)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::RoleAssignment, format!("{user_id}/{project_id}/{role_id}")));
            }
            Ok(())
        })
    }

    /// Assignments, optionally filtered by user and/or project.
    pub async fn assignment_list(
        &self,
        user_id: Option<&str>,
        project_id: Option<&str>,
    ) -> Result<Vec<AssignmentRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT a.user_id, a.project_id, a.role_id, r.name AS role_name FROM role_assignments a JOIN roles r ON r.id = a.role_id WHERE ($1 IS NULL OR a.user_id = $1) AND ($2 IS NULL OR a.project_id = $2) ORDER BY a.project_id, a.user_id, r.name")
            .bind(user_id).bind(project_id).fetch_all(rp).await?)
        })
    }

    /// Store a token hash (unconditionally: bootstrap and tests; the
    /// identity service uses [`Datastore::token_insert_guarded`]).
    pub async fn token_insert(&self, t: &TokenRow) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query("INSERT INTO tokens (token_hash, user_id, project_id, audit_id, issued_at, expires_at, revoked, app_cred_id, system_scope) VALUES ($1,$2,$3,$4,$5,$6,FALSE,$7,$8)")
            .bind(&t.token_hash).bind(&t.user_id).bind(&t.project_id).bind(&t.audit_id).bind(ts(t.issued_at)).bind(ts(t.expires_at)).bind(&t.app_cred_id).bind(t.system_scope)
            .execute(wp).await?;
            Ok(())
        })
    }

    /// Store a token hash only if what it was issued on still holds when
    /// the row is written (`guard`), and the user is still enabled; `false`
    /// when it no longer holds (nothing is stored). Writes are serialized,
    /// so a password change, disable or revocation that commits while the
    /// token is being issued either sees the new row (and revokes it) or
    /// makes this insert refuse: no token outlives the revocation.
    pub async fn token_insert_guarded(&self, t: &TokenRow, guard: &TokenGuard<'_>) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let (cond, value) = match guard {
                TokenGuard::Password { password_hash } => (
                    "EXISTS (SELECT 1 FROM users WHERE id = $2 AND enabled = TRUE AND password_hash = $7)",
                    *password_hash,
                ),
                TokenGuard::Parent { token_hash } => (
                    "EXISTS (SELECT 1 FROM users WHERE id = $2 AND enabled = TRUE) AND EXISTS (SELECT 1 FROM tokens WHERE token_hash = $7 AND revoked = FALSE AND user_id = $2)",
                    *token_hash,
                ),
                TokenGuard::AppCred { id } => (
                    "EXISTS (SELECT 1 FROM users WHERE id = $2 AND enabled = TRUE) AND EXISTS (SELECT 1 FROM application_credentials WHERE id = $7 AND user_id = $2)",
                    *id,
                ),
            };
            let r = sqlx::query(&format!("INSERT INTO tokens (token_hash, user_id, project_id, audit_id, issued_at, expires_at, revoked, app_cred_id, system_scope) SELECT $1,$2,$3,$4,$5,$6,FALSE,$8,$9 WHERE {cond}"))
            .bind(&t.token_hash).bind(&t.user_id).bind(&t.project_id).bind(&t.audit_id).bind(ts(t.issued_at)).bind(ts(t.expires_at)).bind(value).bind(&t.app_cred_id).bind(t.system_scope)
            .execute(wp).await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// A token by hash (expiry and revocation are checked by the caller).
    pub async fn token_get(&self, token_hash: &str) -> Result<TokenRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as("SELECT token_hash, user_id, project_id, audit_id, issued_at, expires_at, revoked, app_cred_id, system_scope FROM tokens WHERE token_hash = $1")
            .bind(token_hash).fetch_optional(rp).await?
            .ok_or_else(|| DbError::not_found(RowKind::Token, token_hash))
        })
    }

    /// Revoke a token.
    pub async fn token_revoke(&self, token_hash: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = sqlx::query("UPDATE tokens SET revoked = TRUE WHERE token_hash = $1")
                .bind(token_hash)
                .execute(wp)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Token, token_hash));
            }
            Ok(())
        })
    }

    /// How many token rows are stored (live, revoked or expired): what the
    /// purge keeps bounded.
    pub async fn token_count(&self) -> Result<i64, DbError> {
        crate::with_db!(self, |wp, rp| { Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tokens").fetch_one(rp).await?) })
    }

    /// Forget at most `limit` tokens that expired before `before` (an
    /// expired token is refused whether stored or not); bounded so that the
    /// purge run at every issue costs little however large the backlog.
    pub async fn token_purge_expired(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query(
                "DELETE FROM tokens WHERE token_hash IN (SELECT token_hash FROM tokens WHERE expires_at < $1 LIMIT $2)",
            )
            .bind(ts(before))
            .bind(limit)
            .execute(wp)
            .await?
            .rows_affected())
        })
    }
}

crate::per_backend! {
/// Revoke every token of a user, inside the caller's transaction.
pub(crate) async fn revoke_user_tokens(conn: &mut dbk::Conn, user_id: &str) -> Result<u64, DbError> {
    Ok(sqlx::query("UPDATE tokens SET revoked = TRUE WHERE user_id = $1 AND revoked = FALSE")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected())
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    #[tokio::test]
    async fn project_names_are_unique_and_assignments_idempotent() {
        let (ds, _d) = store().await;
        let p = ProjectRow {
            id: "p1".into(),
            name: "demo".into(),
            domain_id: "default".into(),
            description: String::new(),
            enabled: true,
        };
        ds.project_create(&p).await.expect("create");
        assert!(matches!(
            ds.project_create(&ProjectRow { id: "p2".into(), ..p.clone() }).await,
            Err(DbError::Conflict { .. })
        ));
        let u = UserRow {
            id: "u1".into(),
            name: "demo".into(),
            domain_id: "default".into(),
            password_hash: "h".into(),
            email: None,
            default_project_id: None,
            enabled: true,
        };
        ds.user_create(&u).await.expect("user");
        let r = ds.role_ensure("r1", "member").await.expect("role");
        assert_eq!(ds.role_ensure("r2", "member").await.expect("again").id, r.id);
        ds.assignment_put("u1", "p1", &r.id).await.expect("grant");
        ds.assignment_put("u1", "p1", &r.id).await.expect("grant twice");
        let a = ds.assignment_list(Some("u1"), None).await.expect("list");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].role_name, "member");
        assert_eq!(ds.project_find("demo").await.expect("by name").id, "p1");
    }

    /// A token is stored only while what it was issued on still holds: a
    /// password change or a revoked parent that commits first makes the
    /// insert refuse, so no token outlives a revocation by racing it.
    #[tokio::test]
    async fn guarded_token_inserts_refuse_after_a_revocation() {
        let (ds, _d) = store().await;
        let u = UserRow {
            id: "u1".into(),
            name: "bob".into(),
            domain_id: "default".into(),
            password_hash: "h-old".into(),
            email: None,
            default_project_id: None,
            enabled: true,
        };
        ds.user_create(&u).await.expect("user");
        let now = Utc::now();
        let tok = |h: &str| TokenRow {
            token_hash: h.into(),
            user_id: "u1".into(),
            project_id: "p".into(),
            audit_id: "a".into(),
            issued_at: now,
            expires_at: now + chrono::Duration::hours(1),
            revoked: false,
            app_cred_id: None,
            system_scope: false,
        };
        let old = TokenGuard::Password { password_hash: "h-old" };
        assert!(ds.token_insert_guarded(&tok("t1"), &old).await.expect("insert"));
        assert!(ds.token_insert_guarded(&tok("t2"), &TokenGuard::Parent { token_hash: "t1" }).await.expect("child"));
        ds.user_set_password("u1", "h-new").await.expect("password");
        assert!(ds.token_get("t1").await.expect("t1").revoked && ds.token_get("t2").await.expect("t2").revoked);
        assert!(!ds.token_insert_guarded(&tok("t3"), &old).await.expect("stale hash"), "verified the old password");
        let parent = TokenGuard::Parent { token_hash: "t1" };
        assert!(!ds.token_insert_guarded(&tok("t4"), &parent).await.expect("revoked parent"));
        let new = TokenGuard::Password { password_hash: "h-new" };
        assert!(ds.token_insert_guarded(&tok("t5"), &new).await.expect("new hash"));
        ds.user_set_enabled("u1", false).await.expect("disable");
        assert!(ds.token_get("t5").await.expect("t5").revoked);
        assert!(!ds.token_insert_guarded(&tok("t6"), &new).await.expect("disabled"));
        ds.user_set_enabled("u1", true).await.expect("enable");
        assert!(ds.token_get("t5").await.expect("t5").revoked, "re-enabling revives nothing");
        for i in 0..5 {
            let mut t = tok(&format!("old-{i}"));
            t.expires_at = now - chrono::Duration::minutes(1);
            ds.token_insert(&t).await.expect("expired");
        }
        assert_eq!(ds.token_purge_expired(now, 3).await.expect("purge"), 3, "bounded");
        assert_eq!(ds.token_purge_expired(now, 3).await.expect("purge"), 2);
        assert_eq!(ds.token_count().await.expect("count"), 3, "t1, t2 and t5 stay");
    }
}
