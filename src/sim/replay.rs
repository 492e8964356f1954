//! [`Scenario`]: everything that determines a [`Simulation`](super::Simulation)
//! run — fault profile, node count, rounds, seed — as one line of text that
//! failure reports print and the library reads back, from the
//! [`REPLAY_ENV`] environment variable or through
//! [`Simulation::replay`](super::Simulation::replay).

use std::fmt;
use std::str::FromStr;

use super::FaultProfile;

/// The environment variable [`Simulation::run_all`](super::Simulation::run_all)
/// reads: when set to a scenario line (as a failure prints it), only that
/// scenario runs.
pub const REPLAY_ENV: &str = "RAFT_IO_REPLAY";

/// The most nodes a scenario starts with.
pub const MAX_SCENARIO_NODES: usize = 7;

/// The most rounds a scenario runs.
pub const MAX_SCENARIO_ROUNDS: usize = 1_000_000;

/// Why a scenario or a parameter was refused; each names what it refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The profile name is not one of [`FaultProfile::ALL`].
    #[error("unknown fault profile {0:?} (expected one of: {names})", names = profile_names())]
    UnknownProfile(String),
    /// A `key=value` pair with a key scenarios do not have.
    #[error("unknown scenario parameter {0:?} (expected profile, nodes, rounds, seed, durable)")]
    UnknownParameter(String),
    /// A part of the line that is not `key=value`.
    #[error("malformed scenario part {0:?} (expected key=value)")]
    Malformed(String),
    /// A value that does not parse.
    #[error("scenario parameter {key}: {value:?} is not a valid {expected}")]
    BadValue {
        /// The parameter.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A required parameter is missing.
    #[error("scenario parameter {0} is missing")]
    Missing(&'static str),
    /// A parameter given twice (which one was meant cannot be told).
    #[error("scenario parameter {0} is given twice")]
    Repeated(String),
    /// A value outside its range.
    #[error("scenario parameter {key} = {value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The parameter.
        key: &'static str,
        /// Its value.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// The [`RaftConfig`](crate::RaftConfig) node `node` would run with,
    /// as [`SimConfig::configure`](super::SimConfig::configure) leaves it,
    /// is one the node refuses.
    #[error("node {node}'s RaftConfig, as `configure` leaves it, is invalid: field `{field}`: {reason}")]
    InvalidConfig {
        /// The node.
        node: crate::types::NodeId,
        /// The offending field of its configuration.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Durable mode needs the `persistence` feature.
    #[error("scenario parameter durable=true needs the `persistence` feature")]
    DurableUnavailable,
}

fn profile_names() -> String {
    FaultProfile::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

impl FaultProfile {
    /// The profile's name, as scenario lines spell it (`"crashes"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Calm => "calm",
            Self::Lossy => "lossy",
            Self::Partitions => "partitions",
            Self::Crashes => "crashes",
            Self::Membership => "membership",
            Self::BuggyPeers => "buggy-peers",
            Self::Pauses => "pauses",
            Self::Everything => "everything",
            Self::Fragile => "fragile",
        }
    }
}

impl fmt::Display for FaultProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultProfile {
    type Err = ScenarioError;

    /// Parses a profile name, ignoring case, `-` and `_`
    /// (`"buggy-peers"`, `"BuggyPeers"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squash = |t: &str| t.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
        let wanted = squash(s);
        FaultProfile::ALL
            .into_iter()
            .find(|p| squash(p.name()) == wanted)
            .ok_or_else(|| ScenarioError::UnknownProfile(s.to_owned()))
    }
}

/// One simulation run: fault profile, node count, rounds and seed (and
/// durable mode). Its `Display` is the line a failure prints; `FromStr`
/// reads it back.
///
/// ```
/// use raft_io::sim::{FaultProfile, Scenario};
///
/// let s = Scenario::new(FaultProfile::Crashes, 5, 200, 17)?;
/// assert_eq!(s.to_string(), "profile=crashes nodes=5 rounds=200 seed=17");
/// assert_eq!(s.to_string().parse::<Scenario>()?, s);
/// assert_eq!(s.replay_line(), "RAFT_IO_REPLAY='profile=crashes nodes=5 rounds=200 seed=17'");
/// // Bad input is refused with a message naming it.
/// let err = "profile=earthquake nodes=3 rounds=10 seed=1".parse::<Scenario>().unwrap_err();
/// assert!(err.to_string().contains("earthquake"));
/// assert!(Scenario::new(FaultProfile::Calm, 0, 10, 1).unwrap_err().to_string().contains("nodes"));
/// # Ok::<(), raft_io::sim::ScenarioError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scenario {
    /// The faults injected.
    pub profile: FaultProfile,
    /// Nodes at the start (1 to [`MAX_SCENARIO_NODES`]).
    pub nodes: usize,
    /// Rounds of faults and client operations (up to
    /// [`MAX_SCENARIO_ROUNDS`]).
    pub rounds: usize,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Nodes on real `WalLog`s (feature `persistence`).
    pub durable: bool,
}

impl Scenario {
    /// A checked scenario (not durable).
    pub fn new(profile: FaultProfile, nodes: usize, rounds: usize, seed: u64) -> Result<Self, ScenarioError> {
        let s = Self { profile, nodes, rounds, seed, durable: false };
        s.validate()?;
        Ok(s)
    }

