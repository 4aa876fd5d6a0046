//! Report renderers. Everything written for spreadsheets goes through
//! [`spreadsheet_cell`], so a roster value can never become a formula.

mod cells;

pub use cells::spreadsheet_cell;
