//! One Nacos SDK connection, as a real client opens it: one TCP/HTTP/2 transport (a bare hyper
//! HTTP/2 client connection: no tonic `Channel`, so no `Buffer` task hop or reconnect layer per
//! request), the bi-stream with `ConnectionSetupRequest` as first frame, `ServerCheckRequest`
//! to learn the connection id, then unary requests. Every server→client request on the stream
//! (`NotifySubscriberRequest`, `ClientDetectionRequest`, `ConnectResetRequest`, …) is answered on
//! the stream with the matching response type and the same `requestId`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_proto::Any;
use cairn_proto::nacos::bi_request_stream_client::BiRequestStreamClient;
use cairn_proto::nacos::request_client::RequestClient;
use cairn_proto::nacos::{Metadata, Payload};
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http2::SendRequest;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// Setup frame: like a Java 2.x client without `abilityTable` (so no `SetupAckRequest`).
const SETUP: &[u8] = br#"{"headers":{},"clientVersion":"Nacos-Java-Client:v2.5.1","tenant":"","labels":{"source":"sdk","module":"naming","AppName":"cairn-loadgen"},"module":"internal"}"#;
const SERVER_CHECK: &[u8] = br#"{"headers":{},"module":"internal"}"#;
const HEALTH_CHECK: &[u8] = br#"{"headers":{},"module":"internal"}"#;

/// Builds a payload of Java type `ty` with a JSON body.
pub fn payload(ty: &str, body: Vec<u8>) -> Payload {
    Payload {
        metadata: Some(Metadata { r#type: ty.to_owned(), client_ip: "127.0.0.1".to_owned(), headers: HashMap::new() }),
        body: Some(Any { type_url: String::new(), value: body }),
    }
}

/// `metadata.type` of a payload.
pub fn type_of(p: &Payload) -> &str {
    p.metadata.as_ref().map(|m| m.r#type.as_str()).unwrap_or("")
}

/// Body bytes of a payload.
pub fn body_of(p: &Payload) -> &[u8] {
    p.body.as_ref().map(|b| b.value.as_slice()).unwrap_or(&[])
}

/// The response base every Nacos response carries.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseBase {
    /// 200 = success.
    pub result_code: i64,
    /// Nacos error code.
    pub error_code: i64,
    /// Message.
    pub message: Option<String>,
}

/// A failed call: what the server (or transport) said.
#[derive(Debug, Clone)]
pub struct CallError {
    /// `ErrorResponse`, a response type with resultCode≠200, `grpc-status`, or `timeout`.
    pub kind: String,
    /// Nacos error code, gRPC status code, or 0.
    pub code: i64,
    /// Message.
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} code={} message={:?}", self.kind, self.code, self.message)
    }
}

/// `"resultCode":200` (not followed by another digit) somewhere in `s`.
fn has_ok_code(s: &[u8]) -> bool {
    const PAT: &[u8] = b"\"resultCode\":200";
    s.windows(PAT.len()).enumerate().any(|(i, w)| w == PAT && !s.get(i + PAT.len()).is_some_and(u8::is_ascii_digit))
}

/// Checks a small response: the success path is a byte search for `"resultCode":200` (plus the
/// `metadata.type`); the body is parsed only to report a failure.
pub fn check_small(p: &Payload) -> Result<(), CallError> {
    let ty = type_of(p);
    if ty != "ErrorResponse" && has_ok_code(body_of(p)) {
        return Ok(());
    }
    check_parsed(ty, body_of(p))
}

/// Parses the response base and reports what went wrong (or Ok when resultCode is 200).
fn check_parsed(ty: &str, body: &[u8]) -> Result<(), CallError> {
    let base: ResponseBase = serde_json::from_slice(body).unwrap_or_default();
    if ty == "ErrorResponse" || base.result_code != 200 {
        return Err(CallError {
            kind: ty.to_owned(),
            code: base.error_code,
            message: base.message.unwrap_or_default(),
        });
    }
    Ok(())
}

