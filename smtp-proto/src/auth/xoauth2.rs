//! The XOAUTH2 mechanism, Google's OAuth 2.0 bearer token mechanism that predates RFC 7628.

use super::Mechanism;
use super::SaslError;
use super::oauthbearer::{BearerClient, reject_separator};
use crate::secret::Secret;

/// Creates the XOAUTH2 client, whose initial response is `user=USER\x01auth=Bearer TOKEN\x01\x01`
/// and whose response to an error challenge is empty.
///
/// A `\x01` in the user name or token is rejected because it separates the key-value pairs.
pub(crate) fn client(username: &str, token: &Secret<String>) -> Result<BearerClient, SaslError> {
    let mechanism = Mechanism::XOAuth2;
    reject_separator(&mechanism, username, token)?;

    let token = token.expose().as_bytes();
    let mut message = Vec::with_capacity(24 + username.len() + token.len());
    message.extend_from_slice(b"user=");
    message.extend_from_slice(username.as_bytes());
    message.extend_from_slice(b"\x01auth=Bearer ");
    message.extend_from_slice(token);
    message.extend_from_slice(b"\x01\x01");

    Ok(BearerClient::new(mechanism, message, b""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{SaslClient, SaslErrorKind};

    fn alice() -> BearerClient {
        client(
            "alice@example.com",
            &Secret::new(String::from("ya29.example-token")),
        )
        .unwrap()
    }

    #[test]
    fn xoauth2_initial_response() {
        let mut client = alice();

        let response = client.initial_response().unwrap();

        assert_eq!(client.mechanism(), Mechanism::XOAuth2);
        assert_eq!(
            response.expose().as_slice(),
            b"user=alice@example.com\x01auth=Bearer ya29.example-token\x01\x01"
        );
    }

    #[test]
    fn xoauth2_error_challenge_reply() {
        let mut client = alice();
        let _ = client.initial_response();
        let status = br#"{"status":"401","schemes":"bearer","scope":"https://mail.example.com/"}"#;

        let reply = client.respond(status).unwrap();

        assert_eq!(reply.expose().as_slice(), b"");
        let error = client.server_error().unwrap();
        assert_eq!(error.kind(), SaslErrorKind::ServerError);
        assert!(error.to_string().contains("XOAUTH2 token"), "{error}");
        assert!(error.to_string().contains("401"), "{error}");
        let extra = client.respond(b"").unwrap_err();
        assert_eq!(extra.kind(), SaslErrorKind::UnexpectedChallenge);
    }

    #[test]
    fn xoauth2_rejects_separator_in_token() {
        let error = client("alice", &Secret::new(String::from("a\x01b"))).unwrap_err();

        assert_eq!(error.kind(), SaslErrorKind::InvalidCredentials);
        assert!(!error.to_string().contains("a\x01b"), "{error}");
    }
}
