//! An embedded SMTP server for tests and demos: it listens on a TCP address, offers STARTTLS (or
//! implicit TLS) with a certificate made at start, checks AUTH against configured users, and
//! stores each message it accepts as a file. Behind the `server` feature.
//!
//! Every protocol decision is made by the [`smtp_proto::server::Session`]; this module moves
//! bytes, runs the TLS handshakes, keeps time, and makes the decisions the session's events
//! request: AUTH checked against the users, every MAIL and RCPT accepted, each message written
//! to the folder. One thread
//! serves each connection.
//!
//! # The folder
//!
//! | file | what it is |
//! |------|------------|
//! | `ca.pem` | the CA certificate that signed the generated server certificate; clients trust it as a CA file |
//! | `server.pem`, `server.key` | the generated server certificate chain and its private key (mode 0600) |
//! | `messages/ID.eml` | a message's content exactly as received: after dot removal for DATA, as sent for BDAT |
//! | `messages/ID.envelope` | the message's envelope, written before the `.eml` file appears |
//!
//! Both message files appear through a rename, so a reader never sees a partial file; a
//! reader that waits for `ID.eml` finds `ID.envelope` complete. The envelope file has one
//! `name: value` line per field, in UTF-8:
//!
//! ```text
//! client: 127.0.0.1:41234
//! helo: client.example.test
//! tls: TLS1.3, TLS13_AES_256_GCM_SHA384
//! auth: alice
//! mail-from: <alice@example.test> SIZE=1234 BODY=8BITMIME
//! rcpt-to: <bob@example.test>
//! size: 1234
//! ```
//!
//! `tls` and `auth` are `none` when unused, `helo` is `none` when the client sent no greeting,
//! and there is one `rcpt-to` line per accepted recipient. The `mail-from` and `rcpt-to` values
//! are the arguments as they appear on the wire, with their parameters.
//!
//! # Example
//!
//! ```
//! use smtp_blocking::server::Server;
//! use smtp_blocking::{Client, Options, Roots};
//! use smtp_proto::client::Envelope;
//! use smtp_proto::{Credentials, Mailbox, ReversePath};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let folder = std::env::temp_dir().join(format!("smtp-server-doc-{}", std::process::id()));
//! let mut server = Server::new(&folder);
//! server.user("alice", "wonderland");
//! let running = server.start()?;
//!
//! let mut options = Options::default(); // STARTTLS required
//! options.roots = Roots::CaFile(running.ca_file().expect("a generated certificate").into());
//! options.session.credentials = Some(Credentials::password("alice", "wonderland"));
//! let mut client = Client::connect(&running.local_addr().to_string(), options)?;
//! let envelope = Envelope::new(
//!     ReversePath::parse("alice@example.test")?,
//!     vec![Mailbox::parse("bob@example.test")?],
//! )?;
//! let delivery = client.send(envelope, "Subject: hi\r\n\r\nHello.\r\n")?;
//! client.quit()?;
//!
//! let id = delivery.reply().text().rsplit(' ').next().unwrap_or_default().to_owned();
//! let stored = std::fs::read(running.messages_folder().join(format!("{id}.eml")))?;
//! assert_eq!(stored, b"Subject: hi\r\n\r\nHello.\r\n");
//! running.stop();
//! # std::fs::remove_dir_all(&folder)?;
//! # Ok(())
//! # }
//! ```

mod certificate;
mod connection;
mod error;
mod handler;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use smtp_proto::server::{Config, Session, TlsMode};
use smtp_proto::{Mailbox, Mechanism, ReversePath, Secret};

pub use error::Error;
pub use handler::ConnectionHandler;

use crate::log::{log_debug, log_info, log_warn};
use crate::tls::TlsInfo;
use certificate::Identity;
use store::Store;

