//! The WAL record codec. The layout is normative: `docs/PROTOCOL.md`
//! ("WAL format") describes it and the golden-byte tests in this module
//! freeze it.
//!
//! Each wal-db record payload is one of two kinds:
//!
//! * a **checkpoint** holds the whole durable state (identity, hard state,
//!   snapshot reference, every live entry). The record at the head of the
//!   WAL is always a checkpoint, so replay never depends on a dropped prefix.
//! * a **step** holds what one `step` of the node changed: any of identity,
//!   hard state, snapshot reference, and an entry batch that first truncates
//!   the log from its first index and then appends.

use bytes::Bytes;

use super::codec::{DecodeError, Reader, put_varint, varint_len};
use crate::membership::Membership;
use crate::types::{Entry, EntryKind, HardState, Index, LogIdentity, MAX_TERM, SnapshotMeta};

/// Version byte of a record that holds a configuration with addresses
/// (membership blob version 2, in its snapshot or in a configuration
/// entry): the newest this build reads and writes.
pub(crate) const FORMAT_VERSION: u8 = 2;
/// Version byte of every other record, byte for byte as raft-io 0.8 wrote
/// it (an older build refuses a log that holds a version 2 record
/// rather than misread the configuration in it).
pub(crate) const FORMAT_V1: u8 = 1;

/// Whether `version` is a record version this build reads.
pub(crate) fn known_version(version: u8) -> bool {
    version == FORMAT_V1 || version == FORMAT_VERSION
}

/// Whether a configuration blob (a snapshot's membership or a
/// configuration entry's data) needs record version 2.
fn needs_v2(blob: &[u8]) -> bool {
    blob.first().is_some_and(|&v| v != crate::membership::MEMBERSHIP_FORMAT_V1)
}
/// Kind byte of a checkpoint record.
pub(crate) const KIND_CHECKPOINT: u8 = 1;
/// Kind byte of a step record.
pub(crate) const KIND_STEP: u8 = 2;

const STEP_IDENTITY: u8 = 1 << 0;
const STEP_HARD: u8 = 1 << 1;
const STEP_SNAPSHOT: u8 = 1 << 2;
const STEP_ENTRIES: u8 = 1 << 3;
const STEP_KNOWN: u8 = STEP_IDENTITY | STEP_HARD | STEP_SNAPSHOT | STEP_ENTRIES;

/// Upper bound of the bytes one entry adds to a record beyond its data:
/// term (10), kind (1) and data length (10).
pub(crate) const ENTRY_HEADER_MAX: u64 = 21;

/// Where a snapshot's data lives: file `snapshot-{id:020}.snap` of `len`
/// bytes whose CRC-32C is `crc`. Id 0 means "no data" (length 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct FileRef {
    pub(crate) id: u64,
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

/// The highest snapshot file id a log writes or reads (ids count up from
/// 1, one per snapshot, so a log never comes near it): the id after it
/// never overflows.
pub(crate) const MAX_FILE_ID: u64 = MAX_TERM;

impl FileRef {
    /// The reference of an empty snapshot, which has no file.
    pub(crate) const EMPTY: FileRef = FileRef { id: 0, len: 0, crc: 0 };
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The complete durable state.
    Checkpoint {
        identity: Option<LogIdentity>,
        hard: HardState,
        snapshot: SnapshotMeta,
        file: FileRef,
        entries: Vec<Entry>,
    },
    /// The changes of one step.
    Step {
        identity: Option<LogIdentity>,
        hard: Option<HardState>,
        snapshot: Option<(SnapshotMeta, FileRef)>,
        /// Truncate from this index, then append these entries.
        entries: Option<(Index, Vec<Entry>)>,
    },
}

/// Encodes a checkpoint into `buf` (cleared first).
pub(crate) fn encode_checkpoint<'a>(
    buf: &mut Vec<u8>,
    identity: Option<LogIdentity>,
    hard: &HardState,
    snapshot: &SnapshotMeta,
    file: FileRef,
    entries: impl ExactSizeIterator<Item = &'a Entry>,
) {
    buf.clear();
    buf.push(FORMAT_V1);
    buf.push(KIND_CHECKPOINT);
    if put_checkpoint_body(buf, identity, hard, snapshot, file, entries) {
        buf[0] = FORMAT_VERSION;
    }
}

