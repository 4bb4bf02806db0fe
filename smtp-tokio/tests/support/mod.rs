//! A scripted SMTP server over in-memory pipes, for the client and pool tests.
//!
//! [`MockServer::connect`] opens a pipe and serves its far end in a task: a 220 greeting, EHLO
//! with the configured capabilities, and 250, 354 or 221 replies to the usual commands, unless
//! the [`Script`] decides otherwise for a command. Every command line and message is recorded per
//! connection.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different part of the mock server"
)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smtp_proto::client::Envelope;
use smtp_proto::{Mailbox, ReversePath};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader, DuplexStream,
    ReadHalf, WriteHalf,
};
use tokio_rustls::TlsAcceptor;

/// What the server does with one command line.
#[derive(Clone, Debug, Default)]
pub struct Action {
    /// The reply lines, CRLF added; `None` for the default reply.
    reply: Option<Vec<String>>,
    /// No reply at all: the command is read and never answered.
    silent: bool,
    /// Close the connection after the reply.
    close: bool,
    /// A line sent this long after the reply, unasked, followed by closing the connection.
    later: Option<(Duration, String)>,
    /// After a 354 reply, how long the server waits before it reads the message content.
    pause: Option<Duration>,
}

impl Action {
    /// Returns the action that sends the default reply.
    pub fn default_reply() -> Self {
        Self::default()
    }

    /// Replies with these lines instead of the default.
    pub fn reply(lines: &[&str]) -> Self {
        Self {
            reply: Some(lines.iter().map(|line| (*line).to_owned()).collect()),
            ..Self::default()
        }
    }

    /// Never answers.
    pub fn silent() -> Self {
        Self {
            silent: true,
            ..Self::default()
        }
    }

    /// Closes the connection without a reply.
    pub fn close() -> Self {
        Self {
            silent: true,
            close: true,
            ..Self::default()
        }
    }

    /// Closes the connection after the reply.
    pub fn and_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// After the 354 reply to DATA, waits `delay` before reading the content, so a large message
    /// fills the pipe and the client waits part-way through it.
    pub fn then_pause(mut self, delay: Duration) -> Self {
        self.pause = Some(delay);
        self
    }

    /// After the reply, waits `delay`, sends `line` and closes the connection.
    pub fn then_later(mut self, delay: Duration, line: &str) -> Self {
        self.later = Some((delay, line.to_owned()));
        self
    }
}

/// Where a command line arrived: the connection (from 0) and its messages so far.
#[derive(Clone, Copy, Debug)]
pub struct Turn<'a> {
    pub connection: usize,
    /// Messages completed on this connection before this line.
    pub messages: usize,
    /// The command line without its CRLF, or `"."` for the end of data.
    pub line: &'a str,
}

impl Turn<'_> {
    /// Tells whether the line is this command, by its verb.
    pub fn is(&self, verb: &str) -> bool {
        self.line
            .get(..verb.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(verb))
    }
}

/// Decides the action for each command line.
pub type Script = Arc<dyn Fn(Turn<'_>) -> Action + Send + Sync>;

/// What the server saw on one connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectionLog {
    /// Command lines in order, without CRLF; the content of a message is not among them.
    pub commands: Vec<String>,
    /// Messages received, dot-unstuffed, each line ending in CRLF.
    pub messages: Vec<Vec<u8>>,
    /// The client closed the connection or it broke while message content was arriving.
    pub ended_in_data: bool,
    /// The connection is over, from either side.
    pub ended: bool,
}

/// A scripted server reached through in-memory pipes.
#[derive(Clone)]
pub struct MockServer {
    ehlo: Vec<String>,
    script: Script,
    tls: Option<TlsAcceptor>,
    /// TLS from the first byte (implicit TLS) rather than after STARTTLS.
    implicit_tls: bool,
    log: Arc<Mutex<Vec<ConnectionLog>>>,
}

impl MockServer {
    /// Returns a server offering PIPELINING and 8BITMIME that gives every command its default
    /// reply.
    pub fn new() -> Self {
        Self::with_script(|_| Action::default_reply())
    }

