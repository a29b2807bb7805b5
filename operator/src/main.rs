//! `cairn-operator`: reconciles `RegistryCluster` resources. Flags: `cairn-operator --help`; every
//! flag also via env `CAIRN_OPERATOR_<FLAG>`. Exits 64 on invalid configuration.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use cairn_operator::OperatorConfig;

fn main() -> std::process::ExitCode {
    let config = OperatorConfig::parse();
    if let Err(e) = config.validate() {
        eprintln!("cairn-operator: {e}");
        return std::process::ExitCode::from(64);
    }
    let filter = match EnvFilter::try_new(&config.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cairn-operator: invalid --log filter {:?}: {e}", config.log);
            return std::process::ExitCode::from(64);
        }
    };
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cairn-operator: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: OperatorConfig) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    let watch_signals = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = signals.cancelled() => {}
        }
        signals.cancel();
        anyhow::Ok(())
    };
    let operator = async {
        let r = cairn_operator::run(config, client, shutdown.clone()).await;
        shutdown.cancel();
        r
    };
    let (signals, result) = tokio::join!(watch_signals, operator);
    signals?;
    Ok(result?)
}
