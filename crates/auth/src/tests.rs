//! The identity service's rules, through its API over a temporary datastore:
//! who may do what, what is refused and with which error.

use crate::*;
use chrono::Duration;
use serde_json::json;
use std::path::PathBuf;
use stratus_api::identity::{
    AssignmentFilter, AuthMethod, ProjectCreate, ProjectFilter, ProjectUpdate, ScopeRequest, TokenRequest, UserCreate,
    UserFilter, UserUpdate,
};

/// An identity service with admin `admin/pw` on `admin` and member `demo/pw` on `demo`.
struct Fixture {
    id: Identity,
    clock: stratus_types::ManualClock,
    admin: AuthContext,
    member: AuthContext,
    dir: PathBuf,
    _db: stratus_db::testing::TestDb,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("stratus-auth-rules-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let clock = stratus_types::ManualClock::new(chrono::Utc::now());
    let (ds, db) = stratus_db::testing::fresh(std::sync::Arc::new(clock.clone())).await;
    let id = Identity::new(ds, Duration::hours(1));
    id.bootstrap_user("admin", "pw", "admin", ROLE_ADMIN, false).await.expect("admin");
    id.bootstrap_user("demo", "pw", "demo", ROLE_MEMBER, false).await.expect("demo");
    let admin = id.authenticate("admin", "pw", ProjectScope::Name("admin".into())).await.expect("login").context;
    let member = id.authenticate("demo", "pw", ProjectScope::Name("demo".into())).await.expect("login").context;
    Fixture { id, clock, admin, member, dir, _db: db }
}

fn forbidden(r: Result<impl std::fmt::Debug, AuthError>, rule: &str) {
    match r {
        Err(AuthError::Forbidden { action }) => assert_eq!(action, rule),
        other => panic!("expected Forbidden({rule}), got {other:?}"),
    }
}

fn bad_request(r: Result<impl std::fmt::Debug, AuthError>, msg: &str) {
    match r {
        Err(AuthError::BadRequest(m)) => assert_eq!(m, msg),
        other => panic!("expected BadRequest({msg}), got {other:?}"),
    }
}

fn project(name: &str) -> ProjectCreate {
    ProjectCreate { name: Some(name.into()), ..ProjectCreate::default() }
}

#[tokio::test]
async fn members_may_only_read_themselves() {
    let f = fixture().await;
    let (id, m) = (&f.id, &f.member);
    forbidden(id.list_projects(m, &ProjectFilter::default()).await, "list_projects");
    forbidden(id.create_project(m, project("mine")).await, "create_project");
    forbidden(id.get_project(m, &f.admin.project_id).await, "get_project");
    forbidden(id.delete_project(m, &m.project_id).await, "delete_project");
    forbidden(id.list_users(m, &UserFilter::default()).await, "list_users");
    forbidden(id.get_user(m, &f.admin.user_id).await, "get_user");
    forbidden(id.user_projects(m, &f.admin.user_id).await, "list_user_projects");
    forbidden(id.update_user(m, &m.user_id, &UserUpdate::default()).await, "update_user");
    forbidden(id.put_grant(m, &f.admin.project_id, &m.user_id, &m.role_ids[0]).await, "create_grant");
    forbidden(id.list_role_assignments(m, &AssignmentFilter::default()).await, "list_role_assignments");
    assert_eq!(id.get_project(m, &m.project_id).await.expect("own project").name, "demo");
    assert_eq!(id.get_user(m, &m.user_id).await.expect("self").name, "demo");
    assert_eq!(id.scopable_projects(m).await.expect("own projects").len(), 1);
}

#[tokio::test]
async fn projects_are_flat_named_unique_and_not_editable() {
    let f = fixture().await;
    let (id, a) = (&f.id, &f.admin);
    bad_request(id.create_project(a, project("  ")).await, "Expecting to find name in project.");
    let other_domain = ProjectCreate { domain_id: Some("other".into()), ..project("x") };
    bad_request(
        id.create_project(a, other_domain).await,
        "Could not find domain: other. Only the 'default' domain exists.",
    );
    let nested = ProjectCreate { parent_id: Some("p".into()), ..project("x") };
    bad_request(
        id.create_project(a, nested).await,
        "Hierarchical projects are not supported: parent_id must be the domain.",
    );
    // Keystone's tag rules: no '/' or ',' (tags themselves are stored now).
    let tagged = ProjectCreate { tags: Some(vec!["a/b".into()]), ..project("x") };
    bad_request(id.create_project(a, tagged).await, "Invalid input for field 'tags': 'a/b' contains '/' or ','.");
    let p = id.create_project(a, project(" web ")).await.expect("create");
    assert_eq!(p.name, "web");
    let dup = id.create_project(a, project("web")).await.expect_err("duplicate");
    assert!(matches!(dup, AuthError::Conflict { kind: ResourceKind::Project, .. }));
    assert_eq!(dup.to_string(), "project web already exists");

    let same = ProjectUpdate::from_body(json!({ "project": { "name": "web", "tags": [] } })).expect("body");
    assert_eq!(id.update_project(a, &p.id, &same).await.expect("no-op"), p);
    let change = ProjectUpdate::from_body(json!({ "project": { "enabled": false, "name": "w" } })).expect("body");
    bad_request(
        id.update_project(a, &p.id, &change).await,
        "Updating project attribute(s) name, enabled is not supported by Stratus.",
    );
    id.delete_project(a, &p.id).await.expect("delete");
    let gone = id.delete_project(a, &p.id).await.expect_err("gone");
    assert_eq!(gone.to_string(), format!("Could not find project: {}.", p.id));
}

#[tokio::test]
async fn users_change_only_their_password() {
    let f = fixture().await;
    let (id, a) = (&f.id, &f.admin);
    let unknown_project =
        UserCreate { name: Some("bob".into()), default_project_id: Some("nope".into()), ..UserCreate::default() };
    bad_request(id.create_user(a, unknown_project).await, "Could not find project: nope.");
    let empty_pw = UserCreate { name: Some("bob".into()), password: Some(String::new()), ..UserCreate::default() };
    bad_request(id.create_user(a, empty_pw).await, "Invalid input for field 'password': it must not be empty.");
    let u = id
        .create_user(a, UserCreate { name: Some("bob".into()), password: Some("old".into()), ..UserCreate::default() })
        .await
        .expect("create");
    let by_name = id.get_user(a, "bob").await.expect_err("ids only");
    assert!(matches!(by_name, AuthError::NotFound { kind: ResourceKind::User, .. }));

    let refused = UserUpdate::from_body(json!({ "user": { "password": "new", "email": "b@x" } })).expect("body");
    bad_request(
        id.update_user(a, &u.id, &refused).await,
        "Updating user attribute(s) email is not supported by Stratus; only the password and enabled can be changed.",
    );
    let not_bool = UserUpdate::from_body(json!({ "user": { "enabled": "no" } })).expect("body");
    bad_request(id.update_user(a, &u.id, &not_bool).await, "Invalid input for field 'enabled': expected a boolean.");
    let demo_project = &f.member.project_id;
    let member_role = &f.member.role_ids[0];
    id.put_grant(a, demo_project, &u.id, member_role).await.expect("grant");
    id.authenticate("bob", "old", ProjectScope::Default).await.expect("refused update wrote nothing");
    let pw = UserUpdate::from_body(json!({ "user": { "password": "new", "name": "bob" } })).expect("body");
    id.update_user(a, &u.id, &pw).await.expect("password");
    assert!(matches!(id.authenticate("bob", "old", ProjectScope::Default).await, Err(AuthError::InvalidCredentials)));
    id.authenticate("bob", "new", ProjectScope::Default).await.expect("new password");
    let blank = UserUpdate::from_body(json!({ "user": { "password": "" } })).expect("body");
    bad_request(
        id.update_user(a, &u.id, &blank).await,
        "Invalid input for field 'password': expected a non-empty string.",
    );
}

#[tokio::test]
async fn grants_decide_tokens_and_revoking_one_cuts_the_user_off() {
    let f = fixture().await;
    let (id, a, m) = (&f.id, &f.admin, &f.member);
    let member_role = &m.role_ids[0];
    let missing = id.put_grant(a, &m.project_id, &m.user_id, "nope").await.expect_err("role");
    assert_eq!(missing.to_string(), "Could not find role: nope.");
    let rescope = |t: &str, project: &str| TokenRequest {
        method: AuthMethod::Token { id: t.into() },
        scope: ScopeRequest::ProjectId(project.into()),
    };
    let t = id.authenticate("demo", "pw", ProjectScope::Default).await.expect("login");
    assert!(matches!(id.issue_token(rescope(&t.token, &a.project_id)).await, Err(AuthError::NoRoleOnProject { .. })));
    assert!(matches!(id.issue_token(rescope(&t.token, "nope")).await, Err(AuthError::InvalidCredentials)));
    assert!(matches!(
        id.check_grant(a, &a.project_id, &m.user_id, member_role).await,
        Err(AuthError::AssignmentNotFound { .. })
    ));
    id.put_grant(a, &a.project_id, &m.user_id, member_role).await.expect("grant");
    id.check_grant(a, &a.project_id, &m.user_id, member_role).await.expect("granted");
    let rescoped = id.issue_token(rescope(&t.token, &a.project_id)).await.expect("rescoped");
    assert_eq!(rescoped.context.project_name, "admin");
    let names = AssignmentFilter { user_id: Some(m.user_id.clone()), include_names: true, ..Default::default() };
    let rows = id.list_role_assignments(a, &names).await.expect("assignments");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.user_name.as_deref() == Some("demo") && r.project_name.is_some()));

    id.delete_grant(a, &a.project_id, &m.user_id, member_role).await.expect("revoke");
    let again = id.delete_grant(a, &a.project_id, &m.user_id, member_role).await.expect_err("not granted");
    assert_eq!(
        again.to_string(),
        format!(
            "Could not find role assignment with role: {member_role}, user: {}, project: {}.",
            m.user_id, a.project_id
        )
    );
    assert!(matches!(id.validate(&rescoped.token).await, Err(AuthError::InvalidToken)), "cache flushed");
}

