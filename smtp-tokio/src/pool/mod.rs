//! A pool of client connections to one server, shared by concurrent sends.

mod options;

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use smtp_blocking::{Error as ClientError, Options};
use smtp_proto::client::{Config, Delivery, Envelope};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use options::PoolOptions;

use crate::client::Client;
use crate::error::Error;
use crate::log::log;
use crate::stream::{Endpoint, Io};

/// A pool of SMTP connections to one server: concurrent [`send`](Self::send) calls share up to
/// [`PoolOptions::max_connections`] connections, each carrying one message at a time.
///
/// A send takes the most recently used idle connection, or opens a new one while the pool is
/// below its maximum, or waits for one. Before reuse a connection is read without waiting, so a
/// 421 or the end of the connection that arrived while it sat idle retires it, and one idle for
/// longer than [`PoolOptions::noop_after_idle`] must reply 250 to a NOOP. After the send the
/// connection goes back to the pool when the session is idle and open: a failed transaction
/// leaves it usable, because the session sends RSET before the next one. A 421 or 221 reply,
/// an error that ended the session, [`PoolOptions::max_messages_per_connection`] or
/// [`PoolOptions::max_idle_time`] retire it instead.
///
/// A send whose connection turns out to be lost (421, end of connection or reset) before any
/// message content went out is retried once on a new connection, if the lost connection had
/// been used before. Such a failure is the mark of a connection the server dropped while it
/// sat idle. A message whose
/// content went out is never retried, since the server may have accepted it.
///
/// Dropping a send future part-way, or its [`PoolOptions::send_timeout`] passing, closes the
/// connection it used; the pool never hands out a connection in the middle of a transaction.
///
/// `Pool` is a cheap handle: clones share the connections. The connections are closed without
/// QUIT when the last handle is dropped, and with QUIT by [`close`](Self::close).
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

/// Counts that describe a pool at one moment, from [`Pool::status`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open or being opened, idle ones included.
    pub open: usize,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Connections opened since the pool was created, counted when the stream is connected.
    pub opened: u64,
}

impl Pool {
    /// Creates a pool of TCP connections to `server`, given as for
    /// [`Client::connect`](crate::Client::connect). No connection is opened before the first
    /// send. The TLS configuration is built once here, so a CA file is read once.
    pub fn new(server: &str, options: Options, pool: PoolOptions) -> Result<Self, Error> {
        Self::build(server, options, pool, Connector::Tcp)
    }

