//! Body encoding exactly as lettre's `Body::new` does it (the same chooser,
//! `email-encoding`, and the same quoted-printable encoder), but able to take
//! lines that never change already encoded.
//!
//! Why this is byte for byte the same: lettre turns LF into CRLF and then
//! quoted-printable encodes; both only look within a line (a CRLF resets the
//! encoder's line state), so the encoding of text cut just after a line end
//! is the encodings of the pieces, one after the other. Tests below check it
//! against lettre on hostile text.

use email_encoding::body::Encoding;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::Body;

/// The body lettre would make of `text` (what `SinglePart::body(String)` does).
pub fn body(text: &str) -> Body {
    Body::new(text.to_string())
}

/// Appends `text` with every LF not after a CR turned into CRLF, as lettre does.
fn push_crlf(text: &str, out: &mut Vec<u8>) {
    let mut previous = 0u8;
    for &byte in text.as_bytes() {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
}

/// Quoted-printable of `text` after the CRLF conversion, appended to `out`.
fn push_quoted_printable(text: &str, out: &mut Vec<u8>) {
    if text.is_empty() {
        return;
    }
    let mut crlf = Vec::with_capacity(text.len() + text.len() / 32);
    push_crlf(text, &mut crlf);
    out.extend_from_slice(&quoted_printable::encode(crlf));
}

/// Whole lines of text that are the same in every message, encoded once.
#[derive(Debug)]
pub struct FixedLines {
    /// Quoted-printable of the lines (CRLF line ends), what lettre would write.
    quoted_printable: Vec<u8>,
}

impl FixedLines {
    /// `lines` must end with a line end (`\n`).
    pub fn new(lines: &str) -> Self {
        debug_assert!(lines.ends_with('\n'));
        let mut quoted_printable = Vec::with_capacity(lines.len() + lines.len() / 16);
        push_quoted_printable(lines, &mut quoted_printable);
        Self { quoted_printable }
    }
}

/// A body as assembled for one message: its text, and where in it lie
/// fixed lines already encoded (byte ranges, each starting just after a
/// line end and ending with one).
pub struct Assembled<'a> {
    pub text: &'a str,
    pub fixed: &'a [(std::ops::Range<usize>, &'a FixedLines)],
}

impl Assembled<'_> {
    /// The same [`Body`] as [`body`] of the text, reusing the encoded lines.
    pub fn encode(&self) -> Body {
        match Encoding::choose(self.text, false) {
            Encoding::QuotedPrintable => Body::dangerous_pre_encoded(
                self.quoted_printable(),
                ContentTransferEncoding::QuotedPrintable,
            ),
            Encoding::SevenBit => {
                let mut out = Vec::with_capacity(self.text.len() + self.text.len() / 32);
                push_crlf(self.text, &mut out);
                Body::dangerous_pre_encoded(out, ContentTransferEncoding::SevenBit)
            }
            // Base64 (more than a third of the bytes need escaping): nothing to reuse.
            _ => body(self.text),
        }
    }

    fn quoted_printable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + self.text.len() / 16);
        let mut from = 0;
        for (range, lines) in self.fixed {
            push_quoted_printable(&self.text[from..range.start], &mut out);
            out.extend_from_slice(&lines.quoted_printable);
            from = range.end;
        }
        push_quoted_printable(&self.text[from..], &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `text` with every run of whole lines between the cuts
    /// taken as fixed, and compares with lettre.
    fn same_as_lettre(text: &str, cuts: &[usize]) {
        let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        let mut fixed_lines = Vec::new();
        for pair in cuts.windows(2) {
            let (Some(&start), Some(&end)) = (ends.get(pair[0]), ends.get(pair[1])) else {
                continue;
            };
            if start < end {
                fixed_lines.push((start..end, FixedLines::new(&text[start..end])));
            }
        }
        let fixed: Vec<_> = fixed_lines.iter().map(|(r, l)| (r.clone(), l)).collect();
        let ours = Assembled {
            text,
            fixed: &fixed,
        }
        .encode();
        let theirs = body(text);
        assert_eq!(ours.encoding(), theirs.encoding(), "{text:?}");
        assert_eq!(
            String::from_utf8_lossy(ours.as_ref()),
            String::from_utf8_lossy(theirs.as_ref()),
            "{text:?} cut at {cuts:?}"
        );
    }

    #[test]
    fn lines_encoded_apart_are_what_lettre_writes_for_the_whole() {
        let long = "x".repeat(75);
        let texts = [
            format!("short\n{long}=\nHi Zoë,\r\nthe end"),
            format!("<p>{long}  \n \t\n\n\r\n=3D {long}{long}\n\n\nénd  "),
            format!("trailing space \nand tab\t\n{long} \n{long}\t\r\nlast\r"),
            format!("\nstarts with a line end\n{}\n", "é".repeat(40)),
            format!("{}\n{long}\r\r\n\r{long}\n", "a b ".repeat(30)),
            // lines exactly at and around the 76-column limit, with escapes at the edge
            format!(
                "{}=\n{}=x\n{}é\n{} \n",
                "a".repeat(75),
                "b".repeat(74),
                "c".repeat(74),
                "d".repeat(75)
            ),
        ];
        for text in &texts {
            let lines = text.matches('\n').count();
            for a in 0..lines {
                for b in a..lines {
                    same_as_lettre(text, &[a, b]);
                    same_as_lettre(text, &[0, a, b, lines - 1]);
                }
            }
        }
    }

    #[test]
    fn short_ascii_is_seven_bit_and_mostly_non_ascii_is_base64() {
        same_as_lettre("Hi Ann,\nsee you\n", &[0, 1]);
        same_as_lettre(&"ж\n".repeat(50), &[0, 10, 20]);
        assert_eq!(
            body("Hi Ann,\n").encoding(),
            ContentTransferEncoding::SevenBit
        );
    }
}
