//! Servers, their ports (fixed IPs) and quota usage by counting.

use crate::sql::{list, lit};
use crate::{Cas, Datastore, DbError, NewOperation, OperationRow, RowKind, ts};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder};
use stratus_types::{ImageId, PortId, ServerId};
use stratus_types::{MigrationStatus, OpKind, OpState, PowerState, TaskState, VmState};

/// A server row.
#[derive(Clone, Debug, FromRow)]
pub struct ServerRow {
    /// Server id (UUID).
    pub id: ServerId,
    /// Display name.
    pub name: String,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Image booted from.
    pub image_id: Option<ImageId>,
    /// Flavor id at boot.
    pub flavor_id: String,
    /// Flavor name (snapshot, flavors may change).
    pub flavor_name: String,
    /// vCPUs of the flavor snapshot.
    pub vcpus: i64,
    /// RAM MiB of the flavor snapshot.
    pub ram_mb: i64,
    /// Root disk GiB of the flavor snapshot.
    pub disk_gb: i64,
    /// Ephemeral GiB.
    pub ephemeral_gb: i64,
    /// Swap MiB.
    pub swap_mb: i64,
    /// See [`VmState`].
    pub vm_state: VmState,
    /// See [`TaskState`].
    pub task_state: Option<TaskState>,
    /// See [`PowerState`] (stored as Nova's integer code).
    #[sqlx(try_from = "i64")]
    pub power_state: PowerState,
    /// Compute host, once scheduled.
    pub host: Option<String>,
    /// User metadata, JSON object of strings.
    pub metadata: String,
    /// Key pair name.
    pub key_name: Option<String>,
    /// Locked servers refuse changes from non-admins.
    pub locked: bool,
    /// `owner` or `admin`.
    pub locked_by: Option<stratus_types::LockedBy>,
    /// Why it was locked (2.73).
    pub locked_reason: Option<String>,
    /// Availability zone asked for or given.
    pub availability_zone: Option<String>,
    /// Reservation id (`r-...`).
    pub reservation_id: String,
    /// Sanitised host name.
    pub hostname: String,
    /// Last fault, JSON `{code, message, created}`.
    pub fault: Option<String>,
    /// Progress percent.
    pub progress: i64,
    /// Bumped on every state change.
    pub generation: i64,
    /// When it first became active.
    #[sqlx(try_from = "crate::OptTsText")]
    pub launched_at: Option<DateTime<Utc>>,
    /// When it was terminated.
    #[sqlx(try_from = "crate::OptTsText")]
    pub terminated_at: Option<DateTime<Utc>>,
    /// Creation time.
    #[sqlx(try_from = "crate::TsText")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[sqlx(try_from = "crate::TsText")]
    pub updated_at: DateTime<Utc>,
    /// Deletion time.
    #[sqlx(try_from = "crate::OptTsText")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Deleted rows stay for instance actions and audit.
    pub deleted: bool,
    /// Snapshot taken by shelve, deleted on unshelve or delete.
    pub shelved_image_id: Option<ImageId>,
    /// Free-text description (microversion 2.19); `None` when not given.
    pub description: Option<String>,
    /// User data as sent (base64) at create or rebuild; `None` when none.
    pub user_data: Option<String>,
    /// Scheduler hints given at create, a JSON object; `None` when none.
    pub scheduler_hints: Option<String>,
    /// Nova's `accessIPv4` (normalised), when set.
    pub access_ip_v4: Option<String>,
    /// Nova's `accessIPv6` (normalised), when set.
    pub access_ip_v6: Option<String>,
}

/// A port: the fixed IP a server holds on the internal network.
#[derive(Clone, Debug, FromRow)]
pub struct PortRow {
    /// Port id.
    pub id: PortId,
    /// Owning server.
    pub server_id: ServerId,
    /// Network name (`private`).
    pub network: String,
    /// IPv4 address.
    pub ip: String,
    /// MAC address.
    pub mac: String,
    /// Its security groups' names, as the JSON array stored (see
    /// [`PortRow::security_groups`]).
    pub security_groups_json: String,
}

impl PortRow {
    /// The names of the port's security groups (none if the stored value
    /// is not a JSON array of strings, which only this crate writes).
    pub fn security_groups(&self) -> Vec<String> {
        serde_json::from_str(&self.security_groups_json).unwrap_or_default()
    }
}

/// What the API asks for when creating a server.
#[derive(Clone, Debug)]
pub struct NewServer {
    /// The row to insert (states as given).
    pub row: ServerRow,
    /// Allocate a fixed IP (`networks: auto`).
    pub allocate_port: bool,
    /// Tags given at create (microversion 2.52), already checked.
    pub tags: Vec<String>,
    /// The create operation to record in the same transaction.
    pub operation: NewOperation,
}

/// Per-project limits; `-1` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Servers.
    pub instances: i64,
    /// vCPUs.
    pub cores: i64,
    /// RAM MiB.
    pub ram: i64,
    /// Metadata entries per server.
    pub metadata_items: i64,
    /// Key pairs per user.
    pub key_pairs: i64,
    /// Server groups per project.
    pub server_groups: i64,
    /// Servers per server group.
    pub server_group_members: i64,
    /// Injected files per server (personality; accepted up to 2.56).
    pub injected_files: i64,
    /// Bytes per injected file.
    pub injected_file_content_bytes: i64,
    /// Characters of an injected file's path.
    pub injected_file_path_bytes: i64,
    /// Legacy nova-network quota: fixed IPs. Nova (with Neutron) still
    /// stores and shows it up to microversion 2.35 but never enforces it;
    /// neither does Stratus.
    pub fixed_ips: i64,
    /// Legacy nova-network quota: floating IPs (shown, never enforced).
    pub floating_ips: i64,
    /// Legacy nova-network quota: security groups (shown, never enforced).
    pub security_groups: i64,
    /// Legacy nova-network quota: security group rules (shown, never enforced).
    pub security_group_rules: i64,
}

impl QuotaLimits {
    /// Nova's defaults (`[quota]` in nova.conf), so that clients see the
    /// numbers they expect from any OpenStack cloud.
    pub const NOVA_DEFAULTS: QuotaLimits = QuotaLimits {
        instances: 10,
        cores: 20,
        ram: 51200,
        metadata_items: 128,
        key_pairs: 100,
        server_groups: 10,
        server_group_members: 10,
        injected_files: 5,
        injected_file_content_bytes: 10240,
        injected_file_path_bytes: 255,
        // Nova registers the legacy network resources without a default
        // since nova-network left: unlimited.
        fixed_ips: -1,
        floating_ips: -1,
        security_groups: -1,
        security_group_rules: -1,
    };

    /// No limit on anything (tests, benchmarks).
    pub const UNLIMITED: QuotaLimits = QuotaLimits {
        instances: -1,
        cores: -1,
        ram: -1,
        metadata_items: -1,
        key_pairs: -1,
        server_groups: -1,
        server_group_members: -1,
        injected_files: -1,
        injected_file_content_bytes: -1,
        injected_file_path_bytes: -1,
        fixed_ips: -1,
        floating_ips: -1,
        security_groups: -1,
        security_group_rules: -1,
    };

    /// The resource names a quota set carries, in Nova's spelling.
    pub const RESOURCES: [&'static str; 14] = [
        "instances",
        "cores",
        "ram",
        "metadata_items",
        "key_pairs",
        "server_groups",
        "server_group_members",
        "injected_files",
        "injected_file_content_bytes",
        "injected_file_path_bytes",
        "fixed_ips",
        "floating_ips",
        "security_groups",
        "security_group_rules",
    ];

    /// The limit named `resource` (a name of [`Self::RESOURCES`]).
    pub fn get(&self, resource: &str) -> Option<i64> {
        Some(*self.field(resource)?)
    }

    /// Set the limit named `resource`; false if no such resource.
    pub fn set(&mut self, resource: &str, limit: i64) -> bool {
        match self.field_mut(resource) {
            Some(f) => {
                *f = limit;
                true
            }
            None => false,
        }
    }

    fn field(&self, resource: &str) -> Option<&i64> {
        Some(match resource {
            "instances" => &self.instances,
            "cores" => &self.cores,
            "ram" => &self.ram,
            "metadata_items" => &self.metadata_items,
            "key_pairs" => &self.key_pairs,
            "server_groups" => &self.server_groups,
            "server_group_members" => &self.server_group_members,
            "injected_files" => &self.injected_files,
            "injected_file_content_bytes" => &self.injected_file_content_bytes,
            "injected_file_path_bytes" => &self.injected_file_path_bytes,
            "fixed_ips" => &self.fixed_ips,
            "floating_ips" => &self.floating_ips,
            "security_groups" => &self.security_groups,
            "security_group_rules" => &self.security_group_rules,
            _ => return None,
        })
    }

    fn field_mut(&mut self, resource: &str) -> Option<&mut i64> {
        Some(match resource {
            "instances" => &mut self.instances,
            "cores" => &mut self.cores,
            "ram" => &mut self.ram,
            "metadata_items" => &mut self.metadata_items,
            "key_pairs" => &mut self.key_pairs,
            "server_groups" => &mut self.server_groups,
            "server_group_members" => &mut self.server_group_members,
            "injected_files" => &mut self.injected_files,
            "injected_file_content_bytes" => &mut self.injected_file_content_bytes,
            "injected_file_path_bytes" => &mut self.injected_file_path_bytes,
            "fixed_ips" => &mut self.fixed_ips,
            "floating_ips" => &mut self.floating_ips,
            "security_groups" => &mut self.security_groups,
            "security_group_rules" => &mut self.security_group_rules,
            _ => return None,
        })
    }
}

