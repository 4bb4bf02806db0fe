//! The binaries of the embedded server: `smtp-send --demo` and `smtp-test-server`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use smtp_blocking::{Client, Options, Roots};
use smtp_proto::client::Envelope;
use smtp_proto::{Credentials, Mailbox, ReversePath};

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

#[test]
fn test_server_prints_address_and_deliveries() {
    let folder = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smtp-test-server-{}", std::process::id()));
    let _ignored = std::fs::remove_dir_all(&folder);
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-test-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:wonder:land",
            "--folder",
        ])
        .arg(&folder)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().unwrap().unwrap();

    let listening = next_line();
    let address = listening
        .strip_prefix("listening on ")
        .and_then(|rest| rest.strip_suffix(" (STARTTLS)"))
        .unwrap_or_else(|| panic!("unexpected first line {listening:?}"))
        .to_owned();
    let mut options = Options::default();
    options.roots = Roots::CaFile(folder.join("ca.pem"));
    // The password is everything after the first colon.
    options.session.credentials = Some(Credentials::password("alice", "wonder:land"));
    let sent = Client::connect(&address, options).and_then(|mut client| {
        let envelope = Envelope::new(
            ReversePath::parse("a@example.test").unwrap(),
            vec![Mailbox::parse("b@example.test").unwrap()],
        )
        .unwrap();
        client.send(envelope, "Subject: sink\r\n\r\nHello.\r\n")?;
        client.quit()
    });
    if let Err(error) = sent {
        child.kill().unwrap();
        panic!("sending to smtp-test-server failed: {error}");
    }
    // The server prints the line before it replies to the end of data, so it is there already.
    let stored_line = (0..5)
        .map(|_| next_line())
        .find(|line| line.starts_with("stored "));
    child.kill().unwrap();
    child.wait().unwrap();

    let stored_line = stored_line.unwrap();
    assert!(
        stored_line.starts_with("stored 25 octets from <a@example.test> for <b@example.test> in "),
        "{stored_line}"
    );
    let path = stored_line.rsplit(" in ").next().unwrap();
    assert_eq!(
        std::fs::read(path).unwrap(),
        b"Subject: sink\r\n\r\nHello.\r\n"
    );
}
