//! Session transcripts for people: `C:` and `S:` lines, as the client saw them.

use std::fmt;

use smtp_proto::client::TranscriptLine;

use crate::tls::TlsInfo;

/// The callback [`Client::on_transcript`](crate::Client::on_transcript) stores: each transcript
/// line with the TLS parameters in force when it was recorded (`None` before TLS).
pub(crate) type TranscriptHook = Box<dyn FnMut(&TranscriptLine, Option<&TlsInfo>) + Send>;

/// A transcript line formatted for a terminal or a log.
///
/// Commands are written `C: line`, replies `S: line`, message content `C: <N octets of message
/// data>` and the handshake `* TLS established (TLS1.3, TLS13_AES_256_GCM_SHA384)`. AUTH
/// payloads arrive redacted from the session, so they are never shown. Octets that are not
/// UTF-8 are shown as U+FFFD.
#[derive(Clone, Copy, Debug)]
pub struct TranscriptText<'a> {
    line: &'a TranscriptLine,
    tls: Option<&'a TlsInfo>,
}

impl<'a> TranscriptText<'a> {
    /// Wraps a line and the TLS parameters the transcript callback received with it.
    pub fn new(line: &'a TranscriptLine, tls: Option<&'a TlsInfo>) -> Self {
        Self { line, tls }
    }
}

impl fmt::Display for TranscriptText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.tls) {
            (TranscriptLine::Sent(line), _) => write!(f, "C: {}", String::from_utf8_lossy(line)),
            (TranscriptLine::Received(line), _) => {
                write!(f, "S: {}", String::from_utf8_lossy(line))
            }
            (TranscriptLine::MessageData { octets }, _) => {
                write!(f, "C: <{octets} octets of message data>")
            }
            (TranscriptLine::TlsEstablished, Some(tls)) => write!(f, "* TLS established ({tls})"),
            (TranscriptLine::TlsEstablished, None) => f.write_str("* TLS established"),
            (other, _) => write!(f, "* {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rustls::{CipherSuite, ProtocolVersion};

    use super::*;

    #[test]
    fn transcript_text_forms() {
        let tls = TlsInfo {
            protocol_version: ProtocolVersion::TLSv1_3,
            cipher_suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        };
        let cases = [
            (
                "command",
                TranscriptLine::Sent(Bytes::from_static(b"AUTH PLAIN <redacted>")),
                None,
                "C: AUTH PLAIN <redacted>",
            ),
            (
                "reply",
                TranscriptLine::Received(Bytes::from_static(b"250 2.0.0 Ok")),
                None,
                "S: 250 2.0.0 Ok",
            ),
            (
                "message data",
                TranscriptLine::MessageData { octets: 1234 },
                None,
                "C: <1234 octets of message data>",
            ),
            (
                "handshake",
                TranscriptLine::TlsEstablished,
                Some(&tls),
                "* TLS established (TLS1.3, TLS13_AES_256_GCM_SHA384)",
            ),
            (
                "non-UTF-8 reply",
                TranscriptLine::Received(Bytes::from_static(b"250 caf\xe9")),
                None,
                "S: 250 caf\u{fffd}",
            ),
        ];
        for (label, line, tls, expected) in cases {
            assert_eq!(
                TranscriptText::new(&line, tls).to_string(),
                expected,
                "{label}"
            );
        }
    }
}
