//! The worker's gRPC listener, with the limits a server on a shared network needs and tonic's
//! does not set (the master's REST server has the same, `master/http.rs`):
//!
//! - at most [`MAX_CONNECTIONS`] connections at once (fewer when the process may open fewer
//!   files), and at most [`MAX_PER_PEER`] from one address: a flood of idle sockets from one
//!   caller cannot take every descriptor, and the master still gets in;
//! - a connection must complete its TLS handshake, or send its first bytes, within
//!   [`HANDSHAKE_TIMEOUT`], or it is closed: a silent caller holds nothing for long;
//! - handshakes run beside the accept loop, so a slow one delays no other caller.
//!
//! Past the handshake, HTTP/2 keep-alive pings (set on the server) close connections whose
//! peer stopped answering.

use crate::peers::{PeerSlot, Peers};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Most gRPC connections a worker keeps open at once.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// Most gRPC connections from one address.
pub(crate) const MAX_PER_PEER: usize = 64;
/// Longest a caller may take to finish its TLS handshake, or to send its first bytes.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Something a connection can be read from and written to.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An accepted connection: its stream (plain or TLS) and the permits it holds until closed.
pub(crate) struct Guarded {
    io: Box<dyn Io>,
    info: TcpConnectInfo,
    _slot: OwnedSemaphorePermit,
    _peer: PeerSlot,
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// How many connections this process can afford: [`MAX_CONNECTIONS`], or half its open-file
/// limit when that is lower (tasks, spills and the master's calls need the rest).
fn connection_budget() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    usize::try_from(limit / 2)
        .unwrap_or(usize::MAX)
        .clamp(8, MAX_CONNECTIONS)
}

/// Accepts connections on `listener` until `stop`, each checked against the limits and (with
/// `tls`) through its handshake before it is handed on. The receiver is the server's incoming
/// stream.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) -> impl futures_util::Stream<Item = io::Result<Guarded>> {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(connection_budget()));
    let peers = Peers::default();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "gRPC accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many gRPC connections; closing a new one");
                continue;
            };
            let Some(peer_slot) = peers.take(peer.ip(), MAX_PER_PEER) else {
                tracing::warn!(%peer, max = MAX_PER_PEER,
                    "too many gRPC connections from one address; closing a new one");
                continue;
            };
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                match handshake(tcp, peer, tls).await {
                    Ok((io, info)) => {
                        let conn = Guarded {
                            io,
                            info,
                            _slot: slot,
                            _peer: peer_slot,
                        };
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "gRPC connection dropped"),
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let conn = rx.recv().await?;
        Some((conn, rx))
    })
}

/// A connection's TLS handshake, or its first bytes, within [`HANDSHAKE_TIMEOUT`].
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<(Box<dyn Io>, TcpConnectInfo)> {
    // Small answers on a multiplexed connection: without TCP_NODELAY, Nagle's algorithm and
    // delayed ACKs hold the second of two answers back ~40 ms.
    tcp.set_nodelay(true)?;
    let info = tcp.connect_info();
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, format!("{peer}: silent"));
    let io: Box<dyn Io> = match tls {
        Some(acceptor) => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                .await
                .map_err(|_| timed_out())??;
            Box::new(tls)
        }
        None => {
            let mut first = [0u8; 1];
            let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first))
                .await
                .map_err(|_| timed_out())??;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            Box::new(tcp)
        }
    };
    Ok((io, info))
}
