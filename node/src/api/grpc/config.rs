//! Config requests over gRPC: `ConfigQueryRequest`, `ConfigPublishRequest`,
//! `ConfigRemoveRequest`, `ConfigBatchListenRequest`; pushes `ConfigChangeNotifyRequest`.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_proto::nacos::Payload;
use serde::{Deserialize, Serialize};

use crate::configs::listeners::Spelled;
use crate::configs::service::{ConfigService, PublishInput};
use crate::error::{Error, Result};
use crate::remote::RequestCtx;
use crate::remote::wire::{self, ResponseBase};

/// Request types handled here.
pub const TYPES: [&str; 4] =
    ["ConfigQueryRequest", "ConfigPublishRequest", "ConfigRemoveRequest", "ConfigBatchListenRequest"];

/// Config handlers.
pub struct ConfigGrpc {
    service: Arc<ConfigService>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct KeyFields {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PublishReq {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    content: Option<String>,
    cas_md5: Option<String>,
    addition_map: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListenContext {
    group: Option<String>,
    md5: Option<String>,
    data_id: Option<String>,
    tenant: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BatchListenReq {
    listen: bool,
    config_listen_contexts: Option<Vec<ListenContext>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryResp<'a> {
    #[serde(flatten)]
    base: ResponseBase<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_data_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<&'a str>,
    last_modified: i64,
    beta: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangedConfig<'a> {
    group: &'a str,
    data_id: &'a str,
    tenant: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchListenResp<'a> {
    #[serde(flatten)]
    base: ResponseBase<'a>,
    changed_configs: Vec<ChangedConfig<'a>>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Malformed(e.to_string()))
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

impl ConfigGrpc {
    /// Creates the handlers.
    pub fn new(service: Arc<ConfigService>) -> Self {
        ConfigGrpc { service }
    }

    /// Handles one config request; `None` when `ty` is not a config request.
    pub async fn handle(&self, ctx: &RequestCtx, ty: &str, body: &[u8], rid: Option<&str>) -> Option<Result<Payload>> {
        Some(match ty {
            "ConfigQueryRequest" => self.query(ctx, body, rid),
            "ConfigPublishRequest" => self.publish(ctx, body, rid).await,
            "ConfigRemoveRequest" => self.remove(ctx, body, rid).await,
            "ConfigBatchListenRequest" => self.listen(ctx, body, rid),
            _ => return None,
        })
    }

    fn query(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: KeyFields = parse(body)?;
        let key = ConfigService::key(s(&req.tenant), s(&req.group), s(&req.data_id))?;
        let Some(item) = self.service.get(&key) else {
            let base = ResponseBase {
                result_code: 500,
                error_code: 300,
                message: Some("config data not exist"),
                request_id: rid,
                success: false,
            };
            let resp = QueryResp {
                base,
                content: None,
                encrypted_data_key: None,
                content_type: None,
                md5: None,
                last_modified: 0,
                beta: false,
            };
            return Ok(wire::json_payload("ConfigQueryResponse", &resp));
        };
        let (content, md5, beta) = item.view_for(&ctx.remote.ip().to_string());
        let resp = QueryResp {
            base: ResponseBase::ok(rid),
            content: Some(content),
            encrypted_data_key: Some(&item.meta.encrypted_data_key),
            content_type: Some(&item.meta.kind),
            md5: Some(md5),
            last_modified: item.modified_ms,
            beta,
        };
        Ok(wire::json_payload("ConfigQueryResponse", &resp))
    }

    async fn publish(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: PublishReq = parse(body)?;
        let add = req.addition_map.unwrap_or_default();
        let get = |k: &str| add.get(k).cloned().unwrap_or_default();
        let input = PublishInput {
            namespace: s(&req.tenant).to_owned(),
            group: s(&req.group).to_owned(),
            data_id: s(&req.data_id).to_owned(),
            content: req.content.unwrap_or_default(),
            kind: get("type"),
            app_name: get("appName"),
            desc: get("desc"),
            tags: get("config_tags"),
            usage: get("use"),
            effect: get("effect"),
            schema: get("schema"),
            encrypted_data_key: get("encryptedDataKey"),
            cas_md5: req.cas_md5.unwrap_or_default(),
            beta_ips: get("betaIps"),
            src_user: get("src_user"),
            src_ip: ctx.remote.ip().to_string(),
        };
        match self.service.publish(input).await {
            Ok(()) => Ok(wire::empty_ok("ConfigPublishResponse", rid)),
            // Nacos answers a failed publish (e.g. CAS mismatch) as a failed ConfigPublishResponse.
            Err(e @ (Error::CasMismatch(_) | Error::Storage { .. } | Error::Unavailable(_))) => {
                let msg = e.to_string();
                let base = ResponseBase {
                    result_code: 500,
                    error_code: 500,
                    message: Some(&msg),
                    request_id: rid,
                    success: false,
                };
                Ok(wire::json_payload("ConfigPublishResponse", &base))
            }
            Err(e) => Err(e),
        }
    }

    async fn remove(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: KeyFields = parse(body)?;
        let key = ConfigService::key(s(&req.tenant), s(&req.group), s(&req.data_id))?;
        self.service.remove(key, false, String::new(), ctx.remote.ip().to_string()).await?;
        Ok(wire::empty_ok("ConfigRemoveResponse", rid))
    }

    fn listen(&self, ctx: &RequestCtx, body: &[u8], rid: Option<&str>) -> Result<Payload> {
        let req: BatchListenReq = parse(body)?;
        let mut keys = Vec::new();
        for c in req.config_listen_contexts.unwrap_or_default() {
            let key = ConfigService::key(s(&c.tenant), s(&c.group), s(&c.data_id))?;
            let spelled = Spelled {
                data_id: s(&c.data_id).to_owned(),
                group: s(&c.group).to_owned(),
                tenant: s(&c.tenant).to_owned(),
            };
            keys.push((key, spelled, c.md5.unwrap_or_default()));
        }
        let changed = if req.listen {
            self.service.listen(ctx.conn, &ctx.remote.ip().to_string(), keys)
        } else {
            let ks: Vec<_> = keys.into_iter().map(|(k, _, _)| k).collect();
            self.service.listeners().unlisten(ctx.conn, &ks);
            Vec::new()
        };
        let changed_configs =
            changed.iter().map(|c| ChangedConfig { group: &c.group, data_id: &c.data_id, tenant: &c.tenant }).collect();
        Ok(wire::json_payload(
            "ConfigChangeBatchListenResponse",
            &BatchListenResp { base: ResponseBase::ok(rid), changed_configs },
        ))
    }
}
