//! Integration tests of the blocking client and of `smtp-send` against a scripted SMTP server on
//! 127.0.0.1.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

#[cfg(feature = "cli")]
mod cli;
mod client;
mod common;