/// Usage counted from live rows (never from reservations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Servers.
    pub instances: i64,
    /// vCPUs.
    pub cores: i64,
    /// RAM MiB.
    pub ram: i64,
}

/// Why a create was refused for quota, in Nova's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// Resources over, e.g. `["instances"]`.
    pub overs: Vec<&'static str>,
    /// Requested amounts, per resource in `overs`.
    pub requested: Vec<i64>,
    /// Used amounts.
    pub used: Vec<i64>,
    /// Limits.
    pub allowed: Vec<i64>,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |v: &[i64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
        let overs = self.overs.join(", ");
        write!(
            f,
            "Quota exceeded for {overs}: Requested {}, but already used {} of {} {overs}",
            join(&self.requested),
            join(&self.used),
            join(&self.allowed)
        )
    }
}

/// Would `used + requested` exceed `limit` (-1: unlimited)? Checked: a
/// sum that would overflow exceeds every limit (a wrapped sum once let a
/// huge request pass the quota).
pub fn exceeds(used: i64, requested: i64, limit: i64) -> bool {
    limit >= 0 && used.checked_add(requested).is_none_or(|total| total > limit)
}

/// An SQL `TOTAL()` (a float, so the sum itself cannot overflow) as a
/// quota count, saturated at the `i64` bounds; exact below 2^53.
pub(crate) fn saturating_total(total: f64) -> i64 {
    // `as` saturates (and maps NaN to 0) for float to integer.
    total as i64
}

/// A server as the list index shows it.
#[derive(Clone, Debug, FromRow)]
pub struct ServerBrief {
    /// Server id.
    pub id: ServerId,
    /// Display name.
    pub name: String,
}

/// What [`Datastore::server_tag_add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagAdded {
    /// The tag is new on the server (Nova answers 201).
    Added,
    /// The server already had it (Nova answers 204).
    AlreadyThere,
    /// Refused: the server already holds the maximum number of tags.
    TooMany,
}

/// Filters of `GET /servers`.
#[derive(Clone, Debug, Default)]
pub struct ServerFilter {
    /// Restrict to one project (`None` = all, admins only).
    pub project_id: Option<String>,
    /// Regular expression the name must match (Nova's `name` filter; the
    /// API escapes text that is not a valid expression).
    pub name: Option<String>,
    /// Flavor id.
    pub flavor_id: Option<String>,
    /// Image id.
    pub image_id: Option<String>,
    /// Allowed vm_states (from `status`).
    pub vm_states: Option<Vec<VmState>>,
    /// Host (admins).
    pub host: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Return rows after this server id.
    pub marker: Option<ServerId>,
    /// `tags`: servers holding every one of these (2.26).
    pub tags_all: Vec<String>,
    /// `tags-any`: servers holding at least one of these (2.26).
    pub tags_any: Vec<String>,
    /// `not-tags`: servers not holding all of these together (2.26).
    pub not_tags: Vec<String>,
    /// `not-tags-any`: servers holding none of these (2.26).
    pub not_tags_any: Vec<String>,
    /// Only locked (`true`) or unlocked (`false`) servers (2.73).
    pub locked: Option<bool>,
    /// Changed at or after this time (`changes-since`).
    pub changes_since: Option<DateTime<Utc>>,
    /// Changed at or before this time (`changes-before`, 2.66).
    pub changes_before: Option<DateTime<Utc>>,
    /// Deleted servers too (Nova: with `changes-since` or `changes-before`).
    pub include_deleted: bool,
    /// Column filters (Nova's `user_id`, `vm_state`, `key_name`, ...).
    pub columns: Vec<(ServerColumn, String)>,
}

/// A server column a list may filter on, and how Nova matches it: exactly
/// (`user_id`, `vm_state`, `task_state`) or by regular expression (the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerColumn {
    /// `user_id`, exact.
    UserId,
    /// `vm_state`, exact.
    VmState,
    /// `task_state`, exact.
    TaskState,
    /// `key_name`, regex.
    KeyName,
    /// `availability_zone`, regex.
    AvailabilityZone,
    /// `hostname`, regex.
    Hostname,
    /// `power_state` (its code), regex.
    PowerState,
    /// `progress`, regex.
    Progress,
    /// `created_at`, regex over the stored time.
    CreatedAt,
    /// `launched_at`, regex over the stored time.
    LaunchedAt,
    /// `terminated_at`, regex over the stored time.
    TerminatedAt,
}

impl ServerColumn {
    /// The SQL this filter compares, and whether it matches exactly.
    fn sql(self) -> (&'static str, bool) {
        match self {
            Self::UserId => ("user_id", true),
            Self::VmState => ("vm_state", true),
            Self::TaskState => ("task_state", true),
            Self::KeyName => ("key_name", false),
            Self::AvailabilityZone => ("availability_zone", false),
            Self::Hostname => ("hostname", false),
            Self::PowerState => ("CAST(power_state AS TEXT)", false),
            Self::Progress => ("CAST(progress AS TEXT)", false),
            Self::CreatedAt => ("created_at", false),
            Self::LaunchedAt => ("launched_at", false),
            Self::TerminatedAt => ("terminated_at", false),
        }
    }
}

/// Which state a transition expects, and what it sets.
#[derive(Clone, Debug, Default)]
pub struct Transition {
    /// Expected vm_states (empty = any).
    pub from_vm: Vec<VmState>,
    /// Expected task_state (`None` = any except `deleting`).
    pub from_task: Option<Option<TaskState>>,
    /// New vm_state.
    pub vm: Option<VmState>,
    /// New task_state (`Some(None)` clears it).
    pub task: Option<Option<TaskState>>,
    /// New power state.
    pub power: Option<i64>,
    /// New host (`Some(None)` clears it).
    pub host: Option<Option<String>>,
    /// Set `launched_at` to now.
    pub launched: bool,
    /// New fault JSON.
    pub fault: Option<String>,
    /// New lock settings: (locked, by, reason).
    pub lock: Option<(bool, Option<stratus_types::LockedBy>, Option<String>)>,
    /// Set (`Some(true)`: now) or clear the soft-delete time.
    pub soft_deleted: Option<bool>,
    /// Set or clear the shelve snapshot.
    pub shelved_image: Option<Option<ImageId>>,
    /// Switch the flavor snapshot (resize, revert).
    pub flavor: Option<crate::FlavorRow>,
    /// Set the image the server runs (rebuild).
    pub image: Option<ImageId>,
}

pub(crate) const SERVER_COLS: &str = "id, name, project_id, user_id, image_id, flavor_id, flavor_name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, vm_state, task_state, power_state, host, metadata, key_name, locked, locked_by, locked_reason, availability_zone, reservation_id, hostname, fault, progress, generation, launched_at, terminated_at, created_at, updated_at, deleted_at, deleted, shelved_image_id, description, user_data, scheduler_hints, access_ip_v4, access_ip_v6";

/// A live server by id ($1); the SQL both backends run, built once.
static SERVER_GET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {SERVER_COLS} FROM servers WHERE id = $1 AND deleted = FALSE"));

/// [`Datastore::server_delete_view`]'s query ($1 server), built once.
static SERVER_DELETE_VIEW: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {SERVER_COLS}, \
         EXISTS (SELECT 1 FROM migrations m WHERE m.server_id = servers.id AND m.status IN ({open})) AS moving, \
         EXISTS (SELECT 1 FROM volume_attachments a WHERE a.server_id = servers.id AND a.deleted = FALSE) AS attached \
         FROM servers WHERE id = $1",
        open = list(&MigrationStatus::OPEN)
    )
});

/// First usable address index of the internal network 10.0.0.0/16.
const FIRST_IP_INDEX: i64 = 2;
/// Last usable address index.
const LAST_IP_INDEX: i64 = 65534;

