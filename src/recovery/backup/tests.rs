use super::*;
use crate::log::MemoryLog;

fn members(voters: &[u64]) -> Membership {
    Membership::new(voters.iter().copied(), []).unwrap()
}

/// A log of node 2 (cluster 7): snapshot at 10 (term 2), entries 11..=15
/// (a configuration at 13), commit 14.
fn source() -> MemoryLog {
    let mut log = MemoryLog::new();
    log.set_identity(LogIdentity { cluster_id: 7, node_id: 2 }).unwrap();
    let base = members(&[1, 2, 3]);
    log.install_snapshot(SnapshotMeta { index: 10, term: 2, membership: base }, Bytes::from_static(b"state@10"))
        .unwrap();
    let mut entries = vec![
        Entry::noop(3, 11),
        Entry::normal(3, 12, Bytes::from_static(b"x")),
        Entry::config(3, 13, &members(&[1, 2, 3, 4])),
        Entry::normal(4, 14, Bytes::from_static(b"y")),
        Entry::normal(4, 15, Bytes::from_static(b"uncommitted")),
    ];
    log.append(&mut entries).unwrap();
    log.set_hard_state(HardState { term: 4, vote: Some(1), commit: 14 }).unwrap();
    log.sync().unwrap();
    log
}

fn new_node(id: u64) -> LogIdentity {
    LogIdentity { cluster_id: 8, node_id: id }
}

#[test]
fn a_backup_holds_the_snapshot_and_the_committed_entries_only() {
    let b = take_backup(&source()).unwrap();
    assert_eq!(b.source, Some(LogIdentity { cluster_id: 7, node_id: 2 }));
    assert_eq!((b.snapshot.index, b.snapshot.term), (10, 2));
    assert_eq!(b.data, "state@10");
    assert_eq!(b.entries.iter().map(|e| e.index).collect::<Vec<_>>(), [11, 12, 13, 14]);
    assert_eq!((b.last_index(), b.last_term()), (14, 4));
    assert_eq!(b.membership(), Some(members(&[1, 2, 3, 4])), "the configuration entry at 13");
    let mut before = b.clone();
    before.entries.truncate(2);
    assert_eq!(before.membership(), Some(members(&[1, 2, 3])), "the snapshot's");
}

#[test]
fn a_restored_log_holds_the_backup_under_the_new_configuration() {
    let b = take_backup(&source()).unwrap();
    let mut log = MemoryLog::new();
    restore(&mut log, new_node(5), &b, members(&[5])).unwrap();
    assert_eq!(log.identity(), Some(new_node(5)));
    assert_eq!(log.snapshot_meta().index, 10);
    assert_eq!(log.snapshot_meta().membership.voters(), [5]);
    assert_eq!(log.snapshot_data().unwrap(), "state@10");
    assert_eq!(log.hard_state(), HardState { term: 4, vote: None, commit: 14 });
    let mut held = Vec::new();
    log.entries(11, 15, u64::MAX, &mut held).unwrap();
    let kinds: Vec<_> = held.iter().map(|e| (e.index, e.term, e.kind)).collect();
    // The old cluster's configuration entry is a no-op in the new one.
    assert_eq!(
        kinds,
        [(11, 3, EntryKind::Noop), (12, 3, EntryKind::Normal), (13, 3, EntryKind::Noop), (14, 4, EntryKind::Normal)]
    );
    assert!(held[2].data.is_empty());
    assert!(!log.has_unsynced_changes(), "restore syncs");
    assert!(crate::recovery::inspect(&log).unwrap().membership.voters() == [5]);
}

