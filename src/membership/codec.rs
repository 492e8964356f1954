//! The membership blob (`docs/PROTOCOL.md`, "Membership blob"): how a
//! configuration is written into a configuration entry and into snapshot
//! metadata, and read back with every field checked.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::{MEMBERSHIP_FORMAT, MEMBERSHIP_FORMAT_V1, Membership, MembershipError, Sets};
use crate::types::NodeId;

impl Membership {
    /// Encodes the configuration for a [`EntryKind::Config`](crate::EntryKind::Config)
    /// entry and for snapshot metadata (format in `docs/PROTOCOL.md`,
    /// "Membership blob"): a version byte, then the voters, learners and
    /// outgoing lists, each as a `u32` little-endian count followed by that
    /// many `u64` little-endian ids; in version 2, then the addresses.
    ///
    /// A configuration without any address is written at version 1
    /// ([`MEMBERSHIP_FORMAT_V1`]), byte for byte as raft-io 0.7 wrote it;
    /// one with addresses at version 2 ([`MEMBERSHIP_FORMAT`]), which adds a
    /// `u32` count of addresses and, for each, the member's `u64` id, a
    /// `u16` length and the address bytes, in ascending id order.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        let with_addresses = !self.0.addresses.is_empty();
        buf.put_u8(if with_addresses { MEMBERSHIP_FORMAT } else { MEMBERSHIP_FORMAT_V1 });
        for list in [&self.0.voters, &self.0.learners, &self.0.outgoing] {
            buf.put_u32_le(list.len() as u32);
            for &id in list {
                buf.put_u64_le(id);
            }
        }
        if with_addresses {
            buf.put_u32_le(self.0.addresses.len() as u32);
            for (&id, address) in &self.0.addresses {
                buf.put_u64_le(id);
                // At most MAX_ADDRESS_LEN (checked when it was set).
                buf.put_u16_le(address.len() as u16);
                buf.put_slice(address);
            }
        }
        buf.freeze()
    }

    /// The length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        let lists = 1 + 12 + 8 * (self.0.voters.len() + self.0.learners.len() + self.0.outgoing.len());
        if self.0.addresses.is_empty() {
            return lists;
        }
        lists + 4 + self.0.addresses.values().map(|a| 10 + a.len()).sum::<usize>()
    }

    /// Decodes and validates bytes produced by [`encode`](Self::encode), of
    /// either version. Only the canonical form is accepted: version 2 must
    /// carry at least one address (a configuration without one is written
    /// at version 1), in strictly ascending id order, each of a member and
    /// 1 to [`MAX_ADDRESS_LEN`](super::MAX_ADDRESS_LEN) bytes long. Never panics and never
    /// allocates more than the input can hold.
    ///
    /// A configuration with members must have voters, and so must, in a
    /// joint configuration, the incoming half (the outgoing half has them
    /// by definition): each voter set that must form a majority of its own
    /// needs one to form ([`MembershipError::NoVoters`]). No change yields
    /// anything else, and a configuration without voters could never elect
    /// a leader or commit. The empty configuration
    /// ([`Membership::empty`], of a node that knows none yet) is read, as a
    /// store may hold it as a snapshot's; the frame decoder refuses it too.
    pub fn decode(bytes: &[u8]) -> Result<Self, MembershipError> {
        let m = Self::decode_any(bytes)?;
        if m.0.voters.is_empty() && !m.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        Ok(m)
    }

    /// [`decode`](Self::decode), refusing the empty configuration too: what
    /// a message may carry (a configuration entry, a snapshot's
    /// membership), which a leader, a member of a configuration with
    /// voters, never sends empty.
    #[cfg(feature = "framing")]
    pub(crate) fn decode_with_voters(bytes: &[u8]) -> Result<Self, MembershipError> {
        let m = Self::decode(bytes)?;
        if m.0.voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        Ok(m)
    }

    /// Every check of [`decode`](Self::decode) but the voters'.
    fn decode_any(mut bytes: &[u8]) -> Result<Self, MembershipError> {
        let version = take::<1>(&mut bytes)?[0];
        if version != MEMBERSHIP_FORMAT_V1 && version != MEMBERSHIP_FORMAT {
            return Err(MembershipError::Malformed("unknown format version"));
        }
        let mut lists: [Vec<NodeId>; 3] = Default::default();
        for list in &mut lists {
            let n = u32::from_le_bytes(take::<4>(&mut bytes)?) as usize;
            if n > bytes.len() / 8 {
                return Err(MembershipError::Malformed("count exceeds the bytes present"));
            }
            list.reserve_exact(n);
            for _ in 0..n {
                list.push(u64::from_le_bytes(take::<8>(&mut bytes)?));
            }
        }
        let addresses = if version == MEMBERSHIP_FORMAT { decode_addresses(&mut bytes)? } else { BTreeMap::new() };
        if !bytes.is_empty() {
            return Err(MembershipError::Malformed("trailing bytes"));
        }
        let [voters, learners, outgoing] = lists;
        Self::build(Sets { voters, learners, outgoing, addresses })
    }
}