impl Datastore {
    /// Create a server, its port, its `create` instance action and its create
    /// operation in one transaction, refusing it if the project's counted
    /// usage plus this server would exceed `limits`.
    pub async fn server_create(
        &self,
        new: &NewServer,
        limits: QuotaLimits,
    ) -> Result<(ServerRow, OperationRow), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = &new.row;
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let usage = dbk::quota_usage_tx(&mut tx, &r.project_id).await?;
            let mut ex = QuotaExceeded { overs: vec![], requested: vec![], used: vec![], allowed: vec![] };
            for (name, req, used, lim) in [
                ("instances", 1, usage.instances, limits.instances),
                ("cores", r.vcpus, usage.cores, limits.cores),
                ("ram", r.ram_mb, usage.ram, limits.ram),
            ] {
                if exceeds(used, req, lim) {
                    ex.overs.push(name);
                    ex.requested.push(req);
                    ex.used.push(used);
                    ex.allowed.push(lim);
                }
            }
            if !ex.overs.is_empty() {
                return Err(DbError::QuotaExceeded(ex));
            }
            sqlx::query(&format!("INSERT INTO servers ({SERVER_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$30,NULL,FALSE,NULL,$31,$32,$33,$34,$35)"))
            .bind(r.id).bind(&r.name).bind(&r.project_id).bind(&r.user_id).bind(r.image_id).bind(&r.flavor_id).bind(&r.flavor_name)
            .bind(r.vcpus).bind(r.ram_mb).bind(r.disk_gb).bind(r.ephemeral_gb).bind(r.swap_mb).bind(r.vm_state).bind(r.task_state)
            .bind(r.power_state.code()).bind(&r.host).bind(&r.metadata).bind(&r.key_name).bind(r.locked).bind(r.locked_by).bind(&r.locked_reason)
            .bind(&r.availability_zone).bind(&r.reservation_id).bind(&r.hostname).bind(&r.fault).bind(r.progress).bind(r.generation)
            .bind(r.launched_at.map(ts)).bind(r.terminated_at.map(ts)).bind(&now).bind(&r.description).bind(&r.user_data).bind(&r.scheduler_hints)
            .bind(&r.access_ip_v4).bind(&r.access_ip_v6)
            .execute(&mut *tx).await?;
            for tag in &new.tags {
                sqlx::query("INSERT INTO server_tags (server_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(r.id)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
            }
            if new.allocate_port {
                dbk::allocate_port_tx(&mut tx, &r.id, &now).await?;
            }
            dbk::action_create_tx(
                &mut tx,
                &r.id,
                &new.operation.request_id,
                "create",
                &new.operation.user_id,
                &new.operation.project_id,
                &now,
            )
            .await?;
            let op = dbk::op_insert_tx(&mut tx, &new.operation, &now).await?;
            tx.commit().await?;
            let row = self.server_get_any(&r.id).await?;
            Ok((row, op))
        })
    }

    /// A live (not deleted) server.
    pub async fn server_get(&self, id: &ServerId) -> Result<ServerRow, DbError> {
        if let crate::backend::Pools::Sqlite { write, sync, direct, .. } = &self.pools {
            let key = id.to_string();
            let row = direct.run(|c| crate::direct_read::one(c, &SERVER_GET, &[&key], crate::direct_read::server_row));
            let row = sync.wait(write).await.and(row)?;
            return row.ok_or_else(|| DbError::not_found(RowKind::Server, id));
        }
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&SERVER_GET)
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Server, id))
        })
    }

    /// A server whether deleted or not (instance actions, audit, operations).
    pub async fn server_get_any(&self, id: &ServerId) -> Result<ServerRow, DbError> {
        crate::with_db!(self, |wp, rp| {
            sqlx::query_as(&format!("SELECT {SERVER_COLS} FROM servers WHERE id = $1"))
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Server, id))
        })
    }

    /// A server (deleted or not) with what the delete operation decides on:
    /// whether a move (resize, migration) is open and whether volumes are
    /// attached, in one query instead of three (it runs once per delete).
    pub async fn server_delete_view(&self, id: &ServerId) -> Result<(ServerRow, bool, bool), DbError> {
        let sql = &*SERVER_DELETE_VIEW;
        if let crate::backend::Pools::Sqlite { write, sync, direct, .. } = &self.pools {
            let key = id.to_string();
            let view = |r: &rusqlite::Row<'_>| -> Result<(ServerRow, bool, bool), DbError> {
                Ok((crate::direct_read::server_row(r)?, r.get(39)?, r.get(40)?))
            };
            let row = direct.run(|c| crate::direct_read::one(c, sql, &[&key], view));
            let row = sync.wait(write).await.and(row)?;
            return row.ok_or_else(|| DbError::not_found(RowKind::Server, id));
        }
        crate::with_db!(self, |wp, rp| {
            use sqlx::Row;
            let row = sqlx::query(sql)
                .bind(id)
                .fetch_optional(rp)
                .await?
                .ok_or_else(|| DbError::not_found(RowKind::Server, id))?;
            Ok((ServerRow::from_row(&row)?, row.try_get("moving")?, row.try_get("attached")?))
        })
    }

    /// Live servers matching `f`, newest first (Nova's default sort).
    pub async fn server_list(&self, f: &ServerFilter) -> Result<Vec<ServerRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(dbk::server_list_query(SERVER_COLS, f).build_query_as().fetch_all(rp).await?)
        })
    }

    /// `GET /servers` (the index): only what its view shows, id and name,
    /// for the same filters and order as [`Datastore::server_list`] (a
    /// client polling the index for many deletes must not pay for whole rows).
    pub async fn server_list_brief(&self, f: &ServerFilter) -> Result<Vec<ServerBrief>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(dbk::server_list_query("id, name", f).build_query_as().fetch_all(rp).await?)
        })
    }

    /// Does a live server with this id exist? (Marker validation.)
    pub async fn server_exists(&self, id: &ServerId) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r: Option<(String,)> =
                sqlx::query_as("SELECT id FROM servers WHERE id = $1").bind(id).fetch_optional(rp).await?;
            Ok(r.is_some())
        })
    }

    /// Compare-and-swap a server's state. A transition that does not itself
    /// expect `deleting` never applies to a server being deleted, so nothing
    /// can clear the delete flag (Nova bug 1848666 is impossible here).
    pub async fn server_transition(&self, id: &ServerId, t: &Transition) -> Result<Cas, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut q = dbk::transition_query(id, t, self.now());
            let r = dbk::exec(wp, q.build()).await?;
            if r.rows_affected() == 1 {
                return Ok(Cas::Updated);
            }
            let cur = match self.server_get_any(id).await {
                Ok(c) => c,
                Err(DbError::NotFound { .. }) => return Ok(Cas::Conflict),
                Err(e) => return Err(e),
            };
            let same_vm = t.vm.is_none_or(|v| v == cur.vm_state);
            let same_task = t.task.is_none_or(|x| x == cur.task_state);
            Ok(if !cur.deleted && same_vm && same_task { Cas::AlreadySo } else { Cas::Conflict })
        })
    }

    /// Place a scheduled server on `host` (the transition `t`, which sets
    /// the host) only if the host still has room for `need` (vCPUs, RAM MiB,
    /// disk GiB) within `capacity`, counted in the same transaction: two
    /// controllers that picked the same last slot cannot both take it
    /// (one write transaction at a time on either backend: the second sees
    /// the first's placement). `None`: the host is full now.
    pub async fn server_place(
        &self,
        id: &ServerId,
        t: &Transition,
        host: &str,
        capacity: crate::HostCapacity,
        need: (i64, i64, i64),
    ) -> Result<Option<Cas>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let (c, r, d): (i64, i64, i64) = sqlx::query_as(&format!(
                "SELECT CAST(COALESCE(SUM(c), 0) AS BIGINT), CAST(COALESCE(SUM(r), 0) AS BIGINT), CAST(COALESCE(SUM(d), 0) AS BIGINT) FROM (
                   SELECT vcpus AS c, ram_mb AS r, disk_gb + ephemeral_gb AS d FROM servers WHERE deleted = FALSE AND host = $1 AND id <> $2
                   UNION ALL SELECT vcpus, ram_mb, disk_gb FROM zombies WHERE host = $1
                   UNION ALL SELECT old_vcpus, old_ram_mb, old_disk_gb FROM migrations WHERE status = {finished} AND source_host = $1) AS used",
                finished = lit(MigrationStatus::Finished)
            ))
            .bind(host)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let fits = !crate::exceeds(c, need.0, capacity.vcpus)
                && !crate::exceeds(r, need.1, capacity.memory_mb)
                && !crate::exceeds(d, need.2, capacity.disk_gb);
            if !fits {
                return Ok(None);
            }
            let res = dbk::transition_query(id, t, self.now()).build().execute(&mut *tx).await?;
            tx.commit().await?;
            if res.rows_affected() == 1 {
                return Ok(Some(Cas::Updated));
            }
            let cur = match self.server_get_any(id).await {
                Ok(c) => c,
                Err(DbError::NotFound { .. }) => return Ok(Some(Cas::Conflict)),
                Err(e) => return Err(e),
            };
            let same = t.task.is_none_or(|x| x == cur.task_state) && t.host.as_ref().is_none_or(|h| *h == cur.host);
            Ok(Some(if !cur.deleted && same { Cas::AlreadySo } else { Cas::Conflict }))
        })
    }

    /// Soft-deleted servers whose soft delete is older than `before` (reclaim).
    pub async fn server_list_reclaimable(&self, before: DateTime<Utc>) -> Result<Vec<ServerRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {SERVER_COLS} FROM servers WHERE deleted = FALSE AND vm_state = {soft_deleted} AND task_state IS NULL AND deleted_at < $1", soft_deleted = lit(VmState::SoftDeleted)))
            .bind(ts(before)).fetch_all(rp).await?)
        })
    }

    /// Shelved (not offloaded) servers idle since before `before`.
    pub async fn server_list_shelved_before(&self, before: DateTime<Utc>) -> Result<Vec<ServerRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {SERVER_COLS} FROM servers WHERE deleted = FALSE AND vm_state = {shelved} AND task_state IS NULL AND updated_at < $1", shelved = lit(VmState::Shelved)))
            .bind(ts(before)).fetch_all(rp).await?)
        })
    }

    /// Live servers marked `deleting` with no open delete operation: stuck (audit).
    pub async fn server_list_stuck_deleting(&self) -> Result<Vec<ServerRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT {SERVER_COLS} FROM servers s WHERE deleted = FALSE AND task_state = {deleting}
              AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.server_id = s.id AND o.kind = {delete} AND o.state IN ({op_open}))", deleting = lit(TaskState::Deleting), delete = lit(OpKind::Delete), op_open = list(&OpState::OPEN)))
            .fetch_all(rp).await?)
        })
    }

    /// Deleted servers whose shelve snapshot image still exists (audit).
    pub async fn server_list_leaked_shelve_images(&self) -> Result<Vec<(ServerId, ImageId)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT s.id, s.shelved_image_id FROM servers s JOIN images i ON i.id = s.shelved_image_id WHERE s.deleted = TRUE")
            .fetch_all(rp).await?)
        })
    }

    /// Deleted servers whose delete did not record `instance.delete.end` (audit).
    pub async fn server_list_deleted_without_end_notification(&self) -> Result<Vec<ServerId>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(ServerId,)> = sqlx::query_as("SELECT s.id FROM servers s WHERE s.deleted = TRUE
              AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.event_type = 'instance.delete.end' AND n.dedup_key LIKE s.id || ':%')")
            .fetch_all(rp).await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// Set a live server's description (2.19; `None` clears it).
    pub async fn server_set_description(&self, id: &ServerId, description: Option<&str>) -> Result<(), DbError> {
        self.server_set_text(id, "description", description).await
    }

    /// Set a live server's key pair name (rebuild at 2.54; `None` unsets it).
    pub async fn server_set_key_name(&self, id: &ServerId, key_name: Option<&str>) -> Result<(), DbError> {
        self.server_set_text(id, "key_name", key_name).await
    }

    /// Set a live server's user data (rebuild at 2.57; `None` clears it).
    pub async fn server_set_user_data(&self, id: &ServerId, user_data: Option<&str>) -> Result<(), DbError> {
        self.server_set_text(id, "user_data", user_data).await
    }

    /// Pin a live server to an availability zone, or unpin it (`None`):
    /// where its next scheduling (an unshelve, 2.77 and 2.91) may place it.
    pub async fn server_set_availability_zone(&self, id: &ServerId, zone: Option<&str>) -> Result<(), DbError> {
        self.server_set_text(id, "availability_zone", zone).await
    }

    /// Set a live server's guest host name (2.90: create, update, rebuild).
    pub async fn server_set_hostname(&self, id: &ServerId, hostname: &str) -> Result<(), DbError> {
        self.server_set_text(id, "hostname", Some(hostname)).await
    }

    /// Set one nullable text column of a live server (`column` is one of
    /// this module's fixed names, never caller text).
    /// Set a live server's access addresses (Nova's `accessIPv4`/`accessIPv6`,
    /// at update or rebuild): each one given replaces the stored one.
    pub async fn server_set_access_ips(
        &self,
        id: &ServerId,
        v4: Option<&str>,
        v6: Option<&str>,
    ) -> Result<(), DbError> {
        if let Some(v4) = v4 {
            self.server_set_text(id, "access_ip_v4", Some(v4)).await?;
        }
        if let Some(v6) = v6 {
            self.server_set_text(id, "access_ip_v6", Some(v6)).await?;
        }
        Ok(())
    }

    async fn server_set_text(&self, id: &ServerId, column: &'static str, value: Option<&str>) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query(&format!(
                    "UPDATE servers SET {column} = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE"
                ))
                .bind(id)
                .bind(value)
                .bind(self.now()),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Server, id));
            }
            Ok(())
        })
    }

    /// The tags of a server, sorted.
    pub async fn server_tags(&self, id: &ServerId) -> Result<Vec<String>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(String,)> = sqlx::query_as("SELECT tag FROM server_tags WHERE server_id = $1 ORDER BY tag")
                .bind(id)
                .fetch_all(rp)
                .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    /// The tags of many servers (a detailed list), sorted per server.
    pub async fn server_tags_for_servers(&self, ids: &[ServerId]) -> Result<Vec<(ServerId, String)>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        crate::with_db!(self, |wp, rp| {
            let mut q: QueryBuilder<dbk::Db> =
                QueryBuilder::new("SELECT server_id, tag FROM server_tags WHERE server_id IN (");
            let mut sep = q.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            q.push(") ORDER BY server_id, tag");
            Ok(q.build_query_as().fetch_all(rp).await?)
        })
    }

    /// Replace every tag of a live server (an empty list removes them all).
    pub async fn server_tags_replace(&self, id: &ServerId, tags: &[String]) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let live: Option<(ServerId,)> = sqlx::query_as("SELECT id FROM servers WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if live.is_none() {
                return Err(DbError::not_found(RowKind::Server, id));
            }
            sqlx::query("DELETE FROM server_tags WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
            for tag in tags {
                sqlx::query("INSERT INTO server_tags (server_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Add one tag to a live server unless it would then hold more than
    /// `max` tags; the count and the insert are one transaction.
    pub async fn server_tag_add(&self, id: &ServerId, tag: &str, max: i64) -> Result<TagAdded, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            // Lock the server row first: two concurrent adds count one after the other.
            let live = sqlx::query("UPDATE servers SET updated_at = updated_at WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if live.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Server, id));
            }
            let exists: Option<(String,)> =
                sqlx::query_as("SELECT tag FROM server_tags WHERE server_id = $1 AND tag = $2")
                    .bind(id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_some() {
                return Ok(TagAdded::AlreadyThere);
            }
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM server_tags WHERE server_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if n >= max {
                return Ok(TagAdded::TooMany);
            }
            sqlx::query("INSERT INTO server_tags (server_id, tag) VALUES ($1, $2)")
                .bind(id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(TagAdded::Added)
        })
    }

    /// Remove one tag of a server; false if it had no such tag.
    pub async fn server_tag_delete(&self, id: &ServerId, tag: &str) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("DELETE FROM server_tags WHERE server_id = $1 AND tag = $2").bind(id).bind(tag),
            )
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Rename a live server.
    pub async fn server_rename(&self, id: &ServerId, name: &str) -> Result<(), DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query("UPDATE servers SET name = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE")
                    .bind(id)
                    .bind(name)
                    .bind(self.now()),
            )
            .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::not_found(RowKind::Server, id));
            }
            Ok(())
        })
    }

    /// Replace a live server's metadata (a JSON object) if it still reads
    /// `old`: a compare-and-swap, so two concurrent edits of one server's
    /// metadata never lose each other's keys (the loser re-reads and
    /// retries). `Ok(false)`: it changed meanwhile.
    pub async fn server_metadata_swap(&self, id: &ServerId, old: &str, new: &str) -> Result<bool, DbError> {
        crate::with_db!(self, |wp, rp| {
            let r = dbk::exec(
                wp,
                sqlx::query(
                    "UPDATE servers SET metadata = $3, updated_at = $4 WHERE id = $1 AND deleted = FALSE AND metadata = $2",
                )
                .bind(id)
                .bind(old)
                .bind(new)
                .bind(self.now()),
            )
            .await?;
            if r.rows_affected() == 1 {
                return Ok(true);
            }
            let live: Option<(ServerId,)> = sqlx::query_as("SELECT id FROM servers WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .fetch_optional(wp)
                .await?;
            match live {
                Some(_) => Ok(false),
                None => Err(DbError::not_found(RowKind::Server, id)),
            }
        })
    }

    /// Mark the server deleted and release its ports in one transaction.
    /// Idempotent: `AlreadySo` if it was already deleted.
    pub async fn server_mark_deleted(&self, id: &ServerId) -> Result<Cas, DbError> {
        crate::with_db!(self, |wp, rp| {
            let now = self.now();
            let mut tx = dbk::begin(wp).await?;
            let r = sqlx::query(&format!("UPDATE servers SET vm_state = {vm_deleted}, task_state = NULL, power_state = {no_state}, deleted = TRUE, deleted_at = $2, terminated_at = COALESCE(terminated_at, $2), updated_at = $2, generation = generation + 1 WHERE id = $1 AND deleted = FALSE", vm_deleted = lit(VmState::Deleted), no_state = PowerState::NoState.code()))
            .bind(id).bind(&now).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM ports WHERE server_id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(if r.rows_affected() == 1 { Cas::Updated } else { Cas::AlreadySo })
        })
    }

    /// Ports of a server.
    pub async fn port_list_for_server(&self, server_id: &ServerId) -> Result<Vec<PortRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(
                "SELECT id, server_id, network, ip, mac, security_groups AS security_groups_json FROM ports WHERE server_id = $1 ORDER BY ip_index",
            )
            .bind(server_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Put every port of a server in exactly these security groups (the
    /// write of Nova's addSecurityGroup / removeSecurityGroup, which change
    /// each port of the instance). Returns how many ports changed.
    pub async fn port_set_security_groups(&self, server_id: &ServerId, groups: &[String]) -> Result<u64, DbError> {
        let json = serde_json::to_string(groups).map_err(|e| DbError::Corrupt(e.to_string()))?;
        crate::with_db!(self, |wp, rp| {
            Ok(dbk::exec(
                wp,
                sqlx::query("UPDATE ports SET security_groups = $2 WHERE server_id = $1").bind(server_id).bind(&json),
            )
            .await?
            .rows_affected())
        })
    }

    /// Ports of many servers at once (list views).
    pub async fn port_list_for_servers(&self, ids: &[ServerId]) -> Result<Vec<PortRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let mut q: QueryBuilder<dbk::Db> = QueryBuilder::new(
                "SELECT id, server_id, network, ip, mac, security_groups AS security_groups_json FROM ports WHERE server_id IN (",
            );
            let mut sep = q.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            q.push(") ORDER BY ip_index");
            Ok(q.build_query_as().fetch_all(rp).await?)
        })
    }

    /// Release every port of a server (idempotent).
    pub async fn ports_release(&self, server_id: &ServerId) -> Result<u64, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(dbk::exec(wp, sqlx::query("DELETE FROM ports WHERE server_id = $1").bind(server_id))
                .await?
                .rows_affected())
        })
    }

    /// Ports whose server is deleted or missing (audit).
    pub async fn port_list_orphans(&self) -> Result<Vec<PortRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as("SELECT p.id, p.server_id, p.network, p.ip, p.mac, p.security_groups AS security_groups_json FROM ports p LEFT JOIN servers s ON s.id = p.server_id WHERE s.id IS NULL OR s.deleted = TRUE")
            .fetch_all(rp).await?)
        })
    }

    /// Counted usage of a project.
    pub async fn quota_usage(&self, project_id: &str) -> Result<QuotaUsage, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut conn = rp.acquire().await?;
            dbk::quota_usage_tx(&mut conn, project_id).await
        })
    }

    /// Servers (deleted ones too) that ran during `[begin, end)`: launched
    /// before `end` and not terminated before `begin`, of one project or of
    /// all — what Nova's simple tenant usage bills.
    pub async fn server_list_ran_between(
        &self,
        project_id: Option<&str>,
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<ServerRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!(
                "SELECT {SERVER_COLS} FROM servers WHERE launched_at IS NOT NULL AND launched_at < $2 \
                 AND (terminated_at IS NULL OR terminated_at > $1) AND ($3 IS NULL OR project_id = $3) \
                 ORDER BY project_id, launched_at, id"
            ))
            .bind(crate::ts(begin))
            .bind(crate::ts(end))
            .bind(project_id)
            .fetch_all(rp)
            .await?)
        })
    }

    /// Live servers per host and how many of them have a task running:
    /// (host, servers, busy) — the hypervisor views' `running_vms` and
    /// `current_workload`.
    pub async fn host_server_counts(&self) -> Result<Vec<(String, i64, i64)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(
                "SELECT host, COUNT(*), CAST(COALESCE(SUM(CASE WHEN task_state IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) \
                 FROM servers WHERE deleted = FALSE AND host IS NOT NULL GROUP BY host",
            )
            .fetch_all(rp)
            .await?)
        })
    }

    /// Resources used per host by live servers and zombies: (host, vcpus, ram MiB, disk GiB).
    pub async fn host_usage(&self) -> Result<Vec<(String, i64, i64, i64)>, DbError> {
        crate::with_db!(self, |wp, rp| {
            Ok(sqlx::query_as(&format!("SELECT host, CAST(SUM(c) AS BIGINT), CAST(SUM(r) AS BIGINT), CAST(SUM(d) AS BIGINT) FROM (
                SELECT host, vcpus AS c, ram_mb AS r, disk_gb + ephemeral_gb AS d FROM servers WHERE deleted = FALSE AND host IS NOT NULL
                UNION ALL SELECT host, vcpus, ram_mb, disk_gb FROM zombies
                UNION ALL SELECT source_host, old_vcpus, old_ram_mb, old_disk_gb FROM migrations WHERE status = {finished}) AS used GROUP BY host", finished = lit(MigrationStatus::Finished)))
            .fetch_all(rp).await?)
        })
    }

    /// Servers that may have a VM on `host`: placed there, or the source or
    /// destination of a resize or migration in progress (the agent's inventory).
    pub async fn server_ids_on_host(&self, host: &str) -> Result<Vec<ServerId>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let rows: Vec<(ServerId,)> = sqlx::query_as(&format!(
                "SELECT id FROM servers WHERE host = $1 AND deleted = FALSE
             UNION SELECT m.server_id FROM migrations m JOIN servers s ON s.id = m.server_id
               WHERE s.deleted = FALSE AND m.status IN ({migration_open}) AND (m.source_host = $1 OR m.dest_host = $1)",
                migration_open = list(&MigrationStatus::OPEN)
            ))
            .bind(host)
            .fetch_all(rp)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }
}