/// The settings of an embedded server; [`start`](Self::start) binds the address and returns
/// the [`RunningServer`].
///
/// Defaults: listen on `127.0.0.1:0` (a free port), offer STARTTLS with a certificate for
/// `localhost`, `127.0.0.1` and `::1` made at start, no users, and the session settings of
/// [`Config::default`] otherwise (every extension on, a 10240000-octet size limit).
pub struct Server {
    listen: SocketAddr,
    folder: PathBuf,
    users: HashMap<String, Secret<String>>,
    session: Config,
    certificate: Option<(PathBuf, PathBuf)>,
    on_delivery: Option<DeliveryHook>,
}

impl Server {
    /// Creates settings for a server that stores its certificates and messages in `folder`,
    /// which is created at start when missing.
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        let mut session = Config::default();
        session.tls = TlsMode::StartTls;
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            folder: folder.into(),
            users: HashMap::new(),
            session,
            certificate: None,
            on_delivery: None,
        }
    }

    /// Sets the address to listen on; port 0 picks a free port, which
    /// [`RunningServer::local_addr`] returns. Default: `127.0.0.1:0`.
    pub fn listen(&mut self, address: SocketAddr) -> &mut Self {
        self.listen = address;
        self
    }

    /// Adds a user that may authenticate with `password` (PLAIN, LOGIN and CRAM-MD5 unless
    /// [`Config::auth_mechanisms`] names others). AUTH is offered only once the connection is
    /// encrypted, unless [`Config::allow_insecure_auth`] is set.
    pub fn user(&mut self, name: impl Into<String>, password: impl Into<String>) -> &mut Self {
        self.users.insert(name.into(), Secret::new(password.into()));
        self
    }

    /// Sets how the connection is encrypted: [`TlsMode::StartTls`] (the default),
    /// [`TlsMode::Implicit`] for TLS from the first byte (RFC 8314), or
    /// [`TlsMode::Unavailable`] for plain text only.
    pub fn tls(&mut self, mode: TlsMode) -> &mut Self {
        self.session.tls = mode;
        self
    }

    /// Uses the PEM certificate chain (the server's certificate first) and PEM private key in
    /// these files in place of a generated certificate.
    pub fn certificate_files(
        &mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> &mut Self {
        self.certificate = Some((chain.into(), key.into()));
        self
    }

    /// Returns the session settings to change: the extensions, the size limit, the domain in
    /// the greeting, whether MAIL needs AUTH or TLS, the timeouts. [`Server::tls`] sets
    /// [`Config::tls`].
    pub fn session_config(&mut self) -> &mut Config {
        &mut self.session
    }

    /// Calls `hook` on the connection's thread after each message is stored and before the
    /// client gets the 250 reply.
    pub fn on_delivery(&mut self, hook: impl Fn(&Delivery) + Send + Sync + 'static) -> &mut Self {
        self.on_delivery = Some(Arc::new(hook));
        self
    }

    /// Returns the address set by [`listen`](Self::listen).
    pub fn listen_address(&self) -> SocketAddr {
        self.listen
    }

    /// Creates the folder, makes or reads the TLS certificate, binds the address and starts
    /// accepting connections on a thread of its own.
    pub fn start(&self) -> Result<RunningServer, Error> {
        let state = Arc::new(self.prepare()?);
        let listener = TcpListener::bind(self.listen).map_err(|source| Error::Bind {
            address: self.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            address: self.listen,
            source,
        })?;

        let shared = Arc::new(Shared {
            state,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        });
        let accept_shared = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("smtp-server {local_addr}"))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .map_err(|source| Error::Bind {
                address: local_addr,
                source,
            })?;
        log_info!("SMTP server listening on {local_addr}");

        Ok(RunningServer {
            local_addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Creates the folder and makes or reads the TLS certificate, without binding the address:
    /// the part of [`start`](Self::start) that does not depend on how connections are served,
    /// for an adapter with a connection loop of its own.
    pub fn prepare(&self) -> Result<ServerState, Error> {
        std::fs::create_dir_all(&self.folder).map_err(|source| Error::Folder {
            path: self.folder.clone(),
            source,
        })?;
        let store = Store::open(&self.folder)?;

        let identity = match (&self.certificate, self.session.tls) {
            (_, TlsMode::Unavailable) => None,
            (Some((chain, key)), _) => Some(Identity::load(chain, key)?),
            (None, _) => Some(Identity::generate(&self.folder, self.certificate_names())?),
        };

        let mut session = self.session.clone();
        if session.auth_mechanisms.is_empty() && !self.users.is_empty() {
            session.auth_mechanisms = vec![Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5];
        }
        let (tls, ca_file) = match identity {
            Some(identity) => (Some(identity.config), identity.ca_file),
            None => (None, None),
        };
        Ok(ServerState {
            folder: self.folder.clone(),
            ca_file,
            session,
            users: self.users.clone(),
            tls,
            store,
            on_delivery: self.on_delivery.clone(),
            challenge_seed: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64),
        })
    }

    /// Returns the names of the generated certificate: `localhost`, the loopback addresses,
    /// the session's domain unless it is an address literal, and the listen address unless it
    /// is the unspecified one.
    fn certificate_names(&self) -> Vec<String> {
        let mut names = vec![
            "localhost".to_owned(),
            Ipv4Addr::LOCALHOST.to_string(),
            Ipv6Addr::LOCALHOST.to_string(),
        ];
        let domain = &self.session.domain;
        let listen = self.listen.ip();
        let extra = [
            (!domain.is_address_literal()).then(|| domain.to_string()),
            (!listen.is_unspecified()).then(|| listen.to_string()),
        ];
        for name in extra.into_iter().flatten() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("Server")
            .field("listen", &self.listen)
            .field("folder", &self.folder)
            .field("users", &users)
            .field("session", &self.session)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// A server that accepts connections until [`stop`](Self::stop) is called or it is dropped.
pub struct RunningServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl RunningServer {
    /// Returns the address the server listens on, with the port it got.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the server's folder.
    pub fn folder(&self) -> &Path {
        self.shared.state.folder()
    }

    /// Returns the folder the messages are stored in, `messages` under the server's folder.
    pub fn messages_folder(&self) -> &Path {
        self.shared.state.messages_folder()
    }

    /// Returns the PEM file of the CA that signed the generated certificate, for clients to
    /// trust; `None` without TLS or with [`Server::certificate_files`].
    pub fn ca_file(&self) -> Option<&Path> {
        self.shared.state.ca_file()
    }

    /// Stops accepting connections, closes the open ones and waits for their threads to end.
    /// A message whose end of data has not been replied to yet is not stored.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);

        // A connection of our own wakes the accept call, which then reads the flag.
        let wake_address = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.local_addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), self.local_addr.port())
            }
            _ => self.local_addr,
        };
        if let Err(error) = TcpStream::connect_timeout(&wake_address, WAKE_TIMEOUT) {
            log_warn!("cannot wake the accept loop on {wake_address}: {error}");
        }

        let workers = acceptor.join().unwrap_or_default();
        for tcp in self.shared.lock_connections().values() {
            let _ignored = tcp.shutdown(Shutdown::Both);
        }
        for worker in workers {
            let _ignored = worker.join();
        }
        log_info!("SMTP server on {} stopped", self.local_addr);
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .field("state", &self.shared.state)
            .finish_non_exhaustive()
    }
}