#[tokio::test]
async fn subject_tokens_are_ones_own_unless_admin() {
    let f = fixture().await;
    let (id, a, m) = (&f.id, &f.admin, &f.member);
    let admin_token = id.authenticate("admin", "pw", ProjectScope::Default).await.expect("login").token;
    let demo_token = id.authenticate("demo", "pw", ProjectScope::Default).await.expect("login").token;
    forbidden(id.subject_token(m, &admin_token).await, "validate_token");
    assert_eq!(id.subject_token(a, &demo_token).await.expect("admin sees all").user_name, "demo");
    assert!(matches!(id.subject_token(a, "bogus").await, Err(AuthError::SubjectTokenNotFound)));
    id.revoke_subject_token(m, &demo_token).await.expect("own");
    assert!(matches!(id.revoke_subject_token(a, &demo_token).await, Err(AuthError::SubjectTokenNotFound)));
}

fn rescope(t: &str, project: &str) -> TokenRequest {
    TokenRequest { method: AuthMethod::Token { id: t.into() }, scope: ScopeRequest::ProjectId(project.into()) }
}

/// Keystone: a token obtained with the `token` method expires when the
/// token it came from expires (`expires_at` is carried over), so a stolen
/// token cannot be renewed forever by re-scoping it.
#[tokio::test]
async fn rescoped_tokens_keep_the_original_expiry() {
    let f = fixture().await;
    let (id, a, m) = (&f.id, &f.admin, &f.member);
    id.put_grant(a, &a.project_id, &m.user_id, &m.role_ids[0]).await.expect("grant");
    let t = id.authenticate("demo", "pw", ProjectScope::Default).await.expect("login");
    let original = id.validate(&t.token).await.expect("valid").expires_at;
    f.clock.advance(Duration::minutes(50));
    let r1 = id.issue_token(rescope(&t.token, &a.project_id)).await.expect("rescoped");
    assert_eq!(r1.context.expires_at, original, "the answer shows the original expiry");
    assert_eq!(id.validate(&r1.token).await.expect("valid").expires_at, original);
    // Re-scoping the re-scoped token again and again never extends it.
    let r2 = id.issue_token(rescope(&r1.token, &m.project_id)).await.expect("rescoped back");
    assert_eq!(id.validate(&r2.token).await.expect("valid").expires_at, original);
    f.clock.advance(Duration::minutes(11));
    for (what, tok) in [("original", &t.token), ("rescoped", &r1.token), ("rescoped twice", &r2.token)] {
        assert!(matches!(id.validate(tok).await, Err(AuthError::InvalidToken)), "{what} expired");
    }
    assert!(matches!(id.issue_token(rescope(&r2.token, &a.project_id)).await, Err(AuthError::InvalidToken)));
}

