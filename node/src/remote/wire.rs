//! Envelope helpers: building and reading `Payload`s whose body is JSON in an `Any` with an
//! empty `type_url`, and the lifecycle messages every Nacos client expects.

use std::collections::HashMap;

use cairn_proto::Any;
use cairn_proto::nacos::{Metadata, Payload};
use serde::Serialize;

/// Builds a payload of Java type `ty` with a JSON body.
pub fn payload(ty: &str, json: Vec<u8>) -> Payload {
    Payload {
        metadata: Some(Metadata { r#type: ty.to_owned(), client_ip: String::new(), headers: HashMap::new() }),
        body: Some(Any { type_url: String::new(), value: json }),
    }
}

/// Serialises `body` into a payload of type `ty`.
pub fn json_payload<T: Serialize>(ty: &str, body: &T) -> Payload {
    // Serialising our own plain structs into a Vec cannot fail.
    payload(ty, serde_json::to_vec(body).unwrap_or_default())
}

/// The `metadata.type` of a payload ("" when absent).
pub fn type_of(p: &Payload) -> &str {
    p.metadata.as_ref().map(|m| m.r#type.as_str()).unwrap_or("")
}

/// The JSON body bytes of a payload (empty when absent).
pub fn body_of(p: &Payload) -> &[u8] {
    p.body.as_ref().map(|b| b.value.as_slice()).unwrap_or(&[])
}

/// The base fields of every Nacos response.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseBase<'a> {
    /// 200 success, 500 failure.
    pub result_code: i32,
    /// Nacos error code (0 on success).
    pub error_code: i32,
    /// Optional message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    /// Echo of the request's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// `result_code == 200`.
    pub success: bool,
}

impl<'a> ResponseBase<'a> {
    /// A success base.
    pub fn ok(request_id: Option<&'a str>) -> Self {
        ResponseBase { result_code: 200, error_code: 0, message: None, request_id, success: true }
    }
}

/// An `ErrorResponse` payload with a Nacos error code.
pub fn error_response(code: i32, message: &str, request_id: Option<&str>) -> Payload {
    json_payload(
        "ErrorResponse",
        &ResponseBase { result_code: 500, error_code: code, message: Some(message), request_id, success: false },
    )
}

/// A response that carries only the base fields.
pub fn empty_ok(ty: &str, request_id: Option<&str>) -> Payload {
    json_payload(ty, &ResponseBase::ok(request_id))
}

/// Reads the optional `requestId` of a request body (client unary calls usually carry none, so
/// bodies without the key are not parsed at all).
pub fn request_id_of(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"requestId\"";
    if !body.windows(KEY.len()).any(|w| w == KEY) {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct R {
        #[serde(rename = "requestId")]
        request_id: Option<String>,
    }
    serde_json::from_slice::<R>(body).ok().and_then(|r| r.request_id)
}

/// Builds a server→client request body `{"headers":{},"requestId":id, ...fields}`; `fields`
/// is a JSON object literal without braces (may be empty).
pub fn server_request_body(request_id: &str, module: &str, fields: &str) -> Vec<u8> {
    let mut s = String::with_capacity(64 + fields.len());
    s.push_str("{\"headers\":{},\"requestId\":\"");
    s.push_str(request_id);
    s.push_str("\",\"module\":\"");
    s.push_str(module);
    s.push('"');
    if !fields.is_empty() {
        s.push(',');
        s.push_str(fields);
    }
    s.push('}');
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_shape() {
        let p = error_response(301, "Connection is unregistered.", None);
        assert_eq!(type_of(&p), "ErrorResponse");
        let v: serde_json::Value = serde_json::from_slice(body_of(&p)).unwrap();
        assert_eq!(v["errorCode"], 301);
        assert_eq!(v["resultCode"], 500);
        assert_eq!(v["success"], false);
    }

    #[test]
    fn server_request_body_is_json() {
        let b = server_request_body("7", "naming", "\"x\":1");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["requestId"], "7");
        assert_eq!(v["x"], 1);
        assert_eq!(request_id_of(&b).as_deref(), Some("7"));
    }
}
