use redb::ReadableDatabase;

use super::*;
use crate::configs::model::ConfigMeta;

fn db() -> (tempdir::Dir, redb::Database) {
    let dir = tempdir::Dir::new();
    let db = redb::Database::create(dir.path.join("sm.redb")).unwrap();
    (dir, db)
}

mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("cairn-store-test-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn publish(key: &ConfigKey, content: &str, cas: Option<&str>, beta: Option<Vec<String>>) -> ConfigCommand {
    ConfigCommand::Publish {
        key: key.clone(),
        content: content.into(),
        meta: ConfigMeta { kind: "yaml".into(), ..ConfigMeta::default() },
        cas_md5: cas.map(str::to_owned),
        beta_ips: beta,
        src_user: "u".into(),
        src_ip: "1.2.3.4".into(),
        at_ms: 1000,
    }
}

fn apply(store: &ConfigStore, db: &redb::Database, index: u64, cmd: ConfigCommand) -> ConfigOutcome {
    let tx = db.begin_write().unwrap();
    let out = store.apply(&tx, index, &cmd).unwrap();
    tx.commit().unwrap();
    store.committed();
    out
}

#[test]
fn publish_update_cas_and_history() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let k = ConfigKey::new("", "G", "app.yaml");
    assert_eq!(apply(&s, &db, 1, publish(&k, "a: 1", None, None)), ConfigOutcome::Done { changed: true });
    assert_eq!(s.get(&k).unwrap().md5, md5_hex("a: 1"));
    assert_eq!(apply(&s, &db, 2, publish(&k, "a: 2", Some("wrong"), None)), ConfigOutcome::CasMismatch);
    assert_eq!(s.get(&k).unwrap().content, "a: 1");
    let cas = md5_hex("a: 1");
    assert_eq!(apply(&s, &db, 3, publish(&k, "a: 2", Some(&cas), None)), ConfigOutcome::Done { changed: true });
    assert_eq!(apply(&s, &db, 4, publish(&k, "a: 2", None, None)), ConfigOutcome::Done { changed: false });
    let item = s.get(&k).unwrap();
    assert_eq!(item.id, 1, "row id is stable");
    let tx = db.begin_read().unwrap();
    let (total, page) = s.history(&tx, &k, 1, 10).unwrap();
    assert_eq!(total, 3);
    assert_eq!(page[0].nid, 4);
    assert_eq!(page[2].op, OpType::Insert);
    assert_eq!(page[1].content, "a: 1", "an update records the previous content");
    let prev = s.history_previous(&tx, 4).unwrap().unwrap();
    assert_eq!(prev.nid, 3);
    assert!(s.history_previous(&tx, 1).unwrap().is_none());
}

#[test]
fn beta_and_remove() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let k = ConfigKey::new("dev", "G", "d");
    assert!(matches!(
        apply(&s, &db, 1, publish(&k, "b", None, Some(vec!["10.0.0.1".into()]))),
        ConfigOutcome::Rejected(_)
    ));
    apply(&s, &db, 2, publish(&k, "formal", None, None));
    apply(&s, &db, 3, publish(&k, "gray", None, Some(vec!["10.0.0.1".into()])));
    let item = s.get(&k).unwrap();
    assert_eq!(item.view_for("10.0.0.1").0, "gray");
    assert_eq!(item.view_for("10.0.0.9").0, "formal");
    let rm_beta = ConfigCommand::Remove {
        key: k.clone(),
        beta_only: true,
        src_user: String::new(),
        src_ip: String::new(),
        at_ms: 5,
    };
    assert_eq!(apply(&s, &db, 4, rm_beta.clone()), ConfigOutcome::Done { changed: true });
    assert_eq!(apply(&s, &db, 5, rm_beta), ConfigOutcome::NotFound);
    let rm = ConfigCommand::Remove {
        key: k.clone(),
        beta_only: false,
        src_user: String::new(),
        src_ip: String::new(),
        at_ms: 6,
    };
    assert_eq!(apply(&s, &db, 6, rm.clone()), ConfigOutcome::Done { changed: true });
    assert!(s.get(&k).is_none());
    assert_eq!(apply(&s, &db, 7, rm), ConfigOutcome::NotFound);
}

