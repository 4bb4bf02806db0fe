//! Mail addresses and envelope values: domains, mailboxes, reverse paths and xtext
//! ([RFC 5321 section 4.1.2](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.2),
//! [RFC 6531 section 3.3](https://www.rfc-editor.org/rfc/rfc6531#section-3.3),
//! [RFC 3461 section 4](https://www.rfc-editor.org/rfc/rfc3461#section-4)).
//!
//! Every constructor checks its whole input against the grammar and rejects CR, LF, NUL and every
//! other control character, so a value of these types can be written into a command line as it
//! is. Nothing is removed or rewritten: a value either parses exactly as written or is rejected
//! with an [`AddressError`] that names it.

use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use nom::branch::alt;
use nom::bytes::complete::{take_while_m_n, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{all_consuming, map, map_res, recognize, verify};
use nom::multi::{count, fold_many0, many0_count, separated_list1};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// A domain name or an address literal, as sent in EHLO and after the `@` of a mailbox
/// ([RFC 5321 section 4.1.2](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.2)).
///
/// A domain name is a sequence of labels separated by single dots. A label contains letters,
/// digits and hyphens, starts and ends with a letter or digit, and is at most 63 octets long. The
/// whole name is at most 255 octets (RFC 5321 section 4.5.3.1.2). Labels may also contain
/// non-ASCII characters (U-labels, RFC 6531 section 3.3), which are kept as UTF-8; they must be
/// valid under IDNA (UTS 46 processing, RFC 5891), and [`Domain::to_ascii`] gives their A-labels
/// for a server without SMTPUTF8. An address literal is `[192.0.2.1]` or `[IPv6:2001:db8::1]`
/// (RFC 5321 section 4.1.3).
///
/// The text is kept as written, so two domains that differ only in letter case are not equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain name or address literal.
    pub fn parse(domain: &str) -> Result<Self, AddressError> {
        // NOTE: the length limits count UTF-8 octets of U-labels, not the octets of their
        // A-labels, so a long internationalised name may still be too long as A-labels.
        check_text(domain)
            .and_then(|()| validate_domain(domain))
            .and_then(|()| validate_idna(domain))
            .map_err(|fault| fault.into_error("domain", domain))?;

        Ok(Self(domain.to_owned()))
    }

    /// Returns the domain as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns whether the domain is pure ASCII, so it can be sent without SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// Returns whether this is an address literal such as `[192.0.2.1]`.
    pub fn is_address_literal(&self) -> bool {
        self.0.starts_with('[')
    }

    /// Converts an internationalised domain to its A-labels (`xn--...`, RFC 5891 section 4) with
    /// the UTS 46 processing of the `idna` crate, for a server without SMTPUTF8. An ASCII domain
    /// or an address literal is returned unchanged.
    pub fn to_ascii(&self) -> Result<Self, AddressError> {
        if self.is_ascii() || self.is_address_literal() {
            return Ok(self.clone());
        }

        let ascii = idna::domain_to_ascii(&self.0).map_err(|_| {
            Fault::new(
                AddressErrorKind::InvalidDomain,
                "it has no valid A-label form under IDNA",
            )
            .into_error("domain", &self.0)
        })?;
        Self::parse(&ascii)
    }
}

impl FromStr for Domain {
    type Err = AddressError;

    fn from_str(domain: &str) -> Result<Self, Self::Err> {
        Self::parse(domain)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox, `Local-part "@" ( Domain / address-literal )`
/// ([RFC 5321 section 4.1.2](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.2)).
///
/// The local part is a dot-string (`first.last`) or a quoted string (`"first last"`), kept as
/// written with its quotes and backslashes. It is at most 64 octets, and the path `<mailbox>` is
/// at most 256 octets (RFC 5321 section 4.5.3.1). Non-ASCII characters are allowed as UTF-8
/// (RFC 6531 section 3.3) and make [`Mailbox::needs_smtputf8`] true.
///
/// `<` and `>` are rejected even inside quotes, because a server that looks for the `>` closing
/// the path would cut the address there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    address: String,
    local_part_len: usize,
    domain: Domain,
}

impl Mailbox {
    /// Parses a mailbox written as `local-part@domain`, without angle brackets.
    pub fn parse(address: &str) -> Result<Self, AddressError> {
        Self::parse_as(address, "mailbox")
    }

    /// Builds a mailbox from a local part, checked as in [`Mailbox::parse`], and a domain.
    pub fn new(local_part: &str, domain: Domain) -> Result<Self, AddressError> {
        Self::parse(&format!("{local_part}@{}", domain.as_str()))
    }

    /// Returns the local part as written, with the quotes of a quoted string.
    pub fn local_part(&self) -> &str {
        &self.address[..self.local_part_len]
    }

    /// Returns the domain after the `@`.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Returns the whole mailbox, `local-part@domain`.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// Returns whether the mailbox contains non-ASCII characters, so it can only be sent to a
    /// server that offers SMTPUTF8 (RFC 6531).
    pub fn needs_smtputf8(&self) -> bool {
        !self.address.is_ascii()
    }

    /// Returns the mailbox with its domain as A-labels (see [`Domain::to_ascii`]), for a server
    /// without SMTPUTF8. A non-ASCII local part has no ASCII form: that is an error, because
    /// changing it would change the mailbox.
    pub fn to_ascii(&self) -> Result<Self, AddressError> {
        if !self.local_part().is_ascii() {
            return Err(Fault::new(
                AddressErrorKind::NonAscii,
                "its local part is not ASCII and the server does not offer SMTPUTF8",
            )
            .into_error("mailbox", &self.address));
        }

        Self::new(self.local_part(), self.domain.to_ascii()?)
    }

    /// Parses a mailbox, naming it `item` in errors.
    fn parse_as(address: &str, item: &'static str) -> Result<Self, AddressError> {
        Self::check(address).map_err(|fault| fault.into_error(item, address))
    }

