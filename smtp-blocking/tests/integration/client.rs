//! `Client` against the scripted server: TLS, AUTH, failures and pipelining over real sockets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use smtp_blocking::{Client, Error, Options, Roots, TranscriptText};
use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::{Credentials, Domain, Mailbox, ReversePath, Timeouts};

use crate::common::{Pki, Script, Server, clear_text_greeting, reject_tls_after_starttls};

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const BODY: &str = "Subject: test\r\n\r\nHello.\r\n";

/// Options for the scripted server: five-second deadlines, so a broken script fails quickly.
fn options(tls: TlsPolicy, pki: Option<&Pki>) -> Options {
    let mut options = Options::default();
    options.session.tls = tls;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    options.session.timeouts = Timeouts::uniform(Duration::from_secs(5));
    options.connect_timeout = Duration::from_secs(5);
    if let Some(pki) = pki {
        options.roots = Roots::CaFile(pki.ca_file.clone());
    }
    options
}

fn envelope() -> Envelope {
    Envelope::new(
        ReversePath::parse(FROM).unwrap(),
        vec![Mailbox::parse(TO).unwrap()],
    )
    .unwrap()
}

#[test]
fn starttls_auth_plain_and_message() {
    let pki = Pki::new();
    let tls = pki.valid.clone();
    let server = Server::start(move |peer| {
        peer.greet(&["PIPELINING", "STARTTLS"]);
        peer.expect("STARTTLS");
        peer.send("220 2.0.0 Ready to start TLS");
        peer.start_tls(tls);
        peer.expect("EHLO client.example.test");
        peer.reply_ehlo(&["AUTH PLAIN LOGIN", "8BITMIME"]);
        peer.expect("AUTH PLAIN AHVzZXJAZXhhbXBsZS50ZXN0AHMzY3JldC1wYXNz");
        peer.send("235 2.7.0 Authentication successful");
        let data = peer.accept_message(FROM, &[TO], "4Xyz");
        assert_eq!(data, BODY.as_bytes());
        peer.quit();
    });

    let mut options = options(TlsPolicy::Required, Some(&pki));
    options.session.credentials = Some(Credentials::password("user@example.test", "s3cret-pass"));
    options.session.transcript = true;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let recorded = lines.clone();
    let mut client = Client::connect_with_transcript(&server.address, options, move |line, tls| {
        recorded
            .lock()
            .unwrap()
            .push(TranscriptText::new(line, tls).to_string());
    })
    .unwrap();

    assert!(client.is_encrypted());
    assert!(client.tls_info().is_some());
    assert!(
        client.capabilities().contains("AUTH"),
        "capabilities come from the EHLO over TLS"
    );
    assert!(!client.capabilities().contains("STARTTLS"));
    let delivery = client.send(envelope(), BODY).unwrap();
    assert_eq!(delivery.reply().to_string(), "250 2.0.0 Ok: queued as 4Xyz");
    assert_eq!(delivery.recipients().len(), 1);
    assert!(delivery.recipients()[0].is_accepted());
    client.quit().unwrap();
    server.join();

    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("* TLS established (TLS1.")),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"C: AUTH PLAIN <redacted>".to_owned()),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("AHVzZXJA")),
        "credentials in the transcript: {lines:#?}"
    );
}

#[test]
fn wrapper_mode_message() {
    let pki = Pki::new();
    let tls = pki.valid.clone();
    let server = Server::start(move |peer| {
        peer.start_tls(tls);
        peer.greet(&["PIPELINING"]);
        peer.expect(&format!("MAIL FROM:<{FROM}>"));
        peer.expect(&format!("RCPT TO:<{TO}>"));
        peer.expect("DATA");
        peer.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead");
        assert_eq!(peer.read_data(), BODY.as_bytes());
        peer.send("250 2.0.0 Ok: queued as W1");
        peer.quit();
    });

    let mut client =
        Client::connect(&server.address, options(TlsPolicy::Wrapper, Some(&pki))).unwrap();

    assert!(client.is_encrypted());
    assert!(client.tls_info().is_some());
    let delivery = client.send(envelope(), BODY).unwrap();
    assert_eq!(delivery.reply().to_string(), "250 2.0.0 Ok: queued as W1");
    client.quit().unwrap();
    server.join();
}

