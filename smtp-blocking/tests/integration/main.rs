//! Integration tests of the blocking client and of `smtp-send` against a scripted SMTP server on
//! 127.0.0.1, and of the embedded server.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

#[cfg(feature = "cli")]
mod cli;
mod client;
mod common;
#[cfg(all(feature = "cli", feature = "server"))]
mod demo;
#[cfg(feature = "server")]
mod server;
