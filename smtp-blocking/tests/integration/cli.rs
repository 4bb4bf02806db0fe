//! The `smtp-send` binary against the scripted server: output, redaction and exit codes.

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{Pki, Server};

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const MESSAGE: &str = "Subject: cli test\r\n\r\nHello from smtp-send.\r\n";
const PASSWORD: &str = "s3cret-pass";
/// `\0user@example.test\0s3cret-pass` in base64, the AUTH PLAIN initial response.
const PLAIN_RESPONSE: &str = "AHVzZXJAZXhhbXBsZS50ZXN0AHMzY3JldC1wYXNz";

/// Writes `contents` to a fresh file under the target's temporary folder.
fn temporary_file(contents: &str) -> PathBuf {
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "smtp-send-{}-{}.txt",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, contents).unwrap();
    path
}

/// Runs `smtp-send` with `args` and a five-second timeout; unless `args` has --data, a file
/// with [`MESSAGE`] is the data.
fn smtp_send(server: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
    command.args([
        "--server",
        server,
        "--timeout",
        "5",
        "--helo",
        "client.example.test",
    ]);
    if !args.contains(&"--data") {
        command.arg("--data").arg(temporary_file(MESSAGE));
    }
    command
        .args(args)
        .env("SMTP_SEND_TEST_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A listener that must never see a connection: for runs that fail before connecting.
fn idle_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    (listener, address)
}

fn assert_no_connection(listener: &TcpListener) {
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(error) if error.kind() == io::ErrorKind::WouldBlock),
        "smtp-send connected: {accepted:?}"
    );
}

#[test]
fn transcript_redacts_auth() {
    let pki = Pki::new();
    let tls = pki.valid.clone();
    let server = Server::start(move |peer| {
        peer.greet(&["STARTTLS"]);
        peer.expect("STARTTLS");
        peer.send("220 2.0.0 Ready to start TLS");
        peer.start_tls(tls);
        peer.expect("EHLO client.example.test");
        peer.reply_ehlo(&["AUTH PLAIN"]);
        peer.expect(&format!("AUTH PLAIN {PLAIN_RESPONSE}"));
        peer.send("235 2.7.0 Authentication successful");
        let data = peer.accept_message(FROM, &[TO], "4Xyz");
        assert_eq!(data, MESSAGE.as_bytes());
        peer.quit();
    });
    let ca_file = pki.ca_file.to_str().unwrap();

    let output = smtp_send(
        &server.address,
        &[
            "--from",
            FROM,
            "--to",
            TO,
            "--ca-file",
            ca_file,
            "--auth-user",
            "user@example.test",
            "--auth-password-env",
            "SMTP_SEND_TEST_PASSWORD",
            "--transcript",
        ],
    );
    server.join();

    let stdout = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr(&output));
    let expected_lines = [
        "S: 220 mx.example.test ESMTP ready",
        "C: EHLO client.example.test",
        "C: STARTTLS",
        "C: AUTH PLAIN <redacted>",
        "S: 235 2.7.0 Authentication successful",
        "C: <47 octets of message data>",
        "accepted <rcpt@example.test>: 250 2.1.5 Ok",
        "message accepted: 250 2.0.0 Ok: queued as 4Xyz",
    ];
    for line in expected_lines {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("* TLS established (TLS1.3, TLS13_")),
        "{stdout}"
    );
    for secret in [PLAIN_RESPONSE, PASSWORD] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
        assert!(
            !stderr(&output).contains(secret),
            "{secret} printed on stderr"
        );
    }
}

