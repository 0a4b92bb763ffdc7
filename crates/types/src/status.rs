//! Status words of the smaller tables: a compute service's liveness and the
//! result of an instance-action event. The database keeps Nova's strings;
//! the code (and the SQL built by `stratus-db`) names them through these enums.

use crate::state::{UnknownState, string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// A compute service's `state`, as the liveness monitor last wrote it
    /// (the API's `state` column of `openstack compute service list`).
    ServiceState {
        /// Its lease is current.
        Up => "up",
        /// Its lease lapsed (or it never renewed).
        Down => "down",
    }
);

string_enum!(
    /// Who locked a server (Nova's `locked_by`): an admin's lock can only be
    /// lifted by an admin.
    LockedBy {
        /// The server's own project.
        Owner => "owner",
        /// An admin of another project.
        Admin => "admin",
    }
);

string_enum!(
    /// The `result` of an instance-action event (and the `message` of an
    /// action with a failed event), as Nova writes them.
    EventResult {
        /// The step finished.
        Success => "Success",
        /// The step failed.
        Error => "Error",
    }
);

impl EventResult {
    /// The result of a step that did (`true`) or did not succeed.
    pub fn of(ok: bool) -> Self {
        if ok { Self::Success } else { Self::Error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_round_trip_through_their_strings() {
        for s in [ServiceState::Up, ServiceState::Down] {
            assert_eq!(s.as_str().parse::<ServiceState>(), Ok(s));
        }
        assert_eq!(EventResult::of(true).as_str(), "Success");
        assert_eq!(EventResult::of(false).as_str(), "Error");
        assert!("sideways".parse::<ServiceState>().is_err());
    }
}