/// A message the server stored, as passed to [`Server::on_delivery`].
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The message's id, the name of its files without the extension.
    pub id: String,
    /// The file with the message content.
    pub message_file: PathBuf,
    /// The file with the envelope.
    pub envelope_file: PathBuf,
    /// The sender of MAIL FROM.
    pub reverse_path: ReversePath,
    /// The recipients of RCPT TO, in order.
    pub recipients: Vec<Mailbox>,
    /// The content size in octets.
    pub size: u64,
    /// The client's address.
    pub client: SocketAddr,
    /// The user the client authenticated as, if it did.
    pub authenticated: Option<String>,
    /// The TLS version and cipher suite, if the connection was encrypted.
    pub tls: Option<TlsInfo>,
}

/// The callback of [`Server::on_delivery`].
type DeliveryHook = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// The state every connection of one started server shares: the session settings, the users,
/// the TLS configuration, the message folder and the delivery hook. Made by
/// [`Server::prepare`]; a connection loop hands it to each [`ConnectionHandler`].
pub struct ServerState {
    folder: PathBuf,
    ca_file: Option<PathBuf>,
    session: Config,
    users: HashMap<String, Secret<String>>,
    tls: Option<Arc<ServerConfig>>,
    store: Store,
    on_delivery: Option<DeliveryHook>,
    /// Mixed into each connection's id, so CRAM-MD5 challenges differ between servers.
    challenge_seed: u64,
}

