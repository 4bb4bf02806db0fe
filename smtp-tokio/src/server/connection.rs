//! One accepted connection: the loop of the sans-IO server session on a tokio socket, with the
//! decisions left to the [`ConnectionHandler`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use smtp_blocking::server::{ConnectionHandler, ServerState};
use smtp_proto::server::{Session, TlsMode};
use tokio::net::TcpStream;

use crate::log::log;
use crate::stream::Transport;

/// Serves one accepted connection until the session ends, the client goes away or the task is
/// aborted because the server stops.
pub(crate) async fn serve(
    tcp: TcpStream,
    client: SocketAddr,
    connection_id: u64,
    state: Arc<ServerState>,
) {
    let server = tcp
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let timeout = state.config().timeouts.command;
    let mut transport = Transport::Plain(Box::new(tcp));

    let mut tls_info = None;
    if state.config().tls == TlsMode::Implicit {
        let Some(tls) = state.tls_config() else {
            log!(
                warn,
                server,
                "implicit TLS is configured without a TLS identity; closing {client}"
            );
            transport.shutdown().await;
            return;
        };
        match transport.accept_tls(tls, timeout).await {
            Ok(info) => tls_info = Some(info),
            Err(error) => {
                log!(debug, server, "TLS handshake with {client} failed: {error}");
                transport.shutdown().await;
                return;
            }
        }
    }

    let mut connection = Connection {
        session: state.new_session(connection_id, Instant::now()),
        handler: ConnectionHandler::new(state.clone(), client, tls_info),
        transport,
        server,
        client,
        state,
        read_buffer: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
    };
    connection.run().await;
}

/// The session of one connection, its handler and its socket.
struct Connection {
    session: Session,
    handler: ConnectionHandler,
    transport: Transport,
    /// The server's address, the `server` field of every log event.
    server: String,
    client: SocketAddr,
    state: Arc<ServerState>,
    read_buffer: Box<[u8]>,
}

impl Connection {
    /// Runs the session loop: handle events, write replies, read commands.
    async fn run(&mut self) {
        loop {
            while self.handler.handle_events(&mut self.session) {
                self.upgrade().await;
            }
            if !self.transmit().await || self.session.is_closed() {
                break;
            }
            if !self.receive().await {
                break;
            }
        }
        self.transport.shutdown().await;
    }

    /// Writes every reply the session has queued; returns `false` when the client is gone.
    async fn transmit(&mut self) -> bool {
        while let Some(data) = self.session.poll_transmit(Instant::now()) {
            if let Err(error) = self.transport.write_all(&data).await {
                log!(
                    debug,
                    self.server,
                    "writing to {} failed: {error}",
                    self.client
                );
                return false;
            }
        }
        true
    }

    /// Reads once, until the session's deadline, and feeds the result to the session; returns
    /// `false` when the session expects nothing more.
    async fn receive(&mut self) -> bool {
        let Some(deadline) = self.session.poll_timeout() else {
            log!(
                warn,
                self.server,
                "the session with {} awaits neither input nor an answer; closing",
                self.client
            );
            return false;
        };

        // Reading a TCP or TLS stream is cancel safe, so a deadline loses no octets.
        let deadline = tokio::time::Instant::from_std(deadline);
        let read = self.transport.read(&mut self.read_buffer);
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(0)) => self.session.handle_eof(),
            Ok(Ok(read)) => self.session.handle_input(&self.read_buffer[..read]),
            Ok(Err(error)) => {
                log!(
                    debug,
                    self.server,
                    "reading from {} failed: {error}",
                    self.client
                );
                self.session.handle_eof();
            }
            Err(_) => self.session.handle_timeout(Instant::now()),
        }
        true
    }

    /// Runs the TLS handshake after the session accepted STARTTLS.
    async fn upgrade(&mut self) {
        let Some(tls) = self.state.tls_config().cloned() else {
            log!(
                warn,
                self.server,
                "STARTTLS was offered without a TLS identity; closing {}",
                self.client
            );
            self.session.tls_failed();
            return;
        };

        // Octets already waiting were sent before the 220 reply went out, so they are
        // plaintext injected ahead of the handshake: the session discards them unread (RFC 3207
        // section 4.2). The 220 reply is written only after this read.
        match self.transport.read_waiting(&mut self.read_buffer).await {
            Some(Ok(0)) => {
                self.session.handle_eof();
                return;
            }
            Some(Ok(read)) => {
                self.session.handle_input(&self.read_buffer[..read]);
                log!(
                    warn,
                    self.server,
                    "{} sent {read} octets after STARTTLS before the TLS handshake; discarded",
                    self.client
                );
            }
            Some(Err(error)) => {
                log!(
                    debug,
                    self.server,
                    "reading from {} failed: {error}",
                    self.client
                );
                self.session.tls_failed();
                return;
            }
            None => {}
        }
        if !self.transmit().await {
            self.session.tls_failed();
            return;
        }

        let timeout = self.session.config().timeouts.command;
        match self.transport.accept_tls(&tls, timeout).await {
            Ok(info) => self.handler.tls_established(&mut self.session, info),
            Err(error) => {
                log!(
                    debug,
                    self.server,
                    "TLS handshake with {} failed: {error}",
                    self.client
                );
                self.session.tls_failed();
            }
        }
    }
}

/// The size of the buffer each read fills.
const READ_BUFFER_SIZE: usize = 16 * 1024;
