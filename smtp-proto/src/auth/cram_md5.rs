//! The CRAM-MD5 mechanism (RFC 2195).

use hmac::{Hmac, Mac};
use md5::Md5;

use super::{Mechanism, SaslClient, SaslError, SaslErrorKind};
use crate::secret::Secret;

/// CRAM-MD5 client: responds to the server's one challenge with the user name, a space and the
/// lowercase hex HMAC-MD5 of the challenge keyed with the password (RFC 2195 section 2), so the
/// password itself never crosses the wire.
#[derive(Debug)]
pub(crate) struct CramMd5 {
    username: String,
    password: Secret<String>,
    answered: bool,
}

impl CramMd5 {
    /// Creates the client; CRAM-MD5 carries any user name and password.
    pub(crate) fn new(username: &str, password: &Secret<String>) -> Self {
        Self {
            username: username.to_owned(),
            password: password.clone(),
            answered: false,
        }
    }
}

impl SaslClient for CramMd5 {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CramMd5
    }

    fn initial_response(&mut self) -> Option<Secret<Vec<u8>>> {
        None
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        if self.answered {
            return Err(SaslError::unexpected_challenge(&Mechanism::CramMd5, 1));
        }
        if challenge.is_empty() {
            return Err(SaslError::new(
                SaslErrorKind::InvalidChallenge,
                "empty CRAM-MD5 challenge: the server must send a unique timestamp string \
                 (RFC 2195 section 2), cancel the exchange",
            ));
        }
        self.answered = true;

        let mut mac = Hmac::<Md5>::new_from_slice(self.password.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(challenge);
        let digest = mac.finalize().into_bytes();

        let mut response = Vec::with_capacity(self.username.len() + 1 + 2 * digest.len());
        response.extend_from_slice(self.username.as_bytes());
        response.push(b' ');
        for byte in digest {
            response.push(HEX_DIGITS[usize::from(byte >> 4)]);
            response.push(HEX_DIGITS[usize::from(byte & 0x0f)]);
        }
        Ok(Secret::new(response))
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    /// A challenge and the response to it.
    struct Vector {
        label: &'static str,
        username: &'static str,
        password: &'static str,
        challenge: &'static [u8],
        response: &'static [u8],
    }

    #[test]
    fn cram_md5_vectors() {
        let vectors = [
            Vector {
                label: "rfc 2195 example",
                username: "tim",
                password: "tanstaaftanstaaf",
                challenge: b"<1896.697170952@postoffice.reston.mci.net>",
                response: b"tim b913a602c7eda7a495b4e6e7334d3890",
            },
            Vector {
                label: "alice",
                username: "alice",
                password: "s3cret-example",
                challenge: b"<7f3a.1700000000@mx.example.net>",
                response: b"alice 1d454f24143935269682b4d10a4e9c17",
            },
        ];
        for vector in vectors {
            let label = vector.label;
            let password = Secret::new(vector.password.to_owned());
            let mut client = CramMd5::new(vector.username, &password);

            assert!(client.initial_response().is_none(), "{label}");
            let response = client.respond(vector.challenge).unwrap();
            assert_eq!(response.expose().as_slice(), vector.response, "{label}");
        }
    }

    #[test]
    fn cram_md5_second_challenge_is_error() {
        let mut client = CramMd5::new("tim", &Secret::new(String::from("tanstaaftanstaaf")));
        let _ = client.respond(b"<1.2@example.net>").unwrap();

        let error = client.respond(b"<1.2@example.net>").unwrap_err();

        assert_eq!(error.kind(), SaslErrorKind::UnexpectedChallenge);
    }

    #[test]
    fn cram_md5_empty_challenge_is_error() {
        let mut client = CramMd5::new("tim", &Secret::new(String::from("tanstaaftanstaaf")));

        let error = client.respond(b"").unwrap_err();

        assert_eq!(error.kind(), SaslErrorKind::InvalidChallenge);
    }
}
