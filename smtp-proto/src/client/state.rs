//! Private state of the client session.
//!
//! ```text
//!            new()
//!              |
//!          Greeting --(220)--> Hello --(250 to EHLO or HELO)--+
//!              |                 |  (500/502: HELO)            |
//!              |                 +<------------+               v
//!              |                               |    STARTTLS offered and wanted?
//!              |                               |     yes: StartTls --(220)--> TlsHandshake
//!              |                               |                                  |
//!              |                               +-------- tls_established() -------+
//!              |                                                     no
//!              |                                                      |
//!              |                                     credentials? yes: Authenticating
//!              |                                                      |  (235)
//!              |                                                      v
//!              +-- error: QUIT --> Quitting --(221, EOF)--> Closed <- Ready (queued work runs)
//! ```
//!
//! A 421 reply, a parse error, a timeout or the connection closing moves any state straight to
//! `Closed`, failing every queued piece of work.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::address::Mailbox;
use crate::client::error::Stage;
use crate::client::event::Handle;
use crate::client::transaction::{Envelope, RecipientResult};
use crate::command::{Command, Notify};
use crate::data::DataEncoder;
use crate::reply::Reply;

/// The setup step the session is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Greeting,
    Hello,
    StartTls,
    TlsHandshake,
    Authenticating,
    Ready,
    Quitting,
    Closed,
}

/// A reply the session waits for, in the order the commands went out.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) expect: Expect,
    /// Set when the command is handed to the adapter.
    pub(crate) deadline: Option<Instant>,
}

/// The command a pending reply belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    /// The reply to `*` after a failed SASL step.
    AuthCancel,
    Mail,
    Rcpt,
    Data,
    EndOfData,
    /// The reply to one BDAT chunk; `last` is the chunk with `LAST`.
    Bdat {
        last: bool,
    },
    Reset,
    Command(Handle, Verb),
    /// The reply after message data queued with `Session::data`.
    CommandData(Handle),
    Quit,
}

impl Expect {
    pub(crate) fn stage(self) -> Stage {
        match self {
            Self::Greeting => Stage::Greeting,
            Self::Ehlo => Stage::Ehlo,
            Self::Helo => Stage::Helo,
            Self::StartTls => Stage::StartTls,
            Self::Auth | Self::AuthCancel => Stage::Auth,
            Self::Mail => Stage::Mail,
            Self::Rcpt => Stage::Rcpt,
            Self::Data => Stage::Data,
            Self::EndOfData => Stage::EndOfData,
            Self::Bdat { .. } => Stage::Bdat,
            Self::Reset => Stage::Reset,
            Self::Command(..) | Self::CommandData(_) => Stage::Command,
            Self::Quit => Stage::Quit,
        }
    }
}

/// The single commands whose replies change the session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Ehlo,
    Data,
    Quit,
    Other,
}

/// Work the caller queued that has not started.
#[derive(Debug)]
pub(crate) enum Work {
    Send {
        handle: Handle,
        envelope: Envelope,
        body: Bytes,
    },
    Command {
        handle: Handle,
        command: Command,
    },
    Data {
        handle: Handle,
        body: Bytes,
    },
    Quit,
}

impl Work {
    pub(crate) fn handle(&self) -> Option<Handle> {
        match self {
            Self::Send { handle, .. }
            | Self::Command { handle, .. }
            | Self::Data { handle, .. } => Some(*handle),
            Self::Quit => None,
        }
    }
}

/// A mail transaction that has started: MAIL went out.
#[derive(Debug)]
pub(crate) struct Transaction {
    pub(crate) handle: Handle,
    pub(crate) recipients: Vec<Mailbox>,
    pub(crate) body: Bytes,
    /// Recipients whose RCPT went out; the rest wait for the MAIL reply (no pipelining).
    pub(crate) rcpt_sent: usize,
    /// RCPT and DATA went out with MAIL in one group (RFC 2920).
    pub(crate) pipelined: bool,
    /// The end-of-data line, or the BDAT chunk with LAST, went out.
    pub(crate) data_sent: bool,
    /// The content goes with BDAT (RFC 3030) instead of DATA.
    pub(crate) chunked: bool,
    /// The content goes as `BODY=BINARYMIME`, unchanged.
    pub(crate) binary: bool,
    /// The first BDAT chunk goes out with MAIL and RCPT, before their replies.
    pub(crate) early_data: bool,
    /// Addresses go out with their domains as A-labels, for a server without SMTPUTF8.
    pub(crate) ascii_domains: bool,
    /// NOTIFY for every RCPT (RFC 3461 section 4.1).
    pub(crate) notify: Option<Notify>,
    /// ORCPT for every RCPT with an ASCII address (RFC 3461 section 4.2).
    pub(crate) original_recipients: bool,
    /// BDAT chunks sent whose replies have not arrived.
    pub(crate) chunks_in_flight: usize,
    /// The first negative reply to a BDAT chunk.
    pub(crate) bdat_rejected: Option<Reply>,
    /// LMTP replies still expected after the message data, one per accepted recipient.
    pub(crate) lmtp_pending: usize,
    /// The last reply after the message data, for LMTP.
    pub(crate) final_reply: Option<Reply>,
    pub(crate) results: Vec<RecipientResult>,
    /// The reply to MAIL when it was negative.
    pub(crate) mail_rejected: Option<Reply>,
    /// Set when the data was ended with a lone dot because nothing may be delivered; the reply to
    /// it then reports this error instead of success.
    pub(crate) aborted: Option<crate::client::error::Error>,
}

/// Message content being handed to the adapter chunk by chunk.
#[derive(Debug)]
pub(crate) struct BodyTransfer {
    pub(crate) body: Bytes,
    pub(crate) offset: usize,
    pub(crate) encoder: DataEncoder,
    pub(crate) octets: u64,
    /// The reply that ends this transfer.
    pub(crate) then: Expect,
    /// BDAT framing (RFC 3030) instead of DATA's end-of-data line.
    pub(crate) framing: Framing,
}

/// The delimiting of message content on the wire.
#[derive(Debug)]
pub(crate) enum Framing {
    /// DATA: dot-stuffing and the end-of-data line.
    EndOfData,
    /// BDAT chunks of at most `chunk_size` input octets, each encoded into `scratch` first so
    /// its length is known before its BDAT command.
    Chunks {
        chunk_size: usize,
        binary: bool,
        scratch: BytesMut,
    },
}
