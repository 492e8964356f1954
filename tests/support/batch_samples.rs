//! Representative batch frames' envelopes, shared by the batch golden
//! vectors, the batch fuzz seed corpus and the batch tests. Needs
//! `wire_samples.rs` as a sibling module (`mod wire_samples;` in the crate
//! root of the test).

#![allow(dead_code)]

use raft_io::multi::{Envelope, EnvelopeBody};
use raft_io::{Heartbeat, Message, MessageBody};

use super::wire_samples;

/// The pair of nodes of every sample batch.
pub const FROM: u64 = 1;
/// See [`FROM`].
pub const TO: u64 = 2;

/// A group message from [`FROM`] to [`TO`].
pub fn raft(group: u64, term: u64, body: MessageBody) -> Envelope {
    Envelope {
        from: FROM,
        to: TO,
        body: EnvelopeBody::Raft { group, message: Message { from: FROM, to: TO, term, body } },
    }
}

/// A quiescence notice from [`FROM`] to [`TO`].
pub fn quiesce(group: u64, term: u64, commit: u64) -> Envelope {
    Envelope { from: FROM, to: TO, body: EnvelopeBody::Quiesce { group, term, commit } }
}

/// A ping from [`FROM`] to [`TO`].
pub fn ping() -> Envelope {
    Envelope { from: FROM, to: TO, body: EnvelopeBody::Ping }
}

/// The example of `docs/PROTOCOL.md` ("Batch frame"): a heartbeat of group
/// 7, a quiescence notice of group 9, a ping.
pub fn small() -> Vec<Envelope> {
    vec![raft(7, 4, MessageBody::Heartbeat(Heartbeat { commit: 10, round: 3 })), quiesce(9, 2, 40), ping()]
}

/// One group message of every kind (the single-message golden samples,
/// readdressed from 1 to 2), each in its own group (1, 2^4, 2^8, ... 2^52: group ids of 1 to 8
/// bytes), then a quiescence notice with multi-byte values and a ping.
pub fn every_kind() -> Vec<Envelope> {
    let mut envelopes: Vec<Envelope> = wire_samples::samples()
        .into_iter()
        .enumerate()
        .map(|(i, (_, message))| raft(1u64 << (i * 4), message.term, message.body))
        .collect();
    envelopes.push(quiesce(u64::MAX, 1 << 40, 300));
    envelopes.push(ping());
    envelopes
}

/// `(fixture name, envelopes)` of every batch golden vector.
pub fn samples() -> Vec<(&'static str, Vec<Envelope>)> {
    vec![("empty", Vec::new()), ("small", small()), ("every_kind", every_kind())]
}
