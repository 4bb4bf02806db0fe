//! SMTP commands and the parameters of MAIL and RCPT
//! ([RFC 5321 section 4.1.1](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.1)).
//!
//! A [`Command`] is built from typed values that were checked when they were made, so
//! [`Command::encode`] cannot fail and writes no line break before the final CRLF. The one value
//! it writes unchecked is the name of a [`Mechanism::Other`].

mod encode;
#[cfg(feature = "server")]
pub(crate) mod parse;

use std::fmt;
use std::ops::BitOr;
use std::str::FromStr;

use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::satisfy;
use nom::combinator::{all_consuming, recognize};
use nom::{IResult, Parser};

use crate::address::check_text;
use crate::address::{AddressError, AddressErrorKind, Domain, Fault, Mailbox, ReversePath, XText};
use crate::auth::Mechanism;
use crate::secret::Secret;

/// A command sent by the client
/// ([RFC 5321 section 4.1.1](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.1)).
///
/// [`Command::encode`] writes the wire bytes; `Display` writes the same line without CRLF for
/// people, with every AUTH payload replaced by `<redacted>`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`, the extended greeting (RFC 5321 section 4.1.1.1).
    Ehlo(Domain),
    /// `HELO domain`, the greeting for servers without extensions (RFC 5321 section 4.1.1.1).
    Helo(Domain),
    /// `LHLO domain`, the greeting of LMTP (RFC 2033 section 4.1).
    Lhlo(Domain),
    /// `STARTTLS` (RFC 3207 section 4).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 section 4).
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// The initial response, sent base64-encoded; an empty one is sent as `=`.
        initial_response: Option<Secret<Vec<u8>>>,
    },
    /// One base64 line that responds to a 334 challenge during AUTH (RFC 4954 section 4). An
    /// empty response is an empty line.
    AuthResponse(Secret<Vec<u8>>),
    /// `*`, which cancels an AUTH exchange (RFC 4954 section 4).
    AuthCancel,
    /// `MAIL FROM:<reverse-path> [parameters]` (RFC 5321 section 4.1.1.2).
    Mail {
        /// The sender, or the null path.
        reverse_path: ReversePath,
        /// The extension parameters.
        parameters: MailParameters,
    },
    /// `RCPT TO:<forward-path> [parameters]` (RFC 5321 section 4.1.1.3).
    Rcpt {
        /// The recipient.
        forward_path: Mailbox,
        /// The extension parameters.
        parameters: RcptParameters,
    },
    /// `DATA` (RFC 5321 section 4.1.1.4).
    Data,
    /// `BDAT size [LAST]`, announcing a chunk of `size` octets (RFC 3030 section 2).
    Bdat {
        /// The number of octets in the chunk that follows.
        size: u64,
        /// Whether this is the last chunk of the message.
        last: bool,
    },
    /// `RSET` (RFC 5321 section 4.1.1.5).
    Rset,
    /// `NOOP` (RFC 5321 section 4.1.1.9).
    Noop,
    /// `VRFY string` (RFC 5321 section 4.1.1.6).
    Vrfy(Argument),
    /// `EXPN string` (RFC 5321 section 4.1.1.7).
    Expn(Argument),
    /// `HELP [string]` (RFC 5321 section 4.1.1.8).
    Help(Option<Argument>),
    /// `QUIT` (RFC 5321 section 4.1.1.10).
    Quit,
}

impl Command {
    /// Returns the command verb, upper-case. The lines of an AUTH exchange, a response and `*`,
    /// return `"AUTH"`.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Ehlo(_) => "EHLO",
            Self::Helo(_) => "HELO",
            Self::Lhlo(_) => "LHLO",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } | Self::AuthResponse(_) | Self::AuthCancel => "AUTH",
            Self::Mail { .. } => "MAIL",
            Self::Rcpt { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Bdat { .. } => "BDAT",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Vrfy(_) => "VRFY",
            Self::Expn(_) => "EXPN",
            Self::Help(_) => "HELP",
            Self::Quit => "QUIT",
        }
    }
}

