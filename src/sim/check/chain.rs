//! A node's log as a chain of prefix hashes: `hash(i)` digests every entry
//! `1..=i`. Two logs agree on a prefix exactly when their hashes at its end
//! agree, which turns Log Matching and Leader Completeness into O(1) checks.

use std::slice::Iter;

use super::Violation;
use super::log_matching::LogMatching;
use crate::log::RaftLog;
use crate::rng::mix;
use crate::sim::log::{LogChange, SimLog, entry_digest};
use crate::types::{Index, Term};

/// Prefix hashes of one node's log.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chain {
    base_index: Index,
    base_hash: u64,
    hashes: Vec<u64>,
}

impl Chain {
    /// Follows `log` from scratch (after a restart).
    pub(crate) fn from_log(log: &SimLog, matching: &mut LogMatching) -> Result<Self, Violation> {
        let meta = log.snapshot_meta();
        let mut chain =
            Self { base_index: meta.index, base_hash: matching.anchor(meta.index, meta.term), hashes: Vec::new() };
        let mut batch = Vec::new();
        let mut lo = log.first_index();
        while lo <= log.last_index() {
            batch.clear();
            let hi = (log.last_index() + 1).min(lo + 4096);
            if log.entries(lo, hi, u64::MAX, &mut batch).is_err() {
                break;
            }
            for e in &batch {
                chain.push(e.index, e.term, entry_digest(e), matching)?;
            }
            lo = hi;
        }
        Ok(chain)
    }

    /// The last index the chain covers.
    pub(crate) fn last(&self) -> Index {
        self.base_index + self.hashes.len() as Index
    }

    /// The prefix hash at `index`, if the chain covers it.
    pub(crate) fn hash_at(&self, index: Index) -> Option<u64> {
        if index == self.base_index {
            return Some(self.base_hash);
        }
        let k = index.checked_sub(self.base_index + 1)?;
        self.hashes.get(k as usize).copied()
    }

    /// The snapshot index below which the chain knows nothing.
    pub(crate) fn base_index(&self) -> Index {
        self.base_index
    }

    fn push(&mut self, index: Index, term: Term, digest: u64, matching: &mut LogMatching) -> Result<(), Violation> {
        let prev = self.last();
        if index != prev + 1 {
            return Err(Violation::new(
                "Log Matching",
                format!("append of index {index} after {prev}: the log is not contiguous"),
            ));
        }
        // The prefix hash extended by one entry digest.
        let hash = mix(self.hash_at(prev).unwrap_or(0), digest);
        matching.register(index, term, hash)?;
        self.hashes.push(hash);
        Ok(())
    }

    /// Follows one journaled change of the node's log.
    pub(crate) fn apply(
        &mut self,
        change: LogChange,
        digests: &mut Iter<'_, (Index, Term, u64)>,
        matching: &mut LogMatching,
    ) -> Result<(), Violation> {
        match change {
            LogChange::Appended { count } => {
                for &(index, term, digest) in digests.by_ref().take(count) {
                    self.push(index, term, digest, matching)?;
                }
            }
            LogChange::Truncated { from } => {
                let keep = from.saturating_sub(self.base_index + 1) as usize;
                self.hashes.truncate(keep);
            }
            LogChange::Snapshot { index, term, kept } => {
                if kept && index <= self.last() && index >= self.base_index {
                    let base_hash = self.hash_at(index).unwrap_or(0);
                    self.hashes.drain(..(index - self.base_index) as usize);
                    self.base_hash = base_hash;
                } else {
                    self.base_hash = matching.anchor(index, term);
                    self.hashes.clear();
                }
                self.base_index = index;
            }
        }
        Ok(())
    }
}