#[test]
fn tls_required_without_starttls_fails() {
    let pki = Pki::new();
    let server = Server::start(|peer| {
        peer.greet(&["PIPELINING", "AUTH PLAIN"]);
        peer.expect("QUIT");
        peer.send("221 2.0.0 Bye");
        let rest = peer.read_to_end();
        assert!(rest.is_empty(), "sent after QUIT: {rest:?}");
    });

    let result = Client::connect(&server.address, options(TlsPolicy::Required, Some(&pki)));

    assert!(
        matches!(
            result,
            Err(Error::Smtp(smtp_proto::client::Error::TlsNotOffered))
        ),
        "{result:?}"
    );
    server.join();
}

#[test]
fn bad_certificates_stop_before_commands() {
    let pki = Pki::new();
    let cases = [
        ("certificate for another name", pki.wrong_name.clone()),
        ("self-signed certificate", pki.self_signed.clone()),
        ("certificate from an unknown root", pki.unknown_root.clone()),
        ("expired certificate", pki.expired.clone()),
    ];
    for (label, config) in cases {
        let server = Server::start(move |peer| {
            peer.greet(&["STARTTLS"]);
            peer.expect("STARTTLS");
            peer.send("220 2.0.0 Ready to start TLS");
            let handshake = peer.try_start_tls(config);
            assert!(handshake.is_err(), "the client completed the handshake");
            let rest = peer.read_to_end();
            assert!(rest.is_empty(), "sent after the failed handshake: {rest:?}");
        });

        let result = Client::connect(&server.address, options(TlsPolicy::Required, Some(&pki)));

        assert!(
            matches!(
                result,
                Err(Error::Tls(rustls::Error::InvalidCertificate(_)))
            ),
            "{label}: {result:?}"
        );
        assert!(result.as_ref().is_err_and(Error::is_permanent), "{label}");
        server.join();
    }
}

#[test]
fn accept_invalid_certs_lets_bad_certificates_through() {
    let pki = Pki::new();
    let cases = [
        ("certificate for another name", pki.wrong_name.clone()),
        ("self-signed certificate", pki.self_signed.clone()),
        ("certificate from an unknown root", pki.unknown_root.clone()),
    ];
    for (label, config) in cases {
        let server = Server::start(move |peer| {
            peer.greet(&["STARTTLS"]);
            peer.expect("STARTTLS");
            peer.send("220 2.0.0 Ready to start TLS");
            peer.start_tls(config);
            peer.expect("EHLO client.example.test");
            peer.reply_ehlo(&[]);
            peer.quit();
        });

        let mut options = options(TlsPolicy::Required, Some(&pki));
        options.accept_invalid_certs = true;
        let client = Client::connect(&server.address, options)
            .unwrap_or_else(|error| panic!("{label}: {error}"));

        assert!(client.is_encrypted(), "{label}");
        client.quit().unwrap();
        server.join();
    }
}

