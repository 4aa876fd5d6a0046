//! Value types parsed once at the edge (roster, config, campaign files) and
//! carried as types afterwards: code past the edge never re-validates strings.

mod duration;
mod email;
mod text;

pub use duration::HumanDuration;
pub use email::{EmailAddress, EmailError};
pub use text::{disguise_problem, find_disguise, Disguise};
