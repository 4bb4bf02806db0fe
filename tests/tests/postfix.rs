//! The blocking client against a private Postfix instance on loopback: STARTTLS with a
//! certificate from a test CA, Cyrus SASL authentication, and delivery into a Maildir that the
//! tests read back.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::{Client, Options, Roots};
use smtp_interop::{DEFERRED_RECIPIENT, Postfix, REJECTED_RECIPIENT, postfix, unique_token};
use smtp_proto::client::{Envelope, Error as SessionError, TlsPolicy, TranscriptLine};
use smtp_proto::{Credentials, Domain, Mailbox, Mechanism, ReversePath};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn starttls_plain_message_arrives_exact() {
    delivers_with(Mechanism::Plain);
}

#[test]
fn starttls_login_message_arrives_exact() {
    delivers_with(Mechanism::Login);
}

#[test]
fn starttls_cram_md5_message_arrives_exact() {
    delivers_with(Mechanism::CramMd5);
}

#[test]
fn implicit_tls_message_arrives_exact() {
    let server = postfix();
    let mut options = options(server, TlsPolicy::Wrapper);
    options.session.credentials = Some(credentials(server));
    let token = unique_token("wrapper");
    let message = message(&token);

    let mut client = Client::connect(&format!("127.0.0.1:{}", server.smtps_port), options).unwrap();
    assert!(client.is_encrypted());
    let delivery = client
        .send(envelope(&["wrapper"]), message.clone())
        .unwrap();
    client.quit().unwrap();

    assert!(
        delivery.reply().text().contains("queued as"),
        "{}",
        delivery.reply()
    );
    let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(arrived, message);
}

#[test]
fn rejected_recipient_others_still_delivered() {
    let server = postfix();
    let token = unique_token("partial");
    let mut client = submission_client(server, Some(Mechanism::Plain));

    let recipients = vec![
        mailbox(&format!("first@{}", server.domain)),
        mailbox(REJECTED_RECIPIENT),
        mailbox(&format!("second@{}", server.domain)),
        mailbox(DEFERRED_RECIPIENT),
    ];
    let envelope = Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        recipients,
    )
    .unwrap();
    let delivery = client.send(envelope, message(&token)).unwrap();
    client.quit().unwrap();

    let results = delivery.recipients();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_accepted(), "{:?}", results[0]);
    assert!(results[1].is_permanent(), "{:?}", results[1]);
    assert_eq!(results[1].reply().code().value(), 550);
    assert!(results[2].is_accepted(), "{:?}", results[2]);
    assert!(results[3].is_transient(), "{:?}", results[3]);
    assert_eq!(results[3].reply().code().value(), 450);
    let rejected: Vec<String> = delivery
        .rejected()
        .map(|r| r.recipient().to_string())
        .collect();
    assert_eq!(rejected, [REJECTED_RECIPIENT, DEFERRED_RECIPIENT]);
    let delivered = server.wait_for_messages(token.as_bytes(), 2, DELIVERY_TIMEOUT);
    assert_eq!(delivered.len(), 2);
}

#[test]
fn ten_messages_over_one_connection() {
    let server = postfix();
    let mut client = submission_client(server, None);
    let tokens: Vec<String> = (0..10)
        .map(|i| unique_token(&format!("batch{i}")))
        .collect();

    for token in &tokens {
        let delivery = client.send(envelope(&["batch"]), message(token)).unwrap();
        assert_eq!(delivery.reply().code().value(), 250);
    }
    client.quit().unwrap();

    for token in &tokens {
        let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
        assert_eq!(arrived, message(token));
    }
}

#[test]
fn batch_of_messages_pipelined() {
    let server = postfix();
    let mut client = submission_client(server, None);
    assert!(client.capabilities().has(smtp_proto::Extension::Pipelining));
    let tokens: Vec<String> = (0..5)
        .map(|i| unique_token(&format!("pipelined{i}")))
        .collect();

    let results = client.send_batch(
        tokens
            .iter()
            .map(|token| (envelope(&["pipelined"]), bytes::Bytes::from(message(token)))),
    );
    client.quit().unwrap();

    assert_eq!(results.len(), 5);
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    for token in &tokens {
        let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
        assert_eq!(arrived, message(token));
    }
}

#[test]
fn eight_bit_and_utf8_address_delivered() {
    let server = postfix();
    let mut client = submission_client(server, None);
    assert!(client.capabilities().has(smtp_proto::Extension::SmtpUtf8));
    let token = unique_token("utf8");
    let message = format!(
        "From: sender@example.test\r\nTo: jörg@example.test\r\nSubject: Grüße {token}\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus dem Test.\r\n"
    )
    .into_bytes();

    let envelope = Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        vec![mailbox("jörg@example.test")],
    )
    .unwrap();
    client.send(envelope, message.clone()).unwrap();
    client.quit().unwrap();

    let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(arrived, message);
}

