//! The one write path for persistent data: every change to config, namespaces, persistent
//! instances and service settings is a [`Command`] that a [`Replicator`] (Raft) commits and
//! applies on every node, standalone included.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::configs::command::{ConfigCommand, ConfigOutcome};
use crate::error::{Error, Result};
use crate::naming::persist::{NamingCommand, NamingOutcome};

/// Everything replicated through Raft.
#[allow(clippy::large_enum_variant)] // short-lived values, moved once into the Raft log
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// A config-center write.
    Config(ConfigCommand),
    /// A persistent naming write.
    Naming(NamingCommand),
}

/// What applying a [`Command`] answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Config-center outcome.
    Config(ConfigOutcome),
    /// Naming outcome.
    Naming(NamingOutcome),
}

/// Commits commands.
pub trait Replicator: Send + Sync + 'static {
    /// Replicates and applies `cmd`; resolves once it is committed and applied locally.
    fn replicate(&self, cmd: Command) -> BoxFuture<'_, Result<Response>>;
}

/// Read access to the committed tables of the replicated state.
pub trait StateRead: Send + Sync + 'static {
    /// Runs `f` on a read transaction of the state-machine database.
    fn read(&self, f: &mut dyn FnMut(&redb::ReadTransaction)) -> Result<()>;
}

/// Runs `f` on a read transaction and returns its result.
pub fn read_with<T>(r: &dyn StateRead, f: impl FnOnce(&redb::ReadTransaction) -> Result<T>) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    r.read(&mut |tx| {
        if let Some(f) = f.take() {
            out = Some(f(tx));
        }
    })?;
    out.unwrap_or_else(|| Err(Error::Storage { action: "reading state", message: "the read did not run".into() }))
}

/// Replicates a config command and unwraps its outcome.
pub async fn config(r: &dyn Replicator, cmd: ConfigCommand) -> Result<ConfigOutcome> {
    match r.replicate(Command::Config(cmd)).await? {
        Response::Config(o) => Ok(o),
        other => Err(Error::Storage {
            action: "replicating a config command",
            message: format!("unexpected response {other:?}"),
        }),
    }
}

/// Replicates a naming command and unwraps its outcome.
pub async fn naming(r: &dyn Replicator, cmd: NamingCommand) -> Result<NamingOutcome> {
    match r.replicate(Command::Naming(cmd)).await? {
        Response::Naming(o) => Ok(o),
        other => Err(Error::Storage {
            action: "replicating a naming command",
            message: format!("unexpected response {other:?}"),
        }),
    }
}
