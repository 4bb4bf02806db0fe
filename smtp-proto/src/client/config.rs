//! Client session settings.

use crate::address::Domain;
use crate::auth::{Credentials, Mechanism};
use crate::reply::ReplyLimits;
use crate::timer::Timeouts;

/// Whether and how the connection is encrypted (RFC 3207 for STARTTLS, RFC 8314 for implicit
/// TLS).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// Never encrypt; credentials are then only sent with [`Config::allow_insecure_auth`].
    None,
    /// Use STARTTLS when the server offers it, and go on in clear text when it does not or when
    /// STARTTLS is refused. An attacker on the path can strip the offer, so this protects only
    /// against passive listeners.
    Opportunistic,
    /// Require STARTTLS: without it the session ends before MAIL, AUTH or any message octet is
    /// sent.
    #[default]
    Required,
    /// The connection is TLS from its first byte (implicit TLS, port 465); the adapter
    /// negotiates it before creating the session.
    Wrapper,
}

/// What to do when some recipients are rejected and others accepted.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RecipientPolicy {
    /// Deliver to the accepted recipients and report the rejected ones, as RFC 5321 section 4.4
    /// prescribes.
    #[default]
    AcceptedOnly,
    /// Deliver only when every recipient is accepted.
    AllOrNothing,
}

/// Settings of a client [`Session`](crate::client::Session).
///
/// Start from [`Config::default`] and change the fields you need.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Config {
    /// The name sent with EHLO and HELO (RFC 5321 section 4.1.1.1). Default: `localhost`; set the
    /// client's fully qualified domain name or an address literal.
    pub ehlo_name: Domain,
    /// TLS policy. Default: [`TlsPolicy::Required`].
    pub tls: TlsPolicy,
    /// Credentials for AUTH. Default: none, so no AUTH is sent.
    pub credentials: Option<Credentials>,
    /// The SASL mechanism to use; when `None`, the best one the server offers is chosen.
    pub mechanism: Option<Mechanism>,
    /// Allows credentials over a connection that is not encrypted. Default: `false`.
    pub allow_insecure_auth: bool,
    /// Reply deadlines.
    pub timeouts: Timeouts,
    /// Limits on the length and number of reply lines.
    pub reply_limits: ReplyLimits,
    /// What to do with a message when only some recipients are accepted.
    pub recipient_policy: RecipientPolicy,
    /// Groups MAIL, RCPT and DATA in one write when the server offers PIPELINING (RFC 2920).
    /// Default: `true`.
    pub pipelining: bool,
    /// Sends the message with BDAT (RFC 3030) when the server offers CHUNKING: no dot-stuffing,
    /// and binary content (`BODY=BINARYMIME`) becomes possible. Default: `true`.
    pub chunking: bool,
    /// The size of each BDAT chunk in octets. Default: 1 MiB.
    pub bdat_chunk_size: usize,
    /// Speaks LMTP (RFC 2033) instead of SMTP: LHLO instead of EHLO, no HELO fallback, and one
    /// reply per accepted recipient after the message data. BDAT is not used over LMTP.
    /// Default: `false`.
    pub lmtp: bool,
    /// Fails a message with a text line longer than the 998 octets RFC 5321 section 4.5.3.1.6
    /// allows, before MAIL, with [`Error::LineTooLong`](crate::client::Error::LineTooLong).
    /// Default: `false`, because many servers take such lines, though some reject the message
    /// after its data or cut the lines.
    pub reject_long_lines: bool,
    /// Records a transcript of the lines sent and received, read with
    /// [`Session::poll_transcript`](crate::client::Session::poll_transcript). Default: `false`.
    pub transcript: bool,
    /// How many message octets are encoded per [`Session::poll_transmit`](crate::client::Session::poll_transmit)
    /// call. Default: 128 KiB.
    pub max_transmit_chunk: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ehlo_name: Domain::parse("localhost").expect("localhost is a valid domain"),
            tls: TlsPolicy::default(),
            credentials: None,
            mechanism: None,
            allow_insecure_auth: false,
            timeouts: Timeouts::default(),
            reply_limits: ReplyLimits::default(),
            recipient_policy: RecipientPolicy::default(),
            pipelining: true,
            chunking: true,
            bdat_chunk_size: 1024 * 1024,
            lmtp: false,
            reject_long_lines: false,
            transcript: false,
            max_transmit_chunk: 128 * 1024,
        }
    }
}
