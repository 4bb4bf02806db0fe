//! The blocking client: it runs the loop of the sans-IO session on a socket.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smtp_proto::client::{Delivery, Envelope, Event, Handle, Session, TlsPolicy, TranscriptLine};
use smtp_proto::command::Command;
use smtp_proto::{Capabilities, Reply};

use crate::error::Error;
use crate::log::{log_debug, log_info, log_trace, log_warn, trace_enabled};
use crate::options::Options;
use crate::stream::{Received, ServerAddress, Stream};
use crate::tls::{TlsInfo, TlsSetup};
use crate::transcript::{TranscriptHook, TranscriptText};

/// An SMTP client connection that blocks the calling thread until each call is done.
///
/// [`Client::connect`] opens the connection and runs the greeting, EHLO, STARTTLS and AUTH as
/// configured in [`Options`]; then [`send`](Self::send) delivers messages one by one, and
/// [`send_batch`](Self::send_batch) queues several so they can be pipelined (RFC 2920). Every
/// protocol decision is made by the [`Session`] of `smtp-proto`; the client moves bytes, runs the
/// TLS handshake and keeps time.
///
/// Once the session has ended, through [`quit`](Self::quit), an error that closed it or a
/// failed connection, every call returns the error that ended it, or
/// [`Closed`](smtp_proto::client::Error::Closed) after a normal end.
pub struct Client {
    session: Session,
    /// `None` once the connection is shut down.
    stream: Option<Stream>,
    server: String,
    /// The configuration for STARTTLS; `None` under [`TlsPolicy::None`].
    tls: Option<TlsSetup>,
    tls_info: Option<TlsInfo>,
    hook: Option<TranscriptHook>,
    /// Transcript lines recorded during [`Client::connect`], kept for the first hook.
    early_transcript: Vec<(TranscriptLine, Option<TlsInfo>)>,
    connecting: bool,
    ready: bool,
    transactions: HashMap<Handle, Result<Delivery, smtp_proto::client::Error>>,
    commands: HashMap<Handle, Result<Reply, smtp_proto::client::Error>>,
    closed: Option<Closure>,
}

impl Client {
    /// Connects to `server` and drives the session until it is ready for mail: greeting, EHLO,
    /// STARTTLS and AUTH as configured in [`Options::session`], or the first error.
    ///
    /// `server` is `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address. Without a port the
    /// client uses 465 for [`TlsPolicy::Wrapper`] (implicit TLS, RFC 8314) and 587 otherwise
    /// (submission, RFC 6409). The socket gets `TCP_NODELAY`; under `Wrapper` the TLS handshake
    /// runs before the session starts.
    pub fn connect(server: &str, options: Options) -> Result<Self, Error> {
        Self::open(server, options, None)
    }

    /// Connects like [`connect`](Self::connect), passing every transcript line to `hook` as it
    /// happens, the greeting, EHLO, STARTTLS and AUTH included, even when the connect fails.
    ///
    /// The lines are only recorded with `options.session.transcript` set.
    pub fn connect_with_transcript(
        server: &str,
        options: Options,
        hook: impl FnMut(&TranscriptLine, Option<&TlsInfo>) + Send + 'static,
    ) -> Result<Self, Error> {
        Self::open(server, options, Some(Box::new(hook)))
    }

    /// Sends one message: MAIL FROM, RCPT TO for each recipient, DATA and the content, and
    /// returns the per-recipient results and the final reply.
    ///
    /// A 4xx or 5xx reply that ends the transaction is an [`Error::Smtp`] carrying the reply.
    /// After a transaction that failed, the session sends RSET before the next one.
    pub fn send(&mut self, envelope: Envelope, body: impl Into<Bytes>) -> Result<Delivery, Error> {
        self.check_open()?;
        let handle = self.session.send(envelope, body)?;

        self.run(|client| client.transactions.contains_key(&handle))?;
        self.take_transaction(handle)
    }

