//! Runs the client session against the server session in memory, with a fake clock and a link
//! that splits, delays, drops and corrupts bytes, over many seeds.
//!
//! Without faults every message must end exactly as the server application decided, and every
//! delivered message must reach it byte for byte after CRLF canonicalisation. With drops and
//! corruption a run may fail anywhere, but it must end, without a panic, and a message the
//! client reports as delivered must be stored by the server exactly as sent, for exactly the
//! recipients the client reports. The faults never remove or change a CR or LF (see
//! [`Link::send`]). Each message
//! carries a hash of its content and envelope in its first line, which the server application
//! checks, because SMTP itself has no integrity check.
#![cfg(feature = "server")]
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![expect(
    clippy::disallowed_methods,
    reason = "the test takes one real instant as the start of its fake clock"
)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use smtp_proto::capabilities::Extension;
use smtp_proto::client::{self, Dsn, Envelope, TlsPolicy};
use smtp_proto::command::{BodyType, MailParameters, Notify, RcptParameters, Ret};
use smtp_proto::server::{self, AuthCredentials, Session as ServerSession, TlsMode};
use smtp_proto::{
    BodyInfo, Credentials, Domain, Mailbox, Mechanism, Reply, ReplyCode, ReversePath, XText,
};

/// Seeds run without drops or corruption; their results are checked exactly.
const CLEAN_SEEDS: u64 = 2000;
/// Seeds run with drops and corruption.
const FAULTY_SEEDS: u64 = 2000;
/// Loop turns after which a run counts as hung.
const MAX_TURNS: usize = 100_000;

#[test]
fn pair_clean_runs_deliver_exactly() {
    let only: Option<u64> = std::env::var("PAIR_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok());
    let mut covered = BTreeMap::new();
    for seed in (0..CLEAN_SEEDS).filter(|seed| only.is_none_or(|only| only == *seed)) {
        let scenario = Scenario::generate(seed);
        let outcome = run(&scenario, Faults::none(seed));
        check_exact(&scenario, &outcome).unwrap_or_else(|error| {
            panic!("seed {seed}: {error}\nscenario: {scenario:#?}\noutcome: {outcome:#?}")
        });
        tally(&scenario, &outcome, &mut covered);
    }

    // Every feature delivered at least one message, so each was checked byte for byte.
    if only.is_none() {
        for feature in FEATURES {
            let count = covered.get(feature).copied().unwrap_or(0);
            assert!(
                count > 0,
                "no message delivered with {feature}: {covered:?}"
            );
        }
    }
}

#[test]
fn pair_faulty_runs_never_succeed_wrongly() {
    let mut delivered = 0;
    let mut failed = 0;
    let only: Option<u64> = std::env::var("PAIR_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok());
    for seed in (0..FAULTY_SEEDS).filter(|seed| only.is_none_or(|only| only == *seed)) {
        let scenario = Scenario::generate(seed + 1_000_000);
        let outcome = run(&scenario, Faults::harsh(seed));
        check_no_wrong_success(&scenario, &outcome).unwrap_or_else(|error| {
            panic!("faulty seed {seed}: {error}\nscenario: {scenario:#?}\noutcome: {outcome:#?}")
        });
        for result in outcome.results.values() {
            match result {
                Ok(_) => delivered += 1,
                Err(_) => failed += 1,
            }
        }
    }

    // Both kinds of ending happen, so the check above saw successes to judge.
    if only.is_some() {
        return;
    }
    assert!(delivered > 0, "no message was delivered in a faulty run");
    assert!(failed > 0, "no message failed in a faulty run");
}

#[test]
fn pair_every_auth_mechanism_agrees() {
    let mechanisms = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::XOAuth2,
        Mechanism::OAuthBearer,
    ];
    for (index, mechanism) in mechanisms.into_iter().enumerate() {
        for good in [true, false] {
            let mut scenario = Scenario::generate(index as u64);
            scenario.tls = TlsChoice::Implicit;
            scenario.auth = Some(AuthChoice {
                mechanism: mechanism.clone(),
                good,
            });
            let outcome = run(&scenario, Faults::none(index as u64));
            check_exact(&scenario, &outcome)
                .unwrap_or_else(|error| panic!("{} good={good}: {error}", mechanism.name()));
            assert_eq!(
                outcome.authenticated.as_deref(),
                good.then_some(scenario.username()),
                "{} good={good}",
                mechanism.name()
            );
        }
    }
}

#[test]
fn pair_starttls_resets_and_delivers() {
    let mut scenario = Scenario::generate(7);
    scenario.tls = TlsChoice::StartTls;
    scenario.lmtp = false;

    let outcome = run(&scenario, Faults::none(7));

    check_exact(&scenario, &outcome).unwrap();
    assert!(outcome.tls_upgraded, "no TLS upgrade ran");
}

/// The features whose deliveries [`tally`] counts.
const FEATURES: [&str; 14] = [
    "pipelining",
    "bdat",
    "data",
    "lmtp",
    "starttls",
    "implicit tls",
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
    "smtputf8",
    "dsn",
    "binarymime",
];

/// Counts the delivered messages of a run by the features they went through.
fn tally(scenario: &Scenario, outcome: &Outcome, covered: &mut BTreeMap<&'static str, usize>) {
    for message in &scenario.messages {
        let Some(Ok(_)) = outcome.results.get(&message.id) else {
            continue;
        };
        let stored = &outcome.stored[&message.id];
        let chunked = scenario.chunking && !scenario.lmtp;
        let mechanism = scenario.auth.as_ref().map(|auth| auth.mechanism.name());
        let features = [
            (scenario.pipelining, "pipelining"),
            (chunked, "bdat"),
            (!chunked, "data"),
            (scenario.lmtp, "lmtp"),
            (scenario.tls == TlsChoice::StartTls, "starttls"),
            (scenario.tls == TlsChoice::Implicit, "implicit tls"),
            (mechanism == Some("PLAIN"), "PLAIN"),
            (mechanism == Some("LOGIN"), "LOGIN"),
            (mechanism == Some("CRAM-MD5"), "CRAM-MD5"),
            (mechanism == Some("XOAUTH2"), "XOAUTH2"),
            (mechanism == Some("OAUTHBEARER"), "OAUTHBEARER"),
            (stored.mail_parameters.smtputf8, "smtputf8"),
            (message.dsn, "dsn"),
            (message.binary, "binarymime"),
        ];
        for (used, feature) in features {
            if used {
                *covered.entry(feature).or_default() += 1;
            }
        }
    }
}

/// A small deterministic generator, SplitMix64.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number below `bound`, which must not be 0.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// Returns `true` with probability `numerator / denominator`.
    fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsChoice {
    None,
    StartTls,
    Implicit,
}

#[derive(Clone, Debug)]
struct AuthChoice {
    mechanism: Mechanism,
    good: bool,
}

/// One message of a scenario and what it needs.
#[derive(Clone, Debug)]
struct Message {
    id: usize,
    reverse_path: ReversePath,
    recipients: Vec<Mailbox>,
    /// The content handed to the client, first line included.
    content: Bytes,
    /// The content the server must receive.
    received: Vec<u8>,
    binary: bool,
    dsn: bool,
    reject_data: bool,
}

/// The settings of both sides and the messages of one run.
#[derive(Clone, Debug)]
struct Scenario {
    tls: TlsChoice,
    auth: Option<AuthChoice>,
    lmtp: bool,
    pipelining: bool,
    chunking: bool,
    bdat_chunk_size: usize,
    max_transmit_chunk: usize,
    smtputf8: bool,
    eight_bit_mime: bool,
    binarymime: bool,
    dsn: bool,
    max_message_size: Option<u64>,
    messages: Vec<Message>,
}

impl Scenario {
    fn generate(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let tls = *rng.pick(&[TlsChoice::None, TlsChoice::StartTls, TlsChoice::Implicit]);
        let auth = rng.chance(1, 2).then(|| AuthChoice {
            mechanism: rng
                .pick(&[
                    Mechanism::Plain,
                    Mechanism::Login,
                    Mechanism::CramMd5,
                    Mechanism::XOAuth2,
                    Mechanism::OAuthBearer,
                ])
                .clone(),
            good: rng.chance(9, 10),
        });
        let lmtp = rng.chance(1, 5);
        let mut scenario = Self {
            tls,
            auth,
            lmtp,
            pipelining: rng.chance(3, 4),
            chunking: rng.chance(1, 2),
            bdat_chunk_size: 1 + rng.below(3000) as usize,
            max_transmit_chunk: 1 + rng.below(5000) as usize,
            smtputf8: rng.chance(3, 4),
            eight_bit_mime: rng.chance(4, 5),
            binarymime: rng.chance(3, 4),
            dsn: rng.chance(3, 4),
            max_message_size: rng.chance(1, 4).then_some(30_000),
            messages: Vec::new(),
        };

        let count = 1 + rng.below(4) as usize;
        for id in 0..count {
            let message = scenario.message(&mut rng, id);
            scenario.messages.push(message);
        }
        scenario
    }

    fn message(&self, rng: &mut Rng, id: usize) -> Message {
        let reverse_path = match rng.below(5) {
            0 => ReversePath::Null,
            1 => ReversePath::parse("jörg@bücher.example").unwrap(),
            _ => ReversePath::parse("a@example.org").unwrap(),
        };
        let mut recipients = Vec::new();
        for index in 0..1 + rng.below(4) {
            let address = match rng.below(8) {
                0 | 1 => format!("reject{index}@example.net"),
                2 if self.lmtp => format!("full{index}@example.net"),
                3 => format!("jörg{index}@bücher.example"),
                4 => format!("idn{index}@bücher.example"),
                _ => format!("r{index}@example.net"),
            };
            recipients.push(Mailbox::parse(&address).unwrap());
        }

        let body: Vec<u8> = match rng.below(9) {
            0 => b"hello\r\n".to_vec(),
            1 => b".\r\n..\r\n.x\r\nend".to_vec(),
            2 => b"bare\nline\n.\nfeeds\n".to_vec(),
            3 => b"bare\rcr\r.\rend\r".to_vec(),
            4 => "Gr\u{fc}\u{df}e\r\n".as_bytes().to_vec(),
            5 => b"bin\0ary\r\n\xff\r\n".to_vec(),
            6 => b"a\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.com>\r\n".to_vec(),
            7 => {
                let mut large = Vec::new();
                for line in 0..800 {
                    if line % 7 == 0 {
                        large.push(b'.');
                    }
                    large.extend_from_slice(&[b'a' + (line % 26) as u8; 50]);
                    large.extend_from_slice(b"\r\n");
                }
                large
            }
            _ => Vec::new(),
        };
        let subject: &[u8] = match rng.below(6) {
            0 => "Subject: h\u{e9}llo\r\n".as_bytes(),
            1 => b"Subject: reject-data\r\n",
            _ => b"Subject: test\r\n",
        };
        let reject_data = subject.windows(11).any(|w| w == b"reject-data");
        let dsn = rng.chance(1, 4);

        // The part after the first line, whose hash the first line carries.
        let mut rest = format!(
            "X-Msg: {id}\r\nX-From: {}\r\nX-Rcpt: {}\r\n",
            hex(reverse_path.to_string().as_bytes()),
            hex(recipients
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
                .as_bytes())
        )
        .into_bytes();
        rest.extend_from_slice(subject);
        rest.extend_from_slice(b"\r\n");
        rest.extend_from_slice(&body);

        let binary = rest.contains(&0);
        let received_rest = match binary {
            true => rest.clone(),
            false => canonical(&rest),
        };
        let first_line = format!("X-Check: {:016x}\r\n", fnv(&received_rest));
        let content = [first_line.as_bytes(), &rest].concat();
        let received = [first_line.as_bytes(), &received_rest].concat();
        Message {
            id,
            reverse_path,
            recipients,
            content: Bytes::from(content),
            received,
            binary,
            dsn,
            reject_data,
        }
    }

    fn username(&self) -> &'static str {
        match self.auth.as_ref().map(|auth| &auth.mechanism) {
            Some(Mechanism::XOAuth2 | Mechanism::OAuthBearer) => "alice@example.com",
            _ => "alice",
        }
    }

    fn client_config(&self) -> client::Config {
        let mut config = client::Config::default();
        config.ehlo_name = Domain::parse("client.example.org").unwrap();
        config.tls = match self.tls {
            TlsChoice::None => TlsPolicy::None,
            TlsChoice::StartTls => TlsPolicy::Required,
            TlsChoice::Implicit => TlsPolicy::Wrapper,
        };
        if let Some(auth) = &self.auth {
            let secret = if auth.good { "s3cret-example" } else { "wrong" };
            config.credentials = Some(match auth.mechanism {
                Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
                    let token = if auth.good {
                        "ya29.example-token"
                    } else {
                        "ya29.bad"
                    };
                    Credentials::oauth2(self.username(), token)
                }
                _ => Credentials::password(self.username(), secret),
            });
            config.mechanism = Some(auth.mechanism.clone());
            config.allow_insecure_auth = true;
        }
        config.pipelining = self.pipelining;
        config.chunking = self.chunking;
        config.bdat_chunk_size = self.bdat_chunk_size;
        config.max_transmit_chunk = self.max_transmit_chunk;
        config.lmtp = self.lmtp;
        config
    }

    fn server_config(&self) -> server::Config {
        let mut config = server::Config::default();
        config.domain = Domain::parse("mx.example.net").unwrap();
        config.connection_id = 42;
        config.tls = match self.tls {
            TlsChoice::None => TlsMode::Unavailable,
            TlsChoice::StartTls => TlsMode::StartTls,
            TlsChoice::Implicit => TlsMode::Implicit,
        };
        config.require_tls = self.tls != TlsChoice::None;
        config.require_auth = self.auth.is_some();
        config.allow_insecure_auth = true;
        config.auth_mechanisms = vec![
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::CramMd5,
            Mechanism::XOAuth2,
            Mechanism::OAuthBearer,
        ];
        config.lmtp = self.lmtp;
        config.max_message_size = self.max_message_size;
        let extensions = &mut config.extensions;
        extensions.pipelining = self.pipelining;
        extensions.chunking = self.chunking;
        extensions.smtputf8 = self.smtputf8;
        extensions.eight_bit_mime = self.eight_bit_mime;
        extensions.binarymime = self.binarymime;
        extensions.dsn = self.dsn;
        config
    }

    fn envelope(&self, message: &Message) -> Envelope {
        let envelope = Envelope::new(message.reverse_path.clone(), message.recipients.clone());
        let envelope = envelope.unwrap();
        if !message.dsn {
            return envelope;
        }
        let mut dsn = Dsn::default();
        dsn.ret = Some(Ret::Headers);
        dsn.envid = Some(XText::new(&format!("env {}", message.id)).unwrap());
        dsn.notify = Some(Notify::SUCCESS | Notify::FAILURE);
        dsn.original_recipients = true;
        envelope.with_dsn(dsn)
    }

    /// Returns the addresses as the server sees them: A-labels when it lacks SMTPUTF8.
    fn on_server(&self, mailbox: &Mailbox) -> Mailbox {
        match self.smtputf8 {
            true => mailbox.clone(),
            false => mailbox.to_ascii().unwrap_or_else(|_| mailbox.clone()),
        }
    }
}