/// The text argument of VRFY, EXPN and HELP (RFC 5321 sections 4.1.1.6 to 4.1.1.8): a user
/// name, mailbox, list name or help topic.
///
/// Inner spaces and UTF-8 are allowed, because what the text means is up to the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Argument(String);

impl Argument {
    /// Checks an argument: not empty, no control characters, no leading or trailing space, and
    /// short enough that `VRFY argument` with CRLF fits in 512 octets (RFC 5321 section
    /// 4.5.3.1.4).
    pub fn new(text: &str) -> Result<Self, AddressError> {
        Self::check(text).map_err(|fault| fault.into_error("argument", text))?;

        Ok(Self(text.to_owned()))
    }

    /// Returns the argument as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(text: &str) -> Result<(), Fault> {
        check_text(text)?;
        if text.starts_with(' ') || text.ends_with(' ') {
            return Err(Fault::new(
                AddressErrorKind::InvalidArgument,
                "starts or ends with a space",
            ));
        }
        if text.len() > MAX_ARGUMENT {
            return Err(Fault::new(
                AddressErrorKind::ArgumentTooLong,
                format!("is {} octets, over the limit of {MAX_ARGUMENT}", text.len()),
            ));
        }

        Ok(())
    }
}

impl FromStr for Argument {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parameters of MAIL FROM, written in the order of the fields
/// ([RFC 5321 section 4.1.1.2](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.1.2)).
///
/// The session decides whether the server offers the extension each parameter needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailParameters {
    /// `SIZE=n`, the message size in octets (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=`, the body type (RFC 6152 section 2, RFC 3030 section 3).
    pub body: Option<BodyType>,
    /// `SMTPUTF8`, set when an address or header needs UTF-8 (RFC 6531 section 3.4).
    pub smtputf8: bool,
    /// `RET=`, how much of the message a failure notification returns (RFC 3461 section 4.3).
    pub ret: Option<Ret>,
    /// `ENVID=`, an envelope identifier echoed in notifications (RFC 3461 section 4.4).
    pub envid: Option<XText>,
    /// `REQUIRETLS`, which requires TLS on every hop that relays the message (RFC 8689).
    pub requiretls: bool,
    /// Other parameters, written last in this order.
    pub extra: Vec<Parameter>,
}

/// The parameters of RCPT TO, written in the order of the fields
/// ([RFC 5321 section 4.1.1.3](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.1.3)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptParameters {
    /// `NOTIFY=`, when to send a delivery status notification (RFC 3461 section 4.1).
    pub notify: Option<Notify>,
    /// `ORCPT=`, the original recipient (RFC 3461 section 4.2).
    pub orcpt: Option<OriginalRecipient>,
    /// Other parameters, written last in this order.
    pub extra: Vec<Parameter>,
}

/// The body type of the `BODY` parameter of MAIL (RFC 6152 section 2, RFC 3030 section 3).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyType {
    /// `BODY=7BIT`: lines of US-ASCII.
    SevenBit,
    /// `BODY=8BITMIME`: lines that may contain octets above 127 (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME`: any octets, sent only with BDAT (RFC 3030 section 3).
    BinaryMime,
}

impl BodyType {
    /// Returns the parameter value, such as `8BITMIME`.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::SevenBit => "7BIT",
            Self::EightBitMime => "8BITMIME",
            Self::BinaryMime => "BINARYMIME",
        }
    }
}

impl fmt::Display for BodyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// How much of the message a failure notification returns, the `RET` parameter of MAIL
/// (RFC 3461 section 4.3).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: the header only.
    Headers,
}

impl Ret {
    /// Returns the parameter value, `FULL` or `HDRS`.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Headers => "HDRS",
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// When to send a delivery status notification for a recipient, the `NOTIFY` parameter of RCPT
/// (RFC 3461 section 4.1).
///
/// Conditions combine with `|`, as in `Notify::SUCCESS | Notify::FAILURE`. [`Notify::NEVER`] is
/// the empty set, so `Notify::NEVER | Notify::DELAY` is `Notify::DELAY`. The parameter lists the
/// conditions in the order SUCCESS, FAILURE, DELAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Notify {
    success: bool,
    failure: bool,
    delay: bool,
}

