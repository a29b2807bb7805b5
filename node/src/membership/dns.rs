//! `dns:<name>` provider: members are the A records of `name` (each `ip:P`, P being this node's
//! HTTP port), or, for a name starting with `_` (`_http._tcp.cairn.ns.svc`), the SRV records
//! (each `target:port`). Re-resolved every `--dns-refresh-ms`, bypassing the resolver cache.
//!
//! A name that does not exist or has no records of the type gives an empty set (this node only);
//! any other failure (timeout, SERVFAIL, no resolver) keeps the last good set.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use tokio_util::sync::CancellationToken;

use super::Member;
use super::provider::{Provider, Sink};
use crate::config::Config;
use crate::error::{Error, Result};

/// Resolves the members' name periodically.
pub struct DnsProvider {
    name: String,
    port: u16,
    refresh: Duration,
    resolver: TokioResolver,
}

impl DnsProvider {
    /// A provider for `name` using `--dns-server` or the system resolver configuration.
    pub fn new(name: String, config: &Config) -> Result<DnsProvider> {
        let refresh = Config::ms(config.dns_refresh_ms);
        let resolver = build_resolver(config.dns_server, refresh)?;
        Ok(DnsProvider { name, port: config.http_port, refresh, resolver })
    }

    /// Looks the members up once: `Ok` with the members (possibly none) or `Err` when the
    /// answer is unusable and the last good set should stay.
    pub async fn resolve(&self) -> std::result::Result<Vec<Member>, String> {
        self.resolver.clear_cache();
        let srv = self.name.starts_with('_');
        let lookup = if srv {
            self.resolver.srv_lookup(self.name.as_str()).await
        } else {
            self.resolver.ipv4_lookup(self.name.as_str()).await
        };
        let lookup = match lookup {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        let mut out = Vec::new();
        for record in lookup.answers() {
            match &record.data {
                RData::A(a) if !srv => out.push(Member::new(format!("{}:{}", a.0, self.port))),
                RData::SRV(s) if srv => {
                    let target = s.target.to_utf8();
                    let target = target.trim_end_matches('.');
                    if !target.is_empty() && s.port != 0 {
                        out.push(Member::new(format!("{target}:{}", s.port)));
                    }
                }
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn build_resolver(server: Option<SocketAddr>, refresh: Duration) -> Result<TokioResolver> {
    let mut builder = match server {
        Some(addr) => {
            let conns = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            let ns = NameServerConfig::new(addr.ip(), true, conns);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| Error::Config(format!("--members dns: cannot read the system resolver configuration: {e}")))?,
    };
    let opts = builder.options_mut();
    opts.timeout = refresh.clamp(Duration::from_millis(100), Duration::from_secs(2));
    opts.attempts = 1;
    builder.build().map_err(|e| Error::Config(format!("--members dns: cannot build the resolver: {e}")))
}

impl Provider for DnsProvider {
    fn run(self: Box<Self>, sink: Sink, cancel: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut last_error: Option<String> = None;
            loop {
                match self.resolve().await {
                    Ok(members) => {
                        if last_error.take().is_some() {
                            tracing::info!(name = %self.name, "member DNS lookups work again");
                        }
                        sink.publish(members);
                    }
                    Err(e) => {
                        if last_error.as_deref() != Some(e.as_str()) {
                            tracing::warn!(name = %self.name, error = %e, "member DNS lookup failed; keeping the last good member set");
                        }
                        last_error = Some(e);
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.refresh) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        })
    }
}
