//! Config over HTTP: v1 `/nacos/v1/cs/configs` (GET/POST/DELETE), `/configs/listener` long
//! polling, `/nacos/v1/cs/history`, and the v2 open API `/nacos/v2/cs/config` and history.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::http::{ApiError, ApiResult, HttpState, Params};
use crate::configs::longpoll;
use crate::configs::model::{ConfigItem, ConfigKey, HistoryRecord};
use crate::configs::service::{ConfigService, PublishInput};
use crate::error::Error;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/nacos/v1/cs/configs", get(v1_get).post(v1_publish).delete(v1_delete))
        .route("/nacos/v1/cs/configs/listener", axum::routing::post(v1_listener))
        .route("/nacos/v1/cs/history", get(v1_history))
        .route("/nacos/v1/cs/history/previous", get(v1_history_previous))
        .route("/nacos/v2/cs/config", get(v2_get).post(v2_publish).delete(v2_delete))
        .route("/nacos/v2/cs/history/list", get(v2_history_list))
        .route("/nacos/v2/cs/history", get(v2_history_detail))
        .route("/nacos/v2/cs/history/previous", get(v2_history_previous))
}

/// Long-poll hold: `max(10 s, timeout − 500 ms)`, as Nacos.
pub const MIN_HOLD_MS: u64 = 10_000;
const HOLD_DELAY_MS: u64 = 500;

type Peer = ConnectInfo<std::net::SocketAddr>;

fn namespace_param(p: &Params, v2: bool) -> &str {
    if v2 { p.str("namespaceId") } else { p.opt("tenant").unwrap_or_else(|| p.str("namespaceId")) }
}

fn key_of(p: &Params, v2: bool) -> ApiResult<ConfigKey> {
    let data_id = p.required("dataId")?;
    Ok(ConfigService::key(namespace_param(p, v2), p.str("group"), data_id)?)
}

fn client_ip(p: &Params, headers: &HeaderMap, peer: &Peer) -> String {
    headers
        .get("X-Forwarded-For")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_owned())
        .or_else(|| p.opt("clientIp").map(str::to_owned))
        .unwrap_or_else(|| peer.0.ip().to_string())
}

fn publish_input(p: &Params, headers: &HeaderMap, peer: &Peer, v2: bool) -> ApiResult<PublishInput> {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let content =
        p.0.get("content")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("Required parameter 'content' is not present"))?;
    Ok(PublishInput {
        namespace: namespace_param(p, v2).to_owned(),
        group: p.str("group").to_owned(),
        data_id: p.required("dataId")?.to_owned(),
        content,
        kind: p.str("type").to_owned(),
        app_name: p.str("appName").to_owned(),
        desc: p.str("desc").to_owned(),
        tags: p.str("config_tags").to_owned(),
        usage: p.str("use").to_owned(),
        effect: p.str("effect").to_owned(),
        schema: p.str("schema").to_owned(),
        encrypted_data_key: p.str("encryptedDataKey").to_owned(),
        cas_md5: p.opt("casMd5").map(str::to_owned).unwrap_or_else(|| header("casMd5")),
        beta_ips: p.opt("betaIps").map(str::to_owned).unwrap_or_else(|| header("betaIps")),
        src_user: p.str("src_user").to_owned(),
        src_ip: client_ip(p, headers, peer),
    })
}

/// RFC 7231 date (`Sun, 06 Nov 1994 08:49:37 GMT`) for `Last-Modified`.
fn http_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mn = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(mo - 1) as usize];
    format!("{wd}, {d:02} {mn} {y} {h:02}:{m:02}:{s:02} GMT")
}

fn detail_json(key: &ConfigKey, item: &ConfigItem) -> Value {
    json!({
        "id": item.id.to_string(),
        "dataId": &*key.data_id,
        "group": &*key.group,
        "tenant": key.tenant(),
        "content": item.content,
        "md5": item.md5,
        "type": item.meta.kind,
        "appName": item.meta.app_name,
        "desc": item.meta.desc,
        "use": item.meta.usage,
        "effect": item.meta.effect,
        "schema": item.meta.schema,
        "configTags": item.meta.tags.join(","),
        "encryptedDataKey": item.meta.encrypted_data_key,
        "createTime": item.created_ms,
        "modifyTime": item.modified_ms,
        "createUser": item.src_user,
        "createIp": item.src_ip,
    })
}