    fn check(address: &str) -> Result<Self, Fault> {
        check_text(address)?;
        if let Some(bracket) = address.chars().find(|&c| c == '<' || c == '>') {
            return Err(Fault::new(
                AddressErrorKind::AngleBracket,
                format!("contains {bracket:?}"),
            ));
        }

        let (local_part, domain) = split_mailbox(address)?;
        validate_domain(domain)?;

        if address.len() > MAX_PATH - 2 {
            return Err(Fault::new(
                AddressErrorKind::PathTooLong,
                format!(
                    "the path with angle brackets is {} octets, over the limit of {MAX_PATH}",
                    address.len() + 2
                ),
            ));
        }

        Ok(Self {
            address: address.to_owned(),
            local_part_len: local_part.len(),
            domain: Domain(domain.to_owned()),
        })
    }
}

impl FromStr for Mailbox {
    type Err = AddressError;

    fn from_str(address: &str) -> Result<Self, Self::Err> {
        Self::parse(address)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// The sender of MAIL FROM: a mailbox, or the null path `<>` used for bounces
/// ([RFC 5321 section 4.1.2](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.2) and
/// section 4.5.5).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// The null reverse path `<>`: no address may receive notifications about this message.
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox),
}

impl ReversePath {
    /// Parses a reverse path: `""` and `"<>"` are the null path, anything else must be a mailbox
    /// written without angle brackets.
    pub fn parse(path: &str) -> Result<Self, AddressError> {
        if path.is_empty() || path == "<>" {
            return Ok(Self::Null);
        }

        Mailbox::parse_as(path, "reverse path").map(Self::Mailbox)
    }

    /// Returns the mailbox, or `None` for the null path.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            Self::Null => None,
            Self::Mailbox(mailbox) => Some(mailbox),
        }
    }

    /// Returns whether the path contains non-ASCII characters and so needs SMTPUTF8.
    pub fn needs_smtputf8(&self) -> bool {
        self.mailbox().is_some_and(Mailbox::needs_smtputf8)
    }

    /// Returns the path with its domain as A-labels, as [`Mailbox::to_ascii`] does.
    pub fn to_ascii(&self) -> Result<Self, AddressError> {
        match self {
            Self::Null => Ok(Self::Null),
            Self::Mailbox(mailbox) => mailbox.to_ascii().map(Self::Mailbox),
        }
    }
}

impl From<Mailbox> for ReversePath {
    fn from(mailbox: Mailbox) -> Self {
        Self::Mailbox(mailbox)
    }
}

impl FromStr for ReversePath {
    type Err = AddressError;

    fn from_str(path: &str) -> Result<Self, Self::Err> {
        Self::parse(path)
    }
}

impl fmt::Display for ReversePath {
    /// Writes `<>` for the null path and the bare mailbox otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("<>"),
            Self::Mailbox(mailbox) => mailbox.fmt(f),
        }
    }
}

/// A printable US-ASCII value sent as xtext, as in the ENVID and ORCPT parameters
/// ([RFC 3461 section 4](https://www.rfc-editor.org/rfc/rfc3461#section-4)).
///
/// [`XText::encode`] writes `+` followed by two upper-case hex digits in place of `+`, `=` and
/// every character outside `!` to `~`, which for a valid value means only the space. `Display`
/// writes the plain value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XText(String);

impl XText {
    /// Checks a plain value: not empty, US-ASCII, and no control characters (spaces are allowed).
    pub fn new(value: &str) -> Result<Self, AddressError> {
        Self::check(value).map_err(|fault| fault.into_error("xtext", value))
    }

    /// Decodes `xtext = *( xchar / hexchar )` (RFC 3461 section 4), where `hexchar` is `+` and
    /// two upper-case hex digits; the decoded value must pass [`XText::new`].
    pub fn decode(encoded: &str) -> Result<Self, AddressError> {
        let decoded = check_text(encoded).and_then(|()| {
            all_consuming(xtext).parse(encoded).map_err(|_| {
                Fault::new(
                    AddressErrorKind::InvalidXText,
                    "contains `+` without two upper-case hex digits after it, or an unencoded \
                     `=` or space",
                )
            })
        });

        decoded
            .and_then(|(_, value)| Self::check(&value))
            .map_err(|fault| fault.into_error("xtext", encoded))
    }

    /// Returns the plain value.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Appends the xtext encoding of the value to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        self.encode_with(|piece| buf.extend_from_slice(piece.as_bytes()));
    }

    /// Passes the xtext encoding of the value to `emit`, piece by piece.
    pub(crate) fn encode_with(&self, mut emit: impl FnMut(&str)) {
        let mut start = 0;
        for (index, c) in self.0.char_indices() {
            if is_xchar(c) {
                continue;
            }

            emit(&self.0[start..index]);
            emit(&format!("+{:02X}", u32::from(c)));
            start = index + c.len_utf8();
        }
        emit(&self.0[start..]);
    }

    fn check(value: &str) -> Result<Self, Fault> {
        check_text(value)?;
        if let Some(c) = value.chars().find(|c| !c.is_ascii()) {
            return Err(Fault::new(
                AddressErrorKind::NonAscii,
                format!("contains the non-ASCII character {c:?}"),
            ));
        }

        Ok(Self(value.to_owned()))
    }
}

impl FromStr for XText {
    type Err = AddressError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::new(value)
    }
}

impl fmt::Display for XText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value rejected by one of the constructors in this module or in [`crate::command`].
///
/// `Display` names the kind of value, shows the value with control characters escaped (`\r`,
/// `\n`, `\0`, ...), states what is wrong with it and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddressError {
    kind: AddressErrorKind,
    item: &'static str,
    value: String,
    problem: String,
}

impl AddressError {
    /// Returns what is wrong with the value.
    pub fn kind(&self) -> AddressErrorKind {
        self.kind
    }

    /// Returns the rejected value as it was given.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: {}; {}",
            self.item,
            self.value,
            self.problem,
            self.kind.fix()
        )
    }
}

impl std::error::Error for AddressError {}

