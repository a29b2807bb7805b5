//! Persistent naming data in Raft: persistent instances (`ephemeral=false`), their health as
//! found by active checks, and explicit service settings (protect threshold, metadata, selector).
//! Applied inside the state machine's redb transaction; after commit the in-memory
//! [`Registry`] is updated, so queries and pushes see persistent and ephemeral data alike.
//!
//! Tables: `naming_instances` (ns␟group␟service␟ip␟port␟cluster → instance JSON),
//! `naming_services` (ns␟group␟service → settings JSON).

use std::sync::Arc;

use parking_lot::Mutex;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::naming::model::{ClientId, Instance, ServiceKey, ServiceMeta};
use crate::naming::registry::Registry;
use crate::tables::{TableRows, append_blob, from_blob, from_json, get_json, open_for_snapshot, storage, to_json};

const INSTANCES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("naming_instances");
const SERVICES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("naming_services");
const SEP: char = '\u{1f}';

/// A replicated naming write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NamingCommand {
    /// Add or replace a persistent instance.
    Register {
        /// Service.
        key: ServiceKey,
        /// The instance (`ephemeral == false`).
        instance: Instance,
    },
    /// Remove a persistent instance.
    Deregister {
        /// Service.
        key: ServiceKey,
        /// IP.
        ip: String,
        /// Port.
        port: u16,
        /// Cluster.
        cluster: String,
    },
    /// Record an active health-check verdict.
    SetHealth {
        /// Service.
        key: ServiceKey,
        /// IP.
        ip: String,
        /// Port.
        port: u16,
        /// Cluster.
        cluster: String,
        /// Verdict.
        healthy: bool,
    },
    /// Create explicit service settings; fails when they exist.
    CreateService {
        /// Service.
        key: ServiceKey,
        /// Settings.
        meta: ServiceMeta,
    },
    /// Set explicit service settings.
    UpdateService {
        /// Service.
        key: ServiceKey,
        /// Settings.
        meta: ServiceMeta,
    },
    /// Remove explicit service settings; fails while persistent instances remain.
    DeleteService {
        /// Service.
        key: ServiceKey,
    },
}

/// What applying a [`NamingCommand`] answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamingOutcome {
    /// Applied.
    Done,
    /// The instance or service does not exist.
    NotFound,
    /// Refused, with the reason.
    Rejected(String),
}

#[derive(Clone, Debug)]
enum Change {
    Instance { key: ServiceKey, ip: String, port: u16, cluster: String, instance: Option<Instance> },
    Service { key: ServiceKey, meta: Option<ServiceMeta> },
}

/// Both tables as a Raft snapshot carries them (rows borrowed from the snapshot).
#[derive(Deserialize, Default)]
struct Dump<'a> {
    #[serde(borrow)]
    instances: Vec<(&'a str, &'a [u8])>,
    #[serde(borrow)]
    services: Vec<(&'a str, &'a [u8])>,
}

/// Both tables, encoded as [`Dump`] straight from a read transaction.
#[derive(Serialize)]
struct DumpOut<'a> {
    instances: TableRows<'a, &'static str>,
    services: TableRows<'a, &'static str>,
}

fn service_str(k: &ServiceKey) -> String {
    format!("{}{SEP}{}{SEP}{}", k.namespace, k.group, k.name)
}

fn instance_str(k: &ServiceKey, ip: &str, port: u16, cluster: &str) -> String {
    format!("{}{SEP}{ip}{SEP}{port}{SEP}{cluster}", service_str(k))
}

fn parse_service(s: &str) -> Option<ServiceKey> {
    let mut it = s.split(SEP);
    Some(ServiceKey::new(it.next()?, it.next()?, it.next()?))
}

/// Client id of persistent instances at `ip:port` (Nacos: `ip:port#false`).
pub fn persistent_client(ip: &str, port: u16) -> ClientId {
    ClientId::Persistent(format!("{ip}:{port}").into())
}

/// The persistent-naming state machine.
pub struct NamingPersist {
    registry: Arc<Registry>,
    pending: Mutex<Vec<Change>>,
}

impl NamingPersist {
    /// Creates it over the registry that serves reads.
    pub fn new(registry: Arc<Registry>) -> Self {
        NamingPersist { registry, pending: Mutex::default() }
    }

    /// Loads every persistent instance and service setting into the registry.
    pub fn load(&self, tx: &ReadTransaction) -> Result<()> {
        self.registry.clear_persistent();
        if let Ok(t) = tx.open_table(SERVICES) {
            for row in t.iter().map_err(|e| storage("loading services")(e.into()))? {
                let (k, v) = row.map_err(|e| storage("loading services")(e.into()))?;
                if let Some(key) = parse_service(k.value()) {
                    self.registry.set_service_meta(&key, Some(from_json(v.value(), "decoding naming data")?));
                }
            }
        }
        if let Ok(t) = tx.open_table(INSTANCES) {
            for row in t.iter().map_err(|e| storage("loading instances")(e.into()))? {
                let (k, v) = row.map_err(|e| storage("loading instances")(e.into()))?;
                if let Some(key) = parse_service(k.value()) {
                    let inst: Instance = from_json(v.value(), "decoding naming data")?;
                    self.registry.upsert(&persistent_client(&inst.ip, inst.port), &key, inst);
                }
            }
        }
        Ok(())
    }

