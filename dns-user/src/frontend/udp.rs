//! The UDP front end: receive, hand to the [`Handler`], send back.

use std::sync::Arc;

use dns_common::wire::is_loop_prone_port;
use tokio::net::UdpSocket;

use crate::engine::{Handler, Transport};
use crate::store::Store;

/// Concurrent receive loops per socket, so a slow database lookup does not stall others.
pub const UDP_WORKERS: usize = 32;

pub async fn serve<S: Store>(socket: Arc<UdpSocket>, handler: Arc<Handler<S>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..UDP_WORKERS {
        let (socket, handler) = (socket.clone(), handler.clone());
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let (len, peer) = match socket.recv_from(&mut buf).await {
                    Ok(r) => r,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here; keep serving.
                        tracing::debug!(error = %e, "UDP receive error");
                        continue;
                    }
                };
                // A reply to these ports could start a loop with another server.
                if is_loop_prone_port(peer.port()) {
                    continue;
                }
                if let Some(response) =
                    handler.handle(&buf[..len], Transport::Udp, peer.ip().to_canonical()).await
                    && let Err(e) = socket.send_to(&response, peer).await
                {
                    tracing::debug!(error = %e, %peer, "UDP send failed");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
