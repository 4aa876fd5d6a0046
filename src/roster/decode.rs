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
    /// Mostly UTF-8 with some bytes that are not: guessing another encoding
    /// would turn every accented letter into mojibake.
    #[error("line {line}, byte offset {offset}: not valid UTF-8 ({bytes}), though other characters in the file are UTF-8, so no other encoding was guessed. Fix or retype the character on that line and save the file as \"CSV UTF-8\"")]
    InvalidUtf8 {
        line: u64,
        offset: usize,
        bytes: String,
    },
    /// A byte-order mark names an encoding the rest of the file breaks.
    #[error("line {line}, byte offset {offset}: the file starts with a {encoding} byte-order mark but this is not valid {encoding}; save the file again as \"CSV UTF-8\"")]
    InvalidUtf16 {
        encoding: &'static str,
        line: u64,
        offset: usize,
    },
}

/// Detects the encoding and delimiter, and decodes.
///
/// The rule: a byte-order mark decides; without one the file is UTF-8 when
/// it is valid UTF-8, Windows-1252 when it holds no valid multi-byte UTF-8
/// sequence at all, and refused (with where) when it mixes the two.
pub fn decode(bytes: &[u8]) -> Result<DecodedText<'_>, DecodeError> {
    if let Some(kind) = known_binary(bytes) {
        return Err(DecodeError::KnownBinary(kind));
    }
    let (text, encoding): (Cow<'_, str>, &'static str) = match encoding_rs::Encoding::for_bom(bytes)
    {
        Some((enc, bom_len)) if enc == encoding_rs::UTF_8 => {
            (Cow::Borrowed(utf8(bytes, bom_len)?), "UTF-8")
        }
        Some((enc, bom_len)) => (utf16(bytes, bom_len, enc)?, enc.name()),
        None => match std::str::from_utf8(bytes) {
            Ok(text) => (Cow::Borrowed(text), "UTF-8"),
            Err(e) if has_multibyte_utf8(bytes) => {
                return Err(invalid_utf8(bytes, e.valid_up_to(), e.error_len()))
            }
            Err(_) => {
                let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
                (text, "windows-1252")
            }
        },
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

/// The text after a UTF-8 byte-order mark, which must be UTF-8 throughout.
fn utf8(bytes: &[u8], bom_len: usize) -> Result<&str, DecodeError> {
    std::str::from_utf8(&bytes[bom_len..])
        .map_err(|e| invalid_utf8(bytes, bom_len + e.valid_up_to(), e.error_len()))
}

/// Where the first invalid UTF-8 sequence is, and its bytes.
fn invalid_utf8(bytes: &[u8], offset: usize, len: Option<usize>) -> DecodeError {
    let end = offset + len.unwrap_or(bytes.len() - offset).min(4);
    let shown: Vec<String> = bytes[offset..end]
        .iter()
        .map(|b| format!("0x{b:02X}"))
        .collect();
    DecodeError::InvalidUtf8 {
        line: 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64,
        offset,
        bytes: shown.join(" "),
    }
}

/// Whether the bytes hold at least one valid multi-byte UTF-8 sequence: a
/// file that does is UTF-8 with errors, not Windows-1252 (whose accented
/// letters almost never form valid UTF-8 pairs).
fn has_multibyte_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => return !text.is_ascii(),
            Err(e) => {
                if !rest[..e.valid_up_to()].is_ascii() {
                    return true;
                }
                match e.error_len() {
                    Some(len) => rest = &rest[e.valid_up_to() + len..],
                    None => return false,
                }
            }
        }
    }
}

/// UTF-16 text after its byte-order mark; an unpaired surrogate or an odd
/// trailing byte is refused with where it is, not replaced.
fn utf16<'b>(
    bytes: &'b [u8],
    bom_len: usize,
    encoding: &'static encoding_rs::Encoding,
) -> Result<Cow<'b, str>, DecodeError> {
    let body = &bytes[bom_len..];
    if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(body) {
        if body.len() % 2 == 0 {
            return Ok(text);
        }
    }
    let big_endian = encoding == encoding_rs::UTF_16BE;
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let mut line = 1u64;
    let mut index = 0usize;
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => {
                line += u64::from(c == '\n');
                index += c.len_utf16();
            }
            Err(_) => break,
        }
    }
    Err(DecodeError::InvalidUtf16 {
        encoding: encoding.name(),
        line,
        offset: bom_len + 2 * index,
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

    #[test]
    fn refuses_utf8_with_one_bad_byte_naming_line_and_offset() {
        // "Zoë" in UTF-8 on line 2, then a lone Windows-1252 "é" on line 3.
        let bytes = b"Email,Name\nz@x.org,Zo\xC3\xAB\nj@x.org,Jos\xE9\n";
        assert_eq!(
            decode(bytes).unwrap_err(),
            DecodeError::InvalidUtf8 {
                line: 3,
                offset: 35,
                bytes: "0xE9".into()
            }
        );
    }

    #[test]
    fn refuses_a_utf8_bom_followed_by_invalid_bytes() {
        let err = decode(b"\xEF\xBB\xBFEmail\na@x.org\xFF\n").unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::InvalidUtf8 {
                    line: 2,
                    offset: 16,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_utf16_with_an_unpaired_surrogate() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "Email\na@x.org\n".encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        let offset = bytes.len();
        bytes.extend(0xD800u16.to_le_bytes());
        assert_eq!(
            decode(&bytes).unwrap_err(),
            DecodeError::InvalidUtf16 {
                encoding: "UTF-16LE",
                line: 3,
                offset
            }
        );
    }
}
