//! One accepted connection: the loop of the sans-IO server session on a socket, and the
//! application's decisions on its events.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use smtp_proto::command::{Command, MailParameters, RcptParameters};
use smtp_proto::server::{AuthCredentials, Event, Handle, Session, TlsMode};
use smtp_proto::{Domain, Mailbox, Mechanism, Reply, ReplyCode, ReversePath};

use crate::log::{log_debug, log_info, log_warn};
use crate::server::store::PendingMessage;
use crate::server::{Delivery, Shared};
use crate::stream::{Received, Stream};
use crate::tls::TlsInfo;

/// Serves one accepted connection until the session ends, the client goes away or the server
/// stops.
pub(crate) fn serve(tcp: TcpStream, client: SocketAddr, connection_id: u64, shared: &Shared) {
    let mut config = shared.session.clone();
    config.connection_id = connection_id ^ shared.challenge_seed;
    let timeout = config.timeouts.command;
    let mut stream = match Stream::new(tcp, timeout) {
        Ok(stream) => stream,
        Err(error) => {
            log_warn!("cannot set up the connection from {client}: {error}");
            return;
        }
    };

    let mut tls_info = None;
    if config.tls == TlsMode::Implicit {
        let Some(tls) = shared.tls.as_ref() else {
            log_warn!("implicit TLS is configured without a TLS identity; closing {client}");
            stream.shutdown();
            return;
        };
        match stream.accept_tls(tls, timeout) {
            Ok(info) => tls_info = Some(info),
            Err(error) => {
                log_debug!("TLS handshake with {client} failed: {error}");
                stream.shutdown();
                return;
            }
        }
    }

    let mut connection = Connection {
        session: Session::new(config, Instant::now()),
        stream,
        client,
        shared,
        tls_info,
        hello: None,
        transaction: None,
        read_buffer: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
    };
    connection.run();
}

/// The state of one connection besides the session's own.
struct Connection<'a> {
    session: Session,
    stream: Stream,
    client: SocketAddr,
    shared: &'a Shared,
    tls_info: Option<TlsInfo>,
    /// The name of the accepted EHLO, HELO or LHLO.
    hello: Option<Domain>,
    transaction: Option<Transaction>,
    read_buffer: Box<[u8]>,
}

/// The envelope of the open transaction and the file its content goes to.
struct Transaction {
    reverse_path: ReversePath,
    parameters: MailParameters,
    recipients: Vec<(Mailbox, RcptParameters)>,
    /// Opened at the first content chunk.
    content: Option<PendingMessage>,
    /// The reply that stored the message, repeated for each further LMTP recipient.
    stored_reply: Option<Reply>,
}

