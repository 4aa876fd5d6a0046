//! The upload forms' shared parts: reading the multipart form (file, CSRF
//! token, one choice), and the confirm form that names a kept upload.

use super::session::{SignedIn, Upload, UploadKind};
use super::{check_csrf, UiError};
use crate::http::spool::{Mapped, SpoolError, Spooled};
use axum::extract::multipart::MultipartError;
use axum::extract::Multipart;
use futures::StreamExt;
use serde::Deserialize;
use std::sync::Arc;

/// Reads an upload form, checks its CSRF token, and returns the file,
/// spooled to a temporary file of at most `limit` bytes. `choice_field` is
/// the form's one choice (roster mode, campaign); a `skip_invalid` box
/// ticked with value 1 is kept too.
pub async fn read(
    mut form: Multipart,
    session: &SignedIn,
    kind: UploadKind,
    choice_field: &str,
    limit: u64,
) -> Result<Upload, UiError> {
    let bad = |e: MultipartError| spool_error(e.into());
    let (mut csrf, mut choice, mut file) = (String::new(), String::new(), None);
    let mut skip_invalid = false;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.map_err(bad)?,
            "file" => {
                let name = clean_name(field.file_name().unwrap_or("upload.csv"));
                let chunks = field.map(|chunk| chunk.map_err(SpoolError::from));
                let spooled = Spooled::from_stream(chunks, limit)
                    .await
                    .map_err(spool_error)?;
                file = Some((name, spooled));
            }
            "skip_invalid" => skip_invalid = field.text().await.map_err(bad)? == "1",
            name if name == choice_field => choice = field.text().await.map_err(bad)?,
            _ => {}
        }
    }
    check_csrf(session, &csrf)?;
    match file {
        Some((file_name, spooled)) if !spooled.is_empty() => Ok(Upload {
            kind,
            file_name,
            file: Arc::new(spooled),
            choice,
            skip_invalid,
        }),
        _ => Err(UiError::BadRequest(
            "No file was chosen, or it is empty. Choose the CSV file and upload it again.".into(),
        )),
    }
}

/// The page's wording for a failed upload.
fn spool_error(e: SpoolError) -> UiError {
    match e {
        SpoolError::TooLarge => UiError::TooLarge(
            "The file is too large. Split it, or raise roster.max_file_bytes.".into(),
        ),
        SpoolError::Body(e) => {
            UiError::BadRequest(format!("The upload could not be read ({e}). Try again."))
        }
        SpoolError::Disk(e) => UiError::Internal(anyhow::anyhow!(
            "cannot keep an upload in a temporary file: {e}"
        )),
    }
}

/// The kept upload's bytes, mapped for one import run.
pub fn contents(upload: &Upload) -> Result<Mapped, UiError> {
    upload
        .file
        .map()
        .map_err(|e| UiError::Internal(anyhow::anyhow!("cannot map a kept upload: {e}")))
}

/// A file name fit to show and record: no control characters, not too long.
fn clean_name(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.trim().is_empty() {
        "upload.csv".into()
    } else {
        name
    }
}

/// "Apply": the kept upload's id, and the CSRF token.
#[derive(Debug, Deserialize)]
pub struct Confirm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub upload: String,
    /// Apply although the dry run was refused as a whole (`--force`).
    #[serde(default)]
    pub force: bool,
}

/// The kept upload a confirm form names, once.
pub fn take(
    state: &super::AppState,
    session: &SignedIn,
    confirm: &Confirm,
    kind: UploadKind,
) -> Result<Upload, UiError> {
    check_csrf(session, &confirm.csrf)?;
    state
        .ui
        .uploads
        .take(&session.id, &confirm.upload, kind)
        .ok_or_else(|| {
            UiError::BadRequest(
                "That upload is no longer waiting (it was applied already, or another instance of the server or a restart does not have it). Upload the file again.".into(),
            )
        })
}
