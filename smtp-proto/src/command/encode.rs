//! Writes commands as the exact line sent to the server
//! ([RFC 5321 section 4.1.1](https://www.rfc-editor.org/rfc/rfc5321#section-4.1.1)) and, with
//! AUTH payloads redacted, as text for people.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;

use super::{Command, MailParameters, Parameter, RcptParameters};
use crate::address::ReversePath;

impl Command {
    /// Appends the command line, ending in CRLF, to `buf`.
    ///
    /// MAIL parameters follow the path in the order SIZE, BODY, SMTPUTF8, RET, ENVID,
    /// REQUIRETLS, then the extra ones; RCPT parameters in the order NOTIFY, ORCPT, then the
    /// extra ones. SASL payloads are base64-encoded (RFC 4954 section 4).
    pub fn encode(&self, buf: &mut BytesMut) {
        self.write_line(buf, Payload::Reveal);
        buf.extend_from_slice(b"\r\n");
    }

    /// Writes the line without its CRLF.
    fn write_line(&self, out: &mut impl Sink, payload: Payload) {
        match self {
            Self::Ehlo(domain) | Self::Helo(domain) | Self::Lhlo(domain) => {
                out.put(self.verb());
                out.put(" ");
                out.put(domain.as_str());
            }
            Self::StartTls | Self::Data | Self::Rset | Self::Noop | Self::Quit => {
                out.put(self.verb());
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                // NOTE: the name of `Mechanism::Other` is written unchecked, so a name with a
                // space or line break would change the command.
                out.put("AUTH ");
                out.put(mechanism.name());
                if let Some(response) = initial_response {
                    out.put(" ");
                    write_sasl_response(out, response.expose(), true, payload);
                }
            }
            Self::AuthResponse(response) => {
                write_sasl_response(out, response.expose(), false, payload);
            }
            Self::AuthCancel => out.put("*"),
            Self::Mail {
                reverse_path,
                parameters,
            } => {
                out.put("MAIL FROM:<");
                if let ReversePath::Mailbox(mailbox) = reverse_path {
                    out.put(mailbox.as_str());
                }
                out.put(">");
                parameters.write(out);
            }
            Self::Rcpt {
                forward_path,
                parameters,
            } => {
                out.put("RCPT TO:<");
                out.put(forward_path.as_str());
                out.put(">");
                parameters.write(out);
            }
            Self::Bdat { size, last } => {
                out.put("BDAT ");
                out.put(decimal(*size, &mut [0; 20]));
                if *last {
                    out.put(" LAST");
                }
            }
            Self::Vrfy(argument) | Self::Expn(argument) => {
                out.put(self.verb());
                out.put(" ");
                out.put(argument.as_str());
            }
            Self::Help(argument) => {
                out.put("HELP");
                if let Some(argument) = argument {
                    out.put(" ");
                    out.put(argument.as_str());
                }
            }
        }
    }
}

impl fmt::Display for Command {
    /// Writes the command line without CRLF, each SASL payload replaced by `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        self.write_line(&mut line, Payload::Redact);
        f.write_str(&line)
    }
}

impl MailParameters {
    fn write(&self, out: &mut impl Sink) {
        if let Some(size) = self.size {
            out.put(" SIZE=");
            out.put(decimal(size, &mut [0; 20]));
        }
        if let Some(body) = self.body {
            out.put(" BODY=");
            out.put(body.keyword());
        }
        if self.smtputf8 {
            out.put(" SMTPUTF8");
        }
        if let Some(ret) = self.ret {
            out.put(" RET=");
            out.put(ret.keyword());
        }
        if let Some(envid) = &self.envid {
            out.put(" ENVID=");
            envid.encode_with(|piece| out.put(piece));
        }
        if self.requiretls {
            out.put(" REQUIRETLS");
        }
        write_extra(out, &self.extra);
    }
}

impl RcptParameters {
    fn write(&self, out: &mut impl Sink) {
        if let Some(notify) = self.notify {
            out.put(" NOTIFY=");
            out.put(&notify.to_string());
        }
        if let Some(orcpt) = &self.orcpt {
            out.put(" ORCPT=");
            out.put(orcpt.address_type());
            out.put(";");
            orcpt.address().encode_with(|piece| out.put(piece));
        }
        write_extra(out, &self.extra);
    }
}

