//! The command parser of the server side
//! ([RFC 5321 section 4.1](https://www.rfc-editor.org/rfc/rfc5321#section-4.1)).
//!
//! A line is framed first, under the 512-octet limit of RFC 5321 section 4.5.3.1.4 with CRLF as
//! its only line end, and only then parsed. Verbs, `FROM:`, `TO:`, parameter keywords, the
//! keyword values of BODY, RET and NOTIFY, and `LAST` compare case-insensitively. Octets above
//! 127 are accepted only where RFC 6531 section 3.3 allows UTF-8: in a domain, a mailbox, an
//! `esmtp-value` and the text argument of VRFY, EXPN and HELP. Whether the session allows them
//! there (the `SMTPUTF8` parameter) is the session's decision.
//!
//! Source routes in a path (`<@relay.example:a@example.org>`) are accepted and dropped, as RFC
//! 5321 section 4.1.2 asks of servers. The argument of NOOP is accepted and dropped.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_till1, take_while, take_while_m_n, take_while1};
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::{all_consuming, map, opt, recognize, rest, value};
use nom::multi::separated_list1;
use nom::sequence::{preceded, terminated};
use nom::{IResult, Parser};

use super::{
    Argument, BodyType, Command, MailParameters, Notify, OriginalRecipient, Parameter,
    RcptParameters, Ret,
};
use crate::address::{Domain, Mailbox, ReversePath, XText};
use crate::auth::Mechanism;
use crate::error::{ParseError, ParseErrorKind};
use crate::line::LineFramer;
use crate::secret::Secret;

impl Command {
    /// Parses one command line, CRLF included, of at most 512 octets (RFC 5321 section
    /// 4.5.3.1.4).
    ///
    /// Lines of the AUTH exchange that follow a 334 challenge are no commands: parse them with
    /// [`Command::parse_auth_response`]. For every command `c`, `Command::parse` of the bytes
    /// [`Command::encode`] writes returns `c`, except for [`Command::AuthResponse`] and
    /// [`Command::AuthCancel`].
    ///
    /// # Errors
    ///
    /// A [`ParseError`] whose kind names the broken rule: [`ParseErrorKind::LineTooLong`],
    /// [`ParseErrorKind::BareLineFeed`] or [`ParseErrorKind::MissingLineEnd`] for the framing,
    /// then the grammar kinds such as [`ParseErrorKind::UnknownCommand`] or
    /// [`ParseErrorKind::InvalidPath`]. The offset counts from the first byte of `line`.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let content = frame(line, MAX_COMMAND_LINE)?;

        parse_command_line(content, None)
    }

    /// Parses one line the client sends after a 334 challenge (RFC 4954 section 4), CRLF
    /// included, of at most 12288 octets: `*` cancels the exchange, anything else is a base64
    /// response, and an empty line is an empty response.
    ///
    /// # Errors
    ///
    /// The framing kinds of [`Command::parse`], and [`ParseErrorKind::InvalidBase64`].
    pub fn parse_auth_response(line: &[u8]) -> Result<Self, ParseError> {
        let content = frame(line, MAX_AUTH_LINE)?;

        parse_auth_line(content)
    }
}

/// Maximum octets of a command line, CRLF included (RFC 5321 section 4.5.3.1.4).
pub(crate) const MAX_COMMAND_LINE: usize = 512;

/// Maximum octets of a line that answers a 334 challenge, CRLF included (RFC 4954 section 4).
pub(crate) const MAX_AUTH_LINE: usize = 12288;

/// Checks that `line` is exactly one line ending in CRLF, of at most `max_length` octets, and
/// returns it without the CRLF.
fn frame(line: &[u8], max_length: usize) -> Result<&[u8], ParseError> {
    let framed = LineFramer::new(max_length, false).next_line(line)?;

    match framed {
        Some(framed) if framed.length == line.len() => Ok(&line[..framed.content_length]),
        Some(framed) => Err(ParseError::new(
            ParseErrorKind::MissingLineEnd,
            framed.length,
        )),
        None => Err(ParseError::new(ParseErrorKind::MissingLineEnd, line.len())),
    }
}

/// Parses a command line without its CRLF. With `postmaster` set, `RCPT TO:<Postmaster>` is
/// read as `Postmaster@` that domain (RFC 5321 section 4.1.1.3).
pub(crate) fn parse_command_line(
    content: &[u8],
    postmaster: Option<&Domain>,
) -> Result<Command, ParseError> {
    let result = all_consuming(|input| command(input, postmaster)).parse(content);

    result.map(|(_, command)| command).map_err(|error| {
        let (kind, remaining) = match error {
            nom::Err::Error(failure) | nom::Err::Failure(failure) => {
                (failure.kind, failure.input.len())
            }
            nom::Err::Incomplete(_) => (ParseErrorKind::InvalidArguments, 0),
        };
        ParseError::new(kind, content.len() - remaining)
    })
}

/// Parses a line of the AUTH exchange without its CRLF.
pub(crate) fn parse_auth_line(content: &[u8]) -> Result<Command, ParseError> {
    if content == b"*" {
        return Ok(Command::AuthCancel);
    }

    BASE64
        .decode(content)
        .map(|response| Command::AuthResponse(Secret::new(response)))
        .map_err(|_| ParseError::new(ParseErrorKind::InvalidBase64, 0))
}

/// A failed grammar rule: the input where it failed and the kind it reports.
#[derive(Debug)]
struct Failure<'a> {
    input: &'a [u8],
    kind: ParseErrorKind,
}

