//! The private Postfix instance started by `tests/servers/postfix.sh`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::mail_folder::{count_files, wait_for_contents};
use crate::server_env::{ServerEnv, started};

/// A running Postfix 3.x instance on 127.0.0.1, private to the tests.
///
/// Postfix offers PIPELINING, SIZE (10 MiB), 8BITMIME, SMTPUTF8, CHUNKING, DSN and
/// ENHANCEDSTATUSCODES on every port. It delivers one file per recipient to [`Self::maildir`]
/// through virtual(8). Each file starts with the header lines Postfix prepends (see
/// [`strip_prepended_headers`]), and its lines end in LF where the client sent CRLF. Below those
/// lines the message is the one the client sent, because Postfix is set to add no Date,
/// Message-ID or From and to rewrite no address.
#[derive(Debug)]
pub struct Postfix {
    /// Port offering STARTTLS, and AUTH only after TLS.
    pub submission_port: u16,
    /// Port offering neither STARTTLS nor AUTH.
    pub plain_port: u16,
    /// Port with implicit TLS (RFC 8314) and AUTH.
    pub smtps_port: u16,
    /// Port offering STARTTLS but no AUTH, where a connection idle for longer than
    /// [`Self::short_timeout`] gets `421 4.4.2` and is closed (Postfix's `smtpd_timeout`).
    pub short_timeout_port: u16,
    /// The `smtpd_timeout` of [`Self::short_timeout_port`].
    pub short_timeout: Duration,
    /// Port on 127.0.0.1 that Postfix relays mail for [`Self::relay_domain`] to, over SMTP with
    /// STARTTLS when offered. Nothing listens there until a test starts a server on it, and
    /// Postfix retries a deferred message within a few seconds.
    pub relay_port: u16,
    /// Domain whose recipients Postfix accepts on every port and relays to
    /// [`Self::relay_port`].
    pub relay_domain: String,
    /// PEM file of the CA that signed the server certificate for `localhost` and `127.0.0.1`.
    pub ca_file: PathBuf,
    /// SASL login name (PLAIN, LOGIN, CRAM-MD5 and the other mechanisms Cyrus offers).
    pub user: String,
    /// SASL password of [`Self::user`].
    pub password: String,
    /// Maildir every recipient in [`Self::domain`] is delivered to.
    pub maildir: PathBuf,
    /// Domain whose recipients are accepted. Recipients in other domains but
    /// [`Self::relay_domain`] get 554 (relay access denied).
    pub domain: String,
    /// Postfix's log, the place to look when a test fails.
    pub log_file: PathBuf,
}

/// Starts the private Postfix instance unless it runs, once per process, and returns it.
///
/// # Panics
///
/// When `tests/servers/postfix.sh start` fails, for example without root. The message contains
/// the script's output.
pub fn postfix() -> &'static Postfix {
    static POSTFIX: OnceLock<Result<Postfix, String>> = OnceLock::new();
    started(&POSTFIX, "postfix.sh", Postfix::from_env)
}

impl Postfix {
    /// Waits for a delivered file containing `needle` and returns its bytes as stored, with the
    /// prepended header lines and LF line ends.
    ///
    /// # Panics
    ///
    /// When no such file appears within `timeout`, or `needle` is empty.
    pub fn wait_for_message(&self, needle: &[u8], timeout: Duration) -> Vec<u8> {
        self.wait_for_messages(needle, 1, timeout).swap_remove(0)
    }

    /// Waits until `count` delivered files contain `needle` (Postfix writes one file per
    /// recipient) and returns them as stored, sorted by file name.
    ///
    /// # Panics
    ///
    /// When fewer files appear within `timeout`, or `needle` is empty.
    pub fn wait_for_messages(
        &self,
        needle: &[u8],
        count: usize,
        timeout: Duration,
    ) -> Vec<Vec<u8>> {
        wait_for_contents(&self.maildir, needle, count, timeout, &self.log_file)
    }

    /// Returns how many delivered files contain `needle` now, without waiting.
    ///
    /// # Panics
    ///
    /// When `needle` is empty or a file cannot be read.
    pub fn count_messages(&self, needle: &[u8]) -> usize {
        count_files(&self.maildir, needle)
    }

    /// Waits for a delivered file containing `needle` and returns the message as the client sent
    /// it, through [`message_as_sent`].
    ///
    /// # Panics
    ///
    /// When no such file appears within `timeout`, or `needle` is empty.
    pub fn wait_for_message_as_sent(&self, needle: &[u8], timeout: Duration) -> Vec<u8> {
        message_as_sent(&self.wait_for_message(needle, timeout))
    }

