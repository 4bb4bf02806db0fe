//! A small SMTP sink that offers PIPELINING and CHUNKING, which Postfix's smtp-sink lacks.
//!
//! One thread serves each connection. Every command in the input is answered, and the replies to
//! one read go out in one write, as a pipelining server does (RFC 2920 section 3.2). DATA content
//! is decoded with `smtp_proto::data::DataDecoder` and BDAT content (RFC 3030) is counted off by
//! its size; both are dropped. After each session the sink prints `sess=N mesg=M` to standard
//! output, the counters of smtp-sink's `-c`.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use bytes::{Buf as _, BytesMut};
use smtp_proto::data::{DataDecoder, DecodeStatus};

/// Serves connections on `127.0.0.1:port` until the process is killed.
pub(crate) fn run(port: u16, chunking: bool) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let counters = Arc::new(Counters::default());
    for stream in listener.incoming() {
        let stream = stream?;
        let counters = Arc::clone(&counters);
        thread::spawn(move || {
            // A client that closes right after QUIT may reset the connection: not a failure.
            match serve(stream, chunking, &counters) {
                Err(error) if error.kind() != io::ErrorKind::ConnectionReset => {
                    eprintln!("sink: session failed: {error}");
                }
                _ => {}
            }
            let sessions = counters.sessions.fetch_add(1, Ordering::SeqCst) + 1;
            let messages = counters.messages.load(Ordering::SeqCst);
            let mut out = io::stdout().lock();
            let _ignored = writeln!(out, "sess={sessions} mesg={messages}");
            let _ignored = out.flush();
        });
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counters {
    sessions: AtomicU64,
    messages: AtomicU64,
}

/// Where the sink is in the input of one session.
enum State {
    Command,
    Data(DataDecoder),
    Bdat { remaining: u64, last: bool },
}

fn serve(mut stream: TcpStream, chunking: bool, counters: &Counters) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut input = BytesMut::with_capacity(READ_SIZE);
    let mut replies = Vec::with_capacity(1024);
    let mut content = BytesMut::with_capacity(READ_SIZE);
    let mut state = State::Command;
    stream.write_all(b"220 bench-sink ESMTP\r\n")?;

    loop {
        // Answer everything that is complete in the input, then write the replies at once.
        loop {
            match &mut state {
                State::Command => {
                    let Some(end) = input.windows(2).position(|pair| pair == b"\r\n") else {
                        break;
                    };
                    let line = input.split_to(end + 2);
                    let (reply, next) = answer(&line[..end], chunking);
                    replies.extend_from_slice(reply);
                    match next {
                        Some(next) => state = next,
                        None if reply.starts_with(b"221") => {
                            stream.write_all(&replies)?;
                            return Ok(());
                        }
                        None => {}
                    }
                }
                State::Data(decoder) => {
                    if input.is_empty() {
                        break;
                    }
                    let status = decoder.decode(&input, &mut content);
                    content.clear();
                    let DecodeStatus::Complete { consumed } = status else {
                        input.clear();
                        break;
                    };
                    input.advance(consumed);
                    counters.messages.fetch_add(1, Ordering::SeqCst);
                    replies.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                    state = State::Command;
                }
                State::Bdat { remaining, last } => {
                    let taken = input
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    input.advance(taken);
                    *remaining -= taken as u64;
                    if *remaining > 0 {
                        break;
                    }
                    if *last {
                        counters.messages.fetch_add(1, Ordering::SeqCst);
                        replies.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                    } else {
                        replies.extend_from_slice(b"250 2.0.0 Ok: chunk received\r\n");
                    }
                    state = State::Command;
                }
            }
        }
        if !replies.is_empty() {
            stream.write_all(&replies)?;
            replies.clear();
        }

        input.reserve(READ_SIZE);
        let start = input.len();
        input.resize(start + READ_SIZE, 0);
        let read = stream.read(&mut input[start..])?;
        input.truncate(start + read);
        if read == 0 {
            return Ok(());
        }
    }
}

/// Returns the reply to one command line and the state after it, when the state changes.
fn answer(line: &[u8], chunking: bool) -> (&'static [u8], Option<State>) {
    let verb = line
        .split(|&octet| octet == b' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match &verb[..] {
        b"EHLO" if chunking => (EHLO_CHUNKING, None),
        b"EHLO" => (EHLO, None),
        b"HELO" => (b"250 bench-sink\r\n", None),
        b"MAIL" => (b"250 2.1.0 Ok\r\n", None),
        b"RCPT" => (b"250 2.1.5 Ok\r\n", None),
        b"DATA" => (
            b"354 End data with <CR><LF>.<CR><LF>\r\n",
            Some(State::Data(DataDecoder::new())),
        ),
        b"BDAT" if chunking => match bdat_arguments(line) {
            // The reply is written once the chunk has been read.
            Some((remaining, last)) => (b"", Some(State::Bdat { remaining, last })),
            None => (b"501 5.5.4 Syntax: BDAT size [LAST]\r\n", None),
        },
        b"RSET" | b"NOOP" => (b"250 2.0.0 Ok\r\n", None),
        b"QUIT" => (b"221 2.0.0 Bye\r\n", None),
        _ => (b"502 5.5.2 Error: command not recognized\r\n", None),
    }
}

/// Parses `BDAT size [LAST]` (RFC 3030 section 2).
fn bdat_arguments(line: &[u8]) -> Option<(u64, bool)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ').skip(1);
    let size = words.next()?.parse().ok()?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return None,
    };
    Some((size, last))
}

const EHLO: &[u8] =
    b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
const EHLO_CHUNKING: &[u8] = b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
    250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n";
const READ_SIZE: usize = 64 * 1024;