impl<'a> nom::error::ParseError<&'a [u8]> for Failure<'a> {
    fn from_error_kind(input: &'a [u8], _: nom::error::ErrorKind) -> Self {
        Self {
            input,
            kind: ParseErrorKind::InvalidArguments,
        }
    }

    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

type Parsed<'a, T> = IResult<&'a [u8], T, Failure<'a>>;

/// Stops the parse at `input` with `kind`; no other branch is tried.
fn fail<T>(input: &[u8], kind: ParseErrorKind) -> Parsed<'_, T> {
    Err(failure(input, kind))
}

/// The error that stops the parse at `input` with `kind`.
fn failure(input: &[u8], kind: ParseErrorKind) -> nom::Err<Failure<'_>> {
    nom::Err::Failure(Failure { input, kind })
}

/// Gives every error of `parser` the kind `kind`.
fn labelled<'a, O>(
    kind: ParseErrorKind,
    mut parser: impl Parser<&'a [u8], Output = O, Error = Failure<'a>>,
) -> impl FnMut(&'a [u8]) -> Parsed<'a, O> {
    move |input| {
        parser
            .parse(input)
            .map_err(|error| error.map(|failure| Failure { kind, ..failure }))
    }
}

/// Decodes `bytes`, which the grammar already matched, as UTF-8 (RFC 6531 section 3.3).
fn utf8(bytes: &[u8]) -> Result<&str, ParseErrorKind> {
    std::str::from_utf8(bytes).map_err(|_| ParseErrorKind::InvalidUtf8)
}

/// `command = ehlo / helo / lhlo / mail / rcpt / data / bdat / rset / vrfy / expn / help /
/// noop / quit / starttls / auth` (RFC 5321 section 4.1.1, RFC 2033 section 4.1, RFC 3030
/// section 2, RFC 3207 section 4, RFC 4954 section 4), each verb in any case.
fn command<'a>(input: &'a [u8], postmaster: Option<&Domain>) -> Parsed<'a, Command> {
    let (arguments, verb) = take_while1(|byte: u8| byte.is_ascii_alphabetic())(input)
        .or_else(|_: nom::Err<Failure<'a>>| fail(input, ParseErrorKind::UnknownCommand))?;
    if !matches!(arguments.first(), None | Some(b' ')) {
        return fail(input, ParseErrorKind::UnknownCommand);
    }

    match verb.to_ascii_uppercase().as_slice() {
        b"EHLO" => map(hello_domain, Command::Ehlo).parse(arguments),
        b"HELO" => map(hello_domain, Command::Helo).parse(arguments),
        b"LHLO" => map(hello_domain, Command::Lhlo).parse(arguments),
        b"MAIL" => mail(arguments),
        b"RCPT" => rcpt(arguments, postmaster),
        b"DATA" => value(Command::Data, no_arguments).parse(arguments),
        b"BDAT" => bdat(arguments),
        b"RSET" => value(Command::Rset, no_arguments).parse(arguments),
        b"NOOP" => value(Command::Noop, opt(preceded(char(' '), rest))).parse(arguments),
        b"VRFY" => map(preceded(char(' '), string), Command::Vrfy).parse(arguments),
        b"EXPN" => map(preceded(char(' '), string), Command::Expn).parse(arguments),
        b"HELP" => map(opt(preceded(char(' '), string)), Command::Help).parse(arguments),
        b"QUIT" => value(Command::Quit, no_arguments).parse(arguments),
        b"STARTTLS" => value(Command::StartTls, no_arguments).parse(arguments),
        b"AUTH" => auth(arguments),
        _ => fail(input, ParseErrorKind::UnknownCommand),
    }
}

/// The end of a command without arguments, such as `data = "DATA" CRLF` (RFC 5321 section
/// 4.1.1.4).
fn no_arguments(input: &[u8]) -> Parsed<'_, ()> {
    if !input.is_empty() {
        return fail(input, ParseErrorKind::InvalidArguments);
    }

    Ok((input, ()))
}

/// `ehlo = "EHLO" SP ( Domain / address-literal )`, `helo = "HELO" SP Domain` (RFC 5321
/// section 4.1.1.1) and `lhlo = "LHLO" SP Domain` (RFC 2033 section 4.1): the part after the
/// verb.
fn hello_domain(input: &[u8]) -> Parsed<'_, Domain> {
    let (rest, text) = preceded(char(' '), rest).parse(input)?;

    let text = utf8(text).map_err(|kind| failure(input, kind))?;
    let domain =
        Domain::parse(text).map_err(|_| failure(input, ParseErrorKind::InvalidArguments))?;

    Ok((rest, domain))
}

/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters]` (RFC 5321 section 4.1.1.2): the
/// part after the verb.
fn mail(input: &[u8]) -> Parsed<'_, Command> {
    let (after_path, reverse_path) = preceded(tag_no_case(" FROM:"), reverse_path).parse(input)?;

    let (rest, parameters) = match after_path.strip_prefix(b" ") {
        Some(parameters) => mail_parameters(parameters)?,
        None => (after_path, MailParameters::default()),
    };

    Ok((
        rest,
        Command::Mail {
            reverse_path,
            parameters,
        },
    ))
}

/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
/// [SP Rcpt-parameters]` (RFC 5321 section 4.1.1.3): the part after the verb.
fn rcpt<'a>(input: &'a [u8], postmaster: Option<&Domain>) -> Parsed<'a, Command> {
    let (after_path, forward_path) = preceded(tag_no_case(" TO:"), |path_input| {
        forward_path(path_input, postmaster)
    })
    .parse(input)?;

    let (rest, parameters) = match after_path.strip_prefix(b" ") {
        Some(parameters) => rcpt_parameters(parameters)?,
        None => (after_path, RcptParameters::default()),
    };

    Ok((
        rest,
        Command::Rcpt {
            forward_path,
            parameters,
        },
    ))
}

