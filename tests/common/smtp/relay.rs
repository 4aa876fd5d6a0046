//! How the test relay secures and authenticates its sessions, and the record
//! it keeps of each connection, so a test can check what came before what
//! (AUTH only after TLS, say). The default relay is plain and open.

use base64::Engine;
use tokio_rustls::TlsAcceptor;

use super::faults::Faults;
use super::tls::TestCa;

/// When the relay speaks TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain at first; STARTTLS is offered until the session is encrypted.
    Starttls,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

/// The relay's configuration: faults, TLS and AUTH.
#[derive(Clone, Default)]
pub struct Relay {
    pub(super) faults: Faults,
    pub(super) tls: Option<(TlsMode, TlsAcceptor)>,
    pub(super) login: Option<Login>,
}

impl Relay {
    pub fn new(faults: Faults) -> Relay {
        Relay {
            faults,
            ..Relay::default()
        }
    }

    /// Offer STARTTLS, with a server certificate signed by `ca`.
    pub fn starttls(mut self, ca: &TestCa) -> Relay {
        self.tls = Some((TlsMode::Starttls, ca.acceptor()));
        self
    }

    /// Speak TLS from the start, with a server certificate signed by `ca`.
    pub fn implicit_tls(mut self, ca: &TestCa) -> Relay {
        self.tls = Some((TlsMode::Implicit, ca.acceptor()));
        self
    }

    /// Require AUTH (PLAIN and LOGIN) with these credentials before MAIL.
    /// AUTH is offered on unencrypted sessions too, as a careless relay
    /// would, so that only the client decides whether a password goes out
    /// in the clear.
    pub fn auth(mut self, username: &str, password: &str) -> Relay {
        self.login = Some(Login {
            username: username.to_owned(),
            password: password.to_owned(),
            mechanisms: vec!["PLAIN", "LOGIN"],
        });
        self
    }

    /// Offer only these AUTH mechanisms (of PLAIN and LOGIN), in this order.
    pub fn auth_mechanisms(mut self, mechanisms: &[&'static str]) -> Relay {
        let login = self.login.as_mut().expect("call auth() first");
        login.mechanisms = mechanisms.to_vec();
        self
    }

    pub(super) fn mode(&self) -> Option<TlsMode> {
        self.tls.as_ref().map(|(mode, _)| *mode)
    }

    pub(super) fn acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.as_ref().map(|(_, acceptor)| acceptor.clone())
    }
}

/// The one account the relay accepts.
#[derive(Clone, Debug)]
pub(super) struct Login {
    username: String,
    password: String,
    pub(super) mechanisms: Vec<&'static str>,
}

impl Login {
    pub(super) fn offers(&self, mechanism: &str) -> bool {
        self.mechanisms.contains(&mechanism)
    }

    pub(super) fn matches(&self, username: &str, password: &str) -> bool {
        self.username == username && self.password == password
    }
}

/// One thing that happened on a connection, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The session began (after the TLS handshake for implicit TLS).
    Connected { encrypted: bool },
    /// STARTTLS completed: everything after it on this connection is encrypted.
    StartTls,
    /// A TLS handshake failed, e.g. because the client refused the certificate.
    TlsFailed(String),
    /// An AUTH exchange, whether the session was encrypted when it began,
    /// and whether the credentials matched.
    Auth {
        mechanism: String,
        encrypted: bool,
        accepted: bool,
    },
    /// A MAIL FROM the relay accepted.
    Mail {
        encrypted: bool,
        authenticated: bool,
    },
}

/// `authzid NUL authcid NUL password`, base64: the user and password, or
/// empty strings (which match no account) when it does not decode.
pub(super) fn decode_plain(response: &str) -> (String, String) {
    let decoded = decode(response);
    let mut parts = decoded.split('\0').skip(1);
    match (parts.next(), parts.next()) {
        (Some(user), Some(password)) => (user.to_owned(), password.to_owned()),
        _ => (String::new(), String::new()),
    }
}

/// A base64 line as text; empty when it does not decode.
pub(super) fn decode(line: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