/// What the link between the sessions does to the bytes.
#[derive(Clone, Debug)]
struct Faults {
    rng: Rng,
    /// Out of 1000 pieces, how many lose some of their octets.
    drop_per_mille: u64,
    /// Out of 1000 pieces, how many get one octet's high bit flipped.
    corrupt_per_mille: u64,
    /// Out of 1000 pieces, how many are held longer than every timeout.
    stall_per_mille: u64,
}

impl Faults {
    fn none(seed: u64) -> Self {
        Self {
            rng: Rng(seed ^ 0x5EED),
            drop_per_mille: 0,
            corrupt_per_mille: 0,
            stall_per_mille: 0,
        }
    }

    fn harsh(seed: u64) -> Self {
        let mut rng = Rng(seed ^ 0xFA17);
        Self {
            drop_per_mille: rng.below(40),
            corrupt_per_mille: rng.below(40),
            stall_per_mille: rng.below(5),
            rng,
        }
    }
}

/// One direction of the connection: bytes in order, each piece due at a time.
#[derive(Debug, Default)]
struct Link {
    pieces: VecDeque<(Instant, Vec<u8>)>,
    closed: bool,
}

impl Link {
    /// Splits `bytes` into pieces and queues them with delays, dropping or corrupting some.
    fn send(&mut self, bytes: &[u8], now: Instant, faults: &mut Faults) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let rng = &mut faults.rng;
            let length = 1 + rng.below(rest.len().min(700) as u64) as usize;
            let (piece, tail) = rest.split_at(length);
            rest = tail;

