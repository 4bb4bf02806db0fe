//! Runs the session transcripts in `tests/transcripts/`; `tests/transcripts/README.md` gives
//! their format.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![expect(
    clippy::disallowed_methods,
    reason = "the test takes one real instant as the start of its fake clock"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use smtp_proto::client::{Config, Dsn, Envelope, Event, RecipientPolicy, Session, TlsPolicy};
use smtp_proto::command::{Command, Notify, Ret};
use smtp_proto::{Credentials, Domain, Mailbox, Mechanism, ReversePath, Timeouts, XText};

const M0: &[u8] = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nhello\r\n";

/// How the server writes of a transcript reach the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    Whole,
    OctetByOctet,
}

#[test]
fn every_transcript_passes_whole_and_split() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("the transcript folder exists")
        .map(|entry| entry.expect("the folder can be listed").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() > 40, "only {} transcripts found", paths.len());

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
            // Event texts may differ in counts of buffered octets, so the kinds are compared.
            (Ok((sent_a, events_a)), Ok((sent_b, events_b)))
                if sent_a != sent_b || kinds(events_a) != kinds(events_b) =>
            {
                writeln!(
                    failures,
                    "{name}: split feeding changed the run\nwhole: {} {events_a:?}\nsplit: {} \
                     {events_b:?}",
                    show(sent_a),
                    show(sent_b)
                )
                .unwrap()
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn dot_stuffing_many_lines() {
    let body: Vec<u8> = b".x\r\n".repeat(100_000);
    let mut expected = b"..x\r\n".repeat(100_000);
    expected.extend_from_slice(b".\r\n");

    let mut config = transcript_config();
    config.max_transmit_chunk = 4093;
    let (wire, events) = simple_transaction(config, Bytes::from(body));

    let start = wire
        .windows(b"354 go ahead\r\n".len())
        .position(|_| true)
        .map(|_| wire.len() - expected.len())
        .unwrap();
    assert_eq!(&wire[start..], &expected[..]);
    assert!(
        events.iter().any(|e| e.starts_with("sent #0 250")),
        "{events:?}"
    );
}

#[test]
fn sixty_four_kib_message_without_final_crlf() {
    let mut body = b"Subject: c\r\n\r\n".to_vec();
    for _ in 0..819 {
        body.extend_from_slice(&[b'x'; 78]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"xx");
    assert_eq!(body.len(), 65536);

    let (wire, events) = simple_transaction(transcript_config(), Bytes::from(body.clone()));

    let data = &wire[wire.len() - 65541..];
    assert_eq!(&data[..65536], &body[..]);
    assert_eq!(&data[65536..], b"\r\n.\r\n");
    assert!(
        events.iter().any(|e| e.starts_with("sent #0 250")),
        "{events:?}"
    );
}

#[test]
fn megabyte_reply_line_is_bounded_error() {
    let mut session = Session::new(transcript_config(), Instant::now());
    let mut line = b"220 ".to_vec();
    line.extend_from_slice(&vec![b'a'; 1 << 20]);

    for piece in line.chunks(4096) {
        session.handle_input(piece);
    }

    let events: Vec<String> = std::iter::from_fn(|| session.poll_event())
        .map(|event| summarise(&event))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("closed: invalid reply from server"),
        "{events:?}"
    );
    assert!(session.is_closed());
}

#[test]
fn million_reply_lines_are_bounded_error() {
    let mut session = Session::new(transcript_config(), Instant::now());
    session.handle_input(b"220 mx.example.net\r\n");
    let lines = b"250-x\r\n".repeat(1_000_000);

    for piece in lines.chunks(65536) {
        session.handle_input(piece);
    }

    let events: Vec<String> = std::iter::from_fn(|| session.poll_event())
        .map(|event| summarise(&event))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("closed: invalid reply from server")),
        "{events:?}"
    );
    assert!(session.is_closed());
}

