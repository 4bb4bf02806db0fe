//! SMTP replies: reply codes, enhanced status codes and multi-line replies (RFC 5321 section 4.2,
//! RFC 2034, RFC 3463).

mod encode;
mod parse;

use std::fmt;

use bytes::Bytes;

pub use parse::{ReplyDecoder, ReplyLimits};

/// A three-digit reply code (RFC 5321 section 4.2): first digit 2 to 5, second 0 to 5, third 0 to
/// 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// `211` System status, or system help reply (RFC 5321 section 4.2.3).
    pub const SYSTEM_STATUS: Self = Self(211);
    /// `214` Help message (RFC 5321 section 4.2.3).
    pub const HELP_MESSAGE: Self = Self(214);
    /// `220` Service ready, the greeting (RFC 5321 section 4.2.3).
    pub const SERVICE_READY: Self = Self(220);
    /// `221` Service closing transmission channel (RFC 5321 section 4.2.3).
    pub const CLOSING: Self = Self(221);
    /// `235` Authentication succeeded (RFC 4954 section 6).
    pub const AUTH_SUCCEEDED: Self = Self(235);
    /// `250` Requested mail action okay, completed (RFC 5321 section 4.2.3).
    pub const OK: Self = Self(250);
    /// `251` User not local, will forward (RFC 5321 section 4.2.3).
    pub const USER_NOT_LOCAL_WILL_FORWARD: Self = Self(251);
    /// `252` Cannot verify the user, but will accept the message (RFC 5321 section 4.2.3).
    pub const CANNOT_VERIFY_USER: Self = Self(252);
    /// `334` Server challenge during authentication (RFC 4954 section 4).
    pub const AUTH_CONTINUE: Self = Self(334);
    /// `354` Start mail input, end with `<CRLF>.<CRLF>` (RFC 5321 section 4.2.3).
    pub const START_MAIL_INPUT: Self = Self(354);
    /// `421` Service not available, closing transmission channel (RFC 5321 section 4.2.3).
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);
    /// `450` Mailbox unavailable, for example busy (RFC 5321 section 4.2.3).
    pub const MAILBOX_BUSY: Self = Self(450);
    /// `451` Local error in processing (RFC 5321 section 4.2.3).
    pub const LOCAL_ERROR: Self = Self(451);
    /// `452` Insufficient system storage (RFC 5321 section 4.2.3).
    pub const INSUFFICIENT_STORAGE: Self = Self(452);
    /// `454` Temporary authentication failure (RFC 4954 section 6), or TLS not available for a
    /// temporary reason (RFC 3207 section 4).
    pub const TEMPORARY_FAILURE: Self = Self(454);
    /// `455` Server unable to accommodate parameters (RFC 5321 section 4.2.3).
    pub const UNABLE_TO_ACCOMMODATE_PARAMETERS: Self = Self(455);
    /// `500` Syntax error, command unrecognized (RFC 5321 section 4.2.3).
    pub const COMMAND_UNRECOGNIZED: Self = Self(500);
    /// `501` Syntax error in parameters or arguments (RFC 5321 section 4.2.3).
    pub const SYNTAX_ERROR_IN_PARAMETERS: Self = Self(501);
    /// `502` Command not implemented (RFC 5321 section 4.2.3).
    pub const COMMAND_NOT_IMPLEMENTED: Self = Self(502);
    /// `503` Bad sequence of commands (RFC 5321 section 4.2.3).
    pub const BAD_SEQUENCE: Self = Self(503);
    /// `504` Command parameter not implemented (RFC 5321 section 4.2.3).
    pub const PARAMETER_NOT_IMPLEMENTED: Self = Self(504);
    /// `530` Authentication required (RFC 4954 section 6), or STARTTLS first (RFC 3207
    /// section 4).
    pub const AUTH_REQUIRED: Self = Self(530);
    /// `534` Authentication mechanism is too weak (RFC 4954 section 6).
    pub const AUTH_MECHANISM_TOO_WEAK: Self = Self(534);
    /// `535` Authentication credentials invalid (RFC 4954 section 6).
    pub const AUTH_CREDENTIALS_INVALID: Self = Self(535);
    /// `538` Encryption required for the requested authentication mechanism (RFC 4954
    /// section 6).
    pub const ENCRYPTION_REQUIRED: Self = Self(538);
    /// `550` Mailbox unavailable, for example not found or access denied (RFC 5321 section
    /// 4.2.3).
    pub const MAILBOX_UNAVAILABLE: Self = Self(550);
    /// `551` User not local (RFC 5321 section 4.2.3).
    pub const USER_NOT_LOCAL: Self = Self(551);
    /// `552` Exceeded storage allocation (RFC 5321 section 4.2.3).
    pub const EXCEEDED_STORAGE: Self = Self(552);
    /// `553` Mailbox name not allowed (RFC 5321 section 4.2.3).
    pub const MAILBOX_NAME_NOT_ALLOWED: Self = Self(553);
    /// `554` Transaction failed, or no SMTP service here in a greeting (RFC 5321 section 4.2.3).
    pub const TRANSACTION_FAILED: Self = Self(554);
    /// `555` MAIL FROM or RCPT TO parameters not recognized or not implemented (RFC 5321 section
    /// 4.2.3).
    pub const PARAMETERS_NOT_RECOGNIZED: Self = Self(555);

    /// Creates a reply code, or returns `None` when `value` is outside the grammar of RFC 5321
    /// section 4.2 (first digit 2 to 5, second 0 to 5, third 0 to 9).
    pub const fn new(value: u16) -> Option<Self> {
        let first = value / 100;
        let second = value / 10 % 10;
        if first >= 2 && first <= 5 && second <= 5 {
            Some(Self(value))
        } else {
            None
        }
    }

    /// Returns the code as a number, such as `250`.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// Returns the severity the first digit encodes (RFC 5321 section 4.2.1).
    pub const fn severity(self) -> Severity {
        match self.0 / 100 {
            2 => Severity::PositiveCompletion,
            3 => Severity::PositiveIntermediate,
            4 => Severity::TransientNegative,
            _ => Severity::PermanentNegative,
        }
    }

    /// Returns whether the code is 2xx or 3xx (RFC 5321 section 4.2.1).
    pub const fn is_positive(self) -> bool {
        self.0 < 400
    }

    /// Returns whether the code is 4xx, a failure worth retrying later (RFC 5321 section 4.2.1).
    pub const fn is_transient(self) -> bool {
        self.0 / 100 == 4
    }

    /// Returns whether the code is 5xx, a failure that repeats on retry (RFC 5321 section 4.2.1).
    pub const fn is_permanent(self) -> bool {
        self.0 / 100 == 5
    }

    /// Returns the three ASCII digits of the code.
    const fn digits(self) -> [u8; 3] {
        // The code is below 1000, so each quotient fits in one decimal digit.
        [
            b'0' + (self.0 / 100) as u8,
            b'0' + (self.0 / 10 % 10) as u8,
            b'0' + (self.0 % 10) as u8,
        ]
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Meaning of the first digit of a reply code (RFC 5321 section 4.2.1).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `2xx`: the requested action has been completed.
    PositiveCompletion,
    /// `3xx`: the command was accepted and more information is expected.
    PositiveIntermediate,
    /// `4xx`: the action was not taken, and the same request may succeed later.
    TransientNegative,
    /// `5xx`: the action was not taken, and the same request will fail again.
    PermanentNegative,
}

