//! The client gRPC services (`/Request/request`, `/BiRequestStream/requestBiStream`): connection
//! lifecycle here, everything else handed to a [`Dispatch`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cairn_proto::nacos::Payload;
use cairn_proto::nacos::bi_request_stream_server::BiRequestStream;
use cairn_proto::nacos::request_server::Request as RequestService;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Response, Status, Streaming};

use crate::metrics::Metrics;
use crate::remote::conn::{ConnMeta, Connections, STREAM_QUEUE};
use crate::remote::io::ConnInfo;
use crate::remote::wire::{self, ResponseBase};

/// What a handler knows about the request's connection.
#[derive(Clone, Debug)]
pub struct RequestCtx {
    /// Connection number.
    pub conn: u64,
    /// Connection id.
    pub conn_id: Arc<str>,
    /// Peer address.
    pub remote: SocketAddr,
}

/// Handles requests past the connection lifecycle (naming, later config).
pub trait Dispatch: Send + Sync + 'static {
    /// Answers one request of Java type `ty` with JSON `body`; never panics on input.
    fn handle(&self, ctx: &RequestCtx, ty: &str, body: &[u8]) -> impl Future<Output = Payload> + Send;

    /// A bounded metric label for `ty` (unknown types map to `"unknown"`).
    fn label(&self, ty: &str) -> &'static str;
}

/// The gRPC service implementation.
pub struct GrpcServer<D> {
    conns: Arc<Connections>,
    dispatch: Arc<D>,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
    persistent_by_grpc: bool,
}

impl<D> GrpcServer<D> {
    /// Announce `supportPersistentInstanceByGrpc` in `SetupAckRequest`.
    pub fn with_persistent_by_grpc(mut self, on: bool) -> Self {
        self.persistent_by_grpc = on;
        self
    }

    /// Creates the service. `ready` false ⇒ ServerCheck answers 300 (starting / stopping).
    pub fn new(
        conns: Arc<Connections>,
        dispatch: Arc<D>,
        metrics: Metrics,
        ready: Arc<AtomicBool>,
        shutdown: CancellationToken,
    ) -> Self {
        GrpcServer { conns, dispatch, metrics, ready, shutdown, persistent_by_grpc: false }
    }
}