            // Each piece has its own latency, and none overtakes the one before it.
            let mut due = now + Duration::from_millis(rng.below(50));
            if rng.chance(faults.stall_per_mille, 1000) {
                due += Duration::from_secs(700);
            }
            if let Some((previous, _)) = self.pieces.back() {
                due = due.max(*previous);
            }

            // Faults keep CR and LF, so every line stays a line. A lost or merged line would
            // shift every later reply onto the wrong command, and SMTP replies carry nothing
            // that lets a client notice that; a run with such faults can end in a wrong result.
            let mut piece = piece.to_vec();
            if rng.chance(faults.drop_per_mille, 1000) {
                let start = rng.below(piece.len() as u64) as usize;
                let end = start + 1 + rng.below((piece.len() - start) as u64) as usize;
                let mut index = 0;
                piece.retain(|&octet| {
                    let keep = !(start..end).contains(&index) || matches!(octet, b'\r' | b'\n');
                    index += 1;
                    keep
                });
            }
            if !piece.is_empty() && rng.chance(faults.corrupt_per_mille, 1000) {
                let index = rng.below(piece.len() as u64) as usize;
                if !matches!(piece[index], b'\r' | b'\n') {
                    piece[index] ^= 0x80;
                }
            }
            self.pieces.push_back((due, piece));
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.pieces.front().map(|(due, _)| *due)
    }

    fn take_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        match self.pieces.front() {
            Some((due, _)) if *due <= now => self.pieces.pop_front().map(|(_, piece)| piece),
            _ => None,
        }
    }
}

