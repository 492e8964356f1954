//! The shared WAL's record codec. The layout is normative:
//! `docs/PROTOCOL.md` ("Shared WAL format") describes it and the
//! golden-byte tests below freeze it.
//!
//! Each wal-db record payload is one of three kinds:
//!
//! * a **checkpoint** holds the whole durable state of every live group
//!   (each in `WalLog`'s checkpoint body encoding). The record at the head
//!   of the WAL is always one (or the first part of one); groups it does
//!   not name do not exist.
//! * a **checkpoint part**: a checkpoint too large for one record is
//!   written as `parts` records in a row, part `1..=parts`, each holding
//!   some of the groups (by increasing id across the parts), each synced
//!   before the next is written. It takes effect once its last part is
//!   read; one cut short by a crash is ignored.
//! * a **batch** holds what one flush wrote: a sequence of group
//!   operations (create, step, remove), each naming its group. A step's
//!   body is `WalLog`'s step body encoding.

use bytes::Bytes;

use super::GroupId;
use crate::log::wal::codec::{DecodeError, Reader, put_varint};
use crate::log::wal::record::{
    FileRef, Record, decode_checkpoint_body, decode_step_body, put_checkpoint_body, put_step_body,
};
#[cfg(test)]
use crate::log::wal::recovery::Replayed;
use crate::log::wal::tail::RecordShape;
use crate::types::{Entry, HardState, Index, LogIdentity, SnapshotMeta};

/// Version byte that starts every record payload.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Kind byte of a checkpoint record (distinct from `WalLog`'s kinds, so
/// that neither log's tail rule takes the other's record for its own).
pub(crate) const KIND_CHECKPOINT: u8 = 16;
/// Kind byte of a batch record.
pub(crate) const KIND_BATCH: u8 = 17;
/// Kind byte of one part of a checkpoint written as several records.
pub(crate) const KIND_CHECKPOINT_PART: u8 = 18;
/// Bytes of a checkpoint part besides its groups: version, kind, part
/// number, part count and group count (at most 10 each).
pub(crate) const PART_HEADER_MAX: usize = 32;

/// Operation tag: the group is created (empty).
const OP_CREATE: u8 = 1;
/// Operation tag: a step of the group (`WalLog`'s step body follows).
const OP_STEP: u8 = 2;
/// Operation tag: the group is removed.
const OP_REMOVE: u8 = 3;

/// Bytes of a batch record besides its operations: version, kind and the
/// operation count (at most 10).
pub(crate) const BATCH_HEADER_MAX: u64 = 12;
/// Bytes of an operation besides its step body: group id (at most 10) and
/// tag.
pub(crate) const OP_HEADER_MAX: u64 = 11;

/// The shared WAL's records, for the tail rule.
pub(crate) const SHARED_RECORDS: RecordShape = RecordShape {
    versions: &[FORMAT_VERSION],
    kinds: &[KIND_CHECKPOINT, KIND_BATCH, KIND_CHECKPOINT_PART],
    decodes: |payload| decode(payload).is_ok(),
};

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// The group is created, empty.
    Create,
    /// A step of the group: always a [`Record::Step`].
    Step(Record),
    /// The group is removed.
    Remove,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SharedRecord {
    /// Every live group's state (each a [`Record::Checkpoint`]), by
    /// increasing group id.
    Checkpoint(Vec<(GroupId, Record)>),
    /// Part `part` of `parts` (`1 <= part <= parts`, `parts >= 2`) of a
    /// checkpoint written as several records: some of the groups, by
    /// increasing id.
    CheckpointPart { part: u64, parts: u64, groups: Vec<(GroupId, Record)> },
    /// Operations in the order they apply.
    Batch(Vec<(GroupId, Op)>),
}

