//! The snapshot format, and the `snapshot.bin` file that holds the current snapshot.
//!
//! A snapshot (the bytes sent to a lagging follower and kept in `snapshot.bin`) is:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `CRNSNAP\0` |
//! | 4 | format version, u32 little-endian ([`FORMAT_VERSION`]) |
//! | 4 | header length `n`, u32 little-endian |
//! | n | header: postcard of (last applied log id, membership) |
//! | rest | the application's snapshot ([`Application::snapshot`](crate::Application::snapshot)) |
//!
//! The header doubles as openraft's snapshot metadata, so a snapshot file is self-describing.

use std::fs;
use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;

use super::FORMAT_VERSION;
use crate::codec;
use crate::error::Error;
use crate::error::Result;
use crate::identity::write_atomically;
use crate::types::LogId;
use crate::types::SnapshotMeta;
use crate::types::StoredMembership;

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"CRNSNAP\0";
const PREFIX: usize = MAGIC.len() + 4 + 4;

/// The snapshot file name, inside `<data_dir>/raft/`.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";

#[derive(Serialize, Deserialize)]
struct Header {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// Starts a snapshot of state `meta`: everything before the application's bytes, which the
/// caller appends (so a large state is laid out once, in this buffer).
pub fn begin(meta: &SnapshotMeta) -> Result<Vec<u8>> {
    let header = codec::encode(
        "snapshot header",
        &Header { last_applied: meta.last_log_id, membership: meta.last_membership.clone() },
    )?;
    let mut out = Vec::with_capacity(PREFIX + header.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    Ok(out)
}

/// Lays out a snapshot of state `meta` with the application's bytes `app`.
#[cfg(test)]
pub fn encode(meta: &SnapshotMeta, app: &[u8]) -> Result<Vec<u8>> {
    let mut out = begin(meta)?;
    out.extend_from_slice(app);
    Ok(out)
}

/// Splits a snapshot into its metadata and the application's bytes; never panics on bad input.
pub fn decode(bytes: &[u8]) -> Result<(SnapshotMeta, &[u8])> {
    let bad = |reason: String| Error::Decode { what: "snapshot", reason };
    if bytes.len() < PREFIX || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("not a Cairn snapshot (bad magic)".into()));
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(MAGIC.len());
    if version != FORMAT_VERSION {
        return Err(bad(format!("format version {version}, this build reads {FORMAT_VERSION}")));
    }
    let header_len = word(MAGIC.len() + 4) as usize;
    let header_end = PREFIX.checked_add(header_len).filter(|e| *e <= bytes.len());
    let Some(header_end) = header_end else {
        return Err(bad(format!("header length {header_len} exceeds the {} bytes given", bytes.len())));
    };
    let header: Header = codec::decode("snapshot header", &bytes[PREFIX..header_end])?;
    let meta = SnapshotMeta { last_log_id: header.last_applied, last_membership: header.membership };
    Ok((meta, &bytes[header_end..]))
}

/// `snapshot.bin`: the snapshot the node last built or installed.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFile {
    dir: PathBuf,
    path: PathBuf,
}

impl SnapshotFile {
    pub(crate) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), path: dir.join(SNAPSHOT_FILE) }
    }

    /// The current snapshot, if any.
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read snapshot", &self.path, e)),
        }
    }

    /// Whether the current snapshot is exactly `bytes` (compared in chunks, not read whole).
    pub(crate) fn holds(&self, bytes: &[u8]) -> Result<bool> {
        use std::io::Read;
        let err = |e| Error::io("read snapshot", &self.path, e);
        let mut file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(err(e)),
        };
        if file.metadata().map_err(err)?.len() != bytes.len() as u64 {
            return Ok(false);
        }
        let mut chunk = vec![0u8; 256 << 10];
        for expected in bytes.chunks(chunk.len()) {
            let got = &mut chunk[..expected.len()];
            file.read_exact(got).map_err(err)?;
            if got != expected {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Replaces the current snapshot; durable when this returns.
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<()> {
        write_atomically(&self.dir, &self.path, bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;

    use openraft::Membership;

    use super::*;
    use crate::types::NodeInfo;
    use crate::types::TypeConfig;

    fn meta() -> SnapshotMeta {
        let nodes = BTreeMap::from([(3, NodeInfo::new("a:1")), (4, NodeInfo::new("b:1"))]);
        let m = Membership::new(vec![BTreeSet::from([3, 4])], nodes).expect("membership");
        SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<TypeConfig>(2, 3, 77)),
            last_membership: StoredMembership::new(Some(openraft::testing::log_id::<TypeConfig>(1, 3, 5)), m),
        }
    }

    #[test]
    fn roundtrip_keeps_meta_and_app_bytes() {
        let bytes = encode(&meta(), b"app state").expect("encode");
        let (m, app) = decode(&bytes).expect("decode");
        assert_eq!(m, meta());
        assert_eq!(app, b"app state");
        let bytes = encode(&meta(), b"").expect("encode");
        let (_, empty) = decode(&bytes).expect("decode");
        assert!(empty.is_empty());
    }

    #[test]
    fn garbage_is_refused() {
        let good = encode(&meta(), b"xyz").expect("encode");
        let mut wrong_version = good.clone();
        wrong_version[8] = 9;
        let mut huge_header = good.clone();
        huge_header[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let cases: Vec<Vec<u8>> =
            vec![vec![], b"CRNSNAP".to_vec(), b"XXXXXXXX\x01\0\0\0\0\0\0\0".to_vec(), wrong_version, huge_header];
        for c in cases {
            assert!(decode(&c).is_err(), "{c:?}");
        }
    }

    #[test]
    fn file_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = SnapshotFile::new(dir.path());
        assert_eq!(f.read().expect("read"), None);
        f.write(b"one").expect("write");
        f.write(b"two").expect("overwrite");
        assert_eq!(f.read().expect("read").as_deref(), Some(&b"two"[..]));
    }
}
