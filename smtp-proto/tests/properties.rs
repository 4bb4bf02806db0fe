//! Property tests: reply round trips, split-independent decoding and sessions, dot-stuffing and
//! the end of data for any body, and CR, LF and NUL rejected in every typed argument.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![expect(
    clippy::disallowed_methods,
    reason = "the session test takes one real instant as the start of its fake clock"
)]

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::sample::Index;
use smtp_proto::address::AddressErrorKind;
use smtp_proto::client::{Config, Envelope, Session, TlsPolicy};
use smtp_proto::command::{Argument, Command, MailParameters, Parameter, RcptParameters};
use smtp_proto::data::{DataDecoder, DecodeStatus};
use smtp_proto::{
    AddressError, DataEncoder, Domain, Mailbox, Reply, ReplyCode, ReplyDecoder, ReversePath, XText,
};

#[expect(
    unreachable_pub,
    reason = "the checks are public in the fuzz crate that also builds them"
)]
#[expect(dead_code, reason = "only the DATA helpers are used here")]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

proptest! {
    #[test]
    fn reply_decode_of_encode_is_identity(reply in reply()) {
        let mut wire = BytesMut::new();
        reply.encode(&mut wire);

        let decoded = ReplyDecoder::default().decode(&mut wire);

        prop_assert_eq!(decoded, Ok(Some(reply)));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn reply_encode_of_decode_is_fixed_point(wire in reply_wire()) {
        let mut buf = BytesMut::from(&wire[..]);
        let first = ReplyDecoder::default().decode(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());

        let mut encoded = BytesMut::new();
        first.encode(&mut encoded);
        let mut again = encoded.clone();
        let second = ReplyDecoder::default().decode(&mut again).unwrap().unwrap();

        prop_assert_eq!(&second, &first);
        let mut reencoded = BytesMut::new();
        second.encode(&mut reencoded);
        prop_assert_eq!(reencoded, encoded);
    }

    #[test]
    fn reply_stream_split_anywhere(
        replies in prop::collection::vec(reply(), 1..6),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let mut wire = BytesMut::new();
        for reply in &replies {
            reply.encode(&mut wire);
        }

        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in split_at(&wire, &cuts) {
            buf.extend_from_slice(piece);
            while let Some(reply) = decoder.decode(&mut buf).unwrap() {
                decoded.push(reply);
            }
        }

        prop_assert_eq!(decoded, replies);
        prop_assert!(buf.is_empty());
        prop_assert!(!decoder.has_partial_reply());
    }

    #[test]
    fn session_split_anywhere_same_run(
        scenario in scenario(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let start = Instant::now();
        let whole = scenario.run_with_server(start);
        prop_assert!(
            whole.events.iter().any(|event| event == "Closed { error: None }"),
            "the scenario did not end with QUIT: {:#?}", whole.events
        );
        let completed = whole.events.iter().filter(|e| e.starts_with("TransactionCompleted"));
        prop_assert_eq!(completed.count(), scenario.messages.len());

        let split = scenario.replay(start, &whole.server_writes, &cuts);

        prop_assert_eq!(fuzz::show(&split.client_bytes), fuzz::show(&whole.client_bytes));
        prop_assert_eq!(split.events, whole.events);
    }

    #[test]
    fn dot_stuffing_round_trip(
        body in body(),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let wire = encode_in_pieces(&body, &cuts);

        // The server reads the data, then the next command in the same buffer.
        let mut stream = wire.to_vec();
        stream.extend_from_slice(b"QUIT\r\n");
        let mut unstuffed = BytesMut::new();
        let status = DataDecoder::new().decode(&stream, &mut unstuffed);

        prop_assert_eq!(status, DecodeStatus::Complete { consumed: wire.len() });
        prop_assert_eq!(fuzz::show(&unstuffed), fuzz::show(&fuzz::data_encoder::canonical(&body)));
    }

    #[test]
    fn only_final_end_of_data(
        body in body(),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let wire = encode_in_pieces(&body, &cuts);

        // The CRLF that ends the DATA command comes right before the first body octet.
        let mut after_data = b"DATA\r\n".to_vec();
        after_data.extend_from_slice(&wire);
        prop_assert_eq!(fuzz::count(&after_data, b"\r\n.\r\n"), 1, "{}", fuzz::show(&wire));
        prop_assert!(after_data.ends_with(b"\r\n.\r\n"));
        for (index, &octet) in wire.iter().enumerate() {
            if octet == b'\n' {
                prop_assert!(index > 0 && wire[index - 1] == b'\r', "bare LF at {}", index);
            }
            if octet == b'\r' {
                prop_assert_eq!(wire.get(index + 1), Some(&b'\n'), "bare CR at {}", index);
            }
        }
    }

    #[test]
    fn typed_arguments_reject_line_breaks_and_nul(
        (constructor, valid) in typed_argument(),
        forbidden in prop_oneof![Just("\r"), Just("\n"), Just("\0"), Just("\r\n"), Just("\x7f")],
        position in any::<Index>(),
    ) {
        prop_assert!(constructor.build(valid).is_ok(), "{:?} rejects {:?}", constructor, valid);

        let boundaries: Vec<usize> =
            (0..=valid.len()).filter(|&i| valid.is_char_boundary(i)).collect();
        let at = *position.get(&boundaries);
        let tainted = format!("{}{forbidden}{}", &valid[..at], &valid[at..]);
        let error = constructor.build(&tainted).unwrap_err();

        prop_assert_eq!(error.kind(), AddressErrorKind::ControlCharacter, "{}", error);
        // Mailbox::new names the whole address, which contains the local part.
        prop_assert!(error.value().contains(&tainted), "{:?} names {:?}", error, error.value());
    }

    #[test]
    fn accepted_arguments_encode_one_line(
        text in prop_oneof![
            "[ -~\u{80}-\u{10ffff}\r\n\0\t]{0,40}",
            "[a-z.\" \r\n\0]{1,8}@[a-z.\r\n\0-]{1,12}",
        ],
    ) {
        let mut commands = Vec::new();
        if let Ok(mailbox) = Mailbox::parse(&text) {
            commands.push(Command::Rcpt {
                forward_path: mailbox,
                parameters: RcptParameters::default(),
            });
        }
        if let Ok(reverse_path) = ReversePath::parse(&text) {
            commands.push(Command::Mail { reverse_path, parameters: MailParameters::default() });
        }
        if let Ok(domain) = Domain::parse(&text) {
            commands.push(Command::Ehlo(domain));
        }
        if let Ok(argument) = Argument::new(&text) {
            commands.push(Command::Vrfy(argument));
        }
        if let Ok(envid) = XText::new(&text) {
            let mut parameters = MailParameters::default();
            parameters.envid = Some(envid);
            commands.push(Command::Mail { reverse_path: ReversePath::Null, parameters });
        }

        for command in commands {
            let mut line = BytesMut::new();
            command.encode(&mut line);
            prop_assert!(line.ends_with(b"\r\n"));
            let body = &line[..line.len() - 2];
            prop_assert!(
                !body.iter().any(|&octet| octet == b'\r' || octet == b'\n' || octet == 0),
                "{:?} encodes to {}", command, fuzz::show(&line)
            );
        }
    }
}

/// Encodes `body` as DATA, fed to the encoder in the pieces that `cuts` makes.
fn encode_in_pieces(body: &[u8], cuts: &[Index]) -> BytesMut {
    let mut encoder = DataEncoder::new();
    let mut wire = BytesMut::new();
    for chunk in split_at(body, cuts) {
        encoder.encode(chunk, &mut wire);
    }
    encoder.finish(&mut wire);
    wire
}

/// Cuts `bytes` at the positions that `cuts` picks, in order.
fn split_at<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut positions: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    positions.sort_unstable();
    positions.dedup();

    let mut pieces = Vec::new();
    let mut start = 0;
    for position in positions.into_iter().chain([bytes.len()]) {
        if position > start {
            pieces.push(&bytes[start..position]);
            start = position;
        }
    }
    pieces
}

/// Reply text octets: HT, printable ASCII and 8-bit octets.
fn text_octet() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
}