impl Connection<'_> {
    /// Runs the session loop: handle events, write replies, read commands.
    fn run(&mut self) {
        loop {
            self.handle_events();
            if !self.transmit() || self.session.is_closed() {
                break;
            }
            if !self.receive() {
                break;
            }
        }
        self.stream.shutdown();
    }

    /// Writes every reply the session has queued; returns `false` when the client is gone.
    fn transmit(&mut self) -> bool {
        while let Some(data) = self.session.poll_transmit(Instant::now()) {
            if let Err(error) = self.stream.write_all(&data) {
                log_debug!("writing to {} failed: {error}", self.client);
                return false;
            }
        }
        true
    }

    /// Reads once, until the session's deadline, and feeds the result to the session; returns
    /// `false` when the session expects nothing more.
    fn receive(&mut self) -> bool {
        let Some(deadline) = self.session.poll_timeout() else {
            log_warn!(
                "the session with {} awaits neither input nor an answer; closing",
                self.client
            );
            return false;
        };

        match self.stream.read(&mut self.read_buffer, deadline) {
            Ok(Received::Data(read)) => self.session.handle_input(&self.read_buffer[..read]),
            Ok(Received::Eof) => self.session.handle_eof(),
            Ok(Received::TimedOut) => self.session.handle_timeout(Instant::now()),
            Err(error) => {
                log_debug!("reading from {} failed: {error}", self.client);
                self.session.handle_eof();
            }
        }
        true
    }

    /// Handles every pending event, deciding those that carry a handle.
    fn handle_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Hello { domain, handle, .. } => {
                    self.hello = Some(domain);
                    answered(self.session.accept(handle));
                }
                Event::TlsUpgradeRequired => self.upgrade(),
                Event::AuthRequested {
                    mechanism,
                    credentials,
                    handle,
                } => self.authenticate(&mechanism, &credentials, handle),
                Event::MailFrom {
                    reverse_path,
                    parameters,
                    handle,
                } => {
                    // A transaction that never completed is dropped with its temporary file.
                    self.transaction = Some(Transaction {
                        reverse_path,
                        parameters,
                        recipients: Vec::new(),
                        content: None,
                        stored_reply: None,
                    });
                    answered(self.session.accept(handle));
                }
                Event::RcptTo {
                    forward_path,
                    parameters,
                    handle,
                } => {
                    if let Some(transaction) = self.transaction.as_mut() {
                        transaction.recipients.push((forward_path, parameters));
                    }
                    answered(self.session.accept(handle));
                }
                Event::MessageData { chunk } => self.write_content(&chunk),
                Event::MessageComplete { handle, .. } => self.store(handle),
                Event::MessageRejected { reply } => {
                    log_debug!(
                        "the session rejected a message from {}: {reply}",
                        self.client
                    );
                    self.transaction = None;
                }
                Event::Closed { error } => match error {
                    Some(error) => log_debug!("session with {} ended: {error}", self.client),
                    None => log_debug!("session with {} ended", self.client),
                },
                // Events added to the session later carry nothing this loop must answer.
                _ => {}
            }
        }
    }

    /// Runs the TLS handshake after the session accepted STARTTLS.
    fn upgrade(&mut self) {
        let Some(tls) = self.shared.tls.as_ref() else {
            log_warn!(
                "STARTTLS was offered without a TLS identity; closing {}",
                self.client
            );
            self.session.tls_failed();
            return;
        };

        // Octets already waiting were sent before the 220 reply went out, so they are
        // plaintext injected ahead of the handshake: the session discards them unread (RFC 3207
        // section 4.2). The 220 reply is written only after this read.
        match self.stream.read_waiting(&mut self.read_buffer) {
            Ok(Some(Received::Data(read))) => {
                self.session.handle_input(&self.read_buffer[..read]);
                log_warn!(
                    "{} sent {read} octets after STARTTLS before the TLS handshake; discarded",
                    self.client
                );
            }
            Ok(Some(_)) => {
                self.session.handle_eof();
                return;
            }
            Ok(None) => {}
            Err(error) => {
                log_debug!("reading from {} failed: {error}", self.client);
                self.session.tls_failed();
                return;
            }
        }
        if !self.transmit() {
            self.session.tls_failed();
            return;
        }

        let timeout = self.session.config().timeouts.command;
        match self.stream.accept_tls(tls, timeout) {
            Ok(info) => {
                log_debug!("TLS established with {}: {info}", self.client);
                self.tls_info = Some(info);
                self.hello = None;
                self.transaction = None;
                answered(self.session.tls_established());
            }
            Err(error) => {
                log_debug!("TLS handshake with {} failed: {error}", self.client);
                self.session.tls_failed();
            }
        }
    }

    /// Checks the credentials against the configured users.
    fn authenticate(
        &mut self,
        mechanism: &Mechanism,
        credentials: &AuthCredentials,
        handle: Handle,
    ) {
        let username = credentials.username();
        let Some(secret) = self.shared.users.get(username) else {
            log_info!(
                "{} tried AUTH {} as unknown user {username:?}",
                self.client,
                mechanism.name()
            );
            answered(self.session.reject_auth(handle));
            return;
        };

        match self
            .session
            .verify_secret(handle, credentials, secret.expose())
        {
            Ok(true) => log_debug!(
                "{} authenticated as {username:?} with {}",
                self.client,
                mechanism.name()
            ),
            Ok(false) => log_info!(
                "{} sent wrong credentials for {username:?} with {}",
                self.client,
                mechanism.name()
            ),
            Err(error) => log_warn!("answering AUTH of {} failed: {error}", self.client),
        }
    }

    /// Appends a content chunk to the message file, opened at the first chunk.
    fn write_content(&mut self, chunk: &Bytes) {
        let Some(transaction) = self.transaction.as_mut() else {
            return;
        };
        if transaction.content.is_none() {
            match self.shared.store.begin() {
                Ok(content) => transaction.content = Some(content),
                Err(error) => {
                    log_warn!("cannot create a message file: {error}");
                    return;
                }
            }
        }
        if let Some(content) = transaction.content.as_mut() {
            content.write(chunk);
        }
    }

    /// Stores the complete message and accepts it, or rejects it with 451 when it cannot be
    /// written.
    fn store(&mut self, handle: Handle) {
        let Some(transaction) = self.transaction.as_mut() else {
            answered(self.session.reject(handle, local_error()));
            return;
        };
        // Over LMTP every further recipient gets the reply of the first.
        if let Some(reply) = transaction.stored_reply.clone() {
            answered(self.session.accept_with(handle, reply));
            return;
        }

        let envelope = envelope_text(
            self.client,
            self.hello.as_ref(),
            self.tls_info.as_ref(),
            self.session.authenticated(),
            transaction,
        );
        let content = match transaction.content.take() {
            Some(content) => Ok(content),
            None => self.shared.store.begin(),
        };
        let stored = content.and_then(|content| content.finish(&envelope));
        let files = match stored {
            Ok(files) => files,
            Err(error) => {
                log_warn!("cannot store the message from {}: {error}", self.client);
                answered(self.session.reject(handle, local_error()));
                return;
            }
        };

        let delivery = Delivery {
            id: files.id,
            message_file: files.message,
            envelope_file: files.envelope,
            reverse_path: transaction.reverse_path.clone(),
            recipients: transaction
                .recipients
                .iter()
                .map(|(mailbox, _)| mailbox.clone())
                .collect(),
            size: files.size,
            client: self.client,
            authenticated: self.session.authenticated().map(str::to_owned),
            tls: self.tls_info,
        };
        log_info!(
            "stored message {} from {} ({} octets, {} recipients)",
            delivery.id,
            self.client,
            delivery.size,
            delivery.recipients.len()
        );
        if let Some(on_delivery) = self.shared.on_delivery.as_ref() {
            on_delivery(&delivery);
        }

        let text = format!("Stored as {}", delivery.id);
        let reply = Reply::new(ReplyCode::OK, vec![Bytes::from(text)]);
        transaction.stored_reply = Some(reply.clone());
        answered(self.session.accept_with(handle, reply));
    }
}

