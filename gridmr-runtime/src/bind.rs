//! Opening a server's listening socket (the master's REST port, a worker's gRPC port).

use crate::error::{Error, Result};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Listens on `host:port` (port 0: any free port); returns the socket and the address it got.
pub(crate) async fn listen(host: &str, port: u16) -> Result<(TcpListener, SocketAddr)> {
    let addr = format!("{host}:{port}");
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| Error::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    Ok((listener, local))
}