/// An enhanced mail system status code `class.subject.detail`, such as `5.7.25` (RFC 3463
/// section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedStatusCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl EnhancedStatusCode {
    /// Creates a status code, or returns `None` when `class` is not 2, 4 or 5 or when `subject`
    /// or `detail` has more than three digits (RFC 3463 section 2).
    pub const fn new(class: u8, subject: u16, detail: u16) -> Option<Self> {
        if matches!(class, 2 | 4 | 5) && subject <= 999 && detail <= 999 {
            Some(Self {
                class,
                subject,
                detail,
            })
        } else {
            None
        }
    }

    /// Returns the class: 2 (success), 4 (persistent transient failure) or 5 (permanent
    /// failure).
    pub const fn class(&self) -> u8 {
        self.class
    }

    /// Returns the subject, such as 7 (security or policy status) in `5.7.25`.
    pub const fn subject(&self) -> u16 {
        self.subject
    }

    /// Returns the detail, such as 25 in `5.7.25`.
    pub const fn detail(&self) -> u16 {
        self.detail
    }
}

impl fmt::Display for EnhancedStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A reply from an SMTP server: one reply code and one or more lines of text (RFC 5321 section
/// 4.2).
///
/// A reply owns a copy of its text and never refers to the buffer it was decoded from, so the
/// buffer can be reused at once. Text of up to [`Reply::INLINE_TEXT`] octets is stored inside
/// the value, so decoding a typical reply to MAIL, RCPT, DATA or the end of data allocates
/// nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    code: ReplyCode,
    /// Text of each line, without code, separator and line end, joined with LF. No line contains
    /// a byte that [`parse::is_text_octet`] rejects, so LF only ever separates lines.
    text: Text,
}

