//! The server side of an SMTP or LMTP session (RFC 5321, RFC 2033), as a state machine without
//! I/O. Behind the `server` feature.
//!
//! A [`Session`] consumes the bytes the client sent and produces the replies to write. The
//! adapter that owns the accepted connection runs this loop:
//!
//! 1. Create the session with [`Session::new`] when the connection is accepted (and, for
//!    [`TlsMode::Implicit`], the TLS handshake is done); it queues the 220 greeting.
//! 2. Write everything [`Session::poll_transmit`] returns.
//! 3. Handle every [`Session::poll_event`]: answer each event that carries a [`Handle`] with
//!    [`Session::accept`], [`Session::accept_with`] or [`Session::reject`] (for AUTH,
//!    [`Session::accept_auth`] or [`Session::reject_auth`]); store [`Event::MessageData`]
//!    chunks; on [`Event::TlsUpgradeRequired`] write the pending reply, run the TLS handshake
//!    and call [`Session::tls_established`]; on [`Event::Closed`] write what is left and close
//!    the connection.
//! 4. Wait for input until [`Session::poll_timeout`]; feed bytes to [`Session::handle_input`],
//!    the end of the stream to [`Session::handle_eof`], and an expired deadline to
//!    [`Session::handle_timeout`]. Go back to 2.
//!
//! While a decision is pending the session reads no further input, so the answer may come
//! later, after other work, and replies still go out in command order. The session checks
//! syntax, command order, the offered extensions and the configured limits itself; only what
//! needs the application's knowledge (who may send, which mailboxes exist, whether credentials
//! are valid, where a message goes) becomes an event.
//!
//! TODO: input that arrives while a decision is pending is buffered without a limit; a cap,
//! with reading paused by the adapter, would bound the memory a pipelining client can use.

mod config;
mod error;
mod event;
mod sasl;
mod state;
mod transaction;

use std::collections::VecDeque;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};

pub use config::{BareLineEnds, Config, Extensions, Timeouts, TlsMode};
pub use error::Error;
pub use event::{AuthCredentials, Event, Handle, HelloKind};

use crate::address::Domain;
use crate::auth::Mechanism;
use crate::command::Command;
use crate::command::parse::{MAX_AUTH_LINE, MAX_COMMAND_LINE, parse_auth_line, parse_command_line};
use crate::error::{ParseError, ParseErrorKind};
use crate::line::LineFramer;
use crate::reply::{Reply, ReplyCode};
use state::{Answer, Decision, Phase, SaslStep, Subject, Transaction};

/// A server SMTP session: the protocol logic of one accepted connection, driven by an adapter.
///
/// See the [module documentation](self) for the loop an adapter runs.
#[derive(Debug)]
pub struct Session {
    config: Config,
    phase: Phase,
    input: BytesMut,
    output: BytesMut,
    events: VecDeque<Event>,
    decisions: VecDeque<Decision>,
    command_framer: LineFramer,
    auth_framer: LineFramer,
    hello: Option<HelloKind>,
    encrypted: bool,
    authenticated: Option<String>,
    transaction: Option<Transaction>,
    next_handle: u64,
    auth_attempts: u64,
    errors: usize,
    deadline: Option<Instant>,
    /// Input arrived since the deadline was set, while message data was being read.
    progress: bool,
    /// Octets discarded because they followed STARTTLS in clear text.
    discarded: usize,
}