crate::per_backend! {

/// The `SELECT` of a server list: `cols` of the live servers `f` selects,
/// newest first, paged.
pub(crate) fn server_list_query(cols: &str, f: &ServerFilter) -> QueryBuilder<'static, dbk::Db> {
    let live = if f.include_deleted { "TRUE" } else { "deleted = FALSE" };
    let mut q: QueryBuilder<dbk::Db> = QueryBuilder::new(format!("SELECT {cols} FROM servers WHERE {live}"));
    if let Some(l) = f.locked {
        q.push(" AND locked = ").push_bind(l);
    }
    for (col, value) in &f.columns {
        let (sql, exact) = col.sql();
        if exact {
            q.push(format!(" AND {sql} = ")).push_bind(value.clone());
        } else {
            q.push(format!(" AND {sql} {} ", dbk::REGEX_MATCH)).push_bind(value.clone());
        }
    }
    if let Some(t) = f.changes_since {
        q.push(" AND updated_at >= ").push_bind(crate::ts(t));
    }
    if let Some(t) = f.changes_before {
        q.push(" AND updated_at <= ").push_bind(crate::ts(t));
    }
    if let Some(p) = &f.project_id {
        q.push(" AND project_id = ").push_bind(p.clone());
    }
    if let Some(n) = &f.name {
        q.push(format!(" AND name {} ", dbk::REGEX_MATCH)).push_bind(n.clone());
    }
    if let Some(fl) = &f.flavor_id {
        q.push(" AND flavor_id = ").push_bind(fl.clone());
    }
    if let Some(i) = &f.image_id {
        q.push(" AND image_id = ").push_bind(i.clone());
    }
    if let Some(h) = &f.host {
        q.push(" AND host = ").push_bind(h.clone());
    }
    if let Some(states) = &f.vm_states {
        q.push(" AND vm_state IN (");
        let mut sep = q.separated(", ");
        for s in states {
            sep.push_bind(s.as_str());
        }
        q.push(")");
    }
    const HAS_TAG: &str = "EXISTS (SELECT 1 FROM server_tags t WHERE t.server_id = servers.id AND t.tag = ";
    for tag in &f.tags_all {
        q.push(format!(" AND {HAS_TAG}")).push_bind(tag.clone()).push(")");
    }
    if !f.tags_any.is_empty() {
        q.push(" AND (FALSE");
        for tag in &f.tags_any {
            q.push(format!(" OR {HAS_TAG}")).push_bind(tag.clone()).push(")");
        }
        q.push(")");
    }
    if !f.not_tags.is_empty() {
        q.push(" AND NOT (TRUE");
        for tag in &f.not_tags {
            q.push(format!(" AND {HAS_TAG}")).push_bind(tag.clone()).push(")");
        }
        q.push(")");
    }
    for tag in &f.not_tags_any {
        q.push(format!(" AND NOT {HAS_TAG}")).push_bind(tag.clone()).push(")");
    }
    if let Some(m) = &f.marker {
        q.push(" AND (created_at, id) < (SELECT created_at, id FROM servers WHERE id = ").push_bind(*m).push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC");
    if let Some(l) = f.limit {
        q.push(" LIMIT ").push_bind(l);
    }
    q
}
/// Build the conditional UPDATE of a [`Transition`] (shared by the plain
/// transition and the ones made inside an operation-starting transaction).
pub(crate) fn transition_query(id: &ServerId, t: &Transition, now: String) -> QueryBuilder<'static, dbk::Db> {
    let mut q: QueryBuilder<dbk::Db> =
        QueryBuilder::new("UPDATE servers SET generation = generation + 1, updated_at = ");
    q.push_bind(now.clone());
    if let Some(v) = t.vm {
        q.push(", vm_state = ").push_bind(v.as_str());
    }
    if let Some(task) = t.task {
        q.push(", task_state = ").push_bind(task.map(|x| x.as_str()));
    }
    if let Some(p) = t.power {
        q.push(", power_state = ").push_bind(p);
    }
    if let Some(h) = &t.host {
        q.push(", host = ").push_bind(h.clone());
    }
    if t.launched {
        q.push(", launched_at = COALESCE(launched_at, ").push_bind(now.clone()).push(")");
    }
    if let Some(fault) = &t.fault {
        q.push(", fault = ").push_bind(fault.clone());
    }
    if let Some(soft) = t.soft_deleted {
        if soft {
            q.push(", deleted_at = ").push_bind(now.clone());
        } else {
            q.push(", deleted_at = NULL");
        }
    }
    if let Some(img) = t.image {
        q.push(", image_id = ").push_bind(img);
    }
    if let Some(img) = &t.shelved_image {
        q.push(", shelved_image_id = ").push_bind(*img);
    }
    if let Some(f) = &t.flavor {
        q.push(", flavor_id = ").push_bind(f.id.clone()).push(", flavor_name = ").push_bind(f.name.clone());
        q.push(", vcpus = ")
            .push_bind(f.vcpus)
            .push(", ram_mb = ")
            .push_bind(f.ram_mb)
            .push(", disk_gb = ")
            .push_bind(f.disk_gb);
        q.push(", ephemeral_gb = ").push_bind(f.ephemeral_gb).push(", swap_mb = ").push_bind(f.swap_mb);
    }
    if let Some((locked, by, reason)) = &t.lock {
        q.push(", locked = ")
            .push_bind(*locked)
            .push(", locked_by = ")
            .push_bind(*by)
            .push(", locked_reason = ")
            .push_bind(reason.clone());
    }
    q.push(" WHERE id = ").push_bind(id.to_string()).push(" AND deleted = FALSE");
    if !t.from_vm.is_empty() {
        q.push(" AND vm_state IN (");
        let mut sep = q.separated(", ");
        for s in &t.from_vm {
            sep.push_bind(s.as_str());
        }
        q.push(")");
    }
    match t.from_task {
        Some(Some(task)) => {
            q.push(" AND task_state = ").push_bind(task.as_str());
        }
        Some(None) => {
            q.push(" AND task_state IS NULL");
        }
        None => {
            q.push(format!(
                " AND (task_state IS NULL OR task_state <> {deleting})",
                deleting = lit(TaskState::Deleting)
            ));
        }
    }
    q
}

