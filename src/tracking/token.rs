//! Signed tracking tokens: which message and which link, with an HMAC-SHA256
//! tag (truncated to 128 bits) so a token cannot be guessed, forged or
//! altered to point at another person's message.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Open,
    Course,
    Video,
    Complete,
    /// The VERP return path of a message: bounces come back to it.
    Bounce,
}

impl LinkKind {
    fn byte(self) -> u8 {
        match self {
            LinkKind::Open => 1,
            LinkKind::Course => 2,
            LinkKind::Video => 3,
            LinkKind::Complete => 4,
            LinkKind::Bounce => 5,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => LinkKind::Open,
            2 => LinkKind::Course,
            3 => LinkKind::Video,
            4 => LinkKind::Complete,
            5 => LinkKind::Bounce,
            _ => return None,
        })
    }
}

/// A verified token's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub outbox_id: i64,
    pub kind: LinkKind,
}

const TAG_LEN: usize = 16;
const PAYLOAD_LEN: usize = 9;

/// Signs and verifies tokens with one secret key.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    pub fn sign(&self, claims: Claims) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.extend_from_slice(&claims.outbox_id.to_be_bytes());
        bytes.push(claims.kind.byte());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The claims of a genuine token; `None` for anything forged, altered or truncated.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        if token.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != PAYLOAD_LEN + TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag).ok()?;
        let outbox_id = i64::from_be_bytes(payload[..8].try_into().ok()?);
        Some(Claims {
            outbox_id,
            kind: LinkKind::from_byte(payload[8])?,
        })
    }

    /// The token of a message's VERP return path, in lower-case hex:
    /// mail systems may change the case of an address's local part, and
    /// 50 characters keep `bounce+TOKEN` under the 64 a local part allows.
    pub fn sign_bounce(&self, outbox_id: i64) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.extend_from_slice(&outbox_id.to_be_bytes());
        bytes.push(LinkKind::Bounce.byte());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        hex::encode(bytes)
    }

    /// The message a VERP token names; `None` for anything forged or
    /// altered, and for a link token (those do not name a return path).
    pub fn verify_bounce(&self, token: &str) -> Option<i64> {
        if token.len() != 2 * (PAYLOAD_LEN + TAG_LEN) {
            return None;
        }
        let bytes = hex::decode(token.to_ascii_lowercase()).ok()?;
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        if LinkKind::from_byte(payload[8]) != Some(LinkKind::Bounce) {
            return None;
        }
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag).ok()?;
        Some(i64::from_be_bytes(payload[..8].try_into().ok()?))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Reads the key file, creating it (mode 0600, 32 random bytes) on first start.
///
/// Several instances may start at once on one host with no key yet: the key
/// is written to a temporary file beside it and linked into place only if no
/// key is there (`persist_noclobber`), so nobody reads a half-written key and
/// the losers read the winner's.
pub fn load_or_create_key(path: &std::path::Path) -> anyhow::Result<TokenKey> {
    use anyhow::Context;
    use std::io::Write;
    if let Some(secret) = crate::config::read_tracking_key(path)? {
        return Ok(TokenKey::new(&secret));
    }
    let secret: [u8; 32] = rand::random();
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir
        }
        None => std::path::Path::new("."),
    };
    let cannot = || format!("cannot create the tracking key file {}", path.display());
    // NamedTempFile is created with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).with_context(cannot)?;
    file.write_all(hex::encode(secret).as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(cannot)?;
    match file.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "generated a new tracking key");
            Ok(TokenKey::new(&secret))
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = crate::config::read_tracking_key(path)?
                .with_context(|| format!("{} vanished while it was created", path.display()))?;
            Ok(TokenKey::new(&secret))
        }
        Err(e) => Err(e.error).with_context(cannot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn instances_starting_at_once_create_one_key_and_all_read_it() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keys").join("token.key");
            let start = std::sync::Barrier::new(8);
            let signed: Vec<String> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            load_or_create_key(&path).unwrap().sign(Claims {
                                outbox_id: 7,
                                kind: LinkKind::Open,
                            })
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert!(signed.iter().all(|t| *t == signed[0]), "{signed:?}");
            let on_disk = load_or_create_key(&path).unwrap();
            assert_eq!(on_disk.verify(&signed[0]).map(|c| c.outbox_id), Some(7));
            let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
            assert_eq!(left.len(), 1, "no temporary file left beside the key");
        }
    }

    #[test]
    fn a_signed_token_verifies() {
        let claims = Claims {
            outbox_id: 42,
            kind: LinkKind::Course,
        };
        assert_eq!(key().verify(&key().sign(claims)), Some(claims));
    }

    #[test]
    fn altered_truncated_and_foreign_tokens_fail() {
        let token = key().sign(Claims {
            outbox_id: 42,
            kind: LinkKind::Open,
        });
        let mut altered = token.clone().into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(key().verify(std::str::from_utf8(&altered).unwrap()), None);
        assert_eq!(key().verify(&token[..token.len() - 2]), None);
        assert_eq!(TokenKey::new(b"another key entirely!").verify(&token), None);
        assert_eq!(key().verify("not base64 !!"), None);
    }

    #[test]
    fn a_bounce_token_verifies_in_any_case_and_nothing_else_does() {
        let token = key().sign_bounce(7);
        assert_eq!(token.len() + "bounce+".len(), 57);
        assert_eq!(key().verify_bounce(&token), Some(7));
        assert_eq!(key().verify_bounce(&token.to_ascii_uppercase()), Some(7));
        let mut altered = token.clone().into_bytes();
        altered[0] = if altered[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            key().verify_bounce(std::str::from_utf8(&altered).unwrap()),
            None
        );
        assert_eq!(
            TokenKey::new(b"another key entirely!").verify_bounce(&token),
            None
        );
        let link = key().sign(Claims {
            outbox_id: 7,
            kind: LinkKind::Open,
        });
        assert_eq!(key().verify_bounce(&link), None);
    }
}
