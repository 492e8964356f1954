//! [`TlsReloader`]: a running transport's TLS material reloaded from its
//! PEM files when their contents change (a certificate renewed by an
//! operator or by a certificate manager that rewrites the files), and
//! [`TlsWatch`], a thread that checks them at an interval.
//!
//! A reload is [`rotate_tls`](super::super::TcpHandle::rotate_tls): new
//! connections use the new material, open ones keep theirs (unless the new
//! revocation lists revoke their peer), and material
//! naming another node or cluster is refused. The files are compared by
//! content, not by modification time, so a rewrite within the same second,
//! a restored backup with an old time stamp and a directory whose files
//! are symbolic links swapped at once (as Kubernetes mounts secrets) are
//! all seen. Files caught half-written (a new certificate with the old key)
//! do not build: the check fails, the material in force is kept, and the
//! next check tries again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::super::TcpHandle;
use super::config::read;
use super::{TlsConfig, TlsConfigError};
use crate::sync::lock;

/// What a [`TlsReloader::check`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reload {
    /// The files hold what was loaded last: nothing to do.
    Unchanged,
    /// The files changed and their material is now in force.
    Rotated,
}

/// Reloads a transport's TLS material from its trust, chain and key PEM
/// files when their contents change.
///
/// A reload is [`TcpHandle::rotate_tls`]: new connections use the new
/// material, open ones keep theirs (unless the new revocation lists revoke
/// their peer), and material naming another node or
/// cluster is refused. The files are compared by content, not by
/// modification time, so a rewrite within the same second, a restored
/// backup with an old time stamp and files that are symbolic links swapped
/// at once (as Kubernetes mounts secrets) are all seen. Files caught
/// half-written (a new certificate beside the old key) do not build: the
/// check fails, the material in force is kept, and the next check tries
/// again. The first check compares the files' material with the one the
/// transport has in force, not with what the files held when the reloader
/// was made: revocation lists watched but not in force yet are put in
/// force by it, and the connections of the peers they revoke closed.
///
/// ```no_run
/// use std::time::Duration;
/// use raft_io::transport::tls::{TlsConfig, TlsReloader};
/// use raft_io::transport::{TcpConfig, TcpTransport};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let files = ("/etc/raft/ca.pem", "/etc/raft/node.pem", "/etc/raft/node.key");
/// let tls = TlsConfig::from_pem_files(files.0, files.1, files.2)?;
/// let transport = TcpTransport::bind(TcpConfig::new(2, "0.0.0.0:7001".parse()?).cluster_id(7).tls(tls))?;
/// // Checked every minute; stopped when `watch` is dropped.
/// let watch = TlsReloader::new(transport.handle(), files.0, files.1, files.2).watch(Duration::from_secs(60))?;
/// # let _ = watch;
/// # Ok(())
/// # }
/// ```
pub struct TlsReloader {
    handle: TcpHandle,
    /// The trust set, the chain and the key.
    paths: [PathBuf; 3],
    /// The revocation lists.
    crls: Vec<PathBuf>,
    /// The files' contents as last put in force (`None`: not known yet,
    /// so the next check that reads them all compares their material with
    /// the transport's).
    loaded: Option<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader").field("paths", &self.paths).finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Watches `trust` (the CA certificates), `chain` (this node's
    /// certificate and intermediates) and `key` (its private key) for the
    /// transport behind `handle`. Nothing is read yet: the first
    /// [`check`](Self::check) builds the files' material and compares it
    /// with the material the transport has in force, rotating only if they
    /// differ (so a transport built from these very files is left alone).
    ///
    /// The material it builds has the revocation lists of
    /// [`crl_files`](Self::crl_files) and no others: a transport built
    /// with lists needs a reloader given the same files, or its first
    /// check drops them.
    pub fn new(handle: TcpHandle, trust: impl AsRef<Path>, chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        let paths = [trust.as_ref().to_path_buf(), chain.as_ref().to_path_buf(), key.as_ref().to_path_buf()];
        Self { handle, paths, crls: Vec::new(), loaded: None }
    }

    /// Also watches the certificate revocation lists in `files` (PEM, as
    /// [`TlsConfig::with_crl_files`] reads them): a change to any file,
    /// these included, rebuilds the material with them. The first check
    /// puts the lists the files hold in force if the transport's material
    /// does not have exactly these (one built without lists, for one),
    /// closing the open connections of the peers they revoke.
    #[must_use]
    pub fn crl_files<P: AsRef<Path>>(mut self, files: impl IntoIterator<Item = P>) -> Self {
        self.crls = files.into_iter().map(|file| file.as_ref().to_path_buf()).collect();
        self.loaded = None;
        self
    }

