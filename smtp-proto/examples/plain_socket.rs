//! Drives the sans-IO session from a hand-written event loop over a plain TCP socket.
//!
//! ```text
//! cargo run -p smtp-proto --example plain_socket -- 127.0.0.1:2525 a@example.org b@example.net
//! ```
//!
//! The server must accept mail without TLS: this example has no TLS library, so it sets
//! `TlsPolicy::None` and sends no credentials. `smtp-blocking` is the adapter with TLS.
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "an example adapter owns the socket and the clock, which the core never touches"
)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use smtp_proto::client::{Config, Envelope, Event, Session, TlsPolicy};
use smtp_proto::{Mailbox, ReversePath};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:2525".to_string());
    let from = ReversePath::parse(&args.next().unwrap_or_else(|| "a@example.org".to_string()))?;
    let to = Mailbox::parse(&args.next().unwrap_or_else(|| "b@example.net".to_string()))?;
    let message = "From: a@example.org\r\nTo: b@example.net\r\nSubject: sans-IO example\r\n\r\n\
                   Sent by a hand-written event loop.\r\n";

    let mut socket = TcpStream::connect(&server)?;
    socket.set_nodelay(true)?;
    let mut config = Config::default();
    config.tls = TlsPolicy::None;
    let mut session = Session::new(config, Instant::now());

    let handle = session.send(Envelope::new(from, vec![to])?, message.as_bytes().to_vec())?;
    session.quit();

    let mut buffer = [0u8; 4096];
    loop {
        // Write everything the session has for the server.
        while let Some(bytes) = session.poll_transmit(Instant::now()) {
            socket.write_all(&bytes)?;
        }

        // React to what happened.
        while let Some(event) = session.poll_event() {
            match event {
                Event::TransactionCompleted {
                    handle: done,
                    result,
                } if done == handle => match result {
                    Ok(delivery) => println!("accepted: {}", delivery.reply()),
                    Err(error) => println!("failed: {error}"),
                },
                Event::Closed { error } => {
                    if let Some(error) = error {
                        println!("session ended: {error}");
                    }
                    return Ok(());
                }
                other => println!("{other:?}"),
            }
        }

        // Wait for input until the session's deadline, then feed what arrived.
        let timeout = session
            .poll_timeout()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        socket.set_read_timeout(timeout.map(|t| t.max(std::time::Duration::from_millis(1))))?;
        match socket.read(&mut buffer) {
            Ok(0) => session.handle_eof(),
            Ok(n) => session.handle_input(&buffer[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                session.handle_timeout(Instant::now());
            }
            Err(error) => return Err(error.into()),
        }
    }
}
