//! Binary encoding of openraft values, on disk and on the wire: [postcard].
//!
//! Why postcard: openraft types are serde types, and postcard is serde's compact, positional
//! format with a frozen 1.0 wire specification. A log entry costs a few bytes of framing
//! (varint lengths) around its command; JSON would cost field names and base-10 numbers on every
//! entry, and bincode's project is no longer maintained. The price of a positional format is that
//! a field added to a type breaks old data: openraft documents this for its own types (its
//! `SnapshotMeta` keeps a reserved field for exactly this reason), and Cairn pins the openraft
//! version and versions its own on-disk records (see [`crate::store`]).
//!
//! Decoding never panics: malformed input yields [`Error::Decode`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::error::Result;

/// Encodes `value` with postcard.
pub fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::Decode { what, reason: format!("encode: {e}") })
}

/// Decodes a postcard value; trailing bytes are an error (they mean a format mismatch).
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| Error::Decode { what, reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(Error::Decode { what, reason: format!("{} trailing bytes", rest.len()) });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;

    use openraft::EntryPayload;
    use openraft::Membership;
    use openraft::entry::RaftEntry;
    use openraft::raft::AppendEntriesRequest;
    use openraft::raft::AppendEntriesResponse;
    use openraft::raft::VoteRequest;

    use super::*;
    use crate::types::Command;
    use crate::types::Entry;
    use crate::types::LogId;
    use crate::types::NodeInfo;
    use crate::types::Reply;
    use crate::types::SnapshotMeta;
    use crate::types::StoredMembership;
    use crate::types::TypeConfig;
    use crate::types::Vote;

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        openraft::testing::log_id::<TypeConfig>(term, node, index)
    }

    fn membership() -> Membership<u64, NodeInfo> {
        let nodes = BTreeMap::from([(1, NodeInfo::new("127.0.0.1:9849")), (2, NodeInfo::new("127.0.0.2:9849"))]);
        Membership::new(vec![BTreeSet::from([1, 2])], nodes).expect("valid membership")
    }

    fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
        let bytes = encode("test value", &value).expect("encode");
        let back: T = decode("test value", &bytes).expect("decode");
        assert_eq!(value, back);
    }

    #[test]
    fn entries_roundtrip() {
        let entries: Vec<Entry> = vec![
            Entry::new_blank(log_id(1, 7, 1)),
            Entry::new_normal(log_id(2, 7, 2), Command(b"set a=1".to_vec())),
            Entry::new_membership(log_id(2, 7, 3), membership()),
        ];
        for e in entries {
            let bytes = encode("entry", &e).expect("encode");
            let back: Entry = decode("entry", &bytes).expect("decode");
            assert_eq!(back.log_id, e.log_id);
            match (&back.payload, &e.payload) {
                (EntryPayload::Blank, EntryPayload::Blank) => {}
                (EntryPayload::Normal(a), EntryPayload::Normal(b)) => assert_eq!(a, b),
                (EntryPayload::Membership(a), EntryPayload::Membership(b)) => assert_eq!(a, b),
                other => panic!("payload changed: {other:?}"),
            }
        }
    }

    #[test]
    fn normal_entry_framing_is_small() {
        let e = Entry::new_normal(log_id(3, u64::MAX >> 11, 1_000_000), Command(vec![0xab; 100]));
        let bytes = encode("entry", &e).expect("encode");
        assert!(bytes.len() < 100 + 24, "framing too large: {} bytes", bytes.len());
    }

    #[test]
    fn protocol_messages_roundtrip() {
        let vote = Vote::new_committed(3, 1);
        let req = AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: Some(log_id(2, 1, 9)),
            entries: vec![Entry::new_normal(log_id(3, 1, 10), Command(vec![1, 2, 3]))],
            leader_commit: Some(log_id(2, 1, 9)),
        };
        let bytes = encode("append", &req).expect("encode");
        let back: AppendEntriesRequest<TypeConfig> = decode("append", &bytes).expect("decode");
        assert_eq!(back.vote, req.vote);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.entries.len(), 1);

        roundtrip(AppendEntriesResponse::<TypeConfig>::Success);
        roundtrip(AppendEntriesResponse::<TypeConfig>::Conflict);
        roundtrip(VoteRequest::<TypeConfig>::new(Vote::new(4, 2), Some(log_id(3, 1, 10))));
        roundtrip(Reply::Applied(b"ok".to_vec()));
        roundtrip(Reply::Rejected("no".into()));
        roundtrip(StoredMembership::new(Some(log_id(1, 1, 1)), membership()));
        roundtrip(SnapshotMeta {
            last_log_id: Some(log_id(5, 1, 100)),
            last_membership: StoredMembership::new(Some(log_id(1, 1, 1)), membership()),
        });
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [&b""[..], &[0xff; 3][..], &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..]] {
            assert!(decode::<AppendEntriesRequest<TypeConfig>>("append", bad).is_err());
            assert!(decode::<Entry>("entry", bad).is_err());
        }
        let ok = encode("reply", &Reply::Applied(vec![1])).expect("encode");
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(decode::<Reply>("reply", &trailing).is_err());
    }
}
