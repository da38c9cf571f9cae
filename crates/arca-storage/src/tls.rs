//! TLS for storage reached over HTTPS (`webdavs://`, S3 and the drives).
//!
//! By default a server's certificate is checked against the system's trust store (through
//! reqwest's rustls platform verifier, which on Linux reads the system CA bundle). A self-hosted
//! server (Nextcloud, MinIO, a NAS) often has a certificate from a private CA instead: the
//! `ca_file` setting of the storage's section (`ARCA_WEBDAV_CA_FILE`, `ARCA_S3_CA_FILE`, or
//! `ca_file = "..."` in the storage config file) names a PEM file of CA certificates trusted in
//! addition to the system's.
//!
//! A certificate that does not verify is a permanent error (retrying cannot help), reported with
//! what to set.

use opendal::HttpTransporter;
use opendal_http_transport_reqwest::ReqwestTransport;

use crate::StorageError;
use crate::settings::env_name;

/// The HTTP transport for a storage whose settings section is `section`: the default one, or
/// one that also trusts the CA certificates in `ca_file`.
pub(crate) fn transport(
    section: &str,
    ca_file: Option<&str>,
) -> Result<HttpTransporter, StorageError> {
    let Some(path) = ca_file else {
        return Ok(HttpTransporter::default());
    };
    let setting = env_name(section, "ca_file");
    let bad = |what: String| {
        StorageError::Setup(format!(
            "the CA file {path} ({setting}, or ca_file under [{section}] in the storage config file) {what}"
        ))
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("is not a PEM file of certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no certificate (it must be PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let client = reqwest::Client::builder()
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| bad(format!("cannot be used: {}", chain(&e))))?;
    Ok(HttpTransporter::new(ReqwestTransport::new(client)))
}

/// An error and its causes in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    crate::error::append_causes(&mut s, e.source());
    s
}

/// What to tell the user when a server's certificate is refused.
#[derive(Clone, Debug)]
pub(crate) struct CertHint {
    /// The setting that names a CA file (`ARCA_WEBDAV_CA_FILE`).
    pub setting: String,
    pub section: String,
    /// Whether a CA file is set already.
    pub ca_file_set: bool,
}

impl CertHint {
    pub fn new(section: &str, ca_file_set: bool) -> Self {
        CertHint {
            setting: env_name(section, "ca_file"),
            section: section.to_string(),
            ca_file_set,
        }
    }

    /// Turns a failed request whose cause is a refused certificate into a permanent error that
    /// says so and what to do; other errors pass unchanged.
    pub fn explain(&self, e: opendal::Error) -> opendal::Error {
        let Some(reason) = certificate_problem(&e) else {
            return e;
        };
        let advice = if self.ca_file_set {
            format!(
                "it is not signed by a CA in {} nor by one the system trusts, or it does not name this host",
                self.setting
            )
        } else {
            format!(
                "if the server's certificate comes from a private CA (a self-hosted server), set {} (or ca_file under [{}] in the storage config file) to a PEM file of that CA's certificate",
                self.setting, self.section
            )
        };
        opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            format!("the server's TLS certificate is not trusted ({reason}): {advice}"),
        )
        .with_operation("tls")
        .set_permanent()
    }
}

/// The certificate problem behind a failed request, if that is what failed it. rustls reports
/// it as "invalid peer certificate: ..." inside the connection error; an `io::Error` hides its
/// inner error from `source()`, so the messages of the whole chain are searched.
fn certificate_problem(e: &opendal::Error) -> Option<String> {
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if let Some(i) = t.find("invalid peer certificate") {
            return Some(t[i..].to_string());
        }
        cause = c.source();
    }
    None
}
