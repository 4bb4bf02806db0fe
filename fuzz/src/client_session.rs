//! Target `client_session`: the client session fed any server bytes, cut at any points, with
//! any queued work in between.
//!
//! Input layout, all integers little-endian, missing bytes read as zero:
//!
//! - byte 0, configuration bits: 0 and 1 the TLS policy (none, opportunistic, required,
//!   wrapper), 2 pipelining off, 3 insecure AUTH allowed, 4 all-or-nothing recipients, 5 bare LF
//!   rejected, 6 transcript on, 7 small reply limits (64-octet lines, 4 lines).
//! - byte 1, authentication bits. Bits 0 and 1 are the credentials (none, password, OAuth 2.0
//!   token, password). Bits 2 to 4 are the mechanism (best offered, PLAIN, LOGIN, CRAM-MD5,
//!   XOAUTH2, OAUTHBEARER, an unknown one, best offered). Bits 5 to 7 index [`CHUNK_SIZES`], the
//!   message octets per transmit.
//! - byte 2, the number of actions, then 3 bytes per action: an opcode (taken modulo 9) and a
//!   `u16` argument. See [`Action`].
//! - the rest, the server's byte stream, which `Input` actions hand to the session piece by
//!   piece.
//!
//! After the actions, the harness feeds what is left of the stream, writes everything, closes
//! the connection and lets every deadline pass, so the session must end.

use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use bytes::Bytes;
use smtp_proto::client::{
    Config, Delivery, Envelope, Event, Handle, RecipientPolicy, Session, TlsPolicy,
};
use smtp_proto::command::{Argument, Command};
use smtp_proto::{Credentials, Domain, Mailbox, Mechanism, ReversePath};

/// Message octets per transmit, chosen by bits 5 to 7 of byte 1; 0 keeps the default.
pub const CHUNK_SIZES: [usize; 8] = [0, 1, 3, 16, 64, 512, 4096, 0];

/// Message bodies that `Send` and `Data` actions choose from. They cover plain text, the bare
/// line ends of SMTP smuggling, dots at line starts, 8-bit text, UTF-8 in a header field, a NUL
/// octet, and a body long enough to take several transmits.
pub const BODIES: [&[u8]; 10] = [
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nhello\r\n",
    b"",
    b".\r\n",
    b"a\n.\nb\r.\r\r\n.\nMAIL FROM:<x@example.com>\r\n",
    b"..\r\n.x\r\n.",
    b"\r\n.\r\n",
    b"caf\xc3\xa9\r\n",
    b"Subject: caf\xc3\xa9\r\n\r\nx",
    b"nul\x00\r\n",
    b".line\n.line\r.line\r\n.line\n.line\r.line\r\n.line\n.line\r.line\r\n.line\n.line\r.line",
];

const PASSWORD: &str = "pw-5e0a91";
const TOKEN: &str = "tk-c27f44";

/// Runs the input and checks that:
///
/// - the client writes no bare CR or LF, and at most one end-of-data sequence per queued body;
/// - with TLS required, it writes nothing but EHLO, STARTTLS and QUIT before TLS is up;
/// - it writes no AUTH over an unencrypted connection unless insecure AUTH is allowed, and no
///   STARTTLS under [`TlsPolicy::None`];
/// - its output stays within a linear bound on the input and the queued work;
/// - under `cfg(fuzzing)`, it buffers at most one reply's worth of input;
/// - a message is reported delivered only after its end of data went out, with one result per
///   recipient and at least one of them (all of them, under all-or-nothing) accepted;
/// - at the end the session is closed, [`Event::Closed`] came once and last, and every handle
///   that a queueing call returned got exactly one result of its kind.
///
/// `start` is the instant the fake clock starts from.
pub fn check(data: &[u8], start: Instant) {
    let mut u = Unstructured::new(data);
    let config = config(byte(&mut u), byte(&mut u));
    let count = byte(&mut u);
    let actions: Vec<Action> = (0..count).map(|_| Action::read(&mut u)).collect();
    let stream = u.take_rest();

    let mut run = Run::new(config, start, stream);
    for action in actions {
        run.perform(action);
    }
    run.finish();
}

