//! Namespaces over HTTP: `/nacos/v1/console/namespaces` (GET list or one, POST, PUT, DELETE).
//! The public namespace always exists (id `""` in 2.x answers) and cannot be changed.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::http::{ApiError, ApiResult, HttpState, Params};
use crate::configs::model::Namespace;
use crate::error::Error;
use crate::naming::model::PUBLIC_NAMESPACE;

pub fn routes() -> Router<HttpState> {
    Router::new().route("/nacos/v1/console/namespaces", get(get_ns).post(create).put(update).delete(delete))
}

const QUOTA: u32 = 200;

fn config_count(st: &HttpState, id: &str) -> usize {
    st.config.store().list(crate::naming::model::normalize_namespace(id)).len()
}

fn public_json(st: &HttpState) -> Value {
    json!({"namespace": "", "namespaceShowName": PUBLIC_NAMESPACE, "namespaceDesc": "Public Namespace",
           "quota": QUOTA, "configCount": config_count(st, ""), "type": 0})
}

fn ns_json(st: &HttpState, ns: &Namespace) -> Value {
    json!({"namespace": ns.id, "namespaceShowName": ns.name, "namespaceDesc": ns.desc,
           "quota": QUOTA, "configCount": config_count(st, &ns.id), "type": 2})
}

async fn get_ns(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    let svc = &st.config;
    if let Some(id) = p.opt("namespaceId").or_else(|| p.opt("namespace")) {
        if id == PUBLIC_NAMESPACE {
            return Ok(Json(public_json(&st)));
        }
        let ns = svc.store().namespaces().into_iter().find(|n| n.id == id);
        let ns = ns.ok_or_else(|| Error::NotFound(format!("namespaceId [ {id} ] not exist")))?;
        return Ok(Json(ns_json(&st, &ns)));
    }
    let mut data = vec![public_json(&st)];
    data.extend(svc.store().namespaces().iter().map(|n| ns_json(&st, n)));
    Ok(Json(json!({"code": 200, "message": null, "data": data})))
}

/// A new namespace id: 128 random bits in UUID layout (Nacos generates UUIDs).
fn fresh_id() -> String {
    let (a, b): (u64, u64) = (rand::random(), rand::random());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

async fn create(State(st): State<HttpState>, p: Params) -> ApiResult<&'static str> {
    let name = p.required("namespaceName")?;
    if name.len() > 128 {
        return Err(ApiError::bad_request("namespaceName is longer than 128 characters"));
    }
    let id = p.opt("customNamespaceId").map(str::to_owned).unwrap_or_else(fresh_id);
    st.config.create_namespace(&id, name, p.str("namespaceDesc")).await?;
    Ok("true")
}

async fn update(State(st): State<HttpState>, p: Params) -> ApiResult<&'static str> {
    let id = p.required("namespace")?;
    if id == PUBLIC_NAMESPACE {
        return Err(ApiError::bad_request("the public namespace cannot be changed"));
    }
    st.config.update_namespace(id, p.required("namespaceShowName")?, p.str("namespaceDesc")).await?;
    Ok("true")
}

async fn delete(State(st): State<HttpState>, p: Params) -> ApiResult<&'static str> {
    let id = p.required("namespaceId")?;
    if id == PUBLIC_NAMESPACE {
        return Err(ApiError::bad_request("the public namespace cannot be deleted"));
    }
    st.config.delete_namespace(id).await?;
    Ok("true")
}
