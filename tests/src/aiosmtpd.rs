//! The aiosmtpd server started by `tests/servers/aiosmtpd.sh`.

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::mail_folder::{count_files, wait_for_contents, wait_for_files};
use crate::server_env::{ServerEnv, started};

/// A running aiosmtpd 1.4 server on 127.0.0.1, with the handler in
/// `tests/servers/aiosmtpd_server.py`.
///
/// It offers SIZE (10 MiB), 8BITMIME, SMTPUTF8 and STARTTLS, but no PIPELINING, CHUNKING, DSN or
/// ENHANCEDSTATUSCODES, and any RCPT parameter gets 555.
/// [`CLOSING_RECIPIENT`](crate::CLOSING_RECIPIENT) gets 421 at RCPT while the connection stays
/// open. AUTH is offered only after TLS, and
/// MAIL without AUTH gets 530. A DATA line longer than 1001 bytes with its CRLF gets 500. Each message is stored in
/// [`Self::maildir`] exactly as received after dot-unstuffing, CRLF line ends included, with its
/// envelope beside it (see [`Self::wait_for_delivery`]).
#[derive(Debug)]
pub struct Aiosmtpd {
    /// Port offering STARTTLS.
    pub port: u16,
    /// PEM file of the CA that signed the server certificate for `localhost` and `127.0.0.1`.
    pub ca_file: PathBuf,
    /// Login name for every SASL mechanism.
    pub user: String,
    /// Password of [`Self::user`] for PLAIN, LOGIN and CRAM-MD5.
    pub password: String,
    /// OAuth 2.0 bearer token of [`Self::user`] for XOAUTH2 and OAUTHBEARER.
    pub oauth_token: String,
    /// Maildir-style folder the messages are stored in (`new/`), with `envelopes/` beside.
    pub maildir: PathBuf,
    /// The domain of [`Self::user`]. Recipients in every domain are accepted.
    pub domain: String,
    /// The server's log, the place to look when a test fails.
    pub log_file: PathBuf,
}

/// A message stored by aiosmtpd, with the envelope it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message bytes as received after dot-unstuffing.
    pub message: Vec<u8>,
    /// The session and envelope facts recorded with the message.
    pub envelope: Envelope,
}

/// What the server recorded about the transaction that carried a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// TLS version in use (`TLSv1.3`, for example), or `None` without TLS.
    pub tls: Option<String>,
    /// Login name of the successful AUTH, or `None` without AUTH.
    pub auth: Option<String>,
    /// The reverse-path of MAIL FROM without angle brackets, empty for `<>`.
    pub mail_from: String,
    /// MAIL FROM parameters as aiosmtpd recorded them (upper-cased), `SIZE=123` for example.
    pub mail_parameters: Vec<String>,
    /// Accepted recipients, in RCPT order.
    pub recipients: Vec<Recipient>,
}

/// One accepted RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The forward-path without angle brackets.
    pub address: String,
    /// RCPT TO parameters as aiosmtpd recorded them (upper-cased).
    pub parameters: Vec<String>,
}

/// Starts the aiosmtpd server unless it runs, once per process, and returns it.
///
/// # Panics
///
/// When `tests/servers/aiosmtpd.sh start` fails, for example when aiosmtpd cannot be installed.
/// The message contains the script's output.
pub fn aiosmtpd() -> &'static Aiosmtpd {
    static AIOSMTPD: OnceLock<Result<Aiosmtpd, String>> = OnceLock::new();
    started(&AIOSMTPD, "aiosmtpd.sh", Aiosmtpd::from_env)
}

impl Aiosmtpd {
    /// Waits for a stored message containing `needle` and returns its bytes.
    ///
    /// # Panics
    ///
    /// When no such message appears within `timeout`, or `needle` is empty.
    pub fn wait_for_message(&self, needle: &[u8], timeout: Duration) -> Vec<u8> {
        self.wait_for_delivery(needle, timeout).message
    }

    /// Waits until `count` stored messages contain `needle` and returns their bytes, sorted by
    /// file name.
    ///
    /// # Panics
    ///
    /// When fewer messages appear within `timeout`, or `needle` is empty.
    pub fn wait_for_messages(
        &self,
        needle: &[u8],
        count: usize,
        timeout: Duration,
    ) -> Vec<Vec<u8>> {
        wait_for_contents(&self.maildir, needle, count, timeout, &self.log_file)
    }

    /// Returns how many stored messages contain `needle` now, without waiting.
    ///
    /// # Panics
    ///
    /// When `needle` is empty or a file cannot be read.
    pub fn count_messages(&self, needle: &[u8]) -> usize {
        count_files(&self.maildir, needle)
    }

    /// Waits for a stored message containing `needle` and returns it with its envelope.
    ///
    /// # Panics
    ///
    /// When no such message appears within `timeout`, `needle` is empty, or the envelope file
    /// is missing or malformed.
    pub fn wait_for_delivery(&self, needle: &[u8], timeout: Duration) -> Delivery {
        let file = wait_for_files(&self.maildir, needle, 1, timeout, &self.log_file).swap_remove(0);
        let name = file.path.file_name().expect("a listed file has a name");
        let envelope_path = self.maildir.join("envelopes").join(name);
        let text = fs::read(&envelope_path)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", envelope_path.display()));
        let envelope = Envelope::parse(&String::from_utf8_lossy(&text))
            .unwrap_or_else(|error| panic!("{}: {error}", envelope_path.display()));
        Delivery {
            message: file.bytes,
            envelope,
        }
    }