/// The address list of a version-2 blob.
fn decode_addresses(bytes: &mut &[u8]) -> Result<BTreeMap<NodeId, Bytes>, MembershipError> {
    let n = u32::from_le_bytes(take::<4>(bytes)?) as usize;
    if n == 0 {
        return Err(MembershipError::Malformed("version 2 without an address (not canonical)"));
    }
    // Each address takes at least 11 bytes: checked before the loop, so a
    // huge count costs nothing.
    if n > bytes.len() / 11 {
        return Err(MembershipError::Malformed("count exceeds the bytes present"));
    }
    let mut out = BTreeMap::new();
    let mut last = 0;
    for _ in 0..n {
        let id = u64::from_le_bytes(take::<8>(bytes)?);
        if id <= last {
            return Err(MembershipError::Malformed("addresses not in strictly ascending id order"));
        }
        last = id;
        let len = usize::from(u16::from_le_bytes(take::<2>(bytes)?));
        let Some((address, rest)) = bytes.split_at_checked(len) else {
            return Err(MembershipError::Malformed("truncated"));
        };
        *bytes = rest;
        out.insert(id, Bytes::copy_from_slice(address));
    }
    Ok(out)
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], MembershipError> {
    let Some((head, rest)) = bytes.split_first_chunk::<N>() else {
        return Err(MembershipError::Malformed("truncated"));
    };
    *bytes = rest;
    Ok(*head)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{addressed, m};
    use super::super::{MAX_ADDRESS_LEN, MEMBERSHIP_FORMAT, MEMBERSHIP_FORMAT_V1, Membership};

    #[test]
    fn decode_refuses_malformed_bytes() {
        let good = m(&[1, 2], &[3]).encode();
        for cut in 0..good.len() {
            assert!(Membership::decode(&good[..cut]).is_err(), "prefix {cut}");
        }
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(Membership::decode(&trailing).is_err());
        let mut huge = vec![MEMBERSHIP_FORMAT_V1];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Membership::decode(&huge).is_err());
        let mut unsorted = vec![MEMBERSHIP_FORMAT_V1, 2, 0, 0, 0];
        unsorted.extend_from_slice(&2u64.to_le_bytes());
        unsorted.extend_from_slice(&1u64.to_le_bytes());
        unsorted.extend_from_slice(&[0; 8]);
        assert!(Membership::decode(&unsorted).is_err());
    }

    #[test]
    fn decode_refuses_a_configuration_whose_voter_sets_cannot_hold_a_quorum() {
        use super::super::MembershipError;
        // Each list as written: a `u32` count, then the ids.
        let lists = |voters: &[u64], learners: &[u64], outgoing: &[u64]| {
            let mut b = vec![MEMBERSHIP_FORMAT_V1];
            for list in [voters, learners, outgoing] {
                b.extend_from_slice(&(list.len() as u32).to_le_bytes());
                for id in list {
                    b.extend_from_slice(&id.to_le_bytes());
                }
            }
            b
        };
        let refused: [(&str, Vec<u8>); 3] = [
            ("learners only", lists(&[], &[4], &[])),
            ("joint, the incoming half empty", lists(&[], &[], &[1, 2, 3])),
            ("joint, the incoming half empty, with learners", lists(&[], &[4], &[1, 2])),
        ];
        for (what, bytes) in refused {
            assert_eq!(Membership::decode(&bytes), Err(MembershipError::NoVoters), "{what}");
        }
        // With addresses (version 2): the same.
        let mut addressed = lists(&[], &[4], &[]);
        addressed[0] = MEMBERSHIP_FORMAT;
        addressed.extend_from_slice(&1u32.to_le_bytes());
        addressed.extend_from_slice(&4u64.to_le_bytes());
        addressed.extend_from_slice(&3u16.to_le_bytes());
        addressed.extend_from_slice(b"h:1");
        assert_eq!(Membership::decode(&addressed), Err(MembershipError::NoVoters));
        // A joint configuration with both halves is read; the empty one (no
        // configuration yet, which a store may hold as a snapshot's) too.
        assert!(Membership::decode(&lists(&[4], &[], &[1, 2, 3])).is_ok());
        assert_eq!(Membership::decode(&lists(&[], &[], &[])), Ok(Membership::empty()));
    }

    #[test]
    fn a_configuration_without_addresses_is_written_at_version_1_as_before() {
        let c = m(&[1, 2], &[3]);
        let bytes = c.encode();
        assert_eq!(bytes[0], MEMBERSHIP_FORMAT_V1);
        let mut v1 = vec![1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        v1.extend_from_slice(&[1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[..], &v1[..], "the version 1 bytes, unchanged");
        assert_eq!(Membership::decode(&v1).unwrap(), c);
    }

    #[test]
    fn addresses_are_written_at_version_2_and_read_back() {
        let c = addressed();
        let bytes = c.encode();
        assert_eq!(bytes[0], MEMBERSHIP_FORMAT);
        assert_eq!(bytes.len(), c.encoded_len());
        let mut tail = vec![2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 13, 0];
        tail.extend_from_slice(b"10.0.0.1:7001");
        tail.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 4, 0]);
        tail.extend_from_slice(b"h3:7");
        assert!(bytes.ends_with(&tail), "{bytes:?}");
        let back = Membership::decode(&bytes).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.address(1).map(|a| &a[..]), Some(&b"10.0.0.1:7001"[..]));
        assert_eq!(back.address(2), None);
        assert_eq!(back.addresses().map(|(id, _)| id).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn the_documented_version_2_example() {
        let c = m(&[1, 2], &[]).with_address(2, "10.0.0.2:7002").unwrap();
        let hex: String = c.encode().iter().map(|b| format!("{b:02x}")).collect();
        let doc = concat!(
            "02",
            "02000000",
            "0100000000000000",
            "0200000000000000",
            "00000000",
            "00000000",
            "01000000",
            "0200000000000000",
            "0d00",
            "31302e302e302e323a37303032"
        );
        assert_eq!(hex, doc, "docs/PROTOCOL.md, \"Membership blob\"");
        assert_eq!(c.encoded_len(), 56);
    }

    #[test]
    fn version_2_refuses_what_is_not_canonical_or_valid() {
        let good = addressed().encode();
        for cut in 0..good.len() {
            assert!(Membership::decode(&good[..cut]).is_err(), "prefix {cut}");
        }
        let lists = &m(&[1, 2], &[3]).encode()[1..];
        let blob = |addrs: &[(u64, &[u8])], count: u32| {
            let mut b = vec![MEMBERSHIP_FORMAT];
            b.extend_from_slice(lists);
            b.extend_from_slice(&count.to_le_bytes());
            for (id, a) in addrs {
                b.extend_from_slice(&id.to_le_bytes());
                b.extend_from_slice(&(a.len() as u16).to_le_bytes());
                b.extend_from_slice(a);
            }
            b
        };
        assert!(Membership::decode(&blob(&[(1, b"a")], 1)).is_ok());
        let refused: [(&str, Vec<u8>); 6] = [
            ("no address at version 2", blob(&[], 0)),
            ("not ascending", blob(&[(2, b"a"), (1, b"b")], 2)),
            ("twice", blob(&[(1, b"a"), (1, b"b")], 2)),
            ("not a member", blob(&[(9, b"a")], 1)),
            ("empty address", blob(&[(1, b"")], 1)),
            ("huge count", blob(&[(1, b"a")], u32::MAX)),
        ];
        for (what, bytes) in refused {
            assert!(Membership::decode(&bytes).is_err(), "{what}");
        }
        let long = vec![b'x'; MAX_ADDRESS_LEN + 1];
        assert!(Membership::decode(&blob(&[(1, &long)], 1)).is_err(), "too long");
        assert!(Membership::decode(&blob(&[(1, &long[1..])], 1)).is_ok(), "longest");
        let mut v3 = good.to_vec();
        v3[0] = 3;
        assert!(Membership::decode(&v3).is_err(), "unknown version");
    }
}
