//! The client side of an SMTP session (RFC 5321), as a state machine without I/O.
//!
//! A [`Session`] consumes the bytes the server sent and produces the bytes to write. The adapter
//! that owns the connection runs this loop:
//!
//! 1. Create the session with [`Session::new`] right after the TCP connection (and, for
//!    [`TlsPolicy::Wrapper`], the TLS handshake) is up.
//! 2. Write everything [`Session::poll_transmit`] returns, in as few writes as possible.
//! 3. Handle every [`Session::poll_event`]: on [`Event::TlsUpgradeRequired`] run the TLS
//!    handshake and call [`Session::tls_established`]; on [`Event::Closed`] write what is left
//!    and close the connection.
//! 4. Wait for input until [`Session::poll_timeout`]; feed bytes to [`Session::handle_input`],
//!    the end of the stream to [`Session::handle_eof`], and an expired deadline to
//!    [`Session::handle_timeout`]. Go back to 2.
//!
//! Work is queued at any time with [`Session::send`], [`Session::command`],
//! [`Session::data`], [`Session::noop`] and [`Session::quit`]; it runs once the greeting, EHLO,
//! STARTTLS and AUTH are done, and its result comes back as an event carrying the [`Handle`]
//! the call returned.

mod config;
mod error;
mod event;
mod mail;
mod state;
mod transaction;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use config::{Config, RecipientPolicy, TlsPolicy};
pub use error::{Error, Stage};
pub use event::{Event, Handle, TranscriptLine};
pub use transaction::{Delivery, Dsn, Envelope, RecipientResult};

use crate::auth::{self, SaslClient, SaslError};
use crate::capabilities::{Capabilities, Extension};
use crate::command::Command;
use crate::reply::{Reply, ReplyDecoder};
use crate::timer::deadline_after;
use state::{BodyTransfer, Expect, Framing, Pending, Phase, Transaction, Verb, Work};

/// A client SMTP session: the protocol logic of one connection, driven by an adapter.
///
/// See the [module documentation](self) for the loop an adapter runs.
#[derive(Debug)]
pub struct Session {
    config: Config,
    phase: Phase,
    decoder: ReplyDecoder,
    input: BytesMut,
    output: BytesMut,
    capabilities: Capabilities,
    encrypted: bool,
    authenticated: bool,
    sasl: Option<Box<dyn SaslClient>>,
    sasl_error: Option<SaslError>,
    /// An initial response too long for the AUTH line, sent after the first 334 instead.
    held_response: Option<crate::secret::Secret<Vec<u8>>>,
    inflight: VecDeque<Pending>,
    work: VecDeque<Work>,
    transactions: VecDeque<Transaction>,
    transfer: Option<BodyTransfer>,
    events: VecDeque<Event>,
    transcript: VecDeque<TranscriptLine>,
    next_handle: u64,
    /// A transaction ended without its end of data, so the server still has its envelope.
    needs_reset: bool,
    /// The last reply to a DATA queued with `command` was 354.
    data_ready: bool,
    quit_queued: bool,
    /// The error that ends the session once the QUIT reply arrives.
    close_error: Option<Error>,
}

impl Session {
    /// Creates a session for a connection that has just been opened at `now`; the greeting
    /// deadline starts then.
    pub fn new(config: Config, now: Instant) -> Self {
        let greeting_deadline = deadline_after(now, config.timeouts.greeting);
        let mut inflight = VecDeque::new();
        inflight.push_back(Pending {
            expect: Expect::Greeting,
            deadline: Some(greeting_deadline),
        });

        Self {
            decoder: ReplyDecoder::new(config.reply_limits),
            encrypted: config.tls == TlsPolicy::Wrapper,
            config,
            phase: Phase::Greeting,
            input: BytesMut::new(),
            output: BytesMut::new(),
            capabilities: Capabilities::default(),
            authenticated: false,
            sasl: None,
            sasl_error: None,
            held_response: None,
            inflight,
            work: VecDeque::new(),
            transactions: VecDeque::new(),
            transfer: None,
            events: VecDeque::new(),
            transcript: VecDeque::new(),
            next_handle: 0,
            needs_reset: false,
            data_ready: false,
            quit_queued: false,
            close_error: None,
        }
    }