/// A message the server application accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    reverse_path: ReversePath,
    mail_parameters: MailParameters,
    recipients: Vec<(Mailbox, RcptParameters)>,
    content: Vec<u8>,
}

/// The server application: checks each message's hash and envelope, and stores what it
/// accepts by message id.
#[derive(Debug, Default)]
struct ServerApp {
    reverse_path: Option<ReversePath>,
    mail_parameters: MailParameters,
    recipients: Vec<(Mailbox, RcptParameters)>,
    content: Vec<u8>,
    /// The message id and whether the message passed the checks, decided at its first
    /// MessageComplete.
    verdict: Option<(usize, bool)>,
    stored: BTreeMap<usize, Stored>,
    lmtp_accepted: Vec<Mailbox>,
}

impl ServerApp {
    fn handle(&mut self, session: &mut ServerSession, event: server::Event, outcome: &mut Outcome) {
        match event {
            server::Event::Hello { handle, .. } => answered(session.accept(handle)),
            server::Event::TlsUpgradeRequired => outcome.server_tls_pending = true,
            server::Event::AuthRequested {
                credentials,
                handle,
                ..
            } => {
                let secret = match credentials {
                    AuthCredentials::XOAuth2 { .. } | AuthCredentials::OAuthBearer { .. } => {
                        "ya29.example-token"
                    }
                    _ => "s3cret-example",
                };
                let known = matches!(credentials.username(), "alice" | "alice@example.com");
                let accepted = known
                    && session
                        .verify_secret(handle, &credentials, secret)
                        .unwrap_or(false);
                if !known {
                    answered(session.reject_auth(handle));
                }
                if accepted {
                    outcome.authenticated = Some(credentials.username().to_owned());
                }
            }
            server::Event::MailFrom {
                reverse_path,
                parameters,
                handle,
            } => {
                self.reverse_path = Some(reverse_path);
                self.mail_parameters = parameters;
                self.recipients.clear();
                self.content.clear();
                self.verdict = None;
                self.lmtp_accepted.clear();
                answered(session.accept(handle));
            }
            server::Event::RcptTo {
                forward_path,
                parameters,
                handle,
            } => {
                if forward_path.local_part().starts_with("reject") {
                    let reply = reply(550, "5.1.1 No such user");
                    answered(session.reject(handle, reply));
                    return;
                }
                self.recipients.push((forward_path, parameters));
                answered(session.accept(handle));
            }
            server::Event::MessageData { chunk } => self.content.extend_from_slice(&chunk),
            server::Event::MessageComplete { recipient, handle } => {
                self.message_complete(session, recipient, handle);
            }
            server::Event::MessageRejected { .. } => self.content.clear(),
            server::Event::Closed { error } => outcome.server_closed = Some(error),
            other => panic!("unexpected server event {other:?}"),
        }
    }

