//! `[roster]` settings: the roster module owns them, so it needs nothing from
//! `config` (which embeds them): `config` depends on `roster`, never the reverse.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How roster files are read and how far one import may change the staff.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RosterSettings {
    pub columns: BTreeMap<String, String>,
    pub max_deactivate_share: f64,
    pub max_field_length: usize,
    /// The most columns a roster file may have.
    pub max_columns: usize,
    pub max_file_bytes: u64,
}