/// The reason a value was rejected with an [`AddressError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressErrorKind {
    /// The value is empty.
    Empty,
    /// The value contains CR, LF, NUL or another control character.
    ControlCharacter,
    /// The value contains a non-ASCII character where only US-ASCII is allowed.
    NonAscii,
    /// The address contains `<` or `>`.
    AngleBracket,
    /// The address has no `@`.
    MissingAt,
    /// The address has more than one `@` outside quotes.
    MultipleAt,
    /// The local part before the `@` is empty.
    EmptyLocalPart,
    /// The local part is neither a dot-string nor a quoted string (RFC 5321 section 4.1.2).
    InvalidLocalPart,
    /// The local part is longer than 64 octets (RFC 5321 section 4.5.3.1.1).
    LocalPartTooLong,
    /// The domain is not a sequence of valid labels (RFC 5321 section 4.1.2).
    InvalidDomain,
    /// A domain label is longer than 63 octets (RFC 1035 section 2.3.4).
    LabelTooLong,
    /// The domain is longer than 255 octets (RFC 5321 section 4.5.3.1.2).
    DomainTooLong,
    /// The address literal is neither IPv4 nor IPv6 (RFC 5321 section 4.1.3).
    InvalidAddressLiteral,
    /// The path with its angle brackets is longer than 256 octets (RFC 5321 section 4.5.3.1.3).
    PathTooLong,
    /// The text is not valid xtext (RFC 3461 section 4).
    InvalidXText,
    /// A MAIL or RCPT parameter has an invalid keyword or value (RFC 5321 section 4.1.2).
    InvalidParameter,
    /// An extra parameter uses a keyword that has its own typed field.
    ReservedKeyword,
    /// A VRFY, EXPN or HELP argument starts or ends with a space.
    InvalidArgument,
    /// A VRFY, EXPN or HELP argument does not fit in a 512-octet command line
    /// (RFC 5321 section 4.5.3.1.4).
    ArgumentTooLong,
}

impl AddressErrorKind {
    /// Returns the advice that ends the error message.
    fn fix(self) -> &'static str {
        match self {
            Self::Empty => "pass a non-empty value",
            Self::ControlCharacter => {
                "remove it, because CR, LF, NUL and other control characters can never be sent \
                 in an SMTP command"
            }
            Self::NonAscii => "use printable US-ASCII characters only",
            Self::AngleBracket => {
                "remove `<` and `>`, because the brackets around a path are written with the \
                 command"
            }
            Self::MissingAt => "write the address as local-part@domain",
            Self::MultipleAt => {
                "write the address as local-part@domain with one `@`, and put a local part that \
                 contains `@` in double quotes"
            }
            Self::EmptyLocalPart => "put the mailbox name before the `@`",
            Self::InvalidLocalPart => {
                "use letters, digits and !#$%&'*+-/=?^_`{|}~ in words separated by single dots, \
                 or put the local part in double quotes and escape `\"` and `\\` with a backslash"
            }
            Self::LocalPartTooLong => "use a local part of at most 64 octets",
            Self::InvalidDomain => {
                "use labels of letters, digits and inner hyphens separated by single dots, or an \
                 address literal such as [192.0.2.1]"
            }
            Self::LabelTooLong => "use domain labels of at most 63 octets",
            Self::DomainTooLong => "use a domain of at most 255 octets",
            Self::InvalidAddressLiteral => {
                "write an address literal as [192.0.2.1] or [IPv6:2001:db8::1]"
            }
            Self::PathTooLong => "use an address of at most 254 octets",
            Self::InvalidXText => {
                "write `+`, `=` and characters outside `!` to `~` as `+` and two upper-case hex \
                 digits"
            }
            Self::InvalidParameter => {
                "use a keyword of letters, digits and hyphens that starts with a letter or digit, \
                 and a non-empty value without spaces or `=`"
            }
            Self::ReservedKeyword => {
                "set the matching field of MailParameters or RcptParameters instead"
            }
            Self::InvalidArgument => "remove the leading and trailing spaces",
            Self::ArgumentTooLong => "shorten the argument to at most 505 octets",
        }
    }
}

/// Checks that a non-ASCII domain is valid IDNA and already in its normal form: converting it to
/// A-labels and back gives the same name, apart from letter case. A character that IDNA maps
/// away, such as a soft hyphen, would make two spellings of one name, so it is rejected.
fn validate_idna(domain: &str) -> Result<(), Fault> {
    if domain.is_ascii() || domain.starts_with('[') {
        return Ok(());
    }

    let invalid = || {
        Fault::new(
            AddressErrorKind::InvalidDomain,
            "it is not a valid internationalised domain name (IDNA)",
        )
    };
    let ascii = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    if result.is_err() || unicode != domain.to_lowercase() {
        return Err(invalid());
    }
    Ok(())
}

/// The reason a value is invalid, before it is tied to the value and the kind of item it was
/// found in.
#[derive(Debug)]
pub(crate) struct Fault {
    kind: AddressErrorKind,
    problem: String,
}

impl Fault {
    pub(crate) fn new(kind: AddressErrorKind, problem: impl Into<String>) -> Self {
        Self {
            kind,
            problem: problem.into(),
        }
    }

    /// Builds the public error, naming the item (`"mailbox"`, `"domain"`, ...) and its value.
    pub(crate) fn into_error(self, item: &'static str, value: &str) -> AddressError {
        AddressError {
            kind: self.kind,
            item,
            value: value.to_owned(),
            problem: self.problem,
        }
    }
}

/// Rejects an empty value and any control character, the first check of every typed value.
pub(crate) fn check_text(value: &str) -> Result<(), Fault> {
    if value.is_empty() {
        return Err(Fault::new(AddressErrorKind::Empty, "the value is empty"));
    }

    match value.char_indices().find(|(_, c)| c.is_control()) {
        Some((offset, c)) => Err(Fault::new(
            AddressErrorKind::ControlCharacter,
            format!(
                "contains the control character {} at octet {offset}",
                c.escape_debug()
            ),
        )),
        None => Ok(()),
    }
}

/// Splits `Mailbox = Local-part "@" ( Domain / address-literal )` (RFC 5321 section 4.1.2)
/// into its local part, which it checks, and the text after the `@`.
fn split_mailbox(address: &str) -> Result<(&str, &str), Fault> {
    let (local_part, rest) = local_part(address)?;

    let Some(domain) = rest.strip_prefix('@') else {
        if rest.is_empty() {
            return Err(Fault::new(
                AddressErrorKind::MissingAt,
                "there is no `@` between local part and domain",
            ));
        }
        return Err(Fault::new(
            AddressErrorKind::InvalidLocalPart,
            format!("{rest:?} follows the closing quote of the local part"),
        ));
    };

    if domain.contains('@') {
        return Err(Fault::new(
            AddressErrorKind::MultipleAt,
            "contains more than one `@` outside quotes",
        ));
    }

    Ok((local_part, domain))
}

