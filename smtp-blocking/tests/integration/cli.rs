//! The `smtp-send` binary against the scripted server: output, redaction and exit codes.

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{Pki, Script, Server, clear_text_greeting, reject_tls_after_starttls};

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

/// Runs `smtp-send` with `args`; unless `args` set them, the run gets a five-second --timeout,
/// --helo client.example.test and a --data file with [`MESSAGE`].
fn smtp_send(server: &str, args: &[&str]) -> Output {
    smtp_send_with_env(server, args, &[])
}

/// Runs `smtp-send` like [`smtp_send`], with the environment variables `env` added.
fn smtp_send_with_env(server: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let has = |flag: &str| args.iter().any(|arg| arg.split('=').next() == Some(flag));
    let mut command = bare_command(server);
    if !has("--timeout") {
        command.args(["--timeout", "5"]);
    }
    if !has("--helo") {
        command.args(["--helo", "client.example.test"]);
    }
    if !has("--data") {
        command.arg("--data").arg(temporary_file(MESSAGE));
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Returns the `smtp-send` command with only --server, the test password in
/// `SMTP_SEND_TEST_PASSWORD` and no `RUST_LOG`. Its standard input is empty unless changed.
fn bare_command(server: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
    command
        .args(["--server", server])
        .env("SMTP_SEND_TEST_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
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
    assert_eq!(
        stderr(&output),
        "smtp-send: recipients rejected, message not sent: <nobody@example.test>: 550 5.1.1 \
         <nobody@example.test>: Recipient address rejected\n"
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
        assert!(
            stderr(&output).contains("the message is queued for 1 of 2 recipients: "),
            "{label}: {}",
            stderr(&output)
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
        summary.starts_with(
            "3 messages: 3 accepted by every recipient, 0 for some, 0 failed, 0 outcome unknown ("
        ),
        "{summary}"
    );
    assert!(summary.ends_with(" messages per second)"), "{summary}");
}

#[test]
fn count_summary_separates_partial_acceptance() {
    let server = Server::start(|peer| {
        peer.greet(&[]);
        for index in 0..3 {
            peer.expect(&format!("MAIL FROM:<{FROM}>"));
            peer.send("250 2.1.0 Ok");
            peer.expect(&format!("RCPT TO:<{TO}>"));
            peer.send("250 2.1.5 Ok");
            peer.expect("RCPT TO:<other@example.test>");
            match index {
                1 => peer.send("450 4.2.1 Mailbox busy"),
                _ => peer.send("250 2.1.5 Ok"),
            }
            peer.expect("DATA");
            peer.send("354 go ahead");
            peer.read_data();
            peer.send(&format!("250 2.0.0 Ok: queued as S{index}"));
        }
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
            "--count",
            "3",
        ],
    );
    server.join();

    let stdout = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(75),
        "{stdout}{}",
        stderr(&output)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with(
            "3 messages: 2 accepted by every recipient, 1 for some, 0 failed, 0 outcome unknown ("
        ),
        "{summary}"
    );
}

#[test]
fn empty_inputs_exit_64_before_connecting() {
    let empty_file = temporary_file("");
    let empty_file = empty_file.to_str().unwrap();
    let empty_line_file = temporary_file("\nsecond line\n");
    let empty_line_file = empty_line_file.to_str().unwrap();
    let nul_file = temporary_file("pass\0word\n");
    let nul_file = nul_file.to_str().unwrap();
    let cr_file = temporary_file("pass\rword\n");
    let cr_file = cr_file.to_str().unwrap();
    let password_env = ["--auth-password-env", "SMTP_SEND_TEST_PASSWORD"];
    let cases: [(&str, Vec<&str>, &str); 10] = [
        (
            "empty user name",
            [&["--auth-user", ""][..], &password_env].concat(),
            "--auth-user is empty",
        ),
        (
            "user name with CRLF",
            [&["--auth-user", "user\r\nRSET"][..], &password_env].concat(),
            "invalid --auth-user \"user\\r\\nRSET\": a user name must not contain NUL, CR or LF",
        ),
        (
            "empty password variable",
            vec![
                "--auth-user",
                "u",
                "--auth-password-env",
                "SMTP_SEND_TEST_EMPTY",
            ],
            "the password in environment variable SMTP_SEND_TEST_EMPTY (--auth-password-env) is \
             empty",
        ),
        (
            "password variable with LF",
            vec![
                "--auth-user",
                "u",
                "--auth-password-env",
                "SMTP_SEND_TEST_LF",
            ],
            "contains NUL, CR or LF",
        ),
        (
            "empty password file",
            vec!["--auth-user", "u", "--auth-password-file", empty_file],
            "is empty",
        ),
        (
            "password file with an empty first line",
            vec!["--auth-user", "u", "--auth-password-file", empty_line_file],
            "the password on the first line of --auth-password-file",
        ),
        (
            "password file with NUL",
            vec!["--auth-user", "u", "--auth-password-file", nul_file],
            "contains NUL, CR or LF",
        ),
        (
            "password file with CR",
            vec!["--auth-user", "u", "--auth-password-file", cr_file],
            "contains NUL, CR or LF",
        ),
        (
            "empty data file",
            vec!["--data", empty_file],
            "the message from --data file",
        ),
        (
            "empty standard input",
            vec!["--data", "-"],
            "the message from standard input is empty",
        ),
    ];
    for (label, args, expected) in cases {
        let (listener, address) = idle_listener();

        let output = smtp_send_with_env(
            &address,
            &[
                &["--tls", "required", "--from", FROM, "--to", TO],
                &args[..],
            ]
            .concat(),
            &[
                ("SMTP_SEND_TEST_EMPTY", ""),
                ("SMTP_SEND_TEST_LF", "pass\nword"),
            ],
        );

        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(64), "{label}: {stderr}");
        assert!(stderr.contains(expected), "{label}: {stderr}");
        assert!(!stderr.contains("pass\nword"), "{label}: password printed");
        assert_no_connection(&listener);
    }
}

#[test]
fn no_data_flag_and_empty_stdin_exits_64() {
    let (listener, address) = idle_listener();

    let output = bare_command(&address)
        .args(["--tls", "none", "--from", FROM, "--to", TO])
        .output()
        .unwrap();

    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.starts_with("smtp-send: the message from standard input is empty: "),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-empty"), "{stderr}");
    assert_no_connection(&listener);
}

#[test]
fn allow_empty_sends_empty_message() {
    let server = Server::start(|peer| {
        peer.greet(&[]);
        let data = peer.accept_message(FROM, &[TO], "E1");
        assert!(data.is_empty(), "data: {data:?}");
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
            "--data",
            "-",
            "--allow-empty",
        ],
    );
    server.join();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("message accepted: 250 2.0.0 Ok: queued as E1"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn terminal_stdin_prints_notice() {
    let (listener, address) = idle_listener();
    let command = format!(
        "'{}' --server {address} --tls none --from {FROM} --to {TO}",
        env!("CARGO_BIN_EXE_smtp-send")
    );

    // `script` (util-linux) runs the command on a pseudo-terminal; Ctrl-D ends the empty input.
    let mut script = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("this test runs smtp-send on a terminal through util-linux `script`");
    io::Write::write_all(&mut script.stdin.take().unwrap(), b"\x04").unwrap();
    let output = script.wait_with_output().unwrap();

    let terminal = stdout(&output);
    assert_eq!(output.status.code(), Some(64), "{terminal}");
    assert!(
        terminal.contains("smtp-send: reading the message from standard input; end with Ctrl-D"),
        "{terminal}"
    );
    assert!(
        terminal.contains("the message from standard input is empty"),
        "{terminal}"
    );
    assert_no_connection(&listener);
}

#[test]
fn insecure_auth_without_flag_exits_64() {
    let (listener, address) = idle_listener();

    let output = smtp_send(
        &address,
        &[
            "--tls",
            "none",
            "--from",
            FROM,
            "--to",
            TO,
            "--auth-user",
            "u",
            "--auth-password-env",
            "SMTP_SEND_TEST_PASSWORD",
        ],
    );

    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("pass --allow-insecure-auth"), "{stderr}");
    assert_no_connection(&listener);
}

#[test]
fn auth_without_starttls_hints_insecure_flag() {
    let server = Server::start(|peer| {
        peer.greet(&["AUTH PLAIN"]);
        peer.quit();
    });

    let output = smtp_send(
        &server.address,
        &[
            "--tls",
            "opportunistic",
            "--from",
            FROM,
            "--to",
            TO,
            "--auth-user",
            "u",
            "--auth-password-env",
            "SMTP_SEND_TEST_PASSWORD",
        ],
    );
    server.join();

    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("(the server offers no STARTTLS: pass --allow-insecure-auth"),
        "{stderr}"
    );
}

#[test]
fn greeting_timeout_hints_implicit_tls() {
    let server = Server::start(|peer| {
        let received = peer.read_to_end();
        assert!(received.is_empty(), "the client wrote {received:?}");
    });

    let output = smtp_send(
        &server.address,
        &[
            "--tls",
            "none",
            "--timeout",
            "0.3",
            "--from",
            FROM,
            "--to",
            TO,
        ],
    );
    server.join();

    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(75), "{stderr}");
    assert_eq!(
        stderr,
        "smtp-send: timed out waiting for the greeting reply (is this an implicit-TLS port? try \
         --tls wrapper)\n"
    );
}

#[test]
fn tls_setup_failures_exit_69() {
    let pki = Pki::new();
    let cases: [(&str, &str, Script, &str); 2] = [
        (
            "clear text under implicit TLS",
            "wrapper",
            clear_text_greeting,
            "received corrupt message of type InvalidContentType (the server answered in clear \
             text: try --tls required (STARTTLS))\n",
        ),
        (
            "alert after STARTTLS",
            "required",
            reject_tls_after_starttls,
            "received fatal alert: HandshakeFailure\n",
        ),
    ];
    for (label, tls, script, ending) in cases {
        let server = Server::start(script);

        let output = smtp_send(
            &server.address,
            &[
                "--tls",
                tls,
                "--ca-file",
                pki.ca_file.to_str().unwrap(),
                "--from",
                FROM,
                "--to",
                TO,
            ],
        );
        server.join();

        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(69), "{label}: {stderr}");
        assert!(
            stderr.starts_with("smtp-send: TLS handshake failed: "),
            "{label}: {stderr}"
        );
        assert!(stderr.ends_with(ending), "{label}: {stderr}");
    }
}

