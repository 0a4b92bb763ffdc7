//! Host aggregates (Nova's `os-aggregates`): named groups of compute hosts
//! with metadata, one of whose keys, `availability_zone`, makes the group an
//! availability zone. Every change is checked and written in one write
//! transaction, so two admins at once cannot put a host in two zones.
//!
//! Each host's zone is kept in `services.zone` (the zone of its aggregate
//! that has one, else [`DEFAULT_ZONE`]): the transaction that changes an
//! aggregate's hosts or zone rewrites it, so the zone listings, the service
//! views and the scheduler read one column instead of joining aggregates.

use crate::{Datastore, DbError};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::collections::BTreeMap;

/// The zone of a host in no aggregate with a zone (Nova's
/// `default_availability_zone`).
pub const DEFAULT_ZONE: &str = "nova";

/// The metadata key that holds an aggregate's availability zone.
pub const ZONE_KEY: &str = "availability_zone";

/// An aggregate with its hosts and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateRow {
    /// Integer id (the API's id before 2.41).
    pub id: i64,
    /// UUID (the API shows it from 2.41).
    pub uuid: String,
    /// Unique name.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change of name or metadata (`None` until the first).
    pub updated_at: Option<DateTime<Utc>>,
    /// Member hosts (service host names), sorted.
    pub hosts: Vec<String>,
    /// Metadata, the zone included.
    pub metadata: BTreeMap<String, String>,
}

impl AggregateRow {
    /// The aggregate's availability zone, if it is one.
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get(ZONE_KEY).map(String::as_str)
    }
}

/// Why an aggregate change was refused (Nova's rules); the compute service
/// words each the way Nova does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AggregateRefusal {
    /// No aggregate with this id.
    NotFound,
    /// Another aggregate has this name.
    NameExists,
    /// No compute service runs on the host.
    HostNotFound,
    /// The host is already a member.
    HostExists,
    /// The host is not a member.
    HostNotMember,
    /// The aggregate still has hosts (delete).
    NotEmpty,
    /// The zone would be set to nothing (null or empty).
    EmptyZone,
    /// Some of the hosts are in other aggregates with these other zones.
    ZoneConflict(Vec<String>),
    /// The zone would change while servers live on the aggregate's hosts.
    ZoneHasServers,
}

/// A change of name and metadata (`PUT` and `set_metadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggregateChange {
    /// New name.
    pub name: Option<String>,
    /// Keys to set (`Some`) or delete (`None`), the zone key included.
    pub metadata: BTreeMap<String, Option<String>>,
}

/// What an aggregate change returns: the row after it, or why not.
pub type AggregateOutcome = Result<AggregateRow, AggregateRefusal>;

#[derive(FromRow)]
struct AggregateRec {
    id: i64,
    uuid: String,
    name: String,
    #[sqlx(try_from = "crate::TsText")]
    created_at: DateTime<Utc>,
    #[sqlx(try_from = "crate::OptTsText")]
    updated_at: Option<DateTime<Utc>>,
}

impl AggregateRec {
    fn with(self, hosts: Vec<String>, metadata: BTreeMap<String, String>) -> AggregateRow {
        AggregateRow {
            id: self.id,
            uuid: self.uuid,
            name: self.name,
            created_at: self.created_at,
            updated_at: self.updated_at,
            hosts,
            metadata,
        }
    }
}

const COLS: &str = "id, uuid, name, created_at, updated_at";

/// The zone a host gets from its aggregates, if any (a correlated subquery
/// on `services.host`).
const HOST_ZONE: &str = "(SELECT MIN(m.meta_value) FROM aggregate_hosts h
    JOIN aggregate_metadata m ON m.aggregate_id = h.aggregate_id AND m.meta_key = 'availability_zone'
    WHERE h.host = services.host)";