    /// Returns a server offering PIPELINING and 8BITMIME that acts as `script` decides.
    pub fn with_script(script: impl Fn(Turn<'_>) -> Action + Send + Sync + 'static) -> Self {
        Self {
            ehlo: vec!["PIPELINING".to_owned(), "8BITMIME".to_owned()],
            script: Arc::new(script),
            tls: None,
            implicit_tls: false,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Returns a server that rejects the first RCPT it receives with 550 and accepts the later
    /// ones.
    pub fn rejecting_first_rcpt() -> Self {
        let rcpts = AtomicUsize::new(0);
        Self::with_script(move |turn| {
            let first_rcpt = turn.is("RCPT") && rcpts.fetch_add(1, Ordering::Relaxed) == 0;
            if first_rcpt {
                Action::reply(&["550 5.1.1 no such user"])
            } else {
                Action::default_reply()
            }
        })
    }

    /// Replaces the EHLO keywords after the first line.
    pub fn ehlo(mut self, keywords: &[&str]) -> Self {
        self.ehlo = keywords
            .iter()
            .map(|keyword| (*keyword).to_owned())
            .collect();
        self
    }

    /// Offers STARTTLS with a self-signed certificate for `localhost`.
    pub fn with_starttls(mut self) -> Self {
        self.ehlo.push("STARTTLS".to_owned());
        self.tls = Some(self_signed_acceptor());
        self
    }

    /// Speaks TLS from the first byte (implicit TLS), with a self-signed certificate for
    /// `localhost`.
    pub fn with_implicit_tls(mut self) -> Self {
        self.tls = Some(self_signed_acceptor());
        self.implicit_tls = true;
        self
    }

    /// Opens a connection and serves it in a task; returns the client's end.
    pub fn connect(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
        let index = {
            let mut log = self.log();
            log.push(ConnectionLog::default());
            log.len() - 1
        };
        let this = self.clone();
        tokio::spawn(async move {
            let mut stream = Box::new(server) as Box<dyn Stream>;
            if let (true, Some(acceptor)) = (this.implicit_tls, &this.tls) {
                match acceptor.accept(stream).await {
                    Ok(tls) => stream = Box::new(tls),
                    Err(_) => {
                        this.log()[index].ended = true;
                        return;
                    }
                }
            }
            let (read, write) = tokio::io::split(stream);
            let _ignored = this.serve(index, BufReader::new(read), write).await;
            this.log()[index].ended = true;
        });
        client
    }

    /// Returns what the server saw on every connection so far.
    pub fn connections(&self) -> Vec<ConnectionLog> {
        self.log().clone()
    }

    /// Returns every message received, in the order they completed per connection.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.log()
            .iter()
            .flat_map(|connection| connection.messages.clone())
            .collect()
    }

    async fn serve(
        &self,
        index: usize,
        mut reader: BufReader<ReadHalf<Box<dyn Stream>>>,
        mut writer: WriteHalf<Box<dyn Stream>>,
    ) -> io::Result<()> {
        writer.write_all(b"220 mock.example.test ESMTP\r\n").await?;
        let mut line = String::new();
        // Recipients accepted in the current transaction: DATA without one gets 554.
        let mut accepted = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end_matches(['\r', '\n']).to_owned();
            let messages = {
                let mut log = self.log();
                log[index].commands.push(command.clone());
                log[index].messages.len()
            };
            let turn = Turn {
                connection: index,
                messages,
                line: &command,
            };
            let action = (self.script)(turn);
            if action.silent {
                if action.close {
                    return Ok(());
                }
                continue;
            }

            let default = self.default_reply(&turn, accepted);
            let lines = action.reply.clone().unwrap_or(default);
            if turn.is("MAIL") || turn.is("RSET") {
                accepted = 0;
            }
            if turn.is("RCPT") && lines.last().is_some_and(|l| l.starts_with("250")) {
                accepted += 1;
            }
            let mut reply = String::new();
            for line in &lines {
                reply.push_str(line);
                reply.push_str("\r\n");
            }
            writer.write_all(reply.as_bytes()).await?;

            let accepted_data =
                turn.is("DATA") && lines.last().is_some_and(|l| l.starts_with("354"));
            let accepted_tls =
                turn.is("STARTTLS") && lines.last().is_some_and(|l| l.starts_with("220"));
            if action.close || (turn.is("QUIT") && action.reply.is_none()) {
                return Ok(());
            }
            if let Some((delay, line)) = &action.later {
                tokio::time::sleep(*delay).await;
                writer.write_all(format!("{line}\r\n").as_bytes()).await?;
                return Ok(());
            }
            if let (true, Some(acceptor)) = (accepted_tls, &self.tls) {
                let stream = reader.into_inner().unsplit(writer);
                let tls = acceptor.accept(stream).await?;
                let (read, write) = tokio::io::split(Box::new(tls) as Box<dyn Stream>);
                reader = BufReader::new(read);
                writer = write;
            }
            if accepted_data {
                if let Some(pause) = action.pause {
                    tokio::time::sleep(pause).await;
                }
                self.receive_message(index, &mut reader, &mut writer)
                    .await?;
            }
        }
    }

    /// Reads message content up to the lone dot, stores it and sends the end-of-data reply.
    async fn receive_message(
        &self,
        index: usize,
        reader: &mut BufReader<ReadHalf<Box<dyn Stream>>>,
        writer: &mut WriteHalf<Box<dyn Stream>>,
    ) -> io::Result<()> {
        let mut message = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                self.log()[index].ended_in_data = true;
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == b".\r\n" {
                break;
            }
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            message.extend_from_slice(unstuffed);
        }

        let messages = self.log()[index].messages.len();
        let turn = Turn {
            connection: index,
            messages,
            line: ".",
        };
        let action = (self.script)(turn);
        if action.silent {
            if action.close {
                return Err(io::ErrorKind::ConnectionAborted.into());
            }
            // Never answers, and reads nothing more.
            std::future::pending::<()>().await;
        }
        self.log()[index].messages.push(message);
        let lines = action
            .reply
            .unwrap_or_else(|| vec![format!("250 2.0.0 queued as {index}.{messages}")]);
        for line in lines {
            writer.write_all(format!("{line}\r\n").as_bytes()).await?;
        }
        if action.close {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        if let Some((delay, line)) = action.later {
            tokio::time::sleep(delay).await;
            writer.write_all(format!("{line}\r\n").as_bytes()).await?;
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        Ok(())
    }

    fn default_reply(&self, turn: &Turn<'_>, accepted: usize) -> Vec<String> {
        let reply = if turn.is("EHLO") {
            let mut lines = vec!["250-mock.example.test".to_owned()];
            for (position, keyword) in self.ehlo.iter().enumerate() {
                let separator = if position + 1 == self.ehlo.len() {
                    ' '
                } else {
                    '-'
                };
                lines.push(format!("250{separator}{keyword}"));
            }
            if self.ehlo.is_empty() {
                lines = vec!["250 mock.example.test".to_owned()];
            }
            return lines;
        } else if turn.is("MAIL") {
            "250 2.1.0 ok"
        } else if turn.is("RCPT") {
            "250 2.1.5 ok"
        } else if turn.is("DATA") && accepted == 0 {
            "554 5.5.1 no valid recipients"
        } else if turn.is("DATA") {
            "354 go ahead"
        } else if turn.is("STARTTLS") {
            "220 2.0.0 ready for TLS"
        } else if turn.is("AUTH") {
            "235 2.7.0 authenticated"
        } else if turn.is("QUIT") {
            "221 2.0.0 bye"
        } else {
            "250 2.0.0 ok"
        };
        vec![reply.to_owned()]
    }

    fn log(&self) -> MutexGuard<'_, Vec<ConnectionLog>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Returns the envelope every test sends: from `a@example.test` to `b@example.test`.
pub fn envelope() -> Envelope {
    Envelope::new(
        ReversePath::parse("a@example.test").expect("a valid reverse-path"),
        vec![Mailbox::parse("b@example.test").expect("a valid mailbox")],
    )
    .expect("one recipient is enough")
}

/// Waits until `condition` holds, for two seconds at most.
pub async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..400 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not met within two seconds");
}

/// A stream the mock server can serve: a pipe end, or TLS over one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Builds a TLS acceptor with a fresh self-signed certificate for `localhost`.
fn self_signed_acceptor() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("rcgen makes a self-signed certificate");
    let certificate = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .expect("rcgen's key is PKCS#8");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .expect("the certificate matches its key");
    TlsAcceptor::from(Arc::new(config))
}

/// Small enough that a large message fills the pipe and the client waits part-way.
const PIPE_CAPACITY: usize = 16 * 1024;