/// Writes the envelope file: one `name: value` line per field, in UTF-8, the MAIL and RCPT
/// arguments as they would be sent on the wire.
fn envelope_text(
    client: SocketAddr,
    hello: Option<&Domain>,
    tls: Option<&TlsInfo>,
    authenticated: Option<&str>,
    transaction: &Transaction,
) -> String {
    let none = || "none".to_owned();
    let mut text = String::new();
    let _ = writeln!(text, "client: {client}");
    let _ = writeln!(text, "helo: {}", hello.map_or_else(none, Domain::to_string));
    let _ = writeln!(text, "tls: {}", tls.map_or_else(none, TlsInfo::to_string));
    let _ = writeln!(text, "auth: {}", authenticated.unwrap_or("none"));

    let mail = Command::Mail {
        reverse_path: transaction.reverse_path.clone(),
        parameters: transaction.parameters.clone(),
    };
    let _ = writeln!(text, "mail-from: {}", command_argument(&mail, "MAIL FROM:"));
    for (forward_path, parameters) in &transaction.recipients {
        let rcpt = Command::Rcpt {
            forward_path: forward_path.clone(),
            parameters: parameters.clone(),
        };
        let _ = writeln!(text, "rcpt-to: {}", command_argument(&rcpt, "RCPT TO:"));
    }
    let size = transaction.content.as_ref().map_or(0, PendingMessage::size);
    let _ = writeln!(text, "size: {size}");
    text
}

/// Encodes `command` and returns what follows `verb` on its line.
fn command_argument(command: &Command, verb: &str) -> String {
    let mut line = BytesMut::new();
    command.encode(&mut line);
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end_matches("\r\n");
    line.strip_prefix(verb).unwrap_or(line).to_owned()
}

/// The reply to a message that could not be stored.
fn local_error() -> Reply {
    let text = Bytes::from_static(b"Cannot store the message, try again later");
    Reply::new(ReplyCode::LOCAL_ERROR, vec![text])
}

/// Logs an answer the session rejected, which means this adapter misused its API.
fn answered(result: Result<(), smtp_proto::server::Error>) {
    if let Err(error) = result {
        log_warn!("the server session rejected an answer: {error}");
    }
}

/// The size of the buffer each read fills.
const READ_BUFFER_SIZE: usize = 16 * 1024;
