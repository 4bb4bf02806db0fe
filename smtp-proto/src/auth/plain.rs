//! The PLAIN mechanism (RFC 4616).

use super::{CredentialField, Mechanism, SaslClient, SaslError};
use crate::secret::Secret;

/// PLAIN client: one message `authzid NUL authcid NUL passwd` (RFC 4616 section 2) with an
/// empty authorization identity, sent as the initial response or as the response to the first
/// challenge.
#[derive(Debug)]
pub(crate) struct Plain {
    username: String,
    password: Secret<String>,
    sent: bool,
}

impl Plain {
    /// Creates the client, rejecting a NUL in the user name or password because NUL separates
    /// the fields of the message.
    pub(crate) fn new(username: &str, password: &Secret<String>) -> Result<Self, SaslError> {
        if username.as_bytes().contains(&0) {
            let field = CredentialField::Username(username);
            return Err(SaslError::forbidden_byte(&Mechanism::Plain, field, 0));
        }
        if password.expose().as_bytes().contains(&0) {
            let field = CredentialField::Password;
            return Err(SaslError::forbidden_byte(&Mechanism::Plain, field, 0));
        }
        Ok(Self {
            username: username.to_owned(),
            password: password.clone(),
            sent: false,
        })
    }

    /// Builds the message and marks it sent.
    fn message(&mut self) -> Secret<Vec<u8>> {
        self.sent = true;
        let password = self.password.expose().as_bytes();
        let mut message = Vec::with_capacity(2 + self.username.len() + password.len());
        message.push(0);
        message.extend_from_slice(self.username.as_bytes());
        message.push(0);
        message.extend_from_slice(password);
        Secret::new(message)
    }
}

impl SaslClient for Plain {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn initial_response(&mut self) -> Option<Secret<Vec<u8>>> {
        Some(self.message())
    }

    fn respond(&mut self, _challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        if self.sent {
            return Err(SaslError::unexpected_challenge(&Mechanism::Plain, 1));
        }
        Ok(self.message())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::auth::SaslErrorKind;

    fn client() -> Plain {
        Plain::new("alice", &Secret::new(String::from("s3cret-example"))).unwrap()
    }

    #[test]
    fn plain_initial_response_bytes() {
        let response = client().initial_response().unwrap();

        assert_eq!(response.expose().as_slice(), b"\0alice\0s3cret-example");
        assert_eq!(
            STANDARD.encode(response.expose()),
            "AGFsaWNlAHMzY3JldC1leGFtcGxl"
        );
    }

    #[test]
    fn plain_answers_first_challenge_without_initial_response() {
        let mut plain = client();

        let response = plain.respond(b"").unwrap();

        assert_eq!(response.expose().as_slice(), b"\0alice\0s3cret-example");
        let again = plain.respond(b"").unwrap_err();
        assert_eq!(again.kind(), SaslErrorKind::UnexpectedChallenge);
    }

    #[test]
    fn plain_challenge_after_initial_response_is_error() {
        let mut plain = client();
        let _ = plain.initial_response();

        let error = plain.respond(b"").unwrap_err();

        assert_eq!(error.kind(), SaslErrorKind::UnexpectedChallenge);
        assert_eq!(
            error.to_string(),
            "unexpected 334 challenge after 1 PLAIN response(s), which complete the exchange: \
             cancel it"
        );
    }

    #[test]
    fn plain_rejects_nul() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "nul in user name",
                "al\0ice",
                "pw",
                "user name \"al\\x00ice\" contains the byte 0x00, which PLAIN cannot carry: \
                 remove it",
            ),
            (
                "nul in password",
                "alice",
                "s3cret\0example",
                "password contains the byte 0x00, which PLAIN cannot carry: change the password",
            ),
        ];
        for &(label, username, password, message) in cases {
            let error = Plain::new(username, &Secret::new(password.to_owned())).unwrap_err();

            assert_eq!(error.kind(), SaslErrorKind::InvalidCredentials, "{label}");
            assert_eq!(error.to_string(), message, "{label}");
        }
    }
}
