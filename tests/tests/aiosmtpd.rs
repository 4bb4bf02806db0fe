//! The blocking client against aiosmtpd on loopback: STARTTLS, then AUTH with each mechanism the
//! client implements, and messages stored exactly as received.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use smtp_blocking::{Client, Options, Roots};
use smtp_interop::{Aiosmtpd, DEFERRED_RECIPIENT, aiosmtpd, unique_token};
use smtp_proto::client::{Envelope, Error as SessionError, TlsPolicy};
use smtp_proto::{Credentials, Domain, Mailbox, Mechanism, ReversePath};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn auth_plain_delivers() {
    delivers_with(Mechanism::Plain, password(aiosmtpd()));
}

#[test]
fn auth_login_delivers() {
    delivers_with(Mechanism::Login, password(aiosmtpd()));
}

#[test]
fn auth_cram_md5_delivers() {
    delivers_with(Mechanism::CramMd5, password(aiosmtpd()));
}

#[test]
fn auth_xoauth2_delivers() {
    let server = aiosmtpd();
    delivers_with(
        Mechanism::XOAuth2,
        Credentials::oauth2(&server.user, &server.oauth_token),
    );
}

#[test]
fn auth_oauthbearer_delivers() {
    let server = aiosmtpd();
    delivers_with(
        Mechanism::OAuthBearer,
        Credentials::oauth2(&server.user, &server.oauth_token),
    );
}

#[test]
fn best_mechanism_chosen_by_default() {
    let server = aiosmtpd();
    let token = unique_token("default");
    let mut client = connect(server, None, password(server)).unwrap();

    client.send(envelope(), message(&token)).unwrap();
    client.quit().unwrap();

    let delivery = server.wait_for_delivery(token.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(
        delivery.envelope.auth.as_deref(),
        Some(server.user.as_str())
    );
}

#[test]
fn rejected_token_is_auth_failure() {
    let server = aiosmtpd();
    let credentials = Credentials::oauth2(&server.user, "not-the-token");

    let error = connect(server, Some(Mechanism::XOAuth2), credentials)
        .expect_err("a wrong token must fail");

    assert!(
        matches!(error.smtp(), Some(SessionError::AuthFailed { .. })),
        "{error}"
    );
}

#[test]
fn deferred_recipient_is_transient() {
    let server = aiosmtpd();
    let mut client = connect(server, None, password(server)).unwrap();
    let envelope = Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        vec![Mailbox::parse(DEFERRED_RECIPIENT).unwrap()],
    )
    .unwrap();

    let error = client
        .send(envelope, message(&unique_token("deferred")))
        .unwrap_err();
    client.quit().unwrap();

    assert!(error.is_transient(), "{error}");
    assert!(!error.is_permanent(), "{error}");
}

/// Sends one message over STARTTLS with `mechanism` and checks the server stored it exactly,
/// inside TLS, for the authenticated user.
fn delivers_with(mechanism: Mechanism, credentials: Credentials) {
    let server = aiosmtpd();
    let token = unique_token(mechanism.name());
    let message = message(&token);
    let mut client = connect(server, Some(mechanism.clone()), credentials).unwrap();
    assert!(client.is_encrypted());

    client.send(envelope(), message.clone()).unwrap();
    client.quit().unwrap();

    let delivery = server.wait_for_delivery(token.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(delivery.message, message, "{mechanism:?}");
    assert!(delivery.envelope.tls.is_some(), "{mechanism:?} outside TLS");
    assert_eq!(
        delivery.envelope.auth.as_deref(),
        Some(server.user.as_str())
    );
    assert_eq!(delivery.envelope.mail_from, "sender@example.test");
}

fn connect(
    server: &Aiosmtpd,
    mechanism: Option<Mechanism>,
    credentials: Credentials,
) -> Result<Client, smtp_blocking::Error> {
    let mut options = Options::default();
    options.session.tls = TlsPolicy::Required;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    options.session.credentials = Some(credentials);
    options.session.mechanism = mechanism;
    options.roots = Roots::CaFile(server.ca_file.clone());
    Client::connect(&format!("127.0.0.1:{}", server.port), options)
}

fn password(server: &Aiosmtpd) -> Credentials {
    Credentials::password(&server.user, &server.password)
}

fn envelope() -> Envelope {
    Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        vec![Mailbox::parse("someone@example.test").unwrap()],
    )
    .unwrap()
}

fn message(token: &str) -> Vec<u8> {
    format!(
        "From: sender@example.test\r\nTo: someone@example.test\r\nSubject: {token}\r\n\r\n\
         .leading dot\r\n.\r\nlast line\r\n"
    )
    .into_bytes()
}