async fn v1_get(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> ApiResult<Response> {
    let svc = &st.config;
    if let Some(mode) = p.opt("search") {
        return v1_search(svc, &p, mode).map(IntoResponse::into_response);
    }
    let key = key_of(&p, false)?;
    let Some(item) = svc.get(&key) else {
        return Ok((StatusCode::NOT_FOUND, "config data not exist").into_response());
    };
    if p.opt("show") == Some("all") {
        return Ok(Json(detail_json(&key, &item)).into_response());
    }
    let ip = client_ip(&p, &headers, &peer);
    let (content, md5, beta) = item.view_for(&ip);
    let mut resp = content.to_owned().into_response();
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set(h, "Config-Type", &item.meta.kind);
    set(h, "Content-MD5", md5);
    set(h, "Last-Modified", &http_date(item.modified_ms));
    set(h, "Encrypted-Data-Key", &item.meta.encrypted_data_key);
    set(h, "Pragma", "no-cache");
    set(h, "Cache-Control", "no-cache,no-store");
    if beta {
        set(h, "isBeta", "true");
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=UTF-8"));
    Ok(resp)
}

/// `search=accurate|blur` listing: `Page{totalCount, pageNumber, pagesAvailable, pageItems}`.
fn v1_search(svc: &ConfigService, p: &Params, mode: &str) -> ApiResult<Json<Value>> {
    let ns = crate::naming::model::normalize_namespace(p.opt("tenant").unwrap_or(""));
    let (data_id, group) = (p.str("dataId"), p.str("group"));
    let blur = mode == "blur";
    let matches = |pattern: &str, v: &str| -> bool {
        if pattern.is_empty() {
            return true;
        }
        if blur {
            let needle = pattern.replace('*', "");
            v.contains(&needle)
        } else {
            pattern == v
        }
    };
    let all: Vec<_> = svc
        .store()
        .list(ns)
        .into_iter()
        .filter(|(k, _)| matches(data_id, &k.data_id) && matches(group, &k.group))
        .collect();
    let page_no = p.num::<usize>("pageNo", 1)?.max(1);
    let page_size = p.num::<usize>("pageSize", 10)?.clamp(1, 500);
    let total = all.len();
    let items: Vec<Value> =
        all.iter().skip((page_no - 1) * page_size).take(page_size).map(|(k, i)| detail_json(k, i)).collect();
    Ok(Json(json!({
        "totalCount": total,
        "pageNumber": page_no,
        "pagesAvailable": total.div_ceil(page_size),
        "pageItems": items,
    })))
}

async fn v1_publish(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> ApiResult<&'static str> {
    let input = publish_input(&p, &headers, &peer, false)?;
    st.config.publish(input).await?;
    Ok("true")
}

async fn v1_delete(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> ApiResult<&'static str> {
    let key = key_of(&p, false)?;
    let beta = p.bool("beta", false)?;
    st.config.remove(key, beta, p.str("src_user").to_owned(), client_ip(&p, &headers, &peer)).await?;
    Ok("true")
}

/// Decodes `%xx` and `+` once more, as Nacos does with `Listening-Configs`.
fn url_decode(s: &str) -> ApiResult<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let v = hex.ok_or_else(|| ApiError::bad_request("Listening-Configs is not properly encoded"))?;
                out.push(v);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("Listening-Configs is not UTF-8"))
}