#[test]
fn injected_addresses_are_rejected_before_encoding() {
    let cases = [
        (
            "recipient with CRLF and RCPT",
            "b@example.net>\r\nRCPT TO:<evil@example.com",
        ),
        ("recipient with LF and DATA", "b@example.net\nDATA"),
        (
            "sender with CR",
            "a@example.org\rRCPT TO:<evil@example.com>",
        ),
        ("quoted local part with CRLF", "\"b\r\nRSET\"@example.net"),
        ("angle bracket and parameter", "b@example.net> NOTIFY=NEVER"),
        ("space in domain", "b@exa mple.net"),
    ];

    for (label, address) in cases {
        assert!(
            Mailbox::parse(address).is_err(),
            "{label}: {address:?} accepted"
        );
        assert!(
            ReversePath::parse(address).is_err(),
            "{label}: {address:?} accepted"
        );
    }
}

/// Sends one message through a server that accepts everything and returns the client stream and
/// the event summaries.
fn simple_transaction(config: Config, body: Bytes) -> (Vec<u8>, Vec<String>) {
    let now = Instant::now();
    let mut session = Session::new(config, now);
    let envelope = Envelope::new(
        ReversePath::parse("a@example.org").unwrap(),
        vec![Mailbox::parse("b@example.net").unwrap()],
    )
    .unwrap();
    session.send(envelope, body).unwrap();

    let mut wire = Vec::new();
    let mut events = Vec::new();
    for reply in [
        &b"220 mx.example.net\r\n"[..],
        b"250 mx.example.net\r\n",
        b"250 ok\r\n",
        b"250 ok\r\n",
        b"354 go ahead\r\n",
        b"250 queued\r\n",
    ] {
        session.handle_input(reply);
        while let Some(bytes) = session.poll_transmit(now) {
            wire.extend_from_slice(&bytes);
        }
        while let Some(event) = session.poll_event() {
            events.push(summarise(&event));
        }
    }
    (wire, events)
}

fn transcript_config() -> Config {
    let mut config = Config::default();
    config.ehlo_name = Domain::parse("client.example.org").unwrap();
    config.tls = TlsPolicy::None;
    config
}

/// The outcome of one run: the client stream and the event summaries.
type Run = (Vec<u8>, Vec<String>);

