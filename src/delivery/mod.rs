//! Delivery: rendering, MIME, the mailer, and the outbox worker.
//!
//! Invariants: at-least-once with bounded duplicates. A worker claims a row
//! with a lease, sends, then marks it with the relay's reply; a crash loses
//! nothing (the lease expires and another worker takes the row) and only a
//! message in flight at the crash may go twice, with the same Message-ID.
//! A restart on the same host does not wait for the lease: the new worker
//! takes back at once what a dead process of this host held ([`owner`]).

mod compose;
pub mod context;
mod encode;
pub(crate) mod mailer;
mod marks;
mod message;
pub mod owner;
mod preview;
mod reuse;
mod templates;
mod worker;

pub use compose::{Composer, Sender, SharedTemplates};
pub use context::MessageContext;
pub use mailer::{Mailer, SendOutcome};
pub use message::header_safe;
pub use preview::{NoMessage, Preview, PreviewOutcome};
pub use templates::{EncodedEmail, RenderedEmail, TemplateError, Templates};
pub use worker::{DeliveryReport, Worker, AWAITING_MARKS_PER_SLOT, CLAIM_ATTEMPTS, IDLE_POLL};