#[test]
fn refusals_write_nothing() {
    let b = take_backup(&source()).unwrap();
    let refused = |log: &mut MemoryLog, id: u64, backup: &Backup, m: Membership| {
        let e = restore(log, new_node(id), backup, m).unwrap_err();
        assert!(log.identity().is_none() && !crate::log::holds_state(log), "{e} wrote");
        e
    };
    let mut fresh = MemoryLog::new();
    assert!(matches!(refused(&mut fresh, 5, &b, members(&[6])), RecoveryError::NotAVoter { node: 5 }));
    let joint = Membership::joint([5, 6], [], [5]).unwrap();
    assert!(matches!(refused(&mut fresh, 5, &b, joint), RecoveryError::JointConfiguration));
    let mut gap = b.clone();
    gap.entries.remove(1);
    assert!(matches!(refused(&mut fresh, 5, &gap, members(&[5])), RecoveryError::Backup(BackupError::Malformed(_))));
    let mut late = b.clone();
    late.entries[3].term = MAX_TERM - 1;
    assert!(matches!(refused(&mut fresh, 5, &late, members(&[5])), RecoveryError::TermExhausted(_)));
    let mut used = source();
    assert!(matches!(restore(&mut used, new_node(5), &b, members(&[5])), Err(RecoveryError::InUse)));
    let same = LogIdentity { cluster_id: 7, node_id: 5 };
    let e = restore(&mut fresh, same, &b, members(&[5])).unwrap_err();
    assert!(matches!(e, RecoveryError::SameCluster(7)), "{e}");
    assert!(fresh.identity().is_none() && !crate::log::holds_state(&fresh));
}

#[test]
fn a_log_whose_commit_is_past_its_last_entry_is_not_backed_up() {
    let mut log = source();
    log.set_hard_state(HardState { term: 4, vote: None, commit: 16 }).unwrap();
    assert!(matches!(take_backup(&log), Err(RecoveryError::CorruptLog(_))));
}

#[test]
fn check_refuses_what_no_log_holds() {
    let good = take_backup(&source()).unwrap();
    let bad = |f: &dyn Fn(&mut Backup)| {
        let mut b = good.clone();
        f(&mut b);
        b.check().unwrap_err()
    };
    bad(&|b| b.snapshot.term = 0);
    bad(&|b| b.entries[1].index = 20);
    bad(&|b| b.entries[0].term = 1);
    bad(&|b| b.entries[3].term = 3 - 1);
    bad(&|b| b.entries[1].term = 0);
    bad(&|b| b.entries[0].data = Bytes::from_static(b"?"));
    bad(&|b| b.entries[2].data = Bytes::from_static(b"not a membership"));
    bad(&|b| b.entries[3].term = MAX_TERM + 1);
    bad(&|b| {
        b.snapshot.term = MAX_TERM + 1;
        b.entries.clear();
    });
    // Indexes: the last must leave room below 2^62.
    bad(&|b| {
        b.snapshot.index = MAX_TERM - 4;
        b.entries.iter_mut().zip(1..).for_each(|(e, k)| e.index = MAX_TERM - 4 + k);
    });
    let mut top = good.clone();
    top.snapshot.index = MAX_TERM - 5;
    top.entries.iter_mut().zip(1..).for_each(|(e, k)| e.index = MAX_TERM - 5 + k);
    assert_eq!(top.check(), Ok(()), "the last index just below 2^62");
    bad(&|b| {
        b.snapshot.index = 0;
        b.snapshot.term = 0;
    });
    let mut empty = good.clone();
    (empty.snapshot.index, empty.snapshot.term, empty.data, empty.entries) = (0, 0, Bytes::new(), Vec::new());
    assert_eq!(empty.check(), Err(BackupError::Malformed("it holds nothing (no snapshot and no committed entry)")));
}

#[test]
fn a_log_that_never_compacted_backs_up_from_its_first_entry() {
    let mut log = MemoryLog::new();
    log.set_identity(LogIdentity { cluster_id: 1, node_id: 1 }).unwrap();
    log.append(&mut vec![Entry::noop(1, 1), Entry::normal(1, 2, Bytes::from_static(b"a"))]).unwrap();
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 2 }).unwrap();
    let b = take_backup(&log).unwrap();
    assert_eq!((b.snapshot.index, b.entries.len(), b.last_index()), (0, 2, 2));
    let mut restored = MemoryLog::new();
    restore(&mut restored, new_node(3), &b, members(&[3])).unwrap();
    assert_eq!((restored.last_index(), restored.hard_state().commit), (2, 2));
    // Nothing committed, nothing to back up.
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    assert!(matches!(take_backup(&log), Err(RecoveryError::Backup(BackupError::Malformed(_)))));
}

#[cfg(feature = "persistence")]
mod file {
    use super::*;

