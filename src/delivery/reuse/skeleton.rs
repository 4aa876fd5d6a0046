//! A template's parts rendered once with a mark where each fillable value
//! goes, cut at the marks; each message fills the values in.

use super::shape::MARKS;
use crate::delivery::encode::{Assembled, FixedLines};
use lettre::message::Body;
use std::ops::Range;

/// The mark rendered in place of value `index`: private-use noncharacters
/// around it, and an `&` that HTML escaping turns into `&amp;`, so the cut
/// sees whether the template printed the value escaped.
pub fn mark(index: usize) -> String {
    format!("{}{index}&{}", MARKS[0], MARKS[1])
}

/// Text the same in every message, or a value of this one.
#[derive(Debug)]
pub enum Piece {
    Text(String),
    Value { index: usize, escaped: bool },
}

/// Cuts a render at its marks; `None` when a mark is not one this made
/// (the marks' characters in a value that stayed in the render).
pub fn cut(rendered: &str, values: usize) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    while let Some(start) = rest.find(MARKS[0]) {
        push_text(&mut pieces, &rest[..start])?;
        let after = &rest[start + MARKS[0].len_utf8()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let index: usize = after[..digits].parse().ok().filter(|i| *i < values)?;
        let after = &after[digits..];
        let (escaped, tail) = if let Some(t) = after.strip_prefix("&amp;") {
            (true, t)
        } else {
            (false, after.strip_prefix('&')?)
        };
        rest = tail.strip_prefix(MARKS[1])?;
        pieces.push(Piece::Value { index, escaped });
    }
    push_text(&mut pieces, rest)?;
    Some(pieces)
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) -> Option<()> {
    if text.contains(MARKS) {
        return None;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
    Some(())
}

/// Puts one message's values into the pieces (HTML-escaped where the template escaped them).
fn fill_into(
    pieces: &[Piece],
    values: &[String],
    text: &mut String,
    mut at_text: impl FnMut(usize, usize),
) {
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(t) => {
                at_text(i, text.len());
                text.push_str(t);
            }
            Piece::Value {
                index,
                escaped: true,
            } => text.push_str(&handlebars::html_escape(&values[*index])),
            Piece::Value { index, .. } => text.push_str(&values[*index]),
        }
    }
}

/// The filled text of pieces (the subject's).
pub fn fill(pieces: &[Piece], values: &[String]) -> String {
    let mut text = String::new();
    fill_into(pieces, values, &mut text, |_, _| {});
    text
}

/// One body part, cut, with the whole lines inside each text piece encoded once.
#[derive(Debug)]
pub struct BodySkeleton {
    pieces: Vec<Piece>,
    /// For each piece: the byte range of its whole lines, and their encoding.
    lines: Vec<Option<(Range<usize>, FixedLines)>>,
    length: usize,
}

impl BodySkeleton {
    pub fn new(pieces: Vec<Piece>) -> Self {
        let lines = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => {
                    whole_lines(text).map(|range| (range.clone(), FixedLines::new(&text[range])))
                }
                Piece::Value { .. } => None,
            })
            .collect();
        let length = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Value { .. } => 64,
            })
            .sum();
        Self {
            pieces,
            lines,
            length,
        }
    }

    /// The encoded body of one message.
    pub fn fill(&self, values: &[String]) -> Body {
        let mut text = String::with_capacity(self.length);
        let mut fixed = Vec::with_capacity(self.lines.len());
        fill_into(&self.pieces, values, &mut text, |i, at| {
            if let Some((range, lines)) = &self.lines[i] {
                fixed.push((at + range.start..at + range.end, lines));
            }
        });
        Assembled {
            text: &text,
            fixed: &fixed,
        }
        .encode()
    }
}

/// From just after a text's first line end to just after its last one.
fn whole_lines(text: &str) -> Option<Range<usize>> {
    let first = text.find('\n')? + 1;
    let last = text.rfind('\n')? + 1;
    (first < last).then_some(first..last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_is_cut_at_its_marks_escaped_or_not() {
        let rendered = format!(
            "Hi {}, <a href=\"{}\">",
            mark(0).replace('&', "&amp;"),
            mark(1)
        );
        let pieces = cut(&rendered, 2).unwrap();
        assert!(matches!(
            pieces[1],
            Piece::Value {
                index: 0,
                escaped: true
            }
        ));
        assert!(matches!(
            pieces[3],
            Piece::Value {
                index: 1,
                escaped: false
            }
        ));
        let values = ["<Zoë & co>".to_string(), "https://x/?a=1&b=2".to_string()];
        assert_eq!(
            fill(&pieces, &values),
            "Hi &lt;Zoë &amp; co&gt;, <a href=\"https://x/?a=1&b=2\">"
        );
    }

    #[test]
    fn marks_that_are_not_ours_refuse_the_cut() {
        assert!(cut(&mark(2), 2).is_none(), "no such value");
        assert!(cut("a \u{FDD0} b", 1).is_none());
        assert!(cut("a \u{FDD1} b", 1).is_none());
        assert!(cut("\u{FDD0}0&x\u{FDD1}", 1).is_none());
    }

    #[test]
    fn whole_lines_run_from_after_the_first_line_end_to_after_the_last() {
        assert_eq!(whole_lines("a\nb\nc"), Some(2..4));
        assert_eq!(whole_lines("a\nb"), None);
        assert_eq!(whole_lines("abc"), None);
    }
}