/// Takes `Local-part = Dot-string / Quoted-string` (RFC 5321 section 4.1.2), at most 64 octets
/// (section 4.5.3.1.1), from the start of `address`; returns it and the rest.
fn local_part(address: &str) -> Result<(&str, &str), Fault> {
    let (local_part, rest) = if address.starts_with('"') {
        let Ok((rest, local_part)) = quoted_string(address) else {
            return Err(quoted_string_fault(address));
        };
        (local_part, rest)
    } else {
        let (local_part, rest) = address.split_at(address.find('@').unwrap_or(address.len()));
        if local_part.is_empty() {
            return Err(Fault::new(
                AddressErrorKind::EmptyLocalPart,
                "the local part before `@` is empty",
            ));
        }
        if all_consuming(dot_string).parse(local_part).is_err() {
            return Err(dot_string_fault(local_part));
        }
        (local_part, rest)
    };

    if local_part.len() > MAX_LOCAL_PART {
        return Err(Fault::new(
            AddressErrorKind::LocalPartTooLong,
            format!(
                "the local part is {} octets, over the limit of {MAX_LOCAL_PART}",
                local_part.len()
            ),
        ));
    }

    Ok((local_part, rest))
}

/// Explains why `local_part` is not a dot-string.
fn dot_string_fault(local_part: &str) -> Fault {
    let problem = if local_part.starts_with('.') {
        "the local part starts with a dot".to_owned()
    } else if local_part.ends_with('.') {
        "the local part ends with a dot".to_owned()
    } else if local_part.contains("..") {
        "the local part contains two dots in a row".to_owned()
    } else if let Some(c) = local_part.chars().find(|&c| c != '.' && !is_atext(c)) {
        format!("the local part contains {c:?} outside quotes")
    } else {
        "the local part is not a dot-string".to_owned()
    };

    Fault::new(AddressErrorKind::InvalidLocalPart, problem)
}

/// Explains why `text`, which starts with `"`, does not start with a quoted string.
fn quoted_string_fault(text: &str) -> Fault {
    let mut chars = text.chars();
    let mut bad_escape = false;
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next().is_some_and(|escaped| !escaped.is_ascii()) {
            bad_escape = true;
            break;
        }
    }

    let problem = if bad_escape {
        "a backslash in the quoted local part is followed by a non-ASCII character"
    } else {
        "the quoted local part has no closing quote"
    };

    Fault::new(AddressErrorKind::InvalidLocalPart, problem)
}

/// Checks `Domain = sub-domain *("." sub-domain)` or `address-literal` (RFC 5321 section
/// 4.1.2), at most 255 octets (section 4.5.3.1.2).
fn validate_domain(domain: &str) -> Result<(), Fault> {
    let invalid = |problem: &str| Err(Fault::new(AddressErrorKind::InvalidDomain, problem));

    if domain.is_empty() {
        return invalid("the domain is empty");
    }
    if domain.len() > MAX_DOMAIN {
        return Err(Fault::new(
            AddressErrorKind::DomainTooLong,
            format!(
                "the domain is {} octets, over the limit of {MAX_DOMAIN}",
                domain.len()
            ),
        ));
    }
    if domain.starts_with('[') {
        return validate_address_literal(domain);
    }

    if domain.starts_with('.') {
        return invalid("the domain starts with a dot");
    }
    if domain.ends_with('.') {
        return invalid("the domain ends with a dot");
    }
    if domain.contains("..") {
        return invalid("the domain contains two dots in a row");
    }
    domain.split('.').try_for_each(validate_label)
}

/// Checks one label of a domain name, at most 63 octets (RFC 1035 section 2.3.4).
fn validate_label(label: &str) -> Result<(), Fault> {
    if label.len() > MAX_LABEL {
        return Err(Fault::new(
            AddressErrorKind::LabelTooLong,
            format!(
                "the domain label {label:?} is {} octets, over the limit of {MAX_LABEL}",
                label.len()
            ),
        ));
    }
    if all_consuming(sub_domain).parse(label).is_ok() {
        return Ok(());
    }

    let problem = if label.starts_with('-') {
        format!("the domain label {label:?} starts with a hyphen")
    } else if label.ends_with('-') {
        format!("the domain label {label:?} ends with a hyphen")
    } else if let Some(c) = label.chars().find(|&c| !is_label_char(c)) {
        format!("the domain label {label:?} contains {c:?}")
    } else {
        format!("the domain label {label:?} is not valid")
    };
    Err(Fault::new(AddressErrorKind::InvalidDomain, problem))
}

/// Checks `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
/// General-address-literal ) "]"` (RFC 5321 section 4.1.3). A general literal needs a tag
/// registered with IANA, and `IPv6` is the only one registered, so other tags are rejected.
fn validate_address_literal(literal: &str) -> Result<(), Fault> {
    let invalid =
        |problem: String| Err(Fault::new(AddressErrorKind::InvalidAddressLiteral, problem));

    let Some(content) = literal
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    else {
        return invalid("the address literal does not end with `]`".to_owned());
    };

    match content.split_once(':') {
        Some((tag, address)) if tag.eq_ignore_ascii_case("IPv6") => {
            if is_ipv6_address(address) {
                return Ok(());
            }
            invalid(format!("{address:?} is not an IPv6 address"))
        }
        Some((tag, _)) => invalid(format!(
            "the address literal tag {tag:?} is neither IPv6 nor absent"
        )),
        None => {
            if all_consuming(ipv4_address).parse(content).is_ok() {
                return Ok(());
            }
            invalid(format!(
                "{content:?} is not an IPv4 address of four numbers from 0 to 255"
            ))
        }
    }
}

/// Checks `IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp` (RFC 5321 section
/// 4.1.3). That is eight groups of up to four hex digits, or at most six around one `::` that is
/// the zero groups left out. An IPv4 address may take the place of the last two groups.
fn is_ipv6_address(address: &str) -> bool {
    match address.split_once("::") {
        None => ipv6_groups(address, true) == Some(8),
        Some((head, tail)) => match (ipv6_groups(head, false), ipv6_groups(tail, true)) {
            (Some(head), Some(tail)) => head + tail <= 6,
            _ => false,
        },
    }
}