fn run(script: &str, feed: Feed) -> Result<Run, String> {
    let start = Instant::now();
    let mut now = start;
    let mut config = transcript_config();
    let mut one_transmit_per_step = false;
    let mut session: Option<Session> = None;
    let mut sent = Vec::new();
    let mut expected = Vec::new();
    let mut events: Vec<String> = Vec::new();
    let mut matched = 0;
    let mut nevers = Vec::new();
    let mut dsn: Option<Dsn> = None;
    let mut require_tls = false;

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
                let (key, value) = setting
                    .split_once('=')
                    .ok_or_else(|| format!("line {number}: {setting} is not key=value"))?;
                match key {
                    "tls" => {
                        config.tls = match value {
                            "none" => TlsPolicy::None,
                            "opportunistic" => TlsPolicy::Opportunistic,
                            "required" => TlsPolicy::Required,
                            "wrapper" => TlsPolicy::Wrapper,
                            _ => return Err(format!("line {number}: unknown tls {value}")),
                        }
                    }
                    "auth" => {
                        let (user, password) =
                            value.split_once(':').unwrap_or((value, "s3cret-example"));
                        config.credentials = Some(Credentials::password(user, password));
                    }
                    "oauth" => {
                        let (user, token) = value
                            .split_once(':')
                            .ok_or_else(|| format!("line {number}: oauth=USER:TOKEN"))?;
                        config.credentials = Some(Credentials::oauth2(user, token));
                    }
                    "mechanism" => config.mechanism = Some(Mechanism::from_name(value)),
                    "insecure_auth" => config.allow_insecure_auth = value == "yes",
                    "pipelining" => config.pipelining = value == "yes",
                    "policy" if value == "all-or-nothing" => {
                        config.recipient_policy = RecipientPolicy::AllOrNothing;
                    }
                    "greeting_timeout" => {
                        let mut timeouts = Timeouts::default();
                        timeouts.greeting = seconds(value, number)?;
                        config.timeouts = timeouts;
                    }
                    "bdat_chunk" => {
                        config.bdat_chunk_size = value
                            .parse()
                            .map_err(|_| format!("line {number}: bad bdat_chunk {value}"))?;
                    }
                    "lmtp" => config.lmtp = value == "yes",
                    "reject_long_lines" => config.reject_long_lines = value == "yes",
                    "ehlo" => {
                        config.ehlo_name =
                            Domain::parse(value).map_err(|e| format!("line {number}: {e}"))?;
                    }
                    "chunking" => config.chunking = value == "yes",
                    "chunk" => {
                        config.max_transmit_chunk = value
                            .parse()
                            .map_err(|_| format!("line {number}: bad chunk {value}"))?;
                        one_transmit_per_step = true;
                    }
                    _ => return Err(format!("line {number}: unknown setting {setting}")),
                }
            }
            continue;
        }

        let session = session.get_or_insert_with(|| Session::new(config.clone(), start));
        match directive {
            "S:" => {
                if sent != expected {
                    return Err(format!(
                        "line {number}: before this server write the client sent\n  {}\nbut \
                         the transcript expects\n  {}",
                        show(&sent),
                        show(&expected)
                    ));
                }
                let bytes = unescape(rest);
                match feed {
                    Feed::Whole => session.handle_input(&bytes),
                    Feed::OctetByOctet => {
                        for octet in &bytes {
                            session.handle_input(std::slice::from_ref(octet));
                        }
                    }
                }
            }
            "C:" => expected.extend_from_slice(&unescape(rest)),
            "dsn" => dsn = Some(parse_dsn(rest).map_err(|e| format!("line {number}: {e}"))?),
            "require_tls" => require_tls = true,
            "send" => {
                let (mut envelope, body) =
                    parse_send(rest).map_err(|e| format!("line {number}: {e}"))?;
                if let Some(dsn) = dsn.take() {
                    envelope = envelope.with_dsn(dsn);
                }
                if std::mem::take(&mut require_tls) {
                    envelope = envelope.with_require_tls();
                }
                session
                    .send(envelope, body)
                    .map_err(|e| format!("line {number}: send failed: {e}"))?;
            }
            "command" => {
                let command = parse_command(rest).map_err(|e| format!("line {number}: {e}"))?;
                session
                    .command(command)
                    .map_err(|e| format!("line {number}: command failed: {e}"))?;
            }
            "data" => {
                let body = parse_body(rest.trim_start_matches("body="))
                    .map_err(|e| format!("line {number}: {e}"))?;
                session
                    .data(body)
                    .map_err(|e| format!("line {number}: data failed: {e}"))?;
            }
            "quit" => session.quit(),
            "tls" => session
                .tls_established()
                .map_err(|e| format!("line {number}: tls_established failed: {e}"))?,
            "eof" => session.handle_eof(),
            "advance" => {
                now += seconds(rest, number)?;
                session.handle_timeout(now);
            }
            "event" => {
                collect(session, &mut events);
                let Some(offset) = events[matched..].iter().position(|e| e.contains(rest)) else {
                    return Err(format!(
                        "line {number}: no event containing {rest:?} after the first {matched} \
                         of {events:#?}"
                    ));
                };
                matched += offset + 1;
            }
            "no-event" => {
                collect(session, &mut events);
                if let Some(event) = events.iter().find(|e| e.contains(rest)) {
                    return Err(format!("line {number}: unexpected event {event:?}"));
                }
            }
            "final" => {
                collect(session, &mut events);
                if events.len() > matched {
                    return Err(format!(
                        "line {number}: unmatched events {:#?}",
                        &events[matched..]
                    ));
                }
            }
            "never" => nevers.push(unescape(rest)),
            _ => return Err(format!("line {number}: unknown directive {directive}")),
        }

        // Checks do not give the session a turn, so a slow network takes one transmit per step.
        if !matches!(directive, "C:" | "event" | "no-event" | "final" | "never") {
            drain(session, &mut sent, now, one_transmit_per_step);
        }
        collect(session, &mut events);
    }

    if sent != expected {
        return Err(format!(
            "at the end the client sent\n  {}\nbut the transcript expects\n  {}",
            show(&sent),
            show(&expected)
        ));
    }
    for never in &nevers {
        if sent.windows(never.len()).any(|window| window == &never[..]) {
            return Err(format!("the client sent {}", show(never)));
        }
    }
    Ok((sent, events))
}

