//! openraft's storage conformance suite (`openraft::testing::log::Suite::test_all`) against
//! the real redb log store and state machine.

use std::sync::Arc;

use cairn_raft::store::LogStore;
use cairn_raft::store::StateMachineStore;
use cairn_raft::types::TypeConfig;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::StorageError;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use tempfile::TempDir;

use crate::kv::KvApp;

struct RedbStoreBuilder;

fn storage_error(e: cairn_raft::Error) -> StorageError<TypeConfig> {
    StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, std::io::Error::other(e.to_string()))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir =
            tempfile::tempdir().map_err(|e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let log = LogStore::open(&dir.path().join("log.redb")).map_err(storage_error)?;
        let sm = StateMachineStore::open(dir.path(), Arc::new(KvApp::default())).map_err(storage_error)?;
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_conformance_suite() {
    crate::harness::init_logging();
    Suite::test_all(RedbStoreBuilder).await.expect("storage suite");
}
