//! A sans-IO SMTP client protocol state machine.
#![forbid(unsafe_code)]

pub mod auth;
pub mod data;
pub mod secret;

pub use auth::{Credentials, Mechanism};
pub use data::{BodyInfo, DataEncoder};
pub use secret::Secret;
