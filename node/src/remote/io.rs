//! A TCP stream that knows its connection: tonic hands [`ConnInfo`] to every request on the
//! transport, so unary calls and the bi-stream share one connection id, and dropping the stream
//! (the transport closed, including a client killed with SIGKILL) unregisters the connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::Connected;

use crate::remote::conn::Connections;

/// Per-transport information attached to every request.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Node-local connection number.
    pub num: u64,
    /// The peer address.
    pub remote: SocketAddr,
}

/// A tracked TCP stream.
pub struct TrackedIo {
    inner: TcpStream,
    info: ConnInfo,
    conns: Arc<Connections>,
}

impl TrackedIo {
    /// Wraps an accepted stream, registering a new (not yet set up) connection.
    pub fn new(inner: TcpStream, conns: Arc<Connections>) -> io::Result<Self> {
        let remote = inner.peer_addr()?;
        inner.set_nodelay(true)?;
        let num = conns.accept(remote);
        Ok(TrackedIo { inner, info: ConnInfo { num, remote }, conns })
    }
}

impl Drop for TrackedIo {
    fn drop(&mut self) {
        self.conns.transport_closed(self.info.num);
    }
}

impl Connected for TrackedIo {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
