//! SMTP authentication (RFC 4954) with SASL mechanisms (RFC 4422).
//!
//! [`choose_mechanism`] picks a mechanism the server offers, [`client_for`] creates its client,
//! and the session drives that [`SaslClient`] through the `AUTH` exchange.

mod cram_md5;
mod login;
mod oauthbearer;
mod plain;
mod xoauth2;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::secret::Secret;

/// A SASL mechanism name as used in `AUTH` (RFC 4954 section 4); names compare
/// case-insensitively because [`Mechanism::from_name`] upper-cases unknown ones.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN`, RFC 4616.
    Plain,
    /// `LOGIN`, draft-murchison-sasl-login.
    Login,
    /// `CRAM-MD5`, RFC 2195.
    CramMd5,
    /// `XOAUTH2`, Google's OAuth 2.0 bearer token mechanism.
    XOAuth2,
    /// `OAUTHBEARER`, RFC 7628.
    OAuthBearer,
    /// Any other mechanism, its name upper-cased.
    Other(String),
}

impl Mechanism {
    /// Returns the mechanism name as written in `AUTH`.
    pub fn name(&self) -> &str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::XOAuth2 => "XOAUTH2",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::Other(name) => name,
        }
    }

    /// Maps a mechanism name, in any case, to its variant.
    pub fn from_name(name: &str) -> Self {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "PLAIN" => Self::Plain,
            "LOGIN" => Self::Login,
            "CRAM-MD5" => Self::CramMd5,
            "XOAUTH2" => Self::XOAuth2,
            "OAUTHBEARER" => Self::OAuthBearer,
            _ => Self::Other(upper),
        }
    }
}

/// What the client proves its identity with.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password, for PLAIN, LOGIN and CRAM-MD5.
    Password {
        /// The authentication identity.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// A user name and OAuth 2.0 access token, for OAUTHBEARER and XOAUTH2.
    OAuth2 {
        /// The user the token was issued for.
        username: String,
        /// The bearer token.
        token: Secret<String>,
    },
}

impl Credentials {
    /// Creates password credentials.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Password {
            username: username.into(),
            password: Secret::new(password.into()),
        }
    }

    /// Creates OAuth 2.0 bearer token credentials.
    pub fn oauth2(username: impl Into<String>, token: impl Into<String>) -> Self {
        Self::OAuth2 {
            username: username.into(),
            token: Secret::new(token.into()),
        }
    }

    /// Returns the user name.
    pub fn username(&self) -> &str {
        match self {
            Self::Password { username, .. } | Self::OAuth2 { username, .. } => username,
        }
    }
}

/// A SASL client mechanism (RFC 4422) that the session drives through `AUTH` (RFC 4954 section
/// 4). Applications may implement it for mechanisms the crate does not provide.
///
/// The built-in clients rely on this call order: the session calls
/// [`initial_response`](Self::initial_response) at most once, before sending `AUTH`, and sends
/// what it returns as the initial response. It then calls [`respond`](Self::respond) for each
/// `334` challenge, base64-decoded with [`decode_challenge`], and sends the returned bytes
/// base64-encoded. When `respond` fails, the session cancels the exchange with `*`. The bytes
/// passed in and out are raw, never base64.
pub trait SaslClient: fmt::Debug + Send {
    /// Returns the mechanism named in the `AUTH` command.
    fn mechanism(&self) -> Mechanism;

    /// Returns the initial response (RFC 4954 section 4), or `None` to wait for the first `334`
    /// challenge.
    fn initial_response(&mut self) -> Option<Secret<Vec<u8>>>;

