//! Hashing a [`MemoryLog`]'s complete state for the node fingerprint of
//! model checking (feature `sim`; see `RaftNode::fingerprint`): the live
//! contents, the durable image, the writes in flight of the asynchronous
//! mode and every flag that decides what a later sync, completion or crash
//! keeps. Only the sync counters are left out: nothing reads
//! them back.

use std::hash::{Hash, Hasher};

use super::{MemoryLog, Receiving, Synced};

impl MemoryLog {
    pub(crate) fn hash_state(&self, h: &mut impl Hasher) {
        let Self {
            identity,
            hard,
            snapshot,
            snapshot_data,
            entries,
            receiving,
            synced,
            meta_changed,
            stable,
            durable_front,
            durable_back,
            dirty,
            snapshot_dirty,
            sync_calls: _,
            effective_syncs: _,
            deferred,
            // The node's own state hashes the write epoch it made of it.
            opens: _,
        } = self;
        (identity, hard, snapshot, snapshot_data, entries).hash(h);
        match receiving {
            None => h.write_u8(0),
            Some(Receiving { meta, total_len, buf }) => {
                h.write_u8(1);
                (meta, total_len, &buf[..]).hash(h);
            }
        }
        // The durable identity and hard state: the saved ones while they
        // differ from the live ones (`meta_changed`), else the live ones,
        // so two logs that would act alike hash alike.
        let Synced { identity: saved_identity, hard: saved_hard, snapshot, snapshot_data } = synced;
        let (identity, hard) = if *meta_changed { (saved_identity, saved_hard) } else { (identity, hard) };
        (identity, hard, snapshot, snapshot_data).hash(h);
        (stable, durable_front, durable_back, dirty, snapshot_dirty).hash(h);
        match deferred {
            None => h.write_u8(0),
            Some(d) => {
                h.write_u8(1);
                d.pending.len().hash(h);
                for (token, image) in &d.pending {
                    token.hash(h);
                    image.hash_state(h);
                }
                d.durable.hash_state(h);
            }
        }
    }
}