/// Returns the first word of each event summary, such as `sent` or `closed:`. A TLS upgrade
/// request is left out: fed octet by octet, it comes before bytes injected behind the 220 reply
/// to STARTTLS arrive, and fed whole, those bytes are seen first.
fn kinds(events: &[String]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.split(' ').next().unwrap_or_default())
        .filter(|kind| *kind != "tls-upgrade")
        .collect()
}

fn drain(session: &mut Session, sent: &mut Vec<u8>, now: Instant, once: bool) {
    while let Some(bytes) = session.poll_transmit(now) {
        sent.extend_from_slice(&bytes);
        if once {
            break;
        }
    }
}

fn collect(session: &mut Session, events: &mut Vec<String>) {
    while let Some(event) = session.poll_event() {
        events.push(summarise(&event));
    }
}

fn summarise(event: &Event) -> String {
    match event {
        Event::GreetingReceived { reply } => format!("greeting {reply}"),
        Event::TlsUpgradeRequired => "tls-upgrade".to_string(),
        Event::Authenticated { mechanism } => format!("authenticated {}", mechanism.name()),
        Event::Ready => "ready".to_string(),
        Event::TransactionCompleted { handle, result } => {
            let id = handle_number(handle);
            match result {
                Ok(delivery) => {
                    let mut line = format!("sent #{id} {}", delivery.reply());
                    for recipient in delivery.recipients() {
                        let reply = recipient.data_reply().unwrap_or_else(|| recipient.reply());
                        write!(line, "; {} {}", recipient.recipient(), reply.code().value())
                            .unwrap();
                        if recipient.is_permanent() {
                            line.push_str(" permanent");
                        } else if recipient.is_transient() {
                            line.push_str(" transient");
                        }
                    }
                    line
                }
                Err(error) => format!("failed #{id} {}: {error}", class(error)),
            }
        }
        Event::CommandCompleted { handle, result } => match result {
            Ok(reply) => format!("reply #{} {reply}", handle_number(handle)),
            Err(error) => format!("reply #{} error: {error}", handle_number(handle)),
        },
        Event::Closed { error: None } => "closed".to_string(),
        Event::Closed { error: Some(error) } => format!("closed: {error}"),
        other => format!("{other:?}"),
    }
}

fn class(error: &smtp_proto::client::Error) -> &'static str {
    if error.is_permanent() {
        "permanent"
    } else if error.is_transient() {
        "transient"
    } else {
        "unknown"
    }
}

/// Reads the number out of a handle's `Debug` form, `Handle(N)`.
fn handle_number(handle: &smtp_proto::client::Handle) -> String {
    format!("{handle:?}")
        .trim_start_matches("Handle(")
        .trim_end_matches(')')
        .to_string()
}

fn parse_send(rest: &str) -> Result<(Envelope, Bytes), String> {
    let (fields, body) = rest.split_once(" body=").ok_or("send needs body= last")?;
    let mut from = None;
    let mut to = Vec::new();
    for field in fields.split_whitespace() {
        match field.split_once('=') {
            Some(("from", value)) => {
                from = Some(ReversePath::parse(value).map_err(|e| e.to_string())?);
            }
            Some(("to", value)) => {
                for address in value.split(',') {
                    to.push(Mailbox::parse(address).map_err(|e| e.to_string())?);
                }
            }
            _ => return Err(format!("unknown send field {field}")),
        }
    }
    let envelope = Envelope::new(from.ok_or("send needs from=")?, to).map_err(|e| e.to_string())?;
    Ok((envelope, parse_body(body)?))
}

