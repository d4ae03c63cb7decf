//! The REST API's HTTP/1.1 server: plain or TLS (rustls), with the limits a
//! server on a shared network needs and `axum::serve` does not set.
//!
//! - At most [`MAX_CONNECTIONS`] connections at once, and at most
//!   [`MAX_PER_CLIENT`] from one address; one more is closed at accept, so a
//!   flood of idle sockets cannot take every file descriptor, nor one client
//!   every connection (and `/health` keeps answering everyone else).
//! - [`HEADER_TIMEOUT`] to send a request's headers, and the same to start
//!   the next request on a kept-alive connection: slow-header and idle
//!   connections are closed.
//! - [`HANDSHAKE_TIMEOUT`] for a TLS handshake.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most REST connections open at once.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// Most REST connections from one address.
pub(crate) const MAX_PER_CLIENT: usize = 64;
/// Longest a client may take to send a request's headers, or to begin its
/// next request on an idle kept-alive connection.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop`, then lets requests in flight
/// finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let clients = crate::peers::Peers::default();
    let tracker = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many REST connections; closing a new one");
            drop(tcp);
            continue;
        };
        let Some(client) = clients.take(peer.ip(), MAX_PER_CLIENT) else {
            tracing::warn!(%peer, max = MAX_PER_CLIENT,
                "too many REST connections from one address; closing a new one");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, acceptor, stop) = (app.clone(), acceptor.clone(), stop.clone());
        tracker.spawn(async move {
            let _permit = (permit, client);
            match acceptor {
                None => connection(TokioIo::new(tcp), app, peer, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => connection(TokioIo::new(tls), app, peer, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

async fn connection<I>(io: TokioIo<I>, app: Router, peer: SocketAddr, stop: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
