//! A sans-IO SMTP client: the protocol of RFC 5321 and its extensions as a state machine that
//! never touches a socket, a clock or a thread.
//!
//! A [`client::Session`] consumes the bytes the server sent and returns the bytes to write, and
//! reports what happened as [`client::Event`]s: greeting received, TLS upgrade needed, ready,
//! message accepted or rejected (with a result per recipient), connection closing. Adapters such
//! as `smtp-blocking` supply the socket, TLS and time; the [`client`] module documents the loop
//! they run, and `examples/plain_socket.rs` is one written by hand.
//!
//! ```
//! use std::time::Instant;
//!
//! use smtp_proto::client::{Config, Envelope, Event, Session, TlsPolicy};
//! use smtp_proto::{Mailbox, ReversePath};
//!
//! let mut config = Config::default();
//! config.tls = TlsPolicy::None;
//! let now = Instant::now();
//! let mut session = Session::new(config, now);
//! let envelope = Envelope::new(
//!     ReversePath::parse("a@example.org")?,
//!     vec![Mailbox::parse("b@example.net")?],
//! )?;
//! let handle = session.send(envelope, &b"Subject: hi\r\n\r\n.hello\r\n"[..])?;
//!
//! // A scripted server: each reply is fed in, and what the client writes is collected.
//! let mut wire = Vec::new();
//! for reply in [
//!     "220 mx.example.net ESMTP\r\n",
//!     "250-mx.example.net\r\n250 PIPELINING\r\n",
//!     "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n",
//!     "250 2.0.0 queued as 1A2B\r\n",
//! ] {
//!     session.handle_input(reply.as_bytes());
//!     while let Some(bytes) = session.poll_transmit(now) {
//!         wire.extend_from_slice(&bytes);
//!     }
//! }
//!
//! let wire = String::from_utf8(wire)?;
//! assert!(wire.contains("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"));
//! assert!(wire.ends_with("Subject: hi\r\n\r\n..hello\r\n.\r\n"));
//! let delivered = std::iter::from_fn(|| session.poll_event()).any(|event| {
//!     matches!(event, Event::TransactionCompleted { handle: h, result: Ok(delivery) }
//!         if h == handle && delivery.reply().text() == "2.0.0 queued as 1A2B")
//! });
//! assert!(delivered);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | Feature | Specification |
//! |---|---|
//! | Replies, multi-line, code-only lines, bare LF tolerated | RFC 5321 section 4.2 |
//! | Enhanced status codes | RFC 2034, RFC 3463 |
//! | EHLO capabilities, HELO fallback | RFC 5321 sections 3.2 and 4.1.1.1 |
//! | STARTTLS, implicit TLS | RFC 3207, RFC 8314 |
//! | AUTH: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER | RFC 4954, RFC 4616, RFC 2195, RFC 7628 |
//! | PIPELINING | RFC 2920 |
//! | SIZE | RFC 1870 |
//! | 8BITMIME | RFC 6152 |
//! | SMTPUTF8 | RFC 6531 |
//! | CHUNKING (BDAT), BINARYMIME | RFC 3030 |
//! | DSN | RFC 3461 |
//! | REQUIRETLS | RFC 8689 |
//! | LMTP | RFC 2033 |
//! | Internationalised domains as A-labels | RFC 5891 |
//! | DATA transparency and end of data | RFC 5321 sections 4.5.2 and 4.1.1.4 |
//! | Timeouts | RFC 5321 section 4.5.3.2 |
//!
//! With the `server` feature, `server::Session` is the other side: it reads commands (parsed
//! by `Command::parse`), replies, and asks the application about greetings, AUTH, senders,
//! recipients and messages through `server::Event`s. The crate's own tests run the
//! client against it in memory.
//!
//! | Cargo feature | Default | What it adds |
//! |---|---|---|
//! | `server` | off | The server session and the command parser |
//!
//! The [`manual`] module lists what is not supported and what the client guarantees against
//! hostile servers.
#![forbid(unsafe_code)]

pub mod address;
pub mod auth;
pub mod capabilities;
pub mod client;
pub mod command;
pub mod data;
pub mod error;
mod line;
pub mod manual;
pub mod reply;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
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
