//! One accepted connection: the loop of the sans-IO server session on a socket, with the
//! decisions left to the [`ConnectionHandler`].

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use smtp_proto::server::{Session, TlsMode};

use crate::log::{log_debug, log_warn};
use crate::server::{ConnectionHandler, ServerState};
use crate::stream::{Received, Stream};

/// Serves one accepted connection until the session ends, the client goes away or the server
/// stops.
pub(crate) fn serve(
    tcp: TcpStream,
    client: SocketAddr,
    connection_id: u64,
    state: &Arc<ServerState>,
) {
    let timeout = state.config().timeouts.command;
    let mut stream = match Stream::new(tcp, timeout) {
        Ok(stream) => stream,
        Err(error) => {
            log_warn!("cannot set up the connection from {client}: {error}");
            return;
        }
    };

    let mut tls_info = None;
    if state.config().tls == TlsMode::Implicit {
        let Some(tls) = state.tls_config() else {
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
        session: state.new_session(connection_id, Instant::now()),
        handler: ConnectionHandler::new(state.clone(), client, tls_info),
        stream,
        client,
        state,
        read_buffer: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
    };
    connection.run();
}

/// The session of one connection, its handler and its socket.
struct Connection<'a> {
    session: Session,
    handler: ConnectionHandler,
    stream: Stream,
    client: SocketAddr,
    state: &'a ServerState,
    read_buffer: Box<[u8]>,
}

impl Connection<'_> {
    /// Runs the session loop: handle events, write replies, read commands.
    fn run(&mut self) {
        loop {
            while self.handler.handle_events(&mut self.session) {
                self.upgrade();
            }
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

    /// Runs the TLS handshake after the session accepted STARTTLS.
    fn upgrade(&mut self) {
        let Some(tls) = self.state.tls_config() else {
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
            Ok(info) => self.handler.tls_established(&mut self.session, info),
            Err(error) => {
                log_debug!("TLS handshake with {} failed: {error}", self.client);
                self.session.tls_failed();
            }
        }
    }
}

/// The size of the buffer each read fills.
const READ_BUFFER_SIZE: usize = 16 * 1024;
