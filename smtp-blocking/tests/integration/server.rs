//! The embedded server against the blocking client: TLS, AUTH, the stored files and stop.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::server::{Delivery, RunningServer, Server};
use smtp_blocking::{Client, Options, Roots};
use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::server::TlsMode;
use smtp_proto::{Credentials, Mailbox, Mechanism, ReversePath};

const USER: &str = "alice";
const PASSWORD: &str = "wonderland-3";
const MESSAGE: &[u8] =
    b"From: a@example.test\r\nSubject: embedded\r\n\r\nHello.\r\n.A dot line\r\n";

/// Returns a fresh folder under the target's temporary folder.
fn folder(label: &str) -> PathBuf {
    static FOLDERS: AtomicUsize = AtomicUsize::new(0);
    let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "embedded-{label}-{}-{}",
        std::process::id(),
        FOLDERS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ignored = std::fs::remove_dir_all(&folder);
    folder
}

/// Starts a server with the test user whose deliveries are collected.
fn start(label: &str, tls: TlsMode) -> (RunningServer, Arc<Mutex<Vec<Delivery>>>) {
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let collected = deliveries.clone();
    let mut server = Server::new(folder(label));
    server
        .user(USER, PASSWORD)
        .tls(tls)
        .on_delivery(move |delivery| collected.lock().unwrap().push(delivery.clone()));
    (server.start().unwrap(), deliveries)
}

fn options(server: &RunningServer, policy: TlsPolicy) -> Options {
    let mut options = Options::default();
    options.session.tls = policy;
    options.session.credentials = Some(Credentials::password(USER, PASSWORD));
    options.session.timeouts = smtp_proto::Timeouts::uniform(Duration::from_secs(10));
    if let Some(ca_file) = server.ca_file() {
        options.roots = Roots::CaFile(ca_file.to_owned());
    }
    options
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        recipients
            .iter()
            .map(|recipient| Mailbox::parse(recipient).unwrap())
            .collect(),
    )
    .unwrap()
}

/// Returns the id at the end of a `250 2.0.0 Stored as ID` reply.
fn stored_id(reply_text: &str) -> String {
    reply_text.rsplit(' ').next().unwrap().to_owned()
}

fn message_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn starttls_auth_message_stored_exact() {
    for mechanism in [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5] {
        let (server, deliveries) = start("starttls", TlsMode::StartTls);
        let mut options = options(&server, TlsPolicy::Required);
        options.session.mechanism = Some(mechanism.clone());
        let name = mechanism.name();

        let mut client = Client::connect(&server.local_addr().to_string(), options).unwrap();
        let delivery = client
            .send(
                envelope(&["bob@example.test", "carol@example.test"]),
                MESSAGE,
            )
            .unwrap();
        client.quit().unwrap();

        let id = stored_id(delivery.reply().text().as_ref());
        let stored = std::fs::read(server.messages_folder().join(format!("{id}.eml"))).unwrap();
        assert_eq!(stored, MESSAGE, "{name}");
        let envelope =
            std::fs::read_to_string(server.messages_folder().join(format!("{id}.envelope")))
                .unwrap();
        for line in [
            "auth: alice\n",
            "mail-from: <sender@example.test>",
            "rcpt-to: <bob@example.test>\n",
            "rcpt-to: <carol@example.test>\n",
            "tls: TLS1.3",
            "helo: ",
        ] {
            assert!(
                envelope.contains(line),
                "{name}: {line:?} not in {envelope}"
            );
        }
        assert!(
            envelope.contains(&format!("size: {}\n", MESSAGE.len())),
            "{name}: {envelope}"
        );

        let deliveries = deliveries.lock().unwrap();
        assert_eq!(deliveries.len(), 1, "{name}");
        assert_eq!(deliveries[0].id, id, "{name}");
        assert_eq!(deliveries[0].authenticated.as_deref(), Some(USER), "{name}");
        assert!(deliveries[0].tls.is_some(), "{name}");
        assert_eq!(deliveries[0].recipients.len(), 2, "{name}");
        server.stop();
    }
}

#[test]
fn implicit_tls_message_stored_exact() {
    let (server, deliveries) = start("implicit", TlsMode::Implicit);

    let options = options(&server, TlsPolicy::Wrapper);
    let mut client = Client::connect(&server.local_addr().to_string(), options).unwrap();
    assert!(client.is_encrypted());
    client
        .send(envelope(&["bob@example.test"]), MESSAGE)
        .unwrap();
    client.quit().unwrap();

    let deliveries = deliveries.lock().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(std::fs::read(&deliveries[0].message_file).unwrap(), MESSAGE);
}

#[test]
fn binary_message_over_bdat_stored_exact() {
    let (server, deliveries) = start("bdat", TlsMode::StartTls);
    let message: Vec<u8> = b"Subject: binary\r\n\r\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(5000))
        .collect();

    let mut client = Client::connect(
        &server.local_addr().to_string(),
        options(&server, TlsPolicy::Required),
    )
    .unwrap();
    client
        .send(envelope(&["bob@example.test"]), message.clone())
        .unwrap();
    client.quit().unwrap();

    let deliveries = deliveries.lock().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(std::fs::read(&deliveries[0].message_file).unwrap(), message);
    let envelope = std::fs::read_to_string(&deliveries[0].envelope_file).unwrap();
    assert!(envelope.contains("BODY=BINARYMIME"), "{envelope}");
}

