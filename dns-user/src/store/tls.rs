//! PostgreSQL over TLS (rustls). The URL's `sslmode` and `sslrootcert` keep libpq's
//! meanings, so the URL an operator uses with psql works here:
//!
//! - `disable`: never TLS; no `sslmode`: as before TLS existed (plaintext);
//! - `prefer`: TLS when the server offers it, the certificate not checked;
//! - `require`: TLS or no connection; the certificate is checked against
//!   `sslrootcert` when one is given (libpq does the same), else not checked;
//! - `verify-ca`: TLS, the certificate chain checked against `sslrootcert`;
//! - `verify-full`: the same and the certificate must name the host connected to.
//!
//! Over a Unix socket there is no TLS (libpq ignores `sslmode` there too).

use std::{path::PathBuf, sync::Arc};

use rustls::{
    DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject as _},
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// What the URL asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(mode: &str) -> Option<Self> {
        Some(match mode {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// The TLS settings of a PostgreSQL URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgTls {
    pub mode: Option<TlsMode>,
    pub root_cert: Option<PathBuf>,
}

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL; the rest is for
/// tokio-postgres (which knows neither `verify-ca` nor `verify-full`).
pub fn split_url(url: &str) -> Result<(String, PgTls), StoreError> {
    let bad = |reason: String| StoreError::BadUrl { url: url.to_owned(), reason };
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), PgTls::default())) };
    let mut tls = PgTls::default();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", mode)) => {
                tls.mode = Some(TlsMode::parse(mode).ok_or_else(|| {
                    bad(format!(
                        "sslmode={mode} is not one of disable, prefer, require, verify-ca, verify-full"
                    ))
                })?)
            }
            Some(("sslrootcert", path)) => tls.root_cert = Some(PathBuf::from(percent_decoded(path))),
            _ => rest.push(pair),
        }
    }
    if matches!(tls.mode, Some(TlsMode::VerifyCa | TlsMode::VerifyFull)) && tls.root_cert.is_none() {
        return Err(bad(
            "sslmode=verify-ca and verify-full need sslrootcert=PATH (a PEM file of the CA certificates to trust)"
                .into(),
        ));
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, tls))
}

/// `%2F` and the like in a path given as a URL parameter.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(hi)), Some(Some(lo))) =
                (bytes.get(i + 1).map(|b| hex(*b)), bytes.get(i + 2).map(|b| hex(*b)))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl PgTls {
    /// The mode tokio-postgres negotiates with.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            None | Some(TlsMode::Disable) => SslMode::Disable,
            Some(TlsMode::Prefer) => SslMode::Prefer,
            Some(TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull) => SslMode::Require,
        }
    }

    /// The connector, or None when TLS is never used.
    pub fn connector(&self, url: &str) -> Result<Option<MakeRustlsConnect>, StoreError> {
        let Some(mode) = self.mode.filter(|m| *m != TlsMode::Disable) else { return Ok(None) };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let bad = |reason: String| StoreError::BadUrl { url: url.to_owned(), reason };
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.root_cert, mode) {
            (None, _) => Arc::new(Unverified(provider.clone())),
            (Some(path), mode) => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert.map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
                    roots.add(cert).map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
                }
                if roots.is_empty() {
                    return Err(bad(format!("sslrootcert {} holds no certificate", path.display())));
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
                match mode {
                    TlsMode::VerifyFull => webpki,
                    _ => Arc::new(ChainOnly(webpki)),
                }
            }
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

/// `prefer` and `require` without a root certificate: encrypted, the server not
/// authenticated (libpq's meaning); the handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name in the certificate is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_split_off_the_url() {
        let (url, tls) = split_url(
            "postgres://u@db.example/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@db.example/x?application_name=a");
        assert_eq!(tls, PgTls { mode: Some(TlsMode::VerifyFull), root_cert: Some("/etc/ca.pem".into()) });
        assert_eq!(tls.ssl_mode(), SslMode::Require);
        let (url, tls) = split_url("postgres://u@h/x?sslmode=require").unwrap();
        assert_eq!((url.as_str(), tls.mode), ("postgres://u@h/x", Some(TlsMode::Require)));
        assert_eq!(split_url("postgres://u@h/x").unwrap().1, PgTls::default());
        assert_eq!(PgTls::default().ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn bad_tls_parameters_are_named() {
        let e = split_url("postgres://h/x?sslmode=verify").unwrap_err().to_string();
        assert!(e.contains("sslmode=verify is not one of"), "{e}");
        let e = split_url("postgres://h/x?sslmode=verify-full").unwrap_err().to_string();
        assert!(e.contains("need sslrootcert=PATH"), "{e}");
        let tls = PgTls { mode: Some(TlsMode::VerifyCa), root_cert: Some("/nonexistent/ca.pem".into()) };
        let e = tls.connector("postgres://h/x").err().expect("a missing file").to_string();
        assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    }
}
