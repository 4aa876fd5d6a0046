//! TLS for the test SMTP server: a CA and a server certificate made fresh for
//! each run with rcgen, so tests need no key files and no openssl.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// A certificate authority made for one test run.
pub struct TestCa {
    name: String,
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA called `name` (shown in its subject, so errors say which).
    pub fn generate(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("generate the CA key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        TestCa {
            name: name.to_owned(),
            pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate in PEM, as `smtp.ca_file` takes it.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA certificate to `dir/NAME.pem` and returns that path.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.pem", self.name));
        std::fs::write(&path, &self.pem).expect("write the CA certificate");
        path
    }

    /// A server certificate for 127.0.0.1 and localhost signed by this CA,
    /// and its key, both in PEM, for a server run as its own process
    /// (Dovecot). `name` goes in the subject.
    pub fn server_pem(&self, name: &str) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("generate the server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A server certificate for 127.0.0.1 and localhost signed by this CA,
    /// ready to accept TLS connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "test SMTP relay");
        let key = KeyPair::generate().expect("generate the server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        let chain = vec![cert.der().clone(), self.cert.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a valid server certificate");
        TlsAcceptor::from(Arc::new(config))
    }
}
