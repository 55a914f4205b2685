//! The CLI's way through the HTTP management API (`--api URL --token-file F`): one
//! keep-alive HTTP/1.1 connection (HTTPS with rustls, trusting the system's roots or
//! `--api-ca`), every request with a deadline and every answer bounded. A problem the
//! API answers comes back as [`ApiProblem`], whose text is the problem's detail: the
//! same words the command prints when it works on the database.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, bail};
use axum::{
    body::Body,
    http::{HeaderName, HeaderValue, Method, Request, Uri, header},
};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use instadns::api::page::Page;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::{net::TcpStream, sync::Mutex};
use tokio_rustls::TlsConnector;

/// Debian's bundle of the system's trusted authorities (package ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Connecting, with the TLS handshake.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// A request from its first byte sent to its answer's last byte received.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// Largest answer read (a page of 1,000 items is far smaller).
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Largest token file read (a token is 52 characters).
const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// Items per page asked for: the API's most.
const PAGE_ITEMS: usize = 1000;
/// Most items a list follows pages for, whatever the server says.
const MAX_LISTED: usize = 10_000_000;

/// A problem the API answered (RFC 9457): its status and detail.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ApiProblem {
    pub status: u16,
    pub detail: String,
}

impl ApiProblem {
    /// The request was at fault (the database path's usage errors): exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(self.status, 400 | 422)
    }
}

#[derive(Deserialize)]
struct ProblemBody {
    detail: Option<String>,
    title: Option<String>,
}

/// Where the API is and how to reach it.
struct Endpoint {
    host: String,
    port: u16,
    /// The Host header.
    authority: String,
    /// The URL's path, without a trailing '/', before `/v1/...`.
    prefix: String,
    /// None: plain HTTP.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

pub struct ApiClient {
    endpoint: Endpoint,
    token: HeaderValue,
    connection: Mutex<Option<SendRequest<Body>>>,
}

impl ApiClient {
    /// A client of the API at `url` (`https://HOST[:PORT]`, or `http://` for a listener
    /// without TLS) with the bearer token in `token_file`, trusting the authorities in
    /// `ca` (a PEM file), else the system's.
    pub fn new(url: &str, token_file: &Path, ca: Option<&Path>) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("--api {url:?}: use https://HOST:PORT"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("--api {url:?}: use https://HOST:PORT (or http:// for a listener without TLS)"),
        };
        let Some(authority) = uri.authority() else {
            bail!("--api {url:?}: the URL names no host; use https://HOST:PORT");
        };
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        if uri.query().is_some() {
            bail!("--api {url:?}: the URL takes no query");
        }
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .with_context(|| format!("--api {url:?}: {host:?} is not a host name or address"))?;
            Some((connector(ca)?, name))
        } else {
            None
        };
        let endpoint = Endpoint {
            host,
            port,
            authority: authority.as_str().to_owned(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            tls,
        };
        Ok(Self { endpoint, token: read_token(token_file)?, connection: Mutex::new(None) })
    }

    /// GET `path`, its JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(Method::GET, path, None, None).await
    }

    /// `method` on `path` with a JSON body (and a precondition header), its JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        precondition: Option<HeaderName>,
    ) -> Result<T> {
        let answer = self.send(method.clone(), path, body, precondition).await?;
        serde_json::from_slice(&answer)
            .with_context(|| format!("{method} {path}: the API's answer is not what this CLI expects"))
    }

    /// `method` on `path`, its answer ignored (204 No Content).
    pub async fn call(&self, method: Method, path: &str) -> Result<()> {
        self.send(method, path, None, None).await.map(drop)
    }

    /// Every item of a list, page after page: at most `limit`, after the cursor `after`;
    /// `filters` is the query (`name=value&...`, encoded) or empty.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &str,
        mut after: Option<String>,
        limit: usize,
    ) -> Result<Vec<T>> {
        let limit = limit.min(MAX_LISTED);
        let mut items = Vec::new();
        while items.len() < limit {
            let mut query = format!("{path}?limit={}", (limit - items.len()).min(PAGE_ITEMS));
            if !filters.is_empty() {
                query = format!("{query}&{filters}");
            }
            if let Some(cursor) = &after {
                query = format!("{query}&after={}", encode(cursor));
            }
            let page: Page<T> = self.get(&query).await?;
            let got = page.items.len();
            items.extend(page.items);
            match page.next {
                Some(next) if got > 0 => after = Some(next),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        precondition: Option<HeaderName>,
    ) -> Result<axum::body::Bytes> {
        let uri = format!("{}{path}", self.endpoint.prefix);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::HOST, &self.endpoint.authority)
            .header(header::AUTHORIZATION, self.token.clone())
            .header(header::ACCEPT, "application/json, application/problem+json");
        if let Some(name) = precondition {
            request = request.header(name, "*");
        }
        let request = match body {
            Some(json) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&json)?)),
            None => request.body(Body::empty()),
        }
        .with_context(|| format!("{method} {uri}: not a request"))?;
        let exchange = async {
            let mut connection = self.connection.lock().await;
            let sender = match connection.as_mut() {
                Some(sender) if !sender.is_closed() => sender,
                _ => connection.insert(self.endpoint.connect().await?),
            };
            sender.ready().await.context("the API closed the connection")?;
            let answer = sender.send_request(request).await.context("the API did not answer")?;
            let status = answer.status();
            let bytes = axum::body::to_bytes(Body::new(answer.into_body()), MAX_ANSWER_BYTES)
                .await
                .context("reading the API's answer")?;
            anyhow::Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_DEADLINE, exchange)
            .await
            .with_context(|| format!("{method} {uri}: no answer within {REQUEST_DEADLINE:?}"))?
            .with_context(|| format!("{method} {uri} at {}", self.endpoint.authority))?;
        if status.is_success() {
            return Ok(bytes);
        }
        let problem: Option<ProblemBody> = serde_json::from_slice(&bytes).ok();
        let detail = problem
            .and_then(|p| p.detail.or(p.title))
            .unwrap_or_else(|| format!("{method} {uri}: HTTP {status}"));
        Err(ApiProblem { status: status.as_u16(), detail }.into())
    }
}