/// Checks a possibly large response without parsing the whole body: the base fields are
/// top-level members, so `"resultCode":200` is found near the start or the end.
pub fn check_large(p: &Payload) -> Result<(), CallError> {
    let ty = type_of(p);
    let body = body_of(p);
    if ty != "ErrorResponse" && body.len() > 2048 {
        if has_ok_code(&body[..512]) || has_ok_code(&body[body.len() - 512..]) {
            return Ok(());
        }
        return check_parsed(ty, body);
    }
    check_small(p)
}

/// What a subscriber saw in one `NotifySubscriberRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// No hosts.
    Empty,
    /// Hosts; the highest port among them.
    Port(i64),
}

/// One push arrival.
#[derive(Debug, Clone, Copy)]
pub struct PushEvent {
    /// Subscriber index.
    pub sub: usize,
    /// Arrival time (taken before parsing).
    pub at: Instant,
    /// What the push said.
    pub state: PushState,
}

/// Collects pushes of one service (`NotifySubscriberRequest`) or, with `config`, the
/// `ConfigChangeNotifyRequest`s of one dataId (recorded as [`PushState::Empty`]).
pub struct PushSink {
    /// Bare service name (or dataId, with `config`) to match.
    pub service: String,
    /// Match `ConfigChangeNotifyRequest` by dataId instead of naming pushes.
    pub config: bool,
    /// Arrivals.
    pub events: Mutex<Vec<PushEvent>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerRequest {
    request_id: Option<String>,
    service_info: Option<PushInfo>,
    data_id: Option<String>,
}

#[derive(Deserialize)]
struct PushInfo {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    hosts: Option<Vec<PushHost>>,
}

#[derive(Deserialize)]
struct PushHost {
    #[serde(default)]
    port: i64,
}

/// Counters shared by all connections of a run.
#[derive(Default)]
pub struct Shared {
    /// Server→client requests seen, by type.
    pub server_requests: Mutex<BTreeMap<String, u64>>,
    /// Responses written back on the stream.
    pub acks_sent: AtomicU64,
    /// Streams that ended while the connection was still in use.
    pub streams_lost: AtomicU64,
    /// Last stream error seen.
    pub last_stream_error: Mutex<Option<String>>,
    /// HealthCheck probes answered 301 (setup not processed yet) while connecting.
    pub setup_retries: AtomicU64,
}

/// One client connection.
pub struct Conn {
    /// Index within its group.
    pub idx: usize,
    /// Connection id reported by ServerCheck (empty when the server sent none).
    pub conn_id: String,
    client: RequestClient<H2>,
    closing: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    _stream_tx: mpsc::Sender<Payload>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        self.reader.abort();
    }
}

/// Where to connect: `host:port` and the `http://host:port` origin put on every request.
#[derive(Clone, Debug)]
pub struct Endpoint {
    addr: String,
    origin: http::Uri,
}

/// The endpoint for `host:port`; each [`Conn::open`] opens a new TCP connection.
pub fn endpoint(host: &str, port: u16) -> anyhow::Result<Endpoint> {
    let origin = format!("http://{host}:{port}").parse().context("endpoint URI")?;
    Ok(Endpoint { addr: format!("{host}:{port}"), origin })
}

/// Request body sent on the HTTP/2 connection: the bi-stream's streaming body, or a unary
/// request's encoded message taken up front, so hyper sends it as one DATA frame carrying
/// END_STREAM (fewer frames and socket writes than piping tonic's body).
pub enum ReqBody {
    /// A streaming body, polled by hyper.
    Stream(tonic::body::Body),
    /// Data already taken from the body, then whatever the body still has (normally nothing).
    Ready(Option<Bytes>, Option<tonic::body::Body>),
}

