//! [`ClusterLabel`], the value of the optional `cluster` label, checked
//! when it is made.

use std::sync::Arc;

/// The most bytes a [`ClusterLabel`] holds.
pub const MAX_CLUSTER_LABEL_BYTES: usize = 64;

/// The value of the `cluster` label a [`Publisher`](super::Publisher) adds
/// to every series: 1 to [`MAX_CLUSTER_LABEL_BYTES`] printable ASCII
/// characters (space to `~`), so a dashboard shows what was configured.
///
/// ```
/// use raft_io::telemetry::{ClusterLabel, LabelError};
///
/// assert_eq!(ClusterLabel::new("payments-eu")?.as_str(), "payments-eu");
/// assert_eq!(ClusterLabel::new(""), Err(LabelError::Empty));
/// assert!(matches!(ClusterLabel::new("a\nb"), Err(LabelError::NotPrintable { at: 1, .. })));
/// # Ok::<(), LabelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterLabel(Arc<str>);

/// Why a [`ClusterLabel`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The value is empty.
    #[error("a cluster label must not be empty")]
    Empty,
    /// The value holds more than [`MAX_CLUSTER_LABEL_BYTES`] bytes.
    #[error("a cluster label holds at most {max} bytes; this one holds {len}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// [`MAX_CLUSTER_LABEL_BYTES`].
        max: usize,
    },
    /// The value holds a character other than printable ASCII.
    #[error("a cluster label holds printable ASCII only (space to '~'); {found:?} at byte {at} is not")]
    NotPrintable {
        /// Its byte offset.
        at: usize,
        /// The character.
        found: char,
    },
}

impl ClusterLabel {
    /// `value`, once checked.
    ///
    /// # Errors
    ///
    /// [`LabelError::Empty`], [`LabelError::TooLong`] (over
    /// [`MAX_CLUSTER_LABEL_BYTES`]), [`LabelError::NotPrintable`] (the
    /// first character outside space to `~`).
    pub fn new(value: &str) -> Result<Self, LabelError> {
        if value.is_empty() {
            return Err(LabelError::Empty);
        }
        if let Some((at, found)) = value.char_indices().find(|&(_, c)| !(' '..='~').contains(&c)) {
            return Err(LabelError::NotPrintable { at, found });
        }
        if value.len() > MAX_CLUSTER_LABEL_BYTES {
            return Err(LabelError::TooLong { len: value.len(), max: MAX_CLUSTER_LABEL_BYTES });
        }
        Ok(Self(value.into()))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClusterLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_one_to_64_printable_ascii_characters() {
        for ok in ["a", " ", "~", "eu-west/prod 2", &"x".repeat(MAX_CLUSTER_LABEL_BYTES)] {
            assert_eq!(ClusterLabel::new(ok).map(|l| l.to_string()).as_deref(), Ok(ok));
        }
        assert_eq!(ClusterLabel::new(""), Err(LabelError::Empty));
        let long = "x".repeat(MAX_CLUSTER_LABEL_BYTES + 1);
        assert_eq!(ClusterLabel::new(&long), Err(LabelError::TooLong { len: 65, max: 64 }));
        for (bad, at, found) in [
            ("a\nb", 1, '\n'),
            ("\u{7f}", 0, '\u{7f}'),
            ("ab\té", 2, '\t'),
            ("é", 0, 'é'),
            ("a\u{202e}", 1, '\u{202e}'),
        ] {
            assert_eq!(ClusterLabel::new(bad), Err(LabelError::NotPrintable { at, found }), "{bad:?}");
        }
        // A long value with a bad character names the character.
        let both = format!("{long}\0");
        assert!(matches!(ClusterLabel::new(&both), Err(LabelError::NotPrintable { at: 65, .. })));
    }
}
