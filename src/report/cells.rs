//! Neutralising cells that Excel or LibreOffice would run as formulas
//! (CSV injection): a leading `=`, `+`, `-`, `@`, tab or CR gets a `'` prefix.

use std::borrow::Cow;

/// The cell as it is safe to write into a CSV file opened in a spreadsheet.
pub fn spreadsheet_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{value}")),
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
    }

    #[test]
    fn ordinary_values_are_untouched() {
        assert_eq!(spreadsheet_cell("Supply Chain"), "Supply Chain");
        assert_eq!(spreadsheet_cell(""), "");
    }
}