/// `Reverse-path = Path / "<>"` (RFC 5321 section 4.1.2).
fn reverse_path(input: &[u8]) -> Parsed<'_, ReversePath> {
    alt((
        value(ReversePath::Null, tag("<>")),
        map(path, ReversePath::Mailbox),
    ))
    .parse(input)
}

/// `Forward-path = Path` (RFC 5321 section 4.1.2), and `<Postmaster>` read as the postmaster
/// of `postmaster` when it is set.
fn forward_path<'a>(input: &'a [u8], postmaster: Option<&Domain>) -> Parsed<'a, Mailbox> {
    if let Some(domain) = postmaster {
        if let Ok((rest, _)) = tag_no_case::<_, _, Failure<'a>>("<Postmaster>").parse(input) {
            let mailbox = Mailbox::new("Postmaster", domain.clone())
                .map_err(|_| failure(input, ParseErrorKind::InvalidPath))?;
            return Ok((rest, mailbox));
        }
    }

    path(input)
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"` (RFC 5321 section 4.1.2); a source route is dropped.
fn path(input: &[u8]) -> Parsed<'_, Mailbox> {
    let (rest, text) = labelled(
        ParseErrorKind::InvalidPath,
        terminated(
            preceded(
                (char('<'), opt((a_d_l, char(':')))),
                take_till1(|b| b == b'>'),
            ),
            char('>'),
        ),
    )(input)?;

    let text = utf8(text).map_err(|kind| failure(input, kind))?;
    let mailbox = Mailbox::parse(text).map_err(|_| failure(input, ParseErrorKind::InvalidPath))?;

    Ok((rest, mailbox))
}

/// `A-d-l = At-domain *( "," At-domain )` with `At-domain = "@" Domain` (RFC 5321 section
/// 4.1.2), recognised loosely because the route is dropped.
fn a_d_l(input: &[u8]) -> Parsed<'_, &[u8]> {
    let at_domain = preceded(
        char('@'),
        take_while1(|b: u8| b.is_ascii_alphanumeric() || b"-.[]".contains(&b) || b >= 0x80),
    );

    recognize(separated_list1(char(','), at_domain)).parse(input)
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)` (RFC 5321 section 4.1.2), with the
/// parameters of RFC 1870, RFC 6152, RFC 3030, RFC 6531, RFC 3461 and RFC 8689 typed.
fn mail_parameters(input: &[u8]) -> Parsed<'_, MailParameters> {
    let mut parameters = MailParameters::default();

    let rest = esmtp_parameters(input, |keyword, value| parameters.apply(keyword, value))?;

    Ok((rest, parameters))
}

/// `Rcpt-parameters = esmtp-param *(SP esmtp-param)` (RFC 5321 section 4.1.2), with NOTIFY
/// and ORCPT of RFC 3461 typed.
fn rcpt_parameters(input: &[u8]) -> Parsed<'_, RcptParameters> {
    let mut parameters = RcptParameters::default();

    let rest = esmtp_parameters(input, |keyword, value| parameters.apply(keyword, value))?;

    Ok((rest, parameters))
}

/// Parses `esmtp-param *(SP esmtp-param)` and passes each keyword and value to `apply`; an
/// error from `apply` is reported at the start of that parameter.
fn esmtp_parameters<'a>(
    mut input: &'a [u8],
    mut apply: impl FnMut(&str, Option<&str>) -> Result<(), ParseErrorKind>,
) -> Result<&'a [u8], nom::Err<Failure<'a>>> {
    loop {
        let (rest, (keyword, value)) = esmtp_param(input)?;
        apply(keyword, value).map_err(|kind| failure(input, kind))?;

        match rest {
            [] => return Ok(rest),
            [b' ', next @ ..] => input = next,
            _ => return Err(failure(input, ParseErrorKind::InvalidParameter)),
        }
    }
}

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]` (RFC 5321 section 4.1.2).
fn esmtp_param(input: &[u8]) -> Parsed<'_, (&str, Option<&str>)> {
    let (rest, (keyword, value)) = labelled(
        ParseErrorKind::InvalidParameter,
        (esmtp_keyword, opt(preceded(char('='), esmtp_value))),
    )(input)?;

    let value = match value.map(utf8).transpose() {
        Ok(value) => value,
        Err(kind) => return fail(input, kind),
    };

    Ok((rest, (keyword, value)))
}

/// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")` (RFC 5321 section 4.1.2).
fn esmtp_keyword(input: &[u8]) -> Parsed<'_, &str> {
    let first = satisfy(|c| c.is_ascii_alphanumeric());
    let others = take_while(|b: u8| b.is_ascii_alphanumeric() || b == b'-');

    let (rest, keyword) = recognize((first, others)).parse(input)?;

    // The grammar matched ASCII only.
    let keyword = utf8(keyword).map_err(|kind| failure(input, kind))?;
    Ok((rest, keyword))
}

/// `esmtp-value = 1*(%d33-60 / %d62-126)` (RFC 5321 section 4.1.2) with
/// `esmtp-value =/ UTF8-non-ascii` (RFC 6531 section 3.3), still undecoded.
fn esmtp_value(input: &[u8]) -> Parsed<'_, &[u8]> {
    take_while1(|b: u8| matches!(b, 33..=60 | 62..=126) || b >= 0x80)(input)
}