/// Appends operation `op` on `group` to `buf` (a batch's operations).
pub(crate) fn put_op(buf: &mut Vec<u8>, group: GroupId, op: &Op) {
    match op {
        Op::Create => {
            put_varint(buf, group);
            buf.push(OP_CREATE);
        }
        Op::Remove => {
            put_varint(buf, group);
            buf.push(OP_REMOVE);
        }
        Op::Step(Record::Step { identity, hard, snapshot, entries }) => put_step_op(
            buf,
            group,
            *identity,
            hard.as_ref(),
            snapshot.as_ref().map(|(meta, file)| (meta, *file)),
            entries.as_ref().map(|(from, es)| (*from, es.iter())),
        ),
        Op::Step(_) => {
            // Not reachable: only steps are staged as operations. An empty
            // step keeps the encoding valid all the same.
            put_step_op::<std::slice::Iter<'_, Entry>>(buf, group, None, None, None, None);
        }
    }
}

/// Appends a step of `group` to `buf` (a batch's operations), from its
/// parts: a group stages its step straight from its own state, without
/// copying the entries into a [`Record`] first.
pub(crate) fn put_step_op<'a, I: ExactSizeIterator<Item = &'a Entry>>(
    buf: &mut Vec<u8>,
    group: GroupId,
    identity: Option<LogIdentity>,
    hard: Option<&HardState>,
    snapshot: Option<(&SnapshotMeta, FileRef)>,
    entries: Option<(Index, I)>,
) {
    put_varint(buf, group);
    buf.push(OP_STEP);
    put_step_body(buf, identity, hard, snapshot, entries);
}

/// One group's whole state, as a checkpoint holds it.
#[derive(Debug)]
pub(crate) struct GroupState<'a, I> {
    pub(crate) identity: Option<LogIdentity>,
    pub(crate) hard: &'a HardState,
    pub(crate) snap: &'a SnapshotMeta,
    pub(crate) file: FileRef,
    /// Its live entries, in order.
    pub(crate) entries: I,
}

/// The state recovery rebuilt for a group.
#[cfg(test)]
pub(crate) fn of_replayed(g: &Replayed) -> GroupState<'_, impl ExactSizeIterator<Item = &Entry>> {
    GroupState { identity: g.identity, hard: &g.hard, snap: &g.snap, file: g.file, entries: g.entries.iter() }
}

/// Encodes a batch of `count` operations, already encoded in `ops` by
/// [`put_op`], into `buf` (cleared first).
pub(crate) fn encode_batch(buf: &mut Vec<u8>, count: u64, ops: &[u8]) {
    buf.clear();
    buf.push(FORMAT_VERSION);
    buf.push(KIND_BATCH);
    put_varint(buf, count);
    buf.extend_from_slice(ops);
}

/// Encodes a checkpoint of `groups` (by increasing id) into `buf` (cleared
/// first).
pub(crate) fn encode_checkpoint<'a, I: ExactSizeIterator<Item = &'a Entry>>(
    buf: &mut Vec<u8>,
    groups: impl ExactSizeIterator<Item = (GroupId, GroupState<'a, I>)>,
) {
    encode_checkpoint_marking(buf, groups, &mut Vec::new());
}

/// As [`encode_checkpoint`], and records in `starts` (cleared first) where
/// each group's encoding starts in `buf`, for [`split_checkpoint`].
pub(crate) fn encode_checkpoint_marking<'a, I: ExactSizeIterator<Item = &'a Entry>>(
    buf: &mut Vec<u8>,
    groups: impl ExactSizeIterator<Item = (GroupId, GroupState<'a, I>)>,
    starts: &mut Vec<usize>,
) {
    buf.clear();
    starts.clear();
    buf.push(FORMAT_VERSION);
    buf.push(KIND_CHECKPOINT);
    put_varint(buf, groups.len() as u64);
    for (id, g) in groups {
        starts.push(buf.len());
        put_varint(buf, id);
        put_checkpoint_body(buf, g.identity, g.hard, g.snap, g.file, g.entries);
    }
}

/// One part of a checkpoint split by [`split_checkpoint`]: the groups
/// encoded at `from..to` of the whole checkpoint, `groups` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartRun {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) groups: u64,
}

/// Splits a checkpoint encoded by [`encode_checkpoint_marking`] (`buf`,
/// its groups starting at `starts`) into the runs of parts of at most
/// `max` bytes each, header included, in `runs` (cleared first): as many
/// whole groups per part as fit, in order. Returns false, leaving `runs`
/// empty, when one group alone does not fit a part (`max` less
/// [`PART_HEADER_MAX`]).
pub(crate) fn split_checkpoint(buf: &[u8], starts: &[usize], max: usize, runs: &mut Vec<PartRun>) -> bool {
    runs.clear();
    let room = max.saturating_sub(PART_HEADER_MAX);
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(buf.len()));
    for (&start, end) in starts.iter().zip(ends) {
        if end - start > room {
            runs.clear();
            return false;
        }
        match runs.last_mut() {
            Some(run) if end - run.from <= room => {
                run.to = end;
                run.groups += 1;
            }
            _ => runs.push(PartRun { from: start, to: end, groups: 1 }),
        }
    }
    true
}