#[test]
fn invalid_timeout_names_the_limit() {
    let cases = [
        (
            "too large",
            "1e30",
            "the value is too large: the maximum is 86400 seconds",
        ),
        (
            "just over the maximum",
            "86401",
            "the maximum is 86400 seconds",
        ),
        ("zero", "0", "expected a positive number of seconds"),
        ("negative", "-1", "expected a positive number of seconds"),
        (
            "not a number",
            "NaN",
            "expected a positive number of seconds",
        ),
        ("text", "ten", "expected a positive number of seconds"),
    ];
    for (label, value, expected) in cases {
        let (listener, address) = idle_listener();

        let output = smtp_send(
            &address,
            &[
                "--tls",
                "none",
                "--from",
                FROM,
                "--to",
                TO,
                &format!("--timeout={value}"),
            ],
        );

        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(64), "{label}: {stderr}");
        assert!(stderr.contains(&format!("'{value}'")), "{label}: {stderr}");
        assert!(stderr.contains(expected), "{label}: {stderr}");
        assert_no_connection(&listener);
    }
}

#[test]
fn default_ehlo_name_needs_a_dot() {
    let host = gethostname::gethostname().into_string().unwrap();
    let expected = if host.contains('.') {
        host.to_ascii_lowercase()
    } else {
        "localhost".to_owned()
    };
    let server = Server::start(move |peer| {
        peer.send("220 mx.example.test ESMTP ready");
        let ehlo = peer.expect_prefix("EHLO ");
        assert_eq!(
            ehlo,
            format!("EHLO {expected}"),
            "EHLO name of host {host:?}"
        );
        peer.reply_ehlo(&[]);
        peer.accept_message(FROM, &[TO], "H1");
        peer.quit();
    });

    let output = bare_command(&server.address)
        .args([
            "--tls",
            "none",
            "--timeout",
            "5",
            "--from",
            FROM,
            "--to",
            TO,
        ])
        .arg("--data")
        .arg(temporary_file(MESSAGE))
        .output()
        .unwrap();
    server.join();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn chunking_flag_picks_bdat_or_data() {
    let message = "Subject: dots\r\n\r\n.A line that starts with a dot\r\n";
    let cases: [(&str, &[&str], bool); 3] = [
        ("default", &[], true),
        ("on", &["--chunking", "on"], true),
        ("off", &["--chunking", "off"], false),
    ];
    for (label, flags, bdat) in cases {
        let server = Server::start(move |peer| {
            peer.greet(&["CHUNKING"]);
            peer.expect(&format!("MAIL FROM:<{FROM}>"));
            peer.send("250 2.1.0 Ok");
            peer.expect(&format!("RCPT TO:<{TO}>"));
            peer.send("250 2.1.5 Ok");
            if bdat {
                peer.expect(&format!("BDAT {} LAST", message.len()));
                assert_eq!(
                    peer.read_octets(message.len()),
                    message.as_bytes(),
                    "{label}"
                );
            } else {
                peer.expect("DATA");
                peer.send("354 go ahead");
                let stuffed = message.replace("\n.A", "\n..A");
                assert_eq!(peer.read_data(), stuffed.as_bytes(), "{label}");
            }
            peer.send("250 2.0.0 Ok: queued as K1");
            peer.quit();
        });
        let data = temporary_file(message);

        let output = smtp_send(
            &server.address,
            &[
                &["--tls", "none", "--from", FROM, "--to", TO, "--data"][..],
                &[data.to_str().unwrap()],
                flags,
            ]
            .concat(),
        );
        server.join();

        assert_eq!(
            output.status.code(),
            Some(0),
            "{label}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn help_documents_partial_acceptance() {
    let output = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .arg("--help")
        .output()
        .unwrap();

    let help = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{help}");
    for expected in [
        "Exit codes (sysexits.h):",
        "A\nblind retry with every recipient delivers a second copy to those.",
        "The exit code is 75, and a retry may deliver the message twice.",
        "fully qualified (contains a dot)",
        "--chunking <on|off>",
        "--allow-empty",
    ] {
        assert!(help.contains(expected), "{expected:?} missing:\n{help}");
    }
}