/// Keystone revokes a user's tokens when its password changes, when it is
/// disabled and when it is deleted: the old tokens stay dead even once the
/// user is enabled again.
#[tokio::test]
async fn password_change_disable_and_delete_revoke_the_users_tokens() {
    let f = fixture().await;
    let (id, a, m) = (&f.id, &f.admin, &f.member);
    let bob = UserCreate { name: Some("bob".into()), password: Some("old".into()), ..UserCreate::default() };
    let u = id.create_user(a, bob).await.expect("create");
    id.put_grant(a, &m.project_id, &u.id, &m.role_ids[0]).await.expect("grant");
    let admin_token = id.authenticate("admin", "pw", ProjectScope::Default).await.expect("admin login").token;

    let before = id.authenticate("bob", "old", ProjectScope::Default).await.expect("login").token;
    id.validate(&before).await.expect("valid and cached");
    let pw = UserUpdate::from_body(json!({ "user": { "password": "new" } })).expect("body");
    id.update_user(a, &u.id, &pw).await.expect("password");
    assert!(matches!(id.validate(&before).await, Err(AuthError::InvalidToken)), "password change revokes");
    assert!(matches!(id.issue_token(rescope(&before, &m.project_id)).await, Err(AuthError::InvalidToken)));
    id.validate(&admin_token).await.expect("other users keep theirs");

    let before = id.authenticate("bob", "new", ProjectScope::Default).await.expect("login").token;
    let off = UserUpdate::from_body(json!({ "user": { "enabled": false } })).expect("body");
    assert!(!id.update_user(a, &u.id, &off).await.expect("disable").enabled);
    assert!(matches!(id.validate(&before).await, Err(AuthError::InvalidToken)), "disable revokes");
    assert!(matches!(id.authenticate("bob", "new", ProjectScope::Default).await, Err(AuthError::InvalidCredentials)));
    let on = UserUpdate::from_body(json!({ "user": { "enabled": true } })).expect("body");
    assert!(id.update_user(a, &u.id, &on).await.expect("enable").enabled);
    assert!(matches!(id.validate(&before).await, Err(AuthError::InvalidToken)), "re-enabling revives nothing");

    let before = id.authenticate("bob", "new", ProjectScope::Default).await.expect("login again").token;
    id.validate(&before).await.expect("valid");
    id.delete_user(a, &u.id).await.expect("delete");
    assert!(matches!(id.validate(&before).await, Err(AuthError::InvalidToken)), "delete revokes");
    id.validate(&admin_token).await.expect("admin's token untouched");
}