    /// Feeds bytes received from the server; a partial line is kept until the rest arrives.
    pub fn handle_input(&mut self, data: &[u8]) {
        match self.phase {
            Phase::Closed => return,
            Phase::TlsHandshake => {
                let octets = self.input.len() + data.len();
                self.input.clear();
                self.abort(Error::StartTlsInjection { octets });
                return;
            }
            _ => {}
        }

        self.input.extend_from_slice(data);
        while !matches!(self.phase, Phase::Closed | Phase::TlsHandshake) {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(reply)) => {
                    self.record_reply(&reply);
                    self.handle_reply(reply);
                }
                Ok(None) => break,
                Err(error) => self.abort(Error::Parse(error)),
            }
        }
        self.advance();
    }

    /// Tells the session that the server closed the connection.
    pub fn handle_eof(&mut self) {
        match self.phase {
            Phase::Closed => {}
            Phase::Quitting => {
                let error = self.close_error.take();
                self.close(error);
            }
            _ => {
                let stage = self.current_stage();
                self.abort(Error::ConnectionClosed { stage });
            }
        }
    }

    /// Returns the next bytes to write to the server, everything that may be sent now in one
    /// buffer, and starts the reply deadlines of the commands in it at `now`.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.fill_message_data();
        if self.output.is_empty() {
            return None;
        }

        let timeouts = self.config.timeouts;
        for pending in self.inflight.iter_mut().rev() {
            if pending.deadline.is_some() {
                break;
            }
            pending.deadline = Some(deadline_after(
                now,
                Self::timeout_for(&timeouts, pending.expect),
            ));
        }

        Some(self.output.split().freeze())
    }

    /// Returns the next state change for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns the next transcript line, when [`Config::transcript`] is on.
    #[must_use]
    pub fn poll_transcript(&mut self) -> Option<TranscriptLine> {
        self.transcript.pop_front()
    }

    /// Returns when the reply the session waits for is overdue; call
    /// [`handle_timeout`](Self::handle_timeout) then. `None` while no reply is awaited.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        self.inflight.front().and_then(|pending| pending.deadline)
    }

    /// Tells the session the time; an overdue reply ends the session with
    /// [`Error::Timeout`], or [`Error::OutcomeUnknown`] for a message whose data was all sent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }

        if self.phase == Phase::Quitting {
            let error = self.close_error.take();
            self.close(error);
            return;
        }
        let stage = self.current_stage();
        self.abort(Error::Timeout { stage });
    }

    /// Tells the session that the TLS handshake after [`Event::TlsUpgradeRequired`] succeeded;
    /// the session discards the capabilities read in clear text and sends EHLO again
    /// (RFC 3207 section 4.2).
    pub fn tls_established(&mut self) -> Result<(), Error> {
        if self.phase != Phase::TlsHandshake {
            return Err(Error::NotHandshaking);
        }

        self.encrypted = true;
        self.capabilities = Capabilities::default();
        self.decoder = ReplyDecoder::new(self.config.reply_limits);
        if self.config.transcript {
            self.transcript.push_back(TranscriptLine::TlsEstablished);
        }
        self.send_hello();
        Ok(())
    }

    /// Tells the session that the TLS handshake after [`Event::TlsUpgradeRequired`] failed; the
    /// session ends with [`Error::TlsHandshakeFailed`] and fails every queued piece of work. The
    /// adapter keeps the TLS library's own error for its caller.
    pub fn tls_failed(&mut self) {
        if self.phase == Phase::TlsHandshake {
            self.abort(Error::TlsHandshakeFailed);
        }
    }

    /// Queues a message: MAIL FROM, RCPT TO for each recipient, DATA and the content, which is
    /// dot-stuffed and CRLF-canonicalised on the way out. The result is an
    /// [`Event::TransactionCompleted`] carrying the returned handle.
    pub fn send(&mut self, envelope: Envelope, body: impl Into<Bytes>) -> Result<Handle, Error> {
        let handle = self.queue_handle()?;
        self.work.push_back(Work::Send {
            handle,
            envelope,
            body: body.into(),
        });
        self.advance();
        Ok(handle)
    }

    /// Queues one command whose reply comes back as an [`Event::CommandCompleted`], for callers
    /// who drive the dialogue themselves. STARTTLS and AUTH are refused: the session runs them
    /// as configured.
    pub fn command(&mut self, command: Command) -> Result<Handle, Error> {
        if matches!(
            command,
            Command::StartTls
                | Command::Auth { .. }
                | Command::AuthResponse(_)
                | Command::AuthCancel
        ) {
            return Err(Error::InvalidCommand {
                verb: command.verb(),
            });
        }

        let handle = self.queue_handle()?;
        if command == Command::Quit {
            self.quit_queued = true;
        }
        self.work.push_back(Work::Command { handle, command });
        self.advance();
        Ok(handle)
    }

    /// Queues message content after a DATA queued with [`command`](Self::command); the reply
    /// after the end of data comes back as an [`Event::CommandCompleted`].
    pub fn data(&mut self, body: impl Into<Bytes>) -> Result<Handle, Error> {
        let handle = self.queue_handle()?;
        self.work.push_back(Work::Data {
            handle,
            body: body.into(),
        });
        self.advance();
        Ok(handle)
    }

    /// Queues NOOP (RFC 5321 section 4.1.1.9).
    pub fn noop(&mut self) -> Result<Handle, Error> {
        self.command(Command::Noop)
    }

    /// Queues QUIT after the work already queued; the session then ends with
    /// [`Event::Closed`] carrying no error.
    pub fn quit(&mut self) {
        if self.quit_queued || matches!(self.phase, Phase::Quitting | Phase::Closed) {
            return;
        }
        self.quit_queued = true;
        self.work.push_back(Work::Quit);
        self.advance();
    }

    /// Returns the capabilities of the last EHLO reply; empty before it and after HELO.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Tells whether the connection is encrypted (STARTTLS done, or implicit TLS).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Tells whether setup is done and queued work runs.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Tells whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Tells whether the session is idle: ready, with no work queued or under way, so the
    /// connection may be reused or pooled.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Ready
            && self.work.is_empty()
            && self.inflight.is_empty()
            && self.transfer.is_none()
            && self.output.is_empty()
    }

    /// Returns the step the session is in: the reply it waits for first, [`Stage::MessageData`]
    /// while message content is still to be written, or [`Stage::Idle`] when it waits for
    /// nothing. An adapter reads it to tell whether message content may have gone out when it
    /// abandons a connection part-way, for example at a deadline of its own.
    pub fn stage(&self) -> Stage {
        self.current_stage()
    }

    /// Returns how long one write of message data may take (RFC 5321 section 4.5.3.2.5); the
    /// core does not perform writes, so adapters use it as their write timeout.
    pub fn write_timeout(&self) -> Duration {
        self.config.timeouts.data_block
    }

    /// Returns the session's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns how many server octets the session holds: input not yet framed and the lines of
    /// an unfinished reply. Built only for the fuzz targets, which check that it stays bounded.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn buffered_input(&self) -> usize {
        self.input.len() + self.decoder.buffered_text()
    }

    fn queue_handle(&mut self) -> Result<Handle, Error> {
        if self.quit_queued || matches!(self.phase, Phase::Quitting | Phase::Closed) {
            return Err(Error::Closed);
        }

        let handle = Handle(self.next_handle);
        self.next_handle += 1;
        Ok(handle)
    }

    fn handle_reply(&mut self, reply: Reply) {
        let Some(pending) = self.inflight.pop_front() else {
            let error = if reply.code().value() == 421 {
                Error::ServiceClosing { reply }
            } else {
                Error::UnexpectedReply {
                    stage: self.current_stage(),
                    reply,
                }
            };
            self.abort(error);
            return;
        };

        // RFC 5321 section 3.8: 421 may be the reply to any command, and it ends the session.
        // 221 only answers QUIT (RFC 5321 section 4.2.2); anywhere else the server is leaving.
        let code = reply.code().value();
        let answers_quit = matches!(
            pending.expect,
            Expect::Quit | Expect::Command(_, Verb::Quit) | Expect::Greeting
        );
        if (code == 421 && pending.expect != Expect::Quit) || (code == 221 && !answers_quit) {
            // A single command still gets the server's reply as its result.
            if let Expect::Command(handle, _) | Expect::CommandData(handle) = pending.expect {
                self.events.push_back(Event::CommandCompleted {
                    handle,
                    result: Ok(reply.clone()),
                });
            }
            let error = match code {
                421 => Error::ServiceClosing { reply },
                _ => Error::UnexpectedReply {
                    stage: pending.expect.stage(),
                    reply,
                },
            };
            self.abort(error);
            return;
        }

        match pending.expect {
            Expect::Greeting => self.on_greeting(reply),
            Expect::Ehlo => self.on_ehlo(reply),
            Expect::Helo => self.on_helo(reply),
            Expect::StartTls => self.on_starttls(reply),
            Expect::Auth => self.on_auth(reply),
            Expect::AuthCancel => {
                let error = match self.sasl_error.take() {
                    Some(error) => Error::Sasl(error),
                    None => Error::UnexpectedReply {
                        stage: Stage::Auth,
                        reply,
                    },
                };
                self.quit_with(error);
            }
            Expect::Mail => self.on_mail(reply),
            Expect::Rcpt => self.on_rcpt(reply),
            Expect::Data => self.on_data(reply),
            Expect::EndOfData => self.on_end_of_data(reply),
            Expect::Bdat { .. } => self.on_bdat(reply),
            Expect::Reset => {}
            Expect::Command(handle, verb) => self.on_command(handle, verb, reply),
            Expect::CommandData(handle) => self.events.push_back(Event::CommandCompleted {
                handle,
                result: Ok(reply),
            }),
            Expect::Quit => {
                let error = self.close_error.take();
                self.close(error);
            }
        }
    }

    fn on_greeting(&mut self, reply: Reply) {
        match reply.code().value() {
            220 => {
                self.events.push_back(Event::GreetingReceived { reply });
                self.send_hello();
            }
            221 => self.abort(Error::Rejected {
                stage: Stage::Greeting,
                reply,
            }),
            _ => {
                let error = Self::refusal(Stage::Greeting, reply);
                self.quit_with(error);
            }
        }
    }

    fn on_ehlo(&mut self, reply: Reply) {
        match reply.code().value() {
            250 => {
                self.capabilities = Capabilities::from_ehlo_reply(&reply);
                self.after_hello();
            }
            // RFC 5321 section 3.2: only "command not recognized" justifies HELO, and HELO
            // cannot lead to STARTTLS.
            // LMTP has no HELO (RFC 2033 section 4.1).
            500 | 502 if self.config.lmtp => {
                let error = Self::refusal(Stage::Ehlo, reply);
                self.quit_with(error);
            }
            500 | 502 if self.config.tls == TlsPolicy::Required && !self.encrypted => {
                self.quit_with(Error::TlsNotOffered);
            }
            500 | 502 => {
                let name = self.config.ehlo_name.to_ascii();
                let name = name.unwrap_or_else(|_| self.config.ehlo_name.clone());
                self.send_command(Command::Helo(name), Expect::Helo);
            }
            _ => {
                let error = Self::refusal(Stage::Ehlo, reply);
                self.quit_with(error);
            }
        }
    }

    fn on_helo(&mut self, reply: Reply) {
        if reply.code().value() != 250 {
            let error = Self::refusal(Stage::Helo, reply);
            self.quit_with(error);
            return;
        }

        self.capabilities = Capabilities::default();
        self.after_hello();
    }

    fn after_hello(&mut self) {
        if !self.encrypted {
            let wants_tls = matches!(
                self.config.tls,
                TlsPolicy::Required | TlsPolicy::Opportunistic
            );
            if wants_tls && self.capabilities.has(Extension::StartTls) {
                self.phase = Phase::StartTls;
                self.send_command(Command::StartTls, Expect::StartTls);
                return;
            }
            if self.config.tls == TlsPolicy::Required {
                self.quit_with(Error::TlsNotOffered);
                return;
            }
        }
        self.after_tls();
    }

    fn after_tls(&mut self) {
        if self.config.credentials.is_some() && !self.authenticated {
            self.start_auth();
            return;
        }

        self.phase = Phase::Ready;
        self.events.push_back(Event::Ready);
    }

    fn on_starttls(&mut self, reply: Reply) {
        if reply.code().value() == 220 {
            // RFC 3207 section 4.2: nothing received before the handshake may be used.
            if !self.input.is_empty() || self.decoder.has_partial_reply() {
                let octets = self.input.len();
                self.input.clear();
                self.abort(Error::StartTlsInjection { octets });
                return;
            }
            self.phase = Phase::TlsHandshake;
            self.events.push_back(Event::TlsUpgradeRequired);
            return;
        }

        if self.config.tls == TlsPolicy::Required {
            let error = Self::refusal(Stage::StartTls, reply);
            self.quit_with(error);
            return;
        }
        self.after_tls();
    }

    fn start_auth(&mut self) {
        let Some(credentials) = self.config.credentials.as_ref() else {
            return;
        };
        if !self.encrypted && !self.config.allow_insecure_auth {
            self.quit_with(Error::AuthRequiresTls);
            return;
        }
        let offered = self.capabilities.auth_mechanisms();
        if offered.is_empty() {
            self.quit_with(Error::AuthNotOffered);
            return;
        }

        let mechanism = match &self.config.mechanism {
            Some(requested) if offered.contains(requested) => Some(requested.clone()),
            Some(_) => None,
            None => auth::choose_mechanism(&offered, credentials, self.encrypted),
        };
        let Some(mechanism) = mechanism else {
            let requested = self.config.mechanism.clone();
            self.quit_with(Error::MechanismNotOffered { requested, offered });
            return;
        };
        let mut client = match auth::try_client_for(&mechanism, credentials) {
            Ok(client) => client,
            Err(error) => {
                self.quit_with(Error::Credentials(error));
                return;
            }
        };

        // RFC 4954 section 4: an initial response that would make the AUTH line longer than
        // 512 octets goes after an empty 334 challenge instead.
        let mut initial_response = client.initial_response();
        let encoded = initial_response
            .as_ref()
            .map_or(0, |response| response.expose().len().div_ceil(3) * 4);
        if "AUTH  \r\n".len() + mechanism.name().len() + encoded > 512 {
            self.held_response = initial_response.take();
        }
        self.sasl = Some(client);
        self.phase = Phase::Authenticating;
        self.send_command(
            Command::Auth {
                mechanism,
                initial_response,
            },
            Expect::Auth,
        );
    }

    fn on_auth(&mut self, reply: Reply) {
        match reply.code().value() {
            235 => {
                self.authenticated = true;
                if let Some(client) = self.sasl.take() {
                    self.events.push_back(Event::Authenticated {
                        mechanism: client.mechanism(),
                    });
                }
                self.after_tls();
            }
            334 if self.held_response.is_some() => {
                if let Some(response) = self.held_response.take() {
                    self.send_command(Command::AuthResponse(response), Expect::Auth);
                }
            }
            334 => {
                let challenge = reply.lines().next().unwrap_or_default();
                let response = match (auth::decode_challenge(challenge), self.sasl.as_mut()) {
                    (Ok(challenge), Some(client)) => client.respond(&challenge),
                    (Err(error), _) => Err(error),
                    (Ok(_), None) => {
                        self.quit_with(Error::UnexpectedReply {
                            stage: Stage::Auth,
                            reply,
                        });
                        return;
                    }
                };
                match response {
                    Ok(response) => {
                        self.send_command(Command::AuthResponse(response), Expect::Auth);
                    }
                    Err(error) => {
                        // RFC 4954 section 4: "*" cancels the exchange, and the server replies 501.
                        self.sasl_error = Some(error);
                        self.send_command(Command::AuthCancel, Expect::AuthCancel);
                    }
                }
            }
            code if code >= 400 => self.quit_with(Error::AuthFailed { reply }),
            _ => self.quit_with(Error::UnexpectedReply {
                stage: Stage::Auth,
                reply,
            }),
        }
    }

    /// Starts queued work while the protocol allows it.
    pub(crate) fn advance(&mut self) {
        while self.phase == Phase::Ready && self.transfer.is_none() {
            let Some(work) = self.work.front() else {
                return;
            };
            let pipelining = self.pipelining();
            let may_start = match work {
                // RFC 2920 section 3.1: a new transaction may follow the end of data of the
                // previous ones, or their chunk marked LAST, without waiting for their replies.
                Work::Send { .. } if pipelining => {
                    self.transactions.iter().all(|t| t.data_sent)
                        && !self.inflight.iter().any(|p| {
                            matches!(p.expect, Expect::Command(..) | Expect::CommandData(_))
                        })
                }
                _ => self.inflight.is_empty(),
            };
            if !may_start {
                return;
            }

            if self.needs_reset && matches!(work, Work::Send { .. }) {
                self.needs_reset = false;
                self.send_command(Command::Rset, Expect::Reset);
                continue;
            }
            let Some(work) = self.work.pop_front() else {
                return;
            };
            self.start(work);
        }
    }

    fn start(&mut self, work: Work) {
        match work {
            Work::Send {
                handle,
                envelope,
                body,
            } => self.start_transaction(handle, envelope, body),
            Work::Command { handle, command } => {
                let verb = match command {
                    Command::Ehlo(_) | Command::Lhlo(_) => Verb::Ehlo,
                    Command::Data => Verb::Data,
                    Command::Quit => Verb::Quit,
                    _ => Verb::Other,
                };
                self.data_ready = false;
                self.send_command(command, Expect::Command(handle, verb));
            }
            Work::Data { handle, body } => {
                if !self.data_ready {
                    self.events.push_back(Event::CommandCompleted {
                        handle,
                        result: Err(Error::NoDataInProgress),
                    });
                    return;
                }
                self.data_ready = false;
                self.start_transfer(body, Expect::CommandData(handle), Framing::EndOfData);
            }
            Work::Quit => {
                self.phase = Phase::Quitting;
                self.send_command(Command::Quit, Expect::Quit);
            }
        }
    }

    fn on_command(&mut self, handle: Handle, verb: Verb, reply: Reply) {
        match verb {
            Verb::Ehlo if reply.code().value() == 250 => {
                self.capabilities = Capabilities::from_ehlo_reply(&reply);
            }
            Verb::Data => self.data_ready = reply.code().value() == 354,
            _ => {}
        }

        self.events.push_back(Event::CommandCompleted {
            handle,
            result: Ok(reply),
        });
        if verb == Verb::Quit {
            self.close(None);
        }
    }

    fn send_hello(&mut self) {
        self.phase = Phase::Hello;
        // EHLO goes before the server can offer SMTPUTF8, so the name goes as its A-labels.
        let name = match self.config.ehlo_name.to_ascii() {
            Ok(name) => name,
            Err(error) => {
                self.quit_with(Error::InvalidAddress(error));
                return;
            }
        };
        let command = match self.config.lmtp {
            true => Command::Lhlo(name),
            false => Command::Ehlo(name),
        };
        self.send_command(command, Expect::Ehlo);
    }

    pub(crate) fn send_command(&mut self, command: Command, expect: Expect) {
        let start = self.output.len();
        command.encode(&mut self.output);

        if self.config.transcript {
            match &command {
                Command::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let mut line = format!("AUTH {}", mechanism.name());
                    if initial_response.is_some() {
                        line.push_str(" <redacted>");
                    }
                    self.record_sent(line.as_bytes());
                }
                Command::AuthResponse(_) => self.record_sent(b"<redacted>"),
                _ => {
                    let end = self.output.len().saturating_sub(2).max(start);
                    let line = Bytes::copy_from_slice(&self.output[start..end]);
                    self.transcript.push_back(TranscriptLine::Sent(line));
                }
            }
        }
        self.inflight.push_back(Pending {
            expect,
            deadline: None,
        });
    }

    pub(crate) fn record_sent(&mut self, line: &[u8]) {
        if self.config.transcript {
            self.transcript
                .push_back(TranscriptLine::Sent(Bytes::copy_from_slice(line)));
        }
    }

    fn record_reply(&mut self, reply: &Reply) {
        if !self.config.transcript {
            return;
        }

        let code = reply.code().value().to_string();
        let count = reply.lines().count();
        for (index, text) in reply.lines().enumerate() {
            let mut line = BytesMut::with_capacity(4 + text.len());
            line.extend_from_slice(code.as_bytes());
            line.extend_from_slice(if index + 1 == count { b" " } else { b"-" });
            line.extend_from_slice(text);
            self.transcript
                .push_back(TranscriptLine::Received(line.freeze()));
        }
    }

    /// Fails every piece of work, queued or under way, and ends the session at once; commands
    /// not yet handed to the adapter are dropped.
    pub(crate) fn abort(&mut self, error: Error) {
        if self.phase == Phase::Closed {
            return;
        }

        self.output.clear();
        self.fail_all(&error);
        self.close(Some(error));
    }

    /// Fails every piece of work, then sends QUIT and ends the session after its reply.
    fn quit_with(&mut self, error: Error) {
        self.fail_all(&error);
        self.close_error = Some(error);
        self.phase = Phase::Quitting;
        self.send_command(Command::Quit, Expect::Quit);
    }

    fn close(&mut self, error: Option<Error>) {
        if self.phase == Phase::Closed {
            return;
        }

        self.phase = Phase::Closed;
        self.inflight.clear();
        self.transfer = None;
        self.events.push_back(Event::Closed { error });
    }

    fn fail_all(&mut self, error: &Error) {
        // A message whose data all went out may have been accepted, so it is reported as unknown.
        let unknown = match error {
            Error::ConnectionClosed { .. } => Some(Error::OutcomeUnknown { closed: true }),
            Error::Timeout { .. } => Some(Error::OutcomeUnknown { closed: false }),
            _ => None,
        };
        for mut transaction in std::mem::take(&mut self.transactions) {
            let result = match (&unknown, transaction.aborted.take()) {
                (_, Some(aborted)) => aborted,
                (Some(unknown), None) if transaction.data_sent => unknown.clone(),
                _ => error.clone(),
            };
            self.events.push_back(Event::TransactionCompleted {
                handle: transaction.handle,
                result: Err(result),
            });
        }

        let in_flight = self
            .inflight
            .iter()
            .filter_map(|pending| match pending.expect {
                Expect::Command(handle, _) | Expect::CommandData(handle) => Some(handle),
                _ => None,
            });
        let transferring = self
            .transfer
            .as_ref()
            .and_then(|transfer| match transfer.then {
                Expect::CommandData(handle) => Some(handle),
                _ => None,
            });
        let commands: Vec<Handle> = in_flight.chain(transferring).collect();
        for handle in commands {
            self.events.push_back(Event::CommandCompleted {
                handle,
                result: Err(error.clone()),
            });
        }

        for work in std::mem::take(&mut self.work) {
            let Some(handle) = work.handle() else {
                continue;
            };
            self.events.push_back(match work {
                Work::Send { .. } => Event::TransactionCompleted {
                    handle,
                    result: Err(error.clone()),
                },
                _ => Event::CommandCompleted {
                    handle,
                    result: Err(error.clone()),
                },
            });
        }
    }

    fn current_stage(&self) -> Stage {
        if self.transfer.is_some() {
            return Stage::MessageData;
        }
        match (self.phase, self.inflight.front()) {
            (_, Some(pending)) => pending.expect.stage(),
            (Phase::TlsHandshake, None) => Stage::TlsHandshake,
            _ => Stage::Idle,
        }
    }

    pub(crate) fn pipelining(&self) -> bool {
        self.config.pipelining && self.capabilities.has(Extension::Pipelining)
    }

    /// Turns a reply that ends a step into an error: a 4xx or 5xx reply is a rejection, any
    /// other code does not belong there.
    pub(crate) fn refusal(stage: Stage, reply: Reply) -> Error {
        if reply.code().value() >= 400 {
            Error::Rejected { stage, reply }
        } else {
            Error::UnexpectedReply { stage, reply }
        }
    }

    fn timeout_for(timeouts: &crate::timer::Timeouts, expect: Expect) -> Duration {
        match expect {
            Expect::Greeting => timeouts.greeting,
            Expect::Mail => timeouts.mail,
            Expect::Rcpt => timeouts.rcpt,
            Expect::Data | Expect::Command(_, Verb::Data) => timeouts.data_initiation,
            Expect::EndOfData | Expect::CommandData(_) | Expect::Bdat { last: true } => {
                timeouts.data_termination
            }
            Expect::Quit | Expect::Command(_, Verb::Quit) => timeouts.quit,
            _ => timeouts.command,
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "each test takes one real instant as the start of its fake clock"
)]
mod tests {
    use super::*;
    use crate::address::{Domain, Mailbox, ReversePath};
    use crate::auth::Credentials;

