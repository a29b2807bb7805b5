//! `cairn-null-server`: the transport floor for `cairn-loadgen`.
//!
//! It speaks just enough of the Nacos gRPC protocol for the load generator (`ServerCheckRequest`
//! with a connection id, the bi-stream's `ConnectionSetupRequest`, `HealthCheckRequest`) and
//! answers every other unary request at once with a canned success of the matching type
//! (`ServiceQueryRequest` gets a fixed 10-host `serviceInfo` of the size Cairn answers). It keeps
//! no state and does no work beyond reading the `requestId` it echoes, so what the load generator measures against it is the best this
//! machine's HTTP/2 stack (tonic, hyper, h2, the kernel's loopback TCP) allows a Nacos server
//! written on it, with the load generator on the same cores.
//!
//! ```sh
//! ./target/release/cairn-null-server --bind 127.0.0.1 --http-port 18848 &
//! ./target/release/cairn-loadgen run --server 127.0.0.1:18848 --server-pid $! --label floor \
//!   --phases register,query,config-publish,config-get
//! ```
//! Push phases need real state and are not served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_proto::Any;
use cairn_proto::nacos::bi_request_stream_server::{BiRequestStream, BiRequestStreamServer};
use cairn_proto::nacos::request_server::{Request as RequestService, RequestServer};
use cairn_proto::nacos::{Metadata, Payload};
use clap::Parser;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status, Streaming};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "A Nacos gRPC server that does no work: the transport floor for cairn-loadgen")]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Nominal HTTP port P; gRPC is served on P+1000 (nothing is served on P).
    #[arg(long, default_value_t = 18848)]
    http_port: u16,
    /// gRPC port, instead of P+1000; 0 picks a free one. The bound address is printed on stdout.
    #[arg(long)]
    grpc_port: Option<u16>,
}

/// The canned answers.
struct Null {
    next_conn: AtomicU64,
    service_info: Arc<str>,
}

fn payload(ty: &str, body: String) -> Payload {
    Payload {
        metadata: Some(Metadata { r#type: ty.to_owned(), ..Default::default() }),
        body: Some(Any { type_url: String::new(), value: body.into_bytes() }),
    }
}

/// `"requestId":"…"` of a request body, if any (answers echo it, as Nacos does).
fn request_id(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct R {
        request_id: Option<String>,
    }
    serde_json::from_slice::<R>(body).ok().and_then(|r| r.request_id).unwrap_or_default()
}

/// A `serviceInfo` with ten hosts in the shape (and about the size) of Cairn's answers.
fn service_info() -> String {
    let hosts: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "{{\"instanceId\":\"10.0.0.{i}#8080#DEFAULT#DEFAULT_GROUP@@lg-svc-00001\",\"ip\":\"10.0.0.{i}\",\
                 \"port\":8080,\"weight\":1.0,\"healthy\":true,\"enabled\":true,\"ephemeral\":true,\
                 \"clusterName\":\"DEFAULT\",\"serviceName\":\"DEFAULT_GROUP@@lg-svc-00001\",\
                 \"metadata\":{{\"preserved.register.source\":\"SPRING_CLOUD\"}},\"instanceHeartBeatInterval\":5000,\
                 \"instanceHeartBeatTimeOut\":15000,\"ipDeleteTimeout\":30000,\"instanceIdGenerator\":\"simple\"}}"
            )
        })
        .collect();
    format!(
        "{{\"name\":\"lg-svc-00001\",\"groupName\":\"DEFAULT_GROUP\",\"clusters\":\"\",\"cacheMillis\":10000,\
         \"hosts\":[{}],\"lastRefTime\":1,\"checksum\":\"\",\"allIPs\":false,\"reachProtectionThreshold\":false,\
         \"valid\":true}}",
        hosts.join(",")
    )
}

impl Null {
    fn answer(&self, p: &Payload) -> Payload {
        let ty = p.metadata.as_ref().map_or("", |m| m.r#type.as_str());
        let body = p.body.as_ref().map_or(&[][..], |b| b.value.as_slice());
        let rid = request_id(body);
        let ok = format!("\"resultCode\":200,\"errorCode\":0,\"message\":null,\"requestId\":\"{rid}\"");
        match ty {
            "ServerCheckRequest" => {
                let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
                payload(
                    "ServerCheckResponse",
                    format!("{{{ok},\"connectionId\":\"null_{id}\",\"supportAbilityNegotiation\":false}}"),
                )
            }
            "ServiceQueryRequest" => {
                payload("QueryServiceResponse", format!("{{{ok},\"serviceInfo\":{}}}", self.service_info))
            }
            "ConfigQueryRequest" => payload(
                "ConfigQueryResponse",
                format!(
                    "{{{ok},\"content\":\"{}\",\"md5\":\"0123456789abcdef0123456789abcdef\",\"contentType\":\"text\",\
                     \"lastModified\":1,\"beta\":false,\"tag\":null,\"encryptedDataKey\":null}}",
                    "x".repeat(100)
                ),
            ),
            "InstanceRequest" | "BatchInstanceRequest" => payload(
                if ty == "InstanceRequest" { "InstanceResponse" } else { "BatchInstanceResponse" },
                format!("{{{ok},\"type\":\"registerInstance\"}}"),
            ),
            _ => match ty.strip_suffix("Request") {
                Some(base) if !base.is_empty() => payload(&format!("{base}Response"), format!("{{{ok}}}")),
                _ => payload(
                    "ErrorResponse",
                    format!(
                        "{{\"resultCode\":500,\"errorCode\":302,\"message\":\"unknown payload type {ty:?}\",\"requestId\":\"{rid}\"}}"
                    ),
                ),
            },
        }
    }
}

/// The unary service.
struct Unary(Arc<Null>);

#[tonic::async_trait]
impl RequestService for Unary {
    async fn request(&self, req: tonic::Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(self.0.answer(req.get_ref())))
    }
}

/// The bi-stream: reads (and drops) whatever the client sends, never pushes.
struct Bi;

#[tonic::async_trait]
#[allow(non_camel_case_types)]
impl BiRequestStream for Bi {
    type requestBiStreamStream = ReceiverStream<Result<Payload, Status>>;

    async fn request_bi_stream(
        &self,
        req: tonic::Request<Streaming<Payload>>,
    ) -> Result<Response<Self::requestBiStreamStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut inbound = req.into_inner();
        tokio::spawn(async move {
            while let Ok(Some(_)) = inbound.message().await {}
            drop(tx);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let port = match args.grpc_port {
        Some(p) => p,
        None => args
            .http_port
            .checked_add(1000)
            .ok_or_else(|| anyhow::anyhow!("--http-port {} leaves no room for P+1000", args.http_port))?,
    };
    let null = Arc::new(Null { next_conn: AtomicU64::new(1), service_info: service_info().into() });
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port)).await?;
    println!("cairn-null-server: gRPC on {}", listener.local_addr()?);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(RequestServer::new(Unary(null)))
        .add_service(BiRequestStreamServer::new(Bi))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
