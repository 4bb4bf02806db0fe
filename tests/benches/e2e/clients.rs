//! The clients the benchmark runs, each in a process of its own: this project's blocking and
//! Tokio clients, lettre's blocking and Tokio transports, and two hand-written clients that mark the
//! round-trip limits. Each prints `delivered=N` when it is done.

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use bytes::Bytes;
use clap::ValueEnum;
use lettre::transport::smtp::client::{AsyncSmtpConnection, SmtpConnection};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig, SmtpTransport};
use lettre::{AsyncTransport as _, Tokio1Executor, Transport as _};
use smtp_blocking::{Client, Options};
use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::{Domain, Mailbox, ReversePath};

/// A client implementation and the way it is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// smtp-blocking: `send_batch` queues messages so consecutive transactions pipeline.
    SmtpProto,
    /// smtp-blocking with BDAT turned off, so a CHUNKING server gets DATA.
    SmtpProtoData,
    /// smtp-tokio: one task per connection, each queueing messages with `send_batch`.
    SmtpTokio,
    /// Hand-written: one command, one reply, as a client without PIPELINING must.
    RawLockstep,
    /// Hand-written: each message's content and end of data go in one write with the next
    /// message's MAIL, RCPT and DATA, so each message waits one round trip.
    RawGrouped,
    /// Hand-written: NOOP and its reply, to measure the round trip through the server.
    RawNoop,
    /// lettre's `SmtpTransport` with its connection pool, as released.
    Lettre,
    /// lettre's `AsyncSmtpTransport` on Tokio with a pool of one connection per task.
    LettreTokio,
    /// lettre's `AsyncSmtpConnection` on Tokio sockets that have `TCP_NODELAY`.
    LettreTokioNodelay,
    /// smtp-blocking clients that connect and stay idle.
    IdleSmtpProto,
    /// lettre `SmtpConnection`s that connect and stay idle.
    IdleLettre,
}

/// What one client process sends.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub(crate) port: u16,
    pub(crate) messages: usize,
    pub(crate) size: usize,
    pub(crate) connections: usize,
}

/// Runs the client `kind` and prints how many messages the server accepted.
pub(crate) fn run(kind: Kind, workload: &Workload) -> Result<(), BoxError> {
    let started = Instant::now();
    let delivered = match kind {
        Kind::SmtpProto => on_threads(workload, |share| smtp_proto_client(workload, share, true))?,
        Kind::SmtpProtoData => {
            on_threads(workload, |share| smtp_proto_client(workload, share, false))?
        }
        Kind::SmtpTokio => smtp_tokio_client(workload)?,
        Kind::RawLockstep => on_threads(workload, |share| raw_lockstep(workload, share))?,
        Kind::RawGrouped => on_threads(workload, |share| raw_grouped(workload, share))?,
        Kind::RawNoop => on_threads(workload, |share| raw_noop(workload, share))?,
        Kind::Lettre => on_threads(workload, |share| lettre_blocking(workload, share))?,
        Kind::LettreTokio => lettre_tokio(workload, false)?,
        Kind::LettreTokioNodelay => lettre_tokio(workload, true)?,
        Kind::IdleSmtpProto => idle_smtp_proto(workload)?,
        Kind::IdleLettre => idle_lettre(workload)?,
    };
    println!(
        "delivered={delivered} elapsed_us={}",
        started.elapsed().as_micros()
    );
    Ok(())
}

/// An error from any client library, sendable across threads.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Outcome = Result<usize, BoxError>;

/// Runs `client` on one thread per connection, each with its share of the messages, and
/// returns the total delivered.
fn on_threads(workload: &Workload, client: impl Fn(usize) -> Outcome + Sync) -> Outcome {
    let shares = shares(workload.messages, workload.connections);
    if shares.len() == 1 {
        return client(shares[0]);
    }

    thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .map(|&share| {
                let client = &client;
                scope.spawn(move || client(share))
            })
            .collect();
        let mut delivered = 0;
        for handle in handles {
            delivered += handle.join().map_err(|_| "a client thread panicked")??;
        }
        Ok(delivered)
    })
}

/// Splits `messages` over `connections` as evenly as possible.
fn shares(messages: usize, connections: usize) -> Vec<usize> {
    let connections = connections.max(1);
    (0..connections)
        .map(|index| messages / connections + usize::from(index < messages % connections))
        .collect()
}

fn smtp_proto_client(workload: &Workload, messages: usize, chunking: bool) -> Outcome {
    let mut options = Options::default();
    options.session.tls = TlsPolicy::None;
    options.session.ehlo_name = Domain::parse(CLIENT_NAME)?;
    options.session.chunking = chunking;
    let mut client = Client::connect(&format!("127.0.0.1:{}", workload.port), options)?;

    let envelope = Envelope::new(
        ReversePath::parse(SENDER)?,
        vec![Mailbox::parse(RECIPIENT)?],
    )?;
    let body = Bytes::from(message(workload.size));
    let mut delivered = 0;
    let mut remaining = messages;
    while remaining > 0 {
        let batch = remaining.min(BATCH);
        remaining -= batch;
        let queued = (0..batch).map(|_| (envelope.clone(), body.clone()));
        for result in client.send_batch(queued) {
            result?;
            delivered += 1;
        }
    }
    client.quit()?;
    Ok(delivered)
}