#[test]
fn requiretls_message_stored_with_parameter() {
    let (server, deliveries) = start("requiretls", TlsMode::StartTls);
    let message = b"Subject: requiretls\r\n\r\nonly over TLS\r\n".to_vec();

    let mut client = Client::connect(
        &server.local_addr().to_string(),
        options(&server, TlsPolicy::Required),
    )
    .unwrap();
    assert!(client.capabilities().has(smtp_proto::Extension::RequireTls));
    client
        .send(
            envelope(&["bob@example.test"]).with_require_tls(),
            message.clone(),
        )
        .unwrap();
    client.quit().unwrap();

    let deliveries = deliveries.lock().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(std::fs::read(&deliveries[0].message_file).unwrap(), message);
    let envelope = std::fs::read_to_string(&deliveries[0].envelope_file).unwrap();
    assert!(envelope.contains("REQUIRETLS"), "{envelope}");
}

#[test]
fn wrong_password_rejected_nothing_stored() {
    let (server, _deliveries) = start("wrong-password", TlsMode::StartTls);
    let mut options = options(&server, TlsPolicy::Required);
    options.session.credentials = Some(Credentials::password(USER, "not-the-password"));

    let result = Client::connect(&server.local_addr().to_string(), options);

    let error = result.unwrap_err();
    let reply = error
        .smtp()
        .and_then(|error| error.reply())
        .map(ToString::to_string);
    assert_eq!(
        reply.as_deref(),
        Some("535 5.7.8 Authentication credentials invalid"),
        "{error}"
    );
    assert!(message_files(server.messages_folder()).is_empty());
}

#[test]
fn generated_certificate_files_load_again() {
    let (first, _deliveries) = start("first", TlsMode::StartTls);
    let ca_file = first.ca_file().unwrap().to_owned();
    let mut second = Server::new(folder("second"));
    second.user(USER, PASSWORD).certificate_files(
        first.folder().join("server.pem"),
        first.folder().join("server.key"),
    );
    let second = second.start().unwrap();

    assert_eq!(second.ca_file(), None);
    let mut options = options(&second, TlsPolicy::Required);
    options.roots = Roots::CaFile(ca_file);
    let client = Client::connect(&second.local_addr().to_string(), options).unwrap();
    assert!(client.is_encrypted());
    client.quit().unwrap();
}

#[test]
fn missing_certificate_file_named() {
    let mut server = Server::new(folder("missing-cert"));
    server.certificate_files("/nonexistent/chain.pem", "/nonexistent/key.pem");

    let error = server.start().unwrap_err();

    assert!(
        error.to_string().contains("/nonexistent/chain.pem"),
        "{error}"
    );
}

#[test]
fn stop_closes_open_connections() {
    let (server, _deliveries) = start("stop", TlsMode::Unavailable);
    let mut tcp = TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = [0; 512];
    let read = tcp.read(&mut greeting).unwrap();
    assert!(greeting[..read].starts_with(b"220 "));

    server.stop();

    let mut rest = Vec::new();
    let read = tcp.read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the connection stayed open: {read:?} {rest:?}"
    );
}

#[test]
fn injected_after_starttls_not_executed() {
    let (server, deliveries) = start("injection", TlsMode::StartTls);
    let mut tcp = TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    // STARTTLS with a whole transaction behind it in one write, as an attacker on the path
    // would append it.
    let mut received = Vec::new();
    read_until(&mut tcp, &mut received, b"220 ");
    tcp.write_all(b"EHLO client.example.test\r\n").unwrap();
    read_until(&mut tcp, &mut received, b"250 ");
    tcp.write_all(
        b"STARTTLS\r\nMAIL FROM:<evil@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
    )
    .unwrap();
    read_until(&mut tcp, &mut received, b"220 2.0.0");
    std::thread::sleep(Duration::from_millis(200));
    tcp.set_nonblocking(true).unwrap();
    let mut after = [0; 512];
    let extra = tcp.read(&mut after);

    assert!(
        !matches!(extra, Ok(read) if read > 0),
        "the server answered injected commands: {:?}",
        extra.map(|read| String::from_utf8_lossy(&after[..read]).into_owned())
    );
    assert!(deliveries.lock().unwrap().is_empty());
}

/// Reads into `received` until it contains `needle`.
fn read_until(tcp: &mut TcpStream, received: &mut Vec<u8>, needle: &[u8]) {
    let mut buffer = [0; 1024];
    while !received
        .windows(needle.len())
        .any(|window| window == needle)
    {
        let read = tcp.read(&mut buffer).unwrap();
        assert!(read > 0, "the connection closed after {received:?}");
        received.extend_from_slice(&buffer[..read]);
    }
}
