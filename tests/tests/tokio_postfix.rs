//! smtp-tokio's client and pool against the private Postfix instance on loopback: a batch of
//! 1000 messages over 8 pooled connections, idle connections the server drops, a 421 that
//! retires a connection, cancellation in the middle of DATA, and every TLS policy.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod tokio_support;

use std::time::Duration;

use smtp_interop::{CLOSING_RECIPIENT, Postfix, REJECTED_RECIPIENT, postfix, unique_token};
use smtp_proto::Credentials;
use smtp_proto::client::{Error as SessionError, TlsPolicy};
use smtp_tokio::{Client, ClientError, Error, Pool, PoolOptions, Roots};
use tokio_support::{
    DELIVERY_TIMEOUT, batch_message, cancel_mid_data, envelope, envelope_to, options, send_batch,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_messages_over_eight_connections() {
    let server = postfix();
    let batch = unique_token("pool1000");
    let mut options = options(&server.ca_file, TlsPolicy::Required);
    options.session.credentials = Some(credentials(server));
    let mut limits = PoolOptions::default();
    limits.max_connections = 8;
    limits.max_messages_per_connection = 1000;
    let pool = Pool::new(&submission(server), options, limits).unwrap();

    let (sent, elapsed) = send_batch(&pool, &batch, 1000, true).await;
    let status = pool.status();
    pool.close().await;

    eprintln!("1000 messages through 8 pooled connections to Postfix in {elapsed:?}");
    assert_eq!(status.opened, 8);
    let mut arrived: Vec<Vec<u8>> = server
        .wait_for_messages(batch.as_bytes(), 1000, DELIVERY_TIMEOUT)
        .iter()
        .map(|delivered| smtp_interop::message_as_sent(delivered))
        .collect();
    arrived.sort();
    assert_eq!(arrived.len(), 1000);
    assert!(
        arrived == sent,
        "a delivered message differs from the one sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dropping_idle_connections_fails_no_send() {
    let server = postfix();
    // Over STARTTLS the 421 arrives inside TLS, and in clear text outside it.
    let (required, none) = tokio::join!(
        send_across_idle_drop(server, TlsPolicy::Required),
        send_across_idle_drop(server, TlsPolicy::None),
    );

    for (label, opened) in [("required", required), ("none", none)] {
        assert_eq!(
            opened, 2,
            "{label}: the dropped connection must be replaced"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_answered_421_is_never_reused() {
    let server = postfix();
    let token = unique_token("after-421");
    let pool = Pool::new(
        &format!("127.0.0.1:{}", server.plain_port),
        options(&server.ca_file, TlsPolicy::None),
        one_connection(),
    )
    .unwrap();

    pool.send(envelope("before-421"), batch_message(&token, 0, false))
        .await
        .unwrap();
    let envelope_421 = envelope_to(CLOSING_RECIPIENT);
    let error = pool
        .send(envelope_421, batch_message(&token, 1, false))
        .await
        .unwrap_err();
    let opened_after_421 = pool.status().opened;
    pool.send(envelope("after-421"), batch_message(&token, 2, false))
        .await
        .unwrap();

    assert!(
        matches!(error.smtp(), Some(SessionError::ServiceClosing { reply }) if reply.code().value() == 421),
        "{error}"
    );
    assert!(error.is_transient());
    // The reused connection got 421, so the send was retried once on a new connection. That
    // one got 421 too, so the next send needs a third connection.
    assert_eq!(opened_after_421, 2);
    assert_eq!(pool.status().opened, 3);
    let delivered = server.wait_for_messages(token.as_bytes(), 2, DELIVERY_TIMEOUT);
    assert_eq!(delivered.len(), 2);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_mid_data_closes_connection() {
    cancel_mid_content(false, "lost connection after DATA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_mid_bdat_closes_connection() {
    cancel_mid_content(true, "lost connection after BDAT").await;
}

/// Drops a send while its content is going out, with DATA or with BDAT, and checks the
/// connection is closed, Postfix saw it end there, and only the next message arrived.
async fn cancel_mid_content(chunking: bool, log_line: &str) {
    let server = postfix();
    let token = unique_token(if chunking {
        "cancel-bdat"
    } else {
        "cancel-data"
    });
    let log_start = std::fs::metadata(&server.log_file).unwrap().len();
    let mut options = options(&server.ca_file, TlsPolicy::None);
    options.session.chunking = chunking;

    let cancelled = cancel_mid_data(server.plain_port, options, &token, 4 * 1024 * 1024).await;

    assert_eq!(
        cancelled.open_after_drop, 0,
        "the dropped send left its connection open"
    );
    assert_eq!(cancelled.pool.status().opened, 2);
    let needle = format!("{token} message 1");
    let arrived = server.wait_for_message_as_sent(needle.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(arrived, cancelled.after);
    wait_for_log(server, log_start, log_line).await;
    assert_eq!(
        server.count_messages(token.as_bytes()),
        1,
        "only the later message arrived"
    );
    cancelled.pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tls_policy_delivers() {
    let server = postfix();
    let cases = [
        ("none", TlsPolicy::None, server.plain_port, false, false),
        (
            "opportunistic with STARTTLS",
            TlsPolicy::Opportunistic,
            server.submission_port,
            true,
            true,
        ),
        (
            "opportunistic without STARTTLS",
            TlsPolicy::Opportunistic,
            server.plain_port,
            false,
            false,
        ),
        (
            "required",
            TlsPolicy::Required,
            server.submission_port,
            true,
            true,
        ),
        ("wrapper", TlsPolicy::Wrapper, server.smtps_port, true, true),
    ];

    for (label, tls, port, encrypted, authenticate) in cases {
        let token = unique_token(&format!("tls-{}", label.replace(' ', "-")));
        let mut options = options(&server.ca_file, tls);
        if authenticate {
            options.session.credentials = Some(credentials(server));
        }
        let message = batch_message(&token, 0, true);

        let mut client = Client::connect(&format!("127.0.0.1:{port}"), options)
            .await
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        assert_eq!(client.is_encrypted(), encrypted, "{label}");
        assert_eq!(client.tls_info().is_some(), encrypted, "{label}");
        client.send(envelope("tls"), message.clone()).await.unwrap();
        client.quit().await.unwrap();

        let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
        assert_eq!(arrived, message, "{label}");
    }
}

#[tokio::test]
async fn required_tls_without_starttls_fails_before_mail() {
    let server = postfix();
    let mut options = options(&server.ca_file, TlsPolicy::Required);
    options.session.credentials = Some(credentials(server));

    let result = Client::connect(&format!("127.0.0.1:{}", server.plain_port), options).await;

    let error = result.unwrap_err();
    assert_eq!(error.smtp(), Some(&SessionError::TlsNotOffered), "{error}");
    assert!(error.is_permanent());
}

#[tokio::test]
async fn certificate_from_unknown_ca_is_rejected() {
    let server = postfix();
    let mut options = options(&server.ca_file, TlsPolicy::Required);
    options.roots = Roots::WebPki;

    let result = Client::connect(&submission(server), options).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, Error::Client(ClientError::Tls(_))),
        "{error}"
    );
    assert!(error.is_permanent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_recipient_keeps_connection_pooled() {
    let server = postfix();
    let token = unique_token("after-reject");
    let pool = Pool::new(
        &format!("127.0.0.1:{}", server.plain_port),
        options(&server.ca_file, TlsPolicy::None),
        one_connection(),
    )
    .unwrap();
    let rejected = envelope_to(REJECTED_RECIPIENT);

    let error = pool
        .send(rejected, batch_message(&token, 0, false))
        .await
        .unwrap_err();
    let message = batch_message(&token, 1, false);
    pool.send(envelope("after-reject"), message.clone())
        .await
        .unwrap();

    assert!(
        matches!(error.smtp(), Some(SessionError::RecipientsRejected { .. })),
        "{error}"
    );
    assert!(error.is_permanent());
    assert_eq!(pool.status().opened, 1);
    let arrived = server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT);
    assert_eq!(arrived, message);
    pool.close().await;
}

/// Sends one message, lets the connection sit idle past the server's `smtpd_timeout` and sends
/// a second. Both messages must arrive; returns how many connections the pool opened.
async fn send_across_idle_drop(server: &Postfix, tls: TlsPolicy) -> u64 {
    let token = unique_token(&format!("idle-drop-{tls:?}"));
    let mut limits = one_connection();
    // The connection is read before reuse, so the 421 it got while idle retires it; no NOOP.
    limits.noop_after_idle = Duration::from_secs(3600);
    let pool = Pool::new(
        &format!("127.0.0.1:{}", server.short_timeout_port),
        options(&server.ca_file, tls),
        limits,
    )
    .unwrap();

    pool.send(envelope("idle-drop"), batch_message(&token, 0, false))
        .await
        .unwrap_or_else(|error| panic!("{tls:?}, first send: {error}"));
    tokio::time::sleep(server.short_timeout + Duration::from_millis(1500)).await;
    pool.send(envelope("idle-drop"), batch_message(&token, 1, false))
        .await
        .unwrap_or_else(|error| panic!("{tls:?}, send after the idle drop: {error}"));

    let delivered = server.wait_for_messages(token.as_bytes(), 2, DELIVERY_TIMEOUT);
    assert_eq!(delivered.len(), 2, "{tls:?}");
    let opened = pool.status().opened;
    pool.close().await;
    opened
}

/// Waits until Postfix's log, after its first `start` octets, contains `needle`.
async fn wait_for_log(server: &Postfix, start: u64, needle: &str) {
    for _ in 0..100 {
        let log = std::fs::read(&server.log_file).unwrap();
        let added = String::from_utf8_lossy(&log[start as usize..]);
        if added.contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} has no line with {needle:?} after 10 s",
        server.log_file.display()
    );
}

fn submission(server: &Postfix) -> String {
    format!("127.0.0.1:{}", server.submission_port)
}

fn one_connection() -> PoolOptions {
    let mut limits = PoolOptions::default();
    limits.max_connections = 1;
    limits
}

fn credentials(server: &Postfix) -> Credentials {
    Credentials::password(&server.user, &server.password)
}
