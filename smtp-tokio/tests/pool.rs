//! The pool against the scripted server over in-memory pipes: sharing and limits, checks before
//! reuse, retirement on 421 and 221, the retry of a stale connection, deadlines and
//! cancellation.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_proto::Domain;
use smtp_proto::client::{Error as SessionError, Stage, TlsPolicy};
use smtp_tokio::{ClientError, Error, Options, Pool, PoolOptions};
use support::{Action, MockServer, Turn, envelope, wait_until};
use tokio::task::JoinSet;

#[tokio::test]
async fn concurrent_sends_share_max_connections() {
    let server = MockServer::new();
    let pool = pool(&server, limits(3));

    let mut sends = JoinSet::new();
    for index in 0..30 {
        let pool = pool.clone();
        sends.spawn(async move { pool.send(envelope(), body(index)).await });
    }
    while let Some(result) = sends.join_next().await {
        result.unwrap().unwrap();
    }

    assert_eq!(server.connections().len(), 3);
    assert_eq!(pool.status().opened, 3);
    assert_eq!(pool.status().idle, 3);
    let mut received = server.messages();
    received.sort();
    let mut expected: Vec<Vec<u8>> = (0..30).map(body).collect();
    expected.sort();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn sequential_sends_reuse_one_connection() {
    let server = MockServer::new();
    let pool = pool(&server, limits(4));

    for index in 0..5 {
        pool.send(envelope(), body(index)).await.unwrap();
    }

    assert_eq!(server.connections().len(), 1);
    assert_eq!(server.messages().len(), 5);
}

#[tokio::test]
async fn connection_retired_after_max_messages() {
    let server = MockServer::new();
    let mut limits = limits(1);
    limits.max_messages_per_connection = 2;
    let pool = pool(&server, limits);

    for index in 0..5 {
        pool.send(envelope(), body(index)).await.unwrap();
    }
    wait_until(|| server.connections()[1].ended).await;

    let connections = server.connections();
    assert_eq!(connections.len(), 3);
    for connection in &connections[..2] {
        assert_eq!(connection.messages.len(), 2);
        assert_eq!(connection.commands.last().unwrap(), "QUIT");
    }
    assert_eq!(connections[2].messages.len(), 1);
}

#[tokio::test]
async fn stale_connection_421_is_retried_once() {
    let server = MockServer::with_script(|turn| match (turn.connection, turn.messages) {
        (0, 1) if turn.is("MAIL") => Action::reply(&["421 4.4.2 idle too long"]).and_close(),
        _ => Action::default_reply(),
    });
    let pool = pool(&server, limits(1));

    pool.send(envelope(), body(0)).await.unwrap();
    let delivery = pool.send(envelope(), body(1)).await.unwrap();

    assert_eq!(delivery.reply().code().value(), 250);
    let connections = server.connections();
    assert_eq!(connections.len(), 2);
    assert_eq!(connections[0].messages, [body(0)]);
    assert_eq!(connections[1].messages, [body(1)]);
}

#[tokio::test]
async fn stale_connection_eof_is_retried_once() {
    let server = MockServer::with_script(|turn| match (turn.connection, turn.messages) {
        (0, 1) if turn.is("MAIL") => Action::close(),
        _ => Action::default_reply(),
    });
    let pool = pool(&server, limits(1));

    pool.send(envelope(), body(0)).await.unwrap();
    pool.send(envelope(), body(1)).await.unwrap();

    let connections = server.connections();
    assert_eq!(connections.len(), 2);
    assert_eq!(connections[1].messages, [body(1)]);
}

#[tokio::test]
async fn lost_after_content_is_not_retried() {
    let server = MockServer::with_script(|turn| match (turn.connection, turn.messages) {
        (0, 1) if turn.line == "." => Action::close(),
        _ => Action::default_reply(),
    });
    let pool = pool(&server, limits(1));

    pool.send(envelope(), body(0)).await.unwrap();
    let error = pool.send(envelope(), body(1)).await.unwrap_err();

    assert_eq!(
        error.smtp(),
        Some(&SessionError::OutcomeUnknown { closed: true }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert_eq!(server.connections().len(), 1);
}

#[tokio::test]
async fn failure_on_new_connection_is_not_retried() {
    let server = MockServer::with_script(|turn| {
        if turn.is("MAIL") {
            Action::reply(&["421 4.3.2 not now"]).and_close()
        } else {
            Action::default_reply()
        }
    });
    let pool = pool(&server, limits(1));

    let error = pool.send(envelope(), body(0)).await.unwrap_err();

    assert!(
        matches!(error.smtp(), Some(SessionError::ServiceClosing { .. })),
        "{error}"
    );
    assert_eq!(server.connections().len(), 1);
}

#[tokio::test]
async fn retry_failure_is_returned() {
    // The first server fails its second transaction at MAIL, so the send goes to a new
    // connection, whose server fails it too: that connection carried nothing before, so the
    // send is not retried again.
    let first = MockServer::with_script(|turn| match turn.messages {
        1.. if turn.is("MAIL") => Action::reply(&["421 4.3.2 closing"]),
        _ => Action::default_reply(),
    });
    let later = MockServer::with_script(|turn| {
        if turn.is("MAIL") {
            Action::reply(&["421 4.3.2 closing"])
        } else {
            Action::default_reply()
        }
    });
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&opened);
    let pool = Pool::with_connector("mock.example.test", options(), limits(2), move || {
        let target = match counter.fetch_add(1, Ordering::Relaxed) {
            0 => first.clone(),
            _ => later.clone(),
        };
        async move { Ok::<_, io::Error>(target.connect()) }
    })
    .unwrap();
    pool.send(envelope(), body(0)).await.unwrap();

    let error = pool.send(envelope(), body(1)).await.unwrap_err();

    assert!(
        matches!(error.smtp(), Some(SessionError::ServiceClosing { .. })),
        "{error}"
    );
    assert_eq!(opened.load(Ordering::Relaxed), 2);
    assert_eq!(pool.status().open, 0);
}

#[tokio::test]
async fn unsolicited_421_while_idle_retires() {
    let server = MockServer::with_script(|turn| match (turn.connection, turn.line) {
        (0, ".") => {
            Action::default_reply().then_later(Duration::from_millis(20), "421 4.4.2 idle timeout")
        }
        _ => Action::default_reply(),
    });
    let pool = pool(&server, limits(1));

    pool.send(envelope(), body(0)).await.unwrap();
    wait_until(|| server.connections()[0].ended).await;
    pool.send(envelope(), body(1)).await.unwrap();

    let connections = server.connections();
    assert_eq!(connections.len(), 2);
    let mails = connections[0]
        .commands
        .iter()
        .filter(|command| command.starts_with("MAIL"))
        .count();
    assert_eq!(mails, 1, "{:?}", connections[0].commands);
    assert_eq!(connections[1].messages, [body(1)]);
}

#[tokio::test]
async fn noop_checks_connection_before_reuse() {
    let server = MockServer::new();
    let pool = pool(&server, checked_every_reuse());

    pool.send(envelope(), body(0)).await.unwrap();
    pool.send(envelope(), body(1)).await.unwrap();

    let connections = server.connections();
    assert_eq!(connections.len(), 1);
    let commands = &connections[0].commands;
    assert_eq!(commands[4], "NOOP", "{commands:?}");
    assert!(commands[5].starts_with("MAIL"), "{commands:?}");
}

#[tokio::test]
async fn noop_421_retires_open_connection() {
    noop_reply_retires("421 4.3.2 going away").await;
}

#[tokio::test]
async fn noop_221_retires_open_connection() {
    noop_reply_retires("221 2.0.0 closing").await;
}

#[tokio::test]
async fn failed_transaction_leaves_connection_usable() {
    let server = MockServer::rejecting_first_rcpt();
    let pool = pool(&server, limits(1));

    let error = pool.send(envelope(), body(0)).await.unwrap_err();
    pool.send(envelope(), body(1)).await.unwrap();

    assert!(error.is_permanent(), "{error}");
    let connections = server.connections();
    assert_eq!(connections.len(), 1);
    assert!(
        connections[0].commands.contains(&"RSET".to_owned()),
        "{:?}",
        connections[0].commands
    );
    assert_eq!(connections[0].messages, [body(1)]);
}

#[tokio::test(start_paused = true)]
async fn deadline_closes_connection_by_stage() {
    // (the line the server never answers, the stage the deadline finds, transient)
    let cases = [("DATA", Stage::Data, true), (".", Stage::EndOfData, false)];
    for (unanswered, stage, transient) in cases {
        let server = MockServer::with_script(move |turn| {
            if turn.is(unanswered) {
                Action::silent()
            } else {
                Action::default_reply()
            }
        });
        let pool = pool(&server, with_deadline(Duration::from_secs(5)));

        let error = pool.send(envelope(), body(0)).await.unwrap_err();

        assert!(
            matches!(error, Error::DeadlineExceeded { stage: Some(s), .. } if s == stage),
            "{unanswered}: {error}"
        );
        assert_eq!(error.is_transient(), transient, "{unanswered}");
        assert!(!error.is_permanent(), "{unanswered}");
        assert_eq!(pool.status().open, 0, "{unanswered}");
    }
}

#[tokio::test(start_paused = true)]
async fn deadline_while_connecting() {
    let server = MockServer::new();
    let pool = Pool::with_connector(
        "mock.example.test",
        options(),
        with_deadline(Duration::from_secs(5)),
        move || {
            let server = server.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<_, io::Error>(server.connect())
            }
        },
    )
    .unwrap();

    let error = pool.send(envelope(), body(0)).await.unwrap_err();

    assert!(
        matches!(error, Error::DeadlineExceeded { stage: None, .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "send deadline of 5s passed while waiting for a connection"
    );
    assert_eq!(pool.status().open, 0);
}

#[tokio::test]
async fn cancelled_mid_data_closes_connection() {
    let server = MockServer::with_script(|turn| match (turn.connection, turn.is("DATA")) {
        (0, true) => Action::default_reply().then_pause(Duration::from_millis(300)),
        _ => Action::default_reply(),
    });
    let pool = pool(&server, limits(1));
    let large = large_body();

    let cancelled =
        tokio::time::timeout(Duration::from_millis(100), pool.send(envelope(), large)).await;
    assert!(cancelled.is_err(), "the send must still be writing content");
    assert_eq!(pool.status().open, 0);
    pool.send(envelope(), body(1)).await.unwrap();
    wait_until(|| server.connections()[0].ended).await;

    let connections = server.connections();
    assert_eq!(connections.len(), 2);
    assert!(
        connections[0].ended_in_data,
        "{:?}",
        connections[0].commands
    );
    assert!(connections[0].messages.is_empty());
    assert_eq!(connections[1].messages, [body(1)]);
}

#[tokio::test(start_paused = true)]
async fn idle_connection_closed_after_max_idle_time() {
    let server = MockServer::new();
    let mut limits = limits(2);
    limits.max_idle_time = Duration::from_secs(30);
    let pool = pool(&server, limits);

    pool.send(envelope(), body(0)).await.unwrap();
    assert_eq!(pool.status().idle, 1);
    tokio::time::sleep(Duration::from_secs(31)).await;
    wait_until(|| server.connections()[0].ended).await;

    assert_eq!(server.connections()[0].commands.last().unwrap(), "QUIT");
    assert_eq!(pool.status().idle, 0);
    assert_eq!(pool.status().open, 0);
}

#[tokio::test]
async fn close_quits_idle_connections() {
    let server = MockServer::new();
    let pool = pool(&server, limits(2));
    pool.send(envelope(), body(0)).await.unwrap();

    pool.close().await;
    let after = pool.send(envelope(), body(1)).await;

    assert_eq!(server.connections()[0].commands.last().unwrap(), "QUIT");
    assert!(matches!(after, Err(Error::PoolClosed)), "{after:?}");
    assert_eq!(pool.status().open, 0);
}

#[tokio::test]
async fn connector_error_fails_the_send() {
    let pool = Pool::with_connector("proxy.example.test", options(), limits(1), || async {
        Err::<tokio::io::DuplexStream, _>(io::Error::other("proxy refused the tunnel"))
    })
    .unwrap();

    let error = pool.send(envelope(), body(0)).await.unwrap_err();

    assert!(
        matches!(
            error,
            Error::Client(ClientError::Connect { ref server, .. }) if server == "proxy.example.test"
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "failed to connect to proxy.example.test: proxy refused the tunnel"
    );
    assert_eq!(pool.status().open, 0);
}

#[test]
fn invalid_pool_options_are_rejected() {
    let mut limits = PoolOptions::default();
    limits.max_connections = 0;

    let result = Pool::new("127.0.0.1:2525", options(), limits);

    assert!(
        matches!(
            result,
            Err(Error::InvalidPoolOption {
                option: "max_connections",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn invalid_server_is_rejected_at_creation() {
    let result = Pool::new("mail.example.test:0", options(), PoolOptions::default());

    assert!(
        matches!(result, Err(Error::Client(ClientError::InvalidServer(_)))),
        "{result:?}"
    );
}

/// Sends two messages with a NOOP check before the second, whose reply is `reply`: the first
/// connection must be retired and the second message sent over a new one.
async fn noop_reply_retires(reply: &'static str) {
    let server = MockServer::with_script(move |turn: Turn<'_>| {
        if turn.connection == 0 && turn.is("NOOP") {
            Action::reply(&[reply])
        } else {
            Action::default_reply()
        }
    });
    let pool = pool(&server, checked_every_reuse());

    pool.send(envelope(), body(0)).await.unwrap();
    pool.send(envelope(), body(1)).await.unwrap();

    let connections = server.connections();
    assert_eq!(connections.len(), 2, "{reply}");
    assert!(
        connections[0].commands.contains(&"NOOP".to_owned()),
        "{reply}"
    );
    assert_eq!(connections[0].messages, [body(0)], "{reply}");
    assert_eq!(connections[1].messages, [body(1)], "{reply}");
}

fn pool(server: &MockServer, limits: PoolOptions) -> Pool {
    let server = server.clone();
    Pool::with_connector("mock.example.test", options(), limits, move || {
        let server = server.clone();
        async move { Ok::<_, io::Error>(server.connect()) }
    })
    .unwrap()
}

fn limits(max_connections: usize) -> PoolOptions {
    let mut limits = PoolOptions::default();
    limits.max_connections = max_connections;
    limits.noop_after_idle = Duration::from_secs(3600);
    limits
}

fn checked_every_reuse() -> PoolOptions {
    let mut limits = limits(1);
    limits.noop_after_idle = Duration::ZERO;
    limits
}

fn with_deadline(limit: Duration) -> PoolOptions {
    let mut limits = limits(1);
    limits.send_timeout = Some(limit);
    limits
}

fn options() -> Options {
    let mut options = Options::default();
    options.session.tls = TlsPolicy::None;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    options
}

fn body(index: usize) -> Vec<u8> {
    format!("Subject: message {index}\r\n\r\n.dot line {index}\r\nbody\r\n").into_bytes()
}

/// Builds a message far larger than the pipe between client and mock server.
fn large_body() -> Vec<u8> {
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        body.extend_from_slice(&[b'x'; 78]);
        body.extend_from_slice(b"\r\n");
    }
    body
}
