//! The delete plan: which steps a server delete runs, in which order, for
//! which path. It is one pure function so that the controller (which runs
//! it) and `stratus-model` (which checks it exhaustively against leases,
//! crashes and fencing) cannot drift apart.
//!
//! The order is the safety argument: on the local path the zombie is
//! recorded before anything else (capacity stays reserved while the VM may
//! run), storage is fenced before any volume is released, and the server is
//! marked deleted last; moves are cleaned and the shelve snapshot deleted
//! before the path is taken, so no copy of the server is left on any host.

use std::fmt;

/// One idempotent step of the delete operation. The order of the variants
/// is the order the steps run in on every path (a resumed delete continues
/// after the last step it completed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeleteStep {
    /// Confirm a finished resize or abort a move, destroying the other
    /// host's copy (one step per open migration).
    CleanMigration,
    /// Delete the shelve snapshot image.
    DeleteShelveSnapshot,
    /// Remote path: the host's agent destroys the VM (acknowledged, with deadlines).
    Terminate,
    /// Local path: the controller takes over; records the zombie (reserved
    /// capacity) when the server has a host.
    LocalDelete,
    /// Local path: bump the storage generation past the VM's clients.
    Fence,
    /// Detach the volumes, deleting the `delete_on_termination` ones.
    Volumes,
    /// One transaction: release ports, mark the server deleted, finish the
    /// events, emit `instance.delete.end`, close the operation.
    Release,
}

impl DeleteStep {
    /// Every step, in order.
    pub const ALL: [DeleteStep; 7] = [
        Self::CleanMigration,
        Self::DeleteShelveSnapshot,
        Self::Terminate,
        Self::LocalDelete,
        Self::Fence,
        Self::Volumes,
        Self::Release,
    ];

    /// The name stored as the operation's cursor and used by fault points
    /// (`before:<name>`, `after:<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CleanMigration => "clean_migration",
            Self::DeleteShelveSnapshot => "delete_shelve_snapshot",
            Self::Terminate => "terminate",
            Self::LocalDelete => "local_delete",
            Self::Fence => "fence",
            Self::Volumes => "volumes",
            Self::Release => "release",
        }
    }

    /// The step named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Runs once per item (one per open migration): completing one does not
    /// complete the others, so a resume re-plans it from the data.
    pub fn repeats(self) -> bool {
        self == Self::CleanMigration
    }
}

impl fmt::Display for DeleteStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a delete goes, decided from the server row and its host's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeletePath {
    /// No VM runs anywhere: never scheduled, or shelved and offloaded.
    Unplaced,
    /// The host's lease is valid: its agent destroys the VM.
    Remote,
    /// The host is down, forced down, gone, or missed a deadline: the
    /// controller deletes on its own, fenced.
    Local,
}

/// What the server holds besides its VM, read before planning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteFacts {
    /// Moves in progress (each leaves a copy on another host).
    pub open_migrations: usize,
    /// A shelve snapshot image exists.
    pub shelve_snapshot: bool,
    /// Volumes are attached.
    pub volumes: bool,
}

/// The steps of a delete on `path`, in order.
pub fn delete_plan(path: DeletePath, facts: DeleteFacts) -> Vec<DeleteStep> {
    use DeleteStep::*;
    let mut v = vec![CleanMigration; facts.open_migrations];
    if facts.shelve_snapshot {
        v.push(DeleteShelveSnapshot);
    }
    match path {
        DeletePath::Remote => v.push(Terminate),
        // No VM runs on an unplaced server, yet the same fenced sequence is
        // harmless there (no zombie: no host; fencing finds no client).
        DeletePath::Unplaced | DeletePath::Local => v.extend([LocalDelete, Fence]),
    }
    if facts.volumes {
        v.push(Volumes);
    }
    v.push(Release);
    v
}

/// The steps of `plan` still to run when `completed` is the last step the
/// operation recorded as done (`None`: nothing yet).
pub fn remaining(plan: &[DeleteStep], completed: Option<DeleteStep>) -> Vec<DeleteStep> {
    plan.iter().copied().filter(|s| completed.is_none_or(|c| *s > c || (*s == c && s.repeats()))).collect()
}

/// The path a delete already committed to, read from its last completed
/// step: after `terminate` it is remote, after `local_delete` or `fence`
/// local; otherwise it is decided afresh (after `volumes` only the shared
/// tail is left).
pub fn committed_path(completed: Option<DeleteStep>) -> Option<DeletePath> {
    match completed? {
        DeleteStep::Terminate => Some(DeletePath::Remote),
        DeleteStep::LocalDelete | DeleteStep::Fence => Some(DeletePath::Local),
        // Before the path's own steps nothing is committed; after them only
        // the tail both paths share is left, whichever path is decided.
        DeleteStep::CleanMigration | DeleteStep::DeleteShelveSnapshot | DeleteStep::Volumes | DeleteStep::Release => {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeleteStep::*;

    #[test]
    fn local_path_fences_before_releasing_anything() {
        let f = DeleteFacts { open_migrations: 1, shelve_snapshot: true, volumes: true };
        assert_eq!(
            delete_plan(DeletePath::Local, f),
            vec![CleanMigration, DeleteShelveSnapshot, LocalDelete, Fence, Volumes, Release]
        );
        assert_eq!(delete_plan(DeletePath::Remote, DeleteFacts::default()), vec![Terminate, Release]);
    }

    #[test]
    fn a_resume_continues_after_the_last_completed_step() {
        let p = delete_plan(DeletePath::Local, DeleteFacts { open_migrations: 2, volumes: true, ..Default::default() });
        assert_eq!(remaining(&p, Some(Fence)), vec![Volumes, Release]);
        assert_eq!(remaining(&p, Some(CleanMigration)).len(), p.len());
        assert_eq!(remaining(&p, None), p);
        for s in DeleteStep::ALL {
            assert_eq!(DeleteStep::parse(s.as_str()), Some(s));
        }
    }
}
