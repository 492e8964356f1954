//! Crash tests of WalLog.