    fn config(tls: TlsPolicy) -> Config {
        Config {
            ehlo_name: Domain::parse("client.example.org").unwrap(),
            tls,
            ..Config::default()
        }
    }

    fn envelope() -> Envelope {
        Envelope::new(
            ReversePath::parse("a@example.org").unwrap(),
            vec![Mailbox::parse("b@example.net").unwrap()],
        )
        .unwrap()
    }

    fn written(session: &mut Session, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = session.poll_transmit(now) {
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn greeting_deadline_starts_at_creation() {
        let now = Instant::now();
        let session = Session::new(config(TlsPolicy::None), now);

        assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(300)));
    }

    #[test]
    fn nothing_written_before_greeting() {
        let now = Instant::now();
        let mut session = Session::new(config(TlsPolicy::None), now);
        session.send(envelope(), &b"x\r\n"[..]).unwrap();

        assert_eq!(session.poll_transmit(now), None);
        session.handle_input(b"220 mx");
        assert_eq!(session.poll_transmit(now), None);
        session.handle_input(b" ready\r\n");
        assert_eq!(written(&mut session, now), b"EHLO client.example.org\r\n");
    }

    #[test]
    fn reply_deadline_starts_at_transmit() {
        let start = Instant::now();
        let later = start + Duration::from_secs(7);
        let mut session = Session::new(config(TlsPolicy::None), start);
        session.handle_input(b"220 mx ready\r\n");

        let _ = written(&mut session, later);

        assert_eq!(
            session.poll_timeout(),
            Some(later + Duration::from_secs(300))
        );
    }

