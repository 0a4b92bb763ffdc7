//! An in-memory [`BlockBackend`] for tests (this crate's and the HTTP
//! layer's): it keeps RBD's delete semantics (a watched volume is
//! [`BlockError::Busy`]) and can be told to refuse deletes or creates a
//! number of times, so the durable retry paths can be exercised.

use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use stratus_blockstore::{BlockBackend, BlockError, ClientId, OpenClient};

/// One stored volume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemVolume {
    /// Size GiB.
    pub size_gb: u64,
    /// Image file it was created from.
    pub image: Option<PathBuf>,
    /// Clients holding it open.
    pub watchers: Vec<ClientId>,
}

#[derive(Default)]
struct Inner {
    volumes: Mutex<HashMap<String, MemVolume>>,
    fenced: Mutex<HashSet<ClientId>>,
    busy_deletes: AtomicU32,
    failing_creates: AtomicU32,
    next_client: AtomicU64,
    delete_calls: AtomicU32,
    refused_deletes: AtomicU32,
    hanging_deletes: AtomicU32,
    slow_deletes: AtomicU32,
    delete_delay_ms: std::sync::atomic::AtomicU64,
    delayed_creates: AtomicU32,
    create_delay_ms: AtomicU64,
    trash: Mutex<HashSet<String>>,
    snapshots: Mutex<HashSet<(String, String)>>,
    reverts: AtomicU32,
    failing_reverts: AtomicU32,
}

/// The in-memory backend; clones share state.
#[derive(Clone, Default)]
pub struct MemBackend(Arc<Inner>);