    fn message_complete(
        &mut self,
        session: &mut ServerSession,
        recipient: Option<Mailbox>,
        handle: server::Handle,
    ) {
        let (id, passed) = match self.verdict {
            Some(verdict) => verdict,
            None => *self.verdict.insert(self.check()),
        };
        let reject_data = self.content.windows(11).any(|w| w == b"reject-data");
        let full = recipient
            .as_ref()
            .is_some_and(|recipient| recipient.local_part().starts_with("full"));

        let answer = if !passed {
            Err(reply(554, "5.6.0 Integrity check failed"))
        } else if reject_data {
            Err(reply(554, "5.6.0 Content rejected"))
        } else if full {
            Err(reply(452, "4.2.2 Mailbox full"))
        } else {
            Ok(reply(250, &format!("2.0.0 Queued as M{id}")))
        };
        let Ok(accepted) = answer else {
            answered(session.reject(handle, answer.unwrap_err()));
            return;
        };

        let recipients = match &recipient {
            Some(recipient) => {
                self.lmtp_accepted.push(recipient.clone());
                self.recipients
                    .iter()
                    .filter(|(mailbox, _)| self.lmtp_accepted.contains(mailbox))
                    .cloned()
                    .collect()
            }
            None => self.recipients.clone(),
        };
        let stored = Stored {
            reverse_path: self.reverse_path.clone().unwrap(),
            mail_parameters: self.mail_parameters.clone(),
            recipients,
            content: self.content.clone(),
        };
        self.stored.insert(id, stored);
        answered(session.accept_with(handle, accepted));
    }

    /// Checks the hash of the content and that the envelope matches the headers; returns the
    /// message id (or `usize::MAX` when unreadable) and whether the checks passed.
    fn check(&self) -> (usize, bool) {
        let Some(line_end) = self.content.windows(2).position(|w| w == b"\r\n") else {
            return (usize::MAX, false);
        };
        let (first, rest) = (&self.content[..line_end], &self.content[line_end + 2..]);
        let hash_ok = first == format!("X-Check: {:016x}", fnv(rest)).as_bytes();
        let header = |name: &str| -> Option<String> {
            let text = String::from_utf8_lossy(rest);
            let start = text.find(&format!("{name}: "))? + name.len() + 2;
            let value = &text[start..];
            Some(value[..value.find("\r\n")?].to_owned())
        };
        let id = header("X-Msg").and_then(|id| id.parse().ok());
        let Some(id) = id else {
            return (usize::MAX, false);
        };

        let normalise = |mailbox: &Mailbox| mailbox.to_ascii().unwrap_or_else(|_| mailbox.clone());
        let from = header("X-From").and_then(|hex| unhex(&hex));
        let received_from = self.reverse_path.as_ref().map(|path| match path {
            ReversePath::Mailbox(mailbox) => normalise(mailbox).to_string(),
            _ => path.to_string(),
        });
        let expected_from = from
            .and_then(|from| ReversePath::parse(&from).ok())
            .map(|path| match path {
                ReversePath::Mailbox(mailbox) => normalise(&mailbox).to_string(),
                _ => path.to_string(),
            });
        let expected_recipients: Option<Vec<Mailbox>> =
            header("X-Rcpt").and_then(|hex| unhex(&hex)).map(|list| {
                list.split(',')
                    .filter_map(|address| Mailbox::parse(address).ok())
                    .filter(|mailbox| !mailbox.local_part().starts_with("reject"))
                    .map(|mailbox| normalise(&mailbox))
                    .collect()
            });
        let received_recipients: Vec<Mailbox> = self
            .recipients
            .iter()
            .map(|(mailbox, _)| normalise(mailbox))
            .collect();

        let envelope_ok = expected_from.is_some()
            && expected_from == received_from
            && expected_recipients.as_ref() == Some(&received_recipients);
        (id, hash_ok && envelope_ok)
    }
}