#[test]
fn starttls_injection_in_same_segment() {
    let pki = Pki::new();
    let server = Server::start(|peer| {
        peer.greet(&["STARTTLS"]);
        peer.expect("STARTTLS");
        peer.send_raw(b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 AUTH PLAIN\r\n");
        let rest = peer.read_to_end();
        assert!(rest.is_empty(), "sent after the injection: {rest:?}");
    });

    let result = Client::connect(&server.address, options(TlsPolicy::Required, Some(&pki)));

    assert!(
        matches!(
            result,
            Err(Error::Smtp(
                smtp_proto::client::Error::StartTlsInjection { .. }
            ))
        ),
        "{result:?}"
    );
    server.join();
}

#[test]
fn starttls_injection_in_later_segment() {
    let pki = Pki::new();
    let server = Server::start(|peer| {
        peer.greet(&["STARTTLS"]);
        peer.expect("STARTTLS");
        peer.send("220 2.0.0 Ready to start TLS");
        std::thread::sleep(Duration::from_millis(50));
        peer.send("250 AUTH PLAIN");
        let rest = peer.read_to_end();
        assert!(
            !rest.windows(4).any(|window| window == b"EHLO"),
            "EHLO in clear text after the injection: {rest:?}"
        );
    });

    let result = Client::connect(&server.address, options(TlsPolicy::Required, Some(&pki)));

    // Depending on when the injected line arrives, the session rejects it before the
    // handshake, or the handshake reads it and fails.
    assert!(
        matches!(
            result,
            Err(Error::Tls(_) | Error::Smtp(smtp_proto::client::Error::StartTlsInjection { .. }))
        ),
        "{result:?}"
    );
    server.join();
}

#[test]
fn greeting_timeout_within_deadline() {
    let server = Server::start(|peer| {
        let received = peer.read_to_end();
        assert!(received.is_empty(), "the client wrote {received:?}");
    });
    let mut options = options(TlsPolicy::None, None);
    options.session.timeouts.greeting = Duration::from_millis(300);

    let start = Instant::now();
    let result = Client::connect(&server.address, options);
    let elapsed = start.elapsed();

    assert!(
        matches!(
            result,
            Err(Error::Smtp(smtp_proto::client::Error::Timeout {
                stage: smtp_proto::client::Stage::Greeting
            }))
        ),
        "{result:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300),
        "fired early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1300),
        "fired late: {elapsed:?}"
    );
    server.join();
}

#[test]
fn close_mid_data_after_421() {
    let server = Server::start(|peer| {
        peer.greet(&[]);
        peer.start_data(FROM, &[TO]);
        peer.expect("Subject: large");
        peer.send("421 4.4.2 mx.example.test Error: timeout exceeded");
        // Dropping the peer closes the socket with the rest of the data unread.
    });
    // About 13 MB, more than Linux loopback socket buffers hold by default, so the client is
    // still writing when the server closes.
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    body.extend(
        b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(200_000),
    );

    let mut client = Client::connect(&server.address, options(TlsPolicy::None, None)).unwrap();
    let result = client.send(envelope(), body);

    let error = result.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let reply = error.smtp().and_then(smtp_proto::client::Error::reply);
    assert_eq!(
        reply.map(ToString::to_string).as_deref(),
        Some("421 4.4.2 mx.example.test Error: timeout exceeded"),
        "{error:?}"
    );
    let again = client.noop().unwrap_err();
    assert_eq!(
        again.smtp(),
        error.smtp(),
        "later calls return the error that closed the session"
    );
    server.join();
}

#[test]
fn ten_messages_one_connection() {
    let server = Server::start(|peer| {
        peer.greet(&["8BITMIME"]);
        for index in 0..10 {
            let data = peer.accept_message(FROM, &[TO], &format!("Q{index}"));
            assert_eq!(data, format!("Subject: {index}\r\n\r\nbody\r\n").as_bytes());
        }
        peer.quit();
    });

    let mut client = Client::connect(&server.address, options(TlsPolicy::None, None)).unwrap();
    for index in 0..10 {
        let body = format!("Subject: {index}\r\n\r\nbody\r\n");
        let delivery = client.send(envelope(), body).unwrap();
        assert_eq!(
            delivery.reply().to_string(),
            format!("250 2.0.0 Ok: queued as Q{index}")
        );
    }
    client.quit().unwrap();
    server.join();
}

#[test]
fn send_batch_pipelines_messages() {
    const MESSAGES: usize = 4;
    let server = Server::start(|peer| {
        peer.greet(&["PIPELINING"]);
        for index in 0..MESSAGES {
            // The envelope of each message arrives before the reply to the previous message:
            // a client waiting for that reply makes these reads time out.
            peer.expect(&format!("MAIL FROM:<{FROM}>"));
            peer.expect(&format!("RCPT TO:<{TO}>"));
            peer.expect("DATA");
            let mut replies = String::new();
            if index > 0 {
                replies.push_str(&format!("250 2.0.0 Ok: queued as B{}\r\n", index - 1));
            }
            replies.push_str("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead");
            peer.send(&replies);
            assert_eq!(peer.read_data(), BODY.as_bytes(), "message {index}");
        }
        peer.send(&format!("250 2.0.0 Ok: queued as B{}", MESSAGES - 1));
        peer.quit();
    });

    let mut client = Client::connect(&server.address, options(TlsPolicy::None, None)).unwrap();
    let results = client.send_batch((0..MESSAGES).map(|_| (envelope(), Bytes::from(BODY))));

    assert_eq!(results.len(), MESSAGES);
    for (index, result) in results.into_iter().enumerate() {
        let delivery = result.unwrap_or_else(|error| panic!("message {index}: {error}"));
        assert_eq!(
            delivery.reply().to_string(),
            format!("250 2.0.0 Ok: queued as B{index}")
        );
    }
    client.quit().unwrap();
    server.join();
}

#[test]
fn tls_setup_failures_are_permanent() {
    let pki = Pki::new();
    let cases: [(&str, TlsPolicy, Script); 2] = [
        (
            "alert after STARTTLS",
            TlsPolicy::Required,
            reject_tls_after_starttls,
        ),
        (
            "clear text under implicit TLS",
            TlsPolicy::Wrapper,
            clear_text_greeting,
        ),
    ];
    for (label, policy, script) in cases {
        let server = Server::start(script);

        let result = Client::connect(&server.address, options(policy, Some(&pki)));

        assert!(matches!(result, Err(Error::Tls(_))), "{label}: {result:?}");
        assert!(result.as_ref().is_err_and(Error::is_permanent), "{label}");
        server.join();
    }
}

#[test]
fn chunking_sends_message_with_bdat() {
    let server = Server::start(|peer| {
        peer.greet(&["CHUNKING"]);
        peer.expect(&format!("MAIL FROM:<{FROM}>"));
        peer.send("250 2.1.0 Ok");
        peer.expect(&format!("RCPT TO:<{TO}>"));
        peer.send("250 2.1.5 Ok");
        peer.expect(&format!("BDAT {} LAST", BODY.len()));
        assert_eq!(peer.read_octets(BODY.len()), BODY.as_bytes());
        peer.send("250 2.0.0 Ok: queued as B1");
        peer.quit();
    });
    let mut client = Client::connect(&server.address, options(TlsPolicy::None, None)).unwrap();

    let delivery = client.send(envelope(), BODY).unwrap();

    assert_eq!(delivery.reply().to_string(), "250 2.0.0 Ok: queued as B1");
    client.quit().unwrap();
    server.join();
}

#[test]
fn recipients_rejected_text_has_no_trailing_semicolon() {
    let server = Server::start(|peer| {
        peer.greet(&[]);
        peer.expect(&format!("MAIL FROM:<{FROM}>"));
        peer.send("250 2.1.0 Ok");
        peer.expect(&format!("RCPT TO:<{TO}>"));
        peer.send("550 5.1.1 No such user");
        peer.expect("RCPT TO:<other@example.test>");
        peer.send("450 4.2.1 Mailbox busy");
        peer.quit();
    });
    let mut client = Client::connect(&server.address, options(TlsPolicy::None, None)).unwrap();
    let envelope = Envelope::new(
        ReversePath::parse(FROM).unwrap(),
        vec![
            Mailbox::parse(TO).unwrap(),
            Mailbox::parse("other@example.test").unwrap(),
        ],
    )
    .unwrap();

    let error = client.send(envelope, BODY).unwrap_err();

    assert_eq!(
        error.to_string(),
        "recipients rejected, message not sent: <rcpt@example.test>: 550 5.1.1 No such user; \
         <other@example.test>: 450 4.2.1 Mailbox busy"
    );
    client.quit().unwrap();
    server.join();
}
