//! The async client: it runs the loop of the sans-IO session on a tokio stream.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use smtp_blocking::{Options, TlsInfo, TranscriptText};
use smtp_proto::client::{
    Config, Delivery, Envelope, Error as SessionError, Event, Handle, Session, Stage, TlsPolicy,
    TranscriptLine,
};
use smtp_proto::command::Command;
use smtp_proto::{Capabilities, Reply};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::error::{Error, is_disconnect};
use crate::log::{log, wire_log_enabled};
use crate::stream::{Endpoint, Io, Transport};

/// An SMTP client connection driven by tokio: each call is a future that completes when the
/// server has replied.
///
/// [`Client::connect`] opens a TCP connection, or [`Client::connect_with`] takes a stream the
/// caller opened, and runs the greeting, EHLO, STARTTLS and AUTH as the [`Options`] say; then
/// [`send`](Self::send) delivers messages one by one, and [`send_batch`](Self::send_batch)
/// queues several so they can be pipelined (RFC 2920). Every protocol decision is made by the
/// [`Session`] of `smtp-proto`; the client moves bytes, runs the TLS handshake with
/// tokio-rustls and keeps time with `tokio::time`, so the reply deadlines follow a paused test
/// clock too.
///
/// Dropping a call's future part-way leaves the connection in an unknown state: the next call
/// closes it and returns [`Error::Cancelled`]. Once the session has ended, through
/// [`quit`](Self::quit), an error that closed it or a failed connection, every call returns
/// the error that ended it, or [`Closed`](SessionError::Closed) after a normal end.
pub struct Client {
    session: Session,
    transport: Transport,
    server: String,
    /// The configuration for STARTTLS; `None` under [`TlsPolicy::None`].
    tls: Option<smtp_blocking::TlsSetup>,
    tls_info: Option<TlsInfo>,
    ready: bool,
    transactions: HashMap<Handle, Result<Delivery, SessionError>>,
    commands: HashMap<Handle, Result<Reply, SessionError>>,
    closed: Option<Closure>,
    /// A call is under way. Still set when the next call starts, it means the last one was
    /// cancelled part-way.
    busy: bool,
    /// Message content of the current call may have reached the server.
    content_sent: bool,
    /// Messages queued on this connection, for the pool's limit per connection.
    messages: usize,
    read_buffer: Box<[u8]>,
}

impl Client {
    /// Connects to `server` over TCP and drives the session until it is ready for mail:
    /// greeting, EHLO, STARTTLS and AUTH as [`Options::session`] configures, or the first error.
    ///
    /// `server` is `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address. Without a port the
    /// client uses 465 for [`TlsPolicy::Wrapper`] (implicit TLS, RFC 8314) and 587 otherwise
    /// (submission, RFC 6409). Each resolved address gets [`Options::connect_timeout`], and the
    /// socket gets `TCP_NODELAY`.
    pub async fn connect(server: &str, options: Options) -> Result<Self, Error> {
        let endpoint = Endpoint::new(server, &options)?;
        let tcp = endpoint.connect_tcp(options.connect_timeout).await?;
        log!(info, endpoint.server, "connected");
        Self::open(Box::new(tcp), endpoint, options.session).await
    }

