//! The manual: supported extensions, what is not supported, and security notes. This module
//! has no code.
//!
//! # Extensions
//!
//! The client uses an extension only when the server offers it in its EHLO reply, and only when
//! the message needs it:
//!
//! - PIPELINING (RFC 2920): MAIL, every RCPT and DATA go out in one write; a new transaction may
//!   follow the end-of-data line of the previous one. Turn it off with
//!   [`Config::pipelining`](crate::client::Config::pipelining).
//! - SIZE (RFC 1870): the size after CRLF canonicalisation is declared on MAIL; a message over
//!   the advertised limit fails before MAIL with
//!   [`Error::MessageTooLarge`](crate::client::Error::MessageTooLarge).
//! - 8BITMIME (RFC 6152): `BODY=8BITMIME` on MAIL when the content has an octet above 0x7F;
//!   without the extension such a message fails before MAIL.
//! - SMTPUTF8 (RFC 6531): the MAIL parameter when an address or a header field is not ASCII.
//!   Without the extension, internationalised domains go as their A-labels (the EHLO name
//!   always does), and a message with a non-ASCII local part or header field fails before MAIL;
//!   local parts are never altered.
//! - STARTTLS (RFC 3207) and AUTH (RFC 4954), run by the session as configured.
//! - CHUNKING (RFC 3030): BDAT in chunks of
//!   [`Config::bdat_chunk_size`](crate::client::Config::bdat_chunk_size), no dot-stuffing, the
//!   first chunk in the same write as MAIL and RCPT under PIPELINING (except with
//!   [`RecipientPolicy::AllOrNothing`](crate::client::RecipientPolicy::AllOrNothing), which waits
//!   for the RCPT replies). Content with a NUL octet goes as `BODY=BINARYMIME`, unchanged, and
//!   needs both CHUNKING and BINARYMIME.
//! - DSN (RFC 3461) through [`Envelope::with_dsn`](crate::client::Envelope::with_dsn), and
//!   REQUIRETLS (RFC 8689) through
//!   [`Envelope::with_require_tls`](crate::client::Envelope::with_require_tls).
//! - LMTP (RFC 2033) with [`Config::lmtp`](crate::client::Config::lmtp).
//!
//! # Not supported
//!
//! - BDAT over LMTP.
//! - ORCPT for a non-ASCII address (the `utf-8` address type of RFC 6533).
//! - A non-ASCII local part for a server without SMTPUTF8: the message fails, because changing
//!   the local part would change the mailbox. Domains go as A-labels then.
//! - On the server side (feature `server`): source routes are read and dropped; ORCPT with an
//!   address type other than `rfc822` gets 555; VRFY always gets 252 and EXPN 502; SASL
//!   mechanisms beyond PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER are not offered.
//!
//! # Security
//!
//! - TLS policy: [`TlsPolicy::Required`](crate::client::TlsPolicy::Required) is the default.
//!   When STARTTLS is missing or refused, the session sends QUIT and nothing else: no AUTH, no
//!   MAIL, no message octet.
//! - STARTTLS injection (CVE-2011-0411 and the "buffering" class of attacks): any byte
//!   buffered after the 220 reply to STARTTLS, or fed before
//!   [`Session::tls_established`](crate::client::Session::tls_established), ends the session
//!   with [`Error::StartTlsInjection`](crate::client::Error::StartTlsInjection); those bytes
//!   are never parsed. After the handshake every capability is forgotten and EHLO is sent again.
//! - Credentials: AUTH is only sent over an encrypted connection unless
//!   [`Config::allow_insecure_auth`](crate::client::Config::allow_insecure_auth) is set; then
//!   CRAM-MD5 is preferred because it does not reveal the password. Passwords, tokens and SASL
//!   payloads are kept in [`Secret`](crate::Secret), whose `Debug` always redacts, and the
//!   transcript shows `<redacted>` in their place.
//! - SMTP smuggling (CVE-2023-51764 and related): the [`DataEncoder`](crate::DataEncoder) turns
//!   every bare CR and bare LF into CRLF before dot-stuffing, so the only end-of-data sequence on
//!   the wire is the final `CRLF.CRLF`. BDAT content is canonicalised the same way; only
//!   `BODY=BINARYMIME` content goes unchanged, because BDAT frames it by length.
//! - Command injection: [`Domain`](crate::Domain), [`Mailbox`](crate::Mailbox),
//!   [`XText`](crate::XText) and the command arguments reject CR, LF, NUL and other control
//!   characters when they are built, so no command line can carry a second one. A
//!   `Mechanism::Other` name is not checked when built, but the session only sends a mechanism
//!   that the server's EHLO reply listed.
//! - Server replies: lines and replies are bounded by
//!   [`ReplyLimits`](crate::ReplyLimits), so a hostile server cannot make the client buffer
//!   without limit; malformed replies end the session with
//!   [`Error::Parse`](crate::client::Error::Parse).
//! - Server side: commands are framed under 512 octets and SASL lines under 12288 before any
//!   parsing; commands pipelined behind STARTTLS are discarded unread; only `CRLF.CRLF` ends
//!   DATA, and a message with a bare CR or LF is rejected with `550 5.6.0` by default
//!   (`server::BareLineEnds`); a rejected BDAT chunk is still read to
//!   its announced end, and a BDAT whose size cannot be read closes the connection, so chunk
//!   octets are never run as commands.
//! - A message whose data all went out but whose reply never came is reported as
//!   [`Error::OutcomeUnknown`](crate::client::Error::OutcomeUnknown), which is neither
//!   permanent nor transient: retrying may deliver it twice.