fn smtp_tokio_client(workload: &Workload) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut options = Options::default();
    options.session.tls = TlsPolicy::None;
    options.session.ehlo_name = Domain::parse(CLIENT_NAME)?;
    let envelope = Envelope::new(
        ReversePath::parse(SENDER)?,
        vec![Mailbox::parse(RECIPIENT)?],
    )?;
    let body = Bytes::from(message(workload.size));
    let server = format!("127.0.0.1:{}", workload.port);

    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for share in shares(workload.messages, workload.connections) {
            let (options, envelope, body, server) = (
                options.clone(),
                envelope.clone(),
                body.clone(),
                server.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut client = smtp_tokio::Client::connect(&server, options).await?;
                let mut delivered = 0;
                let mut remaining = share;
                while remaining > 0 {
                    let batch = remaining.min(BATCH);
                    remaining -= batch;
                    let queued = (0..batch).map(|_| (envelope.clone(), body.clone()));
                    for result in client.send_batch(queued).await {
                        result?;
                        delivered += 1;
                    }
                }
                client.quit().await?;
                Ok::<usize, BoxError>(delivered)
            }));
        }
        let mut delivered = 0;
        for task in tasks {
            delivered += task.await??;
        }
        Ok(delivered)
    })
}

fn lettre_blocking(workload: &Workload, messages: usize) -> Outcome {
    let transport = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(workload.port)
        .hello_name(ClientId::Domain(CLIENT_NAME.to_owned()))
        .pool_config(PoolConfig::new().max_size(1))
        .build();
    let envelope = lettre_envelope()?;
    let body = message(workload.size);

    for _ in 0..messages {
        transport.send_raw(&envelope, &body)?;
    }
    Ok(messages)
}

fn lettre_tokio(workload: &Workload, nodelay: bool) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let envelope = Arc::new(lettre_envelope()?);
    let body: Arc<[u8]> = message(workload.size).into();
    let port = workload.port;
    let pool_size = u32::try_from(workload.connections.max(1))?;

    runtime.block_on(async move {
        // The pool starts a Tokio task, so the transport is built inside the runtime.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .hello_name(ClientId::Domain(CLIENT_NAME.to_owned()))
            .pool_config(PoolConfig::new().max_size(pool_size))
            .build();
        let mut tasks = Vec::new();
        for share in shares(workload.messages, workload.connections) {
            let (envelope, body, transport) =
                (Arc::clone(&envelope), Arc::clone(&body), transport.clone());
            tasks.push(tokio::spawn(async move {
                if !nodelay {
                    for _ in 0..share {
                        transport.send_raw(&envelope, &body).await?;
                    }
                    return Ok::<usize, BoxError>(share);
                }

                let socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                socket.set_nodelay(true)?;
                let mut connection = AsyncSmtpConnection::connect_with_transport(
                    Box::new(socket),
                    &ClientId::Domain(CLIENT_NAME.to_owned()),
                )
                .await?;
                for _ in 0..share {
                    connection.send(&envelope, &body).await?;
                }
                connection.quit().await?;
                Ok(share)
            }));
        }
        let mut delivered = 0;
        for task in tasks {
            delivered += task.await??;
        }
        Ok(delivered)
    })
}

fn idle_smtp_proto(workload: &Workload) -> Outcome {
    let mut options = Options::default();
    options.session.tls = TlsPolicy::None;
    options.session.ehlo_name = Domain::parse(CLIENT_NAME)?;
    let server = format!("127.0.0.1:{}", workload.port);

    let mut clients = Vec::with_capacity(workload.connections);
    for _ in 0..workload.connections {
        clients.push(Client::connect(&server, options.clone())?);
    }
    let open = clients.len();
    for client in clients {
        client.quit()?;
    }
    Ok(open)
}

fn idle_lettre(workload: &Workload) -> Outcome {
    let name = ClientId::Domain(CLIENT_NAME.to_owned());
    let mut connections = Vec::with_capacity(workload.connections);
    for _ in 0..workload.connections {
        connections.push(SmtpConnection::connect(
            ("127.0.0.1", workload.port),
            None,
            &name,
            None,
            None,
        )?);
    }
    let open = connections.len();
    for mut connection in connections {
        connection.quit()?;
    }
    Ok(open)
}

