//! Helpers shared by the smtp-tokio tests against Postfix and aiosmtpd: messages, batches sent
//! through a pool, and a stream that stops writing part-way.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different part of the helpers"
)]

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::{Domain, Mailbox, ReversePath};
use smtp_tokio::{Options, Pool, PoolOptions, Roots};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How long a server may take to store every message of a test.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// How many octets a stalled connection lets through: past the greeting, EHLO, STARTTLS and AUTH,
/// well into the content of a large message.
const STALL_AFTER: usize = 256 * 1024;

/// Builds message `index` of batch `batch`: a unique subject and Message-ID, lines starting
/// with dots, a lone dot line and an empty line, and with `long_line` a 990-octet line.
pub fn batch_message(batch: &str, index: usize, long_line: bool) -> Vec<u8> {
    let mut message = format!(
        "From: sender@example.test\r\nTo: pool@example.test\r\n\
         Subject: {batch} message {index}\r\nMessage-ID: <{batch}.{index}@client.example.test>\r\n\
         \r\n.leading dot {index}\r\n.\r\n..two dots\r\n\r\nline {index} after an empty line\r\n"
    )
    .into_bytes();
    if long_line {
        message.extend_from_slice(&[b'x'; 990]);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b"last line\r\n");
    message
}

/// Returns an envelope from `sender@example.test` to `local_part@example.test`.
pub fn envelope(local_part: &str) -> Envelope {
    envelope_to(&format!("{local_part}@example.test"))
}

/// Returns an envelope from `sender@example.test` to `address`.
pub fn envelope_to(address: &str) -> Envelope {
    Envelope::new(
        ReversePath::parse("sender@example.test").expect("a valid reverse-path"),
        vec![Mailbox::parse(address).expect("a valid mailbox")],
    )
    .expect("one recipient is enough")
}

/// Returns options with `tls`, the EHLO name `client.example.test` and the test CA as the only
/// trust anchor.
pub fn options(ca_file: &Path, tls: TlsPolicy) -> Options {
    let mut options = Options::default();
    options.session.tls = tls;
    options.session.ehlo_name = Domain::parse("client.example.test").expect("a valid EHLO name");
    options.roots = Roots::CaFile(ca_file.to_owned());
    options
}

/// Sends `count` messages of one batch through `pool` at once, one task each, and returns them
/// as sent, sorted, with how long the sends took.
///
/// # Panics
///
/// When a send fails; the message names its index and the error.
pub async fn send_batch(
    pool: &Pool,
    batch: &str,
    count: usize,
    long_line: bool,
) -> (Vec<Vec<u8>>, Duration) {
    let start = Instant::now();
    let mut sends = JoinSet::new();
    for index in 0..count {
        let pool = pool.clone();
        let message = batch_message(batch, index, long_line);
        sends.spawn(async move {
            let result = pool.send(envelope("pool"), message.clone()).await;
            (index, result.map(|_| message))
        });
    }

    let mut sent = Vec::with_capacity(count);
    while let Some(joined) = sends.join_next().await {
        let (index, result) = joined.expect("a send task does not panic");
        match result {
            Ok(message) => sent.push(message),
            Err(error) => panic!("message {index} of {batch} failed: {error}"),
        }
    }
    sent.sort();
    (sent, start.elapsed())
}

/// A TCP stream that lets `budget` octets through and then never completes another write,
/// notifying `reached`: a send on it stops part-way, at a point the test chooses.
#[derive(Debug)]
pub struct StallingStream {
    inner: TcpStream,
    budget: usize,
    reached: Arc<Notify>,
}

impl StallingStream {
    /// Connects to `127.0.0.1:port`; the first `stalled` connections opened through `opened`
    /// stall after `budget` octets, the later ones never do.
    pub async fn connect(
        port: u16,
        opened: &AtomicUsize,
        stalled: usize,
        budget: usize,
        reached: Arc<Notify>,
    ) -> io::Result<Self> {
        let inner = TcpStream::connect(("127.0.0.1", port)).await?;
        let stalls = opened.fetch_add(1, Ordering::Relaxed) < stalled;
        Ok(Self {
            inner,
            budget: if stalls { budget } else { usize::MAX },
            reached,
        })
    }
}

impl AsyncRead for StallingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.budget == 0 {
            this.reached.notify_one();
            // Never woken: the test drops the send once it is notified.
            return Poll::Pending;
        }

        let allowed = buf.len().min(this.budget);
        let written = Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]);
        if let Poll::Ready(Ok(written)) = written {
            this.budget -= written;
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A pool whose first send was dropped part-way through its message content.
#[derive(Debug)]
pub struct CancelledSend {
    /// The pool, with one connection at most.
    pub pool: Pool,
    /// Connections open right after the send was dropped.
    pub open_after_drop: usize,
    /// The message sent after the dropped one, message 1 of the batch `token`.
    pub after: Vec<u8>,
}

/// Sends a message of about `size` octets with `token` in its subject to `127.0.0.1:port`
/// through a pool of one connection, and drops the send once 256 KiB went out, in the middle
/// of the message content. Then sends message 1 of the batch `token`, which must succeed.
pub async fn cancel_mid_data(
    port: u16,
    options: Options,
    token: &str,
    size: usize,
) -> CancelledSend {
    let reached = Arc::new(Notify::new());
    let stalled = Arc::clone(&reached);
    let opened = Arc::new(AtomicUsize::new(0));
    let mut limits = PoolOptions::default();
    limits.max_connections = 1;
    let pool = Pool::with_connector(&format!("127.0.0.1:{port}"), options, limits, move || {
        let (opened, stalled) = (Arc::clone(&opened), Arc::clone(&stalled));
        async move { StallingStream::connect(port, &opened, 1, STALL_AFTER, stalled).await }
    })
    .expect("valid pool options");

    tokio::select! {
        result = pool.send(envelope("cancelled"), large_message(token, size)) => {
            panic!("the send must stall part-way, but it ended: {result:?}");
        }
        () = reached.notified() => {}
    }
    let open_after_drop = pool.status().open;
    let after = batch_message(token, 1, false);
    if let Err(error) = pool.send(envelope("after-cancel"), after.clone()).await {
        panic!("the send after the cancelled one failed: {error}");
    }

    CancelledSend {
        pool,
        open_after_drop,
        after,
    }
}

/// Builds a message of about `size` octets in 78-octet lines, with `token` in its subject.
pub fn large_message(token: &str, size: usize) -> Vec<u8> {
    let mut message = format!("Subject: {token}\r\n\r\n").into_bytes();
    while message.len() < size {
        message.extend_from_slice(&[b'y'; 78]);
        message.extend_from_slice(b"\r\n");
    }
    message
}