/// Appends a checkpoint's body (everything after the version and kind
/// bytes) to `buf`; returns whether it holds a configuration with
/// addresses (record version 2). The shared WAL (`log::shared`) writes each
/// group's state in this encoding.
pub(crate) fn put_checkpoint_body<'a>(
    buf: &mut Vec<u8>,
    identity: Option<LogIdentity>,
    hard: &HardState,
    snapshot: &SnapshotMeta,
    file: FileRef,
    entries: impl ExactSizeIterator<Item = &'a Entry>,
) -> bool {
    match identity {
        None => buf.push(0),
        Some(id) => {
            buf.push(1);
            put_identity(buf, id);
        }
    }
    put_hard(buf, hard);
    let v2 = put_snapshot(buf, snapshot, file);
    put_entries(buf, entries) || v2
}

/// Encodes a step record into `buf` (cleared first).
pub(crate) fn encode_step<'a, I: ExactSizeIterator<Item = &'a Entry>>(
    buf: &mut Vec<u8>,
    identity: Option<LogIdentity>,
    hard: Option<&HardState>,
    snapshot: Option<(&SnapshotMeta, FileRef)>,
    entries: Option<(Index, I)>,
) {
    buf.clear();
    buf.push(FORMAT_V1);
    buf.push(KIND_STEP);
    if put_step_body(buf, identity, hard, snapshot, entries) {
        buf[0] = FORMAT_VERSION;
    }
}

/// Appends a step's body (everything after the version and kind bytes) to
/// `buf`; returns whether it holds a configuration with addresses (record
/// version 2). The shared WAL (`log::shared`) writes each group's step in
/// this encoding.
pub(crate) fn put_step_body<'a, I: ExactSizeIterator<Item = &'a Entry>>(
    buf: &mut Vec<u8>,
    identity: Option<LogIdentity>,
    hard: Option<&HardState>,
    snapshot: Option<(&SnapshotMeta, FileRef)>,
    entries: Option<(Index, I)>,
) -> bool {
    let mut flags = 0;
    flags |= if identity.is_some() { STEP_IDENTITY } else { 0 };
    flags |= if hard.is_some() { STEP_HARD } else { 0 };
    flags |= if snapshot.is_some() { STEP_SNAPSHOT } else { 0 };
    flags |= if entries.is_some() { STEP_ENTRIES } else { 0 };
    buf.push(flags);
    if let Some(id) = identity {
        put_identity(buf, id);
    }
    if let Some(hard) = hard {
        put_hard(buf, hard);
    }
    let mut v2 = false;
    if let Some((meta, file)) = snapshot {
        v2 |= put_snapshot(buf, meta, file);
    }
    if let Some((from, entries)) = entries {
        put_varint(buf, from);
        v2 |= put_entries(buf, entries);
    }
    v2
}

/// Bytes `entry` takes in a record (exact).
pub(crate) fn entry_len(entry: &Entry) -> u64 {
    (varint_len(entry.term) + 1 + varint_len(entry.data.len() as u64)) as u64 + entry.data.len() as u64
}

fn put_identity(buf: &mut Vec<u8>, id: LogIdentity) {
    put_varint(buf, id.cluster_id);
    put_varint(buf, id.node_id);
}

fn put_hard(buf: &mut Vec<u8>, hard: &HardState) {
    put_varint(buf, hard.term);
    put_varint(buf, hard.vote.unwrap_or(0));
    put_varint(buf, hard.commit);
}

/// Writes the snapshot part; returns whether it needs record version 2.
fn put_snapshot(buf: &mut Vec<u8>, meta: &SnapshotMeta, file: FileRef) -> bool {
    put_varint(buf, meta.index);
    put_varint(buf, meta.term);
    let membership = meta.membership.encode();
    put_varint(buf, membership.len() as u64);
    buf.extend_from_slice(&membership);
    put_varint(buf, file.id);
    put_varint(buf, file.len);
    buf.extend_from_slice(&file.crc.to_le_bytes());
    needs_v2(&membership)
}