    /// Reads the files and, if they differ from what was put in force last,
    /// builds their material and rotates the transport to it. The first
    /// check that reads them all compares their material with the one the
    /// transport has in force instead, and rotates if they differ.
    ///
    /// # Errors
    ///
    /// A file could not be read, the material does not build (a malformed
    /// file, a key that does not match the certificate, a certificate
    /// without a raft-io identity, ...), or the transport refused it
    /// ([`TlsConfigError::WrongIdentity`], [`TlsConfigError::NotTls`]):
    /// the material in force is kept, and the next check tries again.
    pub fn check(&mut self) -> Result<Reload, TlsConfigError> {
        let contents = self.read_all()?;
        if self.loaded.as_ref() == Some(&contents) {
            return Ok(Reload::Unchanged);
        }
        let (keys, crls) = contents.split_at(3);
        let [trust, chain, key] = &self.paths;
        let mut material = TlsConfig::from_read([(trust, &keys[0]), (chain, &keys[1]), (key, &keys[2])])?;
        if !crls.is_empty() {
            material =
                material.with_crls_read(self.crls.iter().map(PathBuf::as_path).zip(crls.iter().map(Vec::as_slice)))?;
        }
        // First check: what the transport really has, not what the files
        // held when the reloader was made (a transport built without the
        // lists it watches must not be taken to have them).
        if self.loaded.is_none() && self.handle.tls_material().is_some_and(|current| current.same_as(&material)) {
            self.loaded = Some(contents);
            return Ok(Reload::Unchanged);
        }
        self.handle.rotate_tls(material)?;
        self.loaded = Some(contents);
        Ok(Reload::Rotated)
    }

    /// The contents of the trust, chain and key files, then of the
    /// revocation lists.
    fn read_all(&self) -> Result<Vec<Vec<u8>>, TlsConfigError> {
        self.paths.iter().chain(&self.crls).map(|path| read(path)).collect()
    }

    /// Runs [`check`](Self::check) at once, then every `interval` (at
    /// least a millisecond), on a thread of its own, until the returned [`TlsWatch`] is stopped or
    /// dropped.
    ///
    /// # Errors
    ///
    /// The thread could not be spawned.
    pub fn watch(mut self, interval: Duration) -> std::io::Result<TlsWatch> {
        let interval = interval.max(Duration::from_millis(1));
        let shared = Arc::new(Shared { stopped: Mutex::new(false), wake: Condvar::new(), stats: Mutex::default() });
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("raft-io-tls-watch".into()).spawn(move || {
            let mut stopped = lock(&state.stopped);
            // The first check at once: the files may hold lists not in
            // force yet.
            while !*stopped {
                let outcome = self.check();
                let mut stats = lock(&state.stats);
                stats.checks += 1;
                match outcome {
                    Ok(Reload::Unchanged) => {}
                    Ok(Reload::Rotated) => {
                        stats.rotations += 1;
                        #[cfg(feature = "tracing")]
                        tracing::info!(node = self.handle.id(), files = ?self.paths, "TLS material reloaded");
                    }
                    Err(e) => {
                        stats.failures += 1;
                        #[cfg(feature = "tracing")]
                        tracing::warn!(node = self.handle.id(), error = %e, "TLS material not reloaded");
                        stats.last_error = Some(e.to_string());
                    }
                }
                drop(stats);
                stopped = state.wake.wait_timeout(stopped, interval).unwrap_or_else(|e| e.into_inner()).0;
            }
        })?;
        Ok(TlsWatch { shared, thread: Some(thread) })
    }
}

struct Shared {
    stopped: Mutex<bool>,
    wake: Condvar,
    stats: Mutex<TlsWatchStats>,
}

/// What a [`TlsWatch`] has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsWatchStats {
    /// Checks made.
    pub checks: u64,
    /// Checks that put new material in force.
    pub rotations: u64,
    /// Checks that failed (the material in force kept).
    pub failures: u64,
    /// The last failure, as text.
    pub last_error: Option<String>,
}

/// A thread checking a transport's TLS files at an interval
/// ([`TlsReloader::watch`]). Dropping it stops the thread (and waits for a
/// check in progress to end).
pub struct TlsWatch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TlsWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWatch").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl TlsWatch {
    /// What it has done so far.
    pub fn stats(&self) -> TlsWatchStats {
        lock(&self.shared.stats).clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for TlsWatch {
    fn drop(&mut self) {
        *lock(&self.shared.stopped) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