impl ServerState {
    /// Returns the server's folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Returns the folder the messages are stored in, `messages` under the server's folder.
    pub fn messages_folder(&self) -> &Path {
        self.store.messages()
    }

    /// Returns the PEM file of the CA that signed the generated certificate; `None` without
    /// TLS or with [`Server::certificate_files`].
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Returns the rustls configuration for the handshakes; `None` with
    /// [`TlsMode::Unavailable`].
    pub fn tls_config(&self) -> Option<&Arc<ServerConfig>> {
        self.tls.as_ref()
    }

    /// Returns the session settings, with the AUTH mechanisms filled in when users exist.
    pub fn config(&self) -> &Config {
        &self.session
    }

    /// Creates the session of a new connection; `connection_id` is unique per server, and the
    /// CRAM-MD5 challenges are derived from it.
    pub fn new_session(&self, connection_id: u64, now: Instant) -> Session {
        let mut config = self.session.clone();
        config.connection_id = connection_id ^ self.challenge_seed;
        Session::new(config, now)
    }
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("ServerState")
            .field("folder", &self.folder)
            .field("ca_file", &self.ca_file)
            .field("session", &self.session)
            .field("users", &users)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The state of the blocking server's threads: the server state, the stop flag and the open
/// connections.
struct Shared {
    state: Arc<ServerState>,
    stopping: AtomicBool,
    /// A clone of each open connection's socket, to shut it down on stop.
    connections: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        // The map stays consistent even if a thread panicked while holding the lock.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Accepts connections until the server stops, one thread each; returns the threads still to
/// be joined.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id: u64 = 0;
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return workers;
        }
        let (tcp, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                log_warn!("accepting a connection failed: {error}");
                std::thread::sleep(ACCEPT_RETRY_DELAY);
                continue;
            }
        };
        workers.retain(|worker| !worker.is_finished());

        let id = next_id;
        next_id += 1;
        if let Err(error) = tcp.set_nodelay(true) {
            log_debug!("cannot set TCP_NODELAY for {client}: {error}");
        }
        match tcp.try_clone() {
            Ok(clone) => {
                shared.lock_connections().insert(id, clone);
            }
            Err(error) => {
                log_warn!("cannot track the connection from {client}: {error}; closing it");
                continue;
            }
        }

        log_debug!("accepted a connection from {client}");
        let worker_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("smtp-server {client}"))
            .spawn(move || {
                connection::serve(tcp, client, id, &worker_shared.state);
                worker_shared.lock_connections().remove(&id);
            });
        match spawned {
            Ok(worker) => workers.push(worker),
            Err(error) => {
                log_warn!("cannot start a thread for {client}: {error}");
                shared.lock_connections().remove(&id);
            }
        }
    }
}

/// How long [`RunningServer::stop`] waits to connect to its own listener.
const WAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause after a failed accept, such as one for too many open files.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
