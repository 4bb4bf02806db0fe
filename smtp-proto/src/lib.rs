//! A sans-IO SMTP client protocol state machine.
#![forbid(unsafe_code)]

pub mod address;
pub mod auth;
pub mod command;
pub mod secret;

pub use address::{AddressError, Domain, Mailbox, ReversePath, XText};
pub use auth::{Credentials, Mechanism};
pub use command::Command;
pub use secret::Secret;