impl Reply {
    /// The most octets of text, LFs between lines included, that a reply stores without a heap
    /// allocation.
    pub const INLINE_TEXT: usize = INLINE_TEXT;

    /// Creates a reply from the text of each line, without code, separator and line end.
    ///
    /// A line without text is an empty `Bytes`, and an empty `lines` is taken as one such line.
    /// Reply text cannot contain control characters other than HT (RFC 5321 section 4.2,
    /// `textstring`), so `new` replaces each one, CR and LF included, with a space.
    pub fn new(code: ReplyCode, lines: Vec<Bytes>) -> Self {
        let mut text = Vec::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
        for (index, line) in lines.iter().enumerate() {
            if index > 0 {
                text.push(LINE_SEPARATOR);
            }
            text.extend(line.iter().map(|&byte| {
                if parse::is_text_octet(byte) {
                    byte
                } else {
                    b' '
                }
            }));
        }
        Self {
            code,
            text: Text::new(&text),
        }
    }

    /// Creates a reply from text the decoder has checked: lines joined with LF, none of them
    /// containing a byte that [`parse::is_text_octet`] rejects.
    pub(crate) fn from_checked_text(code: ReplyCode, text: &[u8]) -> Self {
        Self {
            code,
            text: Text::new(text),
        }
    }

    /// Returns the reply code.
    pub const fn code(&self) -> ReplyCode {
        self.code
    }

    /// Returns the severity of the reply code (RFC 5321 section 4.2.1).
    pub const fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// Returns whether the reply code is 2xx or 3xx.
    pub const fn is_positive(&self) -> bool {
        self.code.is_positive()
    }

    /// Returns whether the reply code is 4xx.
    pub const fn is_transient(&self) -> bool {
        self.code.is_transient()
    }

    /// Returns whether the reply code is 5xx.
    pub const fn is_permanent(&self) -> bool {
        self.code.is_permanent()
    }

    /// Returns the text of each line, without code, separator and line end, as received.
    ///
    /// There is always at least one line, which may be empty.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.text.as_bytes().split(|&byte| byte == LINE_SEPARATOR)
    }

    /// Returns the enhanced status code at the start of the first line (RFC 2034 section 4).
    ///
    /// The code `class.subject.detail` must be followed by a space or the end of the line, and
    /// its class must equal the first digit of the reply code (2, 4 or 5). Otherwise there is
    /// none.
    pub fn enhanced_status(&self) -> Option<EnhancedStatusCode> {
        let first = self.lines().next()?;
        self.enhanced_status_of(first).map(|(status, _)| status)
    }

    /// Returns the text for people: the lines joined with one space, as lossy UTF-8.
    ///
    /// When every line starts with the same enhanced status code, as RFC 2034 section 4 requires
    /// of servers, the code is removed from each line and shown once at the start. Otherwise
    /// every line is shown as received. Lines without text are skipped.
    pub fn text(&self) -> String {
        let lines: Vec<&[u8]> = self.lines().collect();
        let mut shared = None;
        let mut stripped = Vec::with_capacity(lines.len());
        for line in lines.iter().copied() {
            let Some((status, rest)) = self.enhanced_status_of(line) else {
                break;
            };
            if shared.is_some_and(|code| code != status) {
                break;
            }
            shared = Some(status);
            stripped.push(rest);
        }

        let mut text = String::new();
        let parts: Vec<&[u8]> = match shared {
            Some(status) if stripped.len() == lines.len() => {
                text.push_str(&status.to_string());
                stripped
            }
            _ => lines,
        };
        for part in parts.into_iter().filter(|part| !part.is_empty()) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&String::from_utf8_lossy(part));
        }
        text
    }

    /// Parses the enhanced status code at the start of `line` and returns it with the text after
    /// it, when its class matches the reply code.
    fn enhanced_status_of<'a>(&self, line: &'a [u8]) -> Option<(EnhancedStatusCode, &'a [u8])> {
        let (status, rest) = parse::enhanced_status_code(line)?;
        if u16::from(status.class()) != self.code.value() / 100 {
            return None;
        }
        Some((status, rest))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<_> = self.lines().map(String::from_utf8_lossy).collect();
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("lines", &lines)
            .finish()
    }
}

