//! Optional HTTPS on the ingest itself (rustls), for deployments without a TLS-terminating proxy.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use anyhow::{Context, anyhow};

use crate::settings::TlsFiles;

/// Loads the PEM certificate chain and private key into a rustls server configuration.
///
/// # Errors
/// A message naming the file and the problem (unreadable, no certificate, no key, mismatch).
pub fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let cert_file = File::open(&files.cert)
        .with_context(|| format!("HOOKBRIDGE_TLS_CERT: cannot read {}", files.cert.display()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(cert_file))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("HOOKBRIDGE_TLS_CERT: {} is not PEM", files.cert.display()))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "HOOKBRIDGE_TLS_CERT: {} holds no certificate",
            files.cert.display()
        ));
    }
    let key_file = File::open(&files.key)
        .with_context(|| format!("HOOKBRIDGE_TLS_KEY: cannot read {}", files.key.display()))?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(key_file))
        .with_context(|| format!("HOOKBRIDGE_TLS_KEY: {} is not PEM", files.key.display()))?
        .ok_or_else(|| {
            anyhow!(
                "HOOKBRIDGE_TLS_KEY: {} holds no private key",
                files.key.display()
            )
        })?;
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS: no usable protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("HOOKBRIDGE_TLS_KEY: the key does not match the certificate or is unsupported")
}
