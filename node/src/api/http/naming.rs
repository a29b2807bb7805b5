//! Naming over HTTP v1: `/nacos/v1/ns/{instance,instance/list,instance/beat,service,service/list,operator/metrics}`.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::dto::{InstanceIn, NameStyle, ServiceInfoOut, service_key};
use crate::api::http::forward::{forward, owner_elsewhere};
use crate::api::http::{ApiError, ApiResult, HttpState, Params};
use crate::error::Error;
use crate::naming::model::{ClientId, DEFAULT_CLUSTER, Instance, ServiceKey, ServiceMeta, parse_clusters};
use crate::naming::persist::{NamingCommand, NamingOutcome};
use crate::naming::validate;
use crate::replicate;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/nacos/v1/ns/instance",
            get(get_instance).post(register).put(update_instance).patch(update_instance).delete(deregister),
        )
        .route("/nacos/v1/ns/instance/list", get(list_instances))
        .route("/nacos/v1/ns/instance/beat", put(beat))
        .route("/nacos/v1/ns/service", get(get_service).post(create_service).put(update_service).delete(delete_service))
        .route("/nacos/v1/ns/service/list", get(list_services))
        .route("/nacos/v1/ns/operator/metrics", get(operator_metrics))
}

fn key(p: &Params) -> ApiResult<ServiceKey> {
    let service = p.required("serviceName")?;
    Ok(service_key(p.str("namespaceId"), p.str("groupName"), service)?)
}

fn cluster_param(p: &Params) -> String {
    p.opt("clusterName").or_else(|| p.opt("cluster")).unwrap_or(DEFAULT_CLUSTER).to_owned()
}

fn endpoint(p: &Params) -> ApiResult<(String, u16, String)> {
    let ip = p.required("ip")?.to_owned();
    validate::ip(&ip)?;
    let port = validate::port(p.num::<i64>("port", -1).and_then(|v| {
        if p.opt("port").is_none() {
            Err(ApiError::bad_request("Required parameter 'port' is not present"))
        } else {
            Ok(v)
        }
    })?)?;
    let cluster = cluster_param(p);
    validate::cluster(&cluster)?;
    Ok((ip, port, cluster))
}

fn beat_client(ip: &str, port: u16) -> ClientId {
    ClientId::Beat(format!("{ip}:{port}").into())
}

fn instance_from_params(p: &Params, key: &ServiceKey) -> ApiResult<Instance> {
    let (ip, port, cluster) = endpoint(p)?;
    let enabled = match p.opt("enabled") {
        Some(_) => p.bool("enabled", true)?,
        None => p.bool("enable", true)?,
    };
    let dto = InstanceIn {
        instance_id: None,
        ip: Some(ip),
        port: Some(port.into()),
        weight: Some(p.num("weight", 1.0f64)?),
        healthy: Some(p.bool("healthy", true)?),
        enabled: Some(enabled),
        ephemeral: Some(p.bool("ephemeral", true)?),
        cluster_name: Some(cluster),
        service_name: None,
        metadata: p.string_map("metadata")?,
    };
    Ok(dto.into_domain(key)?)
}

async fn naming_write(st: &HttpState, cmd: NamingCommand) -> ApiResult<NamingOutcome> {
    Ok(replicate::naming(&*st.replicator, cmd).await?)
}

const INSTANCE_PATH: &str = "/nacos/v1/ns/instance";

async fn register(State(st): State<HttpState>, headers: HeaderMap, p: Params) -> ApiResult<Response> {
    let key = key(&p)?;
    let inst = instance_from_params(&p, &key)?;
    if inst.ephemeral {
        if let Some(owner) = owner_elsewhere(&st, &headers, &key) {
            return forward(&st, &owner, Method::POST, INSTANCE_PATH, &p).await;
        }
        st.registry.upsert(&beat_client(&inst.ip, inst.port), &key, inst);
    } else {
        naming_write(&st, NamingCommand::Register { key, instance: inst }).await?;
    }
    Ok("ok".into_response())
}

async fn deregister(State(st): State<HttpState>, headers: HeaderMap, p: Params) -> ApiResult<Response> {
    let key = key(&p)?;
    let (ip, port, cluster) = endpoint(&p)?;
    if p.bool("ephemeral", true)? {
        if let Some(owner) = owner_elsewhere(&st, &headers, &key) {
            return forward(&st, &owner, Method::DELETE, INSTANCE_PATH, &p).await;
        }
        st.registry.remove_endpoint(&beat_client(&ip, port), &key, &ip, port, &cluster);
    } else {
        // Removing what is not there succeeds, as in Nacos.
        naming_write(&st, NamingCommand::Deregister { key, ip, port, cluster }).await?;
    }
    Ok("ok".into_response())
}