/// `String = Atom / Quoted-string` (RFC 5321 section 4.1.2), the argument of VRFY, EXPN and
/// HELP, read as free text up to the end of the line because its meaning is the server's.
fn string(input: &[u8]) -> Parsed<'_, Argument> {
    let (rest, text) = rest(input)?;

    let text = utf8(text).map_err(|kind| failure(input, kind))?;
    let argument =
        Argument::new(text).map_err(|_| failure(input, ParseErrorKind::InvalidArguments))?;

    Ok((rest, argument))
}

/// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]`, `chunk-size = 1*DIGIT`,
/// `end-marker = "LAST"` (RFC 3030 section 2): the part after the verb.
fn bdat(input: &[u8]) -> Parsed<'_, Command> {
    let (rest, (digits, last)) = (
        preceded(char(' '), digit1),
        opt(preceded(char(' '), tag_no_case("LAST"))),
    )
        .parse(input)?;

    let size = decimal(digits).ok_or_else(|| failure(input, ParseErrorKind::InvalidArguments))?;

    Ok((
        rest,
        Command::Bdat {
            size,
            last: last.is_some(),
        },
    ))
}

/// `auth-command = "AUTH" SP sasl-mech [SP initial-response]`, `sasl-mech = 1*20mech-char`,
/// `initial-response = base64 / "="` (RFC 4954 section 4): the part after the verb.
fn auth(input: &[u8]) -> Parsed<'_, Command> {
    let (after_mechanism, name) = preceded(char(' '), sasl_mech).parse(input)?;

    let (rest, initial) = opt(preceded(char(' '), rest)).parse(after_mechanism)?;
    let initial_response = match initial {
        None => None,
        Some(b"=") => Some(Secret::new(Vec::new())),
        Some(text) => match BASE64.decode(text) {
            Ok(response) => Some(Secret::new(response)),
            Err(_) => return fail(after_mechanism, ParseErrorKind::InvalidBase64),
        },
    };

    // The grammar matched ASCII only.
    let name = utf8(name).map_err(|kind| failure(input, kind))?;
    Ok((
        rest,
        Command::Auth {
            mechanism: Mechanism::from_name(name),
            initial_response,
        },
    ))
}

/// `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE`
/// (RFC 4954 section 3), lower-case letters accepted.
fn sasl_mech(input: &[u8]) -> Parsed<'_, &[u8]> {
    take_while_m_n(1, 20, |b: u8| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
    })(input)
}

/// Reads ASCII digits as a `u64`, or returns `None` when the number does not fit.
fn decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |number, &digit| {
        number.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

impl MailParameters {
    /// Stores one parameter of MAIL FROM; a keyword that has a typed field may appear once.
    fn apply(&mut self, keyword: &str, value: Option<&str>) -> Result<(), ParseErrorKind> {
        let upper = keyword.to_ascii_uppercase();
        match (upper.as_str(), value) {
            // RFC 1870 section 3: `size-value = 1*20DIGIT`.
            ("SIZE", Some(value))
                if value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let size = decimal(value.as_bytes()).ok_or(ParseErrorKind::InvalidParameter)?;
                set_once(&mut self.size, size)
            }
            ("BODY", Some(value)) => {
                let body = match value.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    _ => return Err(ParseErrorKind::InvalidParameter),
                };
                set_once(&mut self.body, body)
            }
            ("RET", Some(value)) => {
                let ret = match value.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Headers,
                    _ => return Err(ParseErrorKind::InvalidParameter),
                };
                set_once(&mut self.ret, ret)
            }
            ("ENVID", Some(value)) => {
                let envid = XText::decode(value).map_err(|_| ParseErrorKind::InvalidParameter)?;
                set_once(&mut self.envid, envid)
            }
            ("SMTPUTF8", None) => set_flag(&mut self.smtputf8),
            ("REQUIRETLS", None) => set_flag(&mut self.requiretls),
            ("SIZE" | "BODY" | "RET" | "ENVID" | "SMTPUTF8" | "REQUIRETLS", _) => {
                Err(ParseErrorKind::InvalidParameter)
            }
            ("NOTIFY" | "ORCPT", _) => Err(ParseErrorKind::UnsupportedParameter),
            _ => {
                let parameter =
                    Parameter::new(keyword, value).map_err(|_| ParseErrorKind::InvalidParameter)?;
                self.extra.push(parameter);
                Ok(())
            }
        }
    }
}

impl RcptParameters {
    /// Stores one parameter of RCPT TO; a keyword that has a typed field may appear once.
    fn apply(&mut self, keyword: &str, value: Option<&str>) -> Result<(), ParseErrorKind> {
        let upper = keyword.to_ascii_uppercase();
        match (upper.as_str(), value) {
            ("NOTIFY", Some(value)) => set_once(&mut self.notify, notify(value)?),
            ("ORCPT", Some(value)) => set_once(&mut self.orcpt, original_recipient(value)?),
            ("NOTIFY" | "ORCPT", None) => Err(ParseErrorKind::InvalidParameter),
            ("SIZE" | "BODY" | "RET" | "ENVID" | "SMTPUTF8" | "REQUIRETLS", _) => {
                Err(ParseErrorKind::UnsupportedParameter)
            }
            _ => {
                let parameter =
                    Parameter::new(keyword, value).map_err(|_| ParseErrorKind::InvalidParameter)?;
                self.extra.push(parameter);
                Ok(())
            }
        }
    }
}