/// Writes the entries; returns whether one needs record version 2 (a
/// configuration entry whose blob is not version 1).
fn put_entries<'a>(buf: &mut Vec<u8>, entries: impl ExactSizeIterator<Item = &'a Entry>) -> bool {
    put_varint(buf, entries.len() as u64);
    let mut v2 = false;
    for e in entries {
        put_varint(buf, e.term);
        buf.push(e.kind.to_u8());
        put_varint(buf, e.data.len() as u64);
        buf.extend_from_slice(&e.data);
        v2 |= e.kind == EntryKind::Config && needs_v2(&e.data);
    }
    v2
}

/// The version byte of a payload, if it has one.
pub(crate) fn version(payload: &[u8]) -> Option<u8> {
    payload.first().copied()
}

/// Decodes a record payload of version 1 or 2 ([`known_version`]). A
/// version 1 record must not hold a configuration with addresses (it
/// could not have been written by a build that knows them, and a build
/// that does not would misread it). Entry data are zero-copy slices of
/// `payload`.
pub(crate) fn decode(payload: &Bytes) -> Result<Record, DecodeError> {
    let mut r = Reader::new(payload);
    let version = r.u8()?;
    if !known_version(version) {
        return Err(DecodeError("unsupported record format version"));
    }
    let record = match r.u8()? {
        KIND_CHECKPOINT => decode_checkpoint_body(&mut r)?,
        KIND_STEP => decode_step_body(&mut r)?,
        _ => return Err(DecodeError("unknown record kind")),
    };
    r.finish()?;
    if version == FORMAT_V1 && record_needs_v2(&record) {
        return Err(DecodeError("a version 1 record holds a configuration with addresses"));
    }
    Ok(record)
}

fn record_needs_v2(record: &Record) -> bool {
    let (snapshot, entries) = match record {
        Record::Checkpoint { snapshot, entries, .. } => (Some(snapshot), Some(entries)),
        Record::Step { snapshot, entries, .. } => (snapshot.as_ref().map(|(s, _)| s), entries.as_ref().map(|(_, e)| e)),
    };
    snapshot.is_some_and(|s| s.membership.addresses().next().is_some())
        || entries.is_some_and(|es| es.iter().any(|e| e.kind == EntryKind::Config && needs_v2(&e.data)))
}

/// Reads a checkpoint's body (see [`put_checkpoint_body`]).
pub(crate) fn decode_checkpoint_body(r: &mut Reader<'_>) -> Result<Record, DecodeError> {
    let identity = match r.u8()? {
        0 => None,
        1 => Some(identity(r)?),
        _ => return Err(DecodeError("invalid identity flag")),
    };
    let hard = hard(r)?;
    let (snapshot, file) = snapshot(r)?;
    let first = snapshot.index.checked_add(1).ok_or(DecodeError("snapshot index overflows"))?;
    let entries = entries(r, first)?;
    Ok(Record::Checkpoint { identity, hard, snapshot, file, entries })
}

/// Reads a step's body (see [`put_step_body`]).
pub(crate) fn decode_step_body(r: &mut Reader<'_>) -> Result<Record, DecodeError> {
    let flags = r.u8()?;
    if flags & !STEP_KNOWN != 0 {
        return Err(DecodeError("unknown step flags"));
    }
    let identity = if flags & STEP_IDENTITY != 0 { Some(identity(r)?) } else { None };
    let hard = if flags & STEP_HARD != 0 { Some(hard(r)?) } else { None };
    let snapshot = if flags & STEP_SNAPSHOT != 0 { Some(snapshot(r)?) } else { None };
    let entries = if flags & STEP_ENTRIES != 0 {
        let from = r.varint()?;
        if from == 0 {
            return Err(DecodeError("entry batch starts at index 0"));
        }
        Some((from, entries(r, from)?))
    } else {
        None
    };
    Ok(Record::Step { identity, hard, snapshot, entries })
}