    /// Entries that take more than one WAL record are restored in
    /// pieces, each within the record limit, into a `WalLog` that then
    /// reopens with all of them.
    #[test]
    fn a_backup_larger_than_a_record_is_restored_in_pieces() {
        use crate::log::{WalLog, WalOptions};
        let mut log = MemoryLog::new();
        log.set_identity(LogIdentity { cluster_id: 1, node_id: 1 }).unwrap();
        let mut entries: Vec<Entry> = (1..=64).map(|i| Entry::normal(1, i, Bytes::from(vec![i as u8; 4096]))).collect();
        log.append(&mut entries).unwrap();
        log.set_hard_state(HardState { term: 1, vote: None, commit: 64 }).unwrap();
        let b = take_backup(&log).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = || WalOptions::new().max_record_size(32 << 10);
        {
            let mut wal = WalLog::open_with(dir.path(), options()).unwrap();
            restore(&mut wal, new_node(2), &b, members(&[2])).unwrap();
            assert!(wal.stats().syncs >= 8, "in pieces, each synced: {:?}", wal.stats());
        }
        let wal = WalLog::open_with(dir.path(), options()).unwrap();
        assert_eq!((wal.last_index(), wal.hard_state().commit), (64, 64));
        let mut held = Vec::new();
        wal.entries(1, 65, u64::MAX, &mut held).unwrap();
        assert_eq!(held, b.entries);
    }

    #[test]
    fn an_entry_larger_than_the_log_can_hold_is_refused_before_anything_is_written() {
        use crate::log::{WalLog, WalOptions};
        let mut log = MemoryLog::new();
        let mut entries =
            vec![Entry::normal(1, 1, Bytes::from(vec![1; 1024])), Entry::normal(1, 2, Bytes::from(vec![2; 40 << 10]))];
        log.append(&mut entries).unwrap();
        log.set_hard_state(HardState { term: 1, vote: None, commit: 2 }).unwrap();
        let b = take_backup(&log).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = || WalOptions::new().max_record_size(32 << 10);
        {
            let mut wal = WalLog::open_with(dir.path(), options()).unwrap();
            let e = restore(&mut wal, new_node(2), &b, members(&[2])).unwrap_err();
            assert!(matches!(e, RecoveryError::EntryTooLarge { index: 2, .. }), "{e}");
        }
        let wal = WalLog::open_with(dir.path(), options()).unwrap();
        assert!(wal.identity().is_none() && !crate::log::holds_state(&wal), "nothing written");
    }