impl fmt::Display for Reply {
    /// Writes the code and [`Reply::text`], such as `550 5.7.25 first line second line`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        if text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {text}", self.code)
        }
    }
}

/// The text of a reply, inside the value when it is short and in a shared buffer otherwise.
#[derive(Clone)]
enum Text {
    Inline {
        length: u8,
        octets: [u8; INLINE_TEXT],
    },
    Shared(Bytes),
}

impl Text {
    fn new(text: &[u8]) -> Self {
        match u8::try_from(text.len()) {
            Ok(length) if text.len() <= INLINE_TEXT => {
                let mut octets = [0; INLINE_TEXT];
                octets[..text.len()].copy_from_slice(text);
                Self::Inline { length, octets }
            }
            _ => Self::Shared(Bytes::copy_from_slice(text)),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { length, octets } => &octets[..usize::from(*length)],
            Self::Shared(bytes) => bytes,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

/// Separates the lines of a reply in [`Text`]; reply text never contains it.
const LINE_SEPARATOR: u8 = b'\n';
/// Room for the text of single-line replies such as Postfix's `2.0.0 Ok: queued as ...` or
/// Gmail's `2.0.0 OK <timestamp> <id> - gsmtp`, while a `Reply` stays at 96 octets.
const INLINE_TEXT: usize = 85;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_code_new_follows_grammar() {
        let cases = [
            ("lowest", 200, true),
            ("greeting", 220, true),
            ("auth continue", 334, true),
            ("highest", 559, true),
            ("first digit one", 199, false),
            ("second digit six", 260, false),
            ("first digit six", 600, false),
            ("zero", 0, false),
            ("four digits", 2500, false),
            ("second digit nine", 590, false),
        ];

        for (label, value, valid) in cases {
            let code = ReplyCode::new(value);

            assert_eq!(code.is_some(), valid, "{label}");
            if let Some(code) = code {
                assert_eq!(code.value(), value, "{label}");
            }
        }
    }

    #[test]
    fn named_codes_are_in_grammar() {
        let named = [
            ReplyCode::SYSTEM_STATUS,
            ReplyCode::HELP_MESSAGE,
            ReplyCode::SERVICE_READY,
            ReplyCode::CLOSING,
            ReplyCode::AUTH_SUCCEEDED,
            ReplyCode::OK,
            ReplyCode::USER_NOT_LOCAL_WILL_FORWARD,
            ReplyCode::CANNOT_VERIFY_USER,
            ReplyCode::AUTH_CONTINUE,
            ReplyCode::START_MAIL_INPUT,
            ReplyCode::SERVICE_NOT_AVAILABLE,
            ReplyCode::MAILBOX_BUSY,
            ReplyCode::LOCAL_ERROR,
            ReplyCode::INSUFFICIENT_STORAGE,
            ReplyCode::TEMPORARY_FAILURE,
            ReplyCode::UNABLE_TO_ACCOMMODATE_PARAMETERS,
            ReplyCode::COMMAND_UNRECOGNIZED,
            ReplyCode::SYNTAX_ERROR_IN_PARAMETERS,
            ReplyCode::COMMAND_NOT_IMPLEMENTED,
            ReplyCode::BAD_SEQUENCE,
            ReplyCode::PARAMETER_NOT_IMPLEMENTED,
            ReplyCode::AUTH_REQUIRED,
            ReplyCode::AUTH_MECHANISM_TOO_WEAK,
            ReplyCode::AUTH_CREDENTIALS_INVALID,
            ReplyCode::ENCRYPTION_REQUIRED,
            ReplyCode::MAILBOX_UNAVAILABLE,
            ReplyCode::USER_NOT_LOCAL,
            ReplyCode::EXCEEDED_STORAGE,
            ReplyCode::MAILBOX_NAME_NOT_ALLOWED,
            ReplyCode::TRANSACTION_FAILED,
            ReplyCode::PARAMETERS_NOT_RECOGNIZED,
        ];

        for code in named {
            assert_eq!(ReplyCode::new(code.value()), Some(code), "{code}");
        }
    }

    #[test]
    fn reply_code_severity() {
        let cases = [
            (
                "ok",
                ReplyCode::OK,
                Severity::PositiveCompletion,
                [true, false, false],
            ),
            (
                "start mail input",
                ReplyCode::START_MAIL_INPUT,
                Severity::PositiveIntermediate,
                [true, false, false],
            ),
            (
                "service not available",
                ReplyCode::SERVICE_NOT_AVAILABLE,
                Severity::TransientNegative,
                [false, true, false],
            ),
            (
                "transaction failed",
                ReplyCode::TRANSACTION_FAILED,
                Severity::PermanentNegative,
                [false, false, true],
            ),
        ];

        for (label, code, severity, [positive, transient, permanent]) in cases {
            let reply = Reply::new(code, vec![]);

            assert_eq!(code.severity(), severity, "{label}");
            assert_eq!(reply.severity(), severity, "{label}");
            assert_eq!(reply.is_positive(), positive, "{label}: positive");
            assert_eq!(reply.is_transient(), transient, "{label}: transient");
            assert_eq!(reply.is_permanent(), permanent, "{label}: permanent");
        }
    }

    #[test]
    fn enhanced_status_code_new_checks_ranges() {
        let cases = [
            ("success", (2, 0, 0), true),
            ("policy", (5, 7, 25), true),
            ("three digit parts", (4, 999, 999), true),
            ("class three", (3, 0, 0), false),
            ("subject too long", (5, 1000, 0), false),
            ("detail too long", (5, 1, 1000), false),
        ];

        for (label, (class, subject, detail), valid) in cases {
            let status = EnhancedStatusCode::new(class, subject, detail);

            assert_eq!(status.is_some(), valid, "{label}");
        }
        assert_eq!(
            EnhancedStatusCode::new(5, 7, 25).unwrap().to_string(),
            "5.7.25"
        );
    }

    #[test]
    fn enhanced_status_from_first_line() {
        type Case = (
            &'static str,
            u16,
            &'static [&'static str],
            Option<(u8, u16, u16)>,
        );
        let cases: [Case; 12] = [
            ("success", 250, &["2.0.0 Ok"], Some((2, 0, 0))),
            (
                "policy",
                550,
                &["5.7.25 PTR lookup failed"],
                Some((5, 7, 25)),
            ),
            ("code alone", 250, &["2.1.5"], Some((2, 1, 5))),
            (
                "three digit parts",
                451,
                &["4.999.123 busy"],
                Some((4, 999, 123)),
            ),
            ("absent", 250, &["Ok"], None),
            ("empty line", 250, &[""], None),
            ("two parts", 550, &["5.7 denied"], None),
            ("letter in subject", 451, &["4.x.1 later"], None),
            ("class differs from code", 250, &["5.0.0 Ok"], None),
            ("class three", 354, &["3.0.0 go ahead"], None),
            ("detail too long", 550, &["5.1.1000 unknown"], None),
            ("no space after", 550, &["5.1.1: unknown"], None),
        ];

        for (label, code, lines, expected) in cases {
            let reply = reply(code, lines);
            let expected = expected.map(|(class, subject, detail)| EnhancedStatusCode {
                class,
                subject,
                detail,
            });

            assert_eq!(reply.enhanced_status(), expected, "{label}");
        }
    }

    #[test]
    fn text_joins_lines_and_strips_shared_status() {
        let cases: [(&str, u16, &[&str], &str); 9] = [
            ("single line", 250, &["Ok"], "Ok"),
            ("no text", 250, &[""], ""),
            (
                "plain lines",
                220,
                &["mx.example.net", "ready"],
                "mx.example.net ready",
            ),
            (
                "shared status",
                550,
                &[
                    "5.7.25 The sending IP does not have a",
                    "5.7.25 PTR record that matches its",
                    "5.7.25 forward DNS record",
                ],
                "5.7.25 The sending IP does not have a PTR record that matches its forward DNS \
                 record",
            ),
            (
                "status on first line only",
                550,
                &["5.7.1 denied by policy", "see the help page"],
                "5.7.1 denied by policy see the help page",
            ),
            (
                "different statuses",
                550,
                &["5.7.1 denied", "5.7.2 list"],
                "5.7.1 denied 5.7.2 list",
            ),
            ("status alone", 250, &["2.0.0"], "2.0.0"),
            (
                "empty last line",
                250,
                &["mx.example.net", "PIPELINING", ""],
                "mx.example.net PIPELINING",
            ),
            ("utf-8 text", 250, &["caf\u{e9}"], "caf\u{e9}"),
        ];

        for (label, code, lines, expected) in cases {
            assert_eq!(reply(code, lines).text(), expected, "{label}");
        }
    }

    #[test]
    fn text_never_glues_status_to_previous_word() {
        let reply = reply(
            550,
            &[
                "5.7.25 sender does not have a",
                "5.7.25 PTR record",
                "5.7.25 match",
            ],
        );

        let text = reply.text();

        assert!(text.contains("have a PTR"), "{text}");
        assert!(!text.contains("a5.7.25"), "{text}");
        assert_eq!(text.matches("5.7.25").count(), 1, "{text}");
    }

    #[test]
    fn text_is_lossy_for_invalid_utf8() {
        let reply = Reply::new(ReplyCode::OK, vec![Bytes::from_static(b"caf\xe9")]);

        assert_eq!(reply.lines().collect::<Vec<_>>(), [b"caf\xe9"]);
        assert_eq!(reply.text(), "caf\u{fffd}");
    }

    #[test]
    fn display_writes_code_and_text() {
        let cases: [(&str, u16, &[&str], &str); 3] = [
            (
                "with status",
                550,
                &["5.7.25 first line", "5.7.25 second line"],
                "550 5.7.25 first line second line",
            ),
            ("code only", 250, &[""], "250"),
            (
                "greeting",
                220,
                &["mx.example.net ESMTP"],
                "220 mx.example.net ESMTP",
            ),
        ];

        for (label, code, lines, expected) in cases {
            assert_eq!(reply(code, lines).to_string(), expected, "{label}");
        }
    }

    #[test]
    fn new_replaces_control_characters() {
        let cases: [(&str, &[u8], &[u8]); 5] = [
            ("crlf", b"a\r\nb", b"a  b"),
            ("nul", b"a\x00b", b"a b"),
            ("delete", b"a\x7fb", b"a b"),
            ("tab kept", b"a\tb", b"a\tb"),
            ("eight bit kept", b"caf\xe9", b"caf\xe9"),
        ];

        for (label, input, expected) in cases {
            let reply = Reply::new(ReplyCode::OK, vec![Bytes::copy_from_slice(input)]);

            assert_eq!(reply.lines().collect::<Vec<_>>(), [expected], "{label}");
        }
    }

    #[test]
    fn new_without_lines_has_one_empty_line() {
        let reply = Reply::new(ReplyCode::OK, Vec::new());

        assert_eq!(reply.lines().collect::<Vec<_>>(), [b""]);
    }

    #[test]
    fn reply_size() {
        assert_eq!(size_of::<Reply>(), 96);
    }

    #[test]
    fn text_inline_or_shared() {
        let cases = [
            ("empty", 0, true),
            ("at inline limit", INLINE_TEXT, true),
            ("over inline limit", INLINE_TEXT + 1, false),
            ("long", 4000, false),
        ];

        for (label, length, inline) in cases {
            let text = vec![b'a'; length];
            let stored = Text::new(&text);

            assert_eq!(stored.as_bytes(), &text[..], "{label}");
            assert_eq!(matches!(stored, Text::Inline { .. }), inline, "{label}");
        }
    }

    /// Builds a reply for tests from a valid code and the text of each line.
    pub(super) fn reply<L: AsRef<[u8]>>(code: u16, lines: &[L]) -> Reply {
        let lines = lines
            .iter()
            .map(|line| Bytes::copy_from_slice(line.as_ref()))
            .collect();
        Reply::new(ReplyCode::new(code).unwrap(), lines)
    }
}
