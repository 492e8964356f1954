//! The TLS material in force, replaceable at run time.
//!
//! Each new connection takes the material in force when it starts (a
//! cheap clone of two `Arc`s under a short lock) and keeps it for its
//! whole life: a rotation changes what the next handshakes present and
//! accept, and never touches a connection already open.

use std::sync::Mutex;

use super::{NodeIdentity, TlsConfig, TlsConfigError};
use crate::sync::lock;

/// The material a transport's new connections use.
pub(crate) struct TlsState {
    /// The node and cluster every certificate given must name.
    expected: NodeIdentity,
    current: Mutex<TlsConfig>,
}

impl TlsState {
    /// Checks that `tls` names node `expected`.
    pub(crate) fn new(expected: NodeIdentity, tls: TlsConfig) -> Result<Self, TlsConfigError> {
        check(expected, &tls)?;
        Ok(Self { expected, current: Mutex::new(tls) })
    }

    /// The material for a connection starting now.
    pub(crate) fn current(&self) -> TlsConfig {
        lock(&self.current).clone()
    }

    /// Replaces the material for connections started from now on.
    pub(crate) fn rotate(&self, tls: TlsConfig) -> Result<(), TlsConfigError> {
        check(self.expected, &tls)?;
        *lock(&self.current) = tls;
        Ok(())
    }
}

fn check(expected: NodeIdentity, tls: &TlsConfig) -> Result<(), TlsConfigError> {
    match tls.identity() {
        certified if certified == expected => Ok(()),
        certified => Err(TlsConfigError::WrongIdentity { expected, certified }),
    }
}
