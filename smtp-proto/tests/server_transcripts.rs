//! Runs the server session transcripts in `tests/server_transcripts/`; its `README.md` gives
//! their format.
#![cfg(feature = "server")]
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![expect(
    clippy::disallowed_methods,
    reason = "the test takes one real instant as the start of its fake clock"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use smtp_proto::server::{AuthCredentials, BareLineEnds, Config, Event, Handle, Session, TlsMode};
use smtp_proto::{Domain, Mechanism, Reply, ReplyCode};

/// How the client writes of a transcript reach the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    Whole,
    OctetByOctet,
}

#[test]
fn every_server_transcript_passes_whole_and_split() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server_transcripts");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("the transcript folder exists")
        .map(|entry| entry.expect("the folder can be listed").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 20, "only {} transcripts found", paths.len());

    let mut failures = String::new();
    for path in &paths {
        let script = std::fs::read_to_string(path).expect("transcripts are UTF-8");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let whole = run(&script, Feed::Whole);
        let split = run(&script, Feed::OctetByOctet);
        match (&whole, &split) {
            (Err(error), _) => writeln!(failures, "{name}: {error}").unwrap(),
            (Ok(_), Err(error)) => {
                writeln!(failures, "{name} (fed octet by octet): {error}").unwrap()
            }
            (Ok((sent_a, events_a)), Ok((sent_b, events_b)))
                if sent_a != sent_b || events_a != events_b =>
            {
                writeln!(
                    failures,
                    "{name}: split feeding changed the run\nwhole: {} {events_a:?}\nsplit: {} \
                     {events_b:?}",
                    sent_a.escape_ascii(),
                    sent_b.escape_ascii()
                )
                .unwrap()
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// The application side of a transcript: answers every decision by fixed rules and records
/// the events as summaries.
struct App {
    events: Vec<String>,
    message: Vec<u8>,
    queued: u32,
}

impl App {
    fn drain(&mut self, session: &mut Session) {
        while let Some(event) = session.poll_event() {
            // Chunk boundaries follow the feeding, so data events are summed up in the message.
            if let Event::MessageData { chunk } = &event {
                self.message.extend_from_slice(chunk);
                continue;
            }
            let summary = self.handle(session, event);
            self.events.push(summary);
        }
    }

    fn handle(&mut self, session: &mut Session, event: Event) -> String {
        match event {
            Event::Hello {
                kind,
                domain,
                handle,
            } => {
                session.accept(handle).unwrap();
                format!("hello {kind:?} {domain}")
            }
            Event::TlsUpgradeRequired => "tls-upgrade".to_owned(),
            Event::AuthRequested {
                mechanism,
                credentials,
                handle,
            } => {
                let summary = format!("auth {} {}", mechanism.name(), credentials.username());
                self.authenticate(session, handle, &credentials);
                summary
            }
            Event::MailFrom {
                reverse_path,
                parameters,
                handle,
            } => {
                self.message.clear();
                if reverse_path.to_string().starts_with("reject") {
                    session
                        .reject(handle, reply(550, "5.7.1 Sender rejected"))
                        .unwrap();
                } else {
                    session.accept(handle).unwrap();
                }
                format!("mail <{reverse_path}> {parameters:?}")
            }
            Event::RcptTo {
                forward_path,
                parameters,
                handle,
            } => {
                if forward_path.local_part().starts_with("reject") {
                    session
                        .reject(handle, reply(550, "5.1.1 No such user"))
                        .unwrap();
                } else {
                    session.accept(handle).unwrap();
                }
                format!("rcpt <{forward_path}> {parameters:?}")
            }
            Event::MessageComplete { recipient, handle } => {
                let summary = format!(
                    "message {} {:?}",
                    self.message.escape_ascii(),
                    recipient.as_ref().map(ToString::to_string)
                );
                let fail = recipient
                    .as_ref()
                    .is_some_and(|recipient| recipient.local_part().starts_with("full"));
                if fail {
                    session
                        .reject(handle, reply(452, "4.2.2 Mailbox full"))
                        .unwrap();
                } else {
                    self.queued += 1;
                    let text = format!("2.0.0 Queued as Q{}", self.queued);
                    session.accept_with(handle, reply(250, &text)).unwrap();
                }
                summary
            }
            Event::MessageRejected { reply } => {
                self.message.clear();
                format!("rejected {reply}")
            }
            Event::Closed { error: None } => "closed".to_owned(),
            Event::Closed { error: Some(error) } => format!("closed: {error}"),
            other => format!("{other:?}"),
        }
    }

    /// Accepts `alice` with the password or key `s3cret-example`, or the token
    /// `ya29.example-token`.
    fn authenticate(&self, session: &mut Session, handle: Handle, credentials: &AuthCredentials) {
        let secret = match credentials {
            AuthCredentials::XOAuth2 { .. } | AuthCredentials::OAuthBearer { .. } => {
                "ya29.example-token"
            }
            _ => "s3cret-example",
        };
        let known = matches!(credentials.username(), "alice" | "alice@example.com");
        if known {
            session.verify_secret(handle, credentials, secret).unwrap();
        } else {
            session.reject_auth(handle).unwrap();
        }
    }
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(
        ReplyCode::new(code).unwrap(),
        vec![Bytes::copy_from_slice(text.as_bytes())],
    )
}

/// The outcome of one run: the server stream and the event summaries.
type Run = (Vec<u8>, Vec<String>);

fn run(script: &str, feed: Feed) -> Result<Run, String> {
    let start = Instant::now();
    let mut now = start;
    let mut config = Config::default();
    config.domain = Domain::parse("mx.example.net").unwrap();
    config.connection_id = 1896;
    let mut session: Option<Session> = None;
    let mut app = App {
        events: Vec::new(),
        message: Vec::new(),
        queued: 0,
    };
    let mut sent = Vec::new();
    let mut expected = Vec::new();
    let mut matched = 0;

    for (number, line) in script.lines().enumerate() {
        let number = number + 1;
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (directive, rest) = line.split_once(' ').unwrap_or((line, ""));

        if directive == "config" {
            if session.is_some() {
                return Err(format!("line {number}: config after the session started"));
            }
            for setting in rest.split_whitespace() {
                configure(&mut config, setting).map_err(|e| format!("line {number}: {e}"))?;
            }
            continue;
        }

        let session = session.get_or_insert_with(|| Session::new(config.clone(), start));
        match directive {
            "C:" => {
                if sent != expected {
                    return Err(format!(
                        "line {number}: before this client write the server sent\n  {}\nbut \
                         the transcript expects\n  {}",
                        sent.escape_ascii(),
                        expected.escape_ascii()
                    ));
                }
                let bytes = unescape(rest);
                match feed {
                    Feed::Whole => session.handle_input(&bytes),
                    Feed::OctetByOctet => {
                        for octet in &bytes {
                            session.handle_input(std::slice::from_ref(octet));
                            app.drain(session);
                        }
                    }
                }
            }
            "S:" => expected.extend_from_slice(&unescape(rest)),
            "tls" => session
                .tls_established()
                .map_err(|e| format!("line {number}: tls_established failed: {e}"))?,
            "eof" => session.handle_eof(),
            "advance" => {
                let seconds: u64 = rest
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {number}: {rest} is not a number of seconds"))?;
                now += Duration::from_secs(seconds);
                session.handle_timeout(now);
            }
            "event" => {
                app.drain(session);
                let Some(offset) = app.events[matched..].iter().position(|e| e.contains(rest))
                else {
                    return Err(format!(
                        "line {number}: no event containing {rest:?} after the first {matched} \
                         of {:#?}",
                        app.events
                    ));
                };
                matched += offset + 1;
            }
            "no-event" => {
                app.drain(session);
                if let Some(event) = app.events.iter().find(|e| e.contains(rest)) {
                    return Err(format!("line {number}: unexpected event {event:?}"));
                }
            }
            "final" => {
                app.drain(session);
                if app.events.len() > matched {
                    return Err(format!(
                        "line {number}: unmatched events {:#?}",
                        &app.events[matched..]
                    ));
                }
            }
            _ => return Err(format!("line {number}: unknown directive {directive}")),
        }

        app.drain(session);
        while let Some(bytes) = session.poll_transmit(now) {
            sent.extend_from_slice(&bytes);
        }
    }

    if sent != expected {
        return Err(format!(
            "at the end the server sent\n  {}\nbut the transcript expects\n  {}",
            sent.escape_ascii(),
            expected.escape_ascii()
        ));
    }
    Ok((sent, app.events))
}

fn configure(config: &mut Config, setting: &str) -> Result<(), String> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| format!("{setting} is not key=value"))?;
    let yes = value == "yes";
    let number = || {
        value
            .parse::<u64>()
            .map_err(|_| format!("{value} is not a number"))
    };
    match key {
        "tls" => {
            config.tls = match value {
                "starttls" => TlsMode::StartTls,
                "implicit" => TlsMode::Implicit,
                "none" => TlsMode::Unavailable,
                _ => return Err(format!("unknown tls {value}")),
            }
        }
        "auth" => {
            config.auth_mechanisms = value.split(',').map(Mechanism::from_name).collect();
        }
        "insecure_auth" => config.allow_insecure_auth = yes,
        "require_tls" => config.require_tls = yes,
        "require_auth" => config.require_auth = yes,
        "lmtp" => config.lmtp = yes,
        "max_size" => config.max_message_size = Some(number()?).filter(|&size| size > 0),
        "max_recipients" => config.max_recipients = number()? as usize,
        "max_errors" => config.max_errors = number()? as usize,
        "bare_line_ends" if value == "accept" => config.bare_line_ends = BareLineEnds::Accept,
        "unknown_parameters" => config.pass_unknown_parameters = yes,
        "timeout" => {
            config.timeouts.command = Duration::from_secs(number()?);
            config.timeouts.data = Duration::from_secs(number()?);
        }
        "off" => {
            let extensions = &mut config.extensions;
            for name in value.split(',') {
                let flag = match name {
                    "pipelining" => &mut extensions.pipelining,
                    "size" => &mut extensions.size,
                    "8bitmime" => &mut extensions.eight_bit_mime,
                    "smtputf8" => &mut extensions.smtputf8,
                    "chunking" => &mut extensions.chunking,
                    "binarymime" => &mut extensions.binarymime,
                    "dsn" => &mut extensions.dsn,
                    "enhancedstatuscodes" => &mut extensions.enhanced_status_codes,
                    "requiretls" => &mut extensions.requiretls,
                    _ => return Err(format!("unknown extension {name}")),
                };
                *flag = false;
            }
        }
        _ => return Err(format!("unknown setting {setting}")),
    }
    Ok(())
}

/// Expands the escapes `\r`, `\n`, `\t`, `\\`, `\"` and `\xHH`.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('"') => out.push(b'"'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).expect("\\x takes two hex digits"));
            }
            other => panic!("unknown escape \\{other:?}"),
        }
    }
    out
}