    /// Queues every message before waiting, so the session can pipeline consecutive
    /// transactions when the server offers PIPELINING (RFC 2920 section 3.1), and returns one
    /// result per message, in order.
    pub fn send_batch(
        &mut self,
        messages: impl IntoIterator<Item = (Envelope, Bytes)>,
    ) -> Vec<Result<Delivery, Error>> {
        let queued: Vec<Result<Handle, Error>> = messages
            .into_iter()
            .map(|(envelope, body)| {
                self.check_open()?;
                Ok(self.session.send(envelope, body)?)
            })
            .collect();

        let outcome = self.run(|client| {
            queued.iter().all(|handle| match handle {
                Ok(handle) => client.transactions.contains_key(handle),
                Err(_) => true,
            })
        });
        queued
            .into_iter()
            .map(|handle| match (handle?, &outcome) {
                (handle, Ok(())) => self.take_transaction(handle),
                (handle, Err(error)) => match self.transactions.remove(&handle) {
                    Some(result) => result.map_err(Error::Smtp),
                    None => Err(error.duplicate()),
                },
            })
            .collect()
    }

    /// Sends one command and returns the server's reply, for callers who drive the dialogue
    /// themselves. A 4xx or 5xx reply is `Ok`, because it is the server's reply. STARTTLS and AUTH are
    /// rejected, because the session runs them as configured.
    pub fn command(&mut self, command: Command) -> Result<Reply, Error> {
        self.check_open()?;
        let handle = self.session.command(command)?;
        self.wait_command(handle)
    }

    /// Sends message content after a DATA sent with [`command`](Self::command) got 354, and
    /// returns the reply to its end of data. The content is dot-stuffed and its line ends made
    /// CRLF on the way out (RFC 5321 section 4.5.2).
    pub fn data(&mut self, body: impl Into<Bytes>) -> Result<Reply, Error> {
        self.check_open()?;
        let handle = self.session.data(body)?;
        self.wait_command(handle)
    }

    /// Sends NOOP (RFC 5321 section 4.1.1.9) and returns the reply.
    pub fn noop(&mut self) -> Result<Reply, Error> {
        self.check_open()?;
        let handle = self.session.noop()?;
        self.wait_command(handle)
    }

    /// Sends QUIT, waits for the reply or the end of the connection, and closes it.
    pub fn quit(mut self) -> Result<(), Error> {
        self.check_open()?;
        self.session.quit();

        let _closed = self.run(|client| client.closed.is_some());
        match &self.closed {
            Some(Closure::Session(None)) => Ok(()),
            Some(closure) => Err(closure.error()),
            None => Err(Error::Smtp(smtp_proto::client::Error::Closed)),
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

    /// Calls `hook` with every transcript line from now on, with the TLS parameters in force
    /// when the line was recorded. Lines recorded during [`connect`](Self::connect) are passed
    /// to the first hook at once; without a hook, later lines are dropped.
    ///
    /// Lines are only recorded with `options.session.transcript` set. AUTH payloads arrive
    /// redacted and message content as an octet count; [`TranscriptText`] formats a line.
    pub fn on_transcript(
        &mut self,
        hook: impl FnMut(&TranscriptLine, Option<&TlsInfo>) + Send + 'static,
    ) {
        let mut hook: TranscriptHook = Box::new(hook);
        for (line, tls) in self.early_transcript.drain(..) {
            hook(&line, tls.as_ref());
        }
        self.hook = Some(hook);
    }

    fn open(
        server: &str,
        mut options: Options,
        hook: Option<TranscriptHook>,
    ) -> Result<Self, Error> {
        let policy = options.session.tls;
        let address = ServerAddress::parse(server, ServerAddress::default_port(policy))?;
        let tls = match policy {
            TlsPolicy::None => None,
            _ => Some(TlsSetup::new(&options, &address.host)?),
        };
        if trace_enabled() {
            options.session.transcript = true;
        }

        let tcp = address.connect(options.connect_timeout)?;
        log_info!("connected to {server}");
        // The session's data_block timeout is the write timeout, as Timeouts documents.
        let mut stream = Stream::new(tcp, options.session.timeouts.data_block)?;
        let mut tls_info = None;
        if let (TlsPolicy::Wrapper, Some(setup)) = (policy, tls.as_ref()) {
            let info = stream
                .start_tls(setup, options.session.timeouts.command)
                .inspect_err(|error| log_warn!("TLS handshake with {server} failed: {error}"))?;
            log_debug!("implicit TLS established with {server}: {info}");
            tls_info = Some(info);
        }

        let transcript = options.session.transcript;
        let mut client = Self {
            session: Session::new(options.session, Instant::now()),
            stream: Some(stream),
            server: server.to_owned(),
            tls,
            tls_info,
            hook,
            early_transcript: Vec::new(),
            connecting: true,
            ready: false,
            transactions: HashMap::new(),
            commands: HashMap::new(),
            closed: None,
        };
        if transcript && tls_info.is_some() {
            client.record_transcript(TranscriptLine::TlsEstablished);
        }
        client.run(|client| client.ready)?;
        client.connecting = false;
        Ok(client)
    }

    /// Runs the session loop until `done` returns `true`, or returns the error that ended the
    /// session before that.
    fn run(&mut self, done: impl Fn(&Self) -> bool) -> Result<(), Error> {
        loop {
            self.transmit();
            let upgraded = self.handle_events();
            self.deliver_transcript();
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
            self.receive();
        }
    }

    /// Writes every buffer the session has for the server, each with one write.
    fn transmit(&mut self) {
        while let Some(data) = self.session.poll_transmit(Instant::now()) {
            let Some(stream) = self.stream.as_mut() else {
                // The connection is gone, and the session has seen its end or is closed.
                continue;
            };
            if let Err(error) = stream.write_all(&data) {
                self.on_write_error(error);
            }
        }
    }

    /// Handles a failed write. A server that closes the connection in the middle of message
    /// data often sends a reply such as 421 first. That reply is read and given to the session
    /// before the end of the connection, so the error carries the server's text.
    fn on_write_error(&mut self, error: io::Error) {
        if matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            self.fail(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("writing to the server timed out: {error}"),
            )));
            return;
        }