/// One step of the harness.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Opcode 0: feed the next `n` octets of the stream, or all of it for 0.
    Input(u16),
    /// Opcode 1: queue a message. Argument bits 0 and 1 give 1 to 3 recipients, bits 2 to 5 the
    /// body, bits 6 and 7 the reverse-path, and bit 8 adds a recipient that needs SMTPUTF8.
    Send(u16),
    /// Opcode 2: queue a single command, chosen by the argument modulo 16.
    Command(u16),
    /// Opcode 3: queue message data, the body chosen by the argument.
    Data(u16),
    /// Opcode 4: queue QUIT.
    Quit,
    /// Opcode 5: the server closes the connection.
    Eof,
    /// Opcode 6: the clock moves this many seconds, and the session handles the timeout.
    Advance(u16),
    /// Opcode 7: the TLS handshake completes.
    TlsEstablished,
    /// Opcode 8: take up to `n` transmits, or all of them for 0.
    Transmit(u16),
}

impl Action {
    fn read(u: &mut Unstructured<'_>) -> Self {
        let opcode = byte(u);
        let argument = u.arbitrary::<u16>().unwrap_or(0);
        match opcode % 9 {
            0 => Self::Input(argument),
            1 => Self::Send(argument),
            2 => Self::Command(argument),
            3 => Self::Data(argument),
            4 => Self::Quit,
            5 => Self::Eof,
            6 => Self::Advance(argument),
            7 => Self::TlsEstablished,
            _ => Self::Transmit(argument),
        }
    }
}

/// The kind of result a handle waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Transaction,
    Command,
}

/// A session under test and what the harness has seen of it.
struct Run<'a> {
    session: Session,
    config: Config,
    now: Instant,
    stream: &'a [u8],
    fed: usize,
    handles: Vec<(Handle, Expected)>,
    /// The number of recipients of each queued message.
    recipients: Vec<(Handle, usize)>,
    deliveries: usize,
    results: Vec<Handle>,
    closed_events: usize,
    events_after_close: usize,
    wire: Vec<u8>,
    /// The maximum number of octets the client may write for the work queued so far.
    work_budget: usize,
    bodies_queued: usize,
    /// The buffered input when the session closed; it may not grow after that.
    #[cfg(fuzzing)]
    buffered_at_close: Option<usize>,
}

impl<'a> Run<'a> {
    fn new(config: Config, start: Instant, stream: &'a [u8]) -> Self {
        Self {
            session: Session::new(config.clone(), start),
            config,
            now: start,
            stream,
            fed: 0,
            handles: Vec::new(),
            recipients: Vec::new(),
            deliveries: 0,
            results: Vec::new(),
            closed_events: 0,
            events_after_close: 0,
            wire: Vec::new(),
            work_budget: 0,
            bodies_queued: 0,
            #[cfg(fuzzing)]
            buffered_at_close: None,
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Input(length) => {
                let length = match usize::from(length) {
                    0 => self.stream.len(),
                    length => length.min(self.stream.len()),
                };
                let (chunk, rest) = self.stream.split_at(length);
                self.stream = rest;
                self.feed(chunk);
            }
            Action::Send(argument) => {
                let body = BODIES[usize::from(argument >> 2) % BODIES.len()];
                let envelope = envelope(argument);
                let recipients = envelope.recipients().len();
                if let Ok(handle) = self.session.send(envelope, Bytes::from_static(body)) {
                    self.handles.push((handle, Expected::Transaction));
                    self.recipients.push((handle, recipients));
                    self.bodies_queued += 1;
                    self.work_budget += 2 * body.len() + 5 + (recipients + 3) * MAX_COMMAND;
                }
            }
            Action::Command(argument) => {
                if let Ok(handle) = self.session.command(command(argument)) {
                    self.handles.push((handle, Expected::Command));
                    self.work_budget += MAX_COMMAND;
                }
            }
            Action::Data(argument) => {
                let body = BODIES[usize::from(argument) % BODIES.len()];
                if let Ok(handle) = self.session.data(Bytes::from_static(body)) {
                    self.handles.push((handle, Expected::Command));
                    self.bodies_queued += 1;
                    self.work_budget += 2 * body.len() + 5;
                }
            }
            Action::Quit => {
                self.session.quit();
                self.work_budget += MAX_COMMAND;
            }
            Action::Eof => self.session.handle_eof(),
            Action::Advance(seconds) => {
                self.now += Duration::from_secs(u64::from(seconds));
                self.session.handle_timeout(self.now);
            }
            Action::TlsEstablished => {
                let _ = self.session.tls_established();
            }
            Action::Transmit(limit) => {
                let limit = if limit == 0 {
                    usize::MAX
                } else {
                    usize::from(limit)
                };
                self.transmit(limit);
            }
        }
        self.collect_events();
    }

