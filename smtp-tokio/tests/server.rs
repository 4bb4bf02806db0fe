//! The smtp-tokio client and pool delivering to the tokio embedded server over loopback.
#![cfg(feature = "server")]
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::server::TlsMode;
use smtp_proto::{Credentials, Mailbox, Mechanism, ReversePath};
use smtp_tokio::server::{Delivery, RunningServer, Server};
use smtp_tokio::{Client, Options, Pool, PoolOptions, Roots};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;

/// Returns a fresh folder under the temporary directory.
fn temp_folder(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "smtp-tokio-server-{label}-{}-{number}",
        std::process::id()
    ))
}

/// Returns client options that trust the server's CA and log in as alice.
fn client_options(running: &RunningServer, tls: TlsPolicy, mechanism: Mechanism) -> Options {
    let mut options = Options::default();
    options.session.tls = tls;
    options.roots = Roots::CaFile(running.ca_file().unwrap().into());
    options.session.credentials = Some(Credentials::password("alice", "wonderland"));
    options.session.mechanism = Some(mechanism);
    options
}

fn envelope(recipient: &str) -> Envelope {
    Envelope::new(
        ReversePath::parse("alice@example.test").unwrap(),
        vec![Mailbox::parse(recipient).unwrap()],
    )
    .unwrap()
}

/// Starts a server with user alice; returns it, its delivery channel and its folder.
async fn start(label: &str, tls: TlsMode) -> (RunningServer, UnboundedReceiver<Delivery>, PathBuf) {
    let folder = temp_folder(label);
    let mut server = Server::new(&folder);
    server.user("alice", "wonderland").tls(tls);
    let deliveries = server.deliveries();
    let running = server.start().await.unwrap();
    (running, deliveries, folder)
}

