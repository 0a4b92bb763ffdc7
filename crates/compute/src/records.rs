//! The storage-client processes a host's agent opened for each VM, on disk.
//!
//! A client that is a process of its own (the rbd holder) outlives the agent
//! that started it, as a VM outlives its host agent. An agent that restarts
//! has lost its in-memory clients, yet must still end those processes when
//! it destroys or reaps the VM they belong to. So each one is recorded, per
//! server, in `<state dir>/storage-clients/<server id>.json`, written
//! atomically (temporary file, fsync, rename, fsync of the directory), and
//! dropped only once the process is gone.

use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use stratus_blockstore::ClientProcess;
use stratus_types::{AttachmentId, ServerId};

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A record file does not parse.
    #[error("storage client record {} is corrupt: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// One storage client process of a VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The attachment it serves.
    pub attachment_id: AttachmentId,
    /// The volume it holds open.
    pub volume: String,
    /// The process.
    pub process: ClientProcess,
    /// The client's id as the storage backend names it (what a fence
    /// names); empty in records written before it was kept.
    #[serde(default)]
    pub client: String,
}

/// Wrap an I/O error of `op` on `path`.
fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RecordError {
    let path = path.to_path_buf();
    move |source| RecordError::Io { op, path, source }
}

#[derive(Default, Serialize, Deserialize)]
struct RecordFile {
    clients: Vec<Held>,
}

/// The records of one host (none without a state directory: then clients
/// live in memory only, as before).
pub struct ClientRecords {
    dir: Option<PathBuf>,
    /// Serialises read-modify-write of the files.
    lock: Mutex<()>,
}

impl ClientRecords {
    /// Records kept in `dir` (created on first use).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir, lock: Mutex::new(()) }
    }

    fn path(dir: &Path, server: &ServerId) -> PathBuf {
        dir.join(format!("{server}.json"))
    }

    fn read(path: &Path) -> Result<Vec<Held>, RecordError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<RecordFile>(&bytes)
                .map(|f| f.clients)
                .map_err(|source| RecordError::Corrupt { path: path.to_path_buf(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io("reading", path)(e)),
        }
    }

    /// Replace the record of a server (none left: the file goes).
    fn write(dir: &Path, server: &ServerId, clients: Vec<Held>) -> Result<(), RecordError> {
        let path = Self::path(dir, server);
        if clients.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io("removing", &path)(e)),
            }
        } else {
            std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
            let tmp = dir.join(format!(".{server}.json.tmp"));
            let body = serde_json::to_vec_pretty(&RecordFile { clients })
                .map_err(|source| RecordError::Corrupt { path: path.clone(), source })?;
            let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
            f.write_all(&body).map_err(io("writing", &tmp))?;
            f.sync_all().map_err(io("syncing", &tmp))?;
            std::fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
        }
        // The rename (or removal) itself must survive a crash too.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing", dir))
    }

    /// The client processes recorded for `server`.
    pub fn load(&self, server: &ServerId) -> Result<Vec<Held>, RecordError> {
        let Some(dir) = &self.dir else { return Ok(Vec::new()) };
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Self::read(&Self::path(dir, server))
    }

    /// Record a client process of `server` (replacing any of the same
    /// attachment). Without a state directory: nothing is kept.
    pub fn add(&self, server: &ServerId, held: Held) -> Result<(), RecordError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut clients = Self::read(&Self::path(dir, server))?;
        clients.retain(|h| h.attachment_id != held.attachment_id);
        clients.push(held);
        Self::write(dir, server, clients)
    }

    /// Forget one client process of `server` (it is gone).
    pub fn remove(&self, server: &ServerId, held: &Held) -> Result<(), RecordError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut clients = Self::read(&Self::path(dir, server))?;
        let before = clients.len();
        clients.retain(|h| h != held);
        if clients.len() == before {
            return Ok(());
        }
        Self::write(dir, server, clients)
    }

    /// Servers that have a record.
    pub fn servers(&self) -> Result<Vec<ServerId>, RecordError> {
        let Some(dir) = &self.dir else { return Ok(Vec::new()) };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("listing", dir)(e)),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).and_then(|n| n.parse().ok()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(a: AttachmentId, pid: u32) -> Held {
        Held {
            attachment_id: a,
            volume: "v".into(),
            process: ClientProcess { pid, marker: format!("m{pid}") },
            client: format!("c{pid}"),
        }
    }

    #[test]
    fn records_survive_a_new_instance_and_go_when_empty() {
        let dir = std::env::temp_dir().join(format!("stratus-records-{}", uuid_like()));
        let server = ServerId::new();
        let (a1, a2) = (AttachmentId::new(), AttachmentId::new());
        let r = ClientRecords::new(Some(dir.clone()));
        r.add(&server, held(a1, 10)).expect("add");
        r.add(&server, held(a2, 11)).expect("add");
        r.add(&server, held(a2, 12)).expect("replace");
        // As read by an agent that restarted.
        let again = ClientRecords::new(Some(dir.clone()));
        assert_eq!(again.load(&server).expect("load"), vec![held(a1, 10), held(a2, 12)]);
        assert_eq!(again.servers().expect("servers"), vec![server]);
        again.remove(&server, &held(a1, 10)).expect("remove");
        again.remove(&server, &held(a2, 12)).expect("remove");
        assert!(again.load(&server).expect("load").is_empty());
        assert!(again.servers().expect("servers").is_empty(), "an empty record leaves no file");
        assert!(std::fs::read_dir(&dir).expect("dir").next().is_none(), "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_state_dir_nothing_is_kept() {
        let r = ClientRecords::new(None);
        let server = ServerId::new();
        r.add(&server, held(AttachmentId::new(), 1)).expect("add");
        assert!(r.load(&server).expect("load").is_empty());
    }

    fn uuid_like() -> String {
        ServerId::new().to_string()
    }
}