/// Everything a run produced.
#[derive(Debug, Default)]
struct Outcome {
    results: BTreeMap<usize, Result<client::Delivery, client::Error>>,
    stored: BTreeMap<usize, Stored>,
    client_closed: Option<Option<client::Error>>,
    server_closed: Option<Option<server::Error>>,
    authenticated: Option<String>,
    client_tls_pending: bool,
    server_tls_pending: bool,
    tls_upgraded: bool,
}

fn run(scenario: &Scenario, mut faults: Faults) -> Outcome {
    let start = Instant::now();
    let mut now = start;
    let mut client = client::Session::new(scenario.client_config(), now);
    let mut server = ServerSession::new(scenario.server_config(), now);
    let mut app = ServerApp::default();
    let mut outcome = Outcome::default();
    let mut to_server = Link::default();
    let mut to_client = Link::default();

    let mut handles = BTreeMap::new();
    for message in &scenario.messages {
        let handle = client
            .send(scenario.envelope(message), message.content.clone())
            .unwrap();
        handles.insert(handle, message.id);
    }
    client.quit();
    let trace = std::env::var_os("PAIR_TRACE").is_some();

    for _ in 0..MAX_TURNS {
        let mut moved = false;

        while let Some(bytes) = client.poll_transmit(now) {
            to_server.send(&bytes, now, &mut faults);
            moved = true;
        }
        while let Some(bytes) = server.poll_transmit(now) {
            to_client.send(&bytes, now, &mut faults);
            moved = true;
        }
        while let Some(event) = client.poll_event() {
            moved = true;
            match event {
                client::Event::TransactionCompleted { handle, result } => {
                    outcome.results.insert(handles[&handle], result);
                }
                client::Event::TlsUpgradeRequired => outcome.client_tls_pending = true,
                client::Event::Closed { error } => outcome.client_closed = Some(error),
                _ => {}
            }
        }
        while let Some(event) = server.poll_event() {
            moved = true;
            app.handle(&mut server, event, &mut outcome);
        }

        // A closed side closes its direction once its last bytes are queued.
        if outcome.client_closed.is_some() && !to_server.closed {
            to_server.closed = true;
        }
        if outcome.server_closed.is_some() && !to_client.closed {
            to_client.closed = true;
        }

        // The simulated TLS handshake: both sides are ready and nothing is in flight.
        let quiet = to_server.pieces.is_empty() && to_client.pieces.is_empty();
        if outcome.client_tls_pending && outcome.server_tls_pending && quiet {
            outcome.client_tls_pending = false;
            outcome.server_tls_pending = false;
            outcome.tls_upgraded = true;
            server.tls_established().unwrap();
            client.tls_established().unwrap();
            continue;
        }

        while let Some(piece) = to_server.take_due(now) {
            if trace {
                eprintln!("C: {}", piece.escape_ascii());
            }
            server.handle_input(&piece);
            moved = true;
        }
        while let Some(piece) = to_client.take_due(now) {
            if trace {
                eprintln!("S: {}", piece.escape_ascii());
            }
            client.handle_input(&piece);
            moved = true;
        }
        if to_server.closed && to_server.pieces.is_empty() && !server.is_closed() {
            server.handle_eof();
            moved = true;
        }
        if to_client.closed && to_client.pieces.is_empty() && !client.is_closed() {
            client.handle_eof();
            moved = true;
        }
        if moved {
            continue;
        }

        if client.is_closed() && server.is_closed() {
            outcome.stored = std::mem::take(&mut app.stored);
            return outcome;
        }

        // Nothing moved: the clock jumps to the next piece or deadline.
        let next = [
            to_server.next_due(),
            to_client.next_due(),
            client.poll_timeout(),
            server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            panic!("hang: nothing to deliver and no deadline\n{outcome:#?}");
        };
        now = now.max(next);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    panic!("hang: the run did not end in {MAX_TURNS} turns\n{outcome:#?}");
}

/// What a message must end with, when no byte is lost or changed.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    /// Delivered to the recipients whose flags are true.
    Delivered(Vec<bool>),
    Failed(&'static str),
}

fn expected(scenario: &Scenario, message: &Message) -> Expected {
    if scenario.auth.as_ref().is_some_and(|auth| !auth.good) {
        return Expected::Failed("auth");
    }

    let content = &message.content;
    let info = BodyInfo::scan(content);
    let header_end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(content.len());
    let header_utf8 = !content[..header_end].is_ascii();
    let local_utf8 = message
        .reverse_path
        .mailbox()
        .into_iter()
        .chain(&message.recipients)
        .any(|mailbox| !mailbox.local_part().is_ascii());
    let chunked = scenario.chunking && !scenario.lmtp;

    if (header_utf8 || local_utf8) && !scenario.smtputf8 {
        return Expected::Failed("smtputf8");
    }
    if message.binary && !(chunked && scenario.binarymime) {
        return Expected::Failed("binarymime");
    }
    if info.is_eight_bit() && !message.binary && !scenario.eight_bit_mime {
        return Expected::Failed("8bitmime");
    }
    if scenario
        .max_message_size
        .is_some_and(|limit| info.size() > limit)
    {
        return Expected::Failed("size");
    }
    if message.dsn && !scenario.dsn {
        return Expected::Failed("dsn");
    }

    let accepted: Vec<bool> = message
        .recipients
        .iter()
        .map(|recipient| !recipient.local_part().starts_with("reject"))
        .collect();
    if !accepted.contains(&true) {
        return Expected::Failed("recipients");
    }
    if message.reject_data {
        return Expected::Failed("data");
    }
    let delivered: Vec<bool> = message
        .recipients
        .iter()
        .zip(&accepted)
        .map(|(recipient, &accepted)| {
            accepted && !(scenario.lmtp && recipient.local_part().starts_with("full"))
        })
        .collect();
    if !delivered.contains(&true) {
        return Expected::Failed("recipients");
    }
    Expected::Delivered(delivered)
}

/// Returns whether `error` is the failure `kind` names.
fn error_matches(kind: &str, error: &client::Error, lmtp: bool) -> bool {
    use client::Error as E;
    match (kind, error) {
        ("auth", E::AuthFailed { .. }) => true,
        ("smtputf8", E::ExtensionRequired { extension, .. }) => *extension == Extension::SmtpUtf8,
        ("binarymime", E::ExtensionRequired { extension, .. }) => {
            *extension == Extension::BinaryMime
        }
        ("8bitmime", E::ExtensionRequired { extension, .. }) => {
            *extension == Extension::EightBitMime
        }
        ("dsn", E::ExtensionRequired { extension, .. }) => *extension == Extension::Dsn,
        ("size", E::MessageTooLarge { .. }) => true,
        ("recipients", E::RecipientsRejected { .. }) => true,
        ("data", E::RecipientsRejected { .. }) => lmtp,
        ("data", E::Rejected { reply, .. }) => reply.code().value() == 554,
        _ => false,
    }
}

fn check_exact(scenario: &Scenario, outcome: &Outcome) -> Result<(), String> {
    let bad_auth = scenario.auth.as_ref().is_some_and(|auth| !auth.good);
    let client_ok = match &outcome.client_closed {
        Some(None) => !bad_auth,
        Some(Some(client::Error::AuthFailed { .. })) => bad_auth,
        _ => false,
    };
    if !client_ok {
        return Err(format!("client ended with {:?}", outcome.client_closed));
    }
    let server_ok = matches!(outcome.server_closed, Some(None));
    if !server_ok {
        return Err(format!(
            "server did not end with QUIT: {:?}",
            outcome.server_closed
        ));
    }

    for message in &scenario.messages {
        let Some(result) = outcome.results.get(&message.id) else {
            return Err(format!("message {} has no result", message.id));
        };
        let stored = outcome.stored.get(&message.id);
        match (expected(scenario, message), result) {
            (Expected::Delivered(flags), Ok(delivery)) => {
                let accepted: Vec<bool> = delivery
                    .recipients()
                    .iter()
                    .map(client::RecipientResult::is_accepted)
                    .collect();
                if accepted != flags {
                    return Err(format!(
                        "message {}: recipients accepted {accepted:?}, expected {flags:?}",
                        message.id
                    ));
                }
                let Some(stored) = stored else {
                    return Err(format!("message {} delivered but not stored", message.id));
                };
                check_stored(scenario, message, &flags, stored, true)?;
                if !scenario.lmtp {
                    let text = format!("2.0.0 Queued as M{}", message.id);
                    if delivery.reply().text() != text {
                        return Err(format!(
                            "message {}: reply {}",
                            message.id,
                            delivery.reply()
                        ));
                    }
                }
            }
            (Expected::Failed(kind), Err(error)) if error_matches(kind, error, scenario.lmtp) => {
                if stored.is_some() {
                    return Err(format!("message {} failed but was stored", message.id));
                }
            }
            (expected, result) => {
                return Err(format!(
                    "message {}: expected {expected:?}, got {result:?}",
                    message.id
                ));
            }
        }
    }
    Ok(())
}

/// Checks a stored message against what was sent: content and envelope, and with
/// `parameters` also the MAIL and RCPT parameters, which a lost octet can remove unnoticed.
fn check_stored(
    scenario: &Scenario,
    message: &Message,
    delivered: &[bool],
    stored: &Stored,
    parameters: bool,
) -> Result<(), String> {
    let id = message.id;
    if stored.content != message.received {
        return Err(format!(
            "message {id}: stored content differs\nstored:   {}\nexpected: {}",
            stored.content.escape_ascii(),
            message.received.escape_ascii()
        ));
    }
    // A corrupted EHLO reply can hide SMTPUTF8, and the client then sends A-labels, which
    // name the same mailboxes; only the checks without faults know which form to expect.
    let form = |mailbox: &Mailbox| match parameters {
        true => scenario.on_server(mailbox),
        false => mailbox.to_ascii().unwrap_or_else(|_| mailbox.clone()),
    };
    let stored_form = |mailbox: &Mailbox| match parameters {
        true => mailbox.clone(),
        false => mailbox.to_ascii().unwrap_or_else(|_| mailbox.clone()),
    };
    let expected_path = match &message.reverse_path {
        ReversePath::Mailbox(mailbox) => ReversePath::Mailbox(form(mailbox)),
        other => other.clone(),
    };
    let stored_path = match &stored.reverse_path {
        ReversePath::Mailbox(mailbox) => ReversePath::Mailbox(stored_form(mailbox)),
        other => other.clone(),
    };
    if stored_path != expected_path {
        return Err(format!(
            "message {id}: reverse path {:?}",
            stored.reverse_path
        ));
    }
    let expected_recipients: Vec<Mailbox> = message
        .recipients
        .iter()
        .zip(delivered)
        .filter(|(_, delivered)| **delivered)
        .map(|(mailbox, _)| form(mailbox))
        .collect();
    let stored_recipients: Vec<Mailbox> = stored
        .recipients
        .iter()
        .map(|(mailbox, _)| stored_form(mailbox))
        .collect();
    if stored_recipients != expected_recipients {
        return Err(format!("message {id}: recipients {stored_recipients:?}"));
    }
    if !parameters {
        return Ok(());
    }

    let parameters = &stored.mail_parameters;
    let needs_utf8 = !message.content[..].is_ascii() && !message.binary
        || message
            .reverse_path
            .mailbox()
            .into_iter()
            .chain(&message.recipients)
            .any(Mailbox::needs_smtputf8);
    let header_end = message
        .content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.content.len());
    let header_utf8 = !message.content[..header_end].is_ascii();
    let address_utf8 = message
        .reverse_path
        .mailbox()
        .into_iter()
        .chain(&message.recipients)
        .any(Mailbox::needs_smtputf8);
    let expect_smtputf8 = header_utf8 || (address_utf8 && scenario.smtputf8);
    if parameters.smtputf8 != expect_smtputf8 {
        return Err(format!(
            "message {id}: SMTPUTF8 {} (content needs UTF-8: {needs_utf8})",
            parameters.smtputf8
        ));
    }
    let info = BodyInfo::scan(&message.content);
    let expected_body = if message.binary {
        Some(BodyType::BinaryMime)
    } else if info.is_eight_bit() {
        Some(BodyType::EightBitMime)
    } else {
        None
    };
    if parameters.body != expected_body {
        return Err(format!("message {id}: BODY {:?}", parameters.body));
    }
    if parameters.size != Some(info.size()) {
        return Err(format!("message {id}: SIZE {:?}", parameters.size));
    }
    if message.dsn {
        let envid = format!("env {id}");
        if parameters.ret != Some(Ret::Headers)
            || parameters.envid.as_ref().map(XText::value) != Some(envid.as_str())
        {
            return Err(format!("message {id}: DSN parameters {parameters:?}"));
        }
        for (mailbox, rcpt) in &stored.recipients {
            let orcpt_expected = message
                .recipients
                .iter()
                .find(|original| scenario.on_server(original) == *mailbox)
                .filter(|original| original.as_str().is_ascii())
                .map(|original| original.as_str().to_owned());
            let orcpt = rcpt
                .orcpt
                .as_ref()
                .map(|orcpt| orcpt.address().value().to_owned());
            if rcpt.notify != Some(Notify::SUCCESS | Notify::FAILURE) || orcpt != orcpt_expected {
                return Err(format!("message {id}: RCPT parameters {rcpt:?}"));
            }
        }
    }
    Ok(())
}