fn identity(r: &mut Reader<'_>) -> Result<LogIdentity, DecodeError> {
    Ok(LogIdentity { cluster_id: r.varint()?, node_id: r.varint()? })
}

fn hard(r: &mut Reader<'_>) -> Result<HardState, DecodeError> {
    let term = r.varint()?;
    let vote = match r.varint()? {
        0 => None,
        v => Some(v),
    };
    Ok(HardState { term, vote, commit: r.varint()? })
}

fn snapshot(r: &mut Reader<'_>) -> Result<(SnapshotMeta, FileRef), DecodeError> {
    let index = r.varint()?;
    let term = r.varint()?;
    let len = r.len()?;
    let raw = r.bytes(len)?;
    let membership = Membership::decode(&raw).map_err(|_| DecodeError("malformed membership"))?;
    let file = FileRef { id: r.varint()?, len: r.varint()?, crc: r.u32_le()? };
    if file.id == 0 && (file.len != 0 || file.crc != 0) {
        return Err(DecodeError("snapshot without a file has data"));
    }
    if file.id > MAX_FILE_ID {
        return Err(DecodeError("snapshot file id out of range"));
    }
    Ok((SnapshotMeta { index, term, membership }, file))
}

fn entries(r: &mut Reader<'_>, first: Index) -> Result<Vec<Entry>, DecodeError> {
    let count = r.len()?;
    // Each entry takes at least 3 bytes, so a count the record cannot hold is
    // refused before anything is allocated.
    if count > r.remaining() / 3 {
        return Err(DecodeError("entry count exceeds the record"));
    }
    let mut out = Vec::with_capacity(count);
    for k in 0..count as u64 {
        let index = first.checked_add(k).ok_or(DecodeError("entry index overflows"))?;
        let term = r.varint()?;
        let kind = EntryKind::from_u8(r.u8()?).ok_or(DecodeError("unknown entry kind"))?;
        let len = r.len()?;
        let data = r.bytes(len)?;
        out.push(Entry { term, index, kind, data });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta { index: 5, term: 2, membership: Membership::new([1, 2], [3]).unwrap() }
    }

    fn sample_entries() -> Vec<Entry> {
        let members = Membership::new([1], []).unwrap();
        vec![Entry::normal(2, 6, Bytes::from_static(b"ab")), Entry::noop(3, 7), Entry::config(3, 8, &members)]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decoded(buf: &[u8]) -> Record {
        decode(&Bytes::copy_from_slice(buf)).unwrap()
    }

    #[test]
    fn golden_empty_checkpoint() {
        let mut buf = Vec::new();
        encode_checkpoint(&mut buf, None, &HardState::default(), &SnapshotMeta::default(), FileRef::EMPTY, [].iter());
        // version 1, kind 1, no identity, hard 0/0/0, snapshot 0/0,
        // membership (13 bytes: version 1 + three empty u32 counts), file 0/0/crc 0, 0 entries.
        assert_eq!(
            hex(&buf),
            concat!(
                "0101",   // version, kind checkpoint
                "00",     // no identity
                "000000", // hard: term 0, no vote, commit 0
                "0000",   // snapshot index 0, term 0
                "0d", "01", "00000000", "00000000", "00000000", // empty membership
                "0000", "00000000", // no snapshot file
                "00",       // no entries
            )
        );
        let Record::Checkpoint { identity, hard, snapshot, file, entries } = decoded(&buf) else { panic!() };
        assert_eq!(
            (identity, hard, snapshot, file, entries.len()),
            (None, HardState::default(), SnapshotMeta::default(), FileRef::EMPTY, 0)
        );
    }

    #[test]
    fn golden_full_checkpoint() {
        let mut buf = Vec::new();
        let id = LogIdentity { cluster_id: 7, node_id: 300 };
        let hard = HardState { term: 3, vote: Some(2), commit: 6 };
        let file = FileRef { id: 1, len: 4, crc: 0xdead_beef };
        let es = sample_entries();
        encode_checkpoint(&mut buf, Some(id), &hard, &meta(), file, es.iter());
        assert_eq!(
            hex(&buf),
            concat!(
                "0101",     // version, kind checkpoint
                "0107ac02", // identity: present, cluster 7, node 300
                "030206",   // hard: term 3, vote 2, commit 6
                "0502",     // snapshot index 5, term 2
                "25",       // membership length 37
                "01",
                "02000000",
                "0100000000000000",
                "0200000000000000",
                "01000000",
                "0300000000000000",
                "00000000",
                "0104efbeadde", // file id 1, len 4, crc
                "03",           // 3 entries (indexes 6, 7, 8)
                "0200026162",   // term 2, normal, "ab"
                "030100",       // term 3, noop
                "030215",
                "01",
                "01000000",
                "0100000000000000",
                "00000000",
                "00000000",
            )
        );
        assert_eq!(decoded(&buf), Record::Checkpoint { identity: Some(id), hard, snapshot: meta(), file, entries: es });
    }

    #[test]
    fn golden_steps() {
        let mut buf = Vec::new();
        let es = sample_entries();
        encode_step(&mut buf, None, None, None, Some((6, es[..1].iter())));
        assert_eq!(
            hex(&buf),
            "010208" /* flags: entries */
                .to_owned()
                + "06"
                + "01"
                + "0200026162"
        );
        assert_eq!(
            decoded(&buf),
            Record::Step { identity: None, hard: None, snapshot: None, entries: Some((6, es[..1].to_vec())) }
        );

        let hard = HardState { term: 200, vote: None, commit: 1 };
        encode_step::<std::slice::Iter<'_, Entry>>(&mut buf, None, Some(&hard), None, None);
        assert_eq!(hex(&buf), "010202c8010001");

        let id = LogIdentity { cluster_id: 1, node_id: 2 };
        let file = FileRef::EMPTY;
        encode_step(&mut buf, Some(id), Some(&hard), Some((&meta(), file)), Some((9, [].iter())));
        let expected = Record::Step {
            identity: Some(id),
            hard: Some(hard),
            snapshot: Some((meta(), file)),
            entries: Some((9, Vec::new())),
        };
        assert_eq!(&hex(&buf)[..14], "01020f0102c801");
        assert_eq!(decoded(&buf), expected);
    }

    #[test]
    fn entry_len_is_exact() {
        for e in sample_entries() {
            let mut buf = Vec::new();
            encode_step(&mut buf, None, None, None, Some((e.index, std::iter::once(&e))));
            assert_eq!(buf.len() as u64, 3 + 1 + 1 + entry_len(&e));
            assert!(entry_len(&e) <= e.data.len() as u64 + ENTRY_HEADER_MAX);
        }
    }

    #[test]
    fn every_truncation_and_mutation_of_a_record_is_refused_or_decodes() {
        let mut buf = Vec::new();
        let es = sample_entries();
        let hard = HardState { term: 3, vote: Some(2), commit: 6 };
        encode_checkpoint(&mut buf, None, &hard, &meta(), FileRef { id: 1, len: 4, crc: 9 }, es.iter());
        for cut in 0..buf.len() {
            assert!(decode(&Bytes::copy_from_slice(&buf[..cut])).is_err(), "prefix of {cut} bytes");
        }
        for at in 0..buf.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut m = buf.clone();
                m[at] = v;
                let _ = decode(&Bytes::from(m)); // must not panic
            }
        }
    }

    #[test]
    fn a_configuration_with_addresses_makes_a_version_2_record_and_only_then() {
        let addressed = Membership::new([1, 2], []).unwrap().with_address(2, "10.0.0.2:7002").unwrap();
        let hard = HardState::default();
        let mut buf = Vec::new();
        // Without an address anywhere: version 1, as before addresses.
        encode_step(&mut buf, None, Some(&hard), Some((&meta(), FileRef::EMPTY)), Some((6, sample_entries().iter())));
        assert_eq!(buf[0], FORMAT_V1);
        // A snapshot whose configuration carries one: version 2.
        let snap = SnapshotMeta { membership: addressed.clone(), ..meta() };
        encode_step(&mut buf, None, None, Some((&snap, FileRef::EMPTY)), None::<(Index, std::slice::Iter<'_, Entry>)>);
        assert_eq!(buf[0], FORMAT_VERSION);
        let Record::Step { snapshot: Some((back, _)), .. } = decoded(&buf) else { panic!("a step") };
        assert_eq!(back.membership, addressed);
        // A configuration entry that carries one: version 2.
        let entries = [Entry::normal(1, 6, "x".into()), Entry::config(1, 7, &addressed)];
        encode_checkpoint(&mut buf, None, &hard, &meta(), FileRef::EMPTY, entries.iter());
        assert_eq!(buf[0], FORMAT_VERSION);
        assert!(matches!(decoded(&buf), Record::Checkpoint { entries: ref e, .. } if e[..] == entries[..]));
        // The same bytes labelled version 1 are refused: a build that knows
        // only version 1 must never have written them.
        buf[0] = FORMAT_V1;
        assert!(decode(&Bytes::copy_from_slice(&buf)).is_err());
        encode_step(&mut buf, None, None, Some((&snap, FileRef::EMPTY)), None::<(Index, std::slice::Iter<'_, Entry>)>);
        buf[0] = FORMAT_V1;
        assert!(decode(&Bytes::copy_from_slice(&buf)).is_err());
    }

    /// What `decode` says of `buf`: the record, or the reason it refused.
    fn refusal(buf: &[u8]) -> &'static str {
        match decode(&Bytes::copy_from_slice(buf)) {
            Ok(r) => panic!("decoded {r:?}"),
            Err(DecodeError(why)) => why,
        }
    }

    #[test]
    fn a_byte_after_a_whole_record_is_refused() {
        let mut buf = Vec::new();
        let hard = HardState { term: 3, vote: Some(2), commit: 6 };
        encode_checkpoint(&mut buf, None, &hard, &meta(), FileRef { id: 1, len: 4, crc: 9 }, sample_entries().iter());
        let checkpoint = buf.clone();
        encode_step(&mut buf, None, Some(&hard), None, Some((6, sample_entries().iter())));
        for whole in [checkpoint, buf] {
            decoded(&whole);
            for extra in [0u8, 1, 0xff] {
                let mut longer = whole.clone();
                longer.push(extra);
                assert_eq!(refusal(&longer), "trailing bytes after the record");
            }
        }
    }

    #[test]
    fn a_snapshot_without_a_file_that_claims_data_is_refused() {
        for file in [FileRef { id: 0, len: 4, crc: 0 }, FileRef { id: 0, len: 0, crc: 7 }] {
            let mut buf = Vec::new();
            encode_checkpoint(&mut buf, None, &HardState::default(), &meta(), file, [].iter());
            assert_eq!(refusal(&buf), "snapshot without a file has data", "{file:?}");
            encode_step::<std::slice::Iter<'_, Entry>>(&mut buf, None, None, Some((&meta(), file)), None);
            assert_eq!(refusal(&buf), "snapshot without a file has data", "{file:?}");
        }
        // A file id no log writes, whose successor could overflow.
        for id in [MAX_FILE_ID + 1, u64::MAX] {
            let mut buf = Vec::new();
            encode_checkpoint(
                &mut buf,
                None,
                &HardState::default(),
                &meta(),
                FileRef { id, len: 1, crc: 0 },
                [].iter(),
            );
            assert_eq!(refusal(&buf), "snapshot file id out of range");
        }
        // File 0 with nothing in it is "no data", and a real file may be empty.
        for file in [FileRef::EMPTY, FileRef { id: 3, len: 0, crc: 0 }] {
            let mut buf = Vec::new();
            encode_checkpoint(&mut buf, None, &HardState::default(), &meta(), file, [].iter());
            assert!(matches!(decoded(&buf), Record::Checkpoint { file: f, .. } if f == file));
        }
    }

    #[test]
    fn unknown_kinds_versions_and_flags_are_refused() {
        for bad in [&[3u8, 1][..], &[0, 1], &[1, 9], &[1, 2, 0x10], &[1, 2, 8, 0, 0]] {
            assert!(decode(&Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
        let huge_count = [1u8, 2, 8, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode(&Bytes::copy_from_slice(&huge_count)).is_err());
    }
}
