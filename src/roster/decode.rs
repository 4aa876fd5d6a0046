//! From the bytes an admin uploaded to text and a delimiter. HR systems and
//! Excel export UTF-8 (with or without BOM), UTF-16 ("Unicode text") or
//! Windows-1252, separated by commas, semicolons (European locales) or tabs.

use std::borrow::Cow;

/// The text of a roster file and how it was read.
#[derive(Debug)]
pub struct DecodedText<'a> {
    pub text: Cow<'a, str>,
    pub encoding: &'static str,
    pub delimiter: u8,
}

/// Why the bytes are not a roster we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("this is {0}, not a CSV file; open it in the spreadsheet program and save it as \"CSV UTF-8\"")]
    KnownBinary(&'static str),
    #[error("this is not a text file (byte {offset} is a binary control byte); export the roster as CSV")]
    NotText { offset: usize },
    #[error("the file is empty; export the roster again with its header row")]
    Empty,
}

/// Detects the encoding and delimiter, and decodes.
pub fn decode(bytes: &[u8]) -> Result<DecodedText<'_>, DecodeError> {
    if let Some(kind) = known_binary(bytes) {
        return Err(DecodeError::KnownBinary(kind));
    }
    let (text, encoding): (Cow<'_, str>, &'static str) =
        if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
            let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
            (text, enc.name())
        } else if let Ok(text) = std::str::from_utf8(bytes) {
            (Cow::Borrowed(text), "UTF-8")
        } else {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            (text, "windows-1252")
        };
    if let Some(offset) = binary_offset(&text) {
        return Err(DecodeError::NotText { offset });
    }
    if text.trim().is_empty() {
        return Err(DecodeError::Empty);
    }
    let delimiter = detect_delimiter(&text);
    Ok(DecodedText {
        text,
        encoding,
        delimiter,
    })
}

fn known_binary(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 5] = [
        (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
        (b"\xD0\xCF\x11\xE0", "an old Excel .xls workbook"),
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\x1F\x8B", "a gzip archive"),
    ];
    SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, kind)| *kind)
}

/// A text file has few control characters besides tab, CR and LF. A single
/// stray NUL in a field is a row problem (reported with its line); many of
/// them mean the file is binary.
fn binary_offset(text: &str) -> Option<usize> {
    let sample: &str = match text.char_indices().nth(65_536) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    let mut controls = 0usize;
    let mut first = None;
    for (offset, c) in sample.char_indices() {
        if c.is_control() && !matches!(c, '\t' | '\r' | '\n') {
            controls += 1;
            first.get_or_insert(offset);
        }
    }
    let chars = sample.chars().count().max(1);
    (controls > 8 && controls * 100 > chars).then(|| first.unwrap_or(0))
}

/// The delimiter is whichever of `,` `;` TAB appears most in the header line
/// outside quotes; a one-column file is comma-separated.
fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_a_utf8_bom() {
        let d = decode(b"\xEF\xBB\xBFEmail\r\na@x.org\r\n").unwrap();
        assert!(d.text.starts_with("Email"));
        assert_eq!(d.encoding, "UTF-8");
    }

    #[test]
    fn falls_back_to_windows_1252() {
        let d = decode(b"Email;Name\nz@x.org;Jos\xE9\n").unwrap();
        assert_eq!(d.encoding, "windows-1252");
        assert!(d.text.contains("José"));
        assert_eq!(d.delimiter, b';');
    }

    #[test]
    fn reads_utf16_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "Email\tName\na@x.org\tAnn\n".encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        let d = decode(&bytes).unwrap();
        assert_eq!(d.delimiter, b'\t');
        assert!(d.text.contains("Ann"));
    }

    #[test]
    fn ignores_delimiters_inside_quotes() {
        assert_eq!(
            decode(b"\"Name; Last\",Email,Dept\n").unwrap().delimiter,
            b','
        );
    }

    #[test]
    fn recognises_a_workbook() {
        assert!(matches!(
            decode(b"PK\x03\x04rest"),
            Err(DecodeError::KnownBinary(_))
        ));
    }

    #[test]
    fn refuses_binary_noise() {
        let noise: Vec<u8> = (0..2000u32).map(|i| (i % 7) as u8).collect();
        assert!(matches!(decode(&noise), Err(DecodeError::NotText { .. })));
    }
}