    fn from_env(env: &ServerEnv) -> Result<Self, String> {
        Ok(Self {
            port: env.port("SMTP_AIOSMTPD_PORT")?,
            ca_file: env.path("SMTP_AIOSMTPD_CA_FILE")?,
            user: env.string("SMTP_AIOSMTPD_USER")?,
            password: env.string("SMTP_AIOSMTPD_PASSWORD")?,
            oauth_token: env.string("SMTP_AIOSMTPD_OAUTH_TOKEN")?,
            maildir: env.path("SMTP_AIOSMTPD_MAILDIR")?,
            domain: env.string("SMTP_AIOSMTPD_DOMAIN")?,
            log_file: env.path("SMTP_AIOSMTPD_LOG")?,
        })
    }
}

impl Envelope {
    /// Parses the tab-separated lines `aiosmtpd_server.py` writes: `tls VERSION`, `auth LOGIN`,
    /// `mail_from ADDRESS PARAMETER...` and one `rcpt_to ADDRESS PARAMETER...` per recipient.
    fn parse(text: &str) -> Result<Self, String> {
        let mut envelope = Self::default();
        let mut seen_mail_from = false;
        for line in text.lines() {
            let mut fields = line.split('\t');
            let kind = fields.next().unwrap_or_default();
            let Some(value) = fields.next() else {
                return Err(format!("envelope line {line:?} has no value"));
            };
            let parameters: Vec<String> = fields.map(str::to_owned).collect();
            match kind {
                "tls" => envelope.tls = Some(value.to_owned()),
                "auth" => envelope.auth = Some(value.to_owned()),
                "mail_from" => {
                    envelope.mail_from = value.to_owned();
                    envelope.mail_parameters = parameters;
                    seen_mail_from = true;
                }
                "rcpt_to" => envelope.recipients.push(Recipient {
                    address: value.to_owned(),
                    parameters,
                }),
                _ => {
                    return Err(format!(
                        "envelope line {line:?} has an unknown kind {kind:?}"
                    ));
                }
            }
        }
        if !seen_mail_from {
            return Err("envelope has no mail_from line".to_owned());
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mail_folder::tests::TemporaryFolder;
    use crate::server_env::read_greeting;

    #[test]
    fn envelope_parses_every_kind() {
        let text = "tls\tTLSv1.3\nauth\talice@example.test\n\
                    mail_from\ta@example.test\tSIZE=12\tBODY=8BITMIME\n\
                    rcpt_to\tb@example.test\nrcpt_to\tc@example.test\n";

        let envelope = Envelope::parse(text).unwrap();

        assert_eq!(envelope.tls.as_deref(), Some("TLSv1.3"));
        assert_eq!(envelope.auth.as_deref(), Some("alice@example.test"));
        assert_eq!(envelope.mail_from, "a@example.test");
        assert_eq!(envelope.mail_parameters, ["SIZE=12", "BODY=8BITMIME"]);
        let addresses: Vec<_> = envelope
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(addresses, ["b@example.test", "c@example.test"]);
        assert!(envelope.recipients[0].parameters.is_empty());
    }

    #[test]
    fn envelope_keeps_null_reverse_path() {
        let envelope = Envelope::parse("mail_from\t\n").unwrap();

        assert_eq!(envelope.mail_from, "");
    }

    #[test]
    fn envelope_rejects_malformed_lines() {
        let cases = [
            ("no mail_from", "rcpt_to\tb@example.test\n", "no mail_from"),
            (
                "unknown kind",
                "mail_from\ta\nhelo\tx\n",
                "unknown kind \"helo\"",
            ),
            ("no value", "mail_from\n", "has no value"),
        ];
        for (label, text, expected) in cases {
            let error = Envelope::parse(text).unwrap_err();

            assert!(error.contains(expected), "{label}: {error}");
        }
    }

    #[test]
    fn delivery_reads_message_and_envelope() {
        let folder = TemporaryFolder::new("delivery");
        fs::create_dir_all(folder.0.join("envelopes")).unwrap();
        fs::write(
            folder.0.join("new/1.x"),
            b"Subject: token-d\r\n\r\nbody\r\n",
        )
        .unwrap();
        fs::write(
            folder.0.join("envelopes/1.x"),
            "mail_from\ta@example.test\n",
        )
        .unwrap();
        let server = Aiosmtpd {
            port: 1,
            ca_file: PathBuf::new(),
            user: String::new(),
            password: String::new(),
            oauth_token: String::new(),
            maildir: folder.0.clone(),
            domain: String::new(),
            log_file: PathBuf::new(),
        };

        let delivery = server.wait_for_delivery(b"token-d", Duration::ZERO);

        assert_eq!(delivery.message, b"Subject: token-d\r\n\r\nbody\r\n");
        assert_eq!(delivery.envelope.mail_from, "a@example.test");
    }

    #[test]
    fn aiosmtpd_starts_and_greets() {
        let aiosmtpd = aiosmtpd();

        assert!(
            aiosmtpd.ca_file.is_file(),
            "{} is not a file",
            aiosmtpd.ca_file.display()
        );
        assert!(
            aiosmtpd.maildir.is_dir(),
            "{} is not a folder",
            aiosmtpd.maildir.display()
        );
        assert_eq!(aiosmtpd.domain, crate::DOMAIN);
        assert!(!aiosmtpd.oauth_token.is_empty());
        let greeting = read_greeting(aiosmtpd.port);
        assert!(greeting.starts_with("220 "), "greeted with {greeting:?}");
    }
}