#[test]
fn rejected_recipient_exits_69() {
    let server = Server::start(|peer| {
        peer.greet(&[]);
        peer.expect(&format!("MAIL FROM:<{FROM}>"));
        peer.send("250 2.1.0 Ok");
        peer.expect("RCPT TO:<nobody@example.test>");
        peer.send("550 5.1.1 <nobody@example.test>: Recipient address rejected");
        peer.quit();
    });

    let output = smtp_send(
        &server.address,
        &[
            "--tls",
            "none",
            "--from",
            FROM,
            "--to",
            "<nobody@example.test>",
        ],
    );
    server.join();

    let stdout = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(69),
        "{stdout}{}",
        stderr(&output)
    );
    assert!(
        stdout.contains(
            "rejected <nobody@example.test>: 550 5.1.1 <nobody@example.test>: Recipient address \
             rejected"
        ),
        "{stdout}"
    );
    assert!(
        stderr(&output).starts_with("smtp-send: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn partial_rejection_exit_codes() {
    let cases = [
        ("permanent rejection", "550 5.1.1 No such user", 69),
        (
            "transient rejection",
            "450 4.2.1 Mailbox busy, try later",
            75,
        ),
    ];
    for (label, rejection, code) in cases {
        let server = Server::start(move |peer| {
            peer.greet(&[]);
            peer.expect(&format!("MAIL FROM:<{FROM}>"));
            peer.send("250 2.1.0 Ok");
            peer.expect(&format!("RCPT TO:<{TO}>"));
            peer.send("250 2.1.5 Ok");
            peer.expect("RCPT TO:<other@example.test>");
            peer.send(rejection);
            peer.expect("DATA");
            peer.send("354 go ahead");
            peer.read_data();
            peer.send("250 2.0.0 Ok: queued as P1");
            peer.quit();
        });

        let output = smtp_send(
            &server.address,
            &[
                "--tls",
                "none",
                "--from",
                FROM,
                "--to",
                TO,
                "--to",
                "other@example.test",
            ],
        );
        server.join();

        let stdout = stdout(&output);
        assert_eq!(output.status.code(), Some(code), "{label}: {stdout}");
        assert!(
            stdout.contains(&format!("accepted <{TO}>: 250 2.1.5 Ok")),
            "{label}"
        );
        assert!(
            stdout.contains(&format!("rejected <other@example.test>: {rejection}")),
            "{label}: {stdout}"
        );
        assert!(
            stdout.contains("message accepted: 250 2.0.0 Ok: queued as P1"),
            "{label}"
        );
    }
}

#[test]
fn transient_failure_exits_75() {
    let server = Server::start(|peer| {
        peer.greet(&[]);
        peer.start_data(FROM, &[TO]);
        peer.read_data();
        peer.send("451 4.3.0 Temporary queue failure");
        peer.quit();
    });

    let output = smtp_send(
        &server.address,
        &["--tls", "none", "--from", FROM, "--to", TO],
    );
    server.join();

    assert_eq!(output.status.code(), Some(75), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("451 4.3.0 Temporary queue failure"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_64() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "invalid recipient",
            &["--from", FROM, "--to", "not an address"],
        ),
        ("invalid sender", &["--from", "a@@example.test", "--to", TO]),
        ("missing recipient", &["--from", FROM]),
        (
            "unknown TLS policy",
            &["--from", FROM, "--to", TO, "--tls", "sometimes"],
        ),
        (
            "password flag without user",
            &["--from", FROM, "--to", TO, "--auth-password-env", "X"],
        ),
    ];
    for (label, args) in cases {
        let (listener, address) = idle_listener();

        let output = smtp_send(&address, args);

        assert_eq!(
            output.status.code(),
            Some(64),
            "{label}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty(), "{label}: no message");
        assert_no_connection(&listener);
    }
}

#[test]
fn unreadable_files_exit_66() {
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smtp-send-missing-file");
    let missing = missing.to_str().unwrap();
    let cases: [(&str, &[&str]); 2] = [
        ("data file", &["--data", missing]),
        (
            "password file",
            &["--auth-user", "u", "--auth-password-file", missing],
        ),
    ];
    for (label, args) in cases {
        let (listener, address) = idle_listener();

        let output = smtp_send(&address, &[&["--from", FROM, "--to", TO], args].concat());

        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(66), "{label}: {stderr}");
        assert!(
            stderr.starts_with("smtp-send: cannot read"),
            "{label}: {stderr}"
        );
        assert!(stderr.contains(missing), "{label}: {stderr}");
        assert_no_connection(&listener);
    }
}

#[test]
fn count_sends_batch_with_summary() {
    let server = Server::start(|peer| {
        peer.greet(&["PIPELINING"]);
        for index in 0..3 {
            peer.expect(&format!("MAIL FROM:<{FROM}>"));
            peer.expect(&format!("RCPT TO:<{TO}>"));
            peer.expect("DATA");
            let mut replies = String::new();
            if index > 0 {
                replies.push_str(&format!("250 2.0.0 Ok: queued as C{}\r\n", index - 1));
            }
            replies.push_str("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead");
            peer.send(&replies);
            assert_eq!(peer.read_data(), MESSAGE.as_bytes());
        }
        peer.send("250 2.0.0 Ok: queued as C2");
        peer.quit();
    });

    let output = smtp_send(
        &server.address,
        &["--tls", "none", "--from", FROM, "--to", TO, "--count", "3"],
    );
    server.join();

    let stdout = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr(&output));
    for index in 0..3 {
        let line = format!("message accepted: 250 2.0.0 Ok: queued as C{index}");
        assert!(stdout.contains(&line), "{line:?} missing:\n{stdout}");
    }
    assert_eq!(
        stdout.matches("accepted <rcpt@example.test>").count(),
        3,
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("3 of 3 messages accepted in "),
        "{summary}"
    );
    assert!(summary.ends_with(" messages per second)"), "{summary}");
}