impl Endpoint {
    async fn connect(&self) -> Result<SendRequest<Body>> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let sender = match &self.tls {
                Some((connector, name)) => {
                    let stream = connector.connect(name.clone(), tcp).await?;
                    handshake(stream).await?
                }
                None => handshake(tcp).await?,
            };
            anyhow::Ok(sender)
        };
        tokio::time::timeout(CONNECT_DEADLINE, connect)
            .await
            .with_context(|| {
                format!("connecting to the API at {}: no answer within {CONNECT_DEADLINE:?}", self.authority)
            })?
            .with_context(|| format!("connecting to the API at {}", self.authority))
    }
}

/// An HTTP/1.1 connection on `stream`, driven by a task of its own.
async fn handshake<S>(stream: S) -> Result<SendRequest<Body>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A TLS connector trusting the authorities in `ca` (PEM), else the system's.
fn connector(ca: Option<&Path>) -> Result<TlsConnector> {
    let path = ca.unwrap_or(Path::new(SYSTEM_ROOTS));
    let what = || match ca {
        Some(_) => format!("--api-ca {}", path.display()),
        None => format!("the system's authorities {} (or give --api-ca FILE)", path.display()),
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{}: not readable", what()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", what()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        bail!("{}: no certificate in it", what());
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The `Authorization` header from a token file (`instadns token add` printed the token).
fn read_token(path: &Path) -> Result<HeaderValue> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES + 1).read_to_string(&mut text))
        .with_context(|| format!("--token-file {}: not readable", path.display()))?;
    if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
        bail!("--token-file {}: over {MAX_TOKEN_FILE_BYTES} bytes; it holds one token", path.display());
    }
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        bail!("--token-file {}: it should hold one token, as `instadns token add` prints it", path.display());
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).with_context(|| {
        format!("--token-file {}: the token has characters a token never has", path.display())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `text` for a path segment or query value: everything but RFC 3986's unreserved
/// characters percent-encoded.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_paths_and_queries() {
        assert_eq!(encode("blog.alice.example.co."), "blog.alice.example.co.");
        assert_eq!(encode("a b/c?d%"), "a%20b%2Fc%3Fd%25");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn urls_and_token_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("instadns-remote-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "instadns_abc\n").unwrap();
        let client = ApiClient::new("http://[fd00::1]:8053/base/", &token, None).unwrap();
        assert_eq!((client.endpoint.host.as_str(), client.endpoint.port), ("fd00::1", 8053));
        assert_eq!(client.endpoint.prefix, "/base");
        let refused = |url: &str| ApiClient::new(url, &token, None).err().map(|e| format!("{e:#}"));
        assert!(refused("ftp://host").unwrap().contains("https://HOST:PORT"));
        assert!(refused("http://host/?q=1").unwrap().contains("no query"));
        std::fs::write(&token, "two tokens\n").unwrap();
        assert!(refused("http://host").unwrap().contains("one token"));
        std::fs::write(&token, "").unwrap();
        assert!(refused("http://host").unwrap().contains("one token"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