impl Notify {
    /// `NEVER`: no notification at all.
    pub const NEVER: Self = Self::new(false, false, false);
    /// `SUCCESS`: notify on delivery.
    pub const SUCCESS: Self = Self::new(true, false, false);
    /// `FAILURE`: notify when delivery fails.
    pub const FAILURE: Self = Self::new(false, true, false);
    /// `DELAY`: notify when delivery is delayed.
    pub const DELAY: Self = Self::new(false, false, true);

    const fn new(success: bool, failure: bool, delay: bool) -> Self {
        Self {
            success,
            failure,
            delay,
        }
    }

    /// Returns whether no condition is set, written as `NEVER`.
    pub const fn is_never(self) -> bool {
        !self.success && !self.failure && !self.delay
    }

    /// Returns whether SUCCESS is set.
    pub const fn on_success(self) -> bool {
        self.success
    }

    /// Returns whether FAILURE is set.
    pub const fn on_failure(self) -> bool {
        self.failure
    }

    /// Returns whether DELAY is set.
    pub const fn on_delay(self) -> bool {
        self.delay
    }
}

impl BitOr for Notify {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self::new(
            self.success || other.success,
            self.failure || other.failure,
            self.delay || other.delay,
        )
    }
}

impl fmt::Display for Notify {
    /// Writes the parameter value: `NEVER`, or the conditions separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            return f.write_str("NEVER");
        }

        let conditions = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ];
        let names: Vec<&str> = conditions
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| *name)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The recipient address as the sender first gave it, the `ORCPT` parameter of RCPT, with the
/// address type `rfc822` (RFC 3461 section 4.2). The `utf-8` address type of RFC 6533 section 3
/// is not supported, so an original recipient with non-ASCII characters cannot be given.
// TODO: add the `utf-8` address type of RFC 6533 section 3 so that non-ASCII recipients get an
// ORCPT too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OriginalRecipient {
    address: XText,
}

impl OriginalRecipient {
    /// Creates an original recipient of address type `rfc822`.
    pub fn rfc822(address: XText) -> Self {
        Self { address }
    }

    /// Returns the address type, `rfc822`.
    pub fn address_type(&self) -> &'static str {
        "rfc822"
    }

    /// Returns the address, plain; it is xtext-encoded on the wire.
    pub fn address(&self) -> &XText {
        &self.address
    }
}

impl fmt::Display for OriginalRecipient {
    /// Writes `rfc822;address` with the plain address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.address_type(), self.address)
    }
}

/// An extension parameter of MAIL or RCPT, `esmtp-keyword ["=" esmtp-value]`
/// ([RFC 5321 section 4.1.2](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.2)).
///
/// Keywords that have a typed field in [`MailParameters`] or [`RcptParameters`] are rejected, so
/// a command never carries the same parameter twice. The keyword is kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parameter {
    keyword: String,
    value: Option<String>,
}

impl Parameter {
    /// Checks a keyword, `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`, and an optional value of one
    /// or more characters without spaces, `=` or control characters (UTF-8 allowed, RFC 6531
    /// section 3.3).
    pub fn new(keyword: &str, value: Option<&str>) -> Result<Self, AddressError> {
        let written = match value {
            Some(value) => format!("{keyword}={value}"),
            None => keyword.to_owned(),
        };

        Self::check(keyword, value).map_err(|fault| fault.into_error("parameter", &written))?;

        Ok(Self {
            keyword: keyword.to_owned(),
            value: value.map(str::to_owned),
        })
    }

    /// Returns the keyword as written.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// Returns the value, or `None` for a parameter without `=`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    fn check(keyword: &str, value: Option<&str>) -> Result<(), Fault> {
        let invalid =
            |problem: String| Err(Fault::new(AddressErrorKind::InvalidParameter, problem));

        if keyword.is_empty() {
            return invalid("the keyword is empty".to_owned());
        }
        if value == Some("") {
            return invalid("the value after `=` is empty".to_owned());
        }
        check_text(keyword)?;
        if let Some(value) = value {
            check_text(value)?;
        }