impl hyper::body::Body for ReqBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        match self.get_mut() {
            ReqBody::Stream(b) => Pin::new(b).poll_frame(cx),
            ReqBody::Ready(head, rest) => match (head.take(), rest) {
                (Some(d), _) => Poll::Ready(Some(Ok(Frame::data(d)))),
                (None, Some(b)) => Pin::new(b).poll_frame(cx),
                (None, None) => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Stream(b) => b.is_end_stream(),
            ReqBody::Ready(head, rest) => head.is_none() && rest.as_ref().is_none_or(|b| b.is_end_stream()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Stream(b) => b.size_hint(),
            ReqBody::Ready(head, None) => SizeHint::with_exact(head.as_ref().map_or(0, |d| d.len() as u64)),
            ReqBody::Ready(..) => SizeHint::default(),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type H2Future = Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, BoxError>> + Send>>;

/// A bare HTTP/2 client connection as a tower service: `poll_ready` and `call` go straight to
/// hyper's `SendRequest` (cheap to clone; all clones multiplex streams over one connection).
/// With `unary`, the request body is taken at once (see [`ReqBody::Ready`]).
#[derive(Clone)]
pub struct H2 {
    send: SendRequest<ReqBody>,
    unary: bool,
}

impl tower::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = H2Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.send.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> H2Future {
        let (parts, body) = req.into_parts();
        let body = if self.unary {
            // tonic encodes a unary message as soon as the body is polled.
            let mut cx = Context::from_waker(Waker::noop());
            let mut head: Option<Bytes> = None;
            let mut rest = Some(body);
            while let Some(b) = rest.as_mut() {
                match Pin::new(b).poll_frame(&mut cx) {
                    Poll::Ready(None) => rest = None,
                    Poll::Ready(Some(Ok(f))) => match f.into_data() {
                        Ok(d) => {
                            head = Some(match head.take() {
                                None => d,
                                Some(h) => [h, d].concat().into(),
                            })
                        }
                        // Trailers: not sent by gRPC clients; leave them to the body.
                        Err(_) => break,
                    },
                    Poll::Ready(Some(Err(s))) => return Box::pin(std::future::ready(Err(s.into()))),
                    Poll::Pending => break,
                }
            }
            ReqBody::Ready(head, rest)
        } else {
            ReqBody::Stream(body)
        };
        let fut = self.send.send_request(http::Request::from_parts(parts, body));
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// Opens the TCP connection (`TCP_NODELAY`), does the HTTP/2 handshake and spawns the
/// connection driver; the driver ends when every handle and stream is gone.
async fn connect_h2(ep: &Endpoint) -> anyhow::Result<H2> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&ep.addr))
        .await
        .map_err(|_| anyhow::anyhow!("TCP connect to {}: timed out", ep.addr))?
        .with_context(|| format!("TCP connect to {}", ep.addr))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let (send, conn) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(H2 { send, unary: false })
}

impl Conn {
    /// Opens a connection and waits until the server has registered it (a `HealthCheckRequest`
    /// no longer answers 301).
    pub async fn open(
        ep: &Endpoint,
        idx: usize,
        shared: Arc<Shared>,
        sink: Option<Arc<PushSink>>,
    ) -> anyhow::Result<Conn> {
        let h2 = connect_h2(ep).await?;
        let (tx, rx) = mpsc::channel::<Payload>(64);
        tx.send(payload("ConnectionSetupRequest", SETUP.to_vec())).await.ok();
        let mut bi = BiRequestStreamClient::with_origin(h2.clone(), ep.origin.clone());
        let h2 = H2 { unary: true, ..h2 };
        let mut inbound = bi
            .request_bi_stream(ReceiverStream::new(rx))
            .await
            .map_err(|s| anyhow::anyhow!("opening the bi-stream: {} {}", s.code(), s.message()))?
            .into_inner();
        let closing = Arc::new(AtomicBool::new(false));
        let reader = {
            let tx = tx.clone();
            let closing = closing.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let msg = inbound.message().await;
                    let p = match msg {
                        Ok(Some(p)) => p,
                        Ok(None) | Err(_) => {
                            if !closing.load(Ordering::Acquire) {
                                shared.streams_lost.fetch_add(1, Ordering::Relaxed);
                                *shared.last_stream_error.lock() = Some(match msg {
                                    Err(s) => format!("conn {idx}: stream error {} {}", s.code(), s.message()),
                                    _ => format!("conn {idx}: stream closed by server"),
                                });
                            }
                            return;
                        }
                    };
                    let at = Instant::now();
                    handle_server_request(idx, at, &p, &tx, &shared, sink.as_deref()).await;
                }
            })
        };
        let mut conn = Conn {
            idx,
            conn_id: String::new(),
            client: RequestClient::with_origin(h2, ep.origin.clone()),
            closing,
            reader,
            _stream_tx: tx,
        };
        let check = conn
            .call("ServerCheckRequest", SERVER_CHECK.to_vec(), Duration::from_secs(3))
            .await
            .map_err(|e| anyhow::anyhow!("ServerCheckRequest: {e}"))?;
        check_small(&check).map_err(|e| anyhow::anyhow!("ServerCheckRequest: {e}"))?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Check {
            connection_id: Option<String>,
        }
        conn.conn_id =
            serde_json::from_slice::<Check>(body_of(&check)).ok().and_then(|c| c.connection_id).unwrap_or_default();
        // The setup frame is processed asynchronously; requests before that get 301.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = conn.call("HealthCheckRequest", HEALTH_CHECK.to_vec(), Duration::from_secs(3)).await;
            match r.as_ref().map(check_small) {
                Ok(Ok(())) => break,
                Ok(Err(e)) if e.code == 301 && Instant::now() < deadline => {
                    shared.setup_retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(Err(e)) => bail!("HealthCheckRequest after setup: {e}"),
                Err(e) => bail!("HealthCheckRequest after setup: {e}"),
            }
        }
        Ok(conn)
    }

    /// One unary request with a deadline.
    pub async fn call(&self, ty: &str, body: Vec<u8>, timeout: Duration) -> Result<Payload, CallError> {
        let mut c = self.client.clone();
        match tokio::time::timeout(timeout, c.request(payload(ty, body))).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => {
                Err(CallError { kind: "grpc-status".into(), code: s.code() as i64, message: s.message().to_owned() })
            }
            Err(_) => Err(CallError { kind: "timeout".into(), code: 0, message: format!("no answer in {timeout:?}") }),
        }
    }
}