    #[test]
    fn a_backup_file_round_trips() {
        let b = take_backup(&source()).unwrap();
        let bytes = Bytes::from(b.encode());
        assert!(bytes.starts_with(b"RAFTBKUP\x01"));
        assert_eq!(Backup::decode(&bytes).unwrap(), b);
        let mut no_data = b.clone();
        (no_data.snapshot.index, no_data.snapshot.term, no_data.data) = (0, 0, Bytes::new());
        no_data.entries.iter_mut().zip(1..).for_each(|(e, i)| e.index = i);
        assert_eq!(Backup::decode(&Bytes::from(no_data.encode())).unwrap(), no_data);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused() {
        let bytes = take_backup(&source()).unwrap().encode();
        for n in 0..bytes.len() {
            assert!(Backup::decode(&Bytes::copy_from_slice(&bytes[..n])).is_err(), "cut at {n}");
        }
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                assert!(Backup::decode(&Bytes::from(bad)).is_err(), "byte {i} bit {bit:#x}");
            }
        }
    }

    /// Random damage under a valid checksum (a faulty tool, or a hostile
    /// file): every file is refused or decodes into a backup that
    /// encodes back to itself and that a restore either refuses or
    /// turns into a log a node starts and leads on.
    #[test]
    fn a_resealed_damaged_file_is_refused_or_restores_into_a_log_a_node_starts_on() {
        use crate::{Event, RaftConfig, RaftNode};
        let seed: u64 = 0x5eed_0fba;
        println!("seed {seed:#x}");
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for b in [take_backup(&source()).unwrap(), {
            let mut log = MemoryLog::new();
            log.append(&mut vec![Entry::noop(1, 1), Entry::config(1, 2, &members(&[1, 2]))]).unwrap();
            log.set_hard_state(HardState { term: 1, vote: None, commit: 2 }).unwrap();
            take_backup(&log).unwrap()
        }] {
            let good = b.encode();
            for _ in 0..3000 {
                let mut body = good[..good.len() - 4].to_vec();
                for _ in 0..1 + next() % 3 {
                    let i = (next() % body.len() as u64) as usize;
                    match next() % 3 {
                        0 => body[i] ^= 1 << (next() % 8),
                        1 => body[i] = next() as u8,
                        _ => body.insert(i, next() as u8),
                    }
                }
                let crc = crate::crc::crc32c(&body);
                body.extend_from_slice(&crc.to_le_bytes());
                let Ok(decoded) = Backup::decode(&Bytes::from(body)) else { continue };
                assert_eq!(Backup::decode(&Bytes::from(decoded.encode())).as_ref(), Ok(&decoded));
                let mut log = MemoryLog::new();
                if restore(&mut log, new_node(5), &decoded, members(&[5])).is_ok() {
                    let config = RaftConfig::new(5, [5]).cluster_id(8);
                    let mut node = RaftNode::with_log(config, log).unwrap_or_else(|e| panic!("{e}: {decoded:?}"));
                    node.step(Event::Campaign).unwrap();
                    assert!(node.is_leader(), "{decoded:?}");
                }
            }
        }
    }

    /// Bytes with a valid checksum but broken inside are refused by the
    /// format's own rules (a file written by a faulty tool).
    #[test]
    fn a_well_sealed_file_that_breaks_the_rules_is_refused() {
        use crate::log::wal::record::{self, FileRef};
        let seal = |mut body: Vec<u8>| {
            let crc = crate::crc::crc32c(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            Bytes::from(body)
        };
        let good = take_backup(&source()).unwrap().encode();
        let body = good[..good.len() - 4].to_vec();
        let mut version = body.clone();
        version[8] = 2;
        assert_eq!(Backup::decode(&seal(version)), Err(BackupError::Version(2)));
        let mut long = body.clone();
        long[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(Backup::decode(&seal(long)), Err(BackupError::Malformed(_))));
        let mut short_data = body.clone();
        short_data.pop();
        assert!(matches!(Backup::decode(&seal(short_data)), Err(BackupError::Malformed(_))));
        let mut gap = take_backup(&source()).unwrap();
        gap.entries.remove(1);
        let gap = gap.encode();
        // The record gives entries no index: a removed entry shifts the
        // rest, so the hard state no longer matches the last entry.
        assert!(matches!(Backup::decode(&Bytes::from(gap)), Err(BackupError::Malformed(_))));
        // A record length a few bytes past the end, and one past
        // everything: refused, never sliced.
        for extra in [1u64, 3, 4, 1 << 40] {
            let mut past = body.clone();
            let len = u64::from_le_bytes(past[9..17].try_into().unwrap());
            past[9..17].copy_from_slice(&(len + (body.len() as u64 - 17 - len) + extra).to_le_bytes());
            assert!(matches!(Backup::decode(&seal(past)), Err(BackupError::Malformed(_))), "{extra}");
        }
        // A step record where the checkpoint belongs.
        let mut step = Vec::new();
        record::encode_step::<std::slice::Iter<'_, Entry>>(&mut step, None, None, None, None);
        let mut not_checkpoint = b"RAFTBKUP\x01".to_vec();
        not_checkpoint.extend_from_slice(&(step.len() as u64).to_le_bytes());
        not_checkpoint.extend_from_slice(&step);
        assert_eq!(
            Backup::decode(&seal(not_checkpoint)),
            Err(BackupError::Malformed("the record is not a checkpoint"))
        );
        // The data's reference names another file than 1.
        let b = take_backup(&source()).unwrap();
        let mut rec = Vec::new();
        let hard = HardState { term: b.last_term(), vote: None, commit: b.last_index() };
        let file = FileRef { id: 2, len: b.data.len() as u64, crc: crate::crc::crc32c(&b.data) };
        record::encode_checkpoint(&mut rec, b.source, &hard, &b.snapshot, file, b.entries.iter());
        let mut other_file = b"RAFTBKUP\x01".to_vec();
        other_file.extend_from_slice(&(rec.len() as u64).to_le_bytes());
        other_file.extend_from_slice(&rec);
        other_file.extend_from_slice(&b.data);
        assert_eq!(
            Backup::decode(&seal(other_file)),
            Err(BackupError::Malformed("the snapshot data does not match its reference"))
        );
        assert_eq!(Backup::decode(&Bytes::from_static(b"RAFTBK")), Err(BackupError::NotABackup));
        assert_eq!(Backup::decode(&Bytes::from_static(b"RAFTBKUP\x01")), Err(BackupError::Checksum));
    }
}
