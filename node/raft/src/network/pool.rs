//! One tonic `Channel` per peer address, created lazily and shared by every user.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::cluster::raft_service_client::RaftServiceClient;
use parking_lot::Mutex;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::error::Error;
use crate::error::Result;

/// Channels by `host:port`. A `Channel` multiplexes all calls on one HTTP/2 connection,
/// connects on first use and reconnects by itself after a failure.
#[derive(Clone)]
pub(crate) struct ChannelPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    channels: Mutex<HashMap<String, Channel>>,
    connect_timeout: Duration,
    max_message_bytes: usize,
}

impl ChannelPool {
    pub(crate) fn new(connect_timeout: Duration, max_message_bytes: usize) -> Self {
        let inner = PoolInner { channels: Mutex::default(), connect_timeout, max_message_bytes };
        Self { inner: Arc::new(inner) }
    }

    /// A client for the peer at `addr` (`host:port`), reusing its channel.
    pub(crate) fn client(&self, addr: &str) -> Result<RaftServiceClient<Channel>> {
        let channel = {
            let mut channels = self.inner.channels.lock();
            match channels.get(addr) {
                Some(c) => c.clone(),
                None => {
                    let c = self.endpoint(addr)?.connect_lazy();
                    channels.insert(addr.to_string(), c.clone());
                    c
                }
            }
        };
        Ok(RaftServiceClient::new(channel)
            .max_decoding_message_size(self.inner.max_message_bytes)
            .max_encoding_message_size(self.inner.max_message_bytes))
    }

    fn endpoint(&self, addr: &str) -> Result<Endpoint> {
        let invalid = |reason: String| Error::InvalidAddress { addr: addr.to_string(), reason };
        if addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
            return Err(invalid("expected host:port".into()));
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| invalid(e.to_string()))?;
        Ok(endpoint
            .connect_timeout(self.inner.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channels_are_reused_and_addresses_checked() {
        let pool = ChannelPool::new(Duration::from_secs(1), 1 << 20);
        pool.client("127.0.0.1:1").expect("valid");
        pool.client("127.0.0.1:1").expect("valid");
        pool.client("node-0.cairn.svc:9849").expect("valid");
        assert_eq!(pool.inner.channels.lock().len(), 2);
        for bad in ["", "nohost", ":80", "h:70000", "a b:1"] {
            assert!(pool.client(bad).is_err(), "{bad:?}");
        }
    }
}