impl Session {
    /// Creates a session for a connection accepted at `now` and queues the 220 greeting (RFC
    /// 5321 section 4.3.1); the command deadline starts when the greeting is transmitted.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut session = Self {
            encrypted: config.tls == TlsMode::Implicit,
            config,
            phase: Phase::Command,
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            decisions: VecDeque::new(),
            command_framer: LineFramer::new(MAX_COMMAND_LINE, false),
            auth_framer: LineFramer::new(MAX_AUTH_LINE, false),
            hello: None,
            authenticated: None,
            transaction: None,
            next_handle: 0,
            auth_attempts: 0,
            errors: 0,
            deadline: None,
            progress: false,
            discarded: 0,
        };

        let greeting = format!(
            "220 {} {}\r\n",
            session.config.domain,
            text_of(&session.config.greeting)
        );
        session.output.extend_from_slice(greeting.as_bytes());
        session.deadline = Some(now + session.config.timeouts.command);
        session
    }

    /// Feeds bytes received from the client; commands are read as far as no decision is
    /// pending.
    pub fn handle_input(&mut self, data: &[u8]) {
        match self.phase {
            Phase::Closed => return,
            Phase::TlsHandshake => {
                self.discarded += data.len();
                return;
            }
            Phase::Data(_) | Phase::Chunk(_) => self.progress = true,
            _ => {}
        }

        self.input.extend_from_slice(data);
        self.process();
    }

    /// Tells the session that the client closed the connection. Unless QUIT came first, the
    /// session ends with [`Error::ConnectionClosed`].
    pub fn handle_eof(&mut self) {
        self.close(Some(Error::ConnectionClosed));
    }

    /// Returns the replies to write, everything pending in one buffer, and starts the deadline
    /// for the client's next command at `now`.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.output.is_empty() {
            return None;
        }

        if self.awaits_client() {
            self.deadline = Some(now + self.timeout());
            self.progress = false;
        }
        Some(self.output.split().freeze())
    }

    /// Returns the next state change for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns when the client is overdue; call [`handle_timeout`](Self::handle_timeout) then.
    /// `None` while the session waits for the application or the TLS handshake, and after it
    /// ended.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.awaits_client())
    }

    /// Tells the session the time. When the client is overdue the session sends `421 4.4.2`
    /// and ends with [`Error::Timeout`]; while message data still trickles in, the deadline
    /// moves on instead.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }

        if self.progress {
            self.progress = false;
            self.deadline = Some(now + self.timeout());
            return;
        }
        self.status_line(
            421,
            "4.4.2",
            "Timeout waiting for the client, closing connection",
        );
        self.close(Some(Error::Timeout));
    }

    /// Tells the session that the TLS handshake after [`Event::TlsUpgradeRequired`] succeeded.
    /// The session forgets the greeting, the authentication and the transaction, and waits for
    /// a new EHLO (RFC 3207 section 4.2).
    pub fn tls_established(&mut self) -> Result<(), Error> {
        if !matches!(self.phase, Phase::TlsHandshake) {
            return Err(Error::NotHandshaking);
        }

        self.encrypted = true;
        self.hello = None;
        self.authenticated = None;
        self.transaction = None;
        self.command_framer = LineFramer::new(MAX_COMMAND_LINE, false);
        self.phase = Phase::Command;
        Ok(())
    }

    /// Tells the session that the TLS handshake after [`Event::TlsUpgradeRequired`] failed; the
    /// session ends with [`Error::TlsHandshakeFailed`].
    pub fn tls_failed(&mut self) {
        if matches!(self.phase, Phase::TlsHandshake) {
            self.close(Some(Error::TlsHandshakeFailed));
        }
    }

    /// Accepts the decision `handle` with the session's usual reply: the capabilities for
    /// EHLO and LHLO, `250` for HELO, MAIL, RCPT and a message, `235` for AUTH.
    pub fn accept(&mut self, handle: Handle) -> Result<(), Error> {
        self.answer(handle, Answer::Accept(None))
    }

    /// Accepts the decision `handle` of a MAIL, RCPT or message with `reply`, which must be
    /// 2xx, such as `250 2.0.0 queued as 1A2B`.
    pub fn accept_with(&mut self, handle: Handle, reply: Reply) -> Result<(), Error> {
        let code = reply.code().value();
        let fits = self.decision(handle).is_some_and(|decision| {
            !matches!(
                decision.subject,
                Subject::Hello { .. } | Subject::Auth { .. }
            )
        });
        if code / 100 != 2 || !fits {
            return match self.decision(handle) {
                None => Err(self.missing_decision()),
                Some(_) => Err(Error::InvalidReply { code }),
            };
        }

        self.answer(handle, Answer::Accept(Some(reply)))
    }

    /// Rejects the decision `handle` with `reply`, which must be 4xx or 5xx. A 421 reply ends
    /// the session after it is sent (RFC 5321 section 3.8).
    pub fn reject(&mut self, handle: Handle, reply: Reply) -> Result<(), Error> {
        let code = reply.code().value();
        if !matches!(code / 100, 4 | 5) {
            return match self.decision(handle) {
                None => Err(self.missing_decision()),
                Some(_) => Err(Error::InvalidReply { code }),
            };
        }

        self.answer(handle, Answer::Reject(reply))
    }

    /// Accepts the credentials of [`Event::AuthRequested`]: `235 2.7.0` goes out and the
    /// session is authenticated as the credentials' user name.
    pub fn accept_auth(&mut self, handle: Handle) -> Result<(), Error> {
        self.accept(handle)
    }

    /// Rejects the credentials of [`Event::AuthRequested`] with `535 5.7.8` (RFC 4954 section
    /// 6). For XOAUTH2 and OAUTHBEARER the session first sends the error challenge and waits
    /// for the client's response to it (RFC 7628 section 3.2.2).
    pub fn reject_auth(&mut self, handle: Handle) -> Result<(), Error> {
        let reply = self.status_reply(535, "5.7.8", "Authentication credentials invalid");
        self.reject(handle, reply)
    }

    /// Checks the credentials of [`Event::AuthRequested`] against the user's secret (the
    /// password, the CRAM-MD5 key or the token) and accepts or rejects them; returns whether
    /// they matched.
    pub fn verify_secret(
        &mut self,
        handle: Handle,
        credentials: &AuthCredentials,
        secret: &str,
    ) -> Result<bool, Error> {
        let matched = credentials.verify(secret);
        match matched {
            true => self.accept_auth(handle)?,
            false => self.reject_auth(handle)?,
        }
        Ok(matched)
    }

    /// Returns the identity AUTH authenticated, if any.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// Tells whether the connection is encrypted (STARTTLS done, or implicit TLS).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Tells whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Returns how many octets the session discarded because the client sent them after
    /// STARTTLS and before the TLS handshake.
    pub fn discarded_octets(&self) -> usize {
        self.discarded
    }

    /// Returns the session's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads input while no decision is pending and the phase takes input.
    fn process(&mut self) {
        while self.decisions.is_empty() {
            let progressed = match self.phase {
                Phase::Command => self.read_command(),
                Phase::Auth(_) => self.read_auth_line(),
                Phase::Data(_) => self.read_data(),
                Phase::Chunk(_) => self.read_chunk(),
                Phase::SkipLine => self.skip_line(),
                Phase::TlsHandshake | Phase::Closed => false,
            };
            if !progressed {
                return;
            }
        }
    }

    /// Reads and runs one command line; returns whether a line was read.
    fn read_command(&mut self) -> bool {
        let line = match self.command_framer.next_line(&self.input) {
            Ok(Some(line)) => line,
            Ok(None) => return false,
            Err(error) => {
                self.drop_line(error);
                return true;
            }
        };

        let line_bytes = self.input.split_to(line.length);
        let content = &line_bytes[..line.content_length];
        match parse_command_line(content, Some(&self.config.domain)) {
            Ok(command) => self.execute(command),
            Err(error) => self.reject_command_line(content, error),
        }
        true
    }

    /// Drops a line the framer rejected, up to its LF; a line without LF yet is dropped as it
    /// arrives, and the error reply goes out at its end.
    fn drop_line(&mut self, error: ParseError) {
        let Some(line_feed) = self.input.iter().position(|&byte| byte == b'\n') else {
            self.input.clear();
            self.phase = Phase::SkipLine;
            return;
        };

        let _ = self.input.split_to(line_feed + 1);
        self.reject_framing(error.kind());
    }

    /// Drops input up to the LF that ends an over-long line.
    fn skip_line(&mut self) -> bool {
        let Some(line_feed) = self.input.iter().position(|&byte| byte == b'\n') else {
            self.input.clear();
            return false;
        };

        let _ = self.input.split_to(line_feed + 1);
        self.phase = Phase::Command;
        self.reject_framing(ParseErrorKind::LineTooLong);
        true
    }

    fn reject_framing(&mut self, kind: ParseErrorKind) {
        match kind {
            ParseErrorKind::BareLineFeed => {
                self.error_line(500, "5.5.2", "Line ends with a bare LF, expected CRLF");
            }
            _ => self.error_line(500, "5.5.2", "Line too long"),
        }
    }

    /// Replies to a command line that does not parse.
    fn reject_command_line(&mut self, content: &[u8], error: ParseError) {
        let verb = content.get(..4).unwrap_or(content).to_ascii_uppercase();

        // The chunk of a BDAT whose size cannot be read has no known end, so nothing after the
        // command can be told apart from message data.
        if verb == b"BDAT" && content.get(4).is_none_or(|&byte| byte == b' ') {
            self.status_line(421, "4.5.0", "Invalid BDAT command, closing connection");
            self.close(Some(Error::InvalidBdat));
            return;
        }

        let (code, status, text) = match error.kind() {
            ParseErrorKind::UnknownCommand => (500, "5.5.1", "Command unrecognized"),
            ParseErrorKind::InvalidPath if verb == b"MAIL" => (501, "5.1.7", "Invalid sender"),
            ParseErrorKind::InvalidPath => (501, "5.1.3", "Invalid recipient"),
            ParseErrorKind::InvalidParameter => (501, "5.5.4", "Invalid parameter"),
            ParseErrorKind::UnsupportedParameter => {
                (555, "5.5.4", "Parameter not supported with this command")
            }
            ParseErrorKind::InvalidUtf8 => (501, "5.5.2", "Invalid UTF-8 or non-ASCII octet"),
            ParseErrorKind::InvalidBase64 => (501, "5.5.2", "Cannot decode base64"),
            _ => (501, "5.5.4", "Syntax error in arguments"),
        };
        self.error_line(code, status, text);
    }

    fn execute(&mut self, command: Command) {
        match command {
            Command::Ehlo(domain) => self.hello(HelloKind::Ehlo, domain),
            Command::Helo(domain) => self.hello(HelloKind::Helo, domain),
            Command::Lhlo(domain) => self.hello(HelloKind::Lhlo, domain),
            Command::StartTls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(
                mechanism,
                initial_response.map(|response| response.expose().clone()),
            ),
            Command::Mail {
                reverse_path,
                parameters,
            } => self.mail(reverse_path, parameters),
            Command::Rcpt {
                forward_path,
                parameters,
            } => self.rcpt(forward_path, parameters),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.transaction = None;
                self.status_line(250, "2.0.0", "Reset");
            }
            Command::Noop => self.status_line(250, "2.0.0", "OK"),
            Command::Vrfy(_) => self.status_line(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Expn(_) => self.error_line(502, "5.5.1", "EXPN not available"),
            Command::Help(_) => self.status_line(214, "2.0.0", "See RFC 5321"),
            Command::Quit => {
                self.status_line(221, "2.0.0", "Closing connection");
                self.close(None);
            }
            _ => self.error_line(500, "5.5.1", "Command unrecognized"),
        }
    }

    /// Handles EHLO, HELO and LHLO (RFC 5321 section 4.1.1.1, RFC 2033 section 4.1).
    fn hello(&mut self, kind: HelloKind, domain: Domain) {
        // RFC 2033 section 4.1: an LMTP server accepts LHLO in place of EHLO and HELO.
        if self.config.lmtp != (kind == HelloKind::Lhlo) {
            let text = match self.config.lmtp {
                true => "This is an LMTP server, send LHLO",
                false => "LHLO is for LMTP, send EHLO",
            };
            self.error_line(500, "5.5.1", text);
            return;
        }

        self.ask(
            Subject::Hello {
                kind,
                domain: domain.clone(),
            },
            |handle| Event::Hello {
                kind,
                domain,
                handle,
            },
        );
    }

    /// Handles STARTTLS (RFC 3207 section 4).
    fn starttls(&mut self) {
        if self.config.tls != TlsMode::StartTls || self.encrypted {
            let text = match self.encrypted {
                true => "TLS already active",
                false => "STARTTLS not available",
            };
            self.error_line(502, "5.5.1", text);
            return;
        }
        if self.hello.is_none() {
            self.error_line(503, "5.5.1", "Send EHLO first");
            return;
        }

        // RFC 3207 section 4.2: nothing the client sent behind STARTTLS may be acted on.
        self.status_line(220, "2.0.0", "Ready to start TLS");
        self.discarded += self.input.len();
        self.input.clear();
        self.phase = Phase::TlsHandshake;
        self.events.push_back(Event::TlsUpgradeRequired);
    }

    /// Handles AUTH (RFC 4954 section 4) and starts the exchange of the mechanism.
    fn auth(&mut self, mechanism: Mechanism, initial_response: Option<Vec<u8>>) {
        if self.config.auth_mechanisms.is_empty() {
            self.error_line(502, "5.5.1", "AUTH not available");
            return;
        }
        if !self.may_authenticate() {
            self.error_line(530, "5.7.0", "Must issue a STARTTLS command first");
            return;
        }
        let refusal = if !matches!(self.hello, Some(HelloKind::Ehlo | HelloKind::Lhlo)) {
            Some("Send EHLO first")
        } else if self.authenticated.is_some() {
            Some("Already authenticated")
        } else if self.transaction.is_some() {
            Some("AUTH is not allowed during a mail transaction")
        } else {
            None
        };
        if let Some(text) = refusal {
            self.error_line(503, "5.5.1", text);
            return;
        }
        if !self.config.auth_mechanisms.contains(&mechanism) {
            self.error_line(504, "5.5.4", "Unrecognized authentication type");
            return;
        }

        self.auth_attempts += 1;
        match (mechanism, initial_response) {
            (Mechanism::Plain, Some(message)) => self.finish_plain(&message),
            (Mechanism::Login, Some(username)) => self.login_username(&username),
            (Mechanism::CramMd5, Some(_)) => {
                self.error_line(501, "5.5.2", "CRAM-MD5 takes no initial response");
            }
            (mechanism @ (Mechanism::XOAuth2 | Mechanism::OAuthBearer), Some(message)) => {
                self.finish_bearer(&mechanism, &message);
            }
            (Mechanism::Plain, None) => self.challenge(b"", SaslStep::Plain),
            (Mechanism::Login, None) => self.challenge(b"Username:", SaslStep::LoginUsername),
            (Mechanism::CramMd5, None) => {
                let challenge = format!(
                    "<{}.{}@{}>",
                    self.config.connection_id, self.auth_attempts, self.config.domain
                )
                .into_bytes();
                self.challenge(&challenge.clone(), SaslStep::CramMd5 { challenge });
            }
            (mechanism @ (Mechanism::XOAuth2 | Mechanism::OAuthBearer), None) => {
                self.challenge(b"", SaslStep::Bearer { mechanism });
            }
            _ => self.error_line(504, "5.5.4", "Unrecognized authentication type"),
        }
    }

    /// Sends a 334 challenge and waits for the client's response to it.
    fn challenge(&mut self, challenge: &[u8], step: SaslStep) {
        let line = format!("334 {}\r\n", BASE64.encode(challenge));
        self.output.extend_from_slice(line.as_bytes());
        self.auth_framer = LineFramer::new(MAX_AUTH_LINE, false);
        self.phase = Phase::Auth(step);
    }

    /// Reads one line of a SASL exchange; returns whether a line was read.
    fn read_auth_line(&mut self) -> bool {
        let line = match self.auth_framer.next_line(&self.input) {
            Ok(Some(line)) => line,
            Ok(None) => return false,
            Err(error) => {
                // RFC 4954 section 4: a line too long for the exchange ends it with 500 5.5.6.
                self.phase = Phase::Command;
                let Some(line_feed) = self.input.iter().position(|&byte| byte == b'\n') else {
                    self.input.clear();
                    self.phase = Phase::SkipLine;
                    return true;
                };
                let _ = self.input.split_to(line_feed + 1);
                match error.kind() {
                    ParseErrorKind::BareLineFeed => self.reject_framing(error.kind()),
                    _ => self.error_line(500, "5.5.6", "Authentication exchange line too long"),
                }
                return true;
            }
        };

        let line_bytes = self.input.split_to(line.length);
        let parsed = parse_auth_line(&line_bytes[..line.content_length]);
        let Phase::Auth(step) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return true;
        };
        let response = match parsed {
            Ok(Command::AuthResponse(response)) => response.expose().clone(),
            _ if matches!(step, SaslStep::BearerError { .. }) => Vec::new(),
            Ok(_) => {
                self.error_line(501, "5.7.0", "Authentication cancelled");
                return true;
            }
            Err(_) => {
                self.error_line(501, "5.5.2", "Cannot decode base64");
                return true;
            }
        };

        match step {
            SaslStep::Plain => self.finish_plain(&response),
            SaslStep::LoginUsername => self.login_username(&response),
            SaslStep::LoginPassword { username } => {
                let Some(password) = sasl::text(&response) else {
                    self.error_line(501, "5.5.2", "Invalid LOGIN password");
                    return true;
                };
                let credentials = AuthCredentials::Login {
                    username,
                    password: password.into(),
                };
                self.ask_auth(Mechanism::Login, credentials);
            }
            SaslStep::CramMd5 { challenge } => match sasl::cram_md5(&response, challenge) {
                Some(credentials) => self.ask_auth(Mechanism::CramMd5, credentials),
                None => self.error_line(501, "5.5.2", "Invalid CRAM-MD5 response"),
            },
            SaslStep::Bearer { mechanism } => self.finish_bearer(&mechanism, &response),
            SaslStep::BearerError { reply } => self.write_reply(&reply),
        }
        true
    }

    fn finish_plain(&mut self, message: &[u8]) {
        match sasl::plain(message) {
            Some(credentials) => self.ask_auth(Mechanism::Plain, credentials),
            None => self.error_line(501, "5.5.2", "Invalid PLAIN message"),
        }
    }

    fn login_username(&mut self, username: &[u8]) {
        match sasl::text(username) {
            Some(username) => {
                self.challenge(b"Password:", SaslStep::LoginPassword { username });
            }
            None => self.error_line(501, "5.5.2", "Invalid LOGIN user name"),
        }
    }

    fn finish_bearer(&mut self, mechanism: &Mechanism, message: &[u8]) {
        match sasl::bearer(mechanism, message) {
            Some(credentials) => self.ask_auth(mechanism.clone(), credentials),
            None => self.error_line(501, "5.5.2", "Invalid bearer token message"),
        }
    }

    fn ask_auth(&mut self, mechanism: Mechanism, credentials: AuthCredentials) {
        let subject = Subject::Auth {
            mechanism: mechanism.clone(),
            username: credentials.username().to_owned(),
        };
        self.ask(subject, |handle| Event::AuthRequested {
            mechanism,
            credentials,
            handle,
        });
    }

    /// Queues a decision and the event that asks for it.
    pub(crate) fn ask(&mut self, subject: Subject, event: impl FnOnce(Handle) -> Event) {
        let handle = Handle(self.next_handle);
        self.next_handle += 1;

        self.decisions.push_back(Decision {
            handle,
            subject,
            answer: None,
        });
        self.events.push_back(event(handle));
    }

    fn decision(&self, handle: Handle) -> Option<&Decision> {
        self.decisions
            .iter()
            .find(|decision| decision.handle == handle && decision.answer.is_none())
    }

    fn missing_decision(&self) -> Error {
        match self.phase {
            Phase::Closed => Error::Closed,
            _ => Error::UnknownHandle,
        }
    }

    /// Stores an answer, then applies every answered decision at the front of the queue and
    /// reads on when none is left.
    fn answer(&mut self, handle: Handle, answer: Answer) -> Result<(), Error> {
        let error = self.missing_decision();
        let Some(decision) = self
            .decisions
            .iter_mut()
            .find(|decision| decision.handle == handle && decision.answer.is_none())
        else {
            return Err(error);
        };
        decision.answer = Some(answer);

        while self
            .decisions
            .front()
            .is_some_and(|decision| decision.answer.is_some())
        {
            let Some(Decision {
                subject,
                answer: Some(answer),
                ..
            }) = self.decisions.pop_front()
            else {
                break;
            };
            self.apply(subject, answer);
            if self.is_closed() {
                return Ok(());
            }
        }
        if self.decisions.is_empty() {
            self.process();
        }
        Ok(())
    }

    /// Sends the reply of an answered decision and changes the state it accepts.
    fn apply(&mut self, subject: Subject, answer: Answer) {
        let accepted = match answer {
            Answer::Accept(reply) => reply,
            Answer::Reject(reply) => {
                if let (Subject::Auth { mechanism, .. }, true) =
                    (&subject, reply.code().value() != 421)
                {
                    if matches!(mechanism, Mechanism::XOAuth2 | Mechanism::OAuthBearer) {
                        let challenge = sasl::bearer_error(mechanism);
                        self.challenge(challenge, SaslStep::BearerError { reply });
                        return;
                    }
                }
                self.send_app_reply(reply);
                return;
            }
        };

        match subject {
            Subject::Hello { kind, domain } => {
                self.hello = Some(kind);
                self.transaction = None;
                self.hello_reply(kind, &domain);
            }
            Subject::Auth { username, .. } => {
                self.authenticated = Some(username);
                self.status_line(235, "2.7.0", "Authentication successful");
            }
            Subject::Mail { parameters } => {
                self.transaction = Some(Transaction {
                    parameters,
                    recipients: Vec::new(),
                    chunked: false,
                    received: 0,
                    bdat_failure: None,
                });
                self.accepted_reply(accepted, "2.1.0", "Sender OK");
            }
            Subject::Rcpt { forward_path } => {
                if let Some(transaction) = self.transaction.as_mut() {
                    transaction.recipients.push(forward_path);
                }
                self.accepted_reply(accepted, "2.1.5", "Recipient OK");
            }
            Subject::Message => self.accepted_reply(accepted, "2.0.0", "Message accepted"),
            Subject::LmtpRecipient { recipient } => {
                let text = format!("<{recipient}> Delivered");
                self.accepted_reply(accepted, "2.0.0", &text);
            }
        }
    }

    /// Sends the application's 2xx reply, or the session's own.
    fn accepted_reply(&mut self, reply: Option<Reply>, status: &str, text: &str) {
        match reply {
            Some(reply) => self.send_app_reply(reply),
            None => self.status_line(250, status, text),
        }
    }

    /// Sends a reply the application chose, with an enhanced status code added when it has
    /// none and ENHANCEDSTATUSCODES is offered; a 421 ends the session.
    fn send_app_reply(&mut self, reply: Reply) {
        let code = reply.code().value();
        let reply = match (
            self.config.extensions.enhanced_status_codes,
            reply.enhanced_status(),
        ) {
            (true, None) => {
                let status = format!("{}.0.0", code / 100);
                let lines = reply
                    .lines()
                    .map(|line| {
                        let mut with_status = BytesMut::from(status.as_bytes());
                        if !line.is_empty() {
                            with_status.extend_from_slice(b" ");
                            with_status.extend_from_slice(line);
                        }
                        with_status.freeze()
                    })
                    .collect();
                Reply::new(reply.code(), lines)
            }
            _ => reply,
        };

        self.write_reply(&reply);
        if code == 421 {
            self.close(None);
        }
    }

    /// Writes the 250 reply to EHLO, HELO or LHLO, with the capabilities for EHLO and LHLO.
    fn hello_reply(&mut self, kind: HelloKind, client: &Domain) {
        let first = format!("{} Hello {client}", self.config.domain);
        let mut lines = vec![Bytes::from(first)];
        if kind != HelloKind::Helo {
            lines.extend(self.capabilities().into_iter().map(Bytes::from));
        }

        self.write_reply(&Reply::new(ReplyCode::OK, lines));
    }

    /// Returns the keywords of the EHLO reply, each with its parameters.
    fn capabilities(&self) -> Vec<String> {
        let extensions = self.config.extensions;
        let mut keywords = Vec::new();
        let mut offer = |on: bool, keyword: &str| {
            if on {
                keywords.push(keyword.to_owned());
            }
        };

        offer(extensions.pipelining, "PIPELINING");
        if extensions.size {
            let limit = self.config.max_message_size.unwrap_or(0);
            offer(true, &format!("SIZE {limit}"));
        }
        offer(extensions.eight_bit_mime, "8BITMIME");
        offer(extensions.smtputf8, "SMTPUTF8");
        offer(extensions.chunking, "CHUNKING");
        offer(extensions.chunking && extensions.binarymime, "BINARYMIME");
        offer(extensions.dsn, "DSN");
        offer(extensions.enhanced_status_codes, "ENHANCEDSTATUSCODES");
        offer(
            self.config.tls == TlsMode::StartTls && !self.encrypted,
            "STARTTLS",
        );
        if !self.config.auth_mechanisms.is_empty() && self.may_authenticate() {
            let names: Vec<&str> = self
                .config
                .auth_mechanisms
                .iter()
                .map(Mechanism::name)
                .collect();
            offer(true, &format!("AUTH {}", names.join(" ")));
        }
        offer(extensions.requiretls && self.encrypted, "REQUIRETLS");
        keywords
    }

    /// Tells whether AUTH may run on this connection now.
    fn may_authenticate(&self) -> bool {
        self.encrypted || (self.config.allow_insecure_auth && !self.config.require_tls)
    }

    /// Writes a one-line reply whose text follows the enhanced status code when
    /// ENHANCEDSTATUSCODES is offered.
    pub(crate) fn status_line(&mut self, code: u16, status: &str, text: &str) {
        let line = match self.config.extensions.enhanced_status_codes {
            true => format!("{code} {status} {text}\r\n"),
            false => format!("{code} {text}\r\n"),
        };
        self.output.extend_from_slice(line.as_bytes());
    }

    /// Builds the reply [`status_line`](Self::status_line) writes.
    pub(crate) fn status_reply(&self, code: u16, status: &str, text: &str) -> Reply {
        let line = match self.config.extensions.enhanced_status_codes {
            true => format!("{status} {text}"),
            false => text.to_owned(),
        };
        let code = ReplyCode::new(code).expect("the session uses codes of the reply grammar");
        Reply::new(code, vec![Bytes::from(line)])
    }

    /// Writes an error reply and ends the session once the client caused too many.
    pub(crate) fn error_line(&mut self, code: u16, status: &str, text: &str) {
        self.status_line(code, status, text);
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.status_line(421, "4.7.0", "Too many errors, closing connection");
            self.close(Some(Error::TooManyErrors));
        }
    }

    pub(crate) fn write_reply(&mut self, reply: &Reply) {
        reply.encode(&mut self.output);
    }

    /// Ends the session; replies already queued are still transmitted.
    fn close(&mut self, error: Option<Error>) {
        if self.is_closed() {
            return;
        }

        self.phase = Phase::Closed;
        self.decisions.clear();
        self.input.clear();
        self.transaction = None;
        self.events.push_back(Event::Closed { error });
    }

    /// Tells whether the session waits for bytes from the client.
    fn awaits_client(&self) -> bool {
        self.decisions.is_empty() && !matches!(self.phase, Phase::TlsHandshake | Phase::Closed)
    }

    fn timeout(&self) -> std::time::Duration {
        match self.phase {
            Phase::Data(_) | Phase::Chunk(_) => self.config.timeouts.data,
            _ => self.config.timeouts.command,
        }
    }
}

/// Replaces control characters in configured text, so it cannot break a reply line.
fn text_of(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