#[test]
fn namespaces_and_reload_and_snapshot() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let ns = Namespace { id: "dev".into(), name: "Dev".into(), desc: String::new(), created_ms: 1 };
    assert_eq!(apply(&s, &db, 1, ConfigCommand::CreateNamespace(ns.clone())), ConfigOutcome::Done { changed: true });
    assert!(matches!(apply(&s, &db, 2, ConfigCommand::CreateNamespace(ns)), ConfigOutcome::Rejected(_)));
    let k = ConfigKey::new("dev", "G", "d");
    apply(&s, &db, 3, publish(&k, "x", None, None));
    assert!(matches!(
        apply(&s, &db, 4, ConfigCommand::DeleteNamespace { id: "dev".into() }),
        ConfigOutcome::Rejected(_)
    ));
    assert!(s.namespace_exists("dev"));
    assert!(s.namespace_exists(""));
    assert!(!s.namespace_exists("prod"));

    // A fresh store loads the same state from disk.
    let s2 = ConfigStore::new();
    s2.load(&db.begin_read().unwrap()).unwrap();
    assert_eq!(s2.get(&k).unwrap().content, "x");
    assert_eq!(s2.namespaces().len(), 1);

    // Snapshot into another database and restore.
    let mut snap = Vec::new();
    s.snapshot(&db.begin_read().unwrap(), &mut snap).unwrap();
    let snap: &[u8] = crate::tables::from_blob(&snap).unwrap();
    let (_d2, db2) = self::db();
    let s3 = ConfigStore::new();
    let tx = db2.begin_write().unwrap();
    s3.restore(&tx, snap).unwrap();
    tx.commit().unwrap();
    s3.load(&db2.begin_read().unwrap()).unwrap();
    assert_eq!(s3.get(&k).unwrap().content, "x");
    let (total, _) = s3.history(&db2.begin_read().unwrap(), &k, 1, 10).unwrap();
    assert_eq!(total, 1);
}

#[test]
fn aborted_changes_stay_invisible() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let k = ConfigKey::new("", "G", "d");
    let tx = db.begin_write().unwrap();
    s.apply(&tx, 1, &publish(&k, "x", None, None)).unwrap();
    drop(tx);
    s.aborted();
    assert!(s.committed().is_empty());
    assert!(s.get(&k).is_none());
}

#[test]
fn purge_deletes_history_older_than_the_cut_off_in_batches() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let (a, b) = (ConfigKey::new("", "G", "a"), ConfigKey::new("", "G", "b"));
    let at = |cmd: ConfigCommand, ms: i64| match cmd {
        ConfigCommand::Publish { key, content, meta, cas_md5, beta_ips, src_user, src_ip, .. } => {
            ConfigCommand::Publish { key, content, meta, cas_md5, beta_ips, src_user, src_ip, at_ms: ms }
        }
        other => other,
    };
    // a: I@1000, U@2000, U@3000; b: I@1500, U@4000 (nids follow the log index).
    apply(&s, &db, 1, at(publish(&a, "1", None, None), 1000));
    apply(&s, &db, 2, at(publish(&b, "1", None, None), 1500));
    apply(&s, &db, 3, at(publish(&a, "2", None, None), 2000));
    apply(&s, &db, 4, at(publish(&a, "3", None, None), 3000));
    apply(&s, &db, 5, at(publish(&b, "2", None, None), 4000));
    let total = |k: &ConfigKey| s.history(&db.begin_read().unwrap(), k, 1, 10).unwrap().0;
    assert_eq!((total(&a), total(&b)), (3, 2));

    // A batch limit of 2 deletes the two oldest (nid 1 and 2), not the third old one.
    let purge = |before_ms, limit| ConfigCommand::PurgeHistory { before_ms, limit };
    assert_eq!(apply(&s, &db, 6, purge(3500, 2)), ConfigOutcome::Purged { count: 2 });
    assert_eq!((total(&a), total(&b)), (2, 1));
    // The next round takes the rest before the cut-off (nid 3 and 4), and stops at nid 5 (4000).
    assert_eq!(apply(&s, &db, 7, purge(3500, 100)), ConfigOutcome::Purged { count: 2 });
    assert_eq!((total(&a), total(&b)), (0, 1));
    assert_eq!(apply(&s, &db, 8, purge(3500, 100)), ConfigOutcome::Purged { count: 0 });
    let rtx = db.begin_read().unwrap();
    let (_, left) = s.history(&rtx, &b, 1, 10).unwrap();
    assert_eq!(left.iter().map(|r| r.modified_ms).collect::<Vec<_>>(), [4000]);
    assert!(s.history_record(&rtx, 1).unwrap().is_none());
    // The configs themselves are untouched.
    assert_eq!(s.get(&a).unwrap().content, "3");
    assert_eq!(s.get(&b).unwrap().content, "2");
}

