//! Errors of the protocol core.

use std::error::Error;
use std::fmt;

/// Bytes from the peer that break the SMTP grammar of replies or commands (RFC 5321 sections 4.1
/// and 4.2) or a configured limit.
///
/// The error is opaque: it carries a [`ParseErrorKind`] and the byte offset at which the problem
/// was found. A [`ReplyDecoder`](crate::ReplyDecoder) counts the offset from the first byte it
/// was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
}

impl ParseError {
    pub(crate) const fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// Returns what is wrong with the input.
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// Returns the byte offset of the problem in the input.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Moves the offset forward by `base`, for an error found in a slice that starts at `base`.
    pub(crate) const fn shifted(self, base: usize) -> Self {
        Self {
            kind: self.kind,
            offset: base + self.offset,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl Error for ParseError {}

/// Category of a [`ParseError`]: the grammar rule or limit that the input breaks.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// A line is longer than the maximum line length, line end included (RFC 5321 section
    /// 4.5.3.1). Raised as soon as that many bytes arrive without a line end.
    LineTooLong,
    /// A reply has more lines than the maximum line count.
    TooManyLines,
    /// A line does not start with a three-digit reply code whose first digit is 2 to 5 and whose
    /// second digit is 0 to 5 (RFC 5321 section 4.2).
    InvalidCode,
    /// The reply code is followed by a byte other than a space, a hyphen or the line end (RFC
    /// 5321 section 4.2.1).
    InvalidSeparator,
    /// A line of a multi-line reply has a code other than the first line's (RFC 5321 section
    /// 4.2.1).
    CodeMismatch,
    /// A line is empty where a reply line was expected.
    EmptyLine,
    /// The text of a line contains a control character other than a horizontal tab, such as NUL
    /// or a bare CR (RFC 5321 section 4.2, `textstring`).
    InvalidText,
    /// A line ends with a bare LF while only CRLF is accepted (RFC 5321 section 2.3.8).
    BareLineFeed,
    /// A command line does not end with CRLF, or the input holds more than one line.
    MissingLineEnd,
    /// The command verb is not one of RFC 5321 section 4.1.1 or its extensions.
    UnknownCommand,
    /// The text after the verb does not follow the grammar of the command.
    InvalidArguments,
    /// The path of MAIL or RCPT is not `<mailbox>` (RFC 5321 section 4.1.2).
    InvalidPath,
    /// A MAIL or RCPT parameter has an invalid value, a value it does not take, or appears
    /// twice (RFC 5321 section 4.1.2).
    InvalidParameter,
    /// A parameter of RCPT appears on MAIL or the other way round, or ORCPT names an address
    /// type other than `rfc822` (RFC 3461 section 4.2).
    UnsupportedParameter,
    /// An octet above 127 where the grammar allows only ASCII, or bytes that are not UTF-8 where
    /// RFC 6531 section 3.3 allows UTF-8.
    InvalidUtf8,
    /// A SASL response is not valid base64 (RFC 4954 section 4).
    InvalidBase64,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            Self::LineTooLong => "line exceeds the maximum line length",
            Self::TooManyLines => "reply exceeds the maximum number of lines",
            Self::InvalidCode => {
                "invalid reply code, expected three digits with the first from 2 to 5 and the \
                 second from 0 to 5"
            }
            Self::InvalidSeparator => {
                "invalid byte after the reply code, expected a space, a hyphen or the line end"
            }
            Self::CodeMismatch => "reply line has a code other than the first line of the reply",
            Self::EmptyLine => "empty line where a reply line was expected",
            Self::InvalidText => "control character in reply text",
            Self::BareLineFeed => "line ends with a bare LF, expected CRLF",
            Self::MissingLineEnd => "expected one command line ending in CRLF",
            Self::UnknownCommand => "unknown command verb",
            Self::InvalidArguments => "invalid command arguments",
            Self::InvalidPath => "invalid path, expected <local-part@domain>",
            Self::InvalidParameter => "invalid or duplicate MAIL or RCPT parameter",
            Self::UnsupportedParameter => "parameter not supported on this command",
            Self::InvalidUtf8 => {
                "non-ASCII octet outside an address or parameter value, or \
                 invalid UTF-8"
            }
            Self::InvalidBase64 => "SASL response is not valid base64",
        };
        f.write_str(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_offset() {
        let cases = [
            (
                "line too long",
                ParseError::new(ParseErrorKind::LineTooLong, 1000),
                "line exceeds the maximum line length at byte 1000",
            ),
            (
                "code mismatch",
                ParseError::new(ParseErrorKind::CodeMismatch, 12),
                "reply line has a code other than the first line of the reply at byte 12",
            ),
            (
                "bare line feed",
                ParseError::new(ParseErrorKind::BareLineFeed, 3),
                "line ends with a bare LF, expected CRLF at byte 3",
            ),
        ];

        for (label, error, expected) in cases {
            assert_eq!(error.to_string(), expected, "{label}");
        }
    }

    #[test]
    fn shifted_adds_base() {
        let error = ParseError::new(ParseErrorKind::InvalidText, 4).shifted(100);

        assert_eq!(error.offset(), 104);
        assert_eq!(error.kind(), ParseErrorKind::InvalidText);
    }
}
