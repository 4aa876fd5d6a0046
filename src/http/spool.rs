//! Upload bodies written to an unnamed temporary file as they arrive.
//!
//! Collecting a body in memory holds it twice at its peak (the received
//! chunks and the buffer they are copied into: 100 MB for a 50 MB roster).
//! Spooled, the body is in memory once, only while it is parsed; the byte
//! limit is enforced as it streams, so an oversized body is cut off early.
//! The import then reads the file through a memory map whose pages are
//! handed back as it moves on ([`Mapped::release`]), so the body is not
//! resident as a whole while the import's own state grows. The admin page
//! keeps a previewed upload this way until "apply".

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

/// Bytes written to the temporary file at a time.
const WRITE_BUFFER: usize = 1 << 20;

/// Why an upload could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The body passed the size limit while it streamed.
    #[error("the upload is larger than the size limit")]
    TooLarge,
    /// The client's body broke off or was malformed.
    #[error("cannot read the upload: {0}")]
    Body(String),
    /// The temporary file could not be created or written.
    #[error("cannot keep the upload in a temporary file: {0}")]
    Disk(#[from] std::io::Error),
}

/// A multipart body's error as a spooling one, keeping "over the limit" apart.
impl From<axum::extract::multipart::MultipartError> for SpoolError {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            SpoolError::TooLarge
        } else {
            SpoolError::Body(e.to_string())
        }
    }
}

/// An upload in a temporary file that has no name on disk; the file is gone
/// once this is dropped (or the process ends).
#[derive(Debug)]
pub struct Spooled {
    file: std::fs::File,
    len: u64,
}

impl Spooled {
    /// Writes `chunks` to a new temporary file, refusing more than `limit` bytes.
    pub async fn from_stream<S>(chunks: S, limit: u64) -> Result<Self, SpoolError>
    where
        S: Stream<Item = Result<Bytes, SpoolError>>,
    {
        let file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        let mut out =
            tokio::io::BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
        let mut len = 0u64;
        futures::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            if len > limit {
                return Err(SpoolError::TooLarge);
            }
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        let file = out.into_inner().into_std().await;
        Ok(Self { file, len })
    }

    /// Whether the upload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The upload as one byte slice, mapped from the file.
    pub fn map(&self) -> std::io::Result<Mapped> {
        // SAFETY: the file has no name on disk and only this process holds
        // it; nothing writes to it once spooled, so the bytes never change
        // under the map.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Mapped { map })
    }
}

/// A spooled upload mapped read-only into memory.
pub struct Mapped {
    map: memmap2::Mmap,
}

impl Mapped {
    /// Drops the pages read so far from this process's resident set; a
    /// later read of them faults them back in from the file's pages.
    pub fn release(&self) {
        // SAFETY: a read-only, shared mapping of a file: MADV_DONTNEED
        // discards no data, the next access reads the file again.
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> impl Stream<Item = Result<Bytes, SpoolError>> {
        let parts: Vec<_> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        futures::stream::iter(parts)
    }

    #[tokio::test]
    async fn a_body_reads_back_whole() {
        let spooled = Spooled::from_stream(chunks(&["Email,", "Name\n", "a@x.org,A\n"]), 100)
            .await
            .unwrap();
        let whole = b"Email,Name\na@x.org,A\n";
        let mapped = spooled.map().unwrap();
        assert_eq!(&*mapped, whole);
        // Released pages read the same again, and so does a second map
        // ("apply" after a preview).
        mapped.release();
        assert_eq!(&*mapped, whole);
        assert_eq!(&*spooled.map().unwrap(), whole);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_cut_off() {
        let err = Spooled::from_stream(chunks(&["12345", "67890", "x"]), 10)
            .await
            .unwrap_err();
        assert!(matches!(err, SpoolError::TooLarge), "{err}");
    }
}