    #[test]
    fn tls_established_without_upgrade_is_misuse() {
        let mut session = Session::new(config(TlsPolicy::Required), Instant::now());

        assert_eq!(session.tls_established(), Err(Error::NotHandshaking));
    }

    #[test]
    fn session_commands_cannot_be_queued() {
        let mut session = Session::new(config(TlsPolicy::None), Instant::now());

        let result = session.command(Command::StartTls);

        assert_eq!(result, Err(Error::InvalidCommand { verb: "STARTTLS" }));
    }

    #[test]
    fn work_after_quit_is_refused() {
        let mut session = Session::new(config(TlsPolicy::None), Instant::now());
        session.quit();

        assert_eq!(session.send(envelope(), Bytes::new()), Err(Error::Closed));
        assert_eq!(session.noop(), Err(Error::Closed));
    }

    #[test]
    fn idle_once_ready_with_no_work() {
        let now = Instant::now();
        let mut session = Session::new(config(TlsPolicy::None), now);
        assert!(!session.is_idle());

        session.handle_input(b"220 mx ready\r\n");
        let _ = written(&mut session, now);
        session.handle_input(b"250 mx\r\n");

        assert!(session.is_ready());
        assert!(session.is_idle());
        session.noop().unwrap();
        assert!(!session.is_idle());
    }

