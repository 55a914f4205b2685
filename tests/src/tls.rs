//! Test certificates made with openssl: a throw-away certificate authority and server
//! certificates it signs (PostgreSQL over TLS, the Pebble ACME server).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// openssl arguments making a new P-256 key without a passphrase.
const NEW_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A certificate authority valid for two days: `NAME.pem` and `NAME.key` in a directory.
pub struct Authority {
    dir: PathBuf,
    name: String,
}

impl Authority {
    pub fn new(dir: &Path, name: &str) -> Self {
        let subject = format!("/CN=instadns test {name}");
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(
            dir,
            &[
                &["req", "-x509"][..],
                &NEW_KEY,
                &["-keyout", &key, "-out", &cert, "-days", "2", "-subj", &subject],
                &[
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        Self { dir: dir.to_owned(), name: name.to_owned() }
    }

    /// The authority's certificate, for clients to trust.
    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// Issues a server certificate for `ip` (`NAME.pem`, `NAME.key` beside the
    /// authority's) and returns (certificate, key).
    pub fn issue_server(&self, name: &str, ip: &str) -> (PathBuf, PathBuf) {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&ext),
            format!(
                "subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("certificate extensions");
        let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        openssl(
            &self.dir,
            &[&["req"][..], &NEW_KEY, &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={ip}")]]
                .concat(),
        );
        let (ca_cert, ca_key) = (format!("{}.pem", self.name), format!("{}.key", self.name));
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (self.dir.join(cert), self.dir.join(key))
    }
}