/// Sends `messages` messages with one command per round trip.
fn raw_lockstep(workload: &Workload, messages: usize) -> Outcome {
    let mut connection = RawConnection::open(workload.port)?;
    let mut content = message(workload.size);
    content.extend_from_slice(b".\r\n");

    for _ in 0..messages {
        for (command, code) in [(MAIL, b"250"), (RCPT, b"250"), (DATA, b"354")] {
            connection.write(command)?;
            connection.expect(code)?;
        }
        connection.write(&content)?;
        connection.expect(b"250")?;
    }
    connection.quit()?;
    Ok(messages)
}

/// Sends `messages` messages with one round trip each: a message's content and end of data go
/// in one write with the next message's MAIL, RCPT and DATA (RFC 2920 section 3.1).
fn raw_grouped(workload: &Workload, messages: usize) -> Outcome {
    let mut connection = RawConnection::open(workload.port)?;
    let envelope = [MAIL, RCPT, DATA].concat();
    let mut content = message(workload.size);
    content.extend_from_slice(b".\r\n");
    let mut content_and_envelope = content.clone();
    content_and_envelope.extend_from_slice(&envelope);

    if messages == 0 {
        connection.quit()?;
        return Ok(0);
    }
    connection.write(&envelope)?;
    for code in [b"250", b"250", b"354"] {
        connection.expect(code)?;
    }
    for sent in 1..=messages {
        if sent == messages {
            connection.write(&content)?;
            connection.expect(b"250")?;
            break;
        }
        connection.write(&content_and_envelope)?;
        for code in [b"250", b"250", b"250", b"354"] {
            connection.expect(code)?;
        }
    }
    connection.quit()?;
    Ok(messages)
}

/// Sends `count` NOOP commands one after the other and prints the mean round trip.
fn raw_noop(workload: &Workload, count: usize) -> Outcome {
    let mut connection = RawConnection::open(workload.port)?;
    let started = Instant::now();
    for _ in 0..count {
        connection.write(b"NOOP\r\n")?;
        connection.expect(b"250")?;
    }
    let mean = started.elapsed().as_secs_f64() * 1e6 / count.max(1) as f64;
    println!("round_trip_us={mean:.1}");
    connection.quit()?;
    Ok(count)
}

/// A plain socket with `TCP_NODELAY` that reads replies line by line.
struct RawConnection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: Vec<u8>,
}

impl RawConnection {
    fn open(port: u16) -> io::Result<Self> {
        let writer = TcpStream::connect(("127.0.0.1", port))?;
        writer.set_nodelay(true)?;
        let mut connection = Self {
            reader: BufReader::new(writer.try_clone()?),
            writer,
            line: Vec::with_capacity(512),
        };
        connection.expect(b"220")?;
        connection.write(format!("EHLO {CLIENT_NAME}\r\n").as_bytes())?;
        connection.expect(b"250")?;
        Ok(connection)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one whole reply and fails unless its code is `code`.
    fn expect(&mut self, code: &[u8; 3]) -> io::Result<()> {
        loop {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            if !self.line.starts_with(code) {
                return Err(io::Error::other(format!(
                    "expected a {} reply, got {:?}",
                    String::from_utf8_lossy(code),
                    String::from_utf8_lossy(&self.line)
                )));
            }
            if self.line.get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    fn quit(mut self) -> io::Result<()> {
        self.write(b"QUIT\r\n")?;
        self.expect(b"221")
    }
}

fn lettre_envelope() -> Result<lettre::address::Envelope, BoxError> {
    Ok(lettre::address::Envelope::new(
        Some(SENDER.parse()?),
        vec![RECIPIENT.parse()?],
    )?)
}

/// Builds a message of `size` octets, header section included, with 76-character lines that
/// end in CRLF and never start with a dot, so every client sends the same bytes.
pub(crate) fn message(size: usize) -> Vec<u8> {
    let mut message = format!(
        "From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: benchmark\r\n\
         Message-ID: <bench@example.org>\r\n\r\n"
    )
    .into_bytes();
    while message.len() + 78 <= size {
        message.extend_from_slice(&[b'x'; 76]);
        message.extend_from_slice(b"\r\n");
    }
    if message.len() + 2 < size {
        let rest = size - message.len() - 2;
        message.extend(std::iter::repeat_n(b'y', rest));
        message.extend_from_slice(b"\r\n");
    }
    message
}

const CLIENT_NAME: &str = "bench.example.org";
const SENDER: &str = "sender@example.org";
const RECIPIENT: &str = "recipient@example.net";
const MAIL: &[u8] = b"MAIL FROM:<sender@example.org>\r\n";
const RCPT: &[u8] = b"RCPT TO:<recipient@example.net>\r\n";
const DATA: &[u8] = b"DATA\r\n";
/// Messages queued per `send_batch` call. Pipelining needs only the next message queued, and
/// between batches the pipeline drains once, which costs one round trip per 32 messages. Each
/// queued message keeps its envelope and, once done, its result until the batch returns.
const BATCH: usize = 32;