fn reply_code() -> impl Strategy<Value = ReplyCode> {
    (2u16..=5, 0u16..=5, 0u16..=9).prop_map(|(first, second, third)| {
        ReplyCode::new(first * 100 + second * 10 + third).unwrap()
    })
}

fn reply() -> impl Strategy<Value = Reply> {
    let line = prop::collection::vec(text_octet(), 0..80).prop_map(Bytes::from);
    (reply_code(), prop::collection::vec(line, 1..8))
        .prop_map(|(code, lines)| Reply::new(code, lines))
}

/// The wire form of one reply in any form the decoder accepts: lines with and without text, a
/// space with no text after it, and CRLF or bare LF line ends.
fn reply_wire() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop::collection::vec(text_octet(), 0..40),
        prop_oneof![Just(&b""[..]), Just(&b" "[..])],
        prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..])],
    );
    (reply_code(), prop::collection::vec(line, 1..6)).prop_map(|(code, lines)| {
        let digits = code.value().to_string();
        let last = lines.len() - 1;
        let mut wire = Vec::new();
        for (index, (text, last_separator, line_end)) in lines.into_iter().enumerate() {
            wire.extend_from_slice(digits.as_bytes());
            if index < last {
                wire.push(b'-');
                wire.extend_from_slice(&text);
            } else if text.is_empty() {
                wire.extend_from_slice(last_separator);
            } else {
                wire.push(b' ');
                wire.extend_from_slice(&text);
            }
            wire.extend_from_slice(line_end);
        }
        wire
    })
}