/// Encodes part `part` (from 1) of `parts`, holding the groups of `run` in
/// the whole checkpoint `buf`, into `out` (cleared first).
pub(crate) fn encode_checkpoint_part(out: &mut Vec<u8>, buf: &[u8], run: PartRun, part: u64, parts: u64) {
    out.clear();
    out.push(FORMAT_VERSION);
    out.push(KIND_CHECKPOINT_PART);
    put_varint(out, part);
    put_varint(out, parts);
    put_varint(out, run.groups);
    out.extend_from_slice(&buf[run.from..run.to]);
}

/// Encodes a checkpoint of no group into `buf` (cleared first): the first
/// record of a new log.
pub(crate) fn encode_empty_checkpoint(buf: &mut Vec<u8>) {
    encode_checkpoint::<std::slice::Iter<'_, Entry>>(buf, std::iter::empty());
}

/// The empty state of a new group, as a checkpoint to replay.
pub(crate) fn empty_group() -> Record {
    Record::Checkpoint {
        identity: None,
        hard: Default::default(),
        snapshot: Default::default(),
        file: FileRef::EMPTY,
        entries: Vec::new(),
    }
}

/// Decodes a record payload whose version byte is [`FORMAT_VERSION`].
pub(crate) fn decode(payload: &Bytes) -> Result<SharedRecord, DecodeError> {
    let mut r = Reader::new(payload);
    if r.u8()? != FORMAT_VERSION {
        return Err(DecodeError("unsupported record format version"));
    }
    let record = match r.u8()? {
        KIND_CHECKPOINT => SharedRecord::Checkpoint(decode_groups(&mut r)?),
        KIND_CHECKPOINT_PART => {
            let (part, parts) = (r.varint()?, r.varint()?);
            if parts < 2 || part == 0 || part > parts {
                return Err(DecodeError("a checkpoint part's number is out of range"));
            }
            SharedRecord::CheckpointPart { part, parts, groups: decode_groups(&mut r)? }
        }
        KIND_BATCH => {
            let count = r.len()?;
            if count > r.remaining() / 2 {
                return Err(DecodeError("operation count exceeds the record"));
            }
            let mut ops = Vec::with_capacity(count);
            for _ in 0..count {
                let id = r.varint()?;
                if id == 0 {
                    return Err(DecodeError("an operation names group 0"));
                }
                let op = match r.u8()? {
                    OP_CREATE => Op::Create,
                    OP_STEP => Op::Step(decode_step_body(&mut r)?),
                    OP_REMOVE => Op::Remove,
                    _ => return Err(DecodeError("unknown operation")),
                };
                ops.push((id, op));
            }
            SharedRecord::Batch(ops)
        }
        _ => return Err(DecodeError("unknown record kind")),
    };
    r.finish()?;
    Ok(record)
}

