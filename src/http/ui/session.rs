//! Admin page sessions, kept in this process's memory. One instance serves
//! the page, so that is enough; a restart signs everyone out, and several
//! instances behind one address would need sticky routing (or a table).
//!
//! A session holds its CSRF token and the uploads waiting for confirmation,
//! so "apply" writes exactly the bytes that were previewed. A waiting upload
//! is an unnamed temporary file, not memory.

use crate::http::spool::Spooled;
use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The session cookie's name.
pub const COOKIE: &str = "ambassador_session";
/// Uploads kept per session awaiting confirmation; older ones are dropped.
const MAX_UPLOADS: usize = 4;
/// Sessions kept at once; beyond this the oldest is signed out (bounded memory).
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
}

struct Session {
    csrf: String,
    created_at: DateTime<Utc>,
    uploads: Vec<(String, Upload)>,
}

/// Every live session of this process.
pub struct Sessions {
    ttl: Duration,
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts after sign-in.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session (sign-in): a fresh random id, never one the browser offered.
    pub fn create(&self, now: DateTime<Utc>) -> SignedIn {
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.created_at + self.ttl > now);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.created_at)
                .map(|(id, _)| id.clone());
            oldest.map(|id| sessions.remove(&id));
        }
        let signed_in = SignedIn {
            id: random_token(),
            csrf: random_token(),
        };
        sessions.insert(
            signed_in.id.clone(),
            Session {
                csrf: signed_in.csrf.clone(),
                created_at: now,
                uploads: Vec::new(),
            },
        );
        signed_in
    }

    /// The live session with this id; an expired one is removed.
    pub fn find(&self, id: &str, now: DateTime<Utc>) -> Option<SignedIn> {
        let mut sessions = self.lock();
        let session = sessions.get(id)?;
        if session.created_at + self.ttl <= now {
            sessions.remove(id);
            return None;
        }
        Some(SignedIn {
            id: id.to_string(),
            csrf: session.csrf.clone(),
        })
    }

    /// Signs out.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Keeps an upload for confirmation; returns its random id.
    pub fn stash(&self, session_id: &str, upload: Upload) -> Option<String> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(session_id)?;
        if session.uploads.len() >= MAX_UPLOADS {
            session.uploads.remove(0);
        }
        let id = random_token();
        session.uploads.push((id.clone(), upload));
        Some(id)
    }

    /// Takes an upload back, once: a second "apply" finds nothing.
    pub fn take(&self, session_id: &str, upload_id: &str, kind: UploadKind) -> Option<Upload> {
        let mut sessions = self.lock();
        let uploads = &mut sessions.get_mut(session_id)?.uploads;
        let at = uploads
            .iter()
            .position(|(id, u)| id == upload_id && u.kind == kind)?;
        Some(uploads.remove(at).1)
    }
}

/// 256 random bits, hex: session ids, CSRF tokens, upload ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
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

    #[test]
    fn a_session_expires_after_its_ttl() {
        let sessions = Sessions::new(Duration::hours(12));
        let t0 = Utc::now();
        let s = sessions.create(t0);
        assert!(sessions.find(&s.id, t0 + Duration::hours(11)).is_some());
        assert!(sessions.find(&s.id, t0 + Duration::hours(12)).is_none());
    }

    #[tokio::test]
    async fn an_upload_is_taken_once_and_only_as_its_kind() {
        let sessions = Sessions::new(Duration::hours(1));
        let s = sessions.create(Utc::now());
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
        let id = sessions.stash(&s.id, upload).unwrap();
        assert!(sessions.take(&s.id, &id, UploadKind::Completions).is_none());
        assert!(sessions.take(&s.id, &id, UploadKind::Roster).is_some());
        assert!(sessions.take(&s.id, &id, UploadKind::Roster).is_none());
    }
}
