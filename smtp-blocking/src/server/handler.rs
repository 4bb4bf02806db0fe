//! The application side of one connection: the decisions the session's events request, made
//! the same way whatever loop moves the bytes. AUTH is checked against the users, every MAIL and
//! RCPT is accepted, and each message is written to the folder.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use smtp_proto::command::{Command, MailParameters, RcptParameters};
use smtp_proto::server::{AuthCredentials, Event, Handle, Session};
use smtp_proto::{Domain, Mailbox, Mechanism, Reply, ReplyCode, ReversePath};

use crate::log::{log_debug, log_info, log_warn};
use crate::server::store::PendingMessage;
use crate::server::{Delivery, ServerState};
use crate::tls::TlsInfo;

/// The decisions for one connection's [`Session`], and the envelope of its open transaction.
///
/// A connection loop creates one per accepted connection and calls
/// [`handle_events`](Self::handle_events) after each call that feeds the session; the loop
/// itself only moves bytes, runs TLS handshakes and keeps time.
#[derive(Debug)]
pub struct ConnectionHandler {
    state: Arc<ServerState>,
    client: SocketAddr,
    tls_info: Option<TlsInfo>,
    /// The name of the accepted EHLO, HELO or LHLO.
    hello: Option<Domain>,
    transaction: Option<Transaction>,
}

/// The envelope of the open transaction and the file its content goes to.
#[derive(Debug)]
struct Transaction {
    reverse_path: ReversePath,
    parameters: MailParameters,
    recipients: Vec<(Mailbox, RcptParameters)>,
    /// Opened at the first content chunk.
    content: Option<PendingMessage>,
    /// The reply that stored the message, repeated for each further LMTP recipient.
    stored_reply: Option<Reply>,
}

impl ConnectionHandler {
    /// Creates the handler of a connection from `client`; `tls` is the result of the handshake
    /// when the connection is implicit TLS.
    pub fn new(state: Arc<ServerState>, client: SocketAddr, tls: Option<TlsInfo>) -> Self {
        Self {
            state,
            client,
            tls_info: tls,
            hello: None,
            transaction: None,
        }
    }

    /// Returns the client's address.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// Handles the session's pending events, deciding those that carry a handle, until none is
    /// left or one is [`Event::TlsUpgradeRequired`].
    ///
    /// Returns `true` at `TlsUpgradeRequired`, with later events still queued: the caller then
    /// reads what is already waiting into the session (plaintext sent ahead of the handshake,
    /// which the session discards), writes the queued replies, runs the TLS handshake, calls
    /// [`tls_established`](Self::tls_established) or [`Session::tls_failed`], and calls this
    /// method again.
    pub fn handle_events(&mut self, session: &mut Session) -> bool {
        while let Some(event) = session.poll_event() {
            match event {
                Event::Hello { domain, handle, .. } => {
                    self.hello = Some(domain);
                    answered(session.accept(handle));
                }
                Event::TlsUpgradeRequired => return true,
                Event::AuthRequested {
                    mechanism,
                    credentials,
                    handle,
                } => self.authenticate(session, &mechanism, &credentials, handle),
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
                    answered(session.accept(handle));
                }
                Event::RcptTo {
                    forward_path,
                    parameters,
                    handle,
                } => {
                    if let Some(transaction) = self.transaction.as_mut() {
                        transaction.recipients.push((forward_path, parameters));
                    }
                    answered(session.accept(handle));
                }
                Event::MessageData { chunk } => self.write_content(&chunk),
                Event::MessageComplete { handle, .. } => self.store(session, handle),
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
        false
    }

    /// Records the finished STARTTLS handshake and tells the session, which then forgets the
    /// greeting and any transaction, as RFC 3207 section 4.2 requires.
    pub fn tls_established(&mut self, session: &mut Session, info: TlsInfo) {
        log_debug!("TLS established with {}: {info}", self.client);
        self.tls_info = Some(info);
        self.hello = None;
        self.transaction = None;
        answered(session.tls_established());
    }

    /// Checks the credentials against the configured users.
    fn authenticate(
        &mut self,
        session: &mut Session,
        mechanism: &Mechanism,
        credentials: &AuthCredentials,
        handle: Handle,
    ) {
        let username = credentials.username();
        let Some(secret) = self.state.users.get(username) else {
            log_info!(
                "{} tried AUTH {} as unknown user {username:?}",
                self.client,
                mechanism.name()
            );
            answered(session.reject_auth(handle));
            return;
        };

        match session.verify_secret(handle, credentials, secret.expose()) {
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
            match self.state.store.begin() {
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
    fn store(&mut self, session: &mut Session, handle: Handle) {
        let Some(transaction) = self.transaction.as_mut() else {
            answered(session.reject(handle, local_error()));
            return;
        };
        // Over LMTP every further recipient gets the reply of the first.
        if let Some(reply) = transaction.stored_reply.clone() {
            answered(session.accept_with(handle, reply));
            return;
        }

        let envelope = envelope_text(
            self.client,
            self.hello.as_ref(),
            self.tls_info.as_ref(),
            session.authenticated(),
            transaction,
        );
        let content = match transaction.content.take() {
            Some(content) => Ok(content),
            None => self.state.store.begin(),
        };
        let stored = content.and_then(|content| content.finish(&envelope));
        let files = match stored {
            Ok(files) => files,
            Err(error) => {
                log_warn!("cannot store the message from {}: {error}", self.client);
                answered(session.reject(handle, local_error()));
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
            authenticated: session.authenticated().map(str::to_owned),
            tls: self.tls_info,
        };
        log_info!(
            "stored message {} from {} ({} octets, {} recipients)",
            delivery.id,
            self.client,
            delivery.size,
            delivery.recipients.len()
        );
        if let Some(on_delivery) = self.state.on_delivery.as_ref() {
            on_delivery(&delivery);
        }

        let text = format!("Stored as {}", delivery.id);
        let reply = Reply::new(ReplyCode::OK, vec![Bytes::from(text)]);
        transaction.stored_reply = Some(reply.clone());
        answered(session.accept_with(handle, reply));
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
