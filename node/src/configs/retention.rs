//! Config history retention, as Nacos's `nacos.config.retention.days`: every
//! `--config-history-purge-interval-ms` the Raft leader replicates purge commands that delete
//! history recorded more than `--config-history-retention-days` ago, a bounded batch per command
//! (so no Raft entry or transaction grows with the backlog). The cut-off travels in the command,
//! so every member deletes the same records whatever its own clock says.

use std::sync::Arc;
use std::time::Duration;

use cairn_raft::RaftNode;
use tokio_util::sync::CancellationToken;

use crate::configs::service::{ConfigService, now_ms};

/// Most records one purge command deletes.
pub const BATCH: u32 = 2_000;

/// Purges expired history on the leader until `cancel` fires; a zero `retention` keeps everything.
pub async fn run(
    raft: Arc<RaftNode>,
    service: Arc<ConfigService>,
    retention: Duration,
    every: Duration,
    cancel: CancellationToken,
) {
    if retention.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        if !raft.is_leader() {
            continue;
        }
        let before_ms = now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let mut total = 0u64;
        while !cancel.is_cancelled() {
            match service.purge_history(before_ms, BATCH).await {
                Ok(n) => {
                    total += u64::from(n);
                    if n < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "config history purge failed; retrying next round");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(records = total, before_ms, "purged config history past its retention");
        }
    }
}
