//! **Log Matching** (Raft §5.3): if two logs contain an entry with the same
//! index and term, the logs are identical in all entries up through that
//! index.
//!
//! Every entry any node appends is registered under its (index, term) with
//! the hash of its log prefix; a second registration with another prefix
//! hash is a violation.

use std::collections::HashMap;

use super::Violation;
use crate::types::{Index, Term};

/// The prefix hash of every (index, term) ever appended anywhere.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogMatching {
    prefixes: HashMap<(Index, Term), u64>,
}

impl LogMatching {
    pub(crate) fn register(&mut self, index: Index, term: Term, prefix: u64) -> Result<(), Violation> {
        match self.prefixes.insert((index, term), prefix) {
            Some(old) if old != prefix => Err(Violation::new(
                "Log Matching",
                format!("two logs hold index {index} term {term} with different prefixes"),
            )),
            _ => Ok(()),
        }
    }

    /// The prefix hash of a snapshot boundary (index, term): known from the
    /// node that appended it; 0 for the empty prefix.
    pub(crate) fn anchor(&self, index: Index, term: Term) -> u64 {
        if index == 0 {
            return 0;
        }
        self.prefixes.get(&(index, term)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_index_and_term_with_another_prefix_is_caught() {
        let mut m = LogMatching::default();
        m.register(3, 2, 111).unwrap();
        m.register(3, 2, 111).unwrap();
        m.register(3, 3, 222).unwrap();
        let v = m.register(3, 2, 999).unwrap_err();
        assert_eq!(v.property, "Log Matching");
    }
}