/// Commands applied in one transaction (one Raft batch) see each other's writes, although the
/// committed view changes only at commit.
#[test]
fn commands_in_one_transaction_see_each_other() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let k = ConfigKey::new("", "G", "d");
    let tx = db.begin_write().unwrap();
    assert_eq!(s.apply(&tx, 1, &publish(&k, "1", None, None)).unwrap(), ConfigOutcome::Done { changed: true });
    assert!(s.get(&k).is_none(), "not visible before commit");
    let cas = md5_hex("1");
    assert_eq!(s.apply(&tx, 2, &publish(&k, "2", Some(&cas), None)).unwrap(), ConfigOutcome::Done { changed: true });
    assert_eq!(s.apply(&tx, 3, &publish(&k, "3", Some(&cas), None)).unwrap(), ConfigOutcome::CasMismatch);
    let rm = ConfigCommand::Remove {
        key: k.clone(),
        beta_only: false,
        src_user: String::new(),
        src_ip: String::new(),
        at_ms: 4,
    };
    assert_eq!(s.apply(&tx, 4, &rm).unwrap(), ConfigOutcome::Done { changed: true });
    assert_eq!(s.apply(&tx, 5, &rm).unwrap(), ConfigOutcome::NotFound);
    assert_eq!(s.apply(&tx, 6, &publish(&k, "6", None, None)).unwrap(), ConfigOutcome::Done { changed: true });
    tx.commit().unwrap();
    assert_eq!(s.committed().len(), 4);
    let item = s.get(&k).unwrap();
    assert_eq!((item.content.as_str(), item.id), ("6", 6), "re-created after the remove: a new row id");

    let rtx = db.begin_read().unwrap();
    let (total, page) = s.history(&rtx, &k, 1, 10).unwrap();
    assert_eq!(total, 4);
    let ops: Vec<_> = page.iter().map(|r| (r.nid, r.op, r.content.as_str(), r.md5 == md5_hex(&r.content))).collect();
    assert_eq!(
        ops,
        [
            (6, OpType::Insert, "6", true),
            (4, OpType::Delete, "2", true),
            (2, OpType::Update, "1", true),
            (1, OpType::Insert, "1", true)
        ]
    );
    assert_eq!(s.history_previous(&rtx, 4).unwrap().unwrap().nid, 2);

    // A store loaded from disk rebuilds the same history index.
    let s2 = ConfigStore::new();
    s2.load(&rtx).unwrap();
    assert_eq!(s2.history(&rtx, &k, 2, 3).unwrap().1.iter().map(|r| r.nid).collect::<Vec<_>>(), [1]);
    assert_eq!(s2.history_previous(&rtx, 6).unwrap().unwrap().nid, 4);
}

/// A database written by a version that kept the history index on disk loses that table at the
/// first applied command; its history stays listed.
#[test]
fn the_old_on_disk_history_index_is_dropped() {
    let (_d, db) = db();
    let s = ConfigStore::new();
    let k = ConfigKey::new("", "G", "d");
    apply(&s, &db, 1, publish(&k, "1", None, None));
    let tx = db.begin_write().unwrap();
    tx.open_table(LEGACY_HISTORY_BY_KEY).unwrap().insert("public\u{1f}G\u{1f}d\u{1f}00000000000000000001", 1).unwrap();
    tx.commit().unwrap();

    let s = ConfigStore::new();
    s.load(&db.begin_read().unwrap()).unwrap();
    apply(&s, &db, 2, publish(&k, "2", None, None));
    let rtx = db.begin_read().unwrap();
    assert!(matches!(rtx.open_table(LEGACY_HISTORY_BY_KEY), Err(redb::TableError::TableDoesNotExist(_))));
    assert_eq!(s.history(&rtx, &k, 1, 10).unwrap().0, 2);
}