    /// Computes the response to one decoded `334` challenge.
    fn respond(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError>;

    /// Returns the error the server reported inside the exchange, such as the JSON status of an
    /// OAUTHBEARER failure (RFC 7628 section 3.2.2), so the session can add it to the
    /// authentication failure it reports. The default returns `None`.
    fn server_error(&self) -> Option<SaslError> {
        None
    }
}

/// Creates the built-in client of `mechanism` for `credentials`, or returns `None` when the
/// crate has no client for that mechanism, the mechanism needs the other kind of credentials, or
/// the mechanism cannot carry these credentials. [`try_client_for`] reports which.
pub fn client_for(mechanism: &Mechanism, credentials: &Credentials) -> Option<Box<dyn SaslClient>> {
    try_client_for(mechanism, credentials).ok()
}

/// Creates the built-in client of `mechanism` for `credentials` (RFC 4954 section 4), or returns
/// an error that explains why there is none.
///
/// # Errors
///
/// [`SaslErrorKind::UnsupportedMechanism`] when the crate has no client for `mechanism` or the
/// mechanism needs the other kind of credentials, and [`SaslErrorKind::InvalidCredentials`] when
/// the user name, password or token contains a byte the mechanism uses as a separator.
pub fn try_client_for(
    mechanism: &Mechanism,
    credentials: &Credentials,
) -> Result<Box<dyn SaslClient>, SaslError> {
    match (mechanism, credentials) {
        (Mechanism::Plain, Credentials::Password { username, password }) => {
            Ok(Box::new(plain::Plain::new(username, password)?))
        }
        (Mechanism::Login, Credentials::Password { username, password }) => {
            Ok(Box::new(login::Login::new(username, password)))
        }
        (Mechanism::CramMd5, Credentials::Password { username, password }) => {
            Ok(Box::new(cram_md5::CramMd5::new(username, password)))
        }
        (Mechanism::XOAuth2, Credentials::OAuth2 { username, token }) => {
            Ok(Box::new(xoauth2::client(username, token)?))
        }
        (Mechanism::OAuthBearer, Credentials::OAuth2 { username, token }) => {
            Ok(Box::new(oauthbearer::client(username, token)?))
        }
        (Mechanism::Plain | Mechanism::Login | Mechanism::CramMd5, Credentials::OAuth2 { .. }) => {
            Err(SaslError::new(
                SaslErrorKind::UnsupportedMechanism,
                format!(
                    "{} needs a password but the credentials hold an OAuth 2.0 token: use \
                 Credentials::password, or choose OAUTHBEARER or XOAUTH2",
                    mechanism.name()
                ),
            ))
        }
        (Mechanism::XOAuth2 | Mechanism::OAuthBearer, Credentials::Password { .. }) => {
            Err(SaslError::new(
                SaslErrorKind::UnsupportedMechanism,
                format!(
                    "{} needs an OAuth 2.0 token but the credentials hold a password: use \
                     Credentials::oauth2, or choose PLAIN, LOGIN or CRAM-MD5",
                    mechanism.name()
                ),
            ))
        }
        (Mechanism::Other(name), _) => Err(SaslError::new(
            SaslErrorKind::UnsupportedMechanism,
            format!("no built-in client for SASL mechanism {name}: implement SaslClient for it"),
        )),
    }
}

/// Chooses the best mechanism among those the server offered (RFC 4954 section 3) for
/// `credentials`, or returns `None` when none of them fits.
///
/// The order of preference is PLAIN, LOGIN, CRAM-MD5 for a password over an encrypted
/// connection. Without encryption, which the session only allows when the caller opted in, it is
/// CRAM-MD5, PLAIN, LOGIN, because CRAM-MD5 does not send the password itself. For an OAuth 2.0
/// token it is OAUTHBEARER, then XOAUTH2.
pub fn choose_mechanism(
    offered: &[Mechanism],
    credentials: &Credentials,
    encrypted: bool,
) -> Option<Mechanism> {
    let preference = match (credentials, encrypted) {
        (Credentials::Password { .. }, true) => PASSWORD_ENCRYPTED,
        (Credentials::Password { .. }, false) => PASSWORD_UNENCRYPTED,
        (Credentials::OAuth2 { .. }, _) => TOKEN,
    };
    preference
        .iter()
        .find(|mechanism| offered.contains(mechanism))
        .cloned()
}

/// Decodes the challenge of a `334` reply (RFC 4954 section 4) from the text of its first line,
/// the part after `334 `. The text is base64 with padding, and an empty text is an empty
/// challenge.
///
/// # Errors
///
/// [`SaslErrorKind::InvalidChallenge`] when the text is not valid base64.
pub fn decode_challenge(text: &[u8]) -> Result<Vec<u8>, SaslError> {
    STANDARD.decode(text).map_err(|error| {
        SaslError::new(
            SaslErrorKind::InvalidChallenge,
            format!(
                "334 challenge \"{}\" is not valid base64 ({error}): the server is at fault, \
                 cancel the exchange",
                printable(text)
            ),
        )
    })
}

/// A failed step of SASL authentication (RFC 4954 section 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslError {
    kind: SaslErrorKind,
    message: String,
}