    /// Applies one command inside `tx`; the registry changes in [`Self::committed`].
    pub fn apply(&self, tx: &WriteTransaction, cmd: &NamingCommand) -> Result<NamingOutcome> {
        let mut instances = tx.open_table(INSTANCES).map_err(|e| storage("opening naming instances")(e.into()))?;
        let mut services = tx.open_table(SERVICES).map_err(|e| storage("opening naming services")(e.into()))?;
        let change = match cmd {
            NamingCommand::Register { key, instance } => {
                let k = instance_str(key, &instance.ip, instance.port, &instance.cluster);
                instances
                    .insert(k.as_str(), to_json(instance).as_slice())
                    .map_err(|e| storage("writing an instance")(e.into()))?;
                Change::Instance {
                    key: key.clone(),
                    ip: instance.ip.clone(),
                    port: instance.port,
                    cluster: instance.cluster.to_string(),
                    instance: Some(instance.clone()),
                }
            }
            NamingCommand::Deregister { key, ip, port, cluster } => {
                let k = instance_str(key, ip, *port, cluster);
                if instances.remove(k.as_str()).map_err(|e| storage("removing an instance")(e.into()))?.is_none() {
                    return Ok(NamingOutcome::NotFound);
                }
                Change::Instance {
                    key: key.clone(),
                    ip: ip.clone(),
                    port: *port,
                    cluster: cluster.clone(),
                    instance: None,
                }
            }
            NamingCommand::SetHealth { key, ip, port, cluster, healthy } => {
                let k = instance_str(key, ip, *port, cluster);
                let current: Option<Instance> = get_json(&instances, k.as_str(), "reading an instance")?;
                let Some(mut inst) = current else { return Ok(NamingOutcome::NotFound) };
                inst.healthy = *healthy;
                instances
                    .insert(k.as_str(), to_json(&inst).as_slice())
                    .map_err(|e| storage("writing an instance")(e.into()))?;
                Change::Instance {
                    key: key.clone(),
                    ip: ip.clone(),
                    port: *port,
                    cluster: cluster.clone(),
                    instance: Some(inst),
                }
            }
            NamingCommand::CreateService { key, meta } => {
                let k = service_str(key);
                if services.get(k.as_str()).map_err(|e| storage("reading a service")(e.into()))?.is_some() {
                    return Ok(NamingOutcome::Rejected(format!(
                        "specified service {} already exists",
                        key.grouped_name()
                    )));
                }
                services
                    .insert(k.as_str(), to_json(meta).as_slice())
                    .map_err(|e| storage("writing a service")(e.into()))?;
                Change::Service { key: key.clone(), meta: Some(meta.clone()) }
            }
            NamingCommand::UpdateService { key, meta } => {
                let k = service_str(key);
                services
                    .insert(k.as_str(), to_json(meta).as_slice())
                    .map_err(|e| storage("writing a service")(e.into()))?;
                Change::Service { key: key.clone(), meta: Some(meta.clone()) }
            }
            NamingCommand::DeleteService { key } => {
                let prefix = format!("{}{SEP}", service_str(key));
                let has_instances = instances
                    .range(prefix.as_str()..)
                    .map_err(|e| storage("reading instances")(e.into()))?
                    .next()
                    .transpose()
                    .map_err(|e| storage("reading instances")(e.into()))?
                    .is_some_and(|(k, _)| k.value().starts_with(&prefix));
                if has_instances {
                    return Ok(NamingOutcome::Rejected(format!(
                        "Service {} is not empty, can't be delete. Please unregister instance first",
                        key.grouped_name()
                    )));
                }
                if services
                    .remove(service_str(key).as_str())
                    .map_err(|e| storage("removing a service")(e.into()))?
                    .is_none()
                {
                    return Ok(NamingOutcome::NotFound);
                }
                Change::Service { key: key.clone(), meta: None }
            }
        };
        self.pending.lock().push(change);
        Ok(NamingOutcome::Done)
    }

    /// Makes committed changes visible in the registry (which pushes them).
    pub fn committed(&self) {
        let changes = std::mem::take(&mut *self.pending.lock());
        for c in changes {
            match c {
                Change::Instance { key, instance: Some(inst), .. } => {
                    self.registry.upsert(&persistent_client(&inst.ip, inst.port), &key, inst);
                }
                Change::Instance { key, ip, port, cluster, instance: None } => {
                    self.registry.remove_endpoint(&persistent_client(&ip, port), &key, &ip, port, &cluster);
                }
                Change::Service { key, meta } => self.registry.set_service_meta(&key, meta),
            }
        }
    }

    /// Appends both tables to `out` as a byte string (Raft snapshot); rows are read while encoding.
    pub fn snapshot(&self, tx: &ReadTransaction, out: &mut Vec<u8>) -> Result<()> {
        let instances = open_for_snapshot(tx, INSTANCES)?;
        let services = open_for_snapshot(tx, SERVICES)?;
        append_blob(&DumpOut { instances: TableRows(instances.as_ref()), services: TableRows(services.as_ref()) }, out)
    }

    /// Replaces both tables from a snapshot; the registry is reloaded by the caller's `open`.
    pub fn restore(&self, tx: &WriteTransaction, data: &[u8]) -> Result<()> {
        let dump: Dump<'_> = if data.is_empty() { Dump::default() } else { from_blob(data)? };
        tx.delete_table(INSTANCES).map_err(|e| storage("restoring snapshot")(e.into()))?;
        tx.delete_table(SERVICES).map_err(|e| storage("restoring snapshot")(e.into()))?;
        let mut t = tx.open_table(INSTANCES).map_err(|e| storage("restoring snapshot")(e.into()))?;
        for (k, v) in &dump.instances {
            t.insert(*k, *v).map_err(|e| storage("restoring snapshot")(e.into()))?;
        }
        let mut t = tx.open_table(SERVICES).map_err(|e| storage("restoring snapshot")(e.into()))?;
        for (k, v) in &dump.services {
            t.insert(*k, *v).map_err(|e| storage("restoring snapshot")(e.into()))?;
        }
        self.pending.lock().clear();
        Ok(())
    }
}
