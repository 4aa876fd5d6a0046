//! Staff rosters: reading HR exports as they really come (encodings,
//! delimiters, aliased headers), validating every row, and syncing the result
//! into `staff` all-or-nothing.
//!
//! Invariants: an import either writes everything it reports or nothing; a
//! person is never deleted, only deactivated; a sync that would deactivate an
//! implausible share of the roster, or an export without data rows, is refused
//! unless forced.

mod decode;
mod fields;
mod import;
mod parse;
mod settings;
mod sync;
mod windows_zones;
mod writer;
mod zones;

pub use decode::{decode, DecodeError};
pub use fields::{
    attribute_key, check_header_shape, normalise_header, Field, HeaderError, Mapping,
    MAX_HEADER_CHARS,
};
pub use import::{import, import_listing};
pub use parse::{
    column_label, line_of, ColumnMapping, HeaderRowError, ParseLimits, PersonRecord, RosterReader,
    Row, RowError,
};
pub use settings::RosterSettings;
pub use sync::{FieldChange, ImportMode};

use crate::problem::{kind_of, Kind};

/// How to run one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Which system the file comes from; a sync only touches this source.
    pub source: crate::store::RosterSource,
    pub mode: ImportMode,
    pub dry_run: bool,
    pub skip_invalid: bool,
    pub force: bool,
    /// Shown in reports and recorded with the import.
    pub file_name: String,
}

/// Counts of what an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub rejected: u64,
}

/// One person's change, for dry-run output and the JSON report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonChange {
    pub action: &'static str,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// The result of an import, written or not. `--format json` prints this.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// True when the database was changed.
    pub applied: bool,
    pub dry_run: bool,
    pub import_id: Option<i64>,
    pub source: String,
    pub mode: ImportMode,
    pub file: String,
    pub sha256: String,
    pub encoding: String,
    pub delimiter: String,
    pub counts: Counts,
    /// Each column of the file and where it went (field, attribute, ignore).
    pub columns: Vec<ColumnMapping>,
    /// Every rejected row: line, column and reason.
    pub rejected: Vec<RowError>,
    /// Problems that did not reject a row (an unknown time zone left empty).
    pub warnings: Vec<RowError>,
    /// Why nothing was written, when the import was refused as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub changes: Vec<PersonChange>,
    /// Set when `rejected` and `changes` list at most this many entries of
    /// each kind (adds, updates, deactivations); `counts` has the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_at_most: Option<usize>,
}

/// How much of an import a report lists: the CLI shows every row; the HTTP
/// side, which holds the whole answer in memory, the first few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Every,
    First(usize),
}

impl Listing {
    fn has_room(self, listed: usize) -> bool {
        match self {
            Listing::Every => true,
            Listing::First(n) => listed < n,
        }
    }

    fn at_most(self) -> Option<usize> {
        match self {
            Listing::Every => None,
            Listing::First(n) => Some(n),
        }
    }
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{}: {} row(s) rejected; nothing was imported. Fix the rows listed, or pass --skip-invalid to import the valid rows only", .0.file, .0.counts.rejected)]
    Rejected(Box<ImportReport>),
    #[error("{}: {}", .0.file, .0.refused.as_deref().unwrap_or("refused"))]
    Refused(Box<ImportReport>),
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

impl ImportError {
    /// A file that cannot be read, rejected rows and a refused sync are the
    /// caller's to fix; a database failure is ours.
    pub fn kind(&self) -> Kind {
        match self {
            ImportError::Unreadable { .. } | ImportError::Rejected(_) | ImportError::Refused(_) => {
                Kind::Invalid
            }
            ImportError::Database(e) => kind_of(e),
        }
    }

    /// The report behind a row-level failure, for printing.
    pub fn report(&self) -> Option<&ImportReport> {
        match self {
            ImportError::Rejected(r) | ImportError::Refused(r) => Some(r),
            _ => None,
        }
    }
}
