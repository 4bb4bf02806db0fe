//! The OAUTHBEARER mechanism (RFC 7628), and the exchange it shares with XOAUTH2.

use super::{CredentialField, Mechanism, SaslClient, SaslError, SaslErrorKind, printable};
use crate::secret::Secret;

/// Creates the OAUTHBEARER client, whose initial response is the client message of RFC 7628
/// section 3.1: `n,a=USER,` `\x01auth=Bearer TOKEN\x01\x01`.
///
/// The user name is a saslname (RFC 5801), so `,` and `=` in it are sent as `=2C` and
/// `=3D`. A `\x01` in the user name or token is rejected because it separates the key-value
/// pairs.
pub(crate) fn client(username: &str, token: &Secret<String>) -> Result<BearerClient, SaslError> {
    let mechanism = Mechanism::OAuthBearer;
    reject_separator(&mechanism, username, token)?;

    let token = token.expose().as_bytes();
    let mut message = Vec::with_capacity(32 + username.len() + token.len());
    message.extend_from_slice(b"n,a=");
    for &byte in username.as_bytes() {
        match byte {
            b',' => message.extend_from_slice(b"=2C"),
            b'=' => message.extend_from_slice(b"=3D"),
            other => message.push(other),
        }
    }
    message.extend_from_slice(b",\x01auth=Bearer ");
    message.extend_from_slice(token);
    message.extend_from_slice(b"\x01\x01");

    Ok(BearerClient::new(mechanism, message, b"\x01"))
}

/// Client of a bearer token mechanism, OAUTHBEARER or XOAUTH2, which sends the client message as
/// the initial response. When the server rejects the token with a `334` error challenge (RFC 7628
/// section 3.2.2), the client sends a fixed response so the server ends with its error reply.
#[derive(Debug)]
pub(crate) struct BearerClient {
    mechanism: Mechanism,
    message: Secret<Vec<u8>>,
    /// The response to the error challenge: `\x01` for OAUTHBEARER, empty for XOAUTH2.
    error_reply: &'static [u8],
    step: BearerStep,
    /// The decoded error challenge, a JSON status object.
    server_error: Option<Vec<u8>>,
}

impl BearerClient {
    /// Creates a client that sends `message`, and `error_reply` as the response to the error
    /// challenge.
    pub(crate) const fn new(
        mechanism: Mechanism,
        message: Vec<u8>,
        error_reply: &'static [u8],
    ) -> Self {
        Self {
            mechanism,
            message: Secret::new(message),
            error_reply,
            step: BearerStep::Start,
            server_error: None,
        }
    }
}

impl SaslClient for BearerClient {
    fn mechanism(&self) -> Mechanism {
        self.mechanism.clone()
    }

    fn initial_response(&mut self) -> Option<Secret<Vec<u8>>> {
        self.step = BearerStep::MessageSent;
        Some(self.message.clone())
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        match self.step {
            // Without an initial response, the server's first challenge is empty and the client
            // message is the response to it.
            BearerStep::Start => {
                self.step = BearerStep::MessageSent;
                Ok(self.message.clone())
            }
            BearerStep::MessageSent => {
                self.step = BearerStep::ErrorAnswered;
                self.server_error = Some(challenge.to_vec());
                Ok(Secret::new(self.error_reply.to_vec()))
            }
            BearerStep::ErrorAnswered => Err(SaslError::unexpected_challenge(&self.mechanism, 2)),
        }
    }

    fn server_error(&self) -> Option<SaslError> {
        let status = self.server_error.as_deref()?;
        Some(SaslError::new(
            SaslErrorKind::ServerError,
            format!(
                "server rejected the {} token with \"{}\": get a new token, or check its scope",
                self.mechanism.name(),
                printable(status)
            ),
        ))
    }
}

/// Progress of a [`BearerClient`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BearerStep {
    /// Nothing sent yet.
    Start,
    /// The client message was sent.
    MessageSent,
    /// The reply to the error challenge was sent.
    ErrorAnswered,
}

/// Rejects a `\x01` in the user name or token, the separator of both bearer token messages.
pub(crate) fn reject_separator(
    mechanism: &Mechanism,
    username: &str,
    token: &Secret<String>,
) -> Result<(), SaslError> {
    if username.as_bytes().contains(&SEPARATOR) {
        let field = CredentialField::Username(username);
        return Err(SaslError::forbidden_byte(mechanism, field, SEPARATOR));
    }
    if token.expose().as_bytes().contains(&SEPARATOR) {
        let field = CredentialField::Token;
        return Err(SaslError::forbidden_byte(mechanism, field, SEPARATOR));
    }
    Ok(())
}

const SEPARATOR: u8 = 0x01;

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Secret<String> {
        Secret::new(String::from("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="))
    }

    #[test]
    fn oauthbearer_initial_responses() {
        let cases: &[(&str, &str, &[u8])] = &[
            (
                "plain user name",
                "alice@example.com",
                b"n,a=alice@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
            ),
            (
                "comma and equals escaped",
                "a,b=c",
                b"n,a=a=2Cb=3Dc,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
            ),
        ];
        for &(label, username, expected) in cases {
            let mut client = client(username, &token()).unwrap();

            let response = client.initial_response().unwrap();

            assert_eq!(client.mechanism(), Mechanism::OAuthBearer, "{label}");
            assert_eq!(response.expose().as_slice(), expected, "{label}");
        }
    }

    #[test]
    fn oauthbearer_error_challenge_reply() {
        let mut client = client("alice@example.com", &token()).unwrap();
        let _ = client.initial_response();
        let status = br#"{"status":"invalid_token","scope":"mail"}"#;

        let reply = client.respond(status).unwrap();

        assert_eq!(reply.expose().as_slice(), b"\x01");
        let error = client.server_error().unwrap();
        assert_eq!(error.kind(), SaslErrorKind::ServerError);
        assert_eq!(
            error.to_string(),
            "server rejected the OAUTHBEARER token with \
             \"{\\\"status\\\":\\\"invalid_token\\\",\\\"scope\\\":\\\"mail\\\"}\": \
             get a new token, or check its scope"
        );
        let extra = client.respond(b"").unwrap_err();
        assert_eq!(extra.kind(), SaslErrorKind::UnexpectedChallenge);
    }

    #[test]
    fn oauthbearer_message_after_empty_challenge() {
        let mut client = client("alice@example.com", &token()).unwrap();

        let response = client.respond(b"").unwrap();

        assert!(
            response
                .expose()
                .starts_with(b"n,a=alice@example.com,\x01auth=Bearer ")
        );
        assert!(client.server_error().is_none());
    }

    #[test]
    fn oauthbearer_rejects_separator() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "separator in user name",
                "al\x01ice",
                "t",
                "user name \"al\\x01ice\" contains the byte 0x01, which OAUTHBEARER cannot \
                 carry: remove it",
            ),
            (
                "separator in token",
                "alice",
                "to\x01ken",
                "token contains the byte 0x01, which OAUTHBEARER cannot carry: check where the \
                 token comes from",
            ),
        ];
        for &(label, username, token, message) in cases {
            let error = client(username, &Secret::new(token.to_owned())).unwrap_err();

            assert_eq!(error.kind(), SaslErrorKind::InvalidCredentials, "{label}");
            assert_eq!(error.to_string(), message, "{label}");
        }
    }
}
