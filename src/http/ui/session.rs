//! The admin page's side of sessions: the cookie, and the uploads waiting
//! for confirmation. Sessions themselves live in the database
//! ([`crate::accounts::session`]): every instance accepts the same cookie,
//! a restart keeps it, and signing out ends it everywhere.
//!
//! A waiting upload is an unnamed temporary file of the instance that
//! received it, not memory and not the database, so "apply" writes exactly
//! the bytes that were previewed. Behind several instances, "apply" on
//! another instance than the preview answers "upload the file again".

use crate::accounts::Principal;
use crate::http::spool::Spooled;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use crate::accounts::session::random_token;

/// The session cookie's name.
pub const COOKIE: &str = "ambassador_session";
/// Uploads kept per session awaiting confirmation; older ones are dropped.
const MAX_UPLOADS: usize = 4;
/// Sessions with waiting uploads kept at once; beyond this the oldest
/// session's uploads are dropped (bounded disk).
const MAX_SESSIONS: usize = 1000;

/// What an upload is, so a roster id cannot be confirmed as completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Roster,
    Completions,
}

/// An uploaded file waiting for "apply".
#[derive(Debug, Clone)]
pub struct Upload {
    pub kind: UploadKind,
    pub file_name: String,
    /// The file as uploaded, kept on disk until "apply" or until it is dropped.
    pub file: Arc<Spooled>,
    /// The roster mode, or the completions' campaign slug (may be empty).
    pub choice: String,
    /// Import the valid rows and report the others (roster only), as
    /// `roster import --skip-invalid` does.
    pub skip_invalid: bool,
}

/// The signed-in session a handler works for.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub id: String,
    pub csrf: String,
    pub principal: Principal,
}

/// Each session's waiting uploads, with the tick of its last stash.
type Waiting = HashMap<String, (u64, Vec<(String, Upload)>)>;

/// Uploads waiting for "apply", per session, in this process.
#[derive(Default)]
pub struct Uploads {
    inner: Mutex<Waiting>,
    /// Orders sessions by their last stash, to drop the oldest first.
    counter: std::sync::atomic::AtomicU64,
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps an upload for confirmation; returns its random id.
    pub fn stash(&self, session_id: &str, upload: Upload) -> String {
        let tick = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut sessions = self.lock();
        if !sessions.contains_key(session_id) && sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(id, _)| id.clone());
            oldest.map(|id| sessions.remove(&id));
        }
        let (last, uploads) = sessions.entry(session_id.to_string()).or_default();
        *last = tick;
        if uploads.len() >= MAX_UPLOADS {
            uploads.remove(0);
        }
        let id = random_token();
        uploads.push((id.clone(), upload));
        id
    }

    /// Takes an upload back, once: a second "apply" finds nothing.
    pub fn take(&self, session_id: &str, upload_id: &str, kind: UploadKind) -> Option<Upload> {
        let mut sessions = self.lock();
        let (_, uploads) = sessions.get_mut(session_id)?;
        let at = uploads
            .iter()
            .position(|(id, u)| id == upload_id && u.kind == kind)?;
        Some(uploads.remove(at).1)
    }

    /// Drops a signed-out session's uploads.
    pub fn forget(&self, session_id: &str) {
        self.lock().remove(session_id);
    }
}

/// The value of one cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure on https.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upload_is_taken_once_and_only_as_its_kind() {
        let uploads = Uploads::default();
        let upload = Upload {
            kind: UploadKind::Roster,
            file_name: "a.csv".into(),
            file: Arc::new(
                Spooled::from_stream(futures::stream::empty(), 1)
                    .await
                    .unwrap(),
            ),
            choice: "sync".into(),
            skip_invalid: false,
        };
        let id = uploads.stash("s1", upload);
        assert!(uploads.take("s2", &id, UploadKind::Roster).is_none());
        assert!(uploads.take("s1", &id, UploadKind::Completions).is_none());
        assert!(uploads.take("s1", &id, UploadKind::Roster).is_some());
        assert!(uploads.take("s1", &id, UploadKind::Roster).is_none());
    }
}
