//! The configured shared admin token (deprecated; personal tokens replace
//! it): kept only as its SHA-256 and compared in constant time by
//! [`super::access`].

use sha2::{Digest, Sha256};

/// The digest presented tokens are compared with; `None` disables the API.
pub fn expected_digest(security: &crate::config::Security) -> Option<Vec<u8>> {
    if !security.admin_token_sha256.is_empty() {
        return hex::decode(security.admin_token_sha256.expose().trim()).ok();
    }
    (!security.admin_token.is_empty())
        .then(|| Sha256::digest(security.admin_token.expose().as_bytes()).to_vec())
}
