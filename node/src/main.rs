//! `cairn-node`: run a Cairn registry node. With no flags it serves standalone on
//! 0.0.0.0:8848 (HTTP) and 9848 (client gRPC), data in `./data`.

use std::process::ExitCode;

use cairn_node::{Config, Metrics, Node};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = config.validate() {
        eprintln!("cairn-node: {e}");
        return ExitCode::from(64);
    }
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cairn-node stopped");
            eprintln!("cairn-node: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let metrics = Metrics::new(prometheus::Registry::new())?;
    let mut node = Node::start(config, metrics).await?;
    let failure = tokio::select! {
        _ = shutdown_signal() => None,
        r = node.wait_failure() => Some(r),
    };
    node.shutdown().await?;
    if let Some(Err(e)) = failure {
        return Err(e.into());
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
