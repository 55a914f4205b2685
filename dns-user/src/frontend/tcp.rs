//! The TCP front end (RFC 7766): length-prefixed messages, pipelined queries answered
//! concurrently and possibly out of order, an idle timeout, and a connection cap.

use std::net::IpAddr;
use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};

use crate::engine::{Handler, Transport};
use crate::store::Store;

#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    pub max_connections: usize,
    /// Close a connection that sends nothing for this long (RFC 7766 section 6.2.3).
    pub idle_timeout: Duration,
    /// Queries of one connection being answered at once.
    pub max_in_flight: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self { max_connections: 1024, idle_timeout: Duration::from_secs(10), max_in_flight: 64 }
    }
}

pub async fn serve<S: Store>(listener: TcpListener, handler: Arc<Handler<S>>, limits: TcpLimits) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "TCP connection limit reached; closing");
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            connection(stream, peer.ip().to_canonical(), handler, limits).await;
            drop(permit);
        });
    }
}

async fn connection<S: Store>(
    stream: TcpStream,
    client: IpAddr,
    handler: Arc<Handler<S>>,
    limits: TcpLimits,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(limits.max_in_flight);
    let writer_task = tokio::spawn(async move {
        while let Some(response) = rx.recv().await {
            let Ok(len) = u16::try_from(response.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(2 + response.len());
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&response);
            if writer.write_all(&framed).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    loop {
        let len = match tokio::time::timeout(limits.idle_timeout, reader.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => break, // idle, closed or reset
        };
        let mut msg = vec![0u8; len];
        match tokio::time::timeout(limits.idle_timeout, reader.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (handler, tx) = (handler.clone(), tx.clone());
        tokio::spawn(async move {
            if let Some(response) = handler.handle(&msg, Transport::Tcp, client).await {
                let _ = tx.send(response).await;
            }
            drop(permit);
        });
    }
    drop(tx);
    let _ = writer_task.await;
}
