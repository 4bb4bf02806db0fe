//! Server session settings.

use std::time::Duration;

use crate::address::Domain;
use crate::auth::Mechanism;

/// Whether the adapter can encrypt the connection (RFC 3207 for STARTTLS, RFC 8314 for implicit
/// TLS).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// No TLS: STARTTLS is not offered.
    #[default]
    Unavailable,
    /// STARTTLS is offered until the connection is encrypted; the adapter runs the handshake on
    /// [`Event::TlsUpgradeRequired`](crate::server::Event::TlsUpgradeRequired).
    StartTls,
    /// The connection is TLS from its first byte (port 465); the adapter negotiates it before
    /// creating the session.
    Implicit,
}

/// What the session does with a bare CR or a bare LF in DATA content (RFC 5321 section 2.3.8
/// allows only CRLF).
///
/// Whichever is chosen, only `CRLF.CRLF` ends the mail data: `LF.LF`, `CR.CR`, `LF.CRLF` and
/// `CRLF.LF` are message text, so a message can never end early and smuggle commands behind
/// it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BareLineEnds {
    /// The message is read to its end and rejected with `550 5.6.0`, and no more of its chunks
    /// reach the application once the first bare line end is seen.
    #[default]
    Reject,
    /// The message is accepted with the bare line ends kept as they arrived.
    Accept,
}

/// The service extensions the server may offer in its EHLO and LHLO replies (RFC 5321 section
/// 4.1.1.1). STARTTLS follows [`Config::tls`], AUTH follows [`Config::auth_mechanisms`], and
/// SIZE shows [`Config::max_message_size`].
///
/// Every extension is on by default. An extension whose parameter the client sends while it is
/// off gets `555 5.5.4`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Extensions {
    /// `PIPELINING`, RFC 2920. Commands are always read in order, one at a time; the keyword
    /// tells the client it may send them in groups.
    pub pipelining: bool,
    /// `SIZE`, RFC 1870.
    pub size: bool,
    /// `8BITMIME`, RFC 6152.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8`, RFC 6531.
    pub smtputf8: bool,
    /// `CHUNKING`, RFC 3030: the BDAT command.
    pub chunking: bool,
    /// `BINARYMIME`, RFC 3030; offered only together with CHUNKING.
    pub binarymime: bool,
    /// `DSN`, RFC 3461: RET, ENVID, NOTIFY and ORCPT.
    pub dsn: bool,
    /// `ENHANCEDSTATUSCODES`, RFC 2034: every 2xx, 4xx and 5xx reply but the greeting and the
    /// reply to EHLO, HELO and LHLO starts with an enhanced status code (RFC 3463).
    pub enhanced_status_codes: bool,
    /// `REQUIRETLS`, RFC 8689; offered only on an encrypted connection.
    pub requiretls: bool,
}

impl Default for Extensions {
    fn default() -> Self {
        Self {
            pipelining: true,
            size: true,
            eight_bit_mime: true,
            smtputf8: true,
            chunking: true,
            binarymime: true,
            dsn: true,
            enhanced_status_codes: true,
            requiretls: true,
        }
    }
}

/// How long the server waits for the client (RFC 5321 section 4.5.3.2.7).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The next command after a reply went out: 5 minutes, the server timeout of RFC 5321
    /// section 4.5.3.2.7.
    pub command: Duration,
    /// More message data, DATA or BDAT, while no octet arrives: 5 minutes. RFC 5321 names no
    /// server timeout for data, so this is the command timeout again. The session checks for
    /// progress when the deadline passes, so a silent client is cut off after one to two such
    /// periods.
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(5 * 60),
            data: Duration::from_secs(5 * 60),
        }
    }
}

/// Settings of a server [`Session`](crate::server::Session).
///
/// Start from [`Config::default`] and change the fields you need.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's name in the greeting and the EHLO reply (RFC 5321 section 4.3.1); it is also
    /// the domain of `RCPT TO:<Postmaster>`. Default: `localhost`.
    pub domain: Domain,
    /// The text after the domain in the 220 greeting. Default: `ESMTP ready`.
    pub greeting: String,
    /// The extensions to offer.
    pub extensions: Extensions,
    /// Whether the adapter can encrypt the connection. Default: [`TlsMode::Unavailable`].
    pub tls: TlsMode,
    /// The SASL mechanisms to offer with AUTH (RFC 4954): any of PLAIN, LOGIN, CRAM-MD5,
    /// XOAUTH2 and OAUTHBEARER. Default: none, so AUTH is not offered.
    pub auth_mechanisms: Vec<Mechanism>,
    /// Offers and accepts AUTH on a connection that is not encrypted. Default: `false`.
    pub allow_insecure_auth: bool,
    /// Rejects MAIL and AUTH with `530 5.7.0` until TLS is up. Default: `false`.
    pub require_tls: bool,
    /// Rejects MAIL with `530 5.7.0` until AUTH succeeded. Default: `false`.
    pub require_auth: bool,
    /// Speaks LMTP (RFC 2033): LHLO in place of EHLO and HELO, and one reply per accepted
    /// recipient after the message data. Default: `false`.
    pub lmtp: bool,
    /// The largest message in octets, after dot removal, announced with SIZE and enforced on
    /// the declared and the actual size (RFC 1870). `None` means no fixed limit. Default:
    /// 10240000, the default `message_size_limit` of Postfix 3.
    pub max_message_size: Option<u64>,
    /// The maximum number of recipients of one message; RCPT beyond it gets `452 4.5.3` (RFC 5321 section
    /// 4.5.3.1.10). Default: 100, the minimum RFC 5321 section 4.5.3.1.8 requires.
    pub max_recipients: usize,
    /// After this many error replies the session sends `421 4.7.0` and ends. Default: 20.
    pub max_errors: usize,
    /// What to do with bare CR and bare LF in DATA. Default: [`BareLineEnds::Reject`].
    pub bare_line_ends: BareLineEnds,
    /// Passes MAIL and RCPT parameters the crate does not know to the application in
    /// `parameters.extra`, instead of rejecting them with `555 5.5.4`. Default: `false`.
    pub pass_unknown_parameters: bool,
    /// A number unique to this connection, such as a counter of the adapter or a random number.
    /// It makes the CRAM-MD5 challenge unique (RFC 2195 section 2). Default: 0.
    pub connection_id: u64,
    /// How long to wait for the client.
    pub timeouts: Timeouts,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            domain: Domain::parse("localhost").expect("localhost is a valid domain"),
            greeting: String::from("ESMTP ready"),
            extensions: Extensions::default(),
            tls: TlsMode::default(),
            auth_mechanisms: Vec::new(),
            allow_insecure_auth: false,
            require_tls: false,
            require_auth: false,
            lmtp: false,
            max_message_size: Some(10_240_000),
            max_recipients: 100,
            max_errors: 20,
            bare_line_ends: BareLineEnds::default(),
            pass_unknown_parameters: false,
            connection_id: 0,
            timeouts: Timeouts::default(),
        }
    }
}
