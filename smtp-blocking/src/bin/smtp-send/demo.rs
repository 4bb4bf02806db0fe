//! `smtp-send --demo`: starts the embedded server on a free loopback port, then sends a message
//! to it with the same code path as a real `smtp-send` run.

use crate::{Exit, Failure};

/// Runs the demo: the transcript of a send over STARTTLS with AUTH, then where the server stored
/// the message and what it stored.
#[cfg(feature = "server")]
pub(crate) fn run() -> Result<Exit, Failure> {
    use std::sync::{Arc, Mutex};

    use clap::Parser as _;
    use smtp_blocking::server::Server;

    let folder = std::env::temp_dir().join(format!("smtp-send-demo-{}", std::process::id()));
    let failed = |what: &str, error: &dyn std::fmt::Display| Failure {
        exit: Exit::Software,
        message: format!("demo: {what}: {error}"),
    };

    let stored = Arc::new(Mutex::new(None));
    let delivered = stored.clone();
    let mut server = Server::new(&folder);
    server
        .user(USER, PASSWORD)
        .on_delivery(move |delivery| *lock(&delivered) = Some(delivery.clone()));
    server.session_config().require_auth = true;
    let running = server
        .start()
        .map_err(|error| failed("cannot start the embedded server", &error))?;

    let message_file = folder.join("demo-message.eml");
    let password_file = folder.join("demo-password");
    std::fs::write(&message_file, MESSAGE)
        .and_then(|()| std::fs::write(&password_file, PASSWORD))
        .map_err(|error| failed("cannot write the demo files", &error))?;
    let server_address = running.local_addr().to_string();
    let ca_file = running
        .ca_file()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let args = [
        "smtp-send",
        "--server",
        &server_address,
        "--tls",
        "required",
        "--ca-file",
        &ca_file,
        "--helo",
        "client.example.test",
        "--from",
        "demo@example.test",
        "--to",
        "alice@example.test",
        "--auth-user",
        USER,
        "--auth-password-file",
        &password_file.display().to_string(),
        "--data",
        &message_file.display().to_string(),
        "--transcript",
    ]
    .map(str::to_owned);

    println!(
        "An embedded SMTP server listens on {server_address} with STARTTLS and AUTH for user \
         {USER:?}; its CA certificate is {ca_file}. Running:\n\n  {}\n",
        args.join(" ")
    );
    let cli = crate::Cli::try_parse_from(&args)
        .map_err(|error| failed("invalid demo arguments", &error))?;
    let exit = crate::run(&cli)?;
    running.stop();

    let Some(delivery) = lock(&stored).take() else {
        return Err(failed(
            "the server stored no message",
            &format!("see {}", folder.display()),
        ));
    };
    let content = std::fs::read(&delivery.message_file)
        .map_err(|error| failed("cannot read the stored message", &error))?;
    let envelope = std::fs::read_to_string(&delivery.envelope_file)
        .map_err(|error| failed("cannot read the stored envelope", &error))?;
    println!(
        "\nThe server stored the message in {}:\n\n{}\nand its envelope in {}:\n\n{envelope}",
        delivery.message_file.display(),
        String::from_utf8_lossy(&content),
        delivery.envelope_file.display(),
    );
    Ok(exit)
}

/// Rejects `--demo` in a build without the embedded server.
#[cfg(not(feature = "server"))]
pub(crate) fn run() -> Result<Exit, Failure> {
    Err(Failure::usage(
        "--demo needs the embedded server: build smtp-send with the `server` feature, which is on \
         by default",
    ))
}

/// Locks the slot of the stored message, also after a panic on the server's thread.
#[cfg(feature = "server")]
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The demo's AUTH user and password, known only to the embedded server it starts.
#[cfg(feature = "server")]
const USER: &str = "demo";
#[cfg(feature = "server")]
const PASSWORD: &str = "demo-password-1";

/// The message the demo sends. Its line that starts with a dot, which DATA would dot-stuff, is
/// stored unchanged.
#[cfg(feature = "server")]
const MESSAGE: &str = "From: Demo Sender <demo@example.test>\r\n\
                       To: Alice <alice@example.test>\r\n\
                       Subject: smtp-send demo\r\n\
                       \r\n\
                       This message went through the sans-IO client session and the blocking\r\n\
                       adapter, over STARTTLS with AUTH, into the embedded server of smtp-blocking.\r\n\
                       .A line that starts with a dot arrives unchanged.\r\n";
