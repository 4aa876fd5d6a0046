//! Where messages go: `.eml` files (the embedded default) or an SMTP relay.
//!
//! The SMTP side keeps its own small pool of lettre connections because it
//! opens each TCP connection itself with TCP_NODELAY: lettre 0.11.23 leaves
//! Nagle's algorithm on, and every message then waits ~40 ms for a delayed
//! ACK (measured in docs/benchmarks.md). STARTTLS still goes through lettre.

use crate::config::ca::read_ca_file;
use crate::config::{Smtp as SmtpSettings, Tls, Transport};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How the relay answered one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted (2xx), with the relay's reply.
    Accepted(String),
    /// Try again later: 4xx, a dropped connection, a timeout.
    Transient(String),
    /// Never deliverable to this address: 5xx.
    Permanent(String),
}

/// Sends finished messages.
#[derive(Debug)]
pub enum Mailer {
    File { dir: PathBuf },
    Smtp(SmtpPool),
}

impl Mailer {
    pub fn from_settings(smtp: &SmtpSettings, pool_size: usize) -> Self {
        match smtp.transport {
            Transport::File => Mailer::File {
                dir: smtp.outbox_dir.clone(),
            },
            Transport::Smtp => Mailer::Smtp(SmtpPool::new(smtp, pool_size)),
        }
    }

    /// Sends one message; `file_stem` names the .eml for the file transport.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8], file_stem: &str) -> SendOutcome {
        match self {
            Mailer::File { dir } => write_eml(dir, file_stem, raw).await,
            Mailer::Smtp(pool) => pool.send(envelope, raw).await,
        }
    }
}

/// Writes atomically (temporary file, then rename), so a reader never sees half a message.
async fn write_eml(dir: &std::path::Path, stem: &str, raw: &[u8]) -> SendOutcome {
    let result = async {
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(".{stem}.tmp"));
        tokio::fs::write(&tmp, raw).await?;
        tokio::fs::rename(&tmp, dir.join(format!("{stem}.eml"))).await
    }
    .await;
    match result {
        Ok(()) => SendOutcome::Accepted(format!(
            "written to {}",
            dir.join(format!("{stem}.eml")).display()
        )),
        Err(e) => SendOutcome::Transient(format!("cannot write to {}: {e}", dir.display())),
    }
}

/// A bounded pool of SMTP connections to one relay.
pub struct SmtpPool {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    /// AUTH over an unencrypted connection (`smtp.allow_insecure_auth`).
    allow_insecure_auth: bool,
    /// Extra roots from `smtp.ca_file`, read once at start.
    extra_roots: Vec<Certificate>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    slots: Semaphore,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials stay out of Debug output.
        f.debug_struct("SmtpPool")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    pub fn new(smtp: &SmtpSettings, pool_size: usize) -> Self {
        let credentials = (!smtp.username.is_empty())
            .then(|| Credentials::new(smtp.username.clone(), smtp.password.expose().to_string()));
        Self {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            credentials,
            allow_insecure_auth: smtp.allow_insecure_auth,
            extra_roots: extra_roots(&smtp.ca_file),
            timeout: smtp.timeout.as_std(),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(pool_size.max(1)),
        }
    }

    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> SendOutcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return SendOutcome::Transient("the SMTP pool is closed".into());
        };
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) if !c.has_broken() => c,
            _ => match tokio::time::timeout(self.timeout, self.connect()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    return SendOutcome::Transient(format!(
                        "cannot connect to {}:{}: {e}",
                        self.host, self.port
                    ))
                }
                Err(_) => {
                    return SendOutcome::Transient(format!(
                        "connecting to {}:{} timed out",
                        self.host, self.port
                    ))
                }
            },
        };
        let outcome = match tokio::time::timeout(self.timeout, conn.send(envelope, raw)).await {
            Ok(Ok(reply)) => SendOutcome::Accepted(format!(
                "{} {}",
                reply.code(),
                reply.message().collect::<Vec<_>>().join(" ")
            )),
            Ok(Err(e)) if e.is_permanent() => SendOutcome::Permanent(e.to_string()),
            Ok(Err(e)) => SendOutcome::Transient(e.to_string()),
            Err(_) => SendOutcome::Transient("the relay did not answer in time".into()),
        };
        if matches!(outcome, SendOutcome::Accepted(_)) && !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        outcome
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let text = |e: lettre::transport::smtp::Error| e.to_string();
        let mut conn = if self.tls == Tls::Tls {
            // Implicit TLS goes through lettre's own connect (Nagle stays on there).
            let tls = self.tls_parameters().map_err(text)?;
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(tls),
                None,
            )
            .await
            .map_err(text)?
        } else {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(text)?;
            if self.tls == Tls::Starttls {
                let tls = self.tls_parameters().map_err(text)?;
                conn.starttls(tls, &self.hello).await.map_err(text)?;
            }
            conn
        };
        if let Some(credentials) = &self.credentials {
            if !conn.is_encrypted() && !self.allow_insecure_auth {
                conn.abort().await;
                return Err(INSECURE_AUTH.into());
            }
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(text)?;
        }
        Ok(conn)
    }
}

/// Why a password is not sent: `config check` refuses this setup, so only a
/// settings value built in code gets here.
const INSECURE_AUTH: &str = "refusing to send the SMTP password over an unencrypted connection; \
     use smtp.tls = \"starttls\" or \"tls\" (smtp.allow_insecure_auth = true only for a relay on this host)";

impl SmtpPool {
    /// The relay's certificate is always verified: against the public roots
    /// plus the `smtp.ca_file` ones.
    fn tls_parameters(&self) -> Result<TlsParameters, lettre::transport::smtp::Error> {
        self.extra_roots
            .iter()
            .cloned()
            .fold(TlsParameters::builder(self.host.clone()), |b, cert| {
                b.add_root_certificate(cert)
            })
            .build()
    }
}

/// The roots of `smtp.ca_file`, none when unset. The file was checked by
/// [`read_ca_file`] when the settings loaded; if it changed since, sending
/// fails on verification, with the reason logged, rather than at start.
fn extra_roots(path: &Path) -> Vec<Certificate> {
    if path.as_os_str().is_empty() {
        return Vec::new();
    }
    read_ca_file(path).map_or_else(
        |e| {
            tracing::error!("smtp.ca_file: {e}");
            Vec::new()
        },
        |cert| vec![cert],
    )
}
