//! Benchmark of the config-publish hot path inside the state machine, without the network or
//! Raft: encode the replicated command as the leader does, then apply it the way
//! `cairn-raft`'s state machine does (batches in one non-durable redb write transaction, then
//! `after_commit`). Run with `cargo bench -p cairn-node --bench config_apply [-- N BATCH KEYS]`.
//!
//! Prints microseconds per publish for encoding and for applying, and the apply rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_node::Metrics;
use cairn_node::configs::command::ConfigCommand;
use cairn_node::configs::model::{ConfigKey, ConfigMeta};
use cairn_node::configs::store::ConfigStore;
use cairn_node::naming::DirtySet;
use cairn_node::naming::persist::NamingPersist;
use cairn_node::naming::registry::{Registry, Settings};
use cairn_node::replicate::Command;
use cairn_node::state::NodeState;
use cairn_raft::Application;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let total = args.first().copied().unwrap_or(200_000);
    let batch = args.get(1).copied().unwrap_or(64).max(1);
    let keys = args.get(2).copied().unwrap_or(1_000).max(1);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = redb::Database::builder()
        .set_cache_size(8 << 20)
        .create(dir.path().join("state.redb"))
        .expect("create database");
    let settings = Settings {
        beat_timeout: Duration::from_secs(15),
        delete_timeout: Duration::from_secs(30),
        empty_service_clean: Duration::from_secs(60),
    };
    let metrics = Metrics::new(prometheus::Registry::new()).expect("metrics");
    let registry = Arc::new(Registry::new(settings, metrics, Arc::new(DirtySet::default())));
    let app = NodeState::new(Arc::new(ConfigStore::new()), NamingPersist::new(registry));

    let content_base = "x".repeat(90);
    let mut encode = Duration::ZERO;
    let mut apply = Duration::ZERO;
    let mut index = 0u64;
    while (index as usize) < total {
        let n = batch.min(total - index as usize);
        let started = Instant::now();
        let commands: Vec<Vec<u8>> = (0..n as u64)
            .map(|i| {
                let seq = index + i;
                let key = ConfigKey::new("", "DEFAULT_GROUP", &format!("bench-{}", seq % keys as u64));
                let cmd = Command::Config(ConfigCommand::Publish {
                    key,
                    content: format!("{content_base}{seq:010}"),
                    meta: ConfigMeta::default(),
                    cas_md5: None,
                    beta_ips: None,
                    src_user: String::new(),
                    src_ip: "127.0.0.1".into(),
                    at_ms: 1_700_000_000_000 + seq as i64,
                });
                serde_json::to_vec(&cmd).expect("encode")
            })
            .collect();
        encode += started.elapsed();
        let started = Instant::now();
        let mut tx = db.begin_write().expect("begin");
        tx.set_durability(redb::Durability::None).expect("durability");
        for cmd in &commands {
            index += 1;
            app.apply(&tx, index, cmd).expect("apply");
        }
        tx.commit().expect("commit");
        app.after_commit(&[]);
        apply += started.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / total as f64;
    println!("config_apply: {total} publishes, batch {batch}, {keys} keys");
    println!("  encode command   {:>8.2} us/publish", per(encode));
    println!(
        "  apply + commit   {:>8.2} us/publish  ({:.0} publishes/s)",
        per(apply),
        total as f64 / apply.as_secs_f64()
    );
}