/// Counts the 16-bit groups in a `:`-separated run of `IPv6-hex`; an IPv4 address as the last
/// piece counts as two when `ipv4_last` is set. An empty run has no groups; `None` means a piece
/// is neither.
fn ipv6_groups(run: &str, ipv4_last: bool) -> Option<usize> {
    if run.is_empty() {
        return Some(0);
    }

    let mut groups = 0;
    let mut pieces = run.split(':').peekable();
    while let Some(piece) = pieces.next() {
        if all_consuming(ipv6_hex).parse(piece).is_ok() {
            groups += 1;
        } else if ipv4_last
            && pieces.peek().is_none()
            && all_consuming(ipv4_address).parse(piece).is_ok()
        {
            groups += 2;
        } else {
            return None;
        }
    }
    Some(groups)
}

/// `Dot-string = Atom *("." Atom)` and `Atom = 1*atext` (RFC 5321 section 4.1.2).
fn dot_string(input: &str) -> IResult<&str, &str> {
    let atom = take_while1(is_atext);

    recognize(separated_list1(char('.'), atom)).parse(input)
}

/// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`, `QcontentSMTP = qtextSMTP / quoted-pairSMTP`
/// and `quoted-pairSMTP = %d92 %d32-126` (RFC 5321 section 4.1.2).
fn quoted_string(input: &str) -> IResult<&str, &str> {
    let quoted_pair = recognize(preceded(char('\\'), satisfy(|c| matches!(c, ' '..='~'))));
    let qcontent = alt((take_while1(is_qtext), quoted_pair));

    recognize(delimited(char('"'), many0_count(qcontent), char('"'))).parse(input)
}

/// `sub-domain = Let-dig [Ldh-str]` and `Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig` (RFC 5321
/// section 4.1.2), with `sub-domain =/ U-label` (RFC 6531 section 3.3).
fn sub_domain(input: &str) -> IResult<&str, &str> {
    let label = take_while1(is_label_char);

    verify(label, |label: &str| {
        !label.starts_with('-') && !label.ends_with('-')
    })
    .parse(input)
}

/// `IPv4-address-literal = Snum 3("." Snum)` (RFC 5321 section 4.1.3).
fn ipv4_address(input: &str) -> IResult<&str, &str> {
    recognize((snum, count(preceded(char('.'), snum), 3))).parse(input)
}

/// `Snum = 1*3DIGIT`, a decimal number from 0 to 255 (RFC 5321 section 4.1.3).
fn snum(input: &str) -> IResult<&str, u8> {
    let digits = take_while_m_n(1, 3, |c: char| c.is_ascii_digit());

    map_res(digits, |digits: &str| digits.parse::<u8>()).parse(input)
}

/// `IPv6-hex = 1*4HEXDIG` (RFC 5321 section 4.1.3).
fn ipv6_hex(input: &str) -> IResult<&str, &str> {
    take_while_m_n(1, 4, |c: char| c.is_ascii_hexdigit()).parse(input)
}

/// `xtext = *( xchar / hexchar )` and `hexchar = "+" 2(%x30-39 / %x41-46)` (RFC 3461 section
/// 4); returns the decoded text.
fn xtext(input: &str) -> IResult<&str, String> {
    let plain = map(take_while1(is_xchar), str::to_owned);
    let hex_digits = take_while_m_n(2, 2, |c: char| matches!(c, '0'..='9' | 'A'..='F'));
    let hexchar = map_res(preceded(char('+'), hex_digits), |hex: &str| {
        u8::from_str_radix(hex, 16).map(|byte| char::from(byte).to_string())
    });

    fold_many0(alt((plain, hexchar)), String::new, |mut text, piece| {
        text.push_str(&piece);
        text
    })
    .parse(input)
}

/// `atext` (RFC 5322 section 3.2.3) with `atext =/ UTF8-non-ascii` (RFC 6531 section 3.3).
/// Non-ASCII whitespace such as U+2028 LINE SEPARATOR is left out, like the ASCII space.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_visible_non_ascii(c)
}

/// `qtextSMTP = %d32-33 / %d35-91 / %d93-126` (RFC 5321 section 4.1.2) with
/// `qtextSMTP =/ UTF8-non-ascii` (RFC 6531 section 3.3), minus control characters.
fn is_qtext(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~') || (!c.is_ascii() && !c.is_control())
}

/// Checks for a letter, digit or hyphen of a domain label, or a non-ASCII character of a U-label.
fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || is_visible_non_ascii(c)
}

fn is_visible_non_ascii(c: char) -> bool {
    !c.is_ascii() && !c.is_control() && !c.is_whitespace()
}

/// `xchar`: a character from `!` to `~` except `+` and `=` (RFC 3461 section 4).
fn is_xchar(c: char) -> bool {
    matches!(c, '!'..='~') && c != '+' && c != '='
}

