//! The API's listener: TCP with a cap on connections (the stalest goes when full, as
//! for DNS over TCP), TLS with rustls when configured, every handshake and request head
//! with a deadline.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::frontend::connections::{ConnectionLimits, accept_each};

/// Connections in all and per client network: automation needs a few each.
pub const CONNECTIONS: ConnectionLimits = ConnectionLimits { max_total: 256, max_per_client: 32 };
/// The TLS handshake, and each request head (an idle keep-alive connection too).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Longest a connection stays open, requests included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("API TLS certificate {path}: {reason} (a PEM file with the certificate chain)")]
    Certificate { path: String, reason: String },
    #[error("API TLS key {path}: {reason} (a PEM file with the private key, PKCS#8, PKCS#1 or SEC1)")]
    Key { path: String, reason: String },
    #[error("API TLS certificate and key do not go together: {0}")]
    Config(String),
}

/// A TLS acceptor from a PEM certificate chain and key (HTTP/1.1 by ALPN).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certificate = |reason: String| TlsError::Certificate { path: cert.display().to_string(), reason };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| certificate(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(certificate("no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.display().to_string(), reason: e.to_string() })?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router, tls: Option<TlsAcceptor>) {
    accept_each(listener, CONNECTIONS, |stream, peer, _| {
        let (router, tls) = (router.clone(), tls.clone());
        async move {
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection(stream, peer, router, tls)).await;
        }
    })
    .await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => http(TokioIo::new(stream), router).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => http(TokioIo::new(stream), router).await,
            Ok(Err(e)) => tracing::debug!("api: TLS handshake with {peer} failed: {e}"),
            Err(_) => tracing::debug!("api: TLS handshake with {peer} timed out"),
        },
    }
}

async fn http<I>(io: TokioIo<I>, router: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEAD_DEADLINE).max_buf_size(64 * 1024);
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!("api: connection ended: {e}");
    }
}