impl<D> Clone for GrpcServer<D> {
    fn clone(&self) -> Self {
        GrpcServer {
            conns: self.conns.clone(),
            dispatch: self.dispatch.clone(),
            metrics: self.metrics.clone(),
            ready: self.ready.clone(),
            shutdown: self.shutdown.clone(),
            persistent_by_grpc: self.persistent_by_grpc,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerCheckResponse<'a> {
    #[serde(flatten)]
    base: ResponseBase<'a>,
    connection_id: &'a str,
    support_ability_negotiation: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ConnectionSetupRequest {
    client_version: Option<String>,
    tenant: Option<String>,
    labels: Option<std::collections::HashMap<String, String>>,
    ability_table: Option<serde_json::Value>,
}

/// The `SetupAckRequest` body: persistent instances over gRPC are announced only when the node
/// can take them (Raft runs); otherwise Java clients send them over HTTP v1.
fn setup_ack(persistent_by_grpc: bool) -> Vec<u8> {
    format!(r#"{{"headers":{{}},"abilityTable":{{"supportPersistentInstanceByGrpc":{persistent_by_grpc}}},"module":"internal"}}"#)
        .into_bytes()
}

impl<D: Dispatch> GrpcServer<D> {
    async fn unary(&self, info: Option<ConnInfo>, p: &Payload) -> Payload {
        let ty = wire::type_of(p);
        let body = wire::body_of(p);
        let rid = wire::request_id_of(body);
        let rid = rid.as_deref();
        let Some(info) = info else {
            return wire::error_response(500, "no transport information", rid);
        };
        let Some(conn) = self.conns.get(info.num) else {
            return wire::error_response(301, "Connection is unregistered.", rid);
        };
        if ty == "ServerCheckRequest" {
            if !self.ready.load(Ordering::Acquire) {
                return wire::error_response(300, "server is not ready (starting or stopping)", rid);
            }
            return wire::json_payload(
                "ServerCheckResponse",
                &ServerCheckResponse {
                    base: ResponseBase::ok(rid),
                    connection_id: &conn.id,
                    support_ability_negotiation: true,
                },
            );
        }
        if !conn.is_registered() {
            return wire::error_response(301, "Connection is unregistered.", rid);
        }
        self.conns.touch(&conn);
        if ty == "HealthCheckRequest" {
            return wire::empty_ok("HealthCheckResponse", rid);
        }
        let ctx = RequestCtx { conn: conn.num, conn_id: conn.id.clone(), remote: conn.remote };
        self.dispatch.handle(&ctx, ty, body).await
    }
}

fn metric_label<D: Dispatch>(d: &D, ty: &str) -> &'static str {
    match ty {
        "ServerCheckRequest" => "ServerCheckRequest",
        "HealthCheckRequest" => "HealthCheckRequest",
        _ => d.label(ty),
    }
}

#[tonic::async_trait]
impl<D: Dispatch> RequestService for GrpcServer<D> {
    async fn request(&self, req: tonic::Request<Payload>) -> Result<Response<Payload>, Status> {
        let start = Instant::now();
        let info = req.extensions().get::<ConnInfo>().cloned();
        let p = req.into_inner();
        let resp = self.unary(info, &p).await;
        let ok = wire::type_of(&resp) != "ErrorResponse";
        let label = metric_label(&*self.dispatch, wire::type_of(&p));
        self.metrics.observe_request("grpc", label, ok, start.elapsed().as_secs_f64());
        Ok(Response::new(resp))
    }
}

#[tonic::async_trait]
#[allow(non_camel_case_types)]
impl<D: Dispatch> BiRequestStream for GrpcServer<D> {
    /// Queued server→client messages. They are boxed: a tokio channel allocates its slots 32 at
    /// a time when created, so small slots keep an idle connection's queue small.
    type requestBiStreamStream =
        futures::stream::Map<ReceiverStream<Box<Payload>>, fn(Box<Payload>) -> Result<Payload, Status>>;

    async fn request_bi_stream(
        &self,
        req: tonic::Request<Streaming<Payload>>,
    ) -> Result<Response<Self::requestBiStreamStream>, Status> {
        let info =
            req.extensions().get::<ConnInfo>().cloned().ok_or_else(|| Status::internal("no transport information"))?;
        let conn = self.conns.get(info.num).ok_or_else(|| Status::unavailable("connection closed"))?;
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let mut inbound = req.into_inner();
        let conns = self.conns.clone();
        let shutdown = self.shutdown.clone();
        let stopped = conn.stopped();
        let metrics = self.metrics.clone();
        let ack = setup_ack(self.persistent_by_grpc);
        // The reader lives as long as the stream: it ends on client close, on unregister
        // (detection failure) or on node shutdown.
        tokio::spawn(async move {
            let mut setup_tx = Some(tx);
            loop {
                let msg = tokio::select! {
                    m = inbound.message() => m,
                    _ = stopped.cancelled() => break,
                    _ = shutdown.cancelled() => break,
                };
                let p = match msg {
                    Ok(Some(p)) => p,
                    Ok(None) | Err(_) => break,
                };
                let start = Instant::now();
                let ty = wire::type_of(&p);
                if ty == "ConnectionSetupRequest" {
                    let Some(tx) = setup_tx.take() else { continue };
                    let setup: ConnectionSetupRequest = serde_json::from_slice(wire::body_of(&p)).unwrap_or_default();
                    let labels = setup.labels.unwrap_or_default();
                    let meta = ConnMeta {
                        client_version: setup.client_version.unwrap_or_default(),
                        app_name: labels.get("AppName").cloned().unwrap_or_default(),
                        module: labels.get("module").cloned().unwrap_or_default(),
                        namespace: setup.tenant.unwrap_or_default(),
                    };
                    tracing::debug!(conn = %info.num, version = %meta.client_version, "connection setup");
                    conns.register(info.num, meta, tx);
                    if setup.ability_table.as_ref().is_some_and(|v| !v.is_null()) {
                        conns.send_oneway(info.num, wire::payload("SetupAckRequest", ack.clone()));
                    }
                    metrics.observe_request("grpc", "ConnectionSetupRequest", true, start.elapsed().as_secs_f64());
                } else if ty.ends_with("Response") {
                    if let Some(rid) = wire::request_id_of(wire::body_of(&p)) {
                        conns.acknowledge(info.num, &rid);
                    }
                } else {
                    tracing::debug!(conn = %info.num, %ty, "ignoring unexpected request on the bi-stream");
                }
            }
            conns.unregister(info.num);
        });
        let unbox: fn(Box<Payload>) -> Result<Payload, Status> = |p| Ok(*p);
        Ok(Response::new(ReceiverStream::new(rx).map(unbox)))
    }
}
