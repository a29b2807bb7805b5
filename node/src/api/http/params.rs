//! Nacos v1 parameters: the query string merged with a form body (query first, as a servlet's
//! `getParameter` does), with typed accessors that answer 400 on bad values.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use crate::api::http::ApiError;

/// Merged request parameters.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

fn parse_into(map: &mut HashMap<String, String>, raw: &[u8]) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|e| ApiError::bad_request(format!("malformed parameters: {e}")))?;
    for (k, v) in pairs {
        map.entry(k).or_insert(v);
    }
    Ok(())
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut map = HashMap::new();
        if let Some(q) = req.uri().query() {
            parse_into(&mut map, q.as_bytes())?;
        }
        let is_form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { e.status() } else { StatusCode::BAD_REQUEST };
            ApiError { status, message: format!("request body rejected: {}", e.body_text()) }
        })?;
        if is_form && !body.is_empty() {
            parse_into(&mut map, &body)?;
        }
        Ok(Params(map))
    }
}

impl Params {
    /// A parameter as given ("" when absent).
    pub fn str(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }

    /// An optional non-empty parameter.
    pub fn opt(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// A required non-blank parameter.
    pub fn required(&self, k: &str) -> Result<&str, ApiError> {
        self.opt(k)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("Required parameter '{k}' is not present")))
    }

    /// A boolean with a default.
    pub fn bool(&self, k: &str, default: bool) -> Result<bool, ApiError> {
        match self.opt(k) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!("Param '{k}' must be true or false, got {v:?}"))),
        }
    }

    /// A number with a default.
    pub fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, ApiError> {
        match self.opt(k) {
            None => Ok(default),
            Some(v) => {
                v.trim().parse().map_err(|_| ApiError::bad_request(format!("Param '{k}' is not a valid number: {v:?}")))
            }
        }
    }

    /// A JSON object of string values (e.g. `metadata`); accepts Nacos's legacy `k=v,k2=v2` form.
    pub fn string_map(&self, k: &str) -> Result<Option<std::collections::BTreeMap<String, String>>, ApiError> {
        let Some(raw) = self.opt(k) else {
            return Ok(None);
        };
        if raw.trim_start().starts_with('{') {
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw)
                .map_err(|e| ApiError::bad_request(format!("Param '{k}' is not valid JSON: {e}")))?;
            let m = v
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            return Ok(Some(m));
        }
        let mut m = std::collections::BTreeMap::new();
        for pair in raw.split(',').filter(|p| !p.is_empty()) {
            let (a, b) = pair
                .split_once('=')
                .ok_or_else(|| ApiError::bad_request(format!("Param '{k}' must be JSON or k=v pairs")))?;
            m.insert(a.to_owned(), b.to_owned());
        }
        Ok(Some(m))
    }
}