/// Counted usage; `TOTAL()` so that no sum is an SQL overflow error.
pub(crate) async fn quota_usage_tx(conn: &mut dbk::Conn, project_id: &str) -> Result<QuotaUsage, DbError> {
    let (instances, cores, ram): (i64, f64, f64) = sqlx::query_as(
        &format!("SELECT COUNT(*), {}, {} FROM servers WHERE project_id = $1 AND deleted = FALSE", dbk::total("vcpus"), dbk::total("ram_mb")),
    )
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(QuotaUsage { instances, cores: saturating_total(cores), ram: saturating_total(ram) })
}

pub(crate) async fn allocate_port_tx(conn: &mut dbk::Conn, server_id: &ServerId, now: &str) -> Result<(), DbError> {
    // Lowest free index: the first index, or the successor of a used index whose successor is free.
    let (idx,): (Option<i64>,) = sqlx::query_as(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM ports WHERE ip_index = $1) THEN $1
                ELSE (SELECT MIN(p.ip_index + 1) FROM ports p WHERE NOT EXISTS (SELECT 1 FROM ports q WHERE q.ip_index = p.ip_index + 1)) END")
        .bind(FIRST_IP_INDEX).fetch_one(&mut *conn).await?;
    let idx = idx.unwrap_or(FIRST_IP_INDEX);
    if idx > LAST_IP_INDEX {
        return Err(DbError::conflict(RowKind::Port, "no free fixed IP on network private"));
    }
    let ip = format!("10.0.{}.{}", idx / 256, idx % 256);
    let id = PortId::new();
    let b = id.0.as_bytes();
    let mac = format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
    sqlx::query("INSERT INTO ports (id, server_id, network, ip, ip_index, mac, created_at) VALUES ($1,$2,'private',$3,$4,$5,$6)")
        .bind(id).bind(server_id).bind(ip).bind(idx).bind(mac).bind(now)
        .execute(&mut *conn).await?;
    Ok(())
}
}

