//! The break-glass local password: Argon2id, verified off the async threads
//! by the caller (it is slow on purpose).

use crate::problem::Problem;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Fewer characters than this are refused: the password guards an admin.
pub const MIN_LENGTH: usize = 12;

/// The Argon2id PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(Problem::invalid(
            "password",
            format!("the password must have at least {MIN_LENGTH} characters"),
        )
        .into());
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `presented` is the password of the PHC string `phc`.
pub fn verify(phc: &str, presented: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(presented.as_bytes(), &hash)
            .is_ok()
    })
}

/// Refuses a string that is not an Argon2 PHC string.
pub fn check_phc(phc: &str) -> anyhow::Result<()> {
    match PasswordHash::new(phc) {
        Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(()),
        _ => Err(Problem::invalid(
            "password_hash",
            "not an Argon2 PHC string (\"$argon2id$...\")",
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&phc, "correct horse battery"));
        assert!(!verify(&phc, "correct horse battery!"));
        assert!(check_phc(&phc).is_ok());
        assert!(check_phc("plain text").is_err());
    }

    #[test]
    fn a_short_password_is_refused() {
        assert!(hash("short").is_err());
    }
}