        if all_consuming(esmtp_keyword).parse(keyword).is_err() {
            return invalid(format!("the keyword {keyword:?} is not valid"));
        }
        if let Some(value) = value {
            if all_consuming(esmtp_value).parse(value).is_err() {
                return invalid(format!("the value {value:?} contains a space or `=`"));
            }
        }
        if RESERVED_KEYWORDS
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(keyword))
        {
            return Err(Fault::new(
                AddressErrorKind::ReservedKeyword,
                format!("the keyword {keyword:?} has its own field"),
            ));
        }

        Ok(())
    }
}

impl FromStr for Parameter {
    type Err = AddressError;

    /// Parses `KEYWORD` or `KEYWORD=value`.
    fn from_str(parameter: &str) -> Result<Self, Self::Err> {
        match parameter.split_once('=') {
            Some((keyword, value)) => Self::new(keyword, Some(value)),
            None => Self::new(parameter, None),
        }
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keyword)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        Ok(())
    }
}

/// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")` (RFC 5321 section 4.1.2).
fn esmtp_keyword(input: &str) -> IResult<&str, &str> {
    let first = satisfy(|c| c.is_ascii_alphanumeric());
    let rest = take_while(|c: char| c.is_ascii_alphanumeric() || c == '-');

    recognize((first, rest)).parse(input)
}

/// `esmtp-value = 1*(%d33-60 / %d62-126)` (RFC 5321 section 4.1.2) with
/// `esmtp-value =/ UTF8-non-ascii` (RFC 6531 section 3.3), minus control characters.
fn esmtp_value(input: &str) -> IResult<&str, &str> {
    take_while1(|c: char| matches!(c, '!'..='<' | '>'..='~') || (!c.is_ascii() && !c.is_control()))
        .parse(input)
}

/// Keywords set through the typed fields of [`MailParameters`] and [`RcptParameters`].
const RESERVED_KEYWORDS: [&str; 8] = [
    "SIZE",
    "BODY",
    "SMTPUTF8",
    "RET",
    "ENVID",
    "REQUIRETLS",
    "NOTIFY",
    "ORCPT",
];

/// Maximum octets of a VRFY, EXPN or HELP argument: 512 octets of command line (RFC 5321
/// section 4.5.3.1.4) minus the four-letter verb, its space and CRLF.
const MAX_ARGUMENT: usize = 512 - 5 - 2;

#[cfg(test)]
mod tests {
    use super::*;

    use AddressErrorKind as Kind;

    #[test]
    fn argument_new() {
        let longest = "a".repeat(505);
        let too_long = "a".repeat(506);
        let cases = [
            ("user name", "Smith", Ok(())),
            ("mailbox", "<a@example.org>", Ok(())),
            ("inner space", "John Smith", Ok(())),
            ("utf-8", "jörg", Ok(())),
            ("505 octets", &longest, Ok(())),
            ("506 octets", &too_long, Err(Kind::ArgumentTooLong)),
            ("empty", "", Err(Kind::Empty)),
            (
                "CRLF injection",
                "Smith\r\nRCPT TO:<evil@example.com>",
                Err(Kind::ControlCharacter),
            ),
            ("LF", "Smith\nQUIT", Err(Kind::ControlCharacter)),
            ("NUL", "Smith\0", Err(Kind::ControlCharacter)),
            ("leading space", " Smith", Err(Kind::InvalidArgument)),
            ("trailing space", "Smith ", Err(Kind::InvalidArgument)),
        ];

        for (label, text, expected) in cases {
            let result = Argument::new(text);
            assert_eq!(
                result.as_ref().map(|_| ()).map_err(AddressError::kind),
                expected,
                "{label}"
            );
            if let Ok(argument) = result {
                assert_eq!(argument.as_str(), text, "{label}");
            }
        }
    }

