//! A node's Raft identity: a random id generated on first boot and kept in the data directory.
//!
//! openraft forbids reusing a node id: a node that lost its log and came back under its old id
//! could vote twice in a term and split the cluster. So the id lives next to the Raft data, in
//! `<data_dir>/raft/node-id` (decimal, one line), written atomically (temp file, fsync, rename,
//! fsync of the directory). A wiped data directory yields a fresh id; Raft data without an id
//! file is refused rather than given a new id, because that log already holds votes cast under
//! the old one.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use crate::error::Error;
use crate::error::Result;
use crate::types::NodeId;

/// Ids stay below 2^53 so they survive JSON consumers that read numbers as doubles.
const ID_LIMIT: u64 = 1 << 53;

/// The file name, inside `<data_dir>/raft/`.
pub const NODE_ID_FILE: &str = "node-id";

/// This node's persistent Raft identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIdentity {
    id: NodeId,
    created: bool,
}

impl NodeIdentity {
    /// Loads `<data_dir>/raft/node-id`, or generates and stores a new random id when the
    /// directory holds no Raft data yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let dir = raft_dir(data_dir);
        let path = dir.join(NODE_ID_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Self { id: parse_id(&path, &text)?, created: false }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                refuse_orphaned_data(&dir, &path)?;
                fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
                let id = random_id();
                write_atomically(&dir, &path, format!("{id}\n").as_bytes())?;
                Ok(Self { id, created: true })
            }
            Err(e) => Err(Error::io("read node id", &path, e)),
        }
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// True when this call generated the id (first boot on this data directory).
    pub fn is_new(&self) -> bool {
        self.created
    }
}

/// `<data_dir>/raft`: where the identity, the log, the state machine and the snapshot live.
pub fn raft_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("raft")
}

fn parse_id(path: &Path, text: &str) -> Result<NodeId> {
    let bad = |reason: String| Error::Identity { path: path.to_path_buf(), reason };
    let id: u64 = text.trim().parse().map_err(|e| bad(format!("not a number ({e}): {:?}", text.trim())))?;
    if id == 0 || id >= ID_LIMIT {
        return Err(bad(format!("id {id} out of range 1..2^53")));
    }
    Ok(id)
}

/// Raft files without an id file mean the id was lost: a new id would reuse the old log.
fn refuse_orphaned_data(dir: &Path, path: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    let orphans: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".redb") || name.starts_with("snapshot"))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    Err(Error::Identity {
        path: path.to_path_buf(),
        reason: format!(
            "missing, but Raft data exists ({}); refusing to invent a new id for an existing log: \
             restore the file or wipe the directory",
            orphans.join(", ")
        ),
    })
}

fn random_id() -> NodeId {
    loop {
        let id = rand::random::<u64>() % ID_LIMIT;
        if id != 0 {
            return id;
        }
    }
}

/// Writes `bytes` to `path` through a temp file, fsyncs it, renames it and fsyncs the directory.
pub(crate) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))?;
    sync_dir(dir)
}

/// Fsyncs a directory so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_boot_creates_a_stable_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = NodeIdentity::load_or_create(dir.path()).expect("create");
        assert!(first.is_new());
        assert_ne!(first.id(), 0);
        assert!(first.id() < ID_LIMIT);
        let again = NodeIdentity::load_or_create(dir.path()).expect("load");
        assert!(!again.is_new());
        assert_eq!(first.id(), again.id());
        let text = fs::read_to_string(dir.path().join("raft").join(NODE_ID_FILE)).expect("read");
        assert_eq!(text, format!("{}\n", first.id()));
        assert!(!dir.path().join("raft").join(".node-id.tmp").exists());
    }

    #[test]
    fn a_wiped_directory_gets_a_new_id() {
        let a = tempfile::tempdir().expect("tempdir");
        let first = NodeIdentity::load_or_create(a.path()).expect("create").id();
        fs::remove_dir_all(a.path().join("raft")).expect("wipe");
        let second = NodeIdentity::load_or_create(a.path()).expect("recreate").id();
        assert_ne!(first, second);
    }

    #[test]
    fn malformed_or_zero_ids_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raft = dir.path().join("raft");
        fs::create_dir_all(&raft).expect("mkdir");
        for bad in ["", "abc", "0", "-1", "18446744073709551615", "12 34"] {
            fs::write(raft.join(NODE_ID_FILE), bad).expect("write");
            let err = NodeIdentity::load_or_create(dir.path()).expect_err(bad);
            assert!(matches!(err, Error::Identity { .. }), "{bad:?}: {err}");
        }
        fs::write(raft.join(NODE_ID_FILE), " 42\n").expect("write");
        assert_eq!(NodeIdentity::load_or_create(dir.path()).expect("load").id(), 42);
    }

    #[test]
    fn raft_data_without_an_id_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raft = dir.path().join("raft");
        fs::create_dir_all(&raft).expect("mkdir");
        fs::write(raft.join("log.redb"), b"x").expect("write");
        let err = NodeIdentity::load_or_create(dir.path()).expect_err("orphaned log");
        assert!(err.to_string().contains("log.redb"), "{err}");
    }
}
