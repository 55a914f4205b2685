//! The UDP front end: receive, hand to the [`Handler`], send back, from the address the
//! query was sent to (see [`super::pktinfo`]).

use std::sync::Arc;

use dns_common::wire::is_loop_prone_port;
use tokio::net::UdpSocket;

use super::pktinfo;
use crate::engine::{Handler, Transport};
use crate::store::Store;

/// Concurrent receive loops per socket, so a slow database lookup does not stall others.
pub const UDP_WORKERS: usize = 32;

pub async fn serve<S: Store>(socket: Arc<UdpSocket>, handler: Arc<Handler<S>>) {
    // Bound to one address, the kernel sends from it; bound to a wildcard, we say which.
    let wildcard = socket.local_addr().is_ok_and(|a| a.ip().is_unspecified());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..UDP_WORKERS {
        let (socket, handler) = (socket.clone(), handler.clone());
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let received = if wildcard {
                    pktinfo::recv(&socket, &mut buf).await
                } else {
                    socket.recv_from(&mut buf).await.map(|(len, peer)| (len, peer, None))
                };
                let (len, peer, destination) = match received {
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
                let Some(response) =
                    handler.handle(&buf[..len], Transport::Udp, peer.ip().to_canonical()).await
                else {
                    continue;
                };
                let sent = match destination {
                    Some(from) => pktinfo::send(&socket, &response, peer, from).await,
                    None => socket.send_to(&response, peer).await,
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, %peer, "UDP send failed");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
