//! An embedded SMTP server for async test suites, the tokio twin of
//! [`smtp_blocking::server`]: the same settings, certificates and folder layout, with one tokio
//! task per connection. Behind the `server` feature.
//!
//! The certificate, the message folder and every decision on the session's events come from
//! `smtp-blocking` ([`ServerState`] and [`ConnectionHandler`]), and the protocol is run by the
//! [`smtp_proto::server::Session`]. This module moves bytes, runs the TLS handshakes on
//! tokio-rustls and keeps time on `tokio::time`. [`smtp_blocking::server`] describes the files
//! under the folder.
//!
//! [`ConnectionHandler`]: smtp_blocking::server::ConnectionHandler
//!
//! # Example
//!
//! ```
//! use smtp_proto::client::Envelope;
//! use smtp_proto::{Credentials, Mailbox, ReversePath};
//! use smtp_tokio::server::Server;
//! use smtp_tokio::{Client, Options, Roots};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let folder = std::env::temp_dir().join(format!("smtp-tokio-server-doc-{}", std::process::id()));
//! let mut server = Server::new(&folder);
//! server.user("alice", "wonderland");
//! let mut deliveries = server.deliveries();
//! let running = server.start().await?;
//!
//! let mut options = Options::default(); // STARTTLS required
//! options.roots = Roots::CaFile(running.ca_file().expect("a generated certificate").into());
//! options.session.credentials = Some(Credentials::password("alice", "wonderland"));
//! let mut client = Client::connect(&running.local_addr().to_string(), options).await?;
//! let envelope = Envelope::new(
//!     ReversePath::parse("alice@example.test")?,
//!     vec![Mailbox::parse("bob@example.test")?],
//! )?;
//! client.send(envelope, "Subject: hi\r\n\r\nHello.\r\n").await?;
//! client.quit().await?;
//!
//! let delivery = deliveries.recv().await.expect("one delivery");
//! assert_eq!(std::fs::read(&delivery.message_file)?, b"Subject: hi\r\n\r\nHello.\r\n");
//! running.stop().await;
//! # std::fs::remove_dir_all(&folder)?;
//! # Ok(())
//! # }
//! ```

mod connection;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use smtp_blocking::server::ServerState;
use smtp_proto::server::{Config, TlsMode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

pub use smtp_blocking::server::{Delivery, Error};

use crate::log::log;

/// The settings of an embedded server; [`start`](Self::start) binds the address and returns
/// the [`RunningServer`].
///
/// The settings and their defaults are those of [`smtp_blocking::server::Server`]: listen on
/// `127.0.0.1:0`, STARTTLS with a certificate made at start, no users.
#[derive(Debug)]
pub struct Server {
    settings: smtp_blocking::server::Server,
}

impl Server {
    /// Creates settings for a server that stores its certificates and messages in `folder`,
    /// which is created at start when missing.
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            settings: smtp_blocking::server::Server::new(folder),
        }
    }

    /// Sets the address to listen on; see [`smtp_blocking::server::Server::listen`].
    pub fn listen(&mut self, address: SocketAddr) -> &mut Self {
        self.settings.listen(address);
        self
    }

    /// Adds a user; see [`smtp_blocking::server::Server::user`].
    pub fn user(&mut self, name: impl Into<String>, password: impl Into<String>) -> &mut Self {
        self.settings.user(name, password);
        self
    }

    /// Sets how the connection is encrypted; see [`smtp_blocking::server::Server::tls`].
    pub fn tls(&mut self, mode: TlsMode) -> &mut Self {
        self.settings.tls(mode);
        self
    }

    /// Uses a PEM certificate chain and key in place of a generated certificate; see
    /// [`smtp_blocking::server::Server::certificate_files`].
    pub fn certificate_files(
        &mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> &mut Self {
        self.settings.certificate_files(chain, key);
        self
    }

    /// Returns the session settings to change; see
    /// [`smtp_blocking::server::Server::session_config`].
    pub fn session_config(&mut self) -> &mut Config {
        self.settings.session_config()
    }

    /// Calls `hook` on the connection's task after each message is stored and before the
    /// client gets the 250 reply. It replaces the channel of [`deliveries`](Self::deliveries).
    pub fn on_delivery(&mut self, hook: impl Fn(&Delivery) + Send + Sync + 'static) -> &mut Self {
        self.settings.on_delivery(hook);
        self
    }

    /// Returns a channel that receives each stored message before the client gets the 250
    /// reply. It replaces the hook of [`on_delivery`](Self::on_delivery).
    pub fn deliveries(&mut self) -> mpsc::UnboundedReceiver<Delivery> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.settings.on_delivery(move |delivery| {
            // A receiver the test dropped wants no more deliveries.
            let _ignored = sender.send(delivery.clone());
        });
        receiver
    }

    /// Creates the folder, makes or reads the TLS certificate, binds the address and starts
    /// accepting connections in a task of its own, on the current tokio runtime.
    pub async fn start(&self) -> Result<RunningServer, Error> {
        let state = Arc::new(self.settings.prepare()?);
        let address = self.settings.listen_address();
        let bind_error = |source| Error::Bind { address, source };
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;

        let (stop, stop_requested) = watch::channel(false);
        let acceptor = tokio::spawn(accept_loop(
            listener,
            local_addr,
            state.clone(),
            stop_requested,
        ));
        log!(info, local_addr, "SMTP server listening");

        Ok(RunningServer {
            local_addr,
            state,
            stop,
            acceptor: Some(acceptor),
        })
    }
}

/// A server that accepts connections until [`stop`](Self::stop) is awaited or it is dropped.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    state: Arc<ServerState>,
    stop: watch::Sender<bool>,
    acceptor: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Returns the address the server listens on, with the port it got.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the server's folder.
    pub fn folder(&self) -> &Path {
        self.state.folder()
    }

    /// Returns the folder the messages are stored in, `messages` under the server's folder.
    pub fn messages_folder(&self) -> &Path {
        self.state.messages_folder()
    }

    /// Returns the PEM file of the CA that signed the generated certificate, for clients to
    /// trust; `None` without TLS or with [`Server::certificate_files`].
    pub fn ca_file(&self) -> Option<&Path> {
        self.state.ca_file()
    }

    /// Stops accepting connections, closes the open ones and waits for their tasks to end.
    /// A message is stored in full or not at all: one whose end of data the session has not
    /// reported yet leaves no file.
    pub async fn stop(mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        // The accept task ends on this signal after it aborted and awaited the connections.
        let _ignored = self.stop.send(true);
        if let Err(error) = acceptor.await {
            log!(warn, self.local_addr, "the accept task failed: {error}");
        }
        log!(info, self.local_addr, "SMTP server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }
}

/// Accepts connections until the stop signal, one task each, then aborts the connection tasks
/// still running and waits for them.
async fn accept_loop(
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<ServerState>,
    mut stop_requested: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            // A dropped sender stops the server too.
            _ = stop_requested.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                log!(warn, local_addr, "accepting a connection failed: {error}");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };

        if let Err(error) = tcp.set_nodelay(true) {
            log!(
                debug,
                local_addr,
                "cannot set TCP_NODELAY for {client}: {error}"
            );
        }
        log!(debug, local_addr, "accepted a connection from {client}");
        connections.spawn(connection::serve(tcp, client, next_id, state.clone()));
        next_id += 1;
    }

    drop(listener);
    connections.shutdown().await;
}

/// The pause after a failed accept, such as one for too many open files.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