/// Format for timestamps inside fault JSON.
pub fn fault_json(code: u16, message: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({"code": code, "message": message, "created": ts(now)}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::store;

    /// One row with every state column set through the typed fields.
    async fn insert_raw(ds: &Datastore, id: &ServerId, vm: &str, task: Option<&str>, power: i64) {
        crate::with_db!(ds, |wp, rp| {
            dbk::exec(wp, sqlx::query(
                "INSERT INTO servers (id, name, project_id, user_id, flavor_id, flavor_name, vcpus, ram_mb, disk_gb, \
                 ephemeral_gb, swap_mb, vm_state, task_state, power_state, metadata, locked, reservation_id, hostname, \
                 progress, generation, created_at, updated_at, deleted) \
                 VALUES ($1,'n','p','u','1','m1',1,512,1,0,0,$2,$3,$4,'{}',FALSE,'r','h',0,0,'2026-11-28T23:41:22.000000Z','2026-11-28T23:41:22.000000Z',FALSE)",
            )
            .bind(id)
            .bind(vm)
            .bind(task)
            .bind(power)
            )
            .await
            .map(|_| ())
        })
        .expect("insert");
    }

    /// Run one statement binding `id` (and `n`, when given) as `$1`/`$2`.
    async fn exec(ds: &Datastore, sql: &str, id: &ServerId, n: Option<i64>) {
        crate::with_db!(ds, |wp, rp| {
            let mut q = sqlx::query(sql).bind(id.to_string());
            if let Some(n) = n {
                q = q.bind(n);
            }
            dbk::exec(wp, q).await.map(|_| ())
        })
        .expect(sql);
    }

    fn delete_op(server: ServerId) -> NewOperation {
        NewOperation {
            id: stratus_types::OperationId::new(),
            kind: OpKind::Delete,
            server_id: server,
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
            user_id: "u".into(),
            project_id: "p".into(),
            params: "{}".into(),
        }
    }

    /// `n` active servers.
    async fn active_servers(ds: &Datastore, n: usize) -> Vec<ServerId> {
        let mut servers = Vec::new();
        for _ in 0..n {
            let id = ServerId::new();
            insert_raw(ds, &id, "active", None, 1).await;
            servers.push(id);
        }
        servers
    }

    /// Deletes started at once go through SQLite's group writer: each gets
    /// what it would get alone (Nova's `_delete`: a repeated delete finds
    /// the open one, a gone server is a 404), in fewer commits than deletes.
    #[tokio::test]
    async fn deletes_started_at_once_each_get_their_own_outcome() {
        let (ds, _dir) = store().await;
        let servers = active_servers(&ds, 20).await;
        // SQLite counts its commits (PostgreSQL runs these as before, one each).
        let commits_before = ds.durability_counts().map(|c| c.0);
        // Each server twice, and five that do not exist, all at once.
        let mut asks: Vec<ServerId> = servers.iter().chain(servers.iter()).copied().collect();
        asks.extend((0..5).map(|_| ServerId::new()));
        let started = futures::future::join_all(
            asks.iter().map(|id| async { (*id, ds.server_begin_delete(&delete_op(*id)).await) }),
        )
        .await;
        let commits_after = ds.durability_counts().map(|c| c.0);
        let mut ops: std::collections::HashMap<ServerId, Vec<stratus_types::OperationId>> = Default::default();
        let mut gone = 0;
        for (id, r) in started {
            match r {
                Ok(crate::OpStart::Created(op) | crate::OpStart::Existing(op)) => {
                    assert_eq!(op.server_id, id);
                    ops.entry(id).or_default().push(op.id);
                }
                Err(DbError::NotFound { kind: RowKind::Server, .. }) => gone += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(gone, 5);
        assert_eq!(ops.len(), 20);
        for (id, o) in &ops {
            assert_eq!(o.len(), 2, "{id}");
            assert_eq!(o[0], o[1], "the second delete of {id} found the first's operation");
            let s = ds.server_get(id).await.expect("server");
            assert_eq!(s.task_state, Some(TaskState::Deleting));
        }
        if let (Some(before), Some(after)) = (commits_before, commits_after) {
            assert!(after - before < 45, "{} commits for 45 deletes", after - before);
        }
    }

    /// A database error in one grouped write rolls its group back, and every
    /// other write of the group is then made alone: only the failing caller
    /// sees the error.
    #[tokio::test]
    async fn one_failing_write_does_not_fail_its_group() {
        let (ds, _dir) = store().await;
        let servers = active_servers(&ds, 10).await;
        // An operation id already taken: its insert fails (primary key).
        let taken = match ds.server_begin_delete(&delete_op(servers[0])).await.expect("begin") {
            crate::OpStart::Created(op) => op.id,
            other => panic!("{other:?}"),
        };
        let odd = ServerId::new();
        insert_raw(&ds, &odd, "active", None, 1).await;
        let mut asks: Vec<NewOperation> = servers[1..].iter().map(|id| delete_op(*id)).collect();
        asks.insert(4, NewOperation { id: taken, ..delete_op(odd) });
        let started = futures::future::join_all(asks.iter().map(|o| ds.server_begin_delete(o))).await;
        let failed = started.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 1, "{started:?}");
        assert!(matches!(started[4], Err(DbError::Conflict { .. })), "the failing write is the one with the taken id");
        assert_eq!(ds.server_get(&odd).await.expect("server").task_state, None, "its change was rolled back");
        for id in &servers[1..] {
            let s = ds.server_get(id).await.expect("server");
            assert_eq!(s.task_state, Some(TaskState::Deleting), "{id}");
        }
    }

    /// A batch claim takes exactly what the one-by-one claim would: open
    /// operations nobody holds or whose claim lapsed, and the caller's own;
    /// never one another runner holds, nor a closed one.
    #[tokio::test]
    async fn a_batch_claim_takes_only_claimable_operations() {
        let (ds, _dir) = store().await;
        let mut ops = Vec::new();
        for _ in 0..4 {
            let id = ServerId::new();
            insert_raw(&ds, &id, "active", None, 1).await;
            match ds.server_begin_delete(&delete_op(id)).await.expect("begin") {
                crate::OpStart::Created(op) => ops.push(op.id),
                other => panic!("{other:?}"),
            }
        }
        let ttl = chrono::Duration::seconds(30);
        // ops[0] held by another runner, ops[1] closed, ops[2] held by us already.
        assert!(ds.op_claim(&ops[0], "other", ttl).await.expect("claim").is_some());
        assert!(ds.op_claim(&ops[1], "me", ttl).await.expect("claim").is_some());
        assert!(ds.op_finish(&ops[1], "me", true, None).await.expect("finish"));
        assert!(ds.op_claim(&ops[2], "me", ttl).await.expect("claim").is_some());
        let mut got: Vec<_> =
            ds.op_claim_many(&ops, "me", ttl).await.expect("batch").into_iter().map(|o| o.id).collect();
        got.sort();
        let mut want = vec![ops[2], ops[3]];
        want.sort();
        assert_eq!(got, want);
        // A lapsed claim is adopted by a batch too.
        assert!(ds.op_claim_many(&ops[..1], "me", chrono::Duration::seconds(-1)).await.expect("b").is_empty());
        assert!(ds.op_claim(&ops[0], "other", chrono::Duration::seconds(-1)).await.expect("claim").is_some());
        let adopted = ds.op_claim_many(&ops[..1], "me", ttl).await.expect("batch");
        assert_eq!(adopted.len(), 1);
        assert_eq!(adopted[0].claimed_by.as_deref(), Some("me"));
        assert_eq!(adopted[0].attempts, 3);
        assert!(ds.op_claim_many(&[], "me", ttl).await.expect("empty").is_empty());
    }

    /// The delete's one-query view says what the three reads it replaces said.
    #[tokio::test]
    async fn the_delete_view_sees_open_moves_and_attachments() {
        let (ds, _dir) = store().await;
        let id = ServerId::new();
        insert_raw(&ds, &id, "active", None, 1).await;
        let (row, moving, attached) = ds.server_delete_view(&id).await.expect("view");
        assert_eq!((row.id, moving, attached), (id, false, false));
        exec(&ds, "INSERT INTO volume_attachments (id, volume_id, server_id, status, delete_on_termination, created_at, updated_at, deleted) VALUES ($1 || '-a', 'v', $1, 'attached', FALSE, 'x', 'x', FALSE)", &id, None).await;
        let (_, moving, attached) = ds.server_delete_view(&id).await.expect("view");
        assert_eq!((moving, attached), (false, true));
        let status = MigrationStatus::OPEN[0].as_str();
        let sql = format!(
            "INSERT INTO migrations (server_id, kind, source_host, old_flavor_id, new_flavor_id, old_vcpus, old_ram_mb, old_disk_gb, old_vm_state, status, created_at, updated_at) VALUES ($1, 'resize', 'h', '1', '2', 1, 512, 1, 'active', '{status}', 'x', 'x')"
        );
        exec(&ds, &sql, &id, None).await;
        let (_, moving, _) = ds.server_delete_view(&id).await.expect("view");
        assert!(moving);
        assert!(matches!(ds.server_delete_view(&ServerId::new()).await, Err(DbError::NotFound { .. })));
    }

    /// Quota arithmetic never overflows: a request that would wrap
    /// `used + requested` exceeds any limit, and usage of rows summing past
    /// `i64::MAX` is saturated instead of an SQL overflow error.
    #[tokio::test]
    async fn quota_arithmetic_never_overflows() {
        assert!(exceeds(1, i64::MAX, 10), "1 + i64::MAX must not wrap below the limit");
        assert!(exceeds(i64::MAX, 1, i64::MAX));
        assert!(!exceeds(i64::MAX, 1, -1), "unlimited");
        assert!(!exceeds(9, 1, 10) && exceeds(10, 1, 10));
        let (ds, _dir) = store().await;
        for _ in 0..2 {
            let id = ServerId::new();
            insert_raw(&ds, &id, "active", None, 1).await;
            exec(&ds, "UPDATE servers SET vcpus = $2, ram_mb = $2 WHERE id = $1", &id, Some(i64::MAX)).await;
        }
        let u = ds.quota_usage("p").await.expect("usage is no SQL error");
        assert_eq!((u.instances, u.cores, u.ram), (2, i64::MAX, i64::MAX));
    }

    /// Two controllers placing two builds on the last slot of a host at
    /// once: exactly one is placed, the other finds the host full (Nova's
    /// placement claims are atomic the same way: one allocation wins).
    #[tokio::test]
    async fn two_placements_race_for_the_last_slot_and_one_wins() {
        let (ds, _dir) = store().await;
        for _ in 0..10 {
            let (a, b) = (ServerId::new(), ServerId::new());
            insert_raw(&ds, &a, "building", Some("scheduling"), 0).await;
            insert_raw(&ds, &b, "building", Some("scheduling"), 0).await;
            let host = format!("h-{}", uuid::Uuid::new_v4().simple());
            let t = Transition {
                from_task: Some(Some(TaskState::Scheduling)),
                host: Some(Some(host.clone())),
                task: Some(Some(TaskState::Spawning)),
                ..Default::default()
            };
            let cap = crate::HostCapacity { vcpus: 1, memory_mb: 100_000, disk_gb: 100 };
            let (ra, rb) = tokio::join!(
                ds.server_place(&a, &t, &host, cap, (1, 512, 1)),
                ds.server_place(&b, &t, &host, cap, (1, 512, 1))
            );
            let outcomes = [ra.expect("a"), rb.expect("b")];
            assert_eq!(outcomes.iter().filter(|o| **o == Some(Cas::Updated)).count(), 1, "{outcomes:?}");
            assert_eq!(outcomes.iter().filter(|o| o.is_none()).count(), 1, "{outcomes:?}");
            let on_host = ds.server_list(&ServerFilter { host: Some(host), ..Default::default() }).await.expect("list");
            assert_eq!(on_host.len(), 1);
        }
    }

    /// Nova's server list `name` filter is a regular expression, on both
    /// backends (SQLite through REGEXP, PostgreSQL through `~`).
    #[tokio::test]
    async fn server_names_filter_by_regular_expression() {
        let (ds, _dir) = store().await;
        let mut ids = Vec::new();
        for name in ["web-instance-1", "web-instance-22", "db-instance-x"] {
            let id = ServerId::new();
            insert_raw(&ds, &id, "active", None, 1).await;
            ds.server_rename(&id, name).await.expect("rename");
            ids.push(id);
        }
        let names = |pattern: &str| {
            let f = ServerFilter { name: Some(pattern.to_string()), ..Default::default() };
            let ds = ds.clone();
            async move {
                let mut n: Vec<String> = ds.server_list(&f).await.expect("list").into_iter().map(|s| s.name).collect();
                n.sort();
                n
            }
        };
        assert_eq!(names(r"^.*-instance-[0-9]+$").await, ["web-instance-1", "web-instance-22"]);
        assert_eq!(names("instance").await.len(), 3, "plain text matches anywhere");
        assert_eq!(names("^db").await, ["db-instance-x"]);
    }

    /// Placement in one query picks what the scheduler picked from the
    /// full list: up, enabled, not forced down, with room, most free RAM
    /// (usage of live servers counted), oldest first on ties, minus the
    /// excluded hosts (Nova's RAM weigher with its filters).
    #[tokio::test]
    async fn service_pick_takes_the_roomiest_valid_host() {
        let (ds, _dir) = store().await;
        let ttl = chrono::Duration::seconds(10);
        let cap = |ram| crate::HostCapacity { vcpus: 4, memory_mb: ram, disk_gb: 100 };
        ds.service_join("h1", cap(1000), ttl).await.expect("h1");
        ds.service_join("h2", cap(2000), ttl).await.expect("h2");
        let h3 = ds.service_join("h3", cap(9000), ttl).await.expect("h3");
        let h4 = ds.service_join("h4", cap(8000), ttl).await.expect("h4");
        ds.service_update(&h3.uuid, Some(true), None, None).await.expect("disable h3");
        ds.service_update(&h4.uuid, None, None, Some(true)).await.expect("force h4 down");
        let pick = |exclude: Vec<String>| {
            let ds = ds.clone();
            async move { ds.service_pick(1, 512, 1, None, &exclude).await.expect("pick").map(|s| s.host) }
        };
        assert_eq!(pick(vec![]).await.as_deref(), Some("h2"));
        assert_eq!(pick(vec!["h2".into()]).await.as_deref(), Some("h1"));
        // 1,500 MiB used on h2: h1 has more room left.
        let id = ServerId::new();
        insert_raw(&ds, &id, "active", None, 1).await;
        exec(&ds, "UPDATE servers SET host = 'h2', ram_mb = $2 WHERE id = $1", &id, Some(1500)).await;
        assert_eq!(pick(vec![]).await.as_deref(), Some("h1"));
        assert!(ds.service_pick(8, 512, 1, None, &[]).await.expect("pick").is_none(), "no host has 8 vCPUs");
        // Equal room: the oldest host.
        exec(&ds, "UPDATE servers SET ram_mb = $2 WHERE id = $1", &id, Some(1000)).await;
        assert_eq!(pick(vec![]).await.as_deref(), Some("h1"));
    }

    #[tokio::test]
    async fn state_columns_decode_into_their_enums() {
        let (ds, _dir) = store().await;
        let (s1, s2) = (ServerId::new(), ServerId::new());
        insert_raw(&ds, &s1, "shelved_offloaded", Some("deleting"), 4).await;
        let s = ds.server_get(&s1).await.expect("row");
        assert_eq!(s.vm_state, VmState::ShelvedOffloaded);
        assert_eq!(s.task_state, Some(TaskState::Deleting));
        assert_eq!(s.power_state, PowerState::Shutdown);
        insert_raw(&ds, &s2, "active", None, 1).await;
        let s = ds.server_get(&s2).await.expect("row");
        assert_eq!((s.vm_state, s.task_state, s.power_state), (VmState::Active, None, PowerState::Running));
    }

    #[tokio::test]
    async fn an_unknown_state_is_an_error_not_a_default() {
        let (ds, _dir) = store().await;
        let (bad_vm, bad_power) = (ServerId::new(), ServerId::new());
        insert_raw(&ds, &bad_vm, "sleeping", None, 1).await;
        assert!(ds.server_get(&bad_vm).await.is_err(), "unknown vm_state must not decode");
        insert_raw(&ds, &bad_power, "active", None, 2).await;
        assert!(ds.server_get(&bad_power).await.is_err(), "power state 2 is not one Nova defines");
    }

    #[tokio::test]
    async fn server_ids_are_stored_as_the_hyphenated_text() {
        let (ds, _dir) = store().await;
        let id = ServerId::new();
        insert_raw(&ds, &id, "active", None, 1).await;
        let (text,): (String,) =
            crate::with_db!(ds, |wp, rp| { Ok(sqlx::query_as("SELECT id FROM servers").fetch_one(rp).await?) })
                .expect("text");
        assert_eq!(text, id.to_string());
        assert_eq!(ds.server_get(&id).await.expect("row").id, id);
        exec(&ds, "UPDATE servers SET id = 'not-a-uuid' WHERE id = $1", &id, None).await;
        assert!(ds.server_list(&ServerFilter::default()).await.is_err(), "a non-UUID id must not decode");
    }

    /// Nova's tag filters (2.26): `tags` needs every tag, `tags-any` one of
    /// them, `not-tags` excludes servers holding all, `not-tags-any` those
    /// holding any; a server holds at most the limit it is given.
    #[tokio::test]
    async fn tag_filters_and_limit_follow_nova() {
        let (ds, _dir) = store().await;
        let (a, b, c) = (ServerId::new(), ServerId::new(), ServerId::new());
        for id in [&a, &b, &c] {
            insert_raw(&ds, id, "active", None, 1).await;
        }
        ds.server_tags_replace(&a, &["x".into(), "y".into()]).await.expect("tags a");
        ds.server_tags_replace(&b, &["x".into()]).await.expect("tags b");
        let ids = |f: ServerFilter| {
            let ds = ds.clone();
            async move {
                let mut v: Vec<ServerId> = ds.server_list(&f).await.expect("list").into_iter().map(|r| r.id).collect();
                v.sort();
                v
            }
        };
        let sorted = |mut v: Vec<ServerId>| {
            v.sort();
            v
        };
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(ServerFilter { tags_all: t(&["x", "y"]), ..Default::default() }).await, vec![a]);
        assert_eq!(ids(ServerFilter { tags_any: t(&["y", "x"]), ..Default::default() }).await, sorted(vec![a, b]));
        assert_eq!(ids(ServerFilter { not_tags: t(&["x", "y"]), ..Default::default() }).await, sorted(vec![b, c]));
        assert_eq!(ids(ServerFilter { not_tags_any: t(&["y"]), ..Default::default() }).await, sorted(vec![b, c]));
        assert_eq!(ds.server_tags(&a).await.expect("tags"), t(&["x", "y"]));
        assert_eq!(ds.server_tag_add(&c, "z", 1).await.expect("add"), TagAdded::Added);
        assert_eq!(ds.server_tag_add(&c, "z", 1).await.expect("again"), TagAdded::AlreadyThere);
        assert_eq!(ds.server_tag_add(&c, "w", 1).await.expect("over"), TagAdded::TooMany);
        assert!(ds.server_tag_delete(&c, "z").await.expect("delete"));
        assert!(!ds.server_tag_delete(&c, "z").await.expect("gone"));
        ds.server_set_description(&c, Some("d")).await.expect("description");
        assert_eq!(ds.server_get(&c).await.expect("row").description.as_deref(), Some("d"));
    }

    fn zombie(server: ServerId) -> crate::ZombieRow {
        crate::ZombieRow {
            server_id: server,
            host: "h1".into(),
            vcpus: 1,
            ram_mb: 64,
            disk_gb: 1,
            reason: "test".into(),
            created_at: crate::SET_ON_INSERT,
        }
    }

    /// A controller's attempt whose claim another controller took over (its
    /// own lapsed) writes nothing any more, in single statements,
    /// transactions and step records alike; the adopter's writes go through.
    #[tokio::test]
    async fn writes_of_an_attempt_that_lost_its_claim_are_refused() {
        let (ds, _dir) = store().await;
        let server = ServerId::new();
        insert_raw(&ds, &server, "active", None, 1).await;
        let o = delete_op(server);
        let crate::OpStart::Created(op) = ds.server_begin_delete(&o).await.expect("begin") else { panic!("created") };
        // ctl-a claims with a claim that lapses at once; ctl-b adopts.
        let a =
            ds.op_claim(&op.id, "ctl-a", chrono::Duration::milliseconds(-1)).await.expect("claim").expect("claimed");
        let stale = crate::claim::Claim { op: op.id, worker: "ctl-a".into(), token: a.attempts };
        crate::claim::scope(stale.clone(), async { ds.claim_held().await }).await.expect("held before the adoption");
        let b = ds.op_claim(&op.id, "ctl-b", chrono::Duration::seconds(30)).await.expect("claim").expect("adopted");
        assert!(b.attempts > a.attempts, "the token grows with every claim");

        let lost = |r: Result<(), crate::DbError>, what: &str| {
            assert!(matches!(r, Err(crate::DbError::ClaimLost { .. })), "{what}: {r:?}");
        };
        crate::claim::scope(stale.clone(), async {
            lost(ds.claim_held().await, "claim_held");
            lost(ds.zombie_record(&zombie(server)).await, "single statement");
            lost(ds.event_finish(&server, &o.request_id, "ev", true, "done").await, "transaction");
            let stepped = ds.op_step_with(&op.id, "ctl-a", Some("x"), &Default::default()).await.expect("step");
            assert!(!stepped, "step record");
        })
        .await;
        // The same worker with an older token is fenced too.
        let older = crate::claim::Claim { op: op.id, worker: "ctl-b".into(), token: a.attempts };
        crate::claim::scope(older, async { lost(ds.zombie_record(&zombie(server)).await, "older token") }).await;
        assert!(ds.zombie_list(None).await.expect("zombies").is_empty(), "nothing written");

        let current = crate::claim::Claim { op: op.id, worker: "ctl-b".into(), token: b.attempts };
        crate::claim::scope(current, async {
            ds.claim_held().await.expect("held");
            ds.zombie_record(&zombie(server)).await.expect("adopter writes");
            assert!(ds.op_step_with(&op.id, "ctl-b", Some("x"), &Default::default()).await.expect("step"));
        })
        .await;
        assert_eq!(ds.zombie_list(None).await.expect("zombies").len(), 1);
        // Outside any attempt nothing is checked.
        ds.zombie_record(&zombie(ServerId::new())).await.expect("no claim, no check");
    }
    /// A page of the server list walks an index in the list's order (newest
    /// first, after the marker) and stops at the limit: it never fetches and
    /// sorts every live server of the project, which made reading N servers
    /// page by page cost ~N²/1,000 row reads (Nova's
    /// `instances_deleted_created_at_idx` serves the same order).
    #[tokio::test]
    async fn a_server_list_page_walks_an_index_instead_of_sorting_the_project() {
        let dir = std::env::temp_dir().join(format!("stratus-list-plan-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ds = Datastore::open_sqlite(&dir.join("t.db")).await.expect("open");
        let crate::backend::Pools::Sqlite { read, .. } = &ds.pools else { panic!("sqlite") };
        let marker = ServerId::new();
        let project = ServerFilter { project_id: Some("p".into()), limit: Some(1000), ..Default::default() };
        let paged = ServerFilter { marker: Some(marker), ..project.clone() };
        let every_project = ServerFilter { project_id: None, ..paged.clone() };
        for (f, index, binds) in [
            (&project, "servers_by_project", vec!["p"]),
            (&paged, "servers_by_project", vec!["p", "m"]),
            (&every_project, "servers_by_age", vec!["m"]),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {}", sqlite::server_list_query("id, name", f).sql());
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
            for b in binds {
                q = q.bind(if b == "m" { marker.to_string() } else { b.to_string() });
            }
            let plan: Vec<String> =
                q.bind(1000_i64).fetch_all(read).await.expect("plan").into_iter().map(|r| r.3).collect();
            assert!(plan.iter().any(|d| d.contains(index)), "{f:?}: {plan:?}");
            assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{f:?} sorts: {plan:?}");
            assert!(!plan.iter().any(|d| d.starts_with("SCAN servers")), "{f:?} scans: {plan:?}");
        }
        ds.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