    /// The same scenario in durable mode (feature `persistence`).
    pub fn durable(mut self, on: bool) -> Result<Self, ScenarioError> {
        self.durable = on;
        self.validate()?;
        Ok(self)
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let range = |key, value: usize, min: usize, max: usize| {
            if value < min || value > max {
                Err(ScenarioError::OutOfRange { key, value: value as u64, min: min as u64, max: max as u64 })
            } else {
                Ok(())
            }
        };
        range("nodes", self.nodes, 1, MAX_SCENARIO_NODES)?;
        range("rounds", self.rounds, 0, MAX_SCENARIO_ROUNDS)?;
        if self.durable && !cfg!(feature = "persistence") {
            return Err(ScenarioError::DurableUnavailable);
        }
        Ok(())
    }

    /// The line that replays this scenario: `RAFT_IO_REPLAY='<scenario>'`.
    pub fn replay_line(&self) -> String {
        format!("{REPLAY_ENV}='{self}'")
    }

    /// The scenario in [`REPLAY_ENV`], if it is set (a value that is not
    /// UTF-8 is refused, not ignored).
    pub fn from_env() -> Option<Result<Self, ScenarioError>> {
        let line = std::env::var_os(REPLAY_ENV)?;
        Some(match line.to_str() {
            Some(line) => Self::parse_line(line),
            None => Err(ScenarioError::BadValue {
                key: REPLAY_ENV,
                value: line.to_string_lossy().into_owned(),
                expected: "scenario line (it is not UTF-8)",
            }),
        })
    }

    /// Parses a scenario, also in the form a failure prints it
    /// (`RAFT_IO_REPLAY='profile=... seed=...'`).
    pub fn parse_line(line: &str) -> Result<Self, ScenarioError> {
        let line = line.trim();
        let line = line.strip_prefix(REPLAY_ENV).and_then(|l| l.strip_prefix('=')).unwrap_or(line);
        line.trim_matches(|c| c == '\'' || c == '"').parse()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile={} nodes={} rounds={} seed={}", self.profile, self.nodes, self.rounds, self.seed)?;
        if self.durable {
            f.write_str(" durable=true")?;
        }
        Ok(())
    }
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut profile, mut nodes, mut rounds, mut seed, mut durable) = (None, None, None, None, false);
        let mut seen = Vec::new();
        for part in s.split_whitespace() {
            let (key, value) = part.split_once('=').ok_or_else(|| ScenarioError::Malformed(part.to_owned()))?;
            if seen.contains(&key) {
                return Err(ScenarioError::Repeated(key.to_owned()));
            }
            seen.push(key);
            let number = |key: &'static str| {
                value.parse::<u64>().map_err(|_| ScenarioError::BadValue {
                    key,
                    value: value.to_owned(),
                    expected: "unsigned integer",
                })
            };
            match key {
                "profile" => profile = Some(value.parse::<FaultProfile>()?),
                "nodes" => nodes = Some(number("nodes")?),
                "rounds" => rounds = Some(number("rounds")?),
                "seed" => seed = Some(number("seed")?),
                "durable" => {
                    durable = value.parse::<bool>().map_err(|_| ScenarioError::BadValue {
                        key: "durable",
                        value: value.to_owned(),
                        expected: "boolean",
                    })?
                }
                other => return Err(ScenarioError::UnknownParameter(other.to_owned())),
            }
        }
        let fits = |key: &'static str, v: u64| {
            usize::try_from(v).map_err(|_| ScenarioError::OutOfRange { key, value: v, min: 0, max: usize::MAX as u64 })
        };
        let scenario = Scenario {
            profile: profile.ok_or(ScenarioError::Missing("profile"))?,
            nodes: fits("nodes", nodes.ok_or(ScenarioError::Missing("nodes"))?)?,
            rounds: fits("rounds", rounds.ok_or(ScenarioError::Missing("rounds"))?)?,
            seed: seed.ok_or(ScenarioError::Missing("seed"))?,
            durable,
        };
        scenario.validate()?;
        Ok(scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_round_trips_and_bad_lines_name_what_is_wrong() {
        for p in FaultProfile::ALL {
            let s = Scenario::new(p, 3, 10, u64::MAX).unwrap();
            assert_eq!(Scenario::parse_line(&s.replay_line()).unwrap(), s);
        }
        let bad = |line: &str, names: &str| {
            let e = line.parse::<Scenario>().unwrap_err().to_string();
            assert!(e.contains(names), "{line}: {e}");
        };
        bad("profile=calm nodes=3 rounds=1", "seed");
        bad("profile=calm nodes=x rounds=1 seed=1", "nodes");
        bad("profile=calm nodes=30 rounds=1 seed=1", "nodes");
        bad("profile=calm nodes=3 rounds=1 seed=1 speed=9", "speed");
        bad("profile=calm nodes=3 rounds=1 seed", "seed");
        bad("profile=volcano nodes=3 rounds=1 seed=1", "volcano");
        bad("profile=calm nodes=3 rounds=1 seed=1 seed=2", "seed is given twice");
    }
}