async fn v1_listener(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> ApiResult<Response> {
    let svc = &st.config;
    let raw =
        p.0.get("Listening-Configs")
            .ok_or_else(|| ApiError::bad_request("Required parameter 'Listening-Configs' is not present"))?;
    let listened = longpoll::parse(&url_decode(raw)?)?;
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let no_hangup = header("Long-Pulling-Timeout-No-Hangup").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let hold = match header("Long-Pulling-Timeout") {
        Some(t) if !no_hangup => {
            let t: u64 =
                t.trim().parse().map_err(|_| ApiError::bad_request("Long-Pulling-Timeout must be a number of ms"))?;
            Some(Duration::from_millis(t.saturating_sub(HOLD_DELAY_MS).max(MIN_HOLD_MS)))
        }
        _ => None,
    };
    let ip = client_ip(&p, &headers, &peer);
    let changed = svc.long_poll(listened, &ip, hold).await?;
    let refs: Vec<_> = changed.iter().collect();
    let mut resp = longpoll::render(&refs).into_response();
    resp.headers_mut().insert("Pragma", HeaderValue::from_static("no-cache"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache,no-store"));
    Ok(resp)
}

fn history_json(r: &HistoryRecord) -> Value {
    json!({
        "id": r.nid.to_string(),
        "lastId": -1,
        "dataId": &*r.key.data_id,
        "group": &*r.key.group,
        "tenant": r.key.tenant(),
        "appName": r.app_name,
        "md5": r.md5,
        "content": r.content,
        "srcIp": r.src_ip,
        "srcUser": r.src_user,
        "opType": r.op.letter(),
        "publishType": r.publish_type,
        "createdTime": r.modified_ms,
        "lastModifiedTime": r.modified_ms,
    })
}

fn history_page(svc: &ConfigService, p: &Params, v2: bool) -> ApiResult<Value> {
    let key = ConfigService::key(namespace_param(p, v2), p.required("group")?, p.required("dataId")?)?;
    let page_no = p.num::<usize>("pageNo", 1)?.max(1);
    let page_size = p.num::<usize>("pageSize", 100)?.clamp(1, 500);
    let (total, items) = svc.history(&key, page_no, page_size)?;
    Ok(json!({
        "totalCount": total,
        "pageNumber": page_no,
        "pagesAvailable": total.div_ceil(page_size),
        "pageItems": items.iter().map(history_json).collect::<Vec<_>>(),
    }))
}

fn history_detail(svc: &ConfigService, p: &Params, param: &str) -> ApiResult<Value> {
    let nid: u64 =
        p.required(param)?.parse().map_err(|_| ApiError::bad_request(format!("Param '{param}' must be a number")))?;
    let rec = svc.history_record(nid)?.ok_or_else(|| Error::NotFound(format!("history record {nid} not found")))?;
    check_history_key(p, &rec)?;
    Ok(history_json(&rec))
}

/// When the caller names the config, the record must belong to it (Nacos 2.x checks this).
fn check_history_key(p: &Params, rec: &HistoryRecord) -> ApiResult<()> {
    if let (Some(d), Some(g)) = (p.opt("dataId"), p.opt("group"))
        && (d != &*rec.key.data_id || g != &*rec.key.group)
    {
        return Err(Error::NotFound("history record does not belong to the given config".into()).into());
    }
    Ok(())
}

fn history_previous(svc: &ConfigService, p: &Params) -> ApiResult<Value> {
    let id: u64 = p.required("id")?.parse().map_err(|_| ApiError::bad_request("Param 'id' must be a number"))?;
    let rec = svc.history_previous(id)?.ok_or_else(|| Error::NotFound(format!("no history before {id}")))?;
    check_history_key(p, &rec)?;
    Ok(history_json(&rec))
}

async fn v1_history(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    let svc = &st.config;
    if p.opt("nid").is_some() {
        return Ok(Json(history_detail(svc, &p, "nid")?));
    }
    Ok(Json(history_page(svc, &p, false)?))
}

async fn v1_history_previous(State(st): State<HttpState>, p: Params) -> ApiResult<Json<Value>> {
    Ok(Json(history_previous(&st.config, &p)?))
}

/// v2 replies: `{"code":0,"message":"success","data":…}`; errors keep the HTTP status with a
/// v2 error code.
fn v2_ok(data: Value) -> Response {
    Json(json!({"code": 0, "message": "success", "data": data})).into_response()
}

fn v2_err(e: ApiError) -> Response {
    let (code, message) = match e.status {
        StatusCode::NOT_FOUND => (20004, "resource not found"),
        StatusCode::CONFLICT => (20005, "resource conflict"),
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => (20002, "parameter validate error"),
        _ => (30000, "server error"),
    };
    (e.status, Json(json!({"code": code, "message": message, "data": e.message}))).into_response()
}

fn v2(r: ApiResult<Value>) -> Response {
    r.map_or_else(v2_err, v2_ok)
}

async fn v2_get(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> Response {
    v2((|| {
        let svc = &st.config;
        let key = key_of(&p, true)?;
        let item = svc.get(&key).ok_or_else(|| Error::NotFound("config data not exist".into()))?;
        Ok(Value::String(item.view_for(&client_ip(&p, &headers, &peer)).0.to_owned()))
    })())
}

async fn v2_publish(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> Response {
    let r = async {
        let input = publish_input(&p, &headers, &peer, true)?;
        st.config.publish(input).await?;
        Ok(Value::Bool(true))
    };
    v2(r.await)
}

async fn v2_delete(State(st): State<HttpState>, peer: Peer, headers: HeaderMap, p: Params) -> Response {
    let r = async {
        let key = key_of(&p, true)?;
        st.config.remove(key, false, String::new(), client_ip(&p, &headers, &peer)).await?;
        Ok(Value::Bool(true))
    };
    v2(r.await)
}

async fn v2_history_list(State(st): State<HttpState>, p: Params) -> Response {
    v2(history_page(&st.config, &p, true))
}

async fn v2_history_detail(State(st): State<HttpState>, p: Params) -> Response {
    v2(history_detail(&st.config, &p, "nid"))
}

async fn v2_history_previous(State(st): State<HttpState>, p: Params) -> Response {
    v2(history_previous(&st.config, &p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_formats() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn url_decode_once_more() {
        assert_eq!(url_decode("a%02b+c").unwrap(), "a\u{2}b c");
        assert!(url_decode("%zz").is_err());
    }
}
