//! Assembles a node: binds the listeners, wires registry, transport, handlers and background
//! workers, and runs them until shutdown. Every component runs as a task in one [`JoinSet`]
//! and stops on one [`CancellationToken`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cairn_proto::nacos::bi_request_stream_server::BiRequestStreamServer;
use cairn_proto::nacos::request_server::RequestServer;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::config_push::ConfigPusher;
use crate::api::grpc::{ConfigGrpc, GrpcApi, NamingGrpc};
use crate::api::http::{self, HttpState};
use crate::api::push::Pusher;
use crate::api::udp::UdpPush;
use crate::config::Config;
use crate::configs::service::ConfigService;
use crate::distro::Distro;
use crate::error::{Error, Result};
use crate::membership::{MemberState, MembersSpec, Membership};
use crate::metrics::Metrics;
use crate::naming::health::{self, HealthSettings, Responsible};
use crate::naming::{ClientId, DirtySet, Registry, Settings};
use crate::persist::Persist;
use crate::remote::detect::{self, DetectSettings};
use crate::remote::io::TrackedIo;
use crate::remote::{Connections, GrpcServer};
use crate::replicate::Replicator;

/// A running node.
pub struct Node {
    cancel: CancellationToken,
    tasks: JoinSet<Result<()>>,
    ready: Arc<AtomicBool>,
    conns: Arc<Connections>,
    raft: Arc<cairn_raft::RaftNode>,
    grace: Duration,
    /// Bound HTTP address.
    pub http_addr: std::net::SocketAddr,
    /// Bound client gRPC address.
    pub grpc_addr: std::net::SocketAddr,
}

async fn bind(what: &'static str, addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { what, addr, source })
}

