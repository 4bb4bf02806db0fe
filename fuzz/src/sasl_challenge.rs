//! Target `sasl_challenge`: `334` challenge decoding and the responses of the built-in SASL
//! clients.
//!
//! Input layout: one flag byte, then LF-separated lines. The first line is the user name (lossy
//! UTF-8), and each later line is the text of one `334` challenge, as the session passes it to
//! [`decode_challenge`]. Bit 0 of the flag byte sends the initial response before the first
//! challenge, as the session does when the mechanism has one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use smtp_proto::Credentials;
use smtp_proto::auth::{Mechanism, SaslClient, SaslErrorKind, decode_challenge, try_client_for};

/// The password of the credentials under test; no message may show it.
const PASSWORD: &str = "pw-9f1c7e";
/// The OAuth 2.0 token of the credentials under test; no message may show it.
const TOKEN: &str = "tk-3b8d2a";

/// Decodes every challenge, runs each built-in client through them, and checks that:
///
/// - a decoded challenge encodes back to its text, so only canonical base64 is accepted;
/// - a rejected challenge fails with [`SaslErrorKind::InvalidChallenge`];
/// - no error message and no `Debug` output shows the password or token, unless the input
///   contains it;
/// - CRAM-MD5 responds with the user name, a space and 32 lower-case hex digits;
/// - LOGIN responds with the user name, then the password.
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut lines = rest.split(|&byte| byte == b'\n');
    let username = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let challenges: Vec<&[u8]> = lines.take(8).collect();

    let mut decoded = Vec::new();
    for text in &challenges {
        match decode_challenge(text) {
            Ok(challenge) => {
                assert_eq!(
                    STANDARD.encode(&challenge).as_bytes(),
                    *text,
                    "non-canonical base64"
                );
                decoded.push(challenge);
            }
            Err(error) => {
                assert_eq!(error.kind(), SaslErrorKind::InvalidChallenge);
                // The challenge is shown cut after 100 octets, each escaped to at most 4.
                assert!(error.to_string().len() < 600, "long message: {error}");
                break;
            }
        }
    }

    // Messages show user names and challenges with non-printable octets escaped, so an input
    // can spell a secret without containing it: a TAB, shown as `\t`, before `k-3b8d2a` spells
    // the token. A secret that the input spells, raw or escaped, is no leak when shown.
    let mut visible = vec![data.to_vec(), username.as_bytes().to_vec()];
    visible.extend(decoded.iter().cloned());
    let escaped: Vec<Vec<u8>> = visible
        .iter()
        .map(|bytes| super::show(bytes).into_bytes())
        .collect();
    visible.extend(escaped);
    let in_input = |secret: &str| {
        visible
            .iter()
            .any(|bytes| super::count(bytes, secret.as_bytes()) > 0)
    };
    let leaks = |text: &str| {
        [PASSWORD, TOKEN]
            .iter()
            .any(|secret| text.contains(secret) && !in_input(secret))
    };

    let password = Credentials::password(username.clone(), PASSWORD);
    let token = Credentials::oauth2(username.clone(), TOKEN);
    let runs = [
        (Mechanism::Plain, &password),
        (Mechanism::Login, &password),
        (Mechanism::CramMd5, &password),
        (Mechanism::XOAuth2, &token),
        (Mechanism::OAuthBearer, &token),
    ];
    for (mechanism, credentials) in runs {
        let mut client = match try_client_for(&mechanism, credentials) {
            Ok(client) => client,
            Err(error) => {
                assert_eq!(error.kind(), SaslErrorKind::InvalidCredentials, "{error}");
                assert!(!leaks(&error.to_string()), "{error} shows a secret");
                continue;
            }
        };
        assert_eq!(client.mechanism(), mechanism);
        if flags & 1 != 0 {
            let _ = client.initial_response();
        }
        run_client(&mut *client, &username, &decoded, &leaks);
    }
}

fn run_client(
    client: &mut dyn SaslClient,
    username: &str,
    challenges: &[Vec<u8>],
    leaks: &dyn Fn(&str) -> bool,
) {
    for (step, challenge) in challenges.iter().enumerate() {
        let response = match client.respond(challenge) {
            Ok(response) => response,
            Err(error) => {
                // The session cancels the exchange here.
                assert!(!leaks(&error.to_string()), "{error} shows a secret");
                break;
            }
        };
        let response = response.expose();

        match client.mechanism() {
            Mechanism::CramMd5 => {
                let digest = response
                    .strip_prefix(username.as_bytes())
                    .and_then(|rest| rest.strip_prefix(b" "));
                let is_hex = |digest: &[u8]| {
                    digest.len() == 32
                        && digest
                            .iter()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                };
                assert!(
                    digest.is_some_and(is_hex),
                    "CRAM-MD5 response {:?}",
                    super::show(response)
                );
            }
            Mechanism::Login => {
                let expected = [username.as_bytes(), PASSWORD.as_bytes()];
                assert_eq!(
                    Some(&response[..]),
                    expected.get(step).copied(),
                    "LOGIN step {step}"
                );
            }
            _ => {}
        }
    }

    assert!(!leaks(&format!("{client:?}")), "{client:?} shows a secret");
    if let Some(error) = client.server_error() {
        assert_eq!(error.kind(), SaslErrorKind::ServerError);
        assert!(!leaks(&error.to_string()), "{error} shows a secret");
    }
}
