//! Report renderers. Everything written for spreadsheets goes through
//! [`spreadsheet_cell`], so a roster value can never become a formula.

mod cells;
pub mod chart;
pub mod email;
mod jobs;
mod model;
pub mod plot;
pub mod render;
pub mod resend;
pub mod team;
pub mod weekly;

pub use cells::spreadsheet_cell;
pub use jobs::{ReportJobs, ReportSettings};
pub use model::{build, build_from, week_before, Group, Report, WeekPoint};
