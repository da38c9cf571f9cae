//! TLS with rustls (ring provider, TLS 1.2 and 1.3), from PEM files. Without a certificate the
//! vault serves plain HTTP, and only on a loopback address.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls server config from a PEM certificate chain (leaf first) and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the TLS certificate file {} holds no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS private key {}: {e}", key.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("the TLS certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Refuses plain HTTP anywhere but loopback: the bearer token would cross the network in clear.
pub fn check_plain_listen(addr: &SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve plain HTTP on {addr}, which is not a loopback address: configure \
             [tls] cert and key in the config file, or listen on 127.0.0.1 or [::1] behind a \
             TLS-terminating proxy"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_plain_listen(&"127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(check_plain_listen(&"[::1]:8080".parse().unwrap()).is_ok());
        assert!(check_plain_listen(&"0.0.0.0:8080".parse().unwrap()).is_err());
        assert!(check_plain_listen(&"192.0.2.1:443".parse().unwrap()).is_err());
    }
}
