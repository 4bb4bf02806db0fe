//! smtp-tokio's client and pool against aiosmtpd on loopback. aiosmtpd offers no PIPELINING, so
//! every command waits for its reply. The tests: a batch of 1000 messages over 8 pooled
//! connections, a 421 on a connection the server keeps open, cancellation in the middle of DATA
//! over TLS, and the TLS policies aiosmtpd supports.

mod tokio_support;

use smtp_interop::{Aiosmtpd, CLOSING_RECIPIENT, aiosmtpd, unique_token};
use smtp_proto::Credentials;
use smtp_proto::client::{Error as SessionError, Stage, TlsPolicy};
use smtp_tokio::{Client, Options, Pool, PoolOptions};
use tokio_support::{
    DELIVERY_TIMEOUT, batch_message, cancel_mid_data, envelope, envelope_to, options, send_batch,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_messages_over_eight_connections() {
    let server = aiosmtpd();
    let batch = unique_token("pool1000");
    let mut limits = PoolOptions::default();
    limits.max_connections = 8;
    limits.max_messages_per_connection = 1000;
    let pool = Pool::new(&address(server), authenticated(server), limits).unwrap();

    // aiosmtpd rejects lines longer than 1001 octets with their CRLF, so no 990-octet line.
    let (sent, elapsed) = send_batch(&pool, &batch, 1000, false).await;
    let status = pool.status();
    pool.close().await;

    eprintln!("1000 messages through 8 pooled connections to aiosmtpd in {elapsed:?}");
    assert_eq!(status.opened, 8);
    let mut arrived = server.wait_for_messages(batch.as_bytes(), 1000, DELIVERY_TIMEOUT);
    arrived.sort();
    assert_eq!(arrived.len(), 1000);
    assert!(
        arrived == sent,
        "a stored message differs from the one sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connection_answered_421_is_never_reused() {
    let server = aiosmtpd();
    let token = unique_token("open-421");
    let mut limits = PoolOptions::default();
    limits.max_connections = 1;
    let pool = Pool::new(&address(server), authenticated(server), limits).unwrap();
    let closing = envelope_to(CLOSING_RECIPIENT);

    pool.send(envelope("before"), batch_message(&token, 0, false))
        .await
        .unwrap();
    let error = pool
        .send(closing, batch_message(&token, 1, false))
        .await
        .unwrap_err();
    let opened_after_421 = pool.status().opened;
    pool.send(envelope("after"), batch_message(&token, 2, false))
        .await
        .unwrap();

    assert!(
        matches!(error.smtp(), Some(SessionError::ServiceClosing { reply }) if reply.code().value() == 421),
        "{error}"
    );
    // aiosmtpd keeps the connection open after its 421, yet the pool closes it: the retry on a
    // new connection gets 421 as well, and the next send needs a third connection.
    assert_eq!(opened_after_421, 2);
    assert_eq!(pool.status().opened, 3);
    let stored = server.wait_for_messages(token.as_bytes(), 2, DELIVERY_TIMEOUT);
    assert_eq!(stored.len(), 2);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_mid_data_over_tls_closes_connection() {
    let server = aiosmtpd();
    let token = unique_token("cancel-tls");

    let cancelled =
        cancel_mid_data(server.port, authenticated(server), &token, 2 * 1024 * 1024).await;

    assert_eq!(
        cancelled.open_after_drop, 0,
        "the dropped send left its connection open"
    );
    assert_eq!(cancelled.pool.status().opened, 2);
    let needle = format!("{token} message 1");
    assert_eq!(
        server.wait_for_message(needle.as_bytes(), DELIVERY_TIMEOUT),
        cancelled.after
    );
    assert_eq!(
        server.count_messages(token.as_bytes()),
        1,
        "only the later message arrived"
    );
    cancelled.pool.close().await;
}

#[tokio::test]
async fn starttls_policies_encrypt() {
    let server = aiosmtpd();
    for tls in [TlsPolicy::Required, TlsPolicy::Opportunistic] {
        let token = unique_token(&format!("tls-{tls:?}"));
        let message = batch_message(&token, 0, false);
        let mut options = options(&server.ca_file, tls);
        options.session.credentials = Some(password(server));

        let mut client = Client::connect(&address(server), options).await.unwrap();
        assert!(client.is_encrypted(), "{tls:?}");
        client.send(envelope("tls"), message.clone()).await.unwrap();
        client.quit().await.unwrap();

        let delivery = server.wait_for_delivery(token.as_bytes(), DELIVERY_TIMEOUT);
        assert_eq!(delivery.message, message, "{tls:?}");
        assert!(delivery.envelope.tls.is_some(), "{tls:?}");
    }
}

#[tokio::test]
async fn no_tls_policy_sends_no_starttls() {
    let server = aiosmtpd();
    let mut client = Client::connect(&address(server), options(&server.ca_file, TlsPolicy::None))
        .await
        .unwrap();

    let error = client
        .send(envelope("plain"), batch_message("plain", 0, false))
        .await
        .unwrap_err();

    assert!(!client.is_encrypted());
    // aiosmtpd takes MAIL only after AUTH, and offers AUTH only over TLS.
    match error.smtp() {
        Some(SessionError::Rejected { stage, reply }) => {
            assert_eq!(*stage, Stage::Mail);
            assert_eq!(reply.code().value(), 530);
        }
        other => panic!("expected MAIL to be rejected with 530, got {other:?}"),
    }
}

fn address(server: &Aiosmtpd) -> String {
    format!("127.0.0.1:{}", server.port)
}

fn authenticated(server: &Aiosmtpd) -> Options {
    let mut options = options(&server.ca_file, TlsPolicy::Required);
    options.session.credentials = Some(password(server));
    options
}

fn password(server: &Aiosmtpd) -> Credentials {
    Credentials::password(&server.user, &server.password)
}