#[test]
fn required_tls_without_starttls_fails_before_mail() {
    let server = postfix();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut options = options(server, TlsPolicy::Required);
    options.session.credentials = Some(credentials(server));
    options.session.transcript = true;
    let recorded = Arc::clone(&lines);

    let result = Client::connect_with_transcript(
        &format!("127.0.0.1:{}", server.plain_port),
        options,
        move |line, _| recorded.lock().unwrap().push(line.clone()),
    );

    let error = result.expect_err("the connection must fail");
    assert_eq!(error.smtp(), Some(&SessionError::TlsNotOffered), "{error}");
    assert!(error.is_permanent());
    let sent = sent_lines(&lines.lock().unwrap());
    assert_eq!(sent, ["EHLO client.example.test", "QUIT"]);
}

#[test]
fn wrong_password_is_permanent_failure() {
    let server = postfix();
    let mut options = options(server, TlsPolicy::Required);
    options.session.credentials = Some(Credentials::password(&server.user, "not-the-password"));
    options.session.mechanism = Some(Mechanism::Plain);

    let result = Client::connect(&format!("127.0.0.1:{}", server.submission_port), options);

    let error = result.expect_err("authentication must fail");
    assert!(error.is_permanent(), "{error}");
    match error.smtp() {
        Some(SessionError::AuthFailed { reply }) => assert_eq!(reply.code().value(), 535),
        other => panic!("expected an authentication failure, got {other:?}"),
    }
}

#[test]
fn certificate_checked_against_ca() {
    let server = postfix();
    let mut options = options(server, TlsPolicy::Required);
    options.roots = Roots::WebPki;

    let result = Client::connect(&format!("127.0.0.1:{}", server.submission_port), options);

    let error = result.expect_err("a certificate from the test CA is not in webpki-roots");
    assert!(matches!(error, smtp_blocking::Error::Tls(_)), "{error}");
}

/// Sends one message over STARTTLS, authenticated with `mechanism`, and checks it arrived
/// exactly as sent.
fn delivers_with(mechanism: Mechanism) {
    let server = postfix();
    let token = unique_token(mechanism.name());
    let message = message(&token);
    let mut client = submission_client(server, Some(mechanism.clone()));
    assert!(client.is_encrypted());

    let delivery = client.send(envelope(&["auth"]), message.clone()).unwrap();
    client.quit().unwrap();

    assert_eq!(delivery.reply().code().value(), 250);
    assert!(
        delivery.reply().text().contains("queued as"),
        "{}",
        delivery.reply()
    );
    let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(arrived.len(), message.len(), "{mechanism:?}");
    assert_eq!(arrived, message, "{mechanism:?}");
}

fn submission_client(server: &Postfix, mechanism: Option<Mechanism>) -> Client {
    let mut options = options(server, TlsPolicy::Required);
    options.session.credentials = Some(credentials(server));
    options.session.mechanism = mechanism;
    Client::connect(&format!("127.0.0.1:{}", server.submission_port), options).unwrap()
}

fn options(server: &Postfix, tls: TlsPolicy) -> Options {
    let mut options = Options::default();
    options.session.tls = tls;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    options.roots = Roots::CaFile(server.ca_file.clone());
    options
}

fn credentials(server: &Postfix) -> Credentials {
    Credentials::password(&server.user, &server.password)
}

fn envelope(local_parts: &[&str]) -> Envelope {
    let recipients = local_parts
        .iter()
        .map(|local| mailbox(&format!("{local}@example.test")))
        .collect();
    Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        recipients,
    )
    .unwrap()
}

fn mailbox(address: &str) -> Mailbox {
    Mailbox::parse(address).unwrap()
}

/// Builds a message that exercises transparency: lines starting with dots, a lone dot line, a
/// long line and an empty line inside the body.
fn message(token: &str) -> Vec<u8> {
    let mut message = format!(
        "From: sender@example.test\r\nTo: auth@example.test\r\nSubject: {token}\r\n\
         Message-ID: <{token}@client.example.test>\r\n\r\n\
         .leading dot\r\n.\r\n..two dots\r\n\r\nafter an empty line\r\n"
    )
    .into_bytes();
    message.extend_from_slice(&[b'x'; 990]);
    message.extend_from_slice(b"\r\nlast line\r\n");
    message
}

fn sent_lines(lines: &[TranscriptLine]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| match line {
            TranscriptLine::Sent(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}