    /// Feeds the rest of the stream, writes everything, closes the connection and lets every
    /// deadline pass, then checks that the session ended and every handle got its result.
    fn finish(&mut self) {
        let rest = std::mem::take(&mut self.stream);
        self.feed(rest);
        self.transmit(usize::MAX);
        self.session.handle_eof();
        self.now += Duration::from_secs(24 * 60 * 60);
        self.session.handle_timeout(self.now);
        self.transmit(usize::MAX);
        self.collect_events();

        assert!(
            self.session.is_closed(),
            "the session is still open after EOF"
        );
        assert!(
            self.session.poll_timeout().is_none(),
            "a closed session has a deadline"
        );
        assert_eq!(
            self.closed_events, 1,
            "Closed came {} times",
            self.closed_events
        );
        assert_eq!(self.events_after_close, 0, "events came after Closed");
        for (handle, _) in &self.handles {
            let results = self.results.iter().filter(|h| *h == handle).count();
            assert_eq!(results, 1, "{handle:?} got {results} results");
        }
        assert!(
            !self.wire.ends_with(b"\r"),
            "the client stream ends with a bare CR"
        );
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.session.handle_input(chunk);
        self.fed += chunk.len();
        self.check_buffered_input();
        self.collect_events();
    }

    #[cfg(fuzzing)]
    fn check_buffered_input(&mut self) {
        let buffered = self.session.buffered_input();
        if let Some(at_close) = self.buffered_at_close {
            assert!(buffered <= at_close, "a closed session buffered more input");
            return;
        }
        if self.session.is_closed() {
            self.buffered_at_close = Some(buffered);
            return;
        }
        let limits = self.config.reply_limits;
        let bound = limits.max_line_length * (limits.max_lines + 1);
        assert!(
            buffered <= bound,
            "{buffered} octets of input buffered, over {bound}"
        );
    }

    #[cfg(not(fuzzing))]
    fn check_buffered_input(&mut self) {}

    fn transmit(&mut self, limit: usize) {
        for _ in 0..limit {
            let Some(bytes) = self.session.poll_transmit(self.now) else {
                break;
            };
            self.check_transmit(&bytes);
            self.wire.extend_from_slice(&bytes);
        }
        self.collect_events();
    }

    fn check_transmit(&self, bytes: &[u8]) {
        super::assert_only_crlf(bytes, self.wire.last().copied());
        let mut wire = self.wire.clone();
        wire.extend_from_slice(bytes);

        let ends_of_data = super::count(&wire, b"\r\n.\r\n");
        assert!(
            ends_of_data <= self.bodies_queued,
            "{ends_of_data} end-of-data sequences for {} bodies",
            self.bodies_queued
        );

        // Each reply may make the client send a few setup lines, and a reply is 4 octets or more.
        let budget = self.work_budget + (self.fed / 4 + 4) * 4 * MAX_COMMAND;
        assert!(
            wire.len() <= budget,
            "{} octets written, over {budget}",
            wire.len()
        );

        if self.session.is_encrypted() {
            return;
        }
        let lines = bytes
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty());
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if self.config.tls == TlsPolicy::Required {
                let allowed = line.starts_with(b"EHLO ") || line == b"STARTTLS" || line == b"QUIT";
                assert!(allowed, "{:?} sent before TLS", super::show(line));
            }
            if self.config.credentials.is_some() && !self.config.allow_insecure_auth {
                assert!(!line.starts_with(b"AUTH"), "AUTH sent without TLS");
            }
            if matches!(self.config.tls, TlsPolicy::None | TlsPolicy::Wrapper) {
                assert!(
                    line != b"STARTTLS",
                    "STARTTLS sent under {:?}",
                    self.config.tls
                );
            }
        }
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            if self.closed_events > 0 {
                self.events_after_close += 1;
            }
            let (handle, kind) = match event {
                Event::Closed { .. } => {
                    self.closed_events += 1;
                    continue;
                }
                Event::TransactionCompleted { handle, result } => {
                    if let Ok(delivery) = &result {
                        self.check_delivery(handle, delivery);
                    }
                    (handle, Expected::Transaction)
                }
                Event::CommandCompleted { handle, .. } => (handle, Expected::Command),
                _ => continue,
            };
            let queued = self.handles.iter().find(|(h, _)| *h == handle);
            assert_eq!(
                queued.map(|(_, kind)| *kind),
                Some(kind),
                "result for {handle:?}"
            );
            self.results.push(handle);
        }
        while self.session.poll_transcript().is_some() {}
    }

    /// Checks a successful delivery: its data ended on the wire before the server could accept
    /// it, and it has one result per recipient with at least one accepted.
    fn check_delivery(&mut self, handle: Handle, delivery: &Delivery) {
        self.deliveries += 1;
        let ends_of_data = super::count(&self.wire, b"\r\n.\r\n");
        assert!(
            self.deliveries <= ends_of_data,
            "{} deliveries after {ends_of_data} end-of-data sequences",
            self.deliveries
        );

        let queued = self.recipients.iter().find(|(h, _)| *h == handle);
        let results = delivery.recipients();
        assert_eq!(
            queued.map(|(_, count)| *count),
            Some(results.len()),
            "{delivery:?}"
        );
        assert!(
            results.iter().any(|result| result.is_accepted()),
            "{delivery:?}"
        );
        if self.config.recipient_policy == RecipientPolicy::AllOrNothing {
            assert!(
                results.iter().all(|result| result.is_accepted()),
                "{delivery:?}"
            );
        }
    }
}