impl SaslError {
    /// Creates an error of `kind` whose `Display` is `message`: lowercase, without a trailing
    /// period, naming the value at fault and what to do. The message must not contain a
    /// password, token or response.
    pub fn new(kind: SaslErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Returns what went wrong.
    pub const fn kind(&self) -> SaslErrorKind {
        self.kind
    }

    /// Creates the error for a challenge that arrives after a mechanism's last response.
    pub(crate) fn unexpected_challenge(mechanism: &Mechanism, responses: usize) -> Self {
        Self::new(
            SaslErrorKind::UnexpectedChallenge,
            format!(
                "unexpected 334 challenge after {responses} {} response(s), which complete the \
                 exchange: cancel it",
                mechanism.name()
            ),
        )
    }

    /// Creates the error for a user name, password or token that contains `byte`, which
    /// `mechanism` uses as a separator. Only a user name is shown.
    pub(crate) fn forbidden_byte(
        mechanism: &Mechanism,
        field: CredentialField<'_>,
        byte: u8,
    ) -> Self {
        let (what, fix) = match field {
            CredentialField::Username(username) => (
                format!("user name \"{}\"", printable(username.as_bytes())),
                "remove it",
            ),
            CredentialField::Password => (String::from("password"), "change the password"),
            CredentialField::Token => (String::from("token"), "check where the token comes from"),
        };
        Self::new(
            SaslErrorKind::InvalidCredentials,
            format!(
                "{what} contains the byte 0x{byte:02x}, which {} cannot carry: {fix}",
                mechanism.name()
            ),
        )
    }
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SaslError {}

/// Category of a [`SaslError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaslErrorKind {
    /// The server's challenge is not valid base64 or not valid for the mechanism.
    InvalidChallenge,
    /// The server sent a challenge after the mechanism's last response.
    UnexpectedChallenge,
    /// The server reported an error inside the exchange, such as the JSON status of XOAUTH2 or
    /// OAUTHBEARER (RFC 7628 section 3.2.2).
    ServerError,
    /// The credentials contain a byte the mechanism cannot carry.
    InvalidCredentials,
    /// The crate has no client for the mechanism, or the mechanism needs the other kind of
    /// credentials.
    UnsupportedMechanism,
}

/// The part of the credentials an error is about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CredentialField<'a> {
    /// The user name, which an error may show.
    Username(&'a str),
    /// The password, which an error never shows.
    Password,
    /// The token, which an error never shows.
    Token,
}

/// Formats peer or user bytes for an error message: non-printable bytes escaped, and cut after
/// 100 bytes.
pub(crate) fn printable(bytes: &[u8]) -> String {
    match bytes.get(..MAX_SHOWN) {
        Some(head) if bytes.len() > MAX_SHOWN => format!("{}...", head.escape_ascii()),
        _ => bytes.escape_ascii().to_string(),
    }
}

const PASSWORD_ENCRYPTED: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5];
const PASSWORD_UNENCRYPTED: &[Mechanism] =
    &[Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login];