/// A checkpoint's (or a part's) groups: a count, then each group's id
/// (increasing from 1) and body.
fn decode_groups(r: &mut Reader<'_>) -> Result<Vec<(GroupId, Record)>, DecodeError> {
    let count = r.len()?;
    // A group takes at least 20 bytes; refuse a count the record cannot
    // hold before allocating for it.
    if count > r.remaining() / 20 {
        return Err(DecodeError("group count exceeds the record"));
    }
    let mut groups = Vec::with_capacity(count);
    let mut previous = 0;
    for _ in 0..count {
        let id = r.varint()?;
        if id <= previous {
            return Err(DecodeError("group ids of a checkpoint are not increasing from 1"));
        }
        previous = id;
        groups.push((id, decode_checkpoint_body(r)?));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Entry, HardState, LogIdentity};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn golden_batch() {
        let step = Record::Step {
            identity: Some(LogIdentity { cluster_id: 1, node_id: 2 }),
            hard: Some(HardState { term: 3, vote: Some(2), commit: 0 }),
            snapshot: None,
            entries: Some((1, vec![Entry::normal(3, 1, Bytes::from_static(b"ab"))])),
        };
        let mut ops = Vec::new();
        put_op(&mut ops, 7, &Op::Create);
        put_op(&mut ops, 7, &Op::Step(step.clone()));
        put_op(&mut ops, 300, &Op::Remove);
        let mut buf = Vec::new();
        encode_batch(&mut buf, 3, &ops);
        assert_eq!(
            hex(&buf),
            concat!(
                "0111",       // version 1, kind batch
                "03",         // 3 operations
                "0701",       // group 7: create
                "0702",       // group 7: step
                "0b",         // flags: identity, hard, batch
                "0102",       // identity: cluster 1, node 2
                "030200",     // hard: term 3, vote 2, commit 0
                "01",         // batch from index 1
                "01",         // 1 entry
                "0300026162", // term 3, normal, "ab"
                "ac0203",     // group 300: remove
            )
        );
        let want = SharedRecord::Batch(vec![(7, Op::Create), (7, Op::Step(step)), (300, Op::Remove)]);
        assert_eq!(decode(&Bytes::from(buf)).unwrap(), want);
    }

    #[test]
    fn golden_checkpoint() {
        let mut g = Replayed::empty();
        g.apply(empty_group()).unwrap();
        let mut buf = Vec::new();
        encode_checkpoint(&mut buf, [(5, of_replayed(&g))].into_iter());
        assert_eq!(
            hex(&buf),
            concat!(
                "0110", // version 1, kind checkpoint
                "01",   // 1 group
                "05",   // group 5
                "00",   // no identity
                "000000", "0000", "0d", "01", "00000000", "00000000", "00000000", "0000", "00000000", "00",
            )
        );
        assert_eq!(decode(&Bytes::from(buf.clone())).unwrap(), SharedRecord::Checkpoint(vec![(5, empty_group())]));
        encode_empty_checkpoint(&mut buf);
        assert_eq!(hex(&buf), "011000");
    }

    #[test]
    fn golden_checkpoint_parts() {
        let mut g = Replayed::empty();
        g.apply(empty_group()).unwrap();
        let (mut buf, mut starts, mut runs) = (Vec::new(), Vec::new(), Vec::new());
        encode_checkpoint_marking(&mut buf, [(5, of_replayed(&g)), (6, of_replayed(&g))].into_iter(), &mut starts);
        let body = "0000000000000d0100000000000000000000000000000000000000";
        // One group's encoding (its id and body) is 28 bytes: room for one
        // group per part.
        assert!(split_checkpoint(&buf, &starts, PART_HEADER_MAX + 28, &mut runs));
        let parts: Vec<Vec<u8>> = (1..)
            .zip(&runs)
            .map(|(k, run)| {
                let mut part = Vec::new();
                encode_checkpoint_part(&mut part, &buf, *run, k, runs.len() as u64);
                part
            })
            .collect();
        let hex_parts: Vec<String> = parts.iter().map(|p| hex(p)).collect();
        assert_eq!(
            hex_parts,
            vec![
                format!("0112{}{}{}{}{}", "01", "02", "01", "05", body), // version, kind part, part 1 of 2, 1 group, group 5
                format!("0112{}{}{}{}{}", "02", "02", "01", "06", body),
            ]
        );
        for (k, part) in parts.iter().enumerate() {
            let want = SharedRecord::CheckpointPart {
                part: k as u64 + 1,
                parts: 2,
                groups: vec![(5 + k as u64, empty_group())],
            };
            assert_eq!(decode(&Bytes::from(part.clone())).unwrap(), want);
        }
        // Room for both: one part. Room for neither: no split.
        assert!(split_checkpoint(&buf, &starts, PART_HEADER_MAX + 56, &mut runs));
        assert_eq!(runs.len(), 1);
        assert!(!split_checkpoint(&buf, &starts, PART_HEADER_MAX + 27, &mut runs));
        assert!(runs.is_empty());
    }

    #[test]
    fn checkpoint_parts_out_of_range_are_refused() {
        for (part, parts) in [(0u64, 2u64), (3, 2), (1, 1), (1, 0)] {
            let mut buf = vec![FORMAT_VERSION, KIND_CHECKPOINT_PART];
            put_varint(&mut buf, part);
            put_varint(&mut buf, parts);
            buf.push(0);
            assert_eq!(
                decode(&Bytes::from(buf)),
                Err(DecodeError("a checkpoint part's number is out of range")),
                "part {part} of {parts}"
            );
        }
        let mut buf = vec![FORMAT_VERSION, KIND_CHECKPOINT_PART, 1, 2, 0];
        assert_eq!(
            decode(&Bytes::from(buf.clone())),
            Ok(SharedRecord::CheckpointPart { part: 1, parts: 2, groups: vec![] })
        );
        for cut in 0..buf.len() {
            assert!(decode(&Bytes::copy_from_slice(&buf[..cut])).is_err(), "prefix of {cut} bytes");
        }
        buf.push(0);
        assert!(decode(&Bytes::from(buf)).is_err(), "trailing byte");
    }

    #[test]
    fn bad_group_ids_and_every_truncation_are_refused() {
        let mut ops = Vec::new();
        put_op(&mut ops, 0, &Op::Create);
        let mut buf = Vec::new();
        encode_batch(&mut buf, 1, &ops);
        assert_eq!(decode(&Bytes::from(buf.clone())), Err(DecodeError("an operation names group 0")));

        let g = {
            let mut g = Replayed::empty();
            g.apply(empty_group()).unwrap();
            g
        };
        encode_checkpoint(&mut buf, [(5, of_replayed(&g)), (5, of_replayed(&g))].into_iter());
        assert!(decode(&Bytes::from(buf.clone())).is_err(), "duplicate group in a checkpoint");
        encode_checkpoint(&mut buf, [(0, of_replayed(&g))].into_iter());
        assert!(decode(&Bytes::from(buf.clone())).is_err(), "group 0 in a checkpoint");

        ops.clear();
        put_op(&mut ops, 9, &Op::Step(Record::Step { identity: None, hard: None, snapshot: None, entries: None }));
        encode_batch(&mut buf, 1, &ops);
        for cut in 0..buf.len() {
            assert!(decode(&Bytes::copy_from_slice(&buf[..cut])).is_err(), "prefix of {cut} bytes");
        }
        let mut tagged = buf.clone();
        tagged[4] = 9;
        assert_eq!(decode(&Bytes::from(tagged)), Err(DecodeError("unknown operation")));
    }
}