    /// Runs the session on a stream the caller opened, such as a SOCKS5 or HTTP CONNECT tunnel,
    /// a Unix socket or an in-memory pipe, until it is ready for mail.
    ///
    /// `server` names the server in logs and errors, and its host part is the name the
    /// certificate must match unless [`Options::tls_server_name`] is set. The client never
    /// resolves or connects to it. The stream must be at the start of the session: the client waits for the
    /// greeting, or under [`TlsPolicy::Wrapper`] starts with the TLS handshake.
    pub async fn connect_with<S>(stream: S, server: &str, options: Options) -> Result<Self, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let endpoint = Endpoint::new(server, &options)?;
        Self::open(Box::new(stream), endpoint, options.session).await
    }

    /// Sends one message: MAIL FROM, RCPT TO for each recipient, DATA and the content, and
    /// returns the per-recipient results and the final reply.
    ///
    /// A 4xx or 5xx reply that ends the transaction is an error carrying the reply
    /// ([`Error::smtp`]). After a transaction that failed, the session sends RSET before the next
    /// one, so the connection stays usable.
    pub async fn send(
        &mut self,
        envelope: Envelope,
        body: impl Into<Bytes>,
    ) -> Result<Delivery, Error> {
        self.begin()?;
        let result = self.send_one(envelope, body.into()).await;
        self.busy = false;
        result
    }

    /// Queues every message before waiting, so the session can pipeline consecutive
    /// transactions when the server offers PIPELINING (RFC 2920 section 3.1), and returns one
    /// result per message, in order.
    pub async fn send_batch(
        &mut self,
        messages: impl IntoIterator<Item = (Envelope, Bytes)>,
    ) -> Vec<Result<Delivery, Error>> {
        if let Err(error) = self.begin() {
            return messages
                .into_iter()
                .map(|_| Err(error.duplicate()))
                .collect();
        }

        let queued: Vec<Result<Handle, Error>> = messages
            .into_iter()
            .map(|(envelope, body)| {
                self.messages += 1;
                Ok(self.session.send(envelope, body)?)
            })
            .collect();
        let outcome = self
            .run(|client| {
                queued.iter().all(|handle| match handle {
                    Ok(handle) => client.transactions.contains_key(handle),
                    Err(_) => true,
                })
            })
            .await;
        self.busy = false;

        queued
            .into_iter()
            .map(|handle| {
                let handle = handle?;
                match self.transactions.remove(&handle) {
                    Some(result) => result.map_err(Error::from),
                    None => Err(match &outcome {
                        Err(error) => error.duplicate(),
                        Ok(()) => Error::from(SessionError::Closed),
                    }),
                }
            })
            .collect()
    }

    /// Sends one command and returns the server's reply, for callers who drive the dialogue
    /// themselves. A 4xx or 5xx reply is `Ok`: it is the server's answer. STARTTLS and AUTH are
    /// rejected, because the session runs them as configured.
    pub async fn command(&mut self, command: Command) -> Result<Reply, Error> {
        self.single(|session| session.command(command)).await
    }

    /// Sends message content after a DATA sent with [`command`](Self::command) got 354, and
    /// returns the reply to its end of data. The content is dot-stuffed and its line ends made
    /// CRLF on the way out (RFC 5321 section 4.5.2).
    pub async fn data(&mut self, body: impl Into<Bytes>) -> Result<Reply, Error> {
        let body = body.into();
        self.single(|session| session.data(body)).await
    }

    /// Sends NOOP (RFC 5321 section 4.1.1.9) and returns the reply.
    pub async fn noop(&mut self) -> Result<Reply, Error> {
        self.command(Command::Noop).await
    }

    /// Sends QUIT, waits for the reply or the end of the connection, and closes it.
    pub async fn quit(mut self) -> Result<(), Error> {
        self.begin()?;
        self.session.quit();

        let _closed = self.run(|client| client.closed.is_some()).await;
        match &self.closed {
            Some(Closure::Session(None)) => Ok(()),
            Some(closure) => Err(closure.error()),
            None => Err(Error::from(SessionError::Closed)),
        }
    }

    /// Returns the capabilities of the last EHLO reply; after STARTTLS these are the ones the
    /// server announced over TLS.
    pub fn capabilities(&self) -> &Capabilities {
        self.session.capabilities()
    }

    /// Tells whether the connection is encrypted, by STARTTLS or implicit TLS.
    pub fn is_encrypted(&self) -> bool {
        self.session.is_encrypted()
    }

    /// Returns the TLS version and cipher suite, once TLS is up.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.tls_info
    }

    /// Tells whether the connection can take another message now: open, with no call under way
    /// or cancelled, and the session idle.
    pub fn is_idle(&self) -> bool {
        self.closed.is_none() && !self.busy && self.session.is_idle()
    }

    /// Returns the server as given to [`connect`](Self::connect) or
    /// [`connect_with`](Self::connect_with).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Runs the session on a connected stream until it is ready for mail; under
    /// [`TlsPolicy::Wrapper`] the TLS handshake comes first.
    pub(crate) async fn open(
        io: Box<dyn Io>,
        endpoint: Endpoint,
        mut config: Config,
    ) -> Result<Self, Error> {
        if wire_log_enabled() {
            config.transcript = true;
        }
        let Endpoint { server, tls, .. } = endpoint;

        let mut transport = Transport::Plain(io);
        let mut tls_info = None;
        if let (TlsPolicy::Wrapper, Some(setup)) = (config.tls, tls.as_ref()) {
            let handshake =
                tokio::time::timeout(config.timeouts.command, transport.start_tls(setup));
            let info = match handshake.await {
                Ok(Ok(info)) => info,
                Ok(Err(error)) => {
                    log!(warn, server, "TLS handshake failed: {error}");
                    return Err(error);
                }
                Err(_) => {
                    log!(warn, server, "TLS handshake timed out");
                    return Err(handshake_timed_out(config.timeouts.command));
                }
            };
            log!(info, server, "implicit TLS established: {info}");
            tls_info = Some(info);
        }

        let mut client = Self {
            session: Session::new(config, now()),
            transport,
            server,
            tls,
            tls_info,
            ready: false,
            transactions: HashMap::new(),
            commands: HashMap::new(),
            closed: None,
            busy: false,
            content_sent: false,
            messages: 0,
            read_buffer: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
        };
        if client.session.config().transcript && client.tls_info.is_some() {
            client.log_line(&TranscriptLine::TlsEstablished);
        }
        client.run(|client| client.ready).await?;
        Ok(client)
    }

    /// Reads what the server sent while the connection sat idle, without waiting, and returns
    /// whether the connection can still take a message. A 421, any other unsolicited reply or
    /// the end of the connection ends the session.
    pub(crate) async fn check_idle(&mut self) -> bool {
        while !self.session.is_closed() {
            match self.transport.read_waiting(&mut self.read_buffer).await {
                None => break,
                Some(Ok(0)) => self.session.handle_eof(),
                Some(Ok(read)) => self.session.handle_input(&self.read_buffer[..read]),
                Some(Err(error)) if is_disconnect(&error) => self.session.handle_eof(),
                Some(Err(error)) => {
                    self.fail(Error::from_io(error)).await;
                    break;
                }
            }
        }
        self.handle_events().await;
        self.log_transcript();
        self.is_idle()
    }

    /// Tells whether no message content of the last call may have reached the server.
    pub(crate) fn content_unsent(&self) -> bool {
        !self.content_sent
    }

    /// Returns the step the session is in, for a deadline that abandons the call.
    pub(crate) fn stage(&self) -> Stage {
        self.session.stage()
    }

    /// Returns how many messages were queued on this connection.
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// Starts a call: closes the connection if the last call was cancelled part-way, and
    /// returns the error that ended the session, if one did.
    fn begin(&mut self) -> Result<(), Error> {
        if self.busy {
            log!(
                debug,
                self.server,
                "an earlier call was cancelled part-way; closing the connection"
            );
            self.transport = Transport::Closed;
            if self.closed.is_none() {
                self.closed = Some(Closure::Cancelled);
            }
        }
        if let Some(closure) = &self.closed {
            return Err(closure.error());
        }

        self.busy = true;
        self.content_sent = false;
        Ok(())
    }

    async fn send_one(&mut self, envelope: Envelope, body: Bytes) -> Result<Delivery, Error> {
        self.messages += 1;
        let handle = self.session.send(envelope, body)?;

        self.run(|client| client.transactions.contains_key(&handle))
            .await?;
        self.transactions
            .remove(&handle)
            .expect("run returned Ok, so the transaction completed")
            .map_err(Error::from)
    }

    /// Runs one piece of work `queue` puts on the session and returns the reply to it.
    async fn single(
        &mut self,
        queue: impl FnOnce(&mut Session) -> Result<Handle, SessionError>,
    ) -> Result<Reply, Error> {
        self.begin()?;
        let result = match queue(&mut self.session) {
            Ok(handle) => self.wait_reply(handle).await,
            Err(error) => Err(Error::from(error)),
        };
        self.busy = false;
        result
    }

    async fn wait_reply(&mut self, handle: Handle) -> Result<Reply, Error> {
        self.run(|client| client.commands.contains_key(&handle))
            .await?;
        self.commands
            .remove(&handle)
            .expect("run returned Ok, so the command completed")
            .map_err(Error::from)
    }

    /// Runs the session loop until `done` returns `true`, or returns the error that ended the
    /// session before that.
    async fn run(&mut self, done: impl Fn(&Self) -> bool) -> Result<(), Error> {
        loop {
            self.transmit().await;
            let upgraded = self.handle_events().await;
            self.log_transcript();
            if upgraded {
                // The EHLO after the handshake is waiting to go out.
                continue;
            }
            if done(self) {
                return Ok(());
            }
            if let Some(closure) = &self.closed {
                return Err(closure.error());
            }
            self.receive().await;
        }
    }

    /// Writes every buffer the session has for the server, each with one write, within the
    /// session's write timeout.
    async fn transmit(&mut self) {
        while let Some(data) = self.session.poll_transmit(now()) {
            if matches!(self.session.stage(), Stage::MessageData | Stage::EndOfData) {
                self.content_sent = true;
            }
            if self.transport.is_closed() {
                // The connection is gone: the session got its end already or is closed.
                continue;
            }

            let limit = self.session.write_timeout();
            match tokio::time::timeout(limit, self.transport.write_all(&data)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => self.on_write_error(error).await,
                Err(_) => {
                    self.fail(Error::io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("writing to the server timed out after {limit:?}"),
                    )))
                    .await;
                }
            }
        }
    }

    /// Handles a failed write. A server that closes the connection in the middle of message
    /// data often sends a reply such as 421 first. That reply is read and given to the session
    /// before the end of the connection, so the error carries the server's text.
    async fn on_write_error(&mut self, error: io::Error) {
        log!(
            debug,
            self.server,
            "writing failed: {error}; reading the server's last reply"
        );
        let deadline = Instant::now() + DRAIN_AFTER_WRITE_ERROR;
        while !self.session.is_closed() && !self.transport.is_closed() {
            let read = self.transport.read(&mut self.read_buffer);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(read)) if read > 0 => self.session.handle_input(&self.read_buffer[..read]),
                _ => break,
            }
        }
        self.session.handle_eof();
        self.transport.shutdown().await;
    }

    /// Handles every pending event; returns `true` after a TLS upgrade, when the session has a
    /// new EHLO to send.
    async fn handle_events(&mut self) -> bool {
        let mut upgraded = false;
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::GreetingReceived { reply } => log!(debug, self.server, "greeted: {reply}"),
                Event::TlsUpgradeRequired => upgraded |= self.upgrade().await,
                Event::Authenticated { mechanism } => {
                    log!(
                        debug,
                        self.server,
                        "authenticated with {}",
                        mechanism.name()
                    );
                }
                Event::Ready => self.ready = true,
                Event::TransactionCompleted { handle, result } => {
                    self.transactions.insert(handle, result);
                }
                Event::CommandCompleted { handle, result } => {
                    self.commands.insert(handle, result);
                }
                Event::Closed { error } => self.on_closed(error).await,
                // Events added to the session later carry nothing this loop must act on.
                _ => {}
            }
        }
        upgraded
    }

    /// Runs the TLS handshake after the server accepted STARTTLS; returns whether it succeeded.
    async fn upgrade(&mut self) -> bool {
        // Lines up to the 220 reply were in clear text; log them before the handshake.
        self.log_transcript();
        let Some(setup) = self.tls.clone() else {
            self.fail(Error::io(io::Error::other(
                "the session requested TLS but no TLS configuration exists",
            )))
            .await;
            return false;
        };

        // Bytes that already wait after the 220 reply are not TLS: the session rejects them
        // unread (RFC 3207 section 4.2). Later ones reach the handshake, which rejects them.
        match self.transport.read_waiting(&mut self.read_buffer).await {
            None => {}
            Some(Ok(0)) => {
                self.session.handle_eof();
                return false;
            }
            Some(Ok(read)) => {
                self.session.handle_input(&self.read_buffer[..read]);
                return false;
            }
            Some(Err(error)) => {
                self.fail(Error::from_io(error)).await;
                return false;
            }
        }

        let limit = self.session.config().timeouts.command;
        let handshake = tokio::time::timeout(limit, self.transport.start_tls(&setup)).await;
        match handshake {
            Ok(Ok(info)) => {
                log!(info, self.server, "STARTTLS upgrade done: {info}");
                self.tls_info = Some(info);
            }
            Ok(Err(error)) => {
                self.fail(error).await;
                return false;
            }
            Err(_) => {
                self.fail(handshake_timed_out(limit)).await;
                return false;
            }
        }
        match self.session.tls_established() {
            Ok(()) => true,
            Err(error) => {
                self.fail(Error::from(error)).await;
                false
            }
        }
    }

    /// Reads once, until the session's next deadline, and feeds the result to the session.
    async fn receive(&mut self) {
        let Some(deadline) = self.session.poll_timeout() else {
            self.fail(Error::io(io::Error::other(
                "the session awaits no reply but the requested work is unfinished",
            )))
            .await;
            return;
        };

        let read = self.transport.read(&mut self.read_buffer);
        match tokio::time::timeout_at(Instant::from_std(deadline), read).await {
            Ok(Ok(0)) => self.session.handle_eof(),
            Ok(Ok(read)) => self.session.handle_input(&self.read_buffer[..read]),
            Ok(Err(error)) if is_disconnect(&error) => self.session.handle_eof(),
            Ok(Err(error)) => self.fail(Error::from_io(error)).await,
            Err(_) => self.session.handle_timeout(now()),
        }
    }

    /// Ends the connection after the session reported [`Event::Closed`].
    async fn on_closed(&mut self, error: Option<SessionError>) {
        match &error {
            Some(error) => log!(warn, self.server, "session ended: {error}"),
            None => log!(debug, self.server, "session ended"),
        }
        self.transmit().await;
        self.transport.shutdown().await;
        if self.closed.is_none() {
            self.closed = Some(Closure::Session(error));
        }
    }

    /// Ends the connection after an error of the connection itself.
    async fn fail(&mut self, error: Error) {
        log!(warn, self.server, "connection failed: {error}");
        self.transport.shutdown().await;
        if self.closed.is_none() {
            self.closed = Some(Closure::Connection(error));
        }
    }

    /// Logs the transcript lines at trace level: AUTH payloads arrive redacted from the
    /// session, and message content as an octet count.
    fn log_transcript(&mut self) {
        while let Some(line) = self.session.poll_transcript() {
            self.log_line(&line);
        }
    }

    fn log_line(&self, line: &TranscriptLine) {
        log!(
            trace,
            self.server,
            "{}",
            TranscriptText::new(line, self.tls_info.as_ref())
        );
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("encrypted", &self.is_encrypted())
            .field("tls_info", &self.tls_info)
            .field("ready", &self.ready)
            .field("messages", &self.messages)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// The cause that ended the session.
#[derive(Debug)]
enum Closure {
    /// The session reported [`Event::Closed`], with its error or `None` after QUIT.
    Session(Option<SessionError>),
    /// The connection failed under the session: a read, write or TLS error.
    Connection(Error),
    /// A call was cancelled part-way, so the connection was closed.
    Cancelled,
}

impl Closure {
    fn error(&self) -> Error {
        match self {
            Self::Session(Some(error)) => Error::from(error.clone()),
            Self::Session(None) => Error::from(SessionError::Closed),
            Self::Connection(error) => error.duplicate(),
            Self::Cancelled => Error::Cancelled,
        }
    }
}

/// Returns the time for the session from tokio's clock, which tests can pause and advance.
fn now() -> StdInstant {
    Instant::now().into_std()
}

fn handshake_timed_out(limit: Duration) -> Error {
    Error::io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("TLS handshake timed out after {limit:?}"),
    ))
}

/// How long the client reads after a failed write, for a reply the server sent before closing.
const DRAIN_AFTER_WRITE_ERROR: Duration = Duration::from_secs(2);

/// The size of the buffer each read fills.
const READ_BUFFER_SIZE: usize = 16 * 1024;
