//! The Nacos gRPC transport, spoken raw against the real `cairn-node` binary: ServerCheck before
//! setup, 301 for unregistered connections, SetupAck only for ability negotiation, ErrorResponse
//! for unknown and malformed payloads, pushes with acks, removal within 1 s of a client's TCP
//! connection dying, ClientDetection of silent clients, and ConnectReset on graceful shutdown.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_compat::NodeProc;
use cairn_proto::Any;
use cairn_proto::nacos::bi_request_stream_client::BiRequestStreamClient;
use cairn_proto::nacos::request_client::RequestClient;
use cairn_proto::nacos::{Metadata, Payload};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

fn node(extra: &[&str]) -> NodeProc {
    NodeProc::start_with(Path::new(env!("CARGO_BIN_EXE_cairn-node")), extra)
}

fn payload(ty: &str, body: &[u8]) -> Payload {
    Payload {
        metadata: Some(Metadata { r#type: ty.into(), client_ip: "127.0.0.1".into(), headers: HashMap::new() }),
        body: Some(Any { type_url: String::new(), value: body.to_vec() }),
    }
}

fn decode(p: &Payload) -> (String, Value) {
    let ty = p.metadata.as_ref().map(|m| m.r#type.clone()).unwrap_or_default();
    let body = p.body.as_ref().map(|b| serde_json::from_slice(&b.value).expect("JSON body")).unwrap_or(Value::Null);
    (ty, body)
}

/// One client connection: a channel (one HTTP/2 connection) with its bi-stream.
struct Client {
    unary: RequestClient<Channel>,
    tx: mpsc::Sender<Payload>,
    inbound: Streaming<Payload>,
}

impl Client {
    async fn connect(node: &NodeProc) -> Client {
        let channel = Channel::from_shared(node.grpc_endpoint()).unwrap().connect().await.expect("connect");
        let (tx, rx) = mpsc::channel(64);
        let mut bi = BiRequestStreamClient::new(channel.clone());
        let inbound = bi.request_bi_stream(ReceiverStream::new(rx)).await.expect("bi-stream").into_inner();
        Client { unary: RequestClient::new(channel), tx, inbound }
    }

    async fn call(&mut self, ty: &str, body: Value) -> (String, Value) {
        let raw = serde_json::to_vec(&body).unwrap();
        self.call_raw(ty, &raw).await
    }

    async fn call_raw(&mut self, ty: &str, body: &[u8]) -> (String, Value) {
        let resp = self.unary.request(payload(ty, body)).await.expect("unary call").into_inner();
        decode(&resp)
    }

    async fn setup(&mut self, ability_table: bool) {
        let mut body = json!({
            "clientVersion": "cairn-test", "tenant": "", "module": "internal",
            "labels": {"source": "sdk", "module": "naming", "AppName": "test"},
        });
        if ability_table {
            body["abilityTable"] = json!({"supportPersistentInstanceByGrpc": true});
        }
        self.tx.send(payload("ConnectionSetupRequest", &serde_json::to_vec(&body).unwrap())).await.unwrap();
        // Registration is asynchronous: wait until a HealthCheck passes.
        for _ in 0..100 {
            if self.call("HealthCheckRequest", json!({})).await.0 == "HealthCheckResponse" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("connection never became registered");
    }

    /// Next server→client message within `limit`.
    async fn next(&mut self, limit: Duration) -> Option<(String, Value)> {
        match tokio::time::timeout(limit, self.inbound.message()).await {
            Ok(Ok(Some(p))) => Some(decode(&p)),
            _ => None,
        }
    }

    /// Waits for a server request of type `ty`, acking every server request on the way.
    async fn expect_push(&mut self, ty: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let (t, body) = self.next(left).await?;
            self.ack(&t, &body).await;
            if t == ty {
                return Some(body);
            }
        }
        None
    }

    async fn ack(&mut self, ty: &str, body: &Value) {
        let Some(rid) = body["requestId"].as_str() else {
            return;
        };
        let resp_ty = ty.replace("Request", "Response");
        let resp = json!({"resultCode": 200, "errorCode": 0, "requestId": rid, "success": true});
        let _ = self.tx.send(payload(&resp_ty, &serde_json::to_vec(&resp).unwrap())).await;
    }
}

fn instance_req(svc: &str, kind: &str, port: u16) -> Value {
    json!({
        "headers": {}, "namespace": "public", "serviceName": svc, "groupName": "DEFAULT_GROUP", "type": kind,
        "instance": {"ip": "10.1.1.1", "port": port, "weight": 1.0, "healthy": true, "enabled": true,
                     "ephemeral": true, "clusterName": "DEFAULT", "metadata": {"k": "v"}},
        "module": "naming",
    })
}

fn with(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

fn hosts(v: &Value) -> Vec<String> {
    v["hosts"]
        .as_array()
        .map(|a| a.iter().map(|h| format!("{}:{}", h["ip"].as_str().unwrap(), h["port"])).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn server_check_then_301_until_setup() {
    let n = node(&[]);
    let mut c = Client::connect(&n).await;
    let (ty, body) = c.call("ServerCheckRequest", json!({})).await;
    assert_eq!(ty, "ServerCheckResponse");
    assert!(!body["connectionId"].as_str().unwrap().is_empty());
    assert_eq!(body["supportAbilityNegotiation"], true);
    assert_eq!(body["resultCode"], 200);
    for ty in ["HealthCheckRequest", "InstanceRequest", "ServiceQueryRequest"] {
        let (rt, rb) = c.call(ty, instance_req("s", "registerInstance", 1)).await;
        assert_eq!(rt, "ErrorResponse", "{ty}");
        assert_eq!(rb["errorCode"], 301, "{ty}");
    }
    c.setup(false).await;
    let (ty, _) = c.call("HealthCheckRequest", json!({})).await;
    assert_eq!(ty, "HealthCheckResponse");
    // The id is per TCP connection: a second connection gets another one.
    let mut c2 = Client::connect(&n).await;
    let (_, b2) = c2.call("ServerCheckRequest", json!({})).await;
    assert_ne!(b2["connectionId"], body["connectionId"]);
}

#[tokio::test]
async fn setup_ack_only_for_ability_negotiation() {
    let n = node(&[]);
    let mut new_style = Client::connect(&n).await;
    new_style.setup(true).await;
    let (ty, body) = new_style.next(Duration::from_secs(2)).await.expect("SetupAckRequest");
    assert_eq!(ty, "SetupAckRequest");
    assert_eq!(body["abilityTable"]["supportPersistentInstanceByGrpc"], true);
    let mut old_style = Client::connect(&n).await;
    old_style.setup(false).await;
    assert!(old_style.next(Duration::from_millis(500)).await.is_none(), "no SetupAck without abilityTable");
}

#[tokio::test]
async fn unknown_and_malformed_payloads_get_error_responses() {
    let n = node(&[]);
    let mut c = Client::connect(&n).await;
    c.setup(false).await;
    let (ty, b) = c.call("NoSuchRequest", json!({})).await;
    assert_eq!((ty.as_str(), b["errorCode"].as_i64()), ("ErrorResponse", Some(302)));
    let (ty, b) = c.call_raw("InstanceRequest", b"{not json").await;
    assert_eq!((ty.as_str(), b["errorCode"].as_i64()), ("ErrorResponse", Some(502)));
    let (ty, b) = c.call_raw("InstanceRequest", &[0xff, 0x00, 0x13]).await;
    assert_eq!(ty, "ErrorResponse", "{b}");
    let (ty, b) = c.call_raw("InstanceRequest", b"").await;
    assert_eq!(ty, "ErrorResponse", "{b}");
    // Wrong JSON types are malformed, not a crash.
    let (ty, _) = c.call("InstanceRequest", json!({"serviceName": 5, "type": []})).await;
    assert_eq!(ty, "ErrorResponse");
    let base = || instance_req("svc", "registerInstance", 1);
    for (bad, what) in [
        (with(base(), |v| v["instance"]["port"] = json!(70000)), "port"),
        (with(base(), |v| v["instance"]["port"] = json!(-5)), "negative port"),
        (instance_req("", "registerInstance", 1), "empty service"),
        (instance_req(&"x".repeat(600), "registerInstance", 1), "long service"),
        (instance_req("a/b", "registerInstance", 1), "bad char"),
        (with(base(), |v| v["groupName"] = json!("bad group")), "group"),
        (with(base(), |v| v["instance"]["weight"] = json!(-1.0)), "weight"),
        (with(base(), |v| v["instance"]["ephemeral"] = json!(false)), "persistent"),
        (with(base(), |v| v["type"] = json!("explode")), "type"),
    ] {
        let (ty, b) = c.call("InstanceRequest", bad).await;
        assert_eq!(ty, "ErrorResponse", "{what}");
        assert_eq!(b["errorCode"], 400, "{what}: {b}");
        assert!(!b["message"].as_str().unwrap_or("").is_empty(), "{what}");
    }
    // Persistent instances go through Raft: registered, listed as ephemeral=false, removed.
    let (ty, b) = c.call("PersistentInstanceRequest", instance_req("psvc", "registerInstance", 1)).await;
    assert_eq!(ty, "InstanceResponse", "{b}");
    let (_, q) = c.call("ServiceQueryRequest", json!({"serviceName": "psvc", "groupName": "DEFAULT_GROUP"})).await;
    assert_eq!(hosts(&q["serviceInfo"]), vec!["10.1.1.1:1"]);
    assert_eq!(q["serviceInfo"]["hosts"][0]["ephemeral"], false);
    let (ty, _) = c.call("PersistentInstanceRequest", instance_req("psvc", "deregisterInstance", 1)).await;
    assert_eq!(ty, "InstanceResponse");
    let (_, q) = c.call("ServiceQueryRequest", json!({"serviceName": "psvc", "groupName": "DEFAULT_GROUP"})).await;
    assert!(hosts(&q["serviceInfo"]).is_empty());
    // A message over the 10 MiB limit is refused by the transport; the node keeps serving.
    let huge = vec![b'a'; 11 * 1024 * 1024];
    assert!(c.unary.request(payload("InstanceRequest", &huge)).await.is_err());
    let mut again = Client::connect(&n).await;
    assert_eq!(again.call("ServerCheckRequest", json!({})).await.0, "ServerCheckResponse");
}

#[tokio::test]
async fn naming_requests_and_pushes() {
    let n = node(&[]);
    let mut sub = Client::connect(&n).await;
    sub.setup(false).await;
    let subscribing = Instant::now();
    let (ty, b) = sub
        .call(
            "SubscribeServiceRequest",
            json!({"namespace": "", "serviceName": "orders", "groupName": "DEFAULT_GROUP", "subscribe": true, "clusters": ""}),
        )
        .await;
    assert_eq!(ty, "SubscribeServiceResponse");
    assert_eq!(b["serviceInfo"]["name"], "orders");
    assert_eq!(b["serviceInfo"]["groupName"], "DEFAULT_GROUP");
    assert_eq!(hosts(&b["serviceInfo"]).len(), 0);
    let reply_ref_time = b["serviceInfo"]["lastRefTime"].as_i64().expect("lastRefTime");

    let mut publ = Client::connect(&n).await;
    publ.setup(false).await;
    let batch = json!({
        "namespace": "public", "serviceName": "orders", "groupName": "DEFAULT_GROUP", "type": "batchRegisterInstance",
        "instances": [
            {"ip": "10.0.0.1", "port": 80, "clusterName": "A", "ephemeral": true},
            {"ip": "10.0.0.2", "port": 80, "clusterName": "B", "ephemeral": true, "weight": 3.0},
            {"ip": "10.0.0.3", "port": 80, "clusterName": "A", "ephemeral": true, "enabled": false},
        ],
    });
    let (ty, b) = publ.call("BatchInstanceRequest", batch).await;
    assert_eq!((ty.as_str(), b["type"].as_str()), ("BatchInstanceResponse", Some("batchRegisterInstance")));
    let push = sub.expect_push("NotifySubscriberRequest", Duration::from_secs(2)).await.expect("push");
    // A change right after subscribing reaches the new subscriber only after the settle window,
    // so the push can never overtake the subscribe reply in a client; it is also newer.
    let after = subscribing.elapsed();
    assert!(after >= Duration::from_millis(500), "push {after:?} after subscribing, inside the settle window");
    let push_ref_time = push["serviceInfo"]["lastRefTime"].as_i64().expect("lastRefTime");
    assert!(push_ref_time > reply_ref_time, "push must be newer than the subscribe reply");
    let mut got = hosts(&push["serviceInfo"]);
    got.sort();
    assert_eq!(got, vec!["10.0.0.1:80", "10.0.0.2:80"], "disabled instances are not pushed");
    assert_eq!(push["serviceInfo"]["hosts"][0]["instanceId"], "10.0.0.1#80#A#DEFAULT_GROUP@@orders");
    assert_eq!(push["serviceInfo"]["hosts"][0]["serviceName"], "DEFAULT_GROUP@@orders");

    // "" and "public" are one namespace; cluster filter; another namespace is separate.
    let (_, q) = sub
        .call(
            "ServiceQueryRequest",
            json!({"namespace": "", "serviceName": "orders", "groupName": "DEFAULT_GROUP", "cluster": "A", "healthyOnly": false}),
        )
        .await;
    assert_eq!(hosts(&q["serviceInfo"]), vec!["10.0.0.1:80"]);
    let (_, q) = sub
        .call("ServiceQueryRequest", json!({"namespace": "dev", "serviceName": "orders", "groupName": "DEFAULT_GROUP"}))
        .await;
    assert!(hosts(&q["serviceInfo"]).is_empty());
    let (ty, l) = sub
        .call(
            "ServiceListRequest",
            json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "pageNo": 1, "pageSize": 10}),
        )
        .await;
    assert_eq!(ty, "ServiceListResponse");
    assert_eq!(l["count"], 1);
    assert_eq!(l["serviceNames"], json!(["orders"]));

    // The publisher's connection dies (as with kill -9): removal is pushed within 1 s.
    let died = Instant::now();
    drop(publ);
    let push = sub.expect_push("NotifySubscriberRequest", Duration::from_secs(3)).await.expect("removal push");
    let took = died.elapsed();
    assert!(hosts(&push["serviceInfo"]).is_empty());
    assert!(took < Duration::from_secs(1), "removal push took {took:?}");
    eprintln!("dead connection → removal push in {took:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = reqwest::get(format!("{}/metrics", n.http_base())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cairn_naming_pushes_total{channel=\"grpc\",result=\"ok\"} 2"), "{metrics}");
}

#[tokio::test]
async fn silent_clients_are_detected_and_dropped() {
    let n = node(&["--client-idle-ms", "1000", "--push-timeout-ms", "1000"]);
    let mut watcher = Client::connect(&n).await;
    watcher.setup(false).await;
    watcher.call("SubscribeServiceRequest", json!({"serviceName": "quiet", "subscribe": true})).await;
    let mut silent = Client::connect(&n).await;
    silent.setup(false).await;
    let (ty, _) = silent.call("InstanceRequest", instance_req("quiet", "registerInstance", 9)).await;
    assert_eq!(ty, "InstanceResponse");
    let push = watcher.expect_push("NotifySubscriberRequest", Duration::from_secs(2)).await.unwrap();
    assert_eq!(hosts(&push["serviceInfo"]).len(), 1);
    // `silent` never reads its stream, so it never answers ClientDetectionRequest; the watcher
    // answers everything (expect_push acks) and must survive.
    let push = watcher.expect_push("NotifySubscriberRequest", Duration::from_secs(8)).await.expect("eviction push");
    assert!(hosts(&push["serviceInfo"]).is_empty());
    let (ty, b) = silent.call("HealthCheckRequest", json!({})).await;
    assert_eq!(
        (ty.as_str(), b["errorCode"].as_i64()),
        ("ErrorResponse", Some(301)),
        "evicted connection is unregistered"
    );
    let (ty, _) = watcher.call("HealthCheckRequest", json!({})).await;
    assert_eq!(ty, "HealthCheckResponse", "a client that answers detection stays registered");
    let metrics = reqwest::get(format!("{}/metrics", n.http_base())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cairn_client_detection_evictions_total 1"), "{metrics}");
}

#[tokio::test]
async fn graceful_shutdown_sends_connect_reset() {
    let mut n = node(&["--shutdown-grace-ms", "1000"]);
    let mut c = Client::connect(&n).await;
    c.setup(false).await;
    let pid = n.pid();
    let term = tokio::task::spawn_blocking(move || {
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    });
    let reset = c.expect_push("ConnectResetRequest", Duration::from_secs(3)).await;
    term.await.unwrap();
    assert!(reset.is_some(), "ConnectResetRequest expected on SIGTERM");
    let status = tokio::task::spawn_blocking(move || n.terminate(Duration::from_secs(5))).await.unwrap();
    assert!(status.is_some_and(|s| s.success()), "node exits cleanly: {status:?}");
}