fn parse_dsn(rest: &str) -> Result<Dsn, String> {
    let mut dsn = Dsn::default();
    for field in rest.split_whitespace() {
        match field.split_once('=') {
            Some(("ret", "HDRS")) => dsn.ret = Some(Ret::Headers),
            Some(("ret", "FULL")) => dsn.ret = Some(Ret::Full),
            Some(("envid", value)) => {
                dsn.envid = Some(XText::new(value).map_err(|e| e.to_string())?)
            }
            Some(("notify", value)) => {
                let mut notify = Notify::NEVER;
                for condition in value.split(',') {
                    notify = notify
                        | match condition {
                            "NEVER" => Notify::NEVER,
                            "SUCCESS" => Notify::SUCCESS,
                            "FAILURE" => Notify::FAILURE,
                            "DELAY" => Notify::DELAY,
                            other => return Err(format!("unknown NOTIFY condition {other}")),
                        };
                }
                dsn.notify = Some(notify);
            }
            Some(("orcpt", value)) => dsn.original_recipients = value == "yes",
            Some(("best_effort", value)) => dsn.best_effort = value == "yes",
            _ => return Err(format!("unknown dsn field {field}")),
        }
    }
    Ok(dsn)
}

fn parse_body(body: &str) -> Result<Bytes, String> {
    match body {
        "M0" => Ok(Bytes::from_static(M0)),
        "M1164" => Ok(Bytes::from(m1164())),
        quoted if quoted.starts_with('"') && quoted.ends_with('"') && quoted.len() >= 2 => {
            Ok(Bytes::from(unescape(&quoted[1..quoted.len() - 1])))
        }
        other => Err(format!("unknown body {other}")),
    }
}

fn parse_command(rest: &str) -> Result<Command, String> {
    let (verb, argument) = rest.split_once(' ').unwrap_or((rest, ""));
    let argument_value = || smtp_proto::command::Argument::new(argument).map_err(|e| e.to_string());
    Ok(match verb {
        "NOOP" => Command::Noop,
        "RSET" => Command::Rset,
        "QUIT" => Command::Quit,
        "DATA" => Command::Data,
        "HELP" if argument.is_empty() => Command::Help(None),
        "HELP" => Command::Help(Some(argument_value()?)),
        "VRFY" => Command::Vrfy(argument_value()?),
        "EXPN" => Command::Expn(argument_value()?),
        "EHLO" => Command::Ehlo(Domain::parse(argument).map_err(|e| e.to_string())?),
        "MAIL" => Command::Mail {
            reverse_path: ReversePath::parse(argument).map_err(|e| e.to_string())?,
            parameters: Default::default(),
        },
        "RCPT" => Command::Rcpt {
            forward_path: Mailbox::parse(argument).map_err(|e| e.to_string())?,
            parameters: Default::default(),
        },
        _ => return Err(format!("unknown command {verb}")),
    })
}

fn m1164() -> Vec<u8> {
    let mut message =
        b"From: a@example.org\r\nTo: b@example.net\r\nSubject: size test\r\n\r\n".to_vec();
    message.extend_from_slice(&[b'A'; 1100]);
    message.extend_from_slice(b"\r\n");
    message
}

fn seconds(value: &str, number: usize) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .map(Duration::from_secs_f64)
        .map_err(|_| format!("line {number}: {value} is not a number of seconds"))
}

/// Expands the escapes of the transcript format and the `<M0>` and `<M1164>` placeholders.
fn unescape(text: &str) -> Vec<u8> {
    let text = text
        .replace("<M0>", &String::from_utf8_lossy(M0))
        .replace("<M1164>", &String::from_utf8_lossy(&m1164()));
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

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