fn check_no_wrong_success(scenario: &Scenario, outcome: &Outcome) -> Result<(), String> {
    if outcome.client_closed.is_none() || outcome.server_closed.is_none() {
        return Err("a session did not end".to_owned());
    }

    for message in &scenario.messages {
        let Some(result) = outcome.results.get(&message.id) else {
            return Err(format!("message {} has no result", message.id));
        };
        let Ok(delivery) = result else {
            continue;
        };
        let Expected::Delivered(flags) = expected(scenario, message) else {
            return Err(format!(
                "message {} delivered though it must fail: {delivery:?}",
                message.id
            ));
        };
        let accepted: Vec<bool> = delivery
            .recipients()
            .iter()
            .map(client::RecipientResult::is_accepted)
            .collect();
        if accepted != flags {
            return Err(format!(
                "message {}: recipients accepted {accepted:?}, expected {flags:?}",
                message.id
            ));
        }
        let Some(stored) = outcome.stored.get(&message.id) else {
            return Err(format!("message {} delivered but not stored", message.id));
        };
        check_stored(scenario, message, &flags, stored, false)?;
    }
    Ok(())
}

/// Checks the result of answering a decision. A decision queued before the session ended, such
/// as a second LMTP recipient after a 421, has no answer to take.
fn answered(result: Result<(), server::Error>) {
    match result {
        Ok(()) | Err(server::Error::Closed) => {}
        Err(error) => panic!("answering a decision failed: {error}"),
    }
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(
        ReplyCode::new(code).unwrap(),
        vec![Bytes::copy_from_slice(text.as_bytes())],
    )
}

/// Canonicalises line ends as the client's DATA and BDAT encoders do: every bare CR and bare
/// LF becomes CRLF, and a last line without a line end gets one.
fn canonical(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = body.iter().peekable();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\r' => {
                bytes.next_if_eq(&&b'\n');
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}