fn stored_files(messages: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(messages)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Connects with `tls` and `mechanism`, sends `body` to `recipient`, quits, and returns the
/// server's report of the stored message.
async fn deliver(
    running: &RunningServer,
    deliveries: &mut UnboundedReceiver<Delivery>,
    (tls, mechanism): (TlsPolicy, Mechanism),
    recipient: &str,
    body: Vec<u8>,
) -> Delivery {
    let options = client_options(running, tls, mechanism);
    let mut client = Client::connect(&running.local_addr().to_string(), options)
        .await
        .unwrap();

    client.send(envelope(recipient), body).await.unwrap();
    client.quit().await.unwrap();

    deliveries.recv().await.unwrap()
}

#[tokio::test]
async fn starttls_with_each_mechanism() {
    let (running, mut deliveries, folder) = start("starttls", TlsMode::StartTls).await;

    for mechanism in [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5] {
        let label = mechanism.name().to_owned();
        let body = format!("Subject: {label}\r\n\r\n.leading dot\r\n");
        let login = (TlsPolicy::Required, mechanism);

        let delivery = deliver(
            &running,
            &mut deliveries,
            login,
            "bob@example.test",
            body.clone().into(),
        )
        .await;

        assert_eq!(
            std::fs::read(&delivery.message_file).unwrap(),
            body.as_bytes(),
            "{label}"
        );
        assert_eq!(delivery.authenticated.as_deref(), Some("alice"), "{label}");
        assert!(delivery.tls.is_some(), "{label}");
        let envelope = std::fs::read_to_string(&delivery.envelope_file).unwrap();
        assert!(envelope.contains("auth: alice\n"), "{label}: {envelope}");
        assert!(
            envelope.contains("rcpt-to: <bob@example.test>\n"),
            "{label}: {envelope}"
        );
        assert!(!envelope.contains("tls: none"), "{label}: {envelope}");
    }

    running.stop().await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn wrong_password_is_rejected() {
    let (running, _deliveries, folder) = start("wrong-password", TlsMode::StartTls).await;
    let mut options = client_options(&running, TlsPolicy::Required, Mechanism::Plain);
    options.session.credentials = Some(Credentials::password("alice", "looking-glass"));

    let result = Client::connect(&running.local_addr().to_string(), options).await;

    let Err(error) = result else {
        panic!("AUTH with a wrong password succeeded");
    };
    assert!(error.is_permanent(), "{error}");
    running.stop().await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let (running, mut deliveries, folder) = start("implicit", TlsMode::Implicit).await;
    let body = b"Subject: wrapped\r\n\r\nHi.\r\n".to_vec();
    let login = (TlsPolicy::Wrapper, Mechanism::Plain);

    let delivery = deliver(&running, &mut deliveries, login, "carol@example.test", body).await;

    assert_eq!(
        std::fs::read(&delivery.message_file).unwrap(),
        b"Subject: wrapped\r\n\r\nHi.\r\n"
    );
    assert!(delivery.tls.is_some());
    running.stop().await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn bdat_binary_stored_exactly() {
    let (running, mut deliveries, folder) = start("binary", TlsMode::StartTls).await;
    let mut body = b"Content-Type: application/octet-stream\r\n\r\n".to_vec();
    body.extend((0..=255u8).cycle().take(70_000));
    body.extend_from_slice(b"\r\n.\r\nbare\nlf and bare\rcr");

    let login = (TlsPolicy::Required, Mechanism::Plain);

    let delivery = deliver(
        &running,
        &mut deliveries,
        login,
        "dave@example.test",
        body.clone(),
    )
    .await;
    assert_eq!(std::fs::read(&delivery.message_file).unwrap(), body);
    assert_eq!(delivery.size, body.len() as u64);
    let envelope = std::fs::read_to_string(&delivery.envelope_file).unwrap();
    assert!(envelope.contains("BODY=BINARYMIME"), "{envelope}");
    running.stop().await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_delivers_200_messages() {
    let (running, mut deliveries, folder) = start("pool", TlsMode::StartTls).await;
    let options = client_options(&running, TlsPolicy::Required, Mechanism::Plain);
    let mut pool_options = PoolOptions::default();
    pool_options.max_connections = 8;
    let pool =
        Arc::new(Pool::new(&running.local_addr().to_string(), options, pool_options).unwrap());

    let mut sends = tokio::task::JoinSet::new();
    for number in 0..200 {
        let pool = pool.clone();
        sends.spawn(async move {
            let recipient = format!("user{number}@example.test");
            let body = format!("Subject: message {number}\r\n\r\nBody of {number}.\r\n");
            pool.send(envelope(&recipient), body).await.unwrap();
        });
    }
    while let Some(result) = sends.join_next().await {
        result.unwrap();
    }
    pool.close().await;

    let mut seen = Vec::new();
    while let Ok(delivery) = deliveries.try_recv() {
        let recipient = delivery.recipients[0].to_string();
        let number: usize = recipient
            .trim_start_matches("user")
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let expected = format!("Subject: message {number}\r\n\r\nBody of {number}.\r\n");
        assert_eq!(
            std::fs::read(&delivery.message_file).unwrap(),
            expected.as_bytes()
        );
        seen.push(number);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    assert_eq!(stored_files(running.messages_folder()).len(), 400);
    running.stop().await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn stop_closes_open_connections() {
    let (running, _deliveries, folder) = start("stop", TlsMode::Unavailable).await;
    let address = running.local_addr();

    // One connection stays idle after EHLO, the other stops in the middle of DATA.
    let mut idle = BufReader::new(TcpStream::connect(address).await.unwrap());
    let mut in_data = BufReader::new(TcpStream::connect(address).await.unwrap());
    let mut line = String::new();
    idle.read_line(&mut line).await.unwrap();
    idle.get_mut()
        .write_all(b"EHLO idle.example.test\r\n")
        .await
        .unwrap();
    let commands = [
        "EHLO data.example.test\r\n",
        "MAIL FROM:<a@example.test>\r\n",
        "RCPT TO:<b@example.test>\r\n",
        "DATA\r\n",
    ];
    in_data.read_line(&mut line).await.unwrap();
    for command in commands {
        in_data
            .get_mut()
            .write_all(command.as_bytes())
            .await
            .unwrap();
        loop {
            line.clear();
            in_data.read_line(&mut line).await.unwrap();
            if line.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        }
    }
    assert!(line.starts_with("354"), "{line}");
    in_data
        .get_mut()
        .write_all(b"Subject: cut\r\n\r\npartial")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    tokio::time::timeout(Duration::from_secs(5), running.stop())
        .await
        .expect("stop returns while connections are open");

    for (label, connection) in [("idle", &mut idle), ("in DATA", &mut in_data)] {
        let mut rest = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(connection, &mut rest);
        let closed = tokio::time::timeout(Duration::from_secs(5), read).await;
        assert!(closed.is_ok(), "{label}: the server closed the connection");
    }
    assert!(stored_files(&folder.join("messages")).is_empty());
    assert!(
        TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
    std::fs::remove_dir_all(folder).unwrap();
}
