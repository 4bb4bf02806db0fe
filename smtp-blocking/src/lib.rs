//! A blocking SMTP client over `std::net` and rustls, built on the sans-IO session of
//! [`smtp_proto`].
//!
//! [`Client`] owns a TCP socket and runs the loop the [`smtp_proto::client::Session`] documents:
//! it writes what the session has to send, reads with the session's deadlines as socket
//! timeouts, runs the TLS handshake when the session requests it (STARTTLS, RFC 3207) or before
//! the session starts (implicit TLS, RFC 8314), and hands each result back to the caller. Every
//! protocol decision is the session's.
//!
//! TLS is rustls 0.23 with the `ring` provider. Server certificates are checked against
//! Mozilla's roots by default, against the platform store, or against a PEM file of private CA
//! certificates ([`Roots`]).
//!
//! With the `cli` feature, the crate also builds the `smtp-send` command-line tool, which sends
//! one message (or the same one several times) and exits with a `sysexits` code; with `server`
//! too, `smtp-send --demo` sends one through the embedded server.
//!
//! With the `server` feature, [`server::Server`] is an embedded SMTP server for tests and
//! demos: STARTTLS or implicit TLS with a certificate made at start, AUTH for configured users,
//! and each accepted message stored as a file. With `cli` too, the `smtp-test-server` binary
//! runs it from the command line.
//!
//! # Example
//!
//! Sending a message to a scripted server on loopback, without TLS:
//!
//! ```
//! use std::io::{BufRead as _, BufReader, Write as _};
//! use std::net::TcpListener;
//!
//! use smtp_blocking::{Client, Options};
//! use smtp_proto::client::{Envelope, TlsPolicy};
//! use smtp_proto::{Mailbox, ReversePath};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The server: one reply per command line, then the body up to the lone dot.
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let server = format!("127.0.0.1:{}", listener.local_addr()?.port());
//! let script = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut socket, _) = listener.accept()?;
//!     let mut lines = BufReader::new(socket.try_clone()?).lines();
//!     for reply in ["220 mx.example.test", "250 mx.example.test", "250 ok", "250 ok", "354 go"] {
//!         write!(socket, "{reply}\r\n")?;
//!         lines.next().transpose()?;
//!     }
//!     while lines.next().transpose()?.is_some_and(|line| line != ".") {}
//!     write!(socket, "250 2.0.0 queued as 1\r\n")?;
//!     lines.next().transpose()?;
//!     write!(socket, "221 bye\r\n")
//! });
//!
//! let mut options = Options::default();
//! options.session.tls = TlsPolicy::None;
//! let mut client = Client::connect(&server, options)?;
//!
//! let envelope = Envelope::new(
//!     ReversePath::parse("a@example.test")?,
//!     vec![Mailbox::parse("b@example.test")?],
//! )?;
//! let delivery = client.send(envelope, "Subject: hello\r\n\r\nHello.\r\n")?;
//! assert_eq!(delivery.reply().to_string(), "250 2.0.0 queued as 1");
//!
//! client.quit()?;
//! script.join().expect("the server thread ran")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | Feature | Default | What it does |
//! |---------|---------|--------------|
//! | `tracing` | on | Logs connects, TLS handshakes and errors with the server address through `tracing`; the wire lines, AUTH payloads redacted and message content as an octet count, at `trace` level. `smtp-send` prints them to stderr under `RUST_LOG`. |
//! | `cli` | on | Builds the `smtp-send` binary and its dependencies (`clap`, `rpassword`, `gethostname`, `tracing-subscriber`). A library user turns it off with `default-features = false`. |
//! | `server` | on | The embedded server [`server::Server`], which adds `rcgen` for its certificates; with `cli`, the `smtp-test-server` binary and `smtp-send --demo`. |
#![forbid(unsafe_code)]

mod client;
mod error;
mod log;
mod options;
#[cfg(feature = "server")]
pub mod server;
mod stream;
mod tls;
mod transcript;

pub use client::Client;
pub use error::Error;
pub use options::{Options, Roots};
pub use stream::ServerAddress;
pub use tls::{TlsInfo, TlsSetup};
pub use transcript::TranscriptText;
