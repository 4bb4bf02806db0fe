//! The async client against the scripted server over in-memory pipes: the session loop, TLS,
//! deadlines on a paused clock, cancellation and the wire log.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::client::{Error as SessionError, Stage, TlsPolicy};
use smtp_proto::command::{Command, MailParameters, RcptParameters};
use smtp_proto::{Credentials, Domain, Mailbox, ReversePath};
use smtp_tokio::{Client, Error, Options};
use support::{Action, MockServer, envelope, wait_until};
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;

const MESSAGE: &[u8] = b"Subject: test\r\n\r\n.leading dot\r\nbody\r\n";

#[tokio::test]
async fn send_is_pipelined_and_arrives_exact() {
    let server = MockServer::new();
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();

    let delivery = client.send(envelope(), MESSAGE).await.unwrap();
    client.quit().await.unwrap();

    assert_eq!(delivery.reply().to_string(), "250 2.0.0 queued as 0.0");
    let connections = server.connections();
    assert_eq!(
        connections[0].commands,
        [
            "EHLO client.example.test",
            "MAIL FROM:<a@example.test>",
            "RCPT TO:<b@example.test>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(server.messages(), [MESSAGE]);
}

#[tokio::test]
async fn send_batch_delivers_in_order() {
    let server = MockServer::new();
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();
    let bodies = [
        &b"Subject: 1\r\n\r\none\r\n"[..],
        b"Subject: 2\r\n\r\ntwo\r\n",
    ];

    let results = client
        .send_batch(bodies.map(|body| (envelope(), bytes::Bytes::from_static(body))))
        .await;

    assert_eq!(results.len(), 2);
    for (index, result) in results.iter().enumerate() {
        let reply = result.as_ref().unwrap().reply().to_string();
        assert_eq!(reply, format!("250 2.0.0 queued as 0.{index}"));
    }
    assert_eq!(server.messages(), bodies);
}

#[tokio::test]
async fn failed_transaction_is_followed_by_rset() {
    let server = MockServer::rejecting_first_rcpt().ehlo(&["8BITMIME"]);
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();

    let error = client.send(envelope(), MESSAGE).await.unwrap_err();
    let delivery = client.send(envelope(), MESSAGE).await.unwrap();

    assert!(
        matches!(error.smtp(), Some(SessionError::RecipientsRejected { .. })),
        "{error}"
    );
    assert!(error.is_permanent());
    assert_eq!(delivery.reply().code().value(), 250);
    let commands = &server.connections()[0].commands;
    assert_eq!(commands[3], "RSET", "{commands:?}");
    assert_eq!(commands[4], "MAIL FROM:<a@example.test>", "{commands:?}");
}

#[tokio::test]
async fn command_and_data_drive_the_dialogue() {
    let server = MockServer::new();
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();

    let noop = client.noop().await.unwrap();
    let mail = Command::Mail {
        reverse_path: ReversePath::parse("a@example.test").unwrap(),
        parameters: MailParameters::default(),
    };
    let rcpt = Command::Rcpt {
        forward_path: Mailbox::parse("b@example.test").unwrap(),
        parameters: RcptParameters::default(),
    };
    assert_eq!(client.command(mail).await.unwrap().code().value(), 250);
    assert_eq!(client.command(rcpt).await.unwrap().code().value(), 250);
    let data = client.command(Command::Data).await.unwrap();
    let end = client.data(&b"Subject: x\r\n\r\nhand-driven\r\n"[..]).await;

    assert_eq!(noop.code().value(), 250);
    assert_eq!(data.code().value(), 354);
    assert_eq!(end.unwrap().code().value(), 250);
    assert_eq!(server.messages(), [b"Subject: x\r\n\r\nhand-driven\r\n"]);
}

#[tokio::test]
async fn starttls_upgrades_and_repeats_ehlo() {
    let server = MockServer::new().with_starttls();

    let mut client = connect(&server, TlsPolicy::Required).await.unwrap();
    client.send(envelope(), MESSAGE).await.unwrap();

    assert!(client.is_encrypted());
    assert!(client.tls_info().is_some());
    let commands = &server.connections()[0].commands;
    assert_eq!(
        commands[..3],
        [
            "EHLO client.example.test",
            "STARTTLS",
            "EHLO client.example.test"
        ]
    );
    assert_eq!(server.messages(), [MESSAGE]);
}

#[tokio::test]
async fn implicit_tls_starts_with_the_handshake() {
    let server = MockServer::new().with_implicit_tls();

    let mut client = connect(&server, TlsPolicy::Wrapper).await.unwrap();
    client.send(envelope(), MESSAGE).await.unwrap();

    assert!(client.is_encrypted());
    assert!(client.tls_info().is_some());
    client.quit().await.unwrap();
    assert_eq!(server.messages(), [MESSAGE]);
}

#[tokio::test]
async fn starttls_injection_is_rejected() {
    let server = MockServer::with_script(|turn| {
        if turn.is("STARTTLS") {
            Action::reply(&["220 2.0.0 ready", "250 injected before the handshake"])
        } else {
            Action::default_reply()
        }
    })
    .with_starttls();

    let error = connect(&server, TlsPolicy::Required).await.unwrap_err();

    assert!(
        matches!(error.smtp(), Some(SessionError::StartTlsInjection { .. })),
        "{error}"
    );
}

#[tokio::test]
async fn required_tls_without_starttls_sends_no_mail() {
    let server = MockServer::new();

    let error = connect(&server, TlsPolicy::Required).await.unwrap_err();

    assert_eq!(error.smtp(), Some(&SessionError::TlsNotOffered), "{error}");
    assert_eq!(
        server.connections()[0].commands,
        ["EHLO client.example.test", "QUIT"]
    );
}

#[tokio::test(start_paused = true)]
async fn greeting_deadline_follows_tokio_clock() {
    let (stream, _silent_server) = tokio::io::duplex(1024);
    let start = Instant::now();

    let result = Client::connect_with(stream, "mock.example.test", options(TlsPolicy::None)).await;

    let error = result.unwrap_err();
    assert_eq!(
        error.smtp(),
        Some(&SessionError::Timeout {
            stage: Stage::Greeting
        }),
        "{error}"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn unanswered_end_of_data_is_outcome_unknown() {
    let server = MockServer::with_script(|turn| match turn.line {
        "." => Action::silent(),
        _ => Action::default_reply(),
    });
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();

    let error = client.send(envelope(), MESSAGE).await.unwrap_err();

    assert_eq!(
        error.smtp(),
        Some(&SessionError::OutcomeUnknown { closed: false }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert!(!error.is_permanent());
}

#[tokio::test]
async fn cancelled_send_closes_the_connection() {
    let server = MockServer::with_script(|turn| {
        if turn.is("DATA") {
            Action::silent()
        } else {
            Action::default_reply()
        }
    });
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();

    let cancelled =
        tokio::time::timeout(Duration::from_millis(50), client.send(envelope(), MESSAGE)).await;
    let after = client.noop().await;

    assert!(cancelled.is_err(), "the send must still be waiting for 354");
    assert!(matches!(after, Err(Error::Cancelled)), "{after:?}");
    assert!(!client.is_idle());
    wait_until(|| server.connections()[0].ended).await;
    assert!(
        !server.connections()[0]
            .commands
            .contains(&"NOOP".to_owned())
    );
}

#[tokio::test]
async fn quit_after_an_error_returns_the_error() {
    let server = MockServer::with_script(|turn| {
        if turn.is("MAIL") {
            Action::reply(&["421 4.3.2 shutting down"])
        } else {
            Action::default_reply()
        }
    });
    let mut client = connect(&server, TlsPolicy::None).await.unwrap();

    let error = client.send(envelope(), MESSAGE).await.unwrap_err();
    let later = client.noop().await.unwrap_err();

    assert!(
        matches!(error.smtp(), Some(SessionError::ServiceClosing { .. })),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(later.to_string(), error.to_string());
    assert!(!client.is_idle());
}

#[tokio::test]
async fn wire_log_redacts_auth_and_message_content() {
    let (captured, _default) = Captured::install(tracing::Level::TRACE);
    let server = MockServer::new().ehlo(&["PIPELINING", "AUTH PLAIN"]);
    let mut options = options(TlsPolicy::None);
    options.session.credentials = Some(Credentials::password("alice", "s3cret-example"));
    options.session.allow_insecure_auth = true;

    let mut client = Client::connect_with(server.connect(), "mock.example.test", options)
        .await
        .unwrap();
    client
        .send(
            envelope(),
            &b"Subject: private\r\n\r\nconfidential body line\r\n"[..],
        )
        .await
        .unwrap();
    client.quit().await.unwrap();

    let log = captured.text();
    let auth_line = server.connections()[0].commands[1].clone();
    let payload = auth_line.strip_prefix("AUTH PLAIN ").unwrap();
    assert!(log.contains("C: AUTH PLAIN <redacted>"), "{log}");
    assert!(log.contains("octets of message data"), "{log}");
    assert!(log.contains("C: MAIL FROM:<a@example.test>"), "{log}");
    assert!(log.contains("server=mock.example.test"), "{log}");
    assert!(!log.contains(payload), "{log}");
    assert!(!log.contains("s3cret-example"), "{log}");
    assert!(!log.contains("confidential body line"), "{log}");
    assert!(!log.contains("Subject: private"), "{log}");
}

#[tokio::test]
async fn wire_lines_are_not_logged_below_trace() {
    let (captured, _default) = Captured::install(tracing::Level::DEBUG);
    let server = MockServer::new();

    let mut client = connect(&server, TlsPolicy::None).await.unwrap();
    client.send(envelope(), MESSAGE).await.unwrap();

    let log = captured.text();
    assert!(
        log.contains("greeted: 220 mock.example.test ESMTP"),
        "{log}"
    );
    assert!(!log.contains("C: MAIL"), "{log}");
}

#[tokio::test]
async fn caller_stream_can_be_any_async_stream() {
    // A stream that is neither TCP nor a pipe: the client half of a pipe behind a wrapper that
    // counts the octets the client reads.
    let server = MockServer::new();
    let counted = Counting {
        inner: server.connect(),
        read: Arc::new(Mutex::new(0)),
    };
    let read = Arc::clone(&counted.read);

    let mut client = Client::connect_with(counted, "mock.example.test", options(TlsPolicy::None))
        .await
        .unwrap();
    client.send(envelope(), MESSAGE).await.unwrap();

    assert!(*read.lock().unwrap() > 0);
    assert_eq!(server.messages(), [MESSAGE]);
}

async fn connect(server: &MockServer, tls: TlsPolicy) -> Result<Client, Error> {
    Client::connect_with(server.connect(), "localhost", options(tls)).await
}

fn options(tls: TlsPolicy) -> Options {
    let mut options = Options::default();
    options.session.tls = tls;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    // The mock server's certificate is self-signed.
    options.accept_invalid_certs = true;
    options
}

/// A log sink for `tracing_subscriber`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Records every event up to `level` on this thread while the guard lives.
    fn install(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A stream wrapper that counts the octets read through it.
struct Counting {
    inner: tokio::io::DuplexStream,
    read: Arc<Mutex<usize>>,
}

impl tokio::io::AsyncRead for Counting {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        *self.read.lock().unwrap() += buf.filled().len() - before;
        result
    }
}

impl tokio::io::AsyncWrite for Counting {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn reading_after_quit_sees_the_end() {
    // The client's stream is closed after QUIT: the server end reads the end of the stream.
    let (stream, mut far) = tokio::io::duplex(4096);
    let script = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        far.write_all(b"220 hi\r\n").await.unwrap();
        let mut buf = vec![0; 1024];
        let mut seen = Vec::new();
        loop {
            let read = far.read(&mut buf).await.unwrap();
            if read == 0 {
                return seen;
            }
            seen.extend_from_slice(&buf[..read]);
            if seen.ends_with(b"EHLO client.example.test\r\n") {
                far.write_all(b"250 hi\r\n").await.unwrap();
            }
            if seen.ends_with(b"QUIT\r\n") {
                far.write_all(b"221 bye\r\n").await.unwrap();
            }
        }
    });

    let client = Client::connect_with(stream, "mock.example.test", options(TlsPolicy::None))
        .await
        .unwrap();
    client.quit().await.unwrap();

    let seen = script.await.unwrap();
    assert_eq!(seen, b"EHLO client.example.test\r\nQUIT\r\n");
}
