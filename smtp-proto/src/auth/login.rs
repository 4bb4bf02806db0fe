//! The LOGIN mechanism (draft-murchison-sasl-login).

use super::{Mechanism, SaslClient, SaslError};
use crate::secret::Secret;

/// LOGIN client: no initial response, the user name as the response to the first challenge and
/// the password as the response to the second (draft-murchison-sasl-login).
///
/// The challenge text is ignored, because servers word the prompts differently (`Username:`,
/// `User Name`, or nothing at all).
#[derive(Debug)]
pub(crate) struct Login {
    username: String,
    password: Secret<String>,
    responses: usize,
}

impl Login {
    /// Creates the client; LOGIN carries any user name and password.
    pub(crate) fn new(username: &str, password: &Secret<String>) -> Self {
        Self {
            username: username.to_owned(),
            password: password.clone(),
            responses: 0,
        }
    }
}

impl SaslClient for Login {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }

    fn initial_response(&mut self) -> Option<Secret<Vec<u8>>> {
        None
    }

    fn respond(&mut self, _challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        let response = match self.responses {
            0 => self.username.as_bytes(),
            1 => self.password.expose().as_bytes(),
            _ => return Err(SaslError::unexpected_challenge(&Mechanism::Login, 2)),
        };
        self.responses += 1;
        Ok(Secret::new(response.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SaslErrorKind;

    #[test]
    fn login_ignores_challenge_text() {
        let challenges: &[(&str, &[u8], &[u8])] = &[
            ("usual prompts", b"Username:", b"Password:"),
            ("prompts with nul", b"User Name\0", b"Password\0"),
            ("empty prompts", b"", b""),
        ];
        for &(label, first, second) in challenges {
            let mut login = Login::new("alice", &Secret::new(String::from("s3cret-example")));

            assert!(login.initial_response().is_none(), "{label}");
            let username = login.respond(first).unwrap();
            assert_eq!(username.expose().as_slice(), b"alice", "{label}");
            let password = login.respond(second).unwrap();
            assert_eq!(password.expose().as_slice(), b"s3cret-example", "{label}");
            let third = login.respond(b"").unwrap_err();
            assert_eq!(third.kind(), SaslErrorKind::UnexpectedChallenge, "{label}");
        }
    }
}