    #[test]
    fn stage_follows_the_transaction() {
        let now = Instant::now();
        let config = Config {
            max_transmit_chunk: 4,
            ..config(TlsPolicy::None)
        };
        let mut session = Session::new(config, now);
        assert_eq!(session.stage(), Stage::Greeting, "before the greeting");

        session.handle_input(b"220 mx ready\r\n");
        assert_eq!(session.stage(), Stage::Ehlo, "after the greeting");
        let _ = written(&mut session, now);
        session.handle_input(b"250-mx\r\n250 PIPELINING\r\n");
        assert_eq!(session.stage(), Stage::Idle, "ready");

        session
            .send(envelope(), &b"Subject: x\r\n\r\nbody\r\n"[..])
            .unwrap();
        assert_eq!(session.stage(), Stage::Mail, "MAIL queued");
        let _ = session.poll_transmit(now);
        session.handle_input(b"250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(session.stage(), Stage::MessageData, "after 354");
        let first_chunk = session.poll_transmit(now).unwrap();
        assert_eq!(&first_chunk[..], b"Subj", "first chunk");
        assert_eq!(
            session.stage(),
            Stage::MessageData,
            "content still to be written"
        );
        let _ = written(&mut session, now);
        assert_eq!(session.stage(), Stage::EndOfData, "all content written");

        session.handle_input(b"250 queued\r\n");
        assert_eq!(session.stage(), Stage::Idle, "message accepted");
    }

    #[test]
    fn transcript_redacts_auth_payloads() {
        let now = Instant::now();
        let config = Config {
            credentials: Some(Credentials::password("alice", "s3cret-example")),
            transcript: true,
            ..config(TlsPolicy::Wrapper)
        };
        let mut session = Session::new(config, now);

        session.handle_input(b"220 mx ready\r\n");
        let _ = written(&mut session, now);
        session.handle_input(b"250-mx\r\n250 AUTH PLAIN\r\n");
        let wire = written(&mut session, now);

        assert_eq!(wire, b"AUTH PLAIN AGFsaWNlAHMzY3JldC1leGFtcGxl\r\n");
        let lines: Vec<TranscriptLine> = std::iter::from_fn(|| session.poll_transcript()).collect();
        let sent: Vec<&[u8]> = lines
            .iter()
            .filter_map(|line| match line {
                TranscriptLine::Sent(bytes) => Some(&bytes[..]),
                _ => None,
            })
            .collect();
        assert_eq!(
            sent,
            [&b"EHLO client.example.org"[..], b"AUTH PLAIN <redacted>"]
        );
        assert!(lines.contains(&TranscriptLine::Received(Bytes::from_static(
            b"250 AUTH PLAIN"
        ))));
    }

    #[test]
    fn huge_timeout_does_not_overflow() {
        let now = Instant::now();
        let config = Config {
            timeouts: crate::timer::Timeouts::uniform(Duration::MAX),
            ..config(TlsPolicy::None)
        };

        let mut session = Session::new(config, now);
        session.handle_input(b"220 mx ready\r\n");
        let _ = written(&mut session, now);

        assert!(
            session
                .poll_timeout()
                .is_some_and(|deadline| deadline > now)
        );
    }

    #[test]
    fn abort_drops_unsent_commands() {
        let now = Instant::now();
        let mut session = Session::new(config(TlsPolicy::None), now);

        session.handle_input(b"220 mx ready\r\n\r\n");

        assert_eq!(session.poll_transmit(now), None);
        assert!(session.is_closed());
    }

    #[test]
    fn tls_failure_fails_queued_work() {
        let now = Instant::now();
        let mut session = Session::new(config(TlsPolicy::Required), now);
        let handle = session.send(envelope(), &b"x\r\n"[..]).unwrap();
        session.handle_input(b"220 mx ready\r\n");
        let _ = written(&mut session, now);
        session.handle_input(b"250-mx\r\n250 STARTTLS\r\n");
        let _ = written(&mut session, now);
        session.handle_input(b"220 go ahead\r\n");

        session.tls_failed();

        let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
        assert!(events.iter().any(|event| matches!(
            event,
            Event::TransactionCompleted { handle: h, result: Err(Error::TlsHandshakeFailed) }
                if *h == handle
        )));
        assert!(session.is_closed());
        assert_eq!(session.poll_transmit(now), None);
    }
}
