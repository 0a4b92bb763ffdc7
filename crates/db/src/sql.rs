//! State words in SQL text. Queries name states through the enums of
//! `stratus-types` (never as literals), so a renamed or added state cannot
//! leave a query behind; these helpers quote them. The words are the enums'
//! own constants (lower-case letters, `-` and `_`), never user input.

use std::fmt::Display;

/// One state word as an SQL string literal: `'soft-delete'`.
pub(crate) fn lit(state: impl Display) -> String {
    format!("'{state}'")
}

/// Several state words as the inside of an SQL `IN (...)` list: `'pending','running'`.
pub(crate) fn list<T: Display>(states: &[T]) -> String {
    states.iter().map(lit).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_types::{OpState, VmState};

    #[test]
    fn quotes_like_the_literals_it_replaces() {
        assert_eq!(lit(VmState::SoftDeleted), "'soft-delete'");
        assert_eq!(list(&OpState::OPEN), "'pending','running'");
    }
}
