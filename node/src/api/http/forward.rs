//! Ownership of v1 heartbeat clients in a cluster, and forwarding their writes to the owner.
//!
//! A v1 client's ephemeral instances of a service belong to one member: the one the service
//! hashes to over the sorted list of members not known to be DOWN (as with Nacos's
//! `DistroFilter`). A write arriving
//! elsewhere (register, deregister, beat, update) is forwarded to that member over HTTP and its
//! answer relayed; the owner then replicates the client through Distro. A forwarded request
//! carries `x-cairn-forwarded`, and is always handled where it lands, so differing member
//! views can never make a request bounce.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiResult, HttpState, Params};
use crate::membership::MemberState;
use crate::naming::ServiceKey;
use crate::naming::health::responsible_member;

/// Header marking a request forwarded by another member.
pub const FORWARDED: &str = "x-cairn-forwarded";

const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The member that owns `key`'s v1 heartbeat clients, when that is not this node and the
/// request was not already forwarded.
pub fn owner_elsewhere(st: &HttpState, headers: &HeaderMap, key: &ServiceKey) -> Option<String> {
    if headers.contains_key(FORWARDED) {
        return None;
    }
    // Members known to be down own nothing, so their services move to live members.
    let members: Vec<String> = st
        .membership
        .current()
        .addresses()
        .into_iter()
        .filter(|m| st.membership.state(m) != MemberState::Down)
        .collect();
    if members.len() < 2 {
        return None;
    }
    responsible_member(key, &members).filter(|m| *m != st.membership.self_address()).cloned()
}

/// Sends the request (as a form) to `owner` and relays its status and body.
pub async fn forward(st: &HttpState, owner: &str, method: Method, path: &str, p: &Params) -> ApiResult<Response> {
    let url = format!("http://{owner}{path}");
    let resp = st
        .forwarder
        .request(method, &url)
        .header(FORWARDED, st.membership.self_address())
        .form(&p.0)
        .timeout(FORWARD_TIMEOUT)
        .send()
        .await
        .map_err(|e| unavailable(owner, e))?;
    let status = resp.status();
    let content_type = resp.headers().get(axum::http::header::CONTENT_TYPE).cloned();
    let body = resp.bytes().await.map_err(|e| unavailable(owner, e))?;
    let mut out = (status, Body::from(body)).into_response();
    if let Some(ct) = content_type {
        out.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
    }
    Ok(out)
}

fn unavailable(owner: &str, e: reqwest::Error) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("the member owning this service ({owner}) did not answer: {e}"),
    }
}
