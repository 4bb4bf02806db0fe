//! `smtp-send --demo`: the embedded server receives the sample message over STARTTLS and AUTH.

use std::process::Command;

#[test]
fn demo_sends_and_shows_stored_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .arg("--demo")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "C: STARTTLS",
        "* TLS established",
        "C: AUTH PLAIN <redacted>",
        "message accepted: 250 2.0.0 Stored as ",
        "auth: demo\n",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in:\n{stdout}");
    }

    // The path of the stored message is printed, and the file holds the message as sent.
    let path = stdout
        .lines()
        .find_map(|line| line.strip_prefix("The server stored the message in "))
        .and_then(|rest| rest.strip_suffix(':'))
        .unwrap();
    let stored = std::fs::read_to_string(path).unwrap();
    assert!(
        stored.starts_with("From: Demo Sender <demo@example.test>\r\n"),
        "{stored:?}"
    );
    assert!(
        stored.ends_with("\r\n.A line that starts with a dot arrives unchanged.\r\n"),
        "{stored:?}"
    );
}