/// `notify-esmtp-value = "NEVER" / 1#notify-list-element`, `notify-list-element = "SUCCESS" /
/// "FAILURE" / "DELAY"` (RFC 3461 section 4.1), each condition at most once.
fn notify(value: &str) -> Result<Notify, ParseErrorKind> {
    if value.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::NEVER);
    }

    let mut notify = Notify::NEVER;
    for condition in value.split(',') {
        let flag = match condition.to_ascii_uppercase().as_str() {
            "SUCCESS" => Notify::SUCCESS,
            "FAILURE" => Notify::FAILURE,
            "DELAY" => Notify::DELAY,
            _ => return Err(ParseErrorKind::InvalidParameter),
        };
        if (notify | flag) == notify {
            return Err(ParseErrorKind::InvalidParameter);
        }
        notify = notify | flag;
    }
    Ok(notify)
}

/// `orcpt-parameter = "ORCPT=" original-recipient-address`, `original-recipient-address =
/// addr-type ";" xtext` (RFC 3461 section 4.2), for the address type `rfc822`.
fn original_recipient(value: &str) -> Result<OriginalRecipient, ParseErrorKind> {
    let (address_type, address) = value
        .split_once(';')
        .ok_or(ParseErrorKind::InvalidParameter)?;
    if !address_type.eq_ignore_ascii_case("rfc822") {
        return Err(ParseErrorKind::UnsupportedParameter);
    }

    let address = XText::decode(address).map_err(|_| ParseErrorKind::InvalidParameter)?;
    Ok(OriginalRecipient::rfc822(address))
}

/// Sets a typed parameter that must not appear twice.
fn set_once<T>(field: &mut Option<T>, value: T) -> Result<(), ParseErrorKind> {
    if field.is_some() {
        return Err(ParseErrorKind::InvalidParameter);
    }
    *field = Some(value);
    Ok(())
}

