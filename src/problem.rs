//! What kind of failure an error is, said by the code that fails and read
//! by type at the edges: the HTTP status (the API and the admin page share
//! `http`'s one mapping) and the command line's exit code. An edge never
//! reads a message's text to decide, so rewording a message changes no
//! status. Lowest in the module order: it depends on no other module.

/// The kinds of failure the edges answer differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed: unparsable JSON, a bad query string or form.
    BadRequest,
    /// No credentials, or wrong ones.
    Unauthorised,
    /// Signed in, but the form did not come from this page (CSRF).
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The resource exists, the method does not.
    MethodNotAllowed,
    /// Well-formed, but the current state forbids it (resuming a cancelled campaign).
    Conflict,
    /// Well-formed, but a value is wrong: a rejected row, an unknown campaign named in a field.
    Invalid,
    /// The body is over the configured limit.
    TooLarge,
    /// The body is in a format the operation does not take.
    UnsupportedMediaType,
    /// Too many failed attempts from one client.
    TooManyRequests,
    /// Switched off by configuration.
    Unavailable,
    /// Ours: a database or disk failure, a bug. Logged, never shown.
    Internal,
}

impl Kind {
    /// Whether the caller can act on the message (shown to them); otherwise
    /// the failure is ours, logged and answered with a generic message.
    pub fn is_callers(self) -> bool {
        self != Kind::Internal
    }

    /// The command line's exit status for a command that failed this way.
    /// docs/cli-json.md promises 1 for every failure, the caller's and ours
    /// alike (the message on stderr says which), so scripts test `!= 0`.
    pub fn exit_code(self) -> u8 {
        1
    }
}

/// A failure whose kind the failing code knows. The message is the one the
/// caller sees, unchanged by the edge.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Nothing by that name (a campaign slug in a path or a command).
    #[error("{0}")]
    NotFound(String),
    /// The current state forbids it.
    #[error("{0}")]
    Conflict(String),
    /// `field` (a JSON field, query parameter or option, as the caller wrote
    /// it) holds a value that cannot be used; `reason` says why and what to do.
    #[error("{reason}")]
    Invalid { field: String, reason: String },
}

impl Problem {
    /// A wrong value in `field`.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Problem::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Problem::NotFound(_) => Kind::NotFound,
            Problem::Conflict(_) => Kind::Conflict,
            Problem::Invalid { .. } => Kind::Invalid,
        }
    }
}

/// The kind of any error: that of the first [`Problem`] in its chain of
/// causes (context added on the way up keeps it), else [`Kind::Internal`].
pub fn kind_of(error: &anyhow::Error) -> Kind {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Problem>())
        .map_or(Kind::Internal, Problem::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_read_from_the_type_through_added_context() {
        let lookup: anyhow::Error = Problem::NotFound("no campaign with slug \"x\"".into()).into();
        let wrapped = lookup.context("while importing completions");
        assert_eq!(kind_of(&wrapped), Kind::NotFound);
        let same_words = anyhow::anyhow!("no campaign with slug \"x\"");
        assert_eq!(kind_of(&same_words), Kind::Internal, "text is never read");
    }
}
