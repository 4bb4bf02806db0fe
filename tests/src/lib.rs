//! Helpers that start real SMTP servers on loopback for the interoperability tests.
//!
//! [`postfix()`] and [`aiosmtpd()`] start their server the first time a test process calls
//! them, through the scripts in `tests/servers/`, and return its ports, CA file, credentials and
//! the folder its messages are delivered to. A server that already runs is reused, also across
//! test processes: the scripts serialise concurrent starts with a lock file. Their files live
//! under `$SMTP_TEST_STATE` (default `/tmp/smtp-proto-test`).
//!
//! | server   | ports                                               | AUTH, offered only after TLS                 |
//! |----------|-----------------------------------------------------|----------------------------------------------|
//! | Postfix  | submission (STARTTLS), plain, smtps, short-timeout  | PLAIN, LOGIN, CRAM-MD5 and more (Cyrus SASL) |
//! | aiosmtpd | one with STARTTLS, MAIL needs AUTH                  | PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER |
//!
//! Both servers present a certificate for `localhost` and `127.0.0.1` signed by one test CA,
//! reject [`REJECTED_RECIPIENT`] with 550, defer [`DEFERRED_RECIPIENT`] with 450 and answer
//! [`CLOSING_RECIPIENT`] with 421 at RCPT, and store each message as a file in a Maildir-style
//! folder. After that 421 Postfix closes the connection and aiosmtpd keeps it open. Postfix's
//! short-timeout port drops a connection idle for longer than [`Postfix::short_timeout`] with
//! 421. Postfix accepts every other recipient in [`DOMAIN`], relays mail for
//! [`Postfix::relay_domain`] to a test's server on [`Postfix::relay_port`] and nothing else (554
//! for other domains), while aiosmtpd accepts every other recipient.
//!
//! A server that cannot be started makes the helper panic with the script's output, whether or
//! not `CI` is set: a test that needs a server fails and never skips. Starting Postfix needs
//! root.
#![forbid(unsafe_code)]

mod aiosmtpd;
mod mail_folder;
mod postfix;
mod server_env;

pub use aiosmtpd::{Aiosmtpd, Delivery, Envelope, Recipient, aiosmtpd};
pub use postfix::{Postfix, message_as_sent, postfix, strip_prepended_headers};

/// The mail domain both servers accept recipients in.
pub const DOMAIN: &str = "example.test";

/// A recipient both servers reject at RCPT with a 550 reply.
pub const REJECTED_RECIPIENT: &str = "reject@example.test";

/// A recipient both servers defer at RCPT with a 450 reply.
pub const DEFERRED_RECIPIENT: &str = "tempfail@example.test";

/// A recipient both servers answer at RCPT with a 421 reply: Postfix then closes the
/// connection, aiosmtpd keeps it open.
pub const CLOSING_RECIPIENT: &str = "closing@example.test";

/// Returns a token that no other test or run uses, to find one test's message among the
/// delivered ones: the label, the process id and the time in nanoseconds.
pub fn unique_token(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("interop-{label}-{}-{nanos}", std::process::id())
}