async fn update_instance(State(st): State<HttpState>, headers: HeaderMap, p: Params) -> ApiResult<Response> {
    let key = key(&p)?;
    let (ip, port, cluster) = endpoint(&p)?;
    let weight = p.opt("weight").map(|_| p.num("weight", 1.0f64)).transpose()?;
    if let Some(w) = weight {
        validate::weight(w)?;
    }
    let enabled = match (p.opt("enabled"), p.opt("enable")) {
        (Some(_), _) => Some(p.bool("enabled", true)?),
        (None, Some(_)) => Some(p.bool("enable", true)?),
        _ => None,
    };
    let metadata = p.string_map("metadata")?;
    if let Some(m) = &metadata {
        validate::metadata(m)?;
    }
    if let Some(mut inst) = st.registry.find_instance(&key, &ip, port, &cluster).filter(|i| !i.ephemeral) {
        // Persistent instances change through Raft.
        if let Some(w) = weight {
            inst.weight = w;
        }
        if let Some(e) = enabled {
            inst.enabled = e;
        }
        if let Some(m) = metadata {
            inst.metadata = m.into();
        }
        validate::instance(&inst)?;
        naming_write(&st, NamingCommand::Register { key, instance: inst }).await?;
        return Ok("ok".into_response());
    }
    let found = st.registry.update_instance(&key, &ip, port, &cluster, |i| {
        if let Some(w) = weight {
            i.weight = w;
        }
        if let Some(e) = enabled {
            i.enabled = e;
        }
        if let Some(m) = &metadata {
            i.metadata = m.clone().into();
        }
    });
    if !found {
        // A v1 client's instance lives on the member owning the service.
        if let Some(owner) = owner_elsewhere(&st, &headers, &key) {
            return forward(&st, &owner, Method::PUT, INSTANCE_PATH, &p).await;
        }
        return Err(Error::NotFound(format!("instance {ip}:{port} not found in {}", key.grouped_name())).into());
    }
    Ok("ok".into_response())
}

async fn get_instance(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    let key = key(&p)?;
    let (ip, port, cluster) = endpoint(&p)?;
    let inst = st
        .registry
        .find_instance(&key, &ip, port, &cluster)
        .ok_or_else(|| Error::NotFound("no matched ip found!".into()))?;
    Ok(Json(json!({
        "service": key.grouped_name(),
        "ip": inst.ip,
        "port": inst.port,
        "clusterName": inst.cluster,
        "weight": inst.weight,
        "healthy": inst.healthy,
        "enabled": inst.enabled,
        "ephemeral": inst.ephemeral,
        "instanceId": inst.id(&key),
        "metadata": inst.metadata,
    })))
}

async fn list_instances(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    let key = key(&p)?;
    let clusters = p.str("clusters").to_owned();
    let healthy_only = p.bool("healthyOnly", false)?;
    let udp_port = p.num::<i64>("udpPort", 0)?;
    if udp_port > 0 {
        let port = validate::port(udp_port)?;
        if let Some(ip) = p.opt("clientIP").and_then(|ip| ip.parse::<IpAddr>().ok()) {
            st.udp.subscribe(&key, SocketAddr::new(ip, port), &clusters);
        }
    }
    let sel = st.registry.query(&key, &parse_clusters(&clusters), healthy_only).unwrap_or_default();
    let info = ServiceInfoOut::new(&key, NameStyle::Grouped, &clusters, &sel, st.registry.ref_time());
    Ok(Json(serde_json::to_value(info).map_err(|e| ApiError::bad_request(e.to_string()))?))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BeatInfo {
    ip: Option<String>,
    port: Option<i64>,
    cluster: Option<String>,
    weight: Option<f64>,
    metadata: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BeatReply {
    client_beat_interval: u64,
    code: u32,
    light_beat_enabled: bool,
}

async fn beat(State(st): State<HttpState>, headers: HeaderMap, p: Params) -> ApiResult<Response> {
    let key = key(&p)?;
    if let Some(owner) = owner_elsewhere(&st, &headers, &key) {
        return forward(&st, &owner, Method::PUT, "/nacos/v1/ns/instance/beat", &p).await;
    }
    let info: Option<BeatInfo> = p
        .opt("beat")
        .map(|b| {
            serde_json::from_str(b).map_err(|e| ApiError::bad_request(format!("Param 'beat' is not valid JSON: {e}")))
        })
        .transpose()?;
    let ip = info.as_ref().and_then(|b| b.ip.clone()).or_else(|| p.opt("ip").map(str::to_owned)).unwrap_or_default();
    validate::ip(&ip)?;
    let port = info.as_ref().and_then(|b| b.port).or(p.opt("port").and_then(|v| v.parse().ok())).unwrap_or(-1);
    let port = validate::port(port)?;
    let cluster =
        info.as_ref().and_then(|b| b.cluster.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| cluster_param(&p));
    validate::cluster(&cluster)?;
    let client = beat_client(&ip, port);
    let mut interval = 5_000;
    let code = if st.registry.beat(&client, &key, &ip, port, &cluster) {
        if let Some(i) = st.registry.find_instance(&key, &ip, port, &cluster) {
            interval = i.beat_interval_ms();
        }
        10200
    } else if let Some(b) = info {
        // A beat that carries its instance re-registers it (Nacos `handleBeat`).
        let dto = InstanceIn {
            ip: Some(ip),
            port: Some(port.into()),
            weight: b.weight,
            cluster_name: Some(cluster),
            metadata: b.metadata,
            ..InstanceIn::default()
        };
        let inst = dto.into_domain(&key)?;
        interval = inst.beat_interval_ms();
        st.registry.upsert(&client, &key, inst);
        10200
    } else {
        20404
    };
    Ok(Json(BeatReply { client_beat_interval: interval, code, light_beat_enabled: true }).into_response())
}

fn service_meta(p: &Params, base: ServiceMeta) -> ApiResult<ServiceMeta> {
    let mut meta = base;
    if p.opt("protectThreshold").is_some() {
        let t = p.num("protectThreshold", 0.0f32)?;
        validate::protect_threshold(t)?;
        meta.protect_threshold = t;
    }
    if let Some(m) = p.string_map("metadata")? {
        validate::metadata(&m)?;
        meta.metadata = m;
    }
    if let Some(sel) = p.opt("selector") {
        let v: Value = serde_json::from_str(sel)
            .map_err(|e| ApiError::bad_request(format!("Param 'selector' is not valid JSON: {e}")))?;
        meta.selector = Some(v.to_string());
    }
    Ok(meta)
}

// Service settings live in Raft; the registry shows them once committed.

fn not_found(key: &ServiceKey) -> ApiError {
    Error::NotFound(format!("service {} not found", key.grouped_name())).into()
}

async fn create_service(State(st): State<HttpState>, p: Params) -> ApiResult<&'static str> {
    let key = key(&p)?;
    let meta = service_meta(&p, ServiceMeta::default())?;
    if st.registry.get_service(&key).is_some() {
        return Err(Error::Conflict(format!("specified service {} already exists", key.grouped_name())).into());
    }
    match naming_write(&st, NamingCommand::CreateService { key, meta }).await? {
        NamingOutcome::Rejected(why) => Err(Error::Conflict(why).into()),
        _ => Ok("ok"),
    }
}

async fn update_service(State(st): State<HttpState>, p: Params) -> ApiResult<&'static str> {
    let key = key(&p)?;
    let (current, _) = st.registry.get_service(&key).ok_or_else(|| not_found(&key))?;
    let meta = service_meta(&p, current)?;
    naming_write(&st, NamingCommand::UpdateService { key, meta }).await?;
    Ok("ok")
}