/// Sets a parameter without value that must not appear twice.
fn set_flag(flag: &mut bool) -> Result<(), ParseErrorKind> {
    if *flag {
        return Err(ParseErrorKind::InvalidParameter);
    }
    *flag = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;

    use ParseErrorKind as Kind;

    fn domain(text: &str) -> Domain {
        Domain::parse(text).unwrap()
    }

    fn mailbox(text: &str) -> Mailbox {
        Mailbox::parse(text).unwrap()
    }

    fn encoded(command: &Command) -> Vec<u8> {
        let mut buf = BytesMut::new();
        command.encode(&mut buf);
        buf.to_vec()
    }

    /// Parses a command line or, for the lines of an AUTH exchange, an AUTH response line.
    fn reparse(command: &Command) -> Result<Command, ParseError> {
        let line = encoded(command);
        match command {
            Command::AuthResponse(_) | Command::AuthCancel => Command::parse_auth_response(&line),
            _ => Command::parse(&line),
        }
    }

    /// One command of every variant and typed parameter.
    fn every_variant() -> Vec<(&'static str, Command)> {
        let all_mail = MailParameters {
            size: Some(1_000_000),
            body: Some(BodyType::BinaryMime),
            smtputf8: true,
            ret: Some(Ret::Headers),
            envid: Some(XText::new("id+1=2 x").unwrap()),
            requiretls: true,
            extra: vec![
                Parameter::new("X-FLAG", None).unwrap(),
                Parameter::new("x-trace", Some("abc")).unwrap(),
            ],
        };
        let all_rcpt = RcptParameters {
            notify: Some(Notify::SUCCESS | Notify::DELAY),
            orcpt: Some(OriginalRecipient::rfc822(
                XText::new("b+x@example.net").unwrap(),
            )),
            extra: vec![Parameter::new("X-PRIORITY", Some("1")).unwrap()],
        };
        vec![
            ("ehlo", Command::Ehlo(domain("client.example.org"))),
            ("ehlo literal", Command::Ehlo(domain("[IPv6:2001:db8::1]"))),
            ("ehlo u-label", Command::Ehlo(domain("bücher.example"))),
            ("helo", Command::Helo(domain("client.example.org"))),
            ("lhlo", Command::Lhlo(domain("client.example.org"))),
            ("starttls", Command::StartTls),
            (
                "auth plain",
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some(Secret::new(b"\0alice\0s3cret-example".to_vec())),
                },
            ),
            (
                "auth empty initial response",
                Command::Auth {
                    mechanism: Mechanism::XOAuth2,
                    initial_response: Some(Secret::new(Vec::new())),
                },
            ),
            (
                "auth other mechanism",
                Command::Auth {
                    mechanism: Mechanism::from_name("scram-sha-256"),
                    initial_response: None,
                },
            ),
            (
                "auth response",
                Command::AuthResponse(Secret::new(b"alice".to_vec())),
            ),
            (
                "empty auth response",
                Command::AuthResponse(Secret::new(Vec::new())),
            ),
            ("auth cancel", Command::AuthCancel),
            (
                "mail null path",
                Command::Mail {
                    reverse_path: ReversePath::Null,
                    parameters: MailParameters::default(),
                },
            ),
            (
                "mail every parameter",
                Command::Mail {
                    reverse_path: ReversePath::Mailbox(mailbox("a@example.org")),
                    parameters: all_mail,
                },
            ),
            (
                "mail utf-8",
                Command::Mail {
                    reverse_path: ReversePath::Mailbox(mailbox("jörg@bücher.example")),
                    parameters: MailParameters {
                        smtputf8: true,
                        ..MailParameters::default()
                    },
                },
            ),
            (
                "rcpt every parameter",
                Command::Rcpt {
                    forward_path: mailbox("b@example.net"),
                    parameters: all_rcpt,
                },
            ),
            (
                "rcpt notify never",
                Command::Rcpt {
                    forward_path: mailbox(r#""a b\"c"@example.net"#),
                    parameters: RcptParameters {
                        notify: Some(Notify::NEVER),
                        ..RcptParameters::default()
                    },
                },
            ),
            ("data", Command::Data),
            (
                "bdat",
                Command::Bdat {
                    size: 0,
                    last: false,
                },
            ),
            (
                "bdat last",
                Command::Bdat {
                    size: u64::MAX,
                    last: true,
                },
            ),
            ("rset", Command::Rset),
            ("noop", Command::Noop),
            ("vrfy", Command::Vrfy(Argument::new("John Smith").unwrap())),
            ("expn", Command::Expn(Argument::new("staff").unwrap())),
            ("help", Command::Help(None)),
            (
                "help topic",
                Command::Help(Some(Argument::new("MAIL").unwrap())),
            ),
            ("quit", Command::Quit),
        ]
    }

    #[test]
    fn parse_of_encode_is_identity() {
        for (label, command) in every_variant() {
            assert_eq!(reparse(&command), Ok(command), "{label}");
        }
    }

    #[test]
    fn parse_accepts_variant_spellings() {
        let cases: Vec<(&str, &[u8], Command)> =
            vec![
            ("lower-case verb", b"quit\r\n", Command::Quit),
            ("mixed-case verb", b"StartTls\r\n", Command::StartTls),
            (
                "lower-case from",
                b"mail from:<a@example.org>\r\n",
                Command::Mail {
                    reverse_path: ReversePath::Mailbox(mailbox("a@example.org")),
                    parameters: MailParameters::default(),
                },
            ),
            (
                "lower-case parameters",
                b"MAIL FROM:<> size=12 body=8bitmime smtputf8 ret=full\r\n",
                Command::Mail {
                    reverse_path: ReversePath::Null,
                    parameters: MailParameters {
                        size: Some(12),
                        body: Some(BodyType::EightBitMime),
                        smtputf8: true,
                        ret: Some(Ret::Full),
                        ..MailParameters::default()
                    },
                },
            ),
            (
                "source route dropped",
                b"RCPT TO:<@relay.example,@hop.example:b@example.net>\r\n",
                Command::Rcpt {
                    forward_path: mailbox("b@example.net"),
                    parameters: RcptParameters::default(),
                },
            ),
            (
                "notify in any order and case",
                b"RCPT TO:<b@example.net> notify=delay,Success ORCPT=RFC822;b+2Bx@example.net\r\n",
                Command::Rcpt {
                    forward_path: mailbox("b@example.net"),
                    parameters: RcptParameters {
                        notify: Some(Notify::SUCCESS | Notify::DELAY),
                        orcpt: Some(OriginalRecipient::rfc822(
                            XText::new("b+x@example.net").unwrap(),
                        )),
                        extra: Vec::new(),
                    },
                },
            ),
            ("noop with argument", b"NOOP anything at all\r\n", Command::Noop),
            (
                "bdat lower-case last",
                b"BDAT 7 last\r\n",
                Command::Bdat {
                    size: 7,
                    last: true,
                },
            ),
            (
                "auth lower-case mechanism",
                b"auth plain\r\n",
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: None,
                },
            ),
        ];

        for (label, line, expected) in cases {
            assert_eq!(Command::parse(line), Ok(expected), "{label}");
        }
    }

    #[test]
    fn parse_rejects_invalid_lines() {
        let too_long = [b"NOOP ".as_slice(), &[b'x'; 506], b"\r\n"].concat();
        let longest = [b"NOOP ".as_slice(), &[b'x'; 505], b"\r\n"].concat();
        assert_eq!(Command::parse(&longest), Ok(Command::Noop), "512 octets");

        let cases: Vec<(&str, &[u8], Kind, usize)> = vec![
            ("513 octets", &too_long, Kind::LineTooLong, 512),
            ("no line end", b"QUIT", Kind::MissingLineEnd, 4),
            ("bare lf", b"QUIT\n", Kind::BareLineFeed, 4),
            ("two lines", b"NOOP\r\nQUIT\r\n", Kind::MissingLineEnd, 6),
            ("empty line", b"\r\n", Kind::UnknownCommand, 0),
            ("unknown verb", b"XYZZY\r\n", Kind::UnknownCommand, 0),
            ("verb with digit", b"HELO2 x\r\n", Kind::UnknownCommand, 0),
            (
                "argument to quit",
                b"QUIT now\r\n",
                Kind::InvalidArguments,
                4,
            ),
            ("data with space", b"DATA \r\n", Kind::InvalidArguments, 4),
            (
                "ehlo without domain",
                b"EHLO\r\n",
                Kind::InvalidArguments,
                4,
            ),
            (
                "ehlo bad domain",
                b"EHLO a..b\r\n",
                Kind::InvalidArguments,
                4,
            ),
            (
                "ehlo invalid utf-8",
                b"EHLO b\xfcr.example\r\n",
                Kind::InvalidUtf8,
                4,
            ),
            (
                "mail without colon",
                b"MAIL FROM <a@example.org>\r\n",
                Kind::InvalidArguments,
                4,
            ),
            (
                "mail space after colon",
                b"MAIL FROM: <a@example.org>\r\n",
                Kind::InvalidPath,
                10,
            ),
            (
                "mail without brackets",
                b"MAIL FROM:a@example.org\r\n",
                Kind::InvalidPath,
                10,
            ),
            (
                "mail bad mailbox",
                b"MAIL FROM:<a@@example.org>\r\n",
                Kind::InvalidPath,
                10,
            ),
            (
                "mail invalid utf-8",
                b"MAIL FROM:<j\xf6rg@example.org>\r\n",
                Kind::InvalidUtf8,
                10,
            ),
            (
                "mail trailing space",
                b"MAIL FROM:<a@example.org> \r\n",
                Kind::InvalidParameter,
                26,
            ),
            (
                "size not a number",
                b"MAIL FROM:<> SIZE=ten\r\n",
                Kind::InvalidParameter,
                13,
            ),
            (
                "size overflow",
                b"MAIL FROM:<> SIZE=99999999999999999999\r\n",
                Kind::InvalidParameter,
                13,
            ),
            (
                "size twice",
                b"MAIL FROM:<> SIZE=1 SIZE=2\r\n",
                Kind::InvalidParameter,
                20,
            ),
            (
                "smtputf8 with value",
                b"MAIL FROM:<> SMTPUTF8=1\r\n",
                Kind::InvalidParameter,
                13,
            ),
            (
                "smtputf8 twice",
                b"MAIL FROM:<> SMTPUTF8 SMTPUTF8\r\n",
                Kind::InvalidParameter,
                22,
            ),
            (
                "unknown body",
                b"MAIL FROM:<> BODY=9BIT\r\n",
                Kind::InvalidParameter,
                13,
            ),
            (
                "envid bad xtext",
                b"MAIL FROM:<> ENVID=a+2\r\n",
                Kind::InvalidParameter,
                13,
            ),
            (
                "notify on mail",
                b"MAIL FROM:<> NOTIFY=NEVER\r\n",
                Kind::UnsupportedParameter,
                13,
            ),
            (
                "empty value",
                b"MAIL FROM:<> X-A=\r\n",
                Kind::InvalidParameter,
                13,
            ),
            (
                "value with utf-8 error",
                b"MAIL FROM:<> X-A=\xff\r\n",
                Kind::InvalidUtf8,
                13,
            ),
            ("rcpt null path", b"RCPT TO:<>\r\n", Kind::InvalidPath, 9),
            (
                "rcpt postmaster without domain",
                b"RCPT TO:<Postmaster>\r\n",
                Kind::InvalidPath,
                8,
            ),
            (
                "notify never and more",
                b"RCPT TO:<b@example.net> NOTIFY=NEVER,DELAY\r\n",
                Kind::InvalidParameter,
                24,
            ),
            (
                "notify twice the same",
                b"RCPT TO:<b@example.net> NOTIFY=DELAY,DELAY\r\n",
                Kind::InvalidParameter,
                24,
            ),
            (
                "orcpt utf-8 type",
                b"RCPT TO:<b@example.net> ORCPT=utf-8;b@example.net\r\n",
                Kind::UnsupportedParameter,
                24,
            ),
            (
                "orcpt without type",
                b"RCPT TO:<b@example.net> ORCPT=b@example.net\r\n",
                Kind::InvalidParameter,
                24,
            ),
            (
                "size on rcpt",
                b"RCPT TO:<b@example.net> SIZE=1\r\n",
                Kind::UnsupportedParameter,
                24,
            ),
            ("bdat without size", b"BDAT\r\n", Kind::InvalidArguments, 4),
            ("bdat negative", b"BDAT -1\r\n", Kind::InvalidArguments, 5),
            (
                "bdat overflow",
                b"BDAT 18446744073709551616\r\n",
                Kind::InvalidArguments,
                4,
            ),
            (
                "bdat unknown marker",
                b"BDAT 1 FIRST\r\n",
                Kind::InvalidArguments,
                6,
            ),
            (
                "auth without mechanism",
                b"AUTH\r\n",
                Kind::InvalidArguments,
                4,
            ),
            (
                "auth bad base64",
                b"AUTH PLAIN %%\r\n",
                Kind::InvalidBase64,
                10,
            ),
            (
                "auth mechanism too long",
                b"AUTH ABCDEFGHIJKLMNOPQRSTU\r\n",
                Kind::InvalidArguments,
                25,
            ),
            (
                "vrfy without argument",
                b"VRFY\r\n",
                Kind::InvalidArguments,
                4,
            ),
            (
                "vrfy trailing space",
                b"VRFY Smith \r\n",
                Kind::InvalidArguments,
                5,
            ),
            ("nul in line", b"NOOP\0\r\n", Kind::UnknownCommand, 0),
            (
                "bare cr in line",
                b"RSET\rQUIT\r\n",
                Kind::UnknownCommand,
                0,
            ),
            (
                "nul in argument",
                b"VRFY a\0b\r\n",
                Kind::InvalidArguments,
                5,
            ),
        ];

        let mut mismatches = Vec::new();
        for (label, line, kind, offset) in cases {
            match Command::parse(line) {
                Err(error) if error.kind() == kind && error.offset() == offset => {}
                other => mismatches.push(format!("{label}: {other:?}")),
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    #[test]
    fn parse_auth_response_lines() {
        let cases: Vec<(&str, &[u8], Result<Command, Kind>)> = vec![
            ("cancel", b"*\r\n", Ok(Command::AuthCancel)),
            (
                "empty response",
                b"\r\n",
                Ok(Command::AuthResponse(Secret::new(Vec::new()))),
            ),
            (
                "response",
                b"YWxpY2U=\r\n",
                Ok(Command::AuthResponse(Secret::new(b"alice".to_vec()))),
            ),
            ("not base64", b"alice!\r\n", Err(Kind::InvalidBase64)),
            ("missing padding", b"YWxpY2U\r\n", Err(Kind::InvalidBase64)),
            ("no line end", b"YWxpY2U=", Err(Kind::MissingLineEnd)),
        ];

        for (label, line, expected) in cases {
            let result = Command::parse_auth_response(line).map_err(|error| error.kind());
            assert_eq!(result, expected, "{label}");
        }
    }

    #[test]
    fn postmaster_without_domain_uses_server_domain() {
        let server = domain("mx.example.net");

        let command = parse_command_line(b"RCPT TO:<postmaster> NOTIFY=NEVER", Some(&server));

        assert_eq!(
            command,
            Ok(Command::Rcpt {
                forward_path: mailbox("Postmaster@mx.example.net"),
                parameters: RcptParameters {
                    notify: Some(Notify::NEVER),
                    ..RcptParameters::default()
                },
            })
        );
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
    }

    fn domain_strategy() -> impl Strategy<Value = Domain> {
        prop_oneof![
            prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join(".")),
            Just("bücher.example".to_owned()),
            (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("[192.0.{a}.{b}]")),
        ]
        .prop_map(|text| Domain::parse(&text).unwrap())
    }

    fn mailbox_strategy() -> impl Strategy<Value = Mailbox> {
        let local_part = prop_oneof![
            "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9]{1,5}){0,2}",
            "\"[a-z @:,.]{0,10}\"",
            Just("jörg".to_owned()),
        ];
        (local_part, domain_strategy())
            .prop_map(|(local_part, domain)| Mailbox::new(&local_part, domain).unwrap())
    }

    fn xtext_strategy() -> impl Strategy<Value = XText> {
        "[ -~]{1,20}".prop_map(|text| XText::new(&text).unwrap())
    }

    fn extra_strategy() -> impl Strategy<Value = Vec<Parameter>> {
        let parameter = (
            "X-[A-Z0-9]{1,6}",
            prop::option::of("[!-<>-~]{1,8}|é[a-z]{0,3}"),
        )
            .prop_map(|(keyword, value)| Parameter::new(&keyword, value.as_deref()).unwrap());
        prop::collection::vec(parameter, 0..3)
    }

    fn mail_parameters_strategy() -> impl Strategy<Value = MailParameters> {
        let body = prop::option::of(prop_oneof![
            Just(BodyType::SevenBit),
            Just(BodyType::EightBitMime),
            Just(BodyType::BinaryMime),
        ]);
        let ret = prop::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Headers)]);
        (
            prop::option::of(any::<u64>()),
            body,
            any::<bool>(),
            ret,
            prop::option::of(xtext_strategy()),
            any::<bool>(),
            extra_strategy(),
        )
            .prop_map(|(size, body, smtputf8, ret, envid, requiretls, extra)| {
                MailParameters {
                    size,
                    body,
                    smtputf8,
                    ret,
                    envid,
                    requiretls,
                    extra,
                }
            })
    }

    fn rcpt_parameters_strategy() -> impl Strategy<Value = RcptParameters> {
        let notify = prop::option::of((any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(success, failure, delay)| {
                let mut notify = Notify::NEVER;
                for (set, flag) in [
                    (success, Notify::SUCCESS),
                    (failure, Notify::FAILURE),
                    (delay, Notify::DELAY),
                ] {
                    if set {
                        notify = notify | flag;
                    }
                }
                notify
            },
        ));
        let orcpt = prop::option::of(xtext_strategy().prop_map(OriginalRecipient::rfc822));
        (notify, orcpt, extra_strategy()).prop_map(|(notify, orcpt, extra)| RcptParameters {
            notify,
            orcpt,
            extra,
        })
    }

    fn argument_strategy() -> impl Strategy<Value = Argument> {
        "[!-~]([ -~]{0,20}[!-~])?|ü[a-z]{0,4}".prop_map(|text| Argument::new(&text).unwrap())
    }

    fn secret_strategy() -> impl Strategy<Value = Secret<Vec<u8>>> {
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Secret::new)
    }

    fn command_strategy() -> impl Strategy<Value = Command> {
        let mechanism = prop_oneof![
            Just(Mechanism::Plain),
            Just(Mechanism::Login),
            Just(Mechanism::CramMd5),
            Just(Mechanism::XOAuth2),
            Just(Mechanism::OAuthBearer),
            "[A-Z][A-Z0-9_-]{0,19}".prop_map(|name| Mechanism::from_name(&name)),
        ];
        let reverse_path = prop_oneof![
            Just(ReversePath::Null),
            mailbox_strategy().prop_map(ReversePath::Mailbox),
        ];
        prop_oneof![
            domain_strategy().prop_map(Command::Ehlo),
            domain_strategy().prop_map(Command::Helo),
            domain_strategy().prop_map(Command::Lhlo),
            Just(Command::StartTls),
            (mechanism, prop::option::of(secret_strategy())).prop_map(
                |(mechanism, initial_response)| Command::Auth {
                    mechanism,
                    initial_response,
                }
            ),
            secret_strategy().prop_map(Command::AuthResponse),
            Just(Command::AuthCancel),
            (reverse_path, mail_parameters_strategy()).prop_map(|(reverse_path, parameters)| {
                Command::Mail {
                    reverse_path,
                    parameters,
                }
            }),
            (mailbox_strategy(), rcpt_parameters_strategy()).prop_map(
                |(forward_path, parameters)| Command::Rcpt {
                    forward_path,
                    parameters,
                }
            ),
            Just(Command::Data),
            (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
            Just(Command::Rset),
            Just(Command::Noop),
            argument_strategy().prop_map(Command::Vrfy),
            argument_strategy().prop_map(Command::Expn),
            prop::option::of(argument_strategy()).prop_map(Command::Help),
            Just(Command::Quit),
        ]
    }

    proptest! {
        #[test]
        fn parse_of_encode_round_trips(command in command_strategy()) {
            prop_assert_eq!(reparse(&command), Ok(command));
        }

        #[test]
        fn parse_never_panics(line in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = Command::parse(&line);
            let _ = Command::parse_auth_response(&line);
        }
    }
}