const TOKEN: &[Mechanism] = &[Mechanism::OAuthBearer, Mechanism::XOAuth2];
const MAX_SHOWN: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> Credentials {
        Credentials::password("alice", "s3cret-example")
    }

    fn token() -> Credentials {
        Credentials::oauth2("alice@example.com", "ya29.example-token")
    }

    /// Offered mechanisms, credentials and connection state, with the expected choice.
    struct ChoiceCase {
        label: &'static str,
        offered: Vec<Mechanism>,
        credentials: Credentials,
        encrypted: bool,
        expected: Option<Mechanism>,
    }

    #[test]
    fn choose_mechanism_table() {
        use Mechanism::{CramMd5, Login, OAuthBearer, Plain, XOAuth2};
        let all = vec![Login, Plain, CramMd5, XOAuth2, OAuthBearer];
        let case = |label, offered, credentials, encrypted, expected| ChoiceCase {
            label,
            offered,
            credentials,
            encrypted,
            expected,
        };
        let cases = [
            case(
                "password tls all offered",
                all.clone(),
                password(),
                true,
                Some(Plain),
            ),
            case(
                "password tls no plain",
                vec![CramMd5, Login],
                password(),
                true,
                Some(Login),
            ),
            case(
                "password tls only cram",
                vec![CramMd5],
                password(),
                true,
                Some(CramMd5),
            ),
            case(
                "password clear all offered",
                all.clone(),
                password(),
                false,
                Some(CramMd5),
            ),
            case(
                "password clear no cram",
                vec![Login, Plain],
                password(),
                false,
                Some(Plain),
            ),
            case(
                "password clear only login",
                vec![Login],
                password(),
                false,
                Some(Login),
            ),
            case(
                "password only tokens",
                vec![XOAuth2, OAuthBearer],
                password(),
                true,
                None,
            ),
            case(
                "token all offered",
                all.clone(),
                token(),
                true,
                Some(OAuthBearer),
            ),
            case(
                "token clear all offered",
                all,
                token(),
                false,
                Some(OAuthBearer),
            ),
            case(
                "token only xoauth2",
                vec![Plain, XOAuth2],
                token(),
                true,
                Some(XOAuth2),
            ),
            case("token only plain", vec![Plain], token(), true, None),
            case("token clear only plain", vec![Plain], token(), false, None),
            case(
                "unknown only",
                vec![Mechanism::from_name("gssapi")],
                password(),
                true,
                None,
            ),
            case("nothing offered", Vec::new(), password(), true, None),
        ];
        for case in cases {
            let chosen = choose_mechanism(&case.offered, &case.credentials, case.encrypted);

            assert_eq!(chosen, case.expected, "{}", case.label);
        }
    }

    #[test]
    fn decode_challenge_valid() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            ("empty text", b"", b""),
            (
                "rfc 2195 challenge",
                b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
                b"<1896.697170952@postoffice.reston.mci.net>",
            ),
            ("login prompt", b"VXNlcm5hbWU6", b"Username:"),
        ];
        for &(label, text, expected) in cases {
            assert_eq!(decode_challenge(text).as_deref(), Ok(expected), "{label}");
        }
    }

    #[test]
    fn decode_challenge_invalid() {
        let cases: &[(&str, &[u8])] = &[
            ("not base64", b"%%not base64%%"),
            ("missing padding", b"VXNlcg"),
            ("trailing space", b"VXNlcm5hbWU6 "),
        ];
        for &(label, text) in cases {
            let error = decode_challenge(text).unwrap_err();

            assert_eq!(error.kind(), SaslErrorKind::InvalidChallenge, "{label}");
        }
    }

    #[test]
    fn decode_challenge_error_names_text() {
        let error = decode_challenge(b"%%not base64%%").unwrap_err();

        let message = error.to_string();

        assert!(message.starts_with("334 challenge \"%%not base64%%\" is not valid base64"));
        assert!(
            message.ends_with("the server is at fault, cancel the exchange"),
            "{message}"
        );
    }

    #[test]
    fn printable_escapes_and_cuts() {
        let long = [b'a'; 150];

        assert_eq!(printable(b"a\r\n\0b"), "a\\r\\n\\x00b");
        assert_eq!(printable(&long), format!("{}...", "a".repeat(100)));
    }

    #[test]
    fn client_for_table() {
        use Mechanism::{CramMd5, Login, OAuthBearer, Plain, XOAuth2};
        let cases: Vec<(&str, Mechanism, Credentials, Result<(), SaslErrorKind>)> = vec![
            ("plain password", Plain, password(), Ok(())),
            ("login password", Login, password(), Ok(())),
            ("cram password", CramMd5, password(), Ok(())),
            ("xoauth2 token", XOAuth2, token(), Ok(())),
            ("oauthbearer token", OAuthBearer, token(), Ok(())),
            (
                "plain token",
                Plain,
                token(),
                Err(SaslErrorKind::UnsupportedMechanism),
            ),
            (
                "login token",
                Login,
                token(),
                Err(SaslErrorKind::UnsupportedMechanism),
            ),
            (
                "xoauth2 password",
                XOAuth2,
                password(),
                Err(SaslErrorKind::UnsupportedMechanism),
            ),
            (
                "unknown mechanism",
                Mechanism::from_name("scram-sha-256"),
                password(),
                Err(SaslErrorKind::UnsupportedMechanism),
            ),
            (
                "plain nul in password",
                Plain,
                Credentials::password("alice", "a\0b"),
                Err(SaslErrorKind::InvalidCredentials),
            ),
        ];
        for (label, mechanism, credentials, expected) in cases {
            let result = try_client_for(&mechanism, &credentials);

            match expected {
                Ok(()) => {
                    let client = result.unwrap();
                    assert_eq!(client.mechanism(), mechanism, "{label}");
                    assert!(client_for(&mechanism, &credentials).is_some(), "{label}");
                }
                Err(kind) => {
                    assert_eq!(result.unwrap_err().kind(), kind, "{label}");
                    assert!(client_for(&mechanism, &credentials).is_none(), "{label}");
                }
            }
        }
    }

    #[test]
    fn try_client_for_error_messages() {
        let cases: Vec<(&str, Mechanism, Credentials, &str)> = vec![
            (
                "password mechanism with token",
                Mechanism::Login,
                token(),
                "LOGIN needs a password but the credentials hold an OAuth 2.0 token: use \
                 Credentials::password, or choose OAUTHBEARER or XOAUTH2",
            ),
            (
                "token mechanism with password",
                Mechanism::OAuthBearer,
                password(),
                "OAUTHBEARER needs an OAuth 2.0 token but the credentials hold a password: use \
                 Credentials::oauth2, or choose PLAIN, LOGIN or CRAM-MD5",
            ),
            (
                "unknown mechanism",
                Mechanism::from_name("gssapi"),
                password(),
                "no built-in client for SASL mechanism GSSAPI: implement SaslClient for it",
            ),
        ];
        for (label, mechanism, credentials, message) in cases {
            let error = try_client_for(&mechanism, &credentials).unwrap_err();

            assert_eq!(error.to_string(), message, "{label}");
        }
    }

    #[test]
    fn client_debug_hides_secrets() {
        let cases = [
            (Mechanism::Plain, password()),
            (Mechanism::Login, password()),
            (Mechanism::CramMd5, password()),
            (Mechanism::XOAuth2, token()),
            (Mechanism::OAuthBearer, token()),
        ];
        for (mechanism, credentials) in cases {
            let mut client = client_for(&mechanism, &credentials).unwrap();
            let _ = client.initial_response();

            let printed = format!("{client:?} {client:#?}");

            assert!(
                !printed.contains("s3cret"),
                "{}: {printed}",
                mechanism.name()
            );
            assert!(!printed.contains("ya29"), "{}: {printed}", mechanism.name());
            assert!(
                printed.contains("redacted"),
                "{}: {printed}",
                mechanism.name()
            );
        }
    }
}
