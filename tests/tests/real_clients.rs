//! Real SMTP clients deliver to the embedded server of `smtp-blocking`: swaks, Python's smtplib,
//! curl and msmtp send over STARTTLS with AUTH, and Postfix relays a message to it.
//!
//! Each stored message is compared byte for byte with what the client was given. Where a
//! client changes the message in a known way, the test names the change and expects it: swaks
//! 20201014 and curl 7.88 add CRLF to a message that does not end in CRLF.
//! `tests/servers/clients.sh install` installs the clients.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_blocking::server::{Delivery, RunningServer, Server};
use smtp_blocking::{Client, Options};
use smtp_interop::{postfix, strip_prepended_headers, unique_token};
use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::{Mailbox, ReversePath};

const USER: &str = "alice";
const PASSWORD: &str = "looking-glass-4";
/// How long a client process may run, and how long Postfix may take to relay.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// An embedded server on 127.0.0.1 with the test user and STARTTLS, whose deliveries are
/// collected.
struct Embedded {
    server: RunningServer,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Embedded {
    /// Starts the server on `port`, or on a free port for 0; with `require_auth`, MAIL is
    /// rejected until the client authenticated.
    fn start(label: &str, port: u16, require_auth: bool) -> Self {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let collected = deliveries.clone();
        let mut server = Server::new(temporary_path(label));
        server
            .listen(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
            .user(USER, PASSWORD)
            .on_delivery(move |delivery| collected.lock().unwrap().push(delivery.clone()));
        server.session_config().require_auth = require_auth;

        Self {
            server: server.start().unwrap(),
            deliveries,
        }
    }

    /// Starts the server on a free port, with MAIL rejected until the client authenticated.
    fn start_requiring_auth(label: &str) -> Self {
        Self::start(label, 0, true)
    }

    fn port(&self) -> String {
        self.server.local_addr().port().to_string()
    }

    fn ca_file(&self) -> String {
        self.server.ca_file().unwrap().display().to_string()
    }

    /// Waits for the first stored message and returns it with its content.
    fn wait_for_delivery(&self) -> (Delivery, Vec<u8>) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            if let Some(delivery) = self.deliveries.lock().unwrap().first().cloned() {
                let content = std::fs::read(&delivery.message_file).unwrap();
                return (delivery, content);
            }
            assert!(
                Instant::now() < deadline,
                "no message stored in {} after {CLIENT_TIMEOUT:?}",
                self.server.messages_folder().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Checks that exactly one message was stored, over TLS after AUTH as the test user, and
    /// returns it with its content and its envelope file.
    fn only_delivery(&self) -> (Delivery, Vec<u8>, String) {
        let deliveries = self.deliveries.lock().unwrap().clone();
        assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
        let delivery = deliveries.into_iter().next().unwrap();
        assert!(delivery.tls.is_some(), "not over TLS: {delivery:#?}");
        assert_eq!(delivery.authenticated.as_deref(), Some(USER));

        let content = std::fs::read(&delivery.message_file).unwrap();
        let envelope = std::fs::read_to_string(&delivery.envelope_file).unwrap();
        (delivery, content, envelope)
    }
}

/// Returns a path under the target's temporary folder that no other test uses.
fn temporary_path(label: &str) -> PathBuf {
    static PATHS: AtomicUsize = AtomicUsize::new(0);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "real-clients-{label}-{}-{}",
        std::process::id(),
        PATHS.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `contents` to a new file and returns its path as a string.
fn temporary_file(label: &str, contents: &[u8]) -> String {
    let path = temporary_path(label);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// Runs `program` with `args` and `stdin`, and returns its output once it succeeded.
///
/// # Panics
///
/// When the program is missing, fails, or runs longer than [`CLIENT_TIMEOUT`].
fn run_client(program: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run {program}: {error}; run `bash tests/servers/clients.sh install`")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();

    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs swaks over STARTTLS, checking the certificate, with AUTH `mechanism` and every command
/// group pipelined, and returns what it printed.
fn swaks(embedded: &Embedded, mechanism: &str, data_file: &str) -> Output {
    let port = embedded.port();
    let ca_file = embedded.ca_file();
    run_client(
        "swaks",
        &[
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--ehlo",
            "swaks.example.test",
            "--from",
            "sender@example.test",
            "--to",
            "bob@example.test,carol@example.test",
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            &ca_file,
            "--auth",
            mechanism,
            "--auth-user",
            USER,
            "--auth-password",
            PASSWORD,
            "--pipeline",
            "--data",
            data_file,
        ],
        b"",
    )
}

#[test]
fn swaks_plain_pipelined_stored_exact() {
    swaks_delivers_with("PLAIN");
}

#[test]
fn swaks_login_pipelined_stored_exact() {
    swaks_delivers_with("LOGIN");
}

fn swaks_delivers_with(mechanism: &str) {
    let embedded = Embedded::start_requiring_auth("swaks");
    // No CRLF at the end: swaks sends CRLF . CRLF right after the file's last octet, so a file
    // ending in CRLF would arrive with an empty line added.
    let message = b"From: sender@example.test\r\nSubject: swaks 50% off\r\n\r\nHello.\r\n.A dot line\r\nLast line";
    let data_file = temporary_file("swaks-data", message);

    let output = swaks(&embedded, mechanism, &data_file);

    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(&format!(" ~> AUTH {mechanism}")),
        "{printed}"
    );
    // Pipelined: DATA went out before the reply to MAIL came back.
    let data_sent = printed.find(" ~> DATA").unwrap();
    let mail_answered = printed.find("<~  250 2.1.0 Sender OK").unwrap();
    assert!(data_sent < mail_answered, "not pipelined:\n{printed}");
    let (delivery, content, envelope) = embedded.only_delivery();
    let mut expected = message.to_vec();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&content),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(content, expected);
    assert_eq!(delivery.recipients.len(), 2);
    assert!(
        envelope.contains("helo: swaks.example.test\n"),
        "{envelope}"
    );
}

#[test]
fn smtplib_cram_md5_smtputf8_stored_exact() {
    let embedded = Embedded::start_requiring_auth("smtplib");
    let message = "From: Jörg <jörg@example.test>\r\nTo: zoë@example.test\r\nSubject: grüße\r\n\r\n\
                   Unicode body: ünïcödé.\r\n.A dot line\r\n";
    let message_file = temporary_file("smtplib-data", message.as_bytes());
    let script = r#"
import smtplib, ssl, sys
port, ca_file, user, password, message_file = sys.argv[1:]
with open(message_file, "rb") as f:
    message = f.read()
context = ssl.create_default_context(cafile=ca_file)
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="smtplib.example.test", timeout=30) as smtp:
    smtp.starttls(context=context)
    smtp.ehlo("smtplib.example.test")
    smtp.user, smtp.password = user, password
    smtp.auth("CRAM-MD5", smtp.auth_cram_md5)
    refused = smtp.sendmail("jörg@example.test", ["zoë@example.test"], message,
                            mail_options=["SMTPUTF8"])
    assert not refused, refused
"#;

    run_client(
        "python3",
        &[
            "-c",
            script,
            &embedded.port(),
            &embedded.ca_file(),
            USER,
            PASSWORD,
            &message_file,
        ],
        b"",
    );

    let (delivery, content, envelope) = embedded.only_delivery();
    assert_eq!(String::from_utf8_lossy(&content), message);
    assert_eq!(content, message.as_bytes());
    assert_eq!(delivery.reverse_path.to_string(), "jörg@example.test");
    assert_eq!(delivery.recipients[0].to_string(), "zoë@example.test");
    // smtplib declares the message size too.
    let mail_from = format!(
        "mail-from: <jörg@example.test> SIZE={} SMTPUTF8\n",
        message.len()
    );
    assert!(envelope.contains(&mail_from), "{envelope}");
}

#[test]
fn curl_plain_stored_exact() {
    let embedded = Embedded::start_requiring_auth("curl");
    let message = b"From: sender@example.test\r\nSubject: curl\r\n\r\nHello.\r\n.A dot line\r\n..Two dots\r\n";
    let data_file = temporary_file("curl-data", message);
    let url = format!("smtp://127.0.0.1:{}/curl.example.test", embedded.port());
    let user = format!("{USER}:{PASSWORD}");

    run_client(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--ssl-reqd",
            "--cacert",
            &embedded.ca_file(),
            &url,
            "--mail-from",
            "sender@example.test",
            "--mail-rcpt",
            "bob@example.test",
            "--mail-rcpt",
            "carol@example.test",
            "--user",
            &user,
            "--login-options",
            "AUTH=PLAIN",
            "--upload-file",
            &data_file,
        ],
        b"",
    );

    let (delivery, content, envelope) = embedded.only_delivery();
    assert_eq!(
        String::from_utf8_lossy(&content),
        String::from_utf8_lossy(message)
    );
    assert_eq!(content, message);
    assert_eq!(delivery.recipients.len(), 2);
    // curl declares the size of the uploaded file.
    assert!(
        envelope.contains(&format!(
            "mail-from: <sender@example.test> SIZE={}\n",
            message.len()
        )),
        "{envelope}"
    );
    assert!(envelope.contains("helo: curl.example.test\n"), "{envelope}");
}

#[test]
fn msmtp_login_stored_exact() {
    let embedded = Embedded::start_requiring_auth("msmtp");
    // From, Date and Message-ID are present, so msmtp adds none of them.
    let message = b"From: sender@example.test\r\nTo: bob@example.test\r\n\
                    Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\
                    Message-ID: <msmtp-test@example.test>\r\nSubject: msmtp\r\n\r\n\
                    Hello.\r\n.A dot line\r\n";
    let config = format!(
        "account test\nhost 127.0.0.1\nport {}\ndomain msmtp.example.test\ntls on\n\
         tls_starttls on\ntls_trust_file {}\nauth login\nuser {USER}\npassword {PASSWORD}\n\
         from sender@example.test\n",
        embedded.port(),
        embedded.ca_file()
    );
    let config_file = temporary_file("msmtprc", config.as_bytes());
    // msmtp reads no configuration file that others may read, since it contains the password.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let permissions = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(&config_file, permissions).unwrap();
    }

    run_client(
        "msmtp",
        &[
            "--file",
            &config_file,
            "--account",
            "test",
            "bob@example.test",
            "carol@example.test",
        ],
        message,
    );

    let (delivery, content, envelope) = embedded.only_delivery();
    assert_eq!(
        String::from_utf8_lossy(&content),
        String::from_utf8_lossy(message)
    );
    assert_eq!(content, message);
    assert_eq!(delivery.recipients.len(), 2);
    assert!(
        envelope.contains("helo: msmtp.example.test\n"),
        "{envelope}"
    );
}

#[test]
fn postfix_relays_to_embedded_server() {
    let postfix = postfix();
    let embedded = Embedded::start("relay", postfix.relay_port, false);
    let token = unique_token("relay");
    let message = format!(
        "From: sender@example.test\r\nSubject: relayed {token}\r\n\r\nHello through Postfix.\r\n\
         .A dot line\r\n"
    );
    let recipient = format!("someone@{}", postfix.relay_domain);

    let mut options = Options::default();
    options.session.tls = TlsPolicy::None;
    let mut client =
        Client::connect(&format!("127.0.0.1:{}", postfix.plain_port), options).unwrap();
    let envelope = Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        vec![Mailbox::parse(&recipient).unwrap()],
    )
    .unwrap();
    client.send(envelope, message.clone()).unwrap();
    client.quit().unwrap();

    let (delivery, content) = embedded.wait_for_delivery();
    // Postfix prepends its Received header and leaves the rest as the client sent it.
    assert!(
        content.starts_with(b"Received: "),
        "{}",
        String::from_utf8_lossy(&content)
    );
    assert_eq!(
        String::from_utf8_lossy(strip_prepended_headers(&content)),
        message
    );
    assert_eq!(delivery.recipients[0].to_string(), recipient);
    assert_eq!(delivery.reverse_path.to_string(), "sender@example.test");
    assert!(
        delivery.tls.is_some(),
        "Postfix did not use STARTTLS: {delivery:#?}"
    );
}