/// Maximum octets of a local part (RFC 5321 section 4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;
/// Maximum octets of a domain (RFC 5321 section 4.5.3.1.2).
const MAX_DOMAIN: usize = 255;
/// Maximum octets of a domain label (RFC 1035 section 2.3.4).
const MAX_LABEL: usize = 63;
/// Maximum octets of a path, angle brackets included (RFC 5321 section 4.5.3.1.3).
const MAX_PATH: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    use AddressErrorKind as Kind;

    /// Joins labels of the given lengths with dots.
    fn domain_of(label_lengths: &[usize]) -> String {
        let labels: Vec<String> = label_lengths.iter().map(|&n| "a".repeat(n)).collect();
        labels.join(".")
    }

    #[test]
    fn mailbox_parse_accepts_valid_addresses() {
        let cases = [
            // (label, input, local part, domain, needs SMTPUTF8)
            ("plain", "a@example.org", "a", "example.org", false),
            (
                "dotted local part",
                "first.last@example.org",
                "first.last",
                "example.org",
                false,
            ),
            (
                "atext symbols",
                "!#$%&'*+-/=?^_`{|}~@example.org",
                "!#$%&'*+-/=?^_`{|}~",
                "example.org",
                false,
            ),
            (
                "plus address",
                "b+x@example.net",
                "b+x",
                "example.net",
                false,
            ),
            (
                "quoted with escaped quote",
                r#""a\"b"@example.net"#,
                r#""a\"b""#,
                "example.net",
                false,
            ),
            (
                "quoted with escaped backslash",
                r#""a\\b"@example.net"#,
                r#""a\\b""#,
                "example.net",
                false,
            ),
            (
                "quoted with space and at",
                r#""a b@c"@example.net"#,
                r#""a b@c""#,
                "example.net",
                false,
            ),
            (
                "quoted with dots",
                r#"".a..b."@example.net"#,
                r#"".a..b.""#,
                "example.net",
                false,
            ),
            (
                "empty quoted string",
                r#"""@example.net"#,
                r#""""#,
                "example.net",
                false,
            ),
            (
                "utf-8 local part",
                "jörg@example.net",
                "jörg",
                "example.net",
                true,
            ),
            (
                "utf-8 quoted local part",
                "\"jörg m\"@example.net",
                "\"jörg m\"",
                "example.net",
                true,
            ),
            (
                "utf-8 domain",
                "a@bücher.example",
                "a",
                "bücher.example",
                true,
            ),
            (
                "a-label domain",
                "a@xn--bcher-kva.example",
                "a",
                "xn--bcher-kva.example",
                false,
            ),
            (
                "single label domain",
                "postmaster@localhost",
                "postmaster",
                "localhost",
                false,
            ),
            ("digit labels", "a@123.example", "a", "123.example", false),
            ("ipv4 literal", "a@[127.0.0.1]", "a", "[127.0.0.1]", false),
            ("ipv6 literal", "a@[IPv6:::1]", "a", "[IPv6:::1]", false),
            (
                "upper-case local part kept",
                "Alice@Example.ORG",
                "Alice",
                "Example.ORG",
                false,
            ),
        ];

        for (label, input, local_part, domain, needs_smtputf8) in cases {
            let mailbox = Mailbox::parse(input).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(mailbox.local_part(), local_part, "{label}");
            assert_eq!(mailbox.domain().as_str(), domain, "{label}");
            assert_eq!(mailbox.as_str(), input, "{label}");
            assert_eq!(mailbox.needs_smtputf8(), needs_smtputf8, "{label}");
            assert_eq!(mailbox.to_string(), input, "{label}");
            assert_eq!(
                Mailbox::parse(mailbox.as_str()),
                Ok(mailbox.clone()),
                "{label}"
            );
        }
    }

    #[test]
    fn mailbox_parse_rejects_invalid_addresses() {
        let cases = [
            (
                "recipient with CRLF and RCPT",
                "b@example.net>\r\nRCPT TO:<evil@example.com",
                Kind::ControlCharacter,
            ),
            (
                "recipient with LF and DATA",
                "b@example.net\nDATA",
                Kind::ControlCharacter,
            ),
            (
                "sender with CR and RCPT",
                "a@example.org\rRCPT TO:<evil@example.com>",
                Kind::ControlCharacter,
            ),
            (
                "quoted local part with CRLF",
                "\"b\r\nRSET\"@example.net",
                Kind::ControlCharacter,
            ),
            (
                "NUL in local part",
                "a\0b@example.net",
                Kind::ControlCharacter,
            ),
            ("tab in domain", "a@example\t.net", Kind::ControlCharacter),
            ("DEL in domain", "a@exam\x7fple.net", Kind::ControlCharacter),
            ("C1 control", "a\u{85}b@example.net", Kind::ControlCharacter),
            (
                "parameter injection",
                "b@example.net> NOTIFY=NEVER",
                Kind::AngleBracket,
            ),
            ("angle brackets", "<a@example.net>", Kind::AngleBracket),
            (
                "angle bracket in quotes",
                "\"a>b\"@example.net",
                Kind::AngleBracket,
            ),
            ("space in domain", "b@exa mple.net", Kind::InvalidDomain),
            (
                "space in local part",
                "b c@example.net",
                Kind::InvalidLocalPart,
            ),
            (
                "line separator in local part",
                "a\u{2028}b@example.net",
                Kind::InvalidLocalPart,
            ),
            ("empty", "", Kind::Empty),
            ("empty local part", "@example.net", Kind::EmptyLocalPart),
            (
                "source route",
                "@a.example:b@example.net",
                Kind::EmptyLocalPart,
            ),
            ("missing at", "example.net", Kind::MissingAt),
            ("double at", "a@@example.net", Kind::MultipleAt),
            ("two at signs", "a@b@example.net", Kind::MultipleAt),
            ("leading dot", ".a@example.net", Kind::InvalidLocalPart),
            ("trailing dot", "a.@example.net", Kind::InvalidLocalPart),
            ("double dot", "a..b@example.net", Kind::InvalidLocalPart),
            (
                "comma in local part",
                "a,b@example.net",
                Kind::InvalidLocalPart,
            ),
            (
                "bare quote in dot-string",
                "a\"b@example.net",
                Kind::InvalidLocalPart,
            ),
            (
                "unterminated quote",
                "\"abc@example.net",
                Kind::InvalidLocalPart,
            ),
            (
                "text after closing quote",
                "\"a\"b@example.net",
                Kind::InvalidLocalPart,
            ),
            (
                "escaped non-ascii in quotes",
                "\"a\\ö\"@example.net",
                Kind::InvalidLocalPart,
            ),
            ("empty domain", "a@", Kind::InvalidDomain),
            (
                "label starts with hyphen",
                "a@-example.net",
                Kind::InvalidDomain,
            ),
            (
                "label ends with hyphen",
                "a@example-.net",
                Kind::InvalidDomain,
            ),
            ("domain leading dot", "a@.example.net", Kind::InvalidDomain),
            ("domain trailing dot", "a@example.net.", Kind::InvalidDomain),
            ("domain double dot", "a@example..net", Kind::InvalidDomain),
            (
                "underscore in domain",
                "a@ex_ample.net",
                Kind::InvalidDomain,
            ),
            (
                "bad ipv4 literal",
                "a@[300.1.1.1]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "bad ipv6 literal",
                "a@[IPv6:1::2::3]",
                Kind::InvalidAddressLiteral,
            ),
        ];

        for (label, input, kind) in cases {
            let error = Mailbox::parse(input).expect_err(label);
            assert_eq!(error.kind(), kind, "{label}: {error}");
            assert_eq!(error.value(), input, "{label}");
        }
    }

    #[test]
    fn mailbox_length_limits() {
        let local_64 = "a".repeat(64);
        let local_65 = "a".repeat(65);
        let quoted_65 = format!("\"{}\"", "a".repeat(63));
        // 64 + 1 + 189 = 254 octets, 256 with the angle brackets of the path.
        let longest = format!("{local_64}@{}", domain_of(&[63, 63, 61]));
        let too_long = format!("{local_64}@{}", domain_of(&[63, 63, 62]));

        let cases = [
            (
                "64-octet local part",
                format!("{local_64}@example.net"),
                None,
            ),
            (
                "65-octet local part",
                format!("{local_65}@example.net"),
                Some(Kind::LocalPartTooLong),
            ),
            (
                "65-octet quoted local part",
                format!("{quoted_65}@example.net"),
                Some(Kind::LocalPartTooLong),
            ),
            ("254-octet mailbox", longest, None),
            ("255-octet mailbox", too_long, Some(Kind::PathTooLong)),
            (
                "64-octet label",
                format!("a@{}.net", "a".repeat(64)),
                Some(Kind::LabelTooLong),
            ),
            (
                "256-octet domain",
                format!("a@{}", domain_of(&[63, 63, 63, 62, 1])),
                Some(Kind::DomainTooLong),
            ),
        ];

        for (label, input, expected) in cases {
            let result = Mailbox::parse(&input);
            assert_eq!(
                result.as_ref().err().map(AddressError::kind),
                expected,
                "{label}"
            );
        }
    }

    #[test]
    fn mailbox_new_joins_parts() {
        let domain = Domain::parse("example.net").unwrap();

        let mailbox = Mailbox::new(r#""a b""#, domain.clone()).unwrap();
        let injected = Mailbox::new("b\r\nRSET", domain.clone()).unwrap_err();
        let with_at = Mailbox::new("a@evil.example", domain).unwrap_err();

        assert_eq!(mailbox.as_str(), r#""a b"@example.net"#);
        assert_eq!(mailbox.local_part(), r#""a b""#);
        assert_eq!(injected.kind(), Kind::ControlCharacter);
        assert_eq!(with_at.kind(), Kind::MultipleAt);
    }

    #[test]
    fn domain_parse_accepts_valid_domains() {
        let cases = [
            // (label, input, is ASCII, is address literal)
            ("two labels", "example.org", true, false),
            ("single label", "localhost", true, false),
            ("inner hyphen", "a-b.example", true, false),
            ("client name", "client.example.org", true, false),
            ("a-label", "xn--bcher-kva.example", true, false),
            ("u-label", "bücher.example", false, false),
            ("all digits", "123.456", true, false),
            ("ipv4 loopback", "[127.0.0.1]", true, true),
            ("ipv4 zeros", "[0.0.0.0]", true, true),
            ("ipv4 maximum", "[255.255.255.255]", true, true),
            ("ipv4 leading zero", "[010.1.1.1]", true, true),
            ("ipv6 loopback", "[IPv6:::1]", true, true),
            ("ipv6 lower-case tag", "[ipv6:::1]", true, true),
            ("ipv6 compressed", "[IPv6:2001:db8::1]", true, true),
            ("ipv6 only compression", "[IPv6:::]", true, true),
            ("ipv6 full", "[IPv6:2001:db8:0:0:0:0:0:1]", true, true),
            (
                "ipv6 six groups and compression",
                "[IPv6:1:2:3::4:5:6]",
                true,
                true,
            ),
            (
                "ipv6 with ipv4 compressed",
                "[IPv6:::ffff:192.0.2.1]",
                true,
                true,
            ),
            (
                "ipv6 with ipv4 full",
                "[IPv6:1:2:3:4:5:6:192.0.2.1]",
                true,
                true,
            ),
            ("255 octets", &domain_of(&[63, 63, 63, 63]), true, false),
        ];

        for (label, input, is_ascii, is_literal) in cases {
            let domain = Domain::parse(input).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(domain.as_str(), input, "{label}");
            assert_eq!(domain.is_ascii(), is_ascii, "{label}");
            assert_eq!(domain.is_address_literal(), is_literal, "{label}");
            assert_eq!(input.parse::<Domain>(), Ok(domain), "{label}");
        }
    }

    #[test]
    fn domain_parse_rejects_invalid_domains() {
        let too_long = domain_of(&[63, 63, 63, 62, 1]);
        let cases = [
            ("empty", "", Kind::Empty),
            ("CRLF", "example.net\r\nQUIT", Kind::ControlCharacter),
            ("NUL", "example.net\0", Kind::ControlCharacter),
            ("space", "exa mple.net", Kind::InvalidDomain),
            ("leading hyphen", "-a.example", Kind::InvalidDomain),
            ("trailing hyphen", "a-.example", Kind::InvalidDomain),
            ("double dot", "a..example", Kind::InvalidDomain),
            ("leading dot", ".example", Kind::InvalidDomain),
            ("trailing dot", "example.", Kind::InvalidDomain),
            ("underscore", "a_b.example", Kind::InvalidDomain),
            ("at sign", "a@example", Kind::InvalidDomain),
            ("non-ascii space", "a\u{a0}b.example", Kind::InvalidDomain),
            ("64-octet label", &"a".repeat(64), Kind::LabelTooLong),
            ("256 octets", &too_long, Kind::DomainTooLong),
            (
                "ipv4 out of range",
                "[300.1.1.1]",
                Kind::InvalidAddressLiteral,
            ),
            ("ipv4 three numbers", "[1.2.3]", Kind::InvalidAddressLiteral),
            (
                "ipv4 five numbers",
                "[1.2.3.4.5]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv4 four digits",
                "[1000.1.1.1]",
                Kind::InvalidAddressLiteral,
            ),
            ("unclosed literal", "[1.2.3.4", Kind::InvalidAddressLiteral),
            ("empty literal", "[]", Kind::InvalidAddressLiteral),
            (
                "unregistered tag",
                "[x400:abc]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 seven groups",
                "[IPv6:1:2:3:4:5:6:7]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 nine groups",
                "[IPv6:1:2:3:4:5:6:7:8:9]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 seven groups and compression",
                "[IPv6:1:2:3:4:5:6:7::]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 two compressions",
                "[IPv6:1::2::3]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 triple colon",
                "[IPv6:1:::2]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 five hex digits",
                "[IPv6:12345::]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 ipv4 not last",
                "[IPv6:1.2.3.4::]",
                Kind::InvalidAddressLiteral,
            ),
            (
                "ipv6 short ipv4",
                "[IPv6:::1.2.3]",
                Kind::InvalidAddressLiteral,
            ),
            ("ipv6 without tag", "[::1]", Kind::InvalidAddressLiteral),
        ];

        for (label, input, kind) in cases {
            let error = Domain::parse(input).expect_err(label);
            assert_eq!(error.kind(), kind, "{label}: {error}");
        }
    }

    #[test]
    fn reverse_path_parse() {
        let sender = Mailbox::parse("a@example.org").unwrap();
        let cases = [
            ("empty is null", "", Ok(ReversePath::Null)),
            ("angle brackets are null", "<>", Ok(ReversePath::Null)),
            ("mailbox", "a@example.org", Ok(ReversePath::Mailbox(sender))),
            (
                "bracketed mailbox",
                "<a@example.org>",
                Err(Kind::AngleBracket),
            ),
            (
                "sender with CR and RCPT",
                "a@example.org\rRCPT TO:<evil@example.com>",
                Err(Kind::ControlCharacter),
            ),
            ("space", " ", Err(Kind::InvalidLocalPart)),
            ("null path with space", "< >", Err(Kind::AngleBracket)),
        ];

        for (label, input, expected) in cases {
            let parsed = ReversePath::parse(input).map_err(|e| e.kind());
            assert_eq!(parsed, expected, "{label}");
        }
    }

    #[test]
    fn reverse_path_needs_smtputf8_and_display() {
        let utf8 = ReversePath::from(Mailbox::parse("jörg@example.net").unwrap());
        let ascii: ReversePath = "a@example.org".parse().unwrap();

        assert!(utf8.needs_smtputf8());
        assert!(!ascii.needs_smtputf8());
        assert!(!ReversePath::Null.needs_smtputf8());
        assert_eq!(ReversePath::Null.to_string(), "<>");
        assert_eq!(ascii.to_string(), "a@example.org");
        assert_eq!(ReversePath::Null.mailbox(), None);
    }

    #[test]
    fn error_messages_escape_control_characters() {
        let crlf = Mailbox::parse("b@example.net>\r\nRCPT TO:<evil@example.com").unwrap_err();
        let nul = Mailbox::parse("a\0@example.net").unwrap_err();
        let sender = ReversePath::parse("a@example.org\rRCPT TO:<evil@example.com>").unwrap_err();

        let crlf = crlf.to_string();
        assert!(!crlf.contains(['\r', '\n']), "{crlf}");
        assert!(
            crlf.contains(r#""b@example.net>\r\nRCPT TO:<evil@example.com""#),
            "{crlf}"
        );
        assert_eq!(
            nul.to_string(),
            "invalid mailbox \"a\\0@example.net\": contains the control character \\0 at octet 1; \
             remove it, because CR, LF, NUL and other control characters can never be sent in an \
             SMTP command"
        );
        assert!(
            sender
                .to_string()
                .starts_with("invalid reverse path \"a@example.org\\rRCPT")
        );
    }

    #[test]
    fn error_messages_name_the_problem() {
        let cases = [
            (
                "space in domain",
                "b@exa mple.net",
                "the domain label \"exa mple\" contains ' '",
            ),
            ("leading hyphen", "a@-x.example", "starts with a hyphen"),
            ("double dot", "a..b@example.net", "two dots in a row"),
            (
                "65-octet local part",
                &format!("{}@x.example", "a".repeat(65)),
                "65 octets, over the limit of 64",
            ),
            (
                "bad literal",
                "a@[300.1.1.1]",
                "\"300.1.1.1\" is not an IPv4 address",
            ),
            (
                "missing at",
                "example.net",
                "write the address as local-part@domain",
            ),
            (
                "parameter injection",
                "b@example.net> NOTIFY=NEVER",
                "remove `<` and `>`",
            ),
        ];

        for (label, input, expected) in cases {
            let message = Mailbox::parse(input).unwrap_err().to_string();
            assert!(message.contains(expected), "{label}: {message}");
        }
    }

    #[test]
    fn xtext_encode() {
        let cases = [
            ("plain", "abc", "abc"),
            ("plus", "b+x@example.net", "b+2Bx@example.net"),
            ("equals", "a=b", "a+3Db"),
            ("space", "a b", "a+20b"),
            ("only specials", "+= ", "+2B+3D+20"),
            ("printable edges", "!~", "!~"),
        ];

        for (label, value, encoded) in cases {
            let xtext = XText::new(value).unwrap();
            let mut buf = BytesMut::new();
            xtext.encode(&mut buf);

            assert_eq!(&buf[..], encoded.as_bytes(), "{label}");
            assert_eq!(xtext.value(), value, "{label}");
            assert_eq!(XText::decode(encoded), Ok(xtext), "{label}");
        }
    }

    #[test]
    fn xtext_new_rejects_invalid_values() {
        let cases = [
            ("empty", "", Kind::Empty),
            ("CRLF", "a\r\nb", Kind::ControlCharacter),
            ("NUL", "a\0", Kind::ControlCharacter),
            ("tab", "a\tb", Kind::ControlCharacter),
            ("non-ascii", "jörg@example.net", Kind::NonAscii),
        ];

        for (label, value, kind) in cases {
            let error = XText::new(value).unwrap_err();
            assert_eq!(error.kind(), kind, "{label}: {error}");
        }
    }

    #[test]
    fn xtext_decode_rejects_invalid_text() {
        let cases = [
            ("lower-case hex", "a+2bb", Kind::InvalidXText),
            ("one hex digit", "a+2", Kind::InvalidXText),
            ("raw equals", "a=b", Kind::InvalidXText),
            ("raw space", "a b", Kind::InvalidXText),
            ("encoded CR", "a+0Db", Kind::ControlCharacter),
            ("encoded non-ascii", "a+C3", Kind::NonAscii),
            ("raw LF", "a\nb", Kind::ControlCharacter),
        ];

        for (label, encoded, kind) in cases {
            let error = XText::decode(encoded).unwrap_err();
            assert_eq!(error.kind(), kind, "{label}: {error}");
            assert_eq!(error.value(), encoded, "{label}");
        }
    }

    #[test]
    fn domain_idna_normal_form() {
        let cases = [
            ("u-label", "bücher.example", true),
            ("upper-case u-label", "Bücher.example", true),
            ("soft hyphen mapped away", "exa\u{ad}mple.test", false),
            ("invalid label", "xn--a\u{e4}.example", false),
        ];

        for (label, domain, valid) in cases {
            assert_eq!(Domain::parse(domain).is_ok(), valid, "{label}: {domain:?}");
        }
    }
}
