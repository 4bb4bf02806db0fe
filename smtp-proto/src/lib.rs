//! A sans-IO SMTP client protocol state machine.
#![forbid(unsafe_code)]

pub mod auth;
pub mod capabilities;
pub mod data;
pub mod error;
mod line;
pub mod reply;
pub mod secret;

pub use auth::{Credentials, Mechanism};
pub use capabilities::{Capabilities, Extension, SizeLimit};
pub use data::{BodyInfo, DataEncoder};
pub use error::ParseError;
pub use reply::{EnhancedStatusCode, Reply, ReplyCode, ReplyDecoder, ReplyLimits, Severity};
pub use secret::Secret;