/// Message bodies built from the pieces that matter to dot-stuffing and SMTP smuggling.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\n.\n".to_vec()),
        Just(b"\r.\r".to_vec()),
        Just(b"\r\n.\n".to_vec()),
        Just(b"\n.\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b"text".to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

/// A constructor of a typed argument that the encoder writes into a command line.
#[derive(Clone, Copy, Debug)]
enum Constructor {
    Domain,
    Mailbox,
    LocalPart,
    ReversePath,
    XText,
    XTextEncoded,
    Argument,
    ParameterKeyword,
    ParameterValue,
}

impl Constructor {
    fn build(self, text: &str) -> Result<(), AddressError> {
        match self {
            Self::Domain => Domain::parse(text).map(drop),
            Self::Mailbox => Mailbox::parse(text).map(drop),
            Self::LocalPart => Mailbox::new(text, Domain::parse("example.org")?).map(drop),
            Self::ReversePath => ReversePath::parse(text).map(drop),
            Self::XText => XText::new(text).map(drop),
            Self::XTextEncoded => XText::decode(text).map(drop),
            Self::Argument => Argument::new(text).map(drop),
            Self::ParameterKeyword => Parameter::new(text, Some("value")).map(drop),
            Self::ParameterValue => Parameter::new("X-KEY", Some(text)).map(drop),
        }
    }
}

/// A constructor and a value it accepts.
fn typed_argument() -> impl Strategy<Value = (Constructor, &'static str)> {
    let cases: &[(Constructor, &[&'static str])] = &[
        (
            Constructor::Domain,
            &["mx.example.net", "[192.0.2.1]", "b\u{fc}cher.example"],
        ),
        (
            Constructor::Mailbox,
            &[
                "a@example.org",
                "\"first last\"@example.org",
                "\u{e9}@x.example",
            ],
        ),
        (
            Constructor::LocalPart,
            &["first.last", "\"quoted \\\" pair\""],
        ),
        (Constructor::ReversePath, &["", "<>", "bounce@example.org"]),
        (Constructor::XText, &["a+b=c d", "rfc822;x@example.org"]),
        (Constructor::XTextEncoded, &["a+2Bb+3Dc", "plain"]),
        (
            Constructor::Argument,
            &["postmaster", "staff list", "caf\u{e9}"],
        ),
        (Constructor::ParameterKeyword, &["X-KEY", "9X"]),
        (
            Constructor::ParameterValue,
            &["value", "caf\u{e9}", "a,b;c"],
        ),
    ];
    let flat: Vec<(Constructor, &'static str)> = cases
        .iter()
        .flat_map(|(constructor, values)| values.iter().map(|value| (*constructor, *value)))
        .collect();
    prop::sample::select(flat)
}

/// One message of a scenario: how many recipients it has and its body.
#[derive(Clone, Debug)]
struct Message {
    recipients: usize,
    body: Vec<u8>,
}

/// A valid session: what the server offers and the reply codes it sends.
#[derive(Clone, Debug)]
struct Scenario {
    greeting_lines: usize,
    /// EHLO keywords after the domain line, in the case the server writes them.
    keywords: Vec<String>,
    pipelining_config: bool,
    line_end: &'static str,
    messages: Vec<Message>,
    /// Reply codes to RCPT, used in turn.
    rcpt_codes: Vec<u16>,
    /// Reply codes after the end of data, used in turn.
    data_codes: Vec<u16>,
}

/// The server writes, client bytes and events of one run.
#[derive(Debug)]
struct Outcome {
    server_writes: Vec<Vec<u8>>,
    client_bytes: Vec<u8>,
    events: Vec<String>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let keyword = prop_oneof![
        Just("PIPELINING"),
        Just("pipelining"),
        Just("8BITMIME"),
        Just("SMTPUTF8"),
        Just("ENHANCEDSTATUSCODES"),
        Just("SIZE 10240000"),
        Just("SIZE"),
        Just("DSN"),
        Just("HELP"),
        Just("X-EXPERIMENT a=1 b"),
    ];
    // Mostly US-ASCII without NUL, so that most messages need no extension and get sent.
    let ascii = |body: Vec<u8>| -> Vec<u8> {
        body.into_iter()
            .map(|octet| match octet & 0x7f {
                0 => b'.',
                other => other,
            })
            .collect()
    };
    let body = prop_oneof![3 => body().prop_map(ascii), 1 => body()];
    let message = (1usize..=3, body).prop_map(|(recipients, body)| Message { recipients, body });
    (
        1usize..=3,
        prop::collection::vec(keyword.prop_map(String::from), 0..6),
        any::<bool>(),
        prop_oneof![Just("\r\n"), Just("\n")],
        prop::collection::vec(message, 1..4),
        prop::collection::vec(
            prop_oneof![4 => Just(250u16), 1 => Just(251), 1 => Just(550), 1 => Just(452)],
            1..6,
        ),
        prop::collection::vec(
            prop_oneof![4 => Just(250u16), 1 => Just(451), 1 => Just(554)],
            1..4,
        ),
    )
        .prop_map(
            |(greeting_lines, keywords, pipelining_config, line_end, messages, rcpt, data)| {
                Scenario {
                    greeting_lines,
                    keywords,
                    pipelining_config,
                    line_end,
                    messages,
                    rcpt_codes: rcpt,
                    data_codes: data,
                }
            },
        )
}

impl Scenario {
    fn session(&self, start: Instant) -> Session {
        let mut config = Config::default();
        config.ehlo_name = Domain::parse("client.example.org").unwrap();
        config.tls = TlsPolicy::None;
        config.pipelining = self.pipelining_config;
        config.max_transmit_chunk = 7;
        let mut session = Session::new(config, start);

        let recipients = ["b1@example.net", "b2@example.net", "b3@example.net"];
        for message in &self.messages {
            let to = recipients[..message.recipients]
                .iter()
                .map(|address| Mailbox::parse(address).unwrap())
                .collect();
            let envelope = Envelope::new(ReversePath::parse("a@example.org").unwrap(), to);
            session
                .send(envelope.unwrap(), Bytes::from(message.body.clone()))
                .unwrap();
        }
        session.quit();
        session
    }

    /// Runs the session against a server that replies to every command, and records the
    /// server's writes.
    fn run_with_server(&self, start: Instant) -> Outcome {
        let mut session = self.session(start);
        let mut server = Server::new(self);
        let mut outcome = Outcome {
            server_writes: Vec::new(),
            client_bytes: Vec::new(),
            events: Vec::new(),
        };

        let mut write = server.greeting();
        while !write.is_empty() {
            session.handle_input(&write);
            outcome.server_writes.push(write);
            let sent = drain(&mut session, start, &mut outcome);
            write = server.receive(&sent);
        }
        outcome
    }

    /// Feeds the recorded server writes again, each cut at the positions `cuts` picks in the
    /// whole stream, and lets the session write after every piece.
    fn replay(&self, start: Instant, writes: &[Vec<u8>], cuts: &[Index]) -> Outcome {
        let mut session = self.session(start);
        let mut outcome = Outcome {
            server_writes: Vec::new(),
            client_bytes: Vec::new(),
            events: Vec::new(),
        };

        let total: usize = writes.iter().map(Vec::len).sum();
        let mut positions: Vec<usize> = cuts.iter().map(|cut| cut.index(total + 1)).collect();
        positions.sort_unstable();
        positions.dedup();
        let mut offset = 0;
        for write in writes {
            let inside: Vec<usize> = positions
                .iter()
                .filter(|&&p| p > offset && p < offset + write.len())
                .map(|&p| p - offset)
                .collect();
            let mut start_of_piece = 0;
            for end in inside.into_iter().chain([write.len()]) {
                session.handle_input(&write[start_of_piece..end]);
                drain(&mut session, start, &mut outcome);
                start_of_piece = end;
            }
            offset += write.len();
        }
        outcome
    }
}

/// Takes every transmit and event and returns the bytes written.
fn drain(session: &mut Session, now: Instant, outcome: &mut Outcome) -> Vec<u8> {
    let mut sent = Vec::new();
    while let Some(bytes) = session.poll_transmit(now) {
        sent.extend_from_slice(&bytes);
    }
    while let Some(event) = session.poll_event() {
        outcome.events.push(format!("{event:?}"));
    }
    outcome.client_bytes.extend_from_slice(&sent);
    sent
}

/// A scripted server: it replies to each complete command line, reads message data up to its
/// end, and sends the replies to all the input it has in one write.
struct Server<'a> {
    scenario: &'a Scenario,
    input: Vec<u8>,
    data: Option<DataDecoder>,
    accepted: usize,
    rcpt_replies: usize,
    data_replies: usize,
    closed: bool,
}

impl<'a> Server<'a> {
    fn new(scenario: &'a Scenario) -> Self {
        Self {
            scenario,
            input: Vec::new(),
            data: None,
            accepted: 0,
            rcpt_replies: 0,
            data_replies: 0,
            closed: false,
        }
    }

    fn greeting(&self) -> Vec<u8> {
        let lines: VecDeque<String> = (0..self.scenario.greeting_lines)
            .map(|index| format!("mx.example.net ESMTP line {index}"))
            .collect();
        self.reply(220, lines)
    }

    fn receive(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.input.extend_from_slice(bytes);
        let mut write = Vec::new();
        while !self.closed {
            if let Some(decoder) = self.data.as_mut() {
                let mut body = BytesMut::new();
                match decoder.decode(&self.input, &mut body) {
                    DecodeStatus::Complete { consumed } => {
                        self.input.drain(..consumed);
                        self.data = None;
                        let codes = &self.scenario.data_codes;
                        let code = codes[self.data_replies % codes.len()];
                        self.data_replies += 1;
                        write.extend(self.line(code, "end of data"));
                        continue;
                    }
                    _ => {
                        self.input.clear();
                        break;
                    }
                }
            }

            let Some(end) = self.input.windows(2).position(|pair| pair == b"\r\n") else {
                break;
            };
            let line: Vec<u8> = self.input.drain(..end + 2).take(end).collect();
            let reply = self.answer(&line);
            write.extend(reply);
        }
        write
    }

    fn answer(&mut self, line: &[u8]) -> Vec<u8> {
        let verb = line
            .split(|&octet| octet == b' ')
            .next()
            .unwrap_or_default();
        match verb {
            b"EHLO" => {
                let mut lines: VecDeque<String> = self.scenario.keywords.iter().cloned().collect();
                lines.push_front(String::from("mx.example.net"));
                self.reply(250, lines)
            }
            b"MAIL" => {
                self.accepted = 0;
                self.line(250, "2.1.0 sender ok")
            }
            b"RCPT" => {
                let codes = &self.scenario.rcpt_codes;
                let code = codes[self.rcpt_replies % codes.len()];
                self.rcpt_replies += 1;
                if code < 400 {
                    self.accepted += 1;
                }
                self.line(code, "recipient")
            }
            b"DATA" if self.accepted > 0 => {
                self.data = Some(DataDecoder::new());
                self.line(354, "go ahead")
            }
            b"DATA" => self.line(554, "5.5.1 no valid recipients"),
            b"RSET" => self.line(250, "2.0.0 reset"),
            b"QUIT" => {
                self.closed = true;
                self.line(221, "2.0.0 bye")
            }
            _ => self.line(500, "5.5.2 command not recognized"),
        }
    }

    fn line(&self, code: u16, text: &str) -> Vec<u8> {
        self.reply(code, VecDeque::from([text.to_owned()]))
    }

    fn reply(&self, code: u16, lines: VecDeque<String>) -> Vec<u8> {
        let last = lines.len() - 1;
        let mut out = Vec::new();
        for (index, text) in lines.iter().enumerate() {
            let separator = if index < last { '-' } else { ' ' };
            out.extend(format!("{code}{separator}{text}{}", self.scenario.line_end).into_bytes());
        }
        out
    }
}