/// Keystone's `token_flush`: expired tokens do not pile up. Every issue
/// purges a bounded batch of expired rows.
#[tokio::test]
async fn expired_tokens_are_purged_in_bounded_batches() {
    let f = fixture().await;
    let id = &f.id;
    let now = stratus_types::Clock::now(&f.clock);
    let row = |i: usize| stratus_db::TokenRow {
        token_hash: format!("stale-{i}"),
        user_id: f.member.user_id.clone(),
        project_id: f.member.project_id.clone(),
        audit_id: "a".into(),
        issued_at: now - Duration::hours(3),
        expires_at: now - Duration::hours(2),
        revoked: false,
        app_cred_id: None,
        system_scope: false,
    };
    let fixture_tokens = id.ds.token_count().await.expect("count");
    let stale = crate::tokens::PURGE_BATCH * 2 + 5;
    for i in 0..stale {
        id.ds.token_insert(&row(i)).await.expect("stale row");
    }
    let live = id.authenticate("demo", "pw", ProjectScope::Default).await.expect("login").token;
    let expected = fixture_tokens + i64::try_from(stale - crate::tokens::PURGE_BATCH + 1).expect("small");
    assert_eq!(id.ds.token_count().await.expect("count"), expected, "one batch purged");
    id.issue_token(rescope(&live, &f.member.project_id)).await.expect("rescope");
    id.issue_token(rescope(&live, &f.member.project_id)).await.expect("rescope");
    // Everything stale is gone; the live token and its two children stay.
    assert_eq!(id.ds.token_count().await.expect("count"), fixture_tokens + 3);
    id.validate(&live).await.expect("live token untouched");
}

/// Keystone keeps `failed_auth_count` in the database: with two API
/// processes (two identity services on one datastore) the failures made on
/// one lock the account on the other, a success clears them, and a new
/// password set by an administrator lifts the lock.
#[tokio::test]
async fn failed_logins_are_counted_across_api_processes() {
    let f = fixture().await;
    let limits = crate::LoginLimits { lockout_failure_attempts: 3, ..crate::LoginLimits::default() };
    let a = f.id.clone().with_login_limits(limits.clone());
    let b = f.id.clone().with_login_limits(limits);
    let scope = || ProjectScope::Name("demo".into());
    assert!(matches!(a.authenticate("demo", "bad", scope()).await, Err(AuthError::InvalidCredentials)));
    assert!(matches!(b.authenticate("demo", "bad", scope()).await, Err(AuthError::InvalidCredentials)));
    assert!(b.authenticate("demo", "pw", scope()).await.is_ok(), "two failures do not lock");
    // The success cleared them: three more in a row, spread over both.
    for svc in [&a, &b, &a] {
        assert!(matches!(svc.authenticate("demo", "bad", scope()).await, Err(AuthError::InvalidCredentials)));
    }
    assert!(matches!(b.authenticate("demo", "pw", scope()).await, Err(AuthError::AccountLocked { .. })));
    assert!(matches!(a.authenticate("demo", "pw", scope()).await, Err(AuthError::AccountLocked { .. })));
    f.clock.advance(Duration::minutes(31));
    assert!(a.authenticate("demo", "pw", scope()).await.is_ok(), "the lock expires");
    for _ in 0..3 {
        let _ = b.authenticate("demo", "bad", scope()).await;
    }
    assert!(matches!(a.authenticate("demo", "pw", scope()).await, Err(AuthError::AccountLocked { .. })));
    let demo = f.id.ds.user_find("demo").await.expect("demo");
    f.id.ds.user_set_password(&demo.id, &crate::hash_password("pw2").expect("hash")).await.expect("reset");
    assert!(b.authenticate("demo", "pw2", scope()).await.is_ok(), "a new password lifts the lock");
}
