//! What the client session reports to the application.

use bytes::Bytes;

use crate::auth::Mechanism;
use crate::client::error::Error;
use crate::client::transaction::Delivery;
use crate::reply::Reply;

/// A handle to work queued on a [`Session`](crate::client::Session); the events about that work
/// carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub(crate) u64);

/// A state change of the client session, returned by
/// [`Session::poll_event`](crate::client::Session::poll_event).
#[non_exhaustive]
#[derive(Debug)]
pub enum Event {
    /// The server's 220 greeting arrived (RFC 5321 section 4.3.1).
    GreetingReceived {
        /// The greeting, all of its lines.
        reply: Reply,
    },
    /// The server accepted STARTTLS: the adapter must run the TLS handshake on the connection,
    /// then call [`Session::tls_established`](crate::client::Session::tls_established). No byte
    /// that arrived before the handshake may be passed to the session (RFC 3207 section 4.2).
    TlsUpgradeRequired,
    /// AUTH succeeded (RFC 4954 section 4).
    Authenticated {
        /// The mechanism that was used.
        mechanism: Mechanism,
    },
    /// The greeting, EHLO, STARTTLS and AUTH are done; queued work now runs.
    Ready,
    /// A message queued with [`Session::send`](crate::client::Session::send) was accepted or
    /// failed.
    TransactionCompleted {
        /// The handle `send` returned.
        handle: Handle,
        /// The delivery report, or what ended the transaction.
        result: Result<Delivery, Error>,
    },
    /// A single command queued with [`Session::command`](crate::client::Session::command) or
    /// message data queued with [`Session::data`](crate::client::Session::data) got its reply.
    /// A 4xx or 5xx reply is `Ok`: it is the server's answer; `Err` means no reply came.
    CommandCompleted {
        /// The handle the queueing call returned.
        handle: Handle,
        /// The server's reply.
        result: Result<Reply, Error>,
    },
    /// The session is over: the adapter writes what [`Session::poll_transmit`](crate::client::Session::poll_transmit)
    /// still returns and closes the connection.
    Closed {
        /// What ended the session, or `None` after a QUIT the caller asked for.
        error: Option<Error>,
    },
}

/// One line of the session transcript; AUTH payloads are already redacted and message content is
/// summarised, never copied.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranscriptLine {
    /// A command line the client sent, without its CRLF.
    Sent(Bytes),
    /// A reply line the server sent, rebuilt from the parsed reply, without its line end.
    Received(Bytes),
    /// Message content was sent (after the 354 reply), this many octets on the wire including
    /// stuffing and the end-of-data line.
    MessageData {
        /// Octets written.
        octets: u64,
    },
    /// The TLS handshake completed.
    TlsEstablished,
}
