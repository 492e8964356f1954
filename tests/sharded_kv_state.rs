//! The state machine of the sharded key-value examples
//! (`examples/sharded_kv/kv.rs`, shared by `sharded_kv`, `sharded_bench`
//! and `sharded_node`): a put returns the value it replaced, reads find the
//! latest value whatever the key's length, and a snapshot restores the
//! same map.
#![cfg(feature = "net")]

#[allow(dead_code)]
#[path = "../examples/sharded_kv/kv.rs"]
mod kv;

use bytes::Bytes;
use kv::{Kv, Output};
use raft_io::runtime::StateMachine;

fn put(kv: &mut Kv, key: &[u8], value: &str) -> Output {
    kv.apply(0, &kv::put(key, value.as_bytes()))
}

/// Keys of every length around the inline limit, and one far past it.
fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..=30).map(|n| vec![b'k'; n]).collect();
    keys.push(vec![7; 300]);
    keys.extend((0..200).map(|i| kv::key(i % 64, i)));
    keys
}

#[test]
fn a_put_returns_what_it_replaced_and_a_read_finds_the_latest() {
    let mut kv = Kv::default();
    for (i, k) in keys().iter().enumerate() {
        assert_eq!(put(&mut kv, k, &format!("a{i}")), None, "key {k:?} is new");
    }
    for (i, k) in keys().iter().enumerate() {
        assert_eq!(put(&mut kv, k, &format!("b{i}")).as_deref(), Some(format!("a{i}").as_bytes()), "key {k:?}");
        assert_eq!(kv.get(k).as_deref(), Some(format!("b{i}").as_bytes()), "key {k:?}");
    }
    assert_eq!(kv.get(b"absent"), None);
}

#[test]
fn values_name_their_sequence_number() {
    assert_eq!(&kv::value(0), b"v000000000000000");
    assert_eq!(&kv::value(42), b"v000000000000042");
    assert_eq!(&kv::value(123_456_789_012_345), b"v123456789012345");
}

#[test]
fn a_malformed_command_changes_nothing() {
    let mut kv = Kv::default();
    put(&mut kv, b"k", "v");
    for bad in [&b""[..], &b"\x05"[..], &b"\x05\x00ab"[..]] {
        assert_eq!(kv.apply(0, &Bytes::copy_from_slice(bad)), None);
    }
    assert_eq!(kv.get(b"k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_snapshot_restores_every_key() {
    let mut kv = Kv::default();
    for (i, k) in keys().iter().enumerate() {
        put(&mut kv, k, &format!("v{i}"));
    }
    let mut restored = Kv::default();
    put(&mut restored, b"stale", "gone");
    restored.restore(&kv.snapshot());
    assert_eq!(restored.get(b"stale"), None);
    for (i, k) in keys().iter().enumerate() {
        assert_eq!(restored.get(k).as_deref(), Some(format!("v{i}").as_bytes()), "key {k:?}");
        // A restored key is found again by a put, not added twice.
        assert_eq!(put(&mut restored, k, "w").as_deref(), Some(format!("v{i}").as_bytes()));
    }
}

/// Values of every length around the inline limit, and one far past it:
/// each put returns the one before, whole.
#[test]
fn values_of_every_length_come_back_whole() {
    let mut kv = Kv::default();
    let mut values: Vec<Vec<u8>> = (0..=30).map(|n| (0..n).map(|i| b'a' + i as u8 % 26).collect()).collect();
    values.push(vec![9; 300]);
    let mut before: Option<Vec<u8>> = None;
    for v in &values {
        let out = kv.apply(0, &kv::put(b"key", v));
        assert_eq!(out.as_deref(), before.as_deref(), "the put before {} bytes", v.len());
        assert_eq!(kv.get(b"key").as_deref(), Some(&v[..]));
        before = Some(v.clone());
    }
    let mut restored = Kv::default();
    restored.restore(&kv.snapshot());
    assert_eq!(restored.get(b"key").as_deref(), Some(&[9u8; 300][..]));
}
