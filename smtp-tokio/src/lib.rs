//! An async SMTP client and connection pool over tokio and tokio-rustls, built on the sans-IO
//! session of [`smtp_proto`].
//!
//! [`Client`] owns one connection and runs the loop the [`smtp_proto::client::Session`]
//! documents: it writes what the session has to send, reads until the session's next deadline
//! on `tokio::time`, runs the TLS handshake when the session requests it (STARTTLS, RFC 3207)
//! or before the session starts (implicit TLS, RFC 8314), and hands each result back to the
//! caller. [`Pool`] shares connections to one server between concurrent sends, with limits on
//! their number, idle time and messages, a check before reuse, and an overall deadline per
//! send. Every protocol decision is the session's; this crate moves bytes, TLS and time.
//!
//! The connection is TCP, or any `AsyncRead + AsyncWrite` stream the caller opens
//! ([`Client::connect_with`], [`Pool::with_connector`]): a SOCKS5 or HTTP CONNECT tunnel, a Unix
//! socket or an in-memory pipe. TLS is rustls 0.23 with the `ring` provider; [`Options`] and
//! [`Roots`] are the ones of `smtp-blocking`, so server certificates are checked the same way:
//! against Mozilla's roots by default, the platform store, or a PEM file of private CA
//! certificates.
//!
//! # Example
//!
//! Sending a message over an in-memory pipe to a scripted server, without TLS:
//!
//! ```
//! use smtp_proto::client::{Envelope, TlsPolicy};
//! use smtp_proto::{Mailbox, ReversePath};
//! use smtp_tokio::{Client, Options};
//! use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (stream, server_end) = tokio::io::duplex(4096);
//!
//! // The server: one reply per command line, then the body up to the lone dot.
//! let script = tokio::spawn(async move {
//!     let (read, mut write) = tokio::io::split(server_end);
//!     let mut lines = BufReader::new(read).lines();
//!     for reply in ["220 mx.example.test", "250 mx.example.test", "250 ok", "250 ok", "354 go"] {
//!         write.write_all(format!("{reply}\r\n").as_bytes()).await?;
//!         lines.next_line().await?;
//!     }
//!     while lines.next_line().await?.is_some_and(|line| line != ".") {}
//!     write.write_all(b"250 2.0.0 queued as 1\r\n").await?;
//!     lines.next_line().await?;
//!     write.write_all(b"221 bye\r\n").await
//! });
//!
//! let mut options = Options::default();
//! options.session.tls = TlsPolicy::None;
//! let mut client = Client::connect_with(stream, "mx.example.test", options).await?;
//!
//! let envelope = Envelope::new(
//!     ReversePath::parse("a@example.test")?,
//!     vec![Mailbox::parse("b@example.test")?],
//! )?;
//! let delivery = client.send(envelope, "Subject: hello\r\n\r\nHello.\r\n").await?;
//! assert_eq!(delivery.reply().to_string(), "250 2.0.0 queued as 1");
//!
//! client.quit().await?;
//! script.await??;
//! # Ok(())
//! # }
//! ```
//!
//! `examples/pool_batch.rs` sends a batch through a [`Pool`] to a local server.
//!
//! # Features
//!
//! | Feature | Default | What it does |
//! |---------|---------|--------------|
//! | `server` | on | The embedded server of [`server`], for async test suites: STARTTLS or implicit TLS with a certificate made at start, AUTH against configured users, each message stored as a file. |
//! | `tracing` | on | Logs connects, TLS upgrades, retries and errors through `tracing`, each event with the server address in its `server` field; the wire lines, AUTH payloads redacted and message content as an octet count, at `trace` level only. |
#![forbid(unsafe_code)]

mod client;
mod error;
mod log;
mod pool;
#[cfg(feature = "server")]
pub mod server;
mod stream;

pub use client::Client;
pub use error::Error;
pub use pool::{Pool, PoolOptions, PoolStatus};
pub use smtp_blocking::Error as ClientError;
pub use smtp_blocking::{Options, Roots, TlsInfo};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