    #[test]
    fn parameter_new() {
        let cases = [
            ("keyword only", "X-FLAG", None, Ok(())),
            ("keyword and value", "X-TRACE", Some("abc123"), Ok(())),
            ("lower-case keyword", "x-trace", Some("1"), Ok(())),
            ("digit first", "8BIT", None, Ok(())),
            ("utf-8 value", "X-NAME", Some("jörg"), Ok(())),
            ("empty keyword", "", None, Err(Kind::InvalidParameter)),
            (
                "empty value",
                "X-TRACE",
                Some(""),
                Err(Kind::InvalidParameter),
            ),
            ("hyphen first", "-X", None, Err(Kind::InvalidParameter)),
            ("underscore", "X_Y", None, Err(Kind::InvalidParameter)),
            (
                "space in value",
                "X-TRACE",
                Some("a b"),
                Err(Kind::InvalidParameter),
            ),
            (
                "equals in value",
                "X-TRACE",
                Some("a=b"),
                Err(Kind::InvalidParameter),
            ),
            ("space in keyword", "X Y", None, Err(Kind::InvalidParameter)),
            (
                "CRLF in value",
                "X-TRACE",
                Some("a\r\nRSET"),
                Err(Kind::ControlCharacter),
            ),
            ("NUL in keyword", "X\0", None, Err(Kind::ControlCharacter)),
            (
                "reserved SIZE",
                "SIZE",
                Some("1"),
                Err(Kind::ReservedKeyword),
            ),
            (
                "reserved notify lower-case",
                "notify",
                Some("NEVER"),
                Err(Kind::ReservedKeyword),
            ),
            (
                "reserved SMTPUTF8",
                "SMTPUTF8",
                None,
                Err(Kind::ReservedKeyword),
            ),
        ];

        for (label, keyword, value, expected) in cases {
            let result = Parameter::new(keyword, value);
            assert_eq!(
                result.as_ref().map(|_| ()).map_err(AddressError::kind),
                expected,
                "{label}"
            );
            if let Ok(parameter) = result {
                assert_eq!(parameter.keyword(), keyword, "{label}");
                assert_eq!(parameter.value(), value, "{label}");
                assert_eq!(parameter.to_string().parse(), Ok(parameter), "{label}");
            }
        }
    }

    #[test]
    fn parameter_error_names_value() {
        let error = Parameter::new("X-TRACE", Some("a\r\nRSET")).unwrap_err();

        assert_eq!(error.value(), "X-TRACE=a\r\nRSET");
        assert!(
            error
                .to_string()
                .starts_with(r#"invalid parameter "X-TRACE=a\r\nRSET": "#),
            "{error}"
        );
    }

    #[test]
    fn notify_display() {
        let cases = [
            ("never", Notify::NEVER, "NEVER"),
            ("success", Notify::SUCCESS, "SUCCESS"),
            (
                "failure and delay",
                Notify::DELAY | Notify::FAILURE,
                "FAILURE,DELAY",
            ),
            (
                "all",
                Notify::SUCCESS | Notify::FAILURE | Notify::DELAY,
                "SUCCESS,FAILURE,DELAY",
            ),
            (
                "never with success",
                Notify::NEVER | Notify::SUCCESS,
                "SUCCESS",
            ),
        ];

        for (label, notify, expected) in cases {
            assert_eq!(notify.to_string(), expected, "{label}");
        }
    }

    #[test]
    fn notify_conditions() {
        let notify = Notify::SUCCESS | Notify::DELAY;

        assert!(notify.on_success());
        assert!(!notify.on_failure());
        assert!(notify.on_delay());
        assert!(!notify.is_never());
        assert!(Notify::NEVER.is_never());
    }

    #[test]
    fn original_recipient_display() {
        let orcpt = OriginalRecipient::rfc822(XText::new("b+x@example.net").unwrap());

        assert_eq!(orcpt.to_string(), "rfc822;b+x@example.net");
        assert_eq!(orcpt.address_type(), "rfc822");
        assert_eq!(orcpt.address().value(), "b+x@example.net");
    }

    #[test]
    fn body_type_and_ret_keywords() {
        assert_eq!(BodyType::SevenBit.to_string(), "7BIT");
        assert_eq!(BodyType::EightBitMime.to_string(), "8BITMIME");
        assert_eq!(BodyType::BinaryMime.to_string(), "BINARYMIME");
        assert_eq!(Ret::Full.to_string(), "FULL");
        assert_eq!(Ret::Headers.to_string(), "HDRS");
    }
}