async fn delete_service(State(st): State<HttpState>, p: Params) -> ApiResult<&'static str> {
    let key = key(&p)?;
    if st.registry.get_service(&key).is_none() {
        return Err(not_found(&key));
    }
    if st.registry.has_instances(&key) {
        return Err(Error::Conflict(format!(
            "Service {} is not empty, can't be delete. Please unregister instance first",
            key.grouped_name()
        ))
        .into());
    }
    match naming_write(&st, NamingCommand::DeleteService { key: key.clone() }).await? {
        NamingOutcome::Rejected(why) => Err(Error::Conflict(why).into()),
        // A service that only exists implicitly has no settings in Raft: drop the empty entry here.
        NamingOutcome::NotFound => {
            st.registry.set_service_meta(&key, None);
            Ok("ok")
        }
        NamingOutcome::Done => Ok("ok"),
    }
}

async fn get_service(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    let key = key(&p)?;
    let (meta, clusters) = st.registry.get_service(&key).ok_or_else(|| not_found(&key))?;
    let selector: Value = meta
        .selector
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| json!({"type": "none", "contextType": "NONE"}));
    let clusters: Vec<Value> =
        clusters.into_iter().map(|c| json!({"name": c, "healthChecker": {"type": "TCP"}, "metadata": {}})).collect();
    Ok(Json(json!({
        "namespaceId": &*key.namespace,
        "groupName": &*key.group,
        "name": &*key.name,
        // Via the f32's shortest decimal form, so 0.3 reads 0.3 (as Nacos's Java float does), not 0.30000001192092896.
        "protectThreshold": meta.protect_threshold.to_string().parse::<f64>().unwrap_or(0.0),
        "metadata": meta.metadata,
        "selector": selector,
        "clusters": clusters,
    })))
}

async fn list_services(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    let scope = service_key(p.str("namespaceId"), p.str("groupName"), "x")?;
    let page_no = p.num::<i64>("pageNo", 1)?.max(1) as usize;
    let page_size = p.num::<i64>("pageSize", 10)?.clamp(1, 10_000) as usize;
    let (count, doms) = st.registry.list_services(&scope, page_no, page_size);
    Ok(Json(json!({"count": count, "doms": doms})))
}

async fn operator_metrics(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    if p.bool("onlyStatus", true)? {
        return Ok(Json(json!({"status": "UP"})));
    }
    let c = st.registry.counts();
    Ok(Json(json!({
        "status": "UP",
        "serviceCount": c.services,
        "instanceCount": c.instances,
        "subscribeCount": c.subscribers,
        "clientCount": c.clients,
        "connectionBasedClientCount": c.connection_clients,
        "ephemeralIpPortClientCount": c.beat_clients,
        "persistentIpPortClientCount": c.persistent_clients,
        "responsibleClientCount": c.clients,
    })))
}