    fn from_env(env: &ServerEnv) -> Result<Self, String> {
        Ok(Self {
            submission_port: env.port("SMTP_POSTFIX_SUBMISSION_PORT")?,
            plain_port: env.port("SMTP_POSTFIX_PLAIN_PORT")?,
            smtps_port: env.port("SMTP_POSTFIX_SMTPS_PORT")?,
            short_timeout_port: env.port("SMTP_POSTFIX_SHORT_TIMEOUT_PORT")?,
            short_timeout: env.seconds("SMTP_POSTFIX_SHORT_TIMEOUT_SECONDS")?,
            relay_port: env.port("SMTP_POSTFIX_RELAY_PORT")?,
            relay_domain: env.string("SMTP_POSTFIX_RELAY_DOMAIN")?,
            ca_file: env.path("SMTP_POSTFIX_CA_FILE")?,
            user: env.string("SMTP_POSTFIX_USER")?,
            password: env.string("SMTP_POSTFIX_PASSWORD")?,
            maildir: env.path("SMTP_POSTFIX_MAILDIR")?,
            domain: env.string("SMTP_POSTFIX_DOMAIN")?,
            log_file: env.path("SMTP_POSTFIX_LOG")?,
        })
    }
}

/// Removes the header lines Postfix prepends on delivery, with their continuation lines:
/// `Return-Path`, `X-Original-To`, `Delivered-To` and `Received`, as long as they lead the
/// message.
///
/// A message that itself starts with one of these fields loses it too.
pub fn strip_prepended_headers(delivered: &[u8]) -> &[u8] {
    let mut rest = delivered;
    loop {
        let Some(field) = PREPENDED_FIELDS.iter().find(|field| {
            rest.len() >= field.len() && rest[..field.len()].eq_ignore_ascii_case(field)
        }) else {
            return rest;
        };

        // Skip the field's first line, then every continuation line starting with a blank.
        let mut end = field.len();
        loop {
            match rest[end..].iter().position(|&byte| byte == b'\n') {
                Some(newline) => end += newline + 1,
                None => return &rest[rest.len()..],
            }
            if !matches!(rest.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        rest = &rest[end..];
    }
}

/// Turns a delivered file back into the message the client sent: the prepended header lines
/// are removed and each LF becomes CRLF.
///
/// This holds for messages whose every line ended in CRLF on the wire, which is what a
/// conforming client sends.
pub fn message_as_sent(delivered: &[u8]) -> Vec<u8> {
    let message = strip_prepended_headers(delivered);
    let mut wire = Vec::with_capacity(message.len() + message.len() / 32);
    for &byte in message {
        if byte == b'\n' {
            wire.push(b'\r');
        }
        wire.push(byte);
    }
    wire
}

const PREPENDED_FIELDS: [&[u8]; 4] = [
    b"Return-Path:",
    b"X-Original-To:",
    b"Delivered-To:",
    b"Received:",
];

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::TcpStream;

    use crate::server_env::read_greeting;

    const DELIVERED: &[u8] = b"Return-Path: <a@example.test>\n\
        X-Original-To: b@example.test\n\
        Delivered-To: b@example.test\n\
        Received: from localhost (unknown [127.0.0.1])\n\
        \tby mx.example.test (Postfix) with ESMTPSA id 1\n\
        \tfor <b@example.test>; Fri,  4 Dec 2026 16:07:34 +0000 (UTC)\n\
        Subject: hi\n\
        Received: kept, since it is the sender's own\n\
        \n\
        body\n";

    #[test]
    fn strip_removes_leading_prepended_fields() {
        let cases: [(&str, &[u8], &[u8]); 4] = [
            (
                "all four",
                DELIVERED,
                b"Subject: hi\nReceived: kept, since it is the sender's own\n\nbody\n",
            ),
            ("none", b"Subject: x\n\nbody\n", b"Subject: x\n\nbody\n"),
            (
                "lowercase",
                b"return-path: <>\nSubject: x\n",
                b"Subject: x\n",
            ),
            ("only prepended", b"Return-Path: <>\nReceived: a\n b\n", b""),
        ];
        for (label, delivered, expected) in cases {
            assert_eq!(
                String::from_utf8_lossy(strip_prepended_headers(delivered)),
                String::from_utf8_lossy(expected),
                "{label}"
            );
        }
    }

    #[test]
    fn message_as_sent_restores_crlf() {
        let sent = message_as_sent(DELIVERED);

        assert_eq!(
            sent,
            b"Subject: hi\r\nReceived: kept, since it is the sender's own\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn postfix_starts_and_greets_on_every_port() {
        let postfix = postfix();

        assert!(
            postfix.ca_file.is_file(),
            "{} is not a file",
            postfix.ca_file.display()
        );
        assert!(
            postfix.maildir.is_dir(),
            "{} is not a folder",
            postfix.maildir.display()
        );
        assert_eq!(postfix.domain, crate::DOMAIN);
        assert!(!postfix.user.is_empty());
        assert!(!postfix.password.is_empty());
        // smtps greets only after the TLS handshake, so only the other two are read here.
        for port in [
            postfix.submission_port,
            postfix.plain_port,
            postfix.short_timeout_port,
        ] {
            let greeting = read_greeting(port);
            assert!(
                greeting.starts_with("220 "),
                "port {port} greeted with {greeting:?}"
            );
        }
        TcpStream::connect(("127.0.0.1", postfix.smtps_port)).unwrap();
    }
}
