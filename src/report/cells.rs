//! Neutralising cells that Excel or LibreOffice would run as formulas
//! (CSV injection): a leading `=`, `+`, `-`, `@`, tab, CR or LF, or the
//! full-width `＝`, `＋`, `－`, `＠` (a spreadsheet that folds full-width
//! input to ASCII, as East Asian input settings can, would read them as
//! formula starts), gets a `'` prefix.

use std::borrow::Cow;

/// First characters that make a spreadsheet evaluate the cell.
const FORMULA_STARTS: [char; 11] = [
    '=', '+', '-', '@', '\t', '\r', '\n', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// The cell as it is safe to write into a CSV file opened in a spreadsheet.
pub fn spreadsheet_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some(c) if FORMULA_STARTS.contains(&c) => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(spreadsheet_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_cell("-2+3"), "'-2+3");
        assert_eq!(spreadsheet_cell("\tx"), "'\tx");
        assert_eq!(spreadsheet_cell("\n=1"), "'\n=1");
        assert_eq!(spreadsheet_cell("＝1+1"), "'＝1+1");
        assert_eq!(spreadsheet_cell("＠SUM(A1)"), "'＠SUM(A1)");
    }

    #[test]
    fn ordinary_values_are_untouched() {
        assert_eq!(spreadsheet_cell("Supply Chain"), "Supply Chain");
        assert_eq!(spreadsheet_cell(""), "");
    }
}
