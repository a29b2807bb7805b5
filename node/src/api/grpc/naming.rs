//! Naming requests over gRPC: `InstanceRequest`, `BatchInstanceRequest`,
//! `SubscribeServiceRequest`, `ServiceQueryRequest`, `ServiceListRequest`.

use std::sync::Arc;

use cairn_proto::nacos::Payload;
use serde::{Deserialize, Serialize};

use crate::api::dto::{InstanceIn, NameStyle, ServiceInfoOut, service_key};
use crate::error::{Error, Result};
use crate::naming::Registry;
use crate::naming::model::{ClientId, Selection, ServiceKey, parse_clusters};
use crate::naming::persist::NamingCommand;
use crate::remote::RequestCtx;
use crate::remote::wire::{self, ResponseBase};
use crate::replicate::{self, Replicator};

/// Handles naming requests from gRPC clients.
pub struct NamingGrpc {
    registry: Arc<Registry>,
    replicator: Arc<dyn Replicator>,
}

impl NamingGrpc {
    /// Creates the handler set; persistent instances go through `replicator`.
    pub fn new(registry: Arc<Registry>, replicator: Arc<dyn Replicator>) -> Self {
        NamingGrpc { registry, replicator }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct InstanceRequest {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    instance: Option<InstanceIn>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BatchInstanceRequest {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    instances: Option<Vec<InstanceIn>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SubscribeServiceRequest {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    subscribe: bool,
    clusters: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ServiceQueryRequest {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    cluster: Option<String>,
    healthy_only: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ServiceListRequest {
    namespace: Option<String>,
    group_name: Option<String>,
    page_no: Option<i64>,
    page_size: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypedResponse<'a> {
    #[serde(flatten)]
    base: ResponseBase<'a>,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceInfoResponse<'a> {
    #[serde(flatten)]
    base: ResponseBase<'a>,
    service_info: ServiceInfoOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceListResponse<'a> {
    #[serde(flatten)]
    base: ResponseBase<'a>,
    count: usize,
    service_names: Vec<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Malformed(e.to_string()))
}

fn key_of(ns: &Option<String>, group: &Option<String>, service: &Option<String>) -> Result<ServiceKey> {
    service_key(ns.as_deref().unwrap_or(""), group.as_deref().unwrap_or(""), service.as_deref().unwrap_or(""))
}

/// Request types handled here.
pub const TYPES: [&str; 6] = [
    "InstanceRequest",
    "BatchInstanceRequest",
    "SubscribeServiceRequest",
    "ServiceQueryRequest",
    "ServiceListRequest",
    "PersistentInstanceRequest",
];

impl NamingGrpc {
    fn instance(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: InstanceRequest = parse(body)?;
        let key = key_of(&req.namespace, &req.group_name, &req.service_name)?;
        let client = ClientId::Conn(ctx.conn);
        let kind = req.kind.unwrap_or_default();
        match kind.as_str() {
            "registerInstance" => {
                let inst = req.instance.ok_or_else(|| Error::InvalidParam("instance is required".into()))?;
                let inst = inst.into_domain(&key)?;
                if !inst.ephemeral {
                    return Err(Error::InvalidParam(
                        "InstanceRequest registers ephemeral instances only; persistent instances go through HTTP v1"
                            .into(),
                    ));
                }
                self.registry.publish(&client, &key, vec![inst]);
            }
            // As in Nacos, a connection holds one publication per service; deregister drops it.
            "deregisterInstance" => self.registry.publish(&client, &key, Vec::new()),
            other => {
                return Err(Error::InvalidParam(format!("Unsupported request type {other:?}")));
            }
        }
        Ok(wire::json_payload("InstanceResponse", &TypedResponse { base: ResponseBase::ok(rid), kind: &kind }))
    }

    fn batch(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: BatchInstanceRequest = parse(body)?;
        let key = key_of(&req.namespace, &req.group_name, &req.service_name)?;
        let kind = req.kind.unwrap_or_default();
        if kind != "batchRegisterInstance" && kind != "batchDeregisterInstance" {
            return Err(Error::InvalidParam(format!("Unsupported request type {kind:?}")));
        }
        let mut instances = Vec::new();
        for i in req.instances.unwrap_or_default() {
            let i = i.into_domain(&key)?;
            if !i.ephemeral {
                return Err(Error::InvalidParam("batch registration takes ephemeral instances only".into()));
            }
            instances.push(i);
        }
        if kind == "batchDeregisterInstance" {
            instances.clear();
        }
        self.registry.publish(&ClientId::Conn(ctx.conn), &key, instances);
        Ok(wire::json_payload("BatchInstanceResponse", &TypedResponse { base: ResponseBase::ok(rid), kind: &kind }))
    }

    fn subscribe(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: SubscribeServiceRequest = parse(body)?;
        let key = key_of(&req.namespace, &req.group_name, &req.service_name)?;
        let clusters = req.clusters.unwrap_or_default();
        if req.subscribe {
            self.registry.subscribe(ctx.conn, &key, &clusters);
        } else {
            self.registry.unsubscribe(ctx.conn, &key);
        }
        let sel = self.registry.query(&key, &parse_clusters(&clusters), false).unwrap_or_default();
        let base = ResponseBase { message: Some("success"), ..ResponseBase::ok(rid) };
        let info = ServiceInfoOut::new(&key, NameStyle::Bare, &clusters, &sel, self.registry.ref_time());
        Ok(wire::json_payload("SubscribeServiceResponse", &ServiceInfoResponse { base, service_info: info }))
    }

    fn query(&self, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: ServiceQueryRequest = parse(body)?;
        let key = key_of(&req.namespace, &req.group_name, &req.service_name)?;
        let clusters = req.cluster.unwrap_or_default();
        let sel: Selection =
            self.registry.query(&key, &parse_clusters(&clusters), req.healthy_only).unwrap_or_default();
        let info = ServiceInfoOut::new(&key, NameStyle::Bare, &clusters, &sel, self.registry.ref_time());
        Ok(wire::json_payload(
            "QueryServiceResponse",
            &ServiceInfoResponse { base: ResponseBase::ok(rid), service_info: info },
        ))
    }

    fn list(&self, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: ServiceListRequest = parse(body)?;
        let ns = req.namespace.unwrap_or_default();
        let group = req.group_name.unwrap_or_default();
        let scope = service_key(&ns, &group, "x")?;
        let page_no = req.page_no.unwrap_or(1).max(1) as usize;
        let page_size = req.page_size.unwrap_or(10).clamp(1, 10_000) as usize;
        let (count, names) = self.registry.list_services(&scope, page_no, page_size);
        // Nacos pages grouped names and strips the group (`ServiceUtil.pageServiceName`).
        Ok(wire::json_payload(
            "ServiceListResponse",
            &ServiceListResponse { base: ResponseBase::ok(rid), count, service_names: names },
        ))
    }
}

impl NamingGrpc {
    async fn persistent(&self, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: InstanceRequest = parse(body)?;
        let key = key_of(&req.namespace, &req.group_name, &req.service_name)?;
        let kind = req.kind.unwrap_or_default();
        let mut inst =
            req.instance.ok_or_else(|| Error::InvalidParam("instance is required".into()))?.into_domain(&key)?;
        inst.ephemeral = false;
        let cmd = match kind.as_str() {
            "registerInstance" => NamingCommand::Register { key, instance: inst },
            "deregisterInstance" => {
                NamingCommand::Deregister { key, ip: inst.ip, port: inst.port, cluster: inst.cluster.to_string() }
            }
            other => return Err(Error::InvalidParam(format!("Unsupported request type {other:?}"))),
        };
        replicate::naming(&*self.replicator, cmd).await?;
        Ok(wire::json_payload("InstanceResponse", &TypedResponse { base: ResponseBase::ok(rid), kind: &kind }))
    }

    /// Handles one naming request; `None` when `ty` is not a naming request.
    pub async fn handle(&self, ctx: &RequestCtx, ty: &str, body: &[u8], rid: Option<&str>) -> Option<Result<Payload>> {
        Some(match ty {
            "InstanceRequest" => self.instance(ctx, body, rid),
            "BatchInstanceRequest" => self.batch(ctx, body, rid),
            "SubscribeServiceRequest" => self.subscribe(ctx, body, rid),
            "ServiceQueryRequest" => self.query(body, rid),
            "ServiceListRequest" => self.list(body, rid),
            "PersistentInstanceRequest" => self.persistent(body, rid).await,
            _ => return None,
        })
    }
}
