//! Text tables for the terminal: each column as wide as its longest cell,
//! and, when that is wider than the terminal, the widest columns narrowed
//! and their cells wrapped onto more lines. Nothing is cut off.

use std::io::IsTerminal;

/// The width to fit: `$COLUMNS`, else the terminal's; `None` for a pipe or
/// a file (whole lines), or when `wide` is asked for.
pub fn width(wide: bool) -> Option<usize> {
    if wide {
        return None;
    }
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n >= 20);
    if columns.is_some() {
        return columns;
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size()
        .map(|(terminal_size::Width(columns), _)| usize::from(columns))
        .filter(|n| *n >= 20)
}

/// The lines of a table whose first row is the header, fitted to `limit`.
pub fn lines(rows: &[Vec<String>], limit: Option<usize>) -> Vec<String> {
    let columns = rows.first().map_or(0, Vec::len);
    let mut widths = vec![1; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if let Some(limit) = limit {
        let gaps = 2 * columns.saturating_sub(1);
        while widths.iter().sum::<usize>() + gaps > limit {
            let Some(widest) = (0..columns).max_by_key(|&i| widths[i]) else {
                break;
            };
            if widths[widest] <= 6 {
                break; // a terminal this narrow gets long lines instead
            }
            widths[widest] -= 1;
        }
    }
    let mut out = Vec::new();
    for row in rows {
        let wrapped: Vec<Vec<String>> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| wrap(cell, *w))
            .collect();
        let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            let line = wrapped
                .iter()
                .zip(&widths)
                .map(|(parts, w)| {
                    let part = parts.get(i).map(String::as_str).unwrap_or("");
                    format!("{part:<w$}")
                })
                .collect::<Vec<_>>()
                .join("  ");
            out.push(line.trim_end().to_string());
        }
    }
    out
}

/// `cell` in pieces of at most `width` characters, broken after a space,
/// `@`, `.`, `-` or `>` when one is near the end of the piece.
fn wrap(cell: &str, width: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest: Vec<char> = cell.chars().collect();
    while rest.len() > width {
        let cut = (width / 2..width)
            .rev()
            .find(|&i| matches!(rest[i], ' ' | '@' | '.' | '-' | '>'))
            .map_or(width, |i| i + 1);
        pieces.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest = rest[cut..].to_vec();
        while rest.first() == Some(&' ') {
            rest.remove(0);
        }
    }
    pieces.push(rest.into_iter().collect());
    pieces
}