        log_debug!(
            "writing to {} failed: {error}; reading its last reply",
            self.server
        );
        let deadline = Instant::now() + DRAIN_AFTER_WRITE_ERROR;
        let mut buffer = [0; READ_BUFFER_SIZE];
        while let Some(stream) = self.stream.as_mut() {
            if self.session.is_closed() {
                break;
            }
            match stream.read(&mut buffer, deadline) {
                Ok(Received::Data(read)) => self.session.handle_input(&buffer[..read]),
                Ok(Received::Eof | Received::TimedOut) | Err(_) => break,
            }
        }
        self.session.handle_eof();
        self.shutdown();
    }

    /// Handles every pending event; returns `true` after a TLS upgrade, when the session has a
    /// new EHLO to send.
    fn handle_events(&mut self) -> bool {
        let mut upgraded = false;
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::GreetingReceived { reply } => log_debug!("{} greeted: {reply}", self.server),
                Event::TlsUpgradeRequired => upgraded |= self.upgrade(),
                Event::Authenticated { mechanism } => {
                    log_debug!("authenticated to {} with {}", self.server, mechanism.name());
                }
                Event::Ready => self.ready = true,
                Event::TransactionCompleted { handle, result } => {
                    self.transactions.insert(handle, result);
                }
                Event::CommandCompleted { handle, result } => {
                    self.commands.insert(handle, result);
                }
                Event::Closed { error } => self.on_closed(error),
                // Events added to the session later carry nothing this loop must act on.
                _ => {}
            }
        }
        upgraded
    }

    /// Runs the TLS handshake after the server accepted STARTTLS; returns whether it succeeded.
    fn upgrade(&mut self) -> bool {
        // Lines up to the 220 reply were in clear text; report them with no TLS parameters.
        self.deliver_transcript();
        let (Some(stream), Some(setup)) = (self.stream.as_mut(), self.tls.as_ref()) else {
            self.fail(Error::Io(io::Error::other(
                "the session requested TLS but no TLS configuration exists",
            )));
            return false;
        };

        // Bytes that already wait after the 220 reply are not TLS: the session rejects them
        // unread (RFC 3207 section 4.2). Later ones reach the handshake, which rejects them.
        let mut buffer = [0; READ_BUFFER_SIZE];
        match stream.read_waiting(&mut buffer) {
            Ok(None) => {}
            Ok(Some(Received::Data(read))) => {
                self.session.handle_input(&buffer[..read]);
                return false;
            }
            Ok(Some(_)) => {
                self.session.handle_eof();
                return false;
            }
            Err(error) => {
                self.fail(error);
                return false;
            }
        }

        let timeout = self.session.config().timeouts.command;
        match stream.start_tls(setup, timeout) {
            Ok(info) => {
                log_debug!("TLS established with {}: {info}", self.server);
                self.tls_info = Some(info);
            }
            Err(error) => {
                // The session fails its queued work; the caller gets the TLS error itself.
                self.fail(error);
                self.session.tls_failed();
                return false;
            }
        }
        match self.session.tls_established() {
            Ok(()) => true,
            Err(error) => {
                self.fail(Error::Smtp(error));
                false
            }
        }
    }

    /// Reads once, until the session's next deadline, and feeds the result to the session.
    fn receive(&mut self) {
        let Some(deadline) = self.session.poll_timeout() else {
            self.fail(Error::Io(io::Error::other(
                "the session awaits no reply but the requested work is unfinished",
            )));
            return;
        };
        let Some(stream) = self.stream.as_mut() else {
            self.fail(Error::Io(io::Error::other(
                "the connection is already shut down",
            )));
            return;
        };

        let mut buffer = [0; READ_BUFFER_SIZE];
        match stream.read(&mut buffer, deadline) {
            Ok(Received::Data(read)) => self.session.handle_input(&buffer[..read]),
            Ok(Received::Eof) => self.session.handle_eof(),
            Ok(Received::TimedOut) => self.session.handle_timeout(Instant::now()),
            Err(error) => {
                // The session decides what the lost connection means for each piece of work,
                // such as an unknown outcome for a message whose data all went out.
                self.fail(error);
                self.session.handle_eof();
            }
        }
    }

    /// Ends the connection after the session reported [`Event::Closed`].
    fn on_closed(&mut self, error: Option<smtp_proto::client::Error>) {
        match &error {
            Some(error) => log_warn!("session with {} ended: {error}", self.server),
            None => log_debug!("session with {} ended", self.server),
        }
        self.transmit();
        self.shutdown();
        if self.closed.is_none() {
            self.closed = Some(Closure::Session(error));
        }
    }

    /// Ends the connection after an error of the connection itself.
    fn fail(&mut self, error: Error) {
        log_warn!("connection to {} failed: {error}", self.server);
        self.shutdown();
        if self.closed.is_none() {
            self.closed = Some(Closure::Connection(error));
        }
    }

    fn shutdown(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            stream.shutdown();
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        match &self.closed {
            Some(closure) => Err(closure.error()),
            None => Ok(()),
        }
    }

    fn take_transaction(&mut self, handle: Handle) -> Result<Delivery, Error> {
        self.transactions
            .remove(&handle)
            .expect("run returned Ok, so the transaction completed")
            .map_err(Error::Smtp)
    }

    fn wait_command(&mut self, handle: Handle) -> Result<Reply, Error> {
        self.run(|client| client.commands.contains_key(&handle))?;
        self.commands
            .remove(&handle)
            .expect("run returned Ok, so the command completed")
            .map_err(Error::Smtp)
    }

    fn deliver_transcript(&mut self) {
        while let Some(line) = self.session.poll_transcript() {
            self.record_transcript(line);
        }
    }

    fn record_transcript(&mut self, line: TranscriptLine) {
        log_trace!(
            "{}: {}",
            self.server,
            TranscriptText::new(&line, self.tls_info.as_ref())
        );
        match self.hook.as_mut() {
            Some(hook) => hook(&line, self.tls_info.as_ref()),
            None if self.connecting => self.early_transcript.push((line, self.tls_info)),
            None => {}
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("encrypted", &self.is_encrypted())
            .field("tls_info", &self.tls_info)
            .field("ready", &self.ready)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// The reason the session ended.
#[derive(Debug)]
enum Closure {
    /// The session reported [`Event::Closed`], with its error or `None` after QUIT.
    Session(Option<smtp_proto::client::Error>),
    /// The connection failed under the session: a read, write or TLS error.
    Connection(Error),
}

impl Closure {
    fn error(&self) -> Error {
        match self {
            Self::Session(Some(error)) => Error::Smtp(error.clone()),
            Self::Session(None) => Error::Smtp(smtp_proto::client::Error::Closed),
            Self::Connection(error) => error.duplicate(),
        }
    }
}

// A client may move to another thread; this stops compiling if a field is not `Send`.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Client>();
    assert_send::<Error>();
};

/// How long the client reads after a failed write, for a reply the server sent before closing.
const DRAIN_AFTER_WRITE_ERROR: Duration = Duration::from_secs(2);

/// The size of the buffer each read fills. It lives on the stack of the read, so an idle client
/// keeps no read buffer: the session copies what arrives into its own input buffer.
const READ_BUFFER_SIZE: usize = 16 * 1024;