    /// Creates a pool whose connections `connector` opens, such as tunnels through a SOCKS5 or
    /// HTTP CONNECT proxy, Unix sockets or in-memory pipes.
    ///
    /// `server` names the server in logs and errors, and its host part is the name the
    /// certificate must match unless [`Options::tls_server_name`] is set. The pool never
    /// resolves or connects to it. Each call of `connector` gets [`Options::connect_timeout`],
    /// and an error it returns fails the send with [`ClientError::Connect`].
    pub fn with_connector<F, Fut, S>(
        server: &str,
        options: Options,
        pool: PoolOptions,
        connector: F,
    ) -> Result<Self, Error>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connect = move || -> ConnectFuture {
            let future = connector();
            Box::pin(async move { Ok(Box::new(future.await?) as Box<dyn Io>) })
        };
        Self::build(server, options, pool, Connector::Custom(Box::new(connect)))
    }

    /// Sends one message over a pooled connection and returns the per-recipient results and
    /// the final reply, as [`Client::send`](crate::Client::send) does.
    ///
    /// Many sends may run at once, from any number of tasks, and each uses one connection until
    /// its transaction is done. With [`PoolOptions::send_timeout`] set, the whole send,
    /// waiting and connecting included, fails with [`Error::DeadlineExceeded`] once it passes.
    pub async fn send(
        &self,
        envelope: Envelope,
        body: impl Into<Bytes>,
    ) -> Result<Delivery, Error> {
        let body = body.into();
        let shared = &self.shared;
        let limit = shared.options.send_timeout;
        let deadline = limit.and_then(|limit| Instant::now().checked_add(limit));
        let deadline_exceeded = |stage| Error::DeadlineExceeded {
            limit: limit.unwrap_or_default(),
            stage,
        };

        let mut fresh = false;
        loop {
            let Some(lease) = within(deadline, shared.checkout(fresh)).await else {
                log!(
                    warn,
                    shared.endpoint.server,
                    "send deadline passed while waiting for a connection"
                );
                return Err(deadline_exceeded(None));
            };
            let mut lease = lease?;

            let send = lease.client_mut().send(envelope.clone(), body.clone());
            let Some(result) = within(deadline, send).await else {
                let stage = lease.client().stage();
                log!(
                    warn,
                    shared.endpoint.server,
                    "send deadline passed during {stage}; closing the connection"
                );
                return Err(deadline_exceeded(Some(stage)));
            };

            let retry = !fresh
                && lease.reused
                && lease.client().content_unsent()
                && result.as_ref().is_err_and(Error::is_connection_lost);
            shared.release(lease);
            match result {
                Err(error) if retry => {
                    log!(
                        info,
                        shared.endpoint.server,
                        "reused connection was lost before any message content went out \
                         ({error}); retrying once on a new connection"
                    );
                    fresh = true;
                }
                Err(error) => {
                    log!(debug, shared.endpoint.server, "send failed: {error}");
                    return Err(error);
                }
                Ok(delivery) => return Ok(delivery),
            }
        }
    }

    /// Returns how many connections are open and idle, and how many were opened so far.
    pub fn status(&self) -> PoolStatus {
        let shared = &self.shared;
        let state = shared.state();
        PoolStatus {
            open: shared.options.max_connections - shared.permits.available_permits(),
            idle: state.idle.len(),
            opened: state.opened,
        }
    }

    /// Closes the pool: sends QUIT on every idle connection and waits for the replies, makes
    /// sends under way close their connection when they finish, and fails every later send
    /// with [`Error::PoolClosed`].
    pub async fn close(&self) {
        let idle = {
            let mut state = self.shared.state();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        self.shared.permits.close();

        let mut quits = JoinSet::new();
        for connection in idle {
            quits.spawn(connection.quit());
        }
        while quits.join_next().await.is_some() {}
    }

    fn build(
        server: &str,
        options: Options,
        pool: PoolOptions,
        connector: Connector,
    ) -> Result<Self, Error> {
        pool.validate()?;
        let endpoint = Endpoint::new(server, &options)?;

        Ok(Self {
            shared: Arc::new(Shared {
                endpoint,
                session: options.session,
                connect_timeout: options.connect_timeout,
                connector,
                permits: Arc::new(Semaphore::new(pool.max_connections)),
                options: pool,
                returned: Notify::new(),
                state: Mutex::new(State::default()),
            }),
        })
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.shared.endpoint.server)
            .field("options", &self.shared.options)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// The state shared by every handle of one pool.
struct Shared {
    endpoint: Endpoint,
    session: Config,
    connect_timeout: Duration,
    connector: Connector,
    options: PoolOptions,
    /// One permit per open connection, idle ones included, so at most `max_connections` exist.
    permits: Arc<Semaphore>,
    /// Wakes one waiting send when a connection goes back to the idle list.
    returned: Notify,
    state: Mutex<State>,
}

impl Shared {
    /// Returns a connection for one send: an idle one that passes its checks, or a new one once
    /// the pool has room. With `fresh`, idle connections are skipped, and the oldest is closed
    /// when it takes the last free place.
    async fn checkout(self: &Arc<Self>, fresh: bool) -> Result<Lease, Error> {
        loop {
            let returned = self.returned.notified();
            if fresh {
                self.make_room()?;
            } else {
                while let Some(connection) = self.take_idle()? {
                    if let Some(lease) = self.revalidate(connection).await {
                        return Ok(lease);
                    }
                }
            }

            tokio::select! {
                permit = self.permits.clone().acquire_owned() => {
                    let permit = permit.map_err(|_| Error::PoolClosed)?;
                    return self.open(permit).await;
                }
                () = returned, if !fresh => {}
            }
        }
    }

    /// Takes the most recently used idle connection.
    fn take_idle(&self) -> Result<Option<IdleConnection>, Error> {
        let mut state = self.state();
        if state.closed {
            return Err(Error::PoolClosed);
        }
        Ok(state.idle.pop_back())
    }

    /// Retires the oldest idle connection when every place in the pool is taken, so a send
    /// that needs a new connection does not wait for idle ones to expire.
    fn make_room(&self) -> Result<(), Error> {
        let oldest = {
            let mut state = self.state();
            if state.closed {
                return Err(Error::PoolClosed);
            }
            if self.permits.available_permits() > 0 {
                return Ok(());
            }
            state.idle.pop_front()
        };
        if let Some(connection) = oldest {
            connection.retire("making room for a new connection");
        }
        Ok(())
    }

    /// Checks an idle connection before reuse; `None` when it was closed or retired instead.
    async fn revalidate(&self, connection: IdleConnection) -> Option<Lease> {
        let idle_for = connection.since.elapsed();
        if idle_for >= self.options.max_idle_time {
            connection.retire("idle for longer than max_idle_time");
            return None;
        }

        let IdleConnection {
            mut client, permit, ..
        } = connection;
        if !client.check_idle().await {
            log!(
                debug,
                client.server(),
                "pooled connection was closed while idle"
            );
            return None;
        }
        if idle_for >= self.options.noop_after_idle {
            match client.noop().await {
                Ok(reply) if reply.code().value() == 250 && client.is_idle() => {}
                Ok(reply) => {
                    let connection = IdleConnection {
                        client,
                        permit,
                        since: Instant::now(),
                    };
                    connection.retire(&format!("NOOP before reuse was answered {reply}"));
                    return None;
                }
                Err(error) => {
                    log!(debug, client.server(), "NOOP before reuse failed: {error}");
                    return None;
                }
            }
        }
        Some(Lease::new(client, permit, true))
    }

    /// Opens a connection and runs its session until it is ready for mail.
    async fn open(&self, permit: OwnedSemaphorePermit) -> Result<Lease, Error> {
        let server = &self.endpoint.server;
        let io: Box<dyn Io> = match &self.connector {
            Connector::Tcp => match self.endpoint.connect_tcp(self.connect_timeout).await {
                Ok(tcp) => Box::new(tcp),
                Err(error) => {
                    log!(warn, server, "connecting failed: {error}");
                    return Err(error);
                }
            },
            Connector::Custom(connect) => {
                let source = match tokio::time::timeout(self.connect_timeout, connect()).await {
                    Ok(Ok(io)) => Ok(io),
                    Ok(Err(source)) => Err(source),
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the connector timed out after {:?}", self.connect_timeout),
                    )),
                };
                source.map_err(|source| {
                    log!(warn, server, "connecting failed: {source}");
                    ClientError::Connect {
                        server: server.clone(),
                        source,
                    }
                })?
            }
        };
        self.state().opened += 1;
        log!(info, server, "connected");

        let client = Client::open(io, self.endpoint.clone(), self.session.clone()).await?;
        Ok(Lease::new(client, permit, false))
    }

    /// Takes a connection back after a send: into the idle list when it can carry another
    /// message, closed otherwise.
    fn release(self: &Arc<Self>, lease: Lease) {
        let (client, permit) = lease.into_parts();
        if !client.is_idle() {
            log!(
                debug,
                client.server(),
                "connection is not reusable after the send; closed"
            );
            return;
        }

        let connection = IdleConnection {
            client,
            permit,
            since: Instant::now(),
        };
        let mut state = self.state();
        let reason = if state.closed {
            Some("the pool is closed".to_owned())
        } else if connection.client.messages() >= self.options.max_messages_per_connection {
            Some(format!(
                "reached {} messages",
                self.options.max_messages_per_connection
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            drop(state);
            connection.retire(&reason);
            return;
        }

        state.idle.push_back(connection);
        self.start_reaper(&mut state);
        drop(state);
        self.returned.notify_one();
    }

    /// Starts the task that closes connections idle for longer than `max_idle_time`, unless it
    /// is running. The task stops when no connection is idle, or when the pool is dropped.
    fn start_reaper(self: &Arc<Self>, state: &mut State) {
        if state.reaper_running {
            return;
        }
        state.reaper_running = true;

        let shared: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(pool) = shared.upgrade() else {
                    return;
                };
                let Some(wake) = pool.expire_idle() else {
                    return;
                };
                drop(pool);
                tokio::time::sleep_until(wake).await;
            }
        });
    }

    /// Retires the idle connections past `max_idle_time` and returns when the next one expires,
    /// or `None`, marking the reaper stopped, when none will.
    fn expire_idle(&self) -> Option<Instant> {
        let now = Instant::now();
        let max_idle = self.options.max_idle_time;
        let mut expired = Vec::new();
        let wake = {
            let mut state = self.state();
            let wake = loop {
                let Some(oldest) = state.idle.front() else {
                    break None;
                };
                match oldest.since.checked_add(max_idle) {
                    Some(expiry) if expiry <= now => expired.extend(state.idle.pop_front()),
                    Some(expiry) => break Some(expiry),
                    // An idle time beyond the clock's range never ends.
                    None => break None,
                }
            };
            if wake.is_none() {
                state.reaper_running = false;
            }
            wake
        };

        for connection in expired {
            connection.retire("idle for longer than max_idle_time");
        }
        wake
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The source of the pool's streams: TCP to the server, or the caller's connector.
enum Connector {
    Tcp,
    Custom(Box<dyn Fn() -> ConnectFuture + Send + Sync>),
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Box<dyn Io>>> + Send>>;

/// The part of a pool behind its lock.
#[derive(Default)]
struct State {
    /// Idle connections, least recently used first.
    idle: VecDeque<IdleConnection>,
    reaper_running: bool,
    closed: bool,
    opened: u64,
}

/// A connection waiting in the pool, with its place in the pool.
struct IdleConnection {
    client: Client,
    permit: OwnedSemaphorePermit,
    since: Instant,
}

impl IdleConnection {
    /// Closes the connection with QUIT in the background, and keeps its place in the pool taken
    /// until the server replied or the QUIT deadline passed. A connection whose session cannot
    /// send QUIT is closed at once.
    fn retire(self, reason: &str) {
        log!(
            debug,
            self.client.server(),
            "closing a pooled connection: {reason}"
        );
        if self.client.is_idle() {
            tokio::spawn(self.quit());
        }
    }

    async fn quit(self) {
        let server = self.client.server().to_owned();
        let _permit = self.permit;
        if let Err(error) = self.client.quit().await {
            log!(debug, server, "QUIT on a pooled connection failed: {error}");
        }
    }
}

/// A connection checked out for one send. Dropped without [`Lease::into_parts`], as when the
/// send future is dropped part-way, it closes the connection.
struct Lease {
    client: Option<Client>,
    permit: Option<OwnedSemaphorePermit>,
    /// The connection carried a message or sat idle before this send.
    reused: bool,
}

impl Lease {
    fn new(client: Client, permit: OwnedSemaphorePermit, reused: bool) -> Self {
        Self {
            client: Some(client),
            permit: Some(permit),
            reused,
        }
    }

    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a lease contains its client until into_parts")
    }

    fn client_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a lease contains its client until into_parts")
    }

    fn into_parts(mut self) -> (Client, OwnedSemaphorePermit) {
        let client = self.client.take();
        let permit = self.permit.take();
        client
            .zip(permit)
            .expect("a lease contains its client and permit until into_parts")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            log!(
                debug,
                client.server(),
                "send ended part-way; closing its connection"
            );
        }
    }
}

/// Runs `future` until `deadline`, if there is one; `None` when the deadline passed first.
async fn within<T>(deadline: Option<Instant>, future: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}