impl MemBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` deletes fail with [`BlockError::Busy`] (as if a zombie
    /// client still watched the volume).
    pub fn busy_deletes(&self, n: u32) {
        self.0.busy_deletes.store(n, Ordering::SeqCst);
    }

    /// The next `n` deletes fail with a backend error other than `Busy`
    /// (as an rbd image with children would), which sends them to the trash.
    pub fn refused_deletes(&self, n: u32) {
        self.0.refused_deletes.store(n, Ordering::SeqCst);
    }

    /// The next `n` deletes take `delay` and then remove the volume (an
    /// `rbd rm` behind a paused OSD that finishes once it resumes).
    pub fn slow_deletes(&self, n: u32, delay: std::time::Duration) {
        self.0.delete_delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.0.slow_deletes.store(n, Ordering::SeqCst);
    }

    /// The next `n` deletes never answer (as an `rbd rm` stuck behind a dead
    /// client's watch, or a cluster that stopped answering).
    pub fn hanging_deletes(&self, n: u32) {
        self.0.hanging_deletes.store(n, Ordering::SeqCst);
    }

    /// The next `n` creates take `delay` before they make the volume (as a
    /// copy behind a paused OSD; a long delay is a create that never ends).
    pub fn delayed_creates(&self, n: u32, delay: std::time::Duration) {
        self.0.create_delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.0.delayed_creates.store(n, Ordering::SeqCst);
    }

    /// Volumes in the trash, waiting for a purge.
    pub fn trash_len(&self) -> usize {
        self.0.trash.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The next `n` creates fail with a backend error.
    pub fn failing_creates(&self, n: u32) {
        self.0.failing_creates.store(n, Ordering::SeqCst);
    }

    /// Reverts done so far (a volume given its snapshot's bytes back).
    pub fn reverts(&self) -> u32 {
        self.0.reverts.load(Ordering::SeqCst)
    }

    /// The next `n` reverts fail with a backend error.
    pub fn failing_reverts(&self, n: u32) {
        self.0.failing_reverts.store(n, Ordering::SeqCst);
    }

    /// A snapshot of one volume.
    pub fn volume(&self, name: &str) -> Option<MemVolume> {
        self.0.volumes.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// How many volumes exist.
    pub fn len(&self) -> usize {
        self.0.volumes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// No volume exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delete calls so far (busy ones included).
    pub fn delete_calls(&self) -> u32 {
        self.0.delete_calls.load(Ordering::SeqCst)
    }

    fn take(counter: &AtomicU32) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    async fn put(&self, name: &str, size_gb: u64, image: Option<PathBuf>) -> Result<(), BlockError> {
        if Self::take(&self.0.delayed_creates) {
            let ms = self.0.create_delay_ms.load(Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if Self::take(&self.0.failing_creates) {
            return Err(BlockError::Backend(format!("injected create failure for {name}")));
        }
        self.0.volumes.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_insert(MemVolume {
            size_gb,
            image,
            watchers: vec![],
        });
        Ok(())
    }
}

struct MemClient {
    backend: MemBackend,
    name: String,
    id: ClientId,
}

#[async_trait]
impl OpenClient for MemClient {
    fn id(&self) -> ClientId {
        self.id.clone()
    }

    async fn write(&mut self, _offset: u64, _data: &[u8]) -> Result<(), BlockError> {
        if self.backend.0.fenced.lock().unwrap_or_else(|p| p.into_inner()).contains(&self.id) {
            return Err(BlockError::Fenced(self.id.clone()));
        }
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BlockError> {
        if let Some(v) = self.backend.0.volumes.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&self.name) {
            v.watchers.retain(|w| w != &self.id);
        }
        Ok(())
    }
}

#[async_trait]
impl BlockBackend for MemBackend {
    fn kind(&self) -> &'static str {
        "mem"
    }

    async fn create(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        self.put(name, size_gb, None).await
    }

    async fn snapshot_create(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        if self.volume(volume).is_none() {
            return Err(BlockError::NotFound(volume.to_string()));
        }
        self.0.snapshots.lock().unwrap_or_else(|p| p.into_inner()).insert((volume.into(), snapshot.into()));
        Ok(())
    }

    async fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        self.0.snapshots.lock().unwrap_or_else(|p| p.into_inner()).remove(&(volume.into(), snapshot.into()));
        Ok(())
    }

    async fn create_from_snapshot(
        &self,
        name: &str,
        size_gb: u64,
        volume: &str,
        snapshot: &str,
    ) -> Result<(), BlockError> {
        if !self.0.snapshots.lock().unwrap_or_else(|p| p.into_inner()).contains(&(volume.into(), snapshot.into())) {
            return Err(BlockError::NotFound(format!("{volume}@{snapshot}")));
        }
        self.put(name, size_gb, None).await
    }

    async fn snapshot_revert(&self, volume: &str, snapshot: &str) -> Result<(), BlockError> {
        if !self.0.snapshots.lock().unwrap_or_else(|p| p.into_inner()).contains(&(volume.into(), snapshot.into())) {
            return Err(BlockError::NotFound(format!("{volume}@{snapshot}")));
        }
        let watchers = self.watchers(volume).await?;
        if !watchers.is_empty() {
            return Err(BlockError::Busy { name: volume.into(), watchers });
        }
        if Self::take(&self.0.failing_reverts) {
            return Err(BlockError::Backend(format!("revert of {volume} failed (test)")));
        }
        self.0.reverts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn snapshots(&self) -> Result<Vec<(String, String)>, BlockError> {
        let mut v: Vec<_> = self.0.snapshots.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        v.sort();
        Ok(v)
    }

    async fn create_from_image(
        &self,
        name: &str,
        size_gb: u64,
        image: &Path,
        _disk_format: stratus_image::DiskFormat,
    ) -> Result<(), BlockError> {
        if !image.exists() {
            return Err(BlockError::Backend(format!("image file {} not found", image.display())));
        }
        self.put(name, size_gb, Some(image.to_path_buf())).await
    }

    async fn extend(&self, name: &str, size_gb: u64) -> Result<(), BlockError> {
        let mut vols = self.0.volumes.lock().unwrap_or_else(|p| p.into_inner());
        let v = vols.get_mut(name).ok_or_else(|| BlockError::NotFound(name.to_string()))?;
        v.size_gb = v.size_gb.max(size_gb);
        Ok(())
    }

    async fn exists(&self, name: &str) -> Result<bool, BlockError> {
        Ok(self.volume(name).is_some())
    }

    async fn watchers(&self, name: &str) -> Result<Vec<ClientId>, BlockError> {
        self.volume(name).map(|v| v.watchers).ok_or_else(|| BlockError::NotFound(name.to_string()))
    }

    async fn open(&self, name: &str) -> Result<Box<dyn OpenClient>, BlockError> {
        let id = ClientId(format!("mem:{name}:{}", self.0.next_client.fetch_add(1, Ordering::SeqCst)));
        let mut vols = self.0.volumes.lock().unwrap_or_else(|p| p.into_inner());
        let v = vols.get_mut(name).ok_or_else(|| BlockError::NotFound(name.to_string()))?;
        v.watchers.push(id.clone());
        Ok(Box::new(MemClient { backend: self.clone(), name: name.to_string(), id }))
    }

    async fn fence(&self, name: &str, client: &ClientId) -> Result<(), BlockError> {
        self.0.fenced.lock().unwrap_or_else(|p| p.into_inner()).insert(client.clone());
        if let Some(v) = self.0.volumes.lock().unwrap_or_else(|p| p.into_inner()).get_mut(name) {
            v.watchers.retain(|w| w != client);
        }
        Ok(())
    }

    async fn unfence(&self, client: &ClientId) -> Result<(), BlockError> {
        self.0.fenced.lock().unwrap_or_else(|p| p.into_inner()).remove(client);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), BlockError> {
        self.0.delete_calls.fetch_add(1, Ordering::SeqCst);
        if Self::take(&self.0.hanging_deletes) {
            std::future::pending::<()>().await;
        }
        if Self::take(&self.0.slow_deletes) {
            let ms = self.0.delete_delay_ms.load(Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let mut vols = self.0.volumes.lock().unwrap_or_else(|p| p.into_inner());
        let watchers = vols.get(name).map(|v| v.watchers.clone()).unwrap_or_default();
        if Self::take(&self.0.busy_deletes) || !watchers.is_empty() {
            return Err(BlockError::Busy { name: name.to_string(), watchers });
        }
        if Self::take(&self.0.refused_deletes) {
            return Err(BlockError::Backend(format!("injected delete refusal for {name}")));
        }
        vols.remove(name);
        Ok(())
    }

    async fn delete_deferred(&self, name: &str) -> Result<(), BlockError> {
        let mut vols = self.0.volumes.lock().unwrap_or_else(|p| p.into_inner());
        if vols.get(name).is_some_and(|v| !v.watchers.is_empty()) {
            return Err(BlockError::Busy { name: name.to_string(), watchers: vec![] });
        }
        if vols.remove(name).is_some() {
            self.0.trash.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string());
        }
        Ok(())
    }

    async fn purge_deferred(&self) -> Result<usize, BlockError> {
        self.0.trash.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(0)
    }
}

/// Insert a live server row `id` of `project` (no port, no quota limit),
/// so tests can attach volumes to a server that exists and belongs to
/// someone.
pub async fn insert_server(
    ds: &stratus_db::Datastore,
    id: stratus_types::ServerId,
    project: &str,
) -> Result<(), stratus_db::DbError> {
    use stratus_types::{OpKind, OperationId, PowerState, VmState};
    let row = stratus_db::ServerRow {
        id,
        name: format!("server-{project}"),
        project_id: project.into(),
        user_id: format!("user-{project}"),
        image_id: None,
        flavor_id: "1".into(),
        flavor_name: "m1.tiny".into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        vm_state: VmState::Active,
        task_state: None,
        power_state: PowerState::Running,
        host: None,
        metadata: "{}".into(),
        key_name: None,
        locked: false,
        locked_by: None,
        locked_reason: None,
        availability_zone: None,
        reservation_id: "r-test".into(),
        hostname: format!("server-{project}"),
        fault: None,
        progress: 0,
        generation: 1,
        launched_at: None,
        terminated_at: None,
        created_at: stratus_db::SET_ON_INSERT,
        updated_at: stratus_db::SET_ON_INSERT,
        deleted_at: None,
        deleted: false,
        shelved_image_id: None,
        description: None,
        user_data: None,
        scheduler_hints: None,
        access_ip_v4: None,
        access_ip_v6: None,
    };
    let new = stratus_db::NewServer {
        row,
        tags: Vec::new(),
        allocate_port: false,
        operation: stratus_db::NewOperation {
            id: OperationId::new(),
            kind: OpKind::Create,
            server_id: id,
            request_id: "req-test".into(),
            user_id: format!("user-{project}"),
            project_id: project.into(),
            params: "{}".into(),
        },
    };
    let unlimited = stratus_db::QuotaLimits::UNLIMITED;
    ds.server_create(&new, unlimited).await.map(|_| ())
}
