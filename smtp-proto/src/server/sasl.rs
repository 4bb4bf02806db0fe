//! The server side of the SASL mechanisms: reading the client's messages into
//! [`AuthCredentials`] (RFC 4954 section 4).

use crate::auth::Mechanism;
use crate::secret::Secret;
use crate::server::event::AuthCredentials;

/// Reads the PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616 section 2), all UTF-8,
/// with a non-empty `authcid`.
pub(crate) fn plain(message: &[u8]) -> Option<AuthCredentials> {
    let mut fields = message.split(|&byte| byte == 0);
    let (Some(authorization_id), Some(username), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    if username.is_empty() {
        return None;
    }

    let authorization_id = text(authorization_id)?;
    Some(AuthCredentials::Plain {
        authorization_id: Some(authorization_id).filter(|id| !id.is_empty()),
        username: text(username)?,
        password: Secret::new(text(password)?),
    })
}

/// Reads the CRAM-MD5 response `user SP digest` with a digest of 32 lowercase hex digits
/// (RFC 2195 section 2).
pub(crate) fn cram_md5(response: &[u8], challenge: Vec<u8>) -> Option<AuthCredentials> {
    let split = response.iter().rposition(|&byte| byte == b' ')?;
    let (username, digest) = (&response[..split], &response[split + 1..]);
    let is_digest = digest.len() == 32
        && digest
            .iter()
            .all(|&byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if username.is_empty() || !is_digest {
        return None;
    }

    Some(AuthCredentials::CramMd5 {
        username: text(username)?,
        challenge,
        digest: text(digest)?,
    })
}

/// Reads the client message of a bearer token mechanism: `user=USER ^A auth=Bearer TOKEN ^A ^A`
/// for XOAUTH2, and `gs2-header ^A *(kvpair ^A) ^A` with the `auth`, `host` and `port` pairs for
/// OAUTHBEARER (RFC 7628 section 3.1).
pub(crate) fn bearer(mechanism: &Mechanism, message: &[u8]) -> Option<AuthCredentials> {
    let body = message.strip_suffix(b"\x01\x01")?;
    let mut parts = body.split(|&byte| byte == SEPARATOR);
    let first = parts.next()?;

    if *mechanism == Mechanism::XOAuth2 {
        let username = text(first.strip_prefix(b"user=")?)?;
        let token = bearer_token(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        return Some(AuthCredentials::XOAuth2 { username, token });
    }

    let authorization_id = gs2_header(first)?;
    let (mut token, mut host, mut port) = (None, None, None);
    for pair in parts {
        let split = pair.iter().position(|&byte| byte == b'=')?;
        let (key, value) = (&pair[..split], &pair[split + 1..]);
        match key {
            b"auth" => token = Some(bearer_token(pair)?),
            b"host" => host = Some(text(value)?),
            b"port" => port = Some(text(value)?),
            _ => {}
        }
    }
    Some(AuthCredentials::OAuthBearer {
        authorization_id,
        token: token?,
        host,
        port,
    })
}

/// Reads `auth=Bearer TOKEN`; the scheme compares case-insensitively (RFC 6750 section 2.1).
fn bearer_token(pair: &[u8]) -> Option<Secret<String>> {
    let value = pair.strip_prefix(b"auth=")?;
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer ") || token.is_empty() {
        return None;
    }

    text(token).map(Secret::new)
}

/// Reads `gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","` without channel binding
/// (RFC 5801 section 4), returning the authorization identity with `=2C` and `=3D` decoded.
fn gs2_header(header: &[u8]) -> Option<Option<String>> {
    let rest = header
        .strip_prefix(b"n,")
        .or_else(|| header.strip_prefix(b"y,"))?;
    let name = rest.strip_suffix(b",")?;
    if name.is_empty() {
        return Some(None);
    }

    let name = text(name.strip_prefix(b"a=")?)?;
    if name.contains(',') {
        return None;
    }
    let mut decoded = String::with_capacity(name.len());
    let mut rest = name.as_str();
    while let Some(index) = rest.find('=') {
        decoded.push_str(&rest[..index]);
        let escape = rest.get(index..index + 3)?;
        decoded.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[index + 3..];
    }
    decoded.push_str(rest);
    Some(Some(decoded))
}

/// Decodes a credential field as UTF-8.
pub(crate) fn text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

/// The error status of a rejected bearer token, sent base64-encoded in a 334 challenge (RFC
/// 7628 section 3.2.2).
pub(crate) fn bearer_error(mechanism: &Mechanism) -> &'static [u8] {
    match mechanism {
        Mechanism::XOAuth2 => br#"{"status":"401","schemes":"bearer"}"#,
        _ => br#"{"status":"invalid_token"}"#,
    }
}

const SEPARATOR: u8 = 0x01;

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret<String> {
        Secret::new(text.to_owned())
    }

    #[test]
    fn plain_messages() {
        let cases: Vec<(&str, &[u8], Option<AuthCredentials>)> = vec![
            (
                "no authorization id",
                b"\0alice\0s3cret-example",
                Some(AuthCredentials::Plain {
                    authorization_id: None,
                    username: "alice".to_owned(),
                    password: secret("s3cret-example"),
                }),
            ),
            (
                "authorization id",
                b"bob\0alice\0pw",
                Some(AuthCredentials::Plain {
                    authorization_id: Some("bob".to_owned()),
                    username: "alice".to_owned(),
                    password: secret("pw"),
                }),
            ),
            ("empty user", b"\0\0pw", None),
            ("two fields", b"alice\0pw", None),
            ("four fields", b"\0alice\0pw\0x", None),
            ("invalid utf-8", b"\0al\xffice\0pw", None),
        ];

        for (label, message, expected) in cases {
            assert_eq!(plain(message), expected, "{label}");
        }
    }

    #[test]
    fn cram_md5_responses() {
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>".to_vec();
        let parsed = cram_md5(b"tim b913a602c7eda7a495b4e6e7334d3890", challenge.clone());

        let Some(credentials) = parsed else {
            panic!("the RFC 2195 response was not read");
        };
        assert_eq!(credentials.username(), "tim");
        assert!(credentials.verify("tanstaaftanstaaf"));
        assert!(!credentials.verify("tanstaaftanstaafX"));
        assert_eq!(
            cram_md5(b"tim B913A602C7EDA7A495B4E6E7334D3890", challenge.clone()),
            None
        );
        assert_eq!(cram_md5(b"tim b913a602", challenge.clone()), None);
        assert_eq!(
            cram_md5(b"b913a602c7eda7a495b4e6e7334d3890", challenge),
            None
        );
    }

    #[test]
    fn bearer_messages() {
        let cases: Vec<(&str, Mechanism, &[u8], Option<AuthCredentials>)> = vec![
            (
                "xoauth2",
                Mechanism::XOAuth2,
                b"user=alice@example.com\x01auth=Bearer ya29.token\x01\x01",
                Some(AuthCredentials::XOAuth2 {
                    username: "alice@example.com".to_owned(),
                    token: secret("ya29.token"),
                }),
            ),
            (
                "xoauth2 lower-case scheme",
                Mechanism::XOAuth2,
                b"user=a\x01auth=bearer t\x01\x01",
                Some(AuthCredentials::XOAuth2 {
                    username: "a".to_owned(),
                    token: secret("t"),
                }),
            ),
            (
                "xoauth2 without terminator",
                Mechanism::XOAuth2,
                b"user=a\x01auth=Bearer t\x01",
                None,
            ),
            (
                "oauthbearer escaped name",
                Mechanism::OAuthBearer,
                b"n,a=a=2Cb=3Dc,\x01host=mx.example.net\x01port=587\x01auth=Bearer t\x01\x01",
                Some(AuthCredentials::OAuthBearer {
                    authorization_id: Some("a,b=c".to_owned()),
                    token: secret("t"),
                    host: Some("mx.example.net".to_owned()),
                    port: Some("587".to_owned()),
                }),
            ),
            (
                "oauthbearer without name",
                Mechanism::OAuthBearer,
                b"n,,\x01auth=Bearer t\x01\x01",
                Some(AuthCredentials::OAuthBearer {
                    authorization_id: None,
                    token: secret("t"),
                    host: None,
                    port: None,
                }),
            ),
            (
                "oauthbearer channel binding",
                Mechanism::OAuthBearer,
                b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
                None,
            ),
            (
                "oauthbearer bad escape",
                Mechanism::OAuthBearer,
                b"n,a=a=2D,\x01auth=Bearer t\x01\x01",
                None,
            ),
            (
                "oauthbearer without token",
                Mechanism::OAuthBearer,
                b"n,,\x01host=x\x01\x01",
                None,
            ),
        ];

        for (label, mechanism, message, expected) in cases {
            assert_eq!(bearer(&mechanism, message), expected, "{label}");
        }
    }
}