impl Node {
    /// Binds every port and starts serving. Readiness turns on once all listeners are bound.
    pub async fn start(config: Config, metrics: Metrics) -> Result<Node> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| Error::DataDir { path: config.data_dir.display().to_string(), source })?;
        let http_listener = bind("HTTP", config.http_addr()).await?;
        let grpc_listener = bind("client gRPC", config.client_grpc_addr()).await?;
        let http_addr = http_listener.local_addr().map_err(|source| Error::Bind {
            what: "HTTP",
            addr: config.http_addr(),
            source,
        })?;
        let grpc_addr = grpc_listener.local_addr().map_err(|source| Error::Bind {
            what: "client gRPC",
            addr: config.client_grpc_addr(),
            source,
        })?;

        let config = Arc::new(config);
        let cancel = CancellationToken::new();
        let ready = Arc::new(AtomicBool::new(false));
        let settings = Settings {
            beat_timeout: Config::ms(config.beat_timeout_ms),
            delete_timeout: Config::ms(config.ip_delete_timeout_ms),
            empty_service_clean: Config::ms(config.empty_service_clean_ms),
        };
        let registry = Arc::new(Registry::new(settings, metrics.clone(), Arc::new(DirtySet::default())));
        let membership = Membership::start(&config, cancel.clone()).await?;
        // Ephemeral data of a one-member cluster has nobody to go to: no Distro at all.
        let distro = match membership.spec() {
            MembersSpec::Standalone => None,
            _ => Some(Distro::new(registry.clone(), membership.clone(), config.distro_settings(), &metrics)?),
        };
        let conns = Arc::new(Connections::new(metrics.clone()));
        {
            let registry = registry.clone();
            conns.on_unregister(move |num| registry.client_gone(&ClientId::Conn(num)));
        }
        let udp = Arc::new(
            UdpPush::bind(config.bind, Config::ms(config.udp_subscriber_ttl_ms), metrics.clone(), registry.clone())
                .await
                .map_err(|source| Error::Bind { what: "UDP push", addr: config.http_addr(), source })?,
        );

        let mut tasks = JoinSet::new();

        // Persistent data: one Raft path, standalone being a one-member cluster.
        let persist = Persist::start(&config, registry.clone(), &metrics).await?;
        let raft_listener = bind("cluster gRPC", config.cluster_grpc_addr()).await?;
        let raft_service = cairn_raft::raft_service_with_shutdown(&persist.raft, cancel.clone());
        let distro_service = distro.as_ref().map(|d| d.service().into_service());
        if let Some(d) = &distro {
            let (d, c) = (d.clone(), cancel.clone());
            tasks.spawn(async move {
                d.run(c).await;
                Ok(())
            });
        }
        let c = cancel.clone();
        tasks.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(raft_listener).with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .add_service(raft_service)
                .add_optional_service(distro_service)
                .serve_with_incoming_shutdown(incoming, c.cancelled_owned())
                .await
                .map_err(|e| Error::Serve { what: "cluster gRPC", message: e.to_string() })
        });
        let replicator: Arc<dyn Replicator> = persist.replicator.clone();
        let (notify_tx, notify_rx) = tokio::sync::mpsc::unbounded_channel();
        let config_service = Arc::new(ConfigService::new(
            persist.configs.clone(),
            persist.replicator.clone(),
            replicator.clone(),
            config.max_body_bytes,
            notify_tx,
        ));
        persist.app.attach(&config_service);
        {
            let cs = config_service.clone();
            conns.on_unregister(move |num| cs.listeners().conn_gone(num));
            let (cs, m) = (config_service.clone(), metrics.clone());
            metrics.on_scrape(move || {
                m.configs.set(cs.store().count() as i64);
                m.long_polls.set(cs.listeners().poll_count() as i64);
                m.config_listeners.set(cs.listeners().grpc_count() as i64);
            });
        }
        let pusher = ConfigPusher {
            service: config_service.clone(),
            conns: conns.clone(),
            metrics: metrics.clone(),
            timeout: Config::ms(config.push_timeout_ms),
        };
        let c = cancel.clone();
        tasks.spawn(async move {
            pusher.run(notify_rx, c).await;
            Ok(())
        });
        let (c, r, rep) = (cancel.clone(), registry.clone(), replicator.clone());
        let health_settings = HealthSettings {
            interval: Config::ms(config.health_check_interval_ms.max(50)),
            ..HealthSettings::default()
        };
        let mb = membership.clone();
        let responsible: Responsible = Arc::new(move |k| {
            // Members known to be DOWN check nothing; their services move to live members.
            let members: Vec<String> =
                mb.current().addresses().into_iter().filter(|m| mb.state(m) != MemberState::Down).collect();
            health::responsible_member(k, &members).is_none_or(|m| m == mb.self_address())
        });
        tasks.spawn(async move {
            health::run(r, rep, responsible, health_settings, c).await;
            Ok(())
        });

        let svc = GrpcServer::new(
            conns.clone(),
            Arc::new(GrpcApi::new(
                NamingGrpc::new(registry.clone(), replicator.clone()),
                ConfigGrpc::new(config_service.clone()),
            )),
            metrics.clone(),
            ready.clone(),
            cancel.clone(),
        )
        .with_persistent_by_grpc(true);
        let max = config.max_body_bytes;
        let grpc = tonic::transport::Server::builder()
            .add_service(RequestServer::new(svc.clone()).max_decoding_message_size(max))
            .add_service(BiRequestStreamServer::new(svc).max_decoding_message_size(max));
        let incoming = accept_stream(grpc_listener, conns.clone());
        let c = cancel.clone();
        tasks.spawn(async move {
            grpc.serve_with_incoming_shutdown(incoming, c.cancelled_owned())
                .await
                .map_err(|e| Error::Serve { what: "client gRPC", message: e.to_string() })
        });

        let state = HttpState {
            registry: registry.clone(),
            udp: udp.clone(),
            metrics: metrics.clone(),
            ready: ready.clone(),
            node_config: config.clone(),
            config: config_service.clone(),
            replicator: replicator.clone(),
            raft: persist.raft.clone(),
            membership: membership.clone(),
            forwarder: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| Error::Serve { what: "HTTP forwarding client", message: e.to_string() })?,
        };
        let router = http::router(state);
        let c = cancel.clone();
        tasks.spawn(async move {
            axum::serve(http_listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(c.cancelled_owned())
                .await
                .map_err(|e| Error::Serve { what: "HTTP", message: e.to_string() })
        });

        let pusher = Pusher {
            registry: registry.clone(),
            conns: conns.clone(),
            udp: udp.clone(),
            metrics: metrics.clone(),
            timeout: Config::ms(config.push_timeout_ms),
        };
        let c = cancel.clone();
        tasks.spawn(async move {
            pusher.run(c).await;
            Ok(())
        });
        let c = cancel.clone();
        tasks.spawn(async move {
            udp.run(c).await;
            Ok(())
        });
        let detect_settings =
            DetectSettings { idle: Config::ms(config.client_idle_ms), timeout: Config::ms(config.push_timeout_ms) };
        let (c, cn, m) = (cancel.clone(), conns.clone(), metrics.clone());
        tasks.spawn(async move {
            detect::run(cn, m, detect_settings, c).await;
            Ok(())
        });
        let (c, r) = (cancel.clone(), registry.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => r.sweep(Instant::now()),
                    _ = c.cancelled() => return Ok(()),
                }
            }
        });

        let raft = persist.raft.clone();
        // Ready once the cluster is formed and has a leader: writes can be taken.
        let (r, cfg, c, rdy) = (raft.clone(), config.clone(), cancel.clone(), ready.clone());
        let (d, mb) = (distro.clone(), membership.clone());
        tasks.spawn(async move {
            // Ready = caught up with Raft and holding every peer's ephemeral data.
            let load = async {
                if let Some(d) = &d {
                    d.load_snapshot(&c).await;
                }
            };
            let (persisted, ()) = tokio::join!(Persist::bootstrap(r, cfg, mb, c.clone()), load);
            persisted?;
            if c.is_cancelled() {
                return Ok(());
            }
            rdy.store(true, Ordering::Release);
            tracing::info!("ready: raft has a leader and Distro data is loaded");
            Ok(())
        });
        {
            let retention =
                Duration::try_from_secs_f64(config.config_history_retention_days * 86_400.0).unwrap_or(Duration::MAX);
            let every = Config::ms(config.config_history_purge_interval_ms);
            let (r, cs, c) = (raft.clone(), config_service.clone(), cancel.clone());
            tasks.spawn(async move {
                crate::configs::retention::run(r, cs, retention, every, c).await;
                Ok(())
            });
        }
        if config.auto_join && membership.is_discovered() {
            let (r, mb, c) = (raft.clone(), membership.clone(), cancel.clone());
            tasks.spawn(async move {
                crate::membership::autojoin::run(r, mb, c).await;
                Ok(())
            });
        }
        tracing::info!(%http_addr, %grpc_addr, "cairn-node serving");
        Ok(Node {
            cancel,
            tasks,
            ready,
            conns,
            raft,
            grace: Config::ms(config.shutdown_grace_ms),
            http_addr,
            grpc_addr,
        })
    }

    /// Waits until a component fails (tasks that finish their job, like bootstrap, are fine).
    pub async fn wait_failure(&mut self) -> Result<()> {
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(Error::Serve { what: "task", message: e.to_string() }),
            }
        }
        Ok(())
    }

    /// Graceful shutdown: readiness off, `ConnectResetRequest` to every client, wait (up to the
    /// grace period) for clients to leave, then stop every component.
    pub async fn shutdown(mut self) -> Result<()> {
        self.ready.store(false, Ordering::Release);
        let asked = detect::reset_all(&self.conns, self.grace);
        tracing::info!(clients = asked, "shutting down: asked clients to reconnect elsewhere");
        let deadline = Instant::now() + self.grace;
        while !self.conns.registered().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.cancel.cancel();
        let drain = async {
            while let Some(r) = self.tasks.join_next().await {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "component stopped with an error");
                }
            }
        };
        if tokio::time::timeout(self.grace, drain).await.is_err() {
            tracing::warn!("components did not stop within the grace period; aborting them");
            self.tasks.abort_all();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        Ok(())
    }
}

fn accept_stream(
    listener: TcpListener,
    conns: Arc<Connections>,
) -> impl futures::Stream<Item = std::io::Result<TrackedIo>> + Send + 'static {
    futures::stream::unfold((listener, conns), |(listener, conns)| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => match TrackedIo::new(stream, conns.clone()) {
                    Ok(io) => return Some((Ok(io), (listener, conns))),
                    Err(e) => {
                        tracing::debug!(error = %e, "dropping a connection that closed during accept")
                    }
                },
                Err(e) => {
                    // e.g. too many open files: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}
