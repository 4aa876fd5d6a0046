//! `smtp.ca_file`: read and checked when the settings load (`config check`,
//! start) and again by the mailer. It lives with the settings so that
//! `config` needs nothing from `delivery`.

use lettre::transport::smtp::client::{Certificate, TlsParameters};
use std::path::Path;

/// Reads a PEM file of CA certificates and checks that TLS accepts them.
pub fn read_ca_file(path: &Path) -> Result<Certificate, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let not_pem = || {
        format!(
            "{} holds no PEM certificate; it must contain \"-----BEGIN CERTIFICATE-----\" blocks",
            path.display()
        )
    };
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(not_pem());
    }
    let cert = Certificate::from_pem(&pem).map_err(|_| not_pem())?;
    TlsParameters::builder("localhost".into())
        .add_root_certificate(cert.clone())
        .build()
        .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    Ok(cert)
}
