//! The bounce mailbox over IMAP with implicit TLS (async-imap on tokio,
//! rustls on the ring provider lettre already uses). The server's
//! certificate and host name are always verified: against the public
//! roots plus `bounces.ca_file`.

use crate::config::Bounces as BounceSettings;
use anyhow::Context;
use async_imap::Session;
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The keyword set on messages left in the folder (auto-replies), so the
/// next run does not read them again.
pub const LEFT_ALONE: &str = "AmbassadorLeftAlone";

/// How long connecting and each command may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// An open, logged-in connection to the bounce mailbox.
pub struct Mailbox {
    session: Session<TlsStream<TcpStream>>,
    can_move: bool,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

/// The TLS settings: public roots and the PEM certificates of `ca_file`.
fn tls_config(settings: &BounceSettings) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !settings.ca_file.as_os_str().is_empty() {
        let pem = std::fs::read(&settings.ca_file).with_context(|| {
            format!(
                "bounces.ca_file: cannot read {}",
                settings.ca_file.display()
            )
        })?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                anyhow::anyhow!("bounces.ca_file {}: {e}", settings.ca_file.display())
            })?;
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!("bounces.ca_file {}: {e}", settings.ca_file.display())
            })?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Bounds one step by [`TIMEOUT`], naming it when it runs out.
async fn timed<T>(
    what: &str,
    step: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(TIMEOUT, step)
        .await
        .map_err(|_| anyhow::anyhow!("the IMAP server did not answer in time ({what})"))?
}

impl Mailbox {
    /// Connects, checks the certificate, logs in, makes the two folders
    /// when missing and selects the bounce folder.
    pub async fn open(settings: &BounceSettings) -> anyhow::Result<Self> {
        let host = settings.imap_host.trim();
        let where_ = format!("{host}:{}", settings.imap_port);
        let config = tls_config(settings)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| anyhow::anyhow!("bounces.imap_host = {host:?} is not a host name"))?;
        let tls = timed("connecting", async {
            let tcp = TcpStream::connect((host, settings.imap_port))
                .await
                .with_context(|| format!("cannot connect to the bounce mailbox at {where_}"))?;
            tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS with the bounce mailbox at {where_} failed"))
        })
        .await?;
        let mut client = async_imap::Client::new(tls);
        timed("greeting", async {
            client
                .read_response()
                .await
                .context("reading the IMAP greeting")?
                .ok_or_else(|| anyhow::anyhow!("the IMAP server closed the connection"))
        })
        .await?;
        let mut session = timed("login", async {
            client
                .login(settings.imap_user.as_str(), settings.imap_password.expose())
                .await
                .map_err(|(e, _)| {
                    anyhow::anyhow!(
                        "the bounce mailbox refused the login of bounces.imap_user {:?}: {e}",
                        settings.imap_user
                    )
                })
        })
        .await?;
        let can_move = timed("capabilities", async {
            Ok(session.capabilities().await?.has_str("MOVE"))
        })
        .await?;
        for folder in [&settings.processed_folder, &settings.unmatched_folder] {
            // An existing folder answers NO; a folder that cannot be made
            // shows when the first message is moved there.
            let _ = timed("create", async { Ok(session.create(folder).await?) }).await;
        }
        timed("select", async {
            session
                .select(&settings.imap_folder)
                .await
                .with_context(|| {
                    format!("cannot open bounces.imap_folder {:?}", settings.imap_folder)
                })
        })
        .await?;
        Ok(Self { session, can_move })
    }

    /// The UIDs of messages not yet left alone, oldest first, at most `limit`.
    pub async fn waiting(&mut self, limit: usize) -> anyhow::Result<Vec<u32>> {
        let query = format!("UNDELETED UNKEYWORD {LEFT_ALONE}");
        let mut uids: Vec<u32> = timed("search", async {
            Ok(self.session.uid_search(query).await?.into_iter().collect())
        })
        .await?;
        uids.sort_unstable();
        uids.truncate(limit);
        Ok(uids)
    }

    /// One whole message, without setting \Seen; `None` when it is gone.
    pub async fn read(&mut self, uid: u32) -> anyhow::Result<Option<Vec<u8>>> {
        timed("fetch", async {
            let fetches: Vec<_> = self
                .session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await?
                .try_collect()
                .await?;
            Ok(fetches.iter().find_map(|f| f.body().map(<[u8]>::to_vec)))
        })
        .await
    }

    /// Moves a message to `folder`: MOVE where the server has it, else
    /// COPY, then delete and expunge that one message.
    pub async fn move_to(&mut self, uid: u32, folder: &str) -> anyhow::Result<()> {
        let set = uid.to_string();
        timed("move", async {
            if self.can_move {
                self.session.uid_mv(&set, folder).await?;
            } else {
                // COPY, unlike MOVE, takes the name as it is given.
                self.session.uid_copy(&set, format!("\"{folder}\"")).await?;
                let _: Vec<_> = self
                    .session
                    .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                    .await?
                    .try_collect()
                    .await?;
                let _: Vec<_> = self.session.uid_expunge(&set).await?.try_collect().await?;
            }
            Ok(())
        })
        .await
        .with_context(|| format!("cannot move message {uid} to {folder}"))
    }

    /// Marks a message to be left where it is.
    pub async fn leave_alone(&mut self, uid: u32) -> anyhow::Result<()> {
        let set = uid.to_string();
        timed("store", async {
            let _: Vec<_> = self
                .session
                .uid_store(&set, format!("+FLAGS.SILENT ({LEFT_ALONE})"))
                .await?
                .try_collect()
                .await?;
            Ok(())
        })
        .await
    }

    /// Logs out; a failure here changes nothing already done.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(TIMEOUT, self.session.logout()).await;
    }
}
