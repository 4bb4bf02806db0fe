//! A sans-IO SMTP client protocol state machine.
#![forbid(unsafe_code)]

pub mod address;
pub mod auth;
pub mod capabilities;
pub mod client;
pub mod command;
pub mod data;
pub mod error;
mod line;
pub mod reply;
pub mod secret;
pub mod timer;

pub use address::{AddressError, Domain, Mailbox, ReversePath, XText};
pub use auth::{Credentials, Mechanism};
pub use capabilities::{Capabilities, Extension, SizeLimit};
pub use command::Command;
pub use data::{BodyInfo, DataEncoder};
pub use error::ParseError;
pub use reply::{EnhancedStatusCode, Reply, ReplyCode, ReplyDecoder, ReplyLimits, Severity};
pub use secret::Secret;
pub use timer::Timeouts;

/// The SMTP port for relaying between servers (RFC 5321 section 4.5.4.2).
pub const PORT_SMTP: u16 = 25;
/// The message submission port, with STARTTLS (RFC 6409 section 3.1).
pub const PORT_SUBMISSION: u16 = 587;
/// The message submission port with implicit TLS (RFC 8314 section 3.3).
pub const PORT_SUBMISSIONS: u16 = 465;
