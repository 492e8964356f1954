//! The TLS material in force, replaceable at run time.
//!
//! Each new connection takes the material in force when it starts (a
//! cheap clone of two `Arc`s under a short lock) and keeps it for its
//! whole life: a rotation changes what the next handshakes present and
//! accept, and touches a connection already open only to close it when
//! its revocation lists revoke the peer, and only while that material is
//! still in force.

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

    /// Runs `act` if `tls` is still the material in force (the one a
    /// rotation put in force, not replaced since), holding off any other
    /// rotation while it runs; `None` if it was replaced. For a rotation's
    /// closing of revoked connections: once newer material is in force,
    /// its own rotation decides what to close.
    pub(crate) fn while_in_force<R>(&self, tls: &TlsConfig, act: impl FnOnce() -> R) -> Option<R> {
        let current = lock(&self.current);
        current.is(tls).then(act)
    }
}

fn check(expected: NodeIdentity, tls: &TlsConfig) -> Result<(), TlsConfigError> {
    match tls.identity() {
        certified if certified == expected => Ok(()),
        certified => Err(TlsConfigError::WrongIdentity { expected, certified }),
    }
}
