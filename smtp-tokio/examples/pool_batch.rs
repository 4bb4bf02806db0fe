//! Sends a batch of messages through a connection pool, each message from its own task.
//!
//! ```text
//! cargo run -p smtp-tokio --example pool_batch -- SERVER [COUNT] [TLS] [CA_FILE]
//! ```
//!
//! `SERVER` is `host:port`, for example the private Postfix of the tests (`bash
//! tests/servers/postfix.sh env` prints its ports and CA file). `COUNT` is the number of
//! messages (default 100). `TLS` is `none`, `opportunistic`, `required` (the default) or
//! `wrapper`, and `CA_FILE` a PEM file of CA certificates to trust instead of Mozilla's roots.
//! With `SMTP_USER` and `SMTP_PASSWORD` set, every connection authenticates. Messages go from
//! `SMTP_FROM` (default `sender@example.test`) to `SMTP_TO` (default `pool@example.test`).
//!
//! The pool opens up to four connections; connects, TLS upgrades and errors are logged to
//! stderr.

use std::process::ExitCode;
use std::time::Instant;

use smtp_proto::client::{Envelope, TlsPolicy};
use smtp_proto::{Credentials, Mailbox, ReversePath};
use smtp_tokio::{Options, Pool, PoolOptions, Roots};
use tokio::task::JoinSet;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();

    match send_batch().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pool_batch: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments, sends the batch and prints how it went.
async fn send_batch() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(server) = args.next() else {
        return Err("missing SERVER: pass host:port of a local SMTP server".into());
    };
    let count: usize = match args.next() {
        Some(count) => count
            .parse()
            .map_err(|_| format!("invalid COUNT {count:?}: expected a number of messages"))?,
        None => 100,
    };
    let tls = match args.next().as_deref() {
        None | Some("required") => TlsPolicy::Required,
        Some("none") => TlsPolicy::None,
        Some("opportunistic") => TlsPolicy::Opportunistic,
        Some("wrapper") => TlsPolicy::Wrapper,
        Some(other) => {
            return Err(format!(
                "invalid TLS {other:?}: expected none, opportunistic, required or wrapper"
            )
            .into());
        }
    };

    let mut options = Options::default();
    options.session.tls = tls;
    if let Some(ca_file) = args.next() {
        options.roots = Roots::CaFile(ca_file.into());
    }
    if let (Ok(user), Ok(password)) = (std::env::var("SMTP_USER"), std::env::var("SMTP_PASSWORD")) {
        options.session.credentials = Some(Credentials::password(&user, &password));
    }
    let from = ReversePath::parse(&env_or("SMTP_FROM", "sender@example.test"))?;
    let to = Mailbox::parse(&env_or("SMTP_TO", "pool@example.test"))?;

    let pool = Pool::new(&server, options, PoolOptions::default())?;
    let start = Instant::now();
    let mut sends = JoinSet::new();
    for index in 0..count {
        let pool = pool.clone();
        let envelope = Envelope::new(from.clone(), vec![to.clone()])?;
        let message = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: pool_batch message {index} of {count}\r\n\r\n\
             Sent through smtp-tokio's pool.\r\n"
        );
        sends.spawn(async move { (index, pool.send(envelope, message).await) });
    }

    let mut failed = 0;
    while let Some(joined) = sends.join_next().await {
        let (index, result) = joined?;
        if let Err(error) = result {
            failed += 1;
            eprintln!("message {index} failed: {error}");
        }
    }
    let elapsed = start.elapsed();
    let opened = pool.status().opened;
    pool.close().await;

    println!(
        "sent {} of {count} messages over {opened} connections in {elapsed:.2?}",
        count - failed
    );
    if failed > 0 {
        return Err(format!("{failed} of {count} messages failed").into());
    }
    Ok(())
}

/// Returns the environment variable `name`, or `default` when it is not set.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