async fn handle_server_request(
    idx: usize,
    at: Instant,
    p: &Payload,
    tx: &mpsc::Sender<Payload>,
    shared: &Shared,
    sink: Option<&PushSink>,
) {
    let ty = type_of(p);
    let Some(base) = ty.strip_suffix("Request") else { return };
    {
        let mut m = shared.server_requests.lock();
        match m.get_mut(ty) {
            Some(n) => *n += 1,
            None => {
                m.insert(ty.to_owned(), 1);
            }
        }
    }
    let Ok(req) = serde_json::from_slice::<ServerRequest>(body_of(p)) else { return };
    if let (true, Some(sink), Some(data_id)) = (ty == "ConfigChangeNotifyRequest", sink, req.data_id.as_deref())
        && sink.config
        && data_id == sink.service
    {
        if std::env::var_os("CAIRN_LOADGEN_TRACE_PUSH").is_some() {
            eprintln!("config notify conn={idx} at={at:?} body={}", String::from_utf8_lossy(body_of(p)));
        }
        sink.events.lock().push(PushEvent { sub: idx, at, state: PushState::Empty });
    }
    if let (true, Some(sink), Some(info)) = (ty == "NotifySubscriberRequest", sink, req.service_info.as_ref()) {
        let name = info.name.as_deref().unwrap_or("");
        // Bare name from Nacos-style servers; tolerate `group@@name` too.
        if name == sink.service || name.strip_suffix(sink.service.as_str()).is_some_and(|g| g.ends_with("@@")) {
            let hosts = info.hosts.as_deref().unwrap_or(&[]);
            let state = match hosts.iter().map(|h| h.port).max() {
                Some(p) => PushState::Port(p),
                None => PushState::Empty,
            };
            if std::env::var_os("CAIRN_LOADGEN_TRACE_PUSH").is_some() {
                eprintln!("push conn={idx} at={at:?} state={state:?} body={}", String::from_utf8_lossy(body_of(p)));
            }
            sink.events.lock().push(PushEvent { sub: idx, at, state });
        }
    }
    // SetupAckRequest carries no requestId and expects no answer.
    let Some(rid) = req.request_id else { return };
    let body = format!("{{\"resultCode\":200,\"errorCode\":0,\"requestId\":\"{rid}\",\"success\":true}}");
    if tx.send(payload(&format!("{base}Response"), body.into_bytes())).await.is_ok() {
        shared.acks_sent.fetch_add(1, Ordering::Relaxed);
    }
}