crate::per_backend! {

/// One aggregate with its hosts and metadata, read on `conn`.
pub(crate) async fn aggregate_load(conn: &mut dbk::Conn, id: i64) -> Result<Option<AggregateRow>, DbError> {
    let rec: Option<AggregateRec> =
        sqlx::query_as(&format!("SELECT {COLS} FROM aggregates WHERE id = $1")).bind(id).fetch_optional(&mut *conn).await?;
    let Some(rec) = rec else { return Ok(None) };
    let hosts: Vec<(String,)> = sqlx::query_as("SELECT host FROM aggregate_hosts WHERE aggregate_id = $1 ORDER BY host")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let meta: Vec<(String, String)> =
        sqlx::query_as("SELECT meta_key, meta_value FROM aggregate_metadata WHERE aggregate_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(Some(rec.with(hosts.into_iter().map(|h| h.0).collect(), meta.into_iter().collect())))
}

/// The zones other than `zone` of the other aggregates that hold `host`.
pub(crate) async fn zones_of_host(conn: &mut dbk::Conn, id: i64, host: &str, zone: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT m.meta_value FROM aggregate_hosts h
           JOIN aggregate_metadata m ON m.aggregate_id = h.aggregate_id AND m.meta_key = 'availability_zone'
         WHERE h.host = $1 AND h.aggregate_id <> $2 AND m.meta_value <> $3 ORDER BY m.meta_value",
    )
    .bind(host)
    .bind(id)
    .bind(zone)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The zones other than `zone` of the other aggregates that hold any host of aggregate `id`.
pub(crate) async fn zones_of_members(conn: &mut dbk::Conn, id: i64, zone: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT m.meta_value FROM aggregate_hosts h
           JOIN aggregate_metadata m ON m.aggregate_id = h.aggregate_id AND m.meta_key = 'availability_zone'
         WHERE h.host IN (SELECT host FROM aggregate_hosts WHERE aggregate_id = $1)
           AND h.aggregate_id <> $1 AND m.meta_value <> $2 ORDER BY m.meta_value",
    )
    .bind(id)
    .bind(zone)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Rewrite `services.zone` of one host from its aggregates.
pub(crate) async fn rezone_host(conn: &mut dbk::Conn, host: &str) -> Result<(), DbError> {
    sqlx::query(&format!("UPDATE services SET zone = COALESCE({HOST_ZONE}, '{DEFAULT_ZONE}') WHERE host = $1")).bind(host).execute(&mut *conn).await?;
    Ok(())
}

/// Rewrite `services.zone` of every host of aggregate `id`.
pub(crate) async fn rezone_members(conn: &mut dbk::Conn, id: i64) -> Result<(), DbError> {
    sqlx::query(&format!(
        "UPDATE services SET zone = COALESCE({HOST_ZONE}, '{DEFAULT_ZONE}') WHERE host IN (SELECT host FROM aggregate_hosts WHERE aggregate_id = $1)"
    ))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Is there a compute service on `host`?
pub(crate) async fn host_exists(conn: &mut dbk::Conn, host: &str) -> Result<bool, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM services WHERE host = $1").bind(host).fetch_optional(&mut *conn).await?;
    Ok(row.is_some())
}

/// Another aggregate than `id` with this name?
pub(crate) async fn name_taken(conn: &mut dbk::Conn, name: &str, id: i64) -> Result<bool, DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM aggregates WHERE name = $1 AND id <> $2")
        .bind(name)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

}

impl Datastore {
    /// Every aggregate with its hosts and metadata, by id.
    pub async fn aggregate_list(&self) -> Result<Vec<AggregateRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let recs: Vec<AggregateRec> =
                sqlx::query_as(&format!("SELECT {COLS} FROM aggregates ORDER BY id")).fetch_all(rp).await?;
            let hosts: Vec<(i64, String)> =
                sqlx::query_as("SELECT aggregate_id, host FROM aggregate_hosts ORDER BY host").fetch_all(rp).await?;
            let meta: Vec<(i64, String, String)> =
                sqlx::query_as("SELECT aggregate_id, meta_key, meta_value FROM aggregate_metadata")
                    .fetch_all(rp)
                    .await?;
            Ok(recs
                .into_iter()
                .map(|r| {
                    let id = r.id;
                    let h = hosts.iter().filter(|(a, _)| *a == id).map(|(_, h)| h.clone()).collect();
                    let m = meta.iter().filter(|(a, _, _)| *a == id).map(|(_, k, v)| (k.clone(), v.clone())).collect();
                    r.with(h, m)
                })
                .collect())
        })
    }

    /// One aggregate (`None` if there is none with this id).
    pub async fn aggregate_get(&self, id: i64) -> Result<Option<AggregateRow>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut conn = rp.acquire().await?;
            dbk::aggregate_load(&mut conn, id).await
        })
    }

    /// Create an aggregate, in `zone` if given; refused if the name is taken.
    pub async fn aggregate_create(&self, name: &str, zone: Option<&str>) -> Result<AggregateOutcome, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            if dbk::name_taken(&mut tx, name, -1).await? {
                return Ok(Err(AggregateRefusal::NameExists));
            }
            let inserted: Result<(i64,), sqlx::Error> =
                sqlx::query_as("INSERT INTO aggregates (uuid, name, created_at) VALUES ($1, $2, $3) RETURNING id")
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(name)
                    .bind(self.now())
                    .fetch_one(&mut *tx)
                    .await;
            let id = match inserted {
                Ok((id,)) => id,
                Err(e) if crate::is_unique_violation(&e) => return Ok(Err(AggregateRefusal::NameExists)),
                Err(e) => return Err(e.into()),
            };
            if let Some(zone) = zone {
                sqlx::query("INSERT INTO aggregate_metadata (aggregate_id, meta_key, meta_value) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(ZONE_KEY)
                    .bind(zone)
                    .execute(&mut *tx)
                    .await?;
            }
            let row = dbk::aggregate_load(&mut tx, id).await?;
            tx.commit().await?;
            Ok(row.ok_or(AggregateRefusal::NotFound))
        })
    }

    /// Rename an aggregate and set or delete metadata keys. A zone change is
    /// refused if it empties the zone, if a member host is in another
    /// aggregate with another zone, or if servers live on the member hosts
    /// (their zone would change under them); the members' zones follow.
    pub async fn aggregate_update(&self, id: i64, change: &AggregateChange) -> Result<AggregateOutcome, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let Some(agg) = dbk::aggregate_load(&mut tx, id).await? else {
                return Ok(Err(AggregateRefusal::NotFound));
            };
            if let Some(name) = &change.name
                && dbk::name_taken(&mut tx, name, id).await?
            {
                return Ok(Err(AggregateRefusal::NameExists));
            }
            let zone_change = change.metadata.get(ZONE_KEY);
            if let Some(zone) = zone_change {
                let Some(zone) = zone.as_deref().filter(|z| !z.is_empty()) else {
                    return Ok(Err(AggregateRefusal::EmptyZone));
                };
                let conflicts = dbk::zones_of_members(&mut tx, id, zone).await?;
                if !conflicts.is_empty() {
                    return Ok(Err(AggregateRefusal::ZoneConflict(conflicts)));
                }
                if agg.availability_zone() != Some(zone) && !agg.hosts.is_empty() {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM servers WHERE deleted = FALSE
                           AND host IN (SELECT host FROM aggregate_hosts WHERE aggregate_id = $1)",
                    )
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if n > 0 {
                        return Ok(Err(AggregateRefusal::ZoneHasServers));
                    }
                }
            }
            let renamed = sqlx::query("UPDATE aggregates SET name = COALESCE($2, name), updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(&change.name)
                .bind(self.now())
                .execute(&mut *tx)
                .await;
            match renamed {
                Ok(_) => {}
                Err(e) if crate::is_unique_violation(&e) => return Ok(Err(AggregateRefusal::NameExists)),
                Err(e) => return Err(e.into()),
            }
            for (key, value) in &change.metadata {
                match value {
                    Some(v) => {
                        sqlx::query(
                            "INSERT INTO aggregate_metadata (aggregate_id, meta_key, meta_value) VALUES ($1, $2, $3)
                             ON CONFLICT (aggregate_id, meta_key) DO UPDATE SET meta_value = excluded.meta_value",
                        )
                        .bind(id)
                        .bind(key)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM aggregate_metadata WHERE aggregate_id = $1 AND meta_key = $2")
                            .bind(id)
                            .bind(key)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            if zone_change.is_some() {
                dbk::rezone_members(&mut tx, id).await?;
            }
            let row = dbk::aggregate_load(&mut tx, id).await?;
            tx.commit().await?;
            Ok(row.ok_or(AggregateRefusal::NotFound))
        })
    }

    /// Delete an aggregate that has no hosts left.
    pub async fn aggregate_delete(&self, id: i64) -> Result<Result<(), AggregateRefusal>, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            let Some(agg) = dbk::aggregate_load(&mut tx, id).await? else {
                return Ok(Err(AggregateRefusal::NotFound));
            };
            if !agg.hosts.is_empty() {
                return Ok(Err(AggregateRefusal::NotEmpty));
            }
            sqlx::query("DELETE FROM aggregates WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Add a compute host to an aggregate. Checked in Nova's order: the
    /// host, the aggregate, the zone (a host is in one zone at most), then
    /// membership. The host's zone follows.
    pub async fn aggregate_add_host(&self, id: i64, host: &str) -> Result<AggregateOutcome, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            if !dbk::host_exists(&mut tx, host).await? {
                return Ok(Err(AggregateRefusal::HostNotFound));
            }
            let Some(agg) = dbk::aggregate_load(&mut tx, id).await? else {
                return Ok(Err(AggregateRefusal::NotFound));
            };
            if let Some(zone) = agg.availability_zone() {
                let conflicts = dbk::zones_of_host(&mut tx, id, host, zone).await?;
                if !conflicts.is_empty() {
                    return Ok(Err(AggregateRefusal::ZoneConflict(conflicts)));
                }
            }
            if agg.hosts.iter().any(|h| h == host) {
                return Ok(Err(AggregateRefusal::HostExists));
            }
            sqlx::query("INSERT INTO aggregate_hosts (aggregate_id, host) VALUES ($1, $2)")
                .bind(id)
                .bind(host)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE aggregates SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
            dbk::rezone_host(&mut tx, host).await?;
            let row = dbk::aggregate_load(&mut tx, id).await?;
            tx.commit().await?;
            Ok(row.ok_or(AggregateRefusal::NotFound))
        })
    }

    /// Remove a host from an aggregate (the host must exist and be a
    /// member); the host's zone follows.
    pub async fn aggregate_remove_host(&self, id: i64, host: &str) -> Result<AggregateOutcome, DbError> {
        crate::with_db!(self, |wp, rp| {
            let mut tx = dbk::begin(wp).await?;
            if !dbk::host_exists(&mut tx, host).await? {
                return Ok(Err(AggregateRefusal::HostNotFound));
            }
            if dbk::aggregate_load(&mut tx, id).await?.is_none() {
                return Ok(Err(AggregateRefusal::NotFound));
            }
            let r = sqlx::query("DELETE FROM aggregate_hosts WHERE aggregate_id = $1 AND host = $2")
                .bind(id)
                .bind(host)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(Err(AggregateRefusal::HostNotMember));
            }
            sqlx::query("UPDATE aggregates SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
            dbk::rezone_host(&mut tx, host).await?;
            let row = dbk::aggregate_load(&mut tx, id).await?;
            tx.commit().await?;
            Ok(row.ok_or(AggregateRefusal::NotFound))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostCapacity;
    use chrono::Duration;

    fn zone(z: &str) -> AggregateChange {
        AggregateChange { name: None, metadata: BTreeMap::from([(ZONE_KEY.to_string(), Some(z.to_string()))]) }
    }

    async fn zone_of(ds: &Datastore, host: &str) -> String {
        ds.service_get_by_host(host).await.expect("service").zone
    }

    /// A host's zone follows the aggregates it joins and leaves, and a host
    /// is in one zone at most (Nova: `is_safe_to_update_az`).
    #[tokio::test]
    async fn host_zone_follows_its_aggregates() {
        let (ds, _d) = crate::testutil::store().await;
        let cap = HostCapacity { vcpus: 1, memory_mb: 1, disk_gb: 1 };
        ds.service_join("h1", cap, Duration::seconds(10)).await.expect("join");
        let a = ds.aggregate_create("a", Some("az1")).await.expect("db").expect("created");
        let b = ds.aggregate_create("b", Some("az2")).await.expect("db").expect("created");
        let plain = ds.aggregate_create("plain", None).await.expect("db").expect("created");
        assert_eq!(ds.aggregate_create("a", None).await.expect("db"), Err(AggregateRefusal::NameExists));
        assert_eq!(zone_of(&ds, "h1").await, DEFAULT_ZONE);

        let a = ds.aggregate_add_host(a.id, "h1").await.expect("db").expect("added");
        assert_eq!(a.hosts, vec!["h1".to_string()]);
        assert_eq!(zone_of(&ds, "h1").await, "az1");
        assert_eq!(ds.aggregate_add_host(a.id, "h1").await.expect("db"), Err(AggregateRefusal::HostExists));
        assert_eq!(
            ds.aggregate_add_host(b.id, "h1").await.expect("db"),
            Err(AggregateRefusal::ZoneConflict(vec!["az1".into()]))
        );
        assert_eq!(ds.aggregate_add_host(b.id, "nope").await.expect("db"), Err(AggregateRefusal::HostNotFound));
        ds.aggregate_add_host(plain.id, "h1").await.expect("db").expect("a zoneless aggregate takes any host");
        assert_eq!(
            ds.aggregate_update(plain.id, &zone("az2")).await.expect("db"),
            Err(AggregateRefusal::ZoneConflict(vec!["az1".into()]))
        );
        assert_eq!(
            ds.aggregate_update(
                a.id,
                &AggregateChange { name: None, metadata: BTreeMap::from([(ZONE_KEY.to_string(), None)]) }
            )
            .await
            .expect("db"),
            Err(AggregateRefusal::EmptyZone)
        );
        let renamed = ds.aggregate_update(a.id, &zone("az3")).await.expect("db").expect("rezoned");
        assert_eq!(renamed.availability_zone(), Some("az3"));
        assert!(renamed.updated_at.is_some());
        assert_eq!(zone_of(&ds, "h1").await, "az3");

        assert_eq!(ds.aggregate_delete(a.id).await.expect("db"), Err(AggregateRefusal::NotEmpty));
        assert_eq!(ds.aggregate_remove_host(b.id, "h1").await.expect("db"), Err(AggregateRefusal::HostNotMember));
        ds.aggregate_remove_host(a.id, "h1").await.expect("db").expect("removed");
        assert_eq!(zone_of(&ds, "h1").await, DEFAULT_ZONE);
        ds.aggregate_delete(a.id).await.expect("db").expect("deleted");
        assert_eq!(ds.aggregate_get(a.id).await.expect("db"), None);
        assert_eq!(ds.aggregate_delete(a.id).await.expect("db"), Err(AggregateRefusal::NotFound));
        let names: Vec<String> = ds.aggregate_list().await.expect("list").into_iter().map(|a| a.name).collect();
        assert_eq!(names, vec!["b".to_string(), "plain".to_string()]);
    }

    /// A server that asks for a zone is placed only on that zone's hosts,
    /// and a zone is available while one of its hosts is enabled (Nova:
    /// `AvailabilityZoneFilter`, `get_availability_zones`).
    #[tokio::test]
    async fn placement_in_a_zone_takes_only_its_hosts() {
        let (ds, _d) = crate::testutil::store().await;
        let cap = |ram| HostCapacity { vcpus: 4, memory_mb: ram, disk_gb: 100 };
        ds.service_join("small", cap(1000), Duration::seconds(10)).await.expect("join");
        ds.service_join("big", cap(9000), Duration::seconds(10)).await.expect("join");
        let a = ds.aggregate_create("a", Some("az1")).await.expect("db").expect("created");
        ds.aggregate_add_host(a.id, "small").await.expect("db").expect("added");
        let pick = |zone: Option<&'static str>| {
            let ds = ds.clone();
            async move { ds.service_pick(1, 512, 1, zone, &[]).await.expect("pick").map(|s| s.host) }
        };
        assert_eq!(pick(None).await.as_deref(), Some("big"), "no zone asked: the roomiest host");
        assert_eq!(pick(Some("az1")).await.as_deref(), Some("small"));
        assert_eq!(pick(Some(DEFAULT_ZONE)).await.as_deref(), Some("big"));
        assert_eq!(pick(Some("az9")).await, None);
        assert!(ds.service_zone_available("az1").await.expect("db"));
        assert!(!ds.service_zone_available("az9").await.expect("db"));
        let small = ds.service_get_by_host("small").await.expect("small");
        ds.service_update(&small.uuid, Some(true), None, None).await.expect("disable");
        assert!(!ds.service_zone_available("az1").await.expect("db"), "its only host is disabled");
    }

    /// Metadata keys are set and deleted (a null value deletes), and a
    /// rename to a taken name is refused (Nova: `set_metadata`, `AggregateNameExists`).
    #[tokio::test]
    async fn metadata_set_delete_and_rename() {
        let (ds, _d) = crate::testutil::store().await;
        let a = ds.aggregate_create("a", None).await.expect("db").expect("created");
        ds.aggregate_create("b", None).await.expect("db").expect("created");
        let set = AggregateChange {
            name: None,
            metadata: BTreeMap::from([("k1".to_string(), Some("v1".to_string())), ("k2".into(), Some("v2".into()))]),
        };
        let a1 = ds.aggregate_update(a.id, &set).await.expect("db").expect("set");
        assert_eq!(a1.metadata.len(), 2);
        let del = AggregateChange { name: None, metadata: BTreeMap::from([("k1".to_string(), None)]) };
        let a2 = ds.aggregate_update(a.id, &del).await.expect("db").expect("deleted");
        assert_eq!(a2.metadata, BTreeMap::from([("k2".to_string(), "v2".to_string())]));
        let to_b = AggregateChange { name: Some("b".into()), metadata: BTreeMap::new() };
        assert_eq!(ds.aggregate_update(a.id, &to_b).await.expect("db"), Err(AggregateRefusal::NameExists));
        let same = AggregateChange { name: Some("a".into()), metadata: BTreeMap::new() };
        assert_eq!(ds.aggregate_update(a.id, &same).await.expect("db").expect("own name").name, "a");
        assert_eq!(ds.aggregate_update(999, &same).await.expect("db"), Err(AggregateRefusal::NotFound));
    }
}