/// The maximum length of a command line, CRLF included (RFC 5321 section 4.5.3.1.4), which
/// bounds every line the harness makes the client send.
const MAX_COMMAND: usize = 512;

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u.arbitrary::<u8>().unwrap_or(0)
}

fn config(bits: u8, auth: u8) -> Config {
    let mut config = Config::default();
    config.ehlo_name = Domain::parse("client.example.org").expect("valid EHLO name");
    config.tls = match bits & 3 {
        0 => TlsPolicy::None,
        1 => TlsPolicy::Opportunistic,
        2 => TlsPolicy::Required,
        _ => TlsPolicy::Wrapper,
    };
    config.pipelining = bits & 4 == 0;
    config.allow_insecure_auth = bits & 8 != 0;
    if bits & 16 != 0 {
        config.recipient_policy = RecipientPolicy::AllOrNothing;
    }
    config.reply_limits.bare_lf = bits & 32 == 0;
    config.transcript = bits & 64 != 0;
    if bits & 128 != 0 {
        config.reply_limits.max_line_length = 64;
        config.reply_limits.max_lines = 4;
    }

    config.credentials = match auth & 3 {
        0 => None,
        2 => Some(Credentials::oauth2("alice@example.org", TOKEN)),
        _ => Some(Credentials::password("alice", PASSWORD)),
    };
    config.mechanism = match (auth >> 2) & 7 {
        1 => Some(Mechanism::Plain),
        2 => Some(Mechanism::Login),
        3 => Some(Mechanism::CramMd5),
        4 => Some(Mechanism::XOAuth2),
        5 => Some(Mechanism::OAuthBearer),
        6 => Some(Mechanism::from_name("X-FUZZ")),
        _ => None,
    };
    let chunk = CHUNK_SIZES[usize::from(auth >> 5)];
    if chunk != 0 {
        config.max_transmit_chunk = chunk;
    }
    config
}

fn envelope(argument: u16) -> Envelope {
    let ascii = ["b@example.net", "c@example.net", "d@example.net"];
    let count = 1 + usize::from(argument & 3) % 3;
    let utf8 = (argument & 0x100 != 0).then_some("e@b\u{fc}cher.example");
    let recipients = ascii[..count]
        .iter()
        .copied()
        .chain(utf8)
        .map(|address| Mailbox::parse(address).expect("valid recipient"))
        .collect();
    let senders = ["a@example.org", "", "\u{e9}@example.org", "a@example.org"];
    let sender = ReversePath::parse(senders[usize::from(argument >> 6) & 3]).expect("valid sender");
    Envelope::new(sender, recipients).expect("at least one recipient")
}

fn command(argument: u16) -> Command {
    let domain = || Domain::parse("client.example.org").expect("valid domain");
    let text = |text: &str| Argument::new(text).expect("valid argument");
    match argument % 16 {
        0 => Command::Noop,
        1 => Command::Rset,
        2 => Command::Help(None),
        3 => Command::Help(Some(text("DATA"))),
        4 => Command::Vrfy(text("postmaster")),
        5 => Command::Expn(text("staff list")),
        6 => Command::Data,
        7 => Command::Quit,
        8 => Command::Ehlo(domain()),
        9 => Command::Helo(domain()),
        10 => Command::Lhlo(domain()),
        11 => Command::Mail {
            reverse_path: ReversePath::parse("").expect("null path"),
            parameters: Default::default(),
        },
        12 => Command::Rcpt {
            forward_path: Mailbox::parse("b@example.net").expect("valid recipient"),
            parameters: Default::default(),
        },
        13 => Command::Bdat {
            size: u64::from(argument >> 4),
            last: argument & 0x8000 != 0,
        },
        14 => Command::StartTls,
        _ => Command::AuthCancel,
    }
}