fn write_extra(out: &mut impl Sink, extra: &[Parameter]) {
    for parameter in extra {
        out.put(" ");
        out.put(parameter.keyword());
        if let Some(value) = parameter.value() {
            out.put("=");
            out.put(value);
        }
    }
}

/// Writes a SASL response in base64. An empty initial response is `=` (RFC 4954 section 4), and
/// an empty response to a challenge is the empty base64 text, so its line is empty.
fn write_sasl_response(out: &mut impl Sink, response: &[u8], initial: bool, payload: Payload) {
    match payload {
        Payload::Redact => out.put("<redacted>"),
        Payload::Reveal if initial && response.is_empty() => out.put("="),
        Payload::Reveal => out.put(&BASE64.encode(response)),
    }
}

/// Whether SASL payloads are written out or replaced by `<redacted>`.
#[derive(Clone, Copy)]
enum Payload {
    Reveal,
    Redact,
}

/// Destination of a command line: the wire buffer, or a string for `Display`.
trait Sink {
    fn put(&mut self, text: &str);
}

impl Sink for BytesMut {
    fn put(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
}

impl Sink for String {
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

/// Writes `value` in decimal into the end of `digits`, without a heap allocation, and returns
/// the digits written.
fn decimal(value: u64, digits: &mut [u8; 20]) -> &str {
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    std::str::from_utf8(&digits[start..]).expect("decimal digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::super::{Argument, BodyType, Notify, OriginalRecipient, Ret};
    use super::*;
    use crate::address::{Domain, Mailbox, XText};
    use crate::auth::Mechanism;
    use crate::secret::Secret;

    fn domain(text: &str) -> Domain {
        Domain::parse(text).unwrap()
    }

    fn mailbox(text: &str) -> Mailbox {
        Mailbox::parse(text).unwrap()
    }

    fn mail(parameters: MailParameters) -> Command {
        Command::Mail {
            reverse_path: ReversePath::Mailbox(mailbox("a@example.org")),
            parameters,
        }
    }

    fn rcpt(parameters: RcptParameters) -> Command {
        Command::Rcpt {
            forward_path: mailbox("b@example.net"),
            parameters,
        }
    }

    fn secret(bytes: &[u8]) -> Secret<Vec<u8>> {
        Secret::new(bytes.to_vec())
    }

    fn encoded(command: &Command) -> BytesMut {
        let mut buf = BytesMut::new();
        command.encode(&mut buf);
        buf
    }

    /// Returns one command of every variant and parameter, with its exact bytes.
    fn cases() -> Vec<(&'static str, Command, &'static [u8])> {
        vec![
            (
                "ehlo",
                Command::Ehlo(domain("client.example.org")),
                b"EHLO client.example.org\r\n",
            ),
            (
                "ehlo address literal",
                Command::Ehlo(domain("[127.0.0.1]")),
                b"EHLO [127.0.0.1]\r\n",
            ),
            (
                "helo",
                Command::Helo(domain("client.example.org")),
                b"HELO client.example.org\r\n",
            ),
            (
                "lhlo",
                Command::Lhlo(domain("client.example.org")),
                b"LHLO client.example.org\r\n",
            ),
            ("starttls", Command::StartTls, b"STARTTLS\r\n"),
            (
                "auth plain with initial response",
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some(secret(b"\0alice\0s3cret-example")),
                },
                b"AUTH PLAIN AGFsaWNlAHMzY3JldC1leGFtcGxl\r\n",
            ),
            (
                "auth with empty initial response",
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some(secret(b"")),
                },
                b"AUTH PLAIN =\r\n",
            ),
            (
                "auth login",
                Command::Auth {
                    mechanism: Mechanism::Login,
                    initial_response: None,
                },
                b"AUTH LOGIN\r\n",
            ),
            (
                "auth cram-md5",
                Command::Auth {
                    mechanism: Mechanism::CramMd5,
                    initial_response: None,
                },
                b"AUTH CRAM-MD5\r\n",
            ),
            (
                "auth response",
                Command::AuthResponse(secret(b"alice")),
                b"YWxpY2U=\r\n",
            ),
            (
                "empty auth response",
                Command::AuthResponse(secret(b"")),
                b"\r\n",
            ),
            ("auth cancel", Command::AuthCancel, b"*\r\n"),
            (
                "mail null path",
                Command::Mail {
                    reverse_path: ReversePath::Null,
                    parameters: MailParameters::default(),
                },
                b"MAIL FROM:<>\r\n",
            ),
            (
                "mail",
                mail(MailParameters::default()),
                b"MAIL FROM:<a@example.org>\r\n",
            ),
            (
                "mail size",
                mail(MailParameters {
                    size: Some(64),
                    ..MailParameters::default()
                }),
                b"MAIL FROM:<a@example.org> SIZE=64\r\n",
            ),
            (
                "mail smtputf8",
                mail(MailParameters {
                    smtputf8: true,
                    ..MailParameters::default()
                }),
                b"MAIL FROM:<a@example.org> SMTPUTF8\r\n",
            ),
            (
                "mail body 8bitmime",
                mail(MailParameters {
                    body: Some(BodyType::EightBitMime),
                    ..MailParameters::default()
                }),
                b"MAIL FROM:<a@example.org> BODY=8BITMIME\r\n",
            ),
            (
                "mail body 7bit",
                mail(MailParameters {
                    body: Some(BodyType::SevenBit),
                    ..MailParameters::default()
                }),
                b"MAIL FROM:<a@example.org> BODY=7BIT\r\n",
            ),
            (
                "mail all parameters in order",
                mail(MailParameters {
                    size: Some(1_000_000),
                    body: Some(BodyType::BinaryMime),
                    smtputf8: true,
                    ret: Some(Ret::Headers),
                    envid: Some(XText::new("id+1=2").unwrap()),
                    requiretls: true,
                    extra: vec![
                        Parameter::new("X-FLAG", None).unwrap(),
                        Parameter::new("X-TRACE", Some("abc")).unwrap(),
                    ],
                }),
                b"MAIL FROM:<a@example.org> SIZE=1000000 BODY=BINARYMIME SMTPUTF8 RET=HDRS \
                  ENVID=id+2B1+3D2 REQUIRETLS X-FLAG X-TRACE=abc\r\n",
            ),
            (
                "mail ret full",
                mail(MailParameters {
                    ret: Some(Ret::Full),
                    ..MailParameters::default()
                }),
                b"MAIL FROM:<a@example.org> RET=FULL\r\n",
            ),
            (
                "mail utf-8 sender",
                Command::Mail {
                    reverse_path: ReversePath::Mailbox(mailbox("jörg@bücher.example")),
                    parameters: MailParameters {
                        smtputf8: true,
                        ..MailParameters::default()
                    },
                },
                "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".as_bytes(),
            ),
            (
                "rcpt",
                rcpt(RcptParameters::default()),
                b"RCPT TO:<b@example.net>\r\n",
            ),
            (
                "rcpt notify and orcpt",
                rcpt(RcptParameters {
                    notify: Some(Notify::SUCCESS | Notify::FAILURE),
                    orcpt: Some(OriginalRecipient::rfc822(
                        XText::new("b+x@example.net").unwrap(),
                    )),
                    extra: Vec::new(),
                }),
                b"RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE \
                  ORCPT=rfc822;b+2Bx@example.net\r\n",
            ),
            (
                "rcpt notify never and extra",
                rcpt(RcptParameters {
                    notify: Some(Notify::NEVER),
                    orcpt: None,
                    extra: vec![Parameter::new("X-PRIORITY", Some("1")).unwrap()],
                }),
                b"RCPT TO:<b@example.net> NOTIFY=NEVER X-PRIORITY=1\r\n",
            ),
            (
                "rcpt quoted local part",
                Command::Rcpt {
                    forward_path: mailbox(r#""a\"b"@example.net"#),
                    parameters: RcptParameters::default(),
                },
                b"RCPT TO:<\"a\\\"b\"@example.net>\r\n",
            ),
            ("data", Command::Data, b"DATA\r\n"),
            (
                "bdat last",
                Command::Bdat {
                    size: 46,
                    last: true,
                },
                b"BDAT 46 LAST\r\n",
            ),
            (
                "bdat",
                Command::Bdat {
                    size: 0,
                    last: false,
                },
                b"BDAT 0\r\n",
            ),
            ("rset", Command::Rset, b"RSET\r\n"),
            ("noop", Command::Noop, b"NOOP\r\n"),
            (
                "vrfy",
                Command::Vrfy(Argument::new("Smith").unwrap()),
                b"VRFY Smith\r\n",
            ),
            (
                "expn",
                Command::Expn(Argument::new("staff").unwrap()),
                b"EXPN staff\r\n",
            ),
            ("help", Command::Help(None), b"HELP\r\n"),
            (
                "help topic",
                Command::Help(Some(Argument::new("MAIL").unwrap())),
                b"HELP MAIL\r\n",
            ),
            ("quit", Command::Quit, b"QUIT\r\n"),
        ]
    }

    #[test]
    fn decimal_writes_digits() {
        let cases = [
            ("zero", 0, "0"),
            ("one digit", 7, "7"),
            ("size", 10_240_000, "10240000"),
            ("max", u64::MAX, "18446744073709551615"),
        ];

        for (label, value, expected) in cases {
            assert_eq!(decimal(value, &mut [0; 20]), expected, "{label}");
        }
    }

    #[test]
    fn encode_writes_exact_bytes() {
        for (label, command, expected) in cases() {
            let buf = encoded(&command);
            assert_eq!(
                &buf[..],
                expected,
                "{label}: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    }

    #[test]
    fn encode_ends_only_line_with_crlf() {
        for (label, command, _) in cases() {
            let buf = encoded(&command);
            let body = buf.strip_suffix(b"\r\n").expect(label);
            assert!(!body.contains(&b'\r'), "{label}");
            assert!(!body.contains(&b'\n'), "{label}");
            assert!(!body.contains(&0), "{label}");
        }
    }

    #[test]
    fn encode_appends_to_buffer() {
        let mut buf = BytesMut::from(&b"NOOP\r\n"[..]);

        Command::Quit.encode(&mut buf);

        assert_eq!(&buf[..], b"NOOP\r\nQUIT\r\n");
    }

    #[test]
    fn display_redacts_auth_payloads() {
        let cases = [
            (
                "auth plain",
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some(secret(b"\0alice\0s3cret-example")),
                },
                "AUTH PLAIN <redacted>",
            ),
            (
                "empty initial response",
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some(secret(b"")),
                },
                "AUTH PLAIN <redacted>",
            ),
            (
                "auth login",
                Command::Auth {
                    mechanism: Mechanism::Login,
                    initial_response: None,
                },
                "AUTH LOGIN",
            ),
            (
                "auth response",
                Command::AuthResponse(secret(b"s3cret-example")),
                "<redacted>",
            ),
            ("auth cancel", Command::AuthCancel, "*"),
        ];

        for (label, command, expected) in cases {
            let text = command.to_string();
            assert_eq!(text, expected, "{label}");
            assert!(!text.contains("AGFsaWNl"), "{label}");
            assert!(!format!("{command:?}").contains("s3cret"), "{label}");
        }
    }

    #[test]
    fn display_matches_wire_without_crlf() {
        for (label, command, expected) in cases() {
            if command.verb() == "AUTH" {
                continue;
            }
            let line = expected.strip_suffix(b"\r\n").unwrap();
            assert_eq!(command.to_string().as_bytes(), line, "{label}");
        }
    }

    #[test]
    fn verb_names_command() {
        let cases = [
            ("ehlo", Command::Ehlo(domain("a.example")), "EHLO"),
            ("starttls", Command::StartTls, "STARTTLS"),
            ("auth response", Command::AuthResponse(secret(b"x")), "AUTH"),
            ("auth cancel", Command::AuthCancel, "AUTH"),
            ("mail", mail(MailParameters::default()), "MAIL"),
            ("rcpt", rcpt(RcptParameters::default()), "RCPT"),
            (
                "bdat",
                Command::Bdat {
                    size: 1,
                    last: true,
                },
                "BDAT",
            ),
            ("help", Command::Help(None), "HELP"),
        ];

        for (label, command, verb) in cases {
            assert_eq!(command.verb(), verb, "{label}");
        }
    }
}
