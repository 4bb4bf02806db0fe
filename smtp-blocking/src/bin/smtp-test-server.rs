//! `smtp-test-server`: runs the embedded SMTP server of `smtp-blocking` as a test sink that
//! stores every message it accepts in a folder, until it is interrupted.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use smtp_blocking::server::{Delivery, Server};
use smtp_proto::Domain;
use smtp_proto::server::TlsMode;

/// Runs an SMTP server for tests: STARTTLS (or implicit TLS) with a certificate made at start,
/// AUTH PLAIN, LOGIN and CRAM-MD5 for the given users, and every accepted message stored in
/// FOLDER/messages as ID.eml with its envelope in ID.envelope. It prints where it listens and a
/// line per stored message, and runs until interrupted.
///
/// Exit codes: 64 invalid flag, 69 the server cannot start.
#[derive(Debug, Parser)]
#[command(name = "smtp-test-server", version)]
struct Cli {
    /// Address to listen on, as IP:PORT; port 0 picks a free port.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:2525")]
    listen: String,

    /// Folder for the certificates and messages; default: a new folder in the system's
    /// temporary folder.
    #[arg(long, value_name = "PATH")]
    folder: Option<PathBuf>,

    /// A user that may authenticate, as NAME:PASSWORD; repeat the flag for several users.
    #[arg(long, value_name = "NAME:PASSWORD")]
    user: Vec<String>,

    /// PEM certificate chain to present, the server's certificate first; default: a CA and a
    /// certificate for localhost, 127.0.0.1 and ::1 made at start.
    #[arg(
        long,
        value_name = "PATH",
        requires = "tls_key",
        conflicts_with = "no_tls"
    )]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Speak TLS from the first byte (implicit TLS, RFC 8314) instead of offering STARTTLS.
    #[arg(long, conflicts_with = "no_tls")]
    implicit_tls: bool,

    /// Offer no TLS at all.
    #[arg(long)]
    no_tls: bool,

    /// Largest message accepted, in octets, announced with SIZE; default: 10240000.
    #[arg(long, value_name = "OCTETS")]
    max_size: Option<u64>,

    /// Name in the greeting and the EHLO reply; default: localhost.
    #[arg(long, value_name = "NAME")]
    domain: Option<String>,

    /// Reject MAIL until the client has authenticated.
    #[arg(long)]
    require_auth: bool,

    /// Offer AUTH before TLS is up, which lets passwords cross the network readable.
    #[arg(long)]
    allow_insecure_auth: bool,

    /// Copy the generated CA certificate to this file, for clients to trust.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["tls_cert", "no_tls"])]
    print_ca: Option<PathBuf>,
}

/// Exit codes from `sysexits.h`.
#[derive(Clone, Copy, Debug)]
enum Exit {
    Usage = 64,
    Unavailable = 69,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _printed = error.print();
            // --help and --version are not errors; every other parse failure is a usage error.
            return match error.use_stderr() {
                true => ExitCode::from(Exit::Usage as u8),
                false => ExitCode::SUCCESS,
            };
        }
    };
    init_logging();

    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((exit, message)) => {
            eprintln!("smtp-test-server: {message}");
            ExitCode::from(exit as u8)
        }
    }
}

/// Starts the server as the flags set it up and serves until the process is interrupted.
fn run(cli: &Cli) -> Result<(), (Exit, String)> {
    let server = server(cli).map_err(|message| (Exit::Usage, message))?;
    let unavailable = |message: String| (Exit::Unavailable, message);
    let running = server
        .start()
        .map_err(|error| unavailable(error.to_string()))?;

    let tls = match (cli.no_tls, cli.implicit_tls) {
        (true, _) => "no TLS",
        (false, true) => "implicit TLS",
        (false, false) => "STARTTLS",
    };
    println!("listening on {} ({tls})", running.local_addr());
    println!(
        "messages are stored in {}",
        running.messages_folder().display()
    );
    if let Some(ca_file) = running.ca_file() {
        println!("CA certificate: {}", ca_file.display());
        if let Some(target) = &cli.print_ca {
            std::fs::copy(ca_file, target).map_err(|error| {
                unavailable(format!(
                    "cannot copy the CA certificate to --print-ca {}: {error}",
                    target.display()
                ))
            })?;
            println!("CA certificate copied to {}", target.display());
        }
    }

    // The server's threads serve until the process ends, by Ctrl-C or a signal.
    loop {
        std::thread::park();
    }
}

/// Builds the server settings from the flags.
fn server(cli: &Cli) -> Result<Server, String> {
    let listen: SocketAddr = cli.listen.parse().map_err(|error| {
        format!(
            "invalid --listen address {:?}: {error}; expected IP:PORT such as 127.0.0.1:2525",
            cli.listen
        )
    })?;
    let folder = match &cli.folder {
        Some(folder) => folder.clone(),
        None => std::env::temp_dir().join(format!("smtp-test-server-{}", std::process::id())),
    };

    let mut server = Server::new(folder);
    server.listen(listen).on_delivery(print_delivery);
    for user in &cli.user {
        let Some((name, password)) = user.split_once(':') else {
            return Err(format!(
                "invalid --user value {user:?}: expected NAME:PASSWORD"
            ));
        };
        if name.is_empty() {
            return Err(format!("invalid --user value {user:?}: the name is empty"));
        }
        server.user(name, password);
    }
    if let (Some(chain), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        server.certificate_files(chain, key);
    }
    server.tls(match (cli.no_tls, cli.implicit_tls) {
        (true, _) => TlsMode::Unavailable,
        (false, true) => TlsMode::Implicit,
        (false, false) => TlsMode::StartTls,
    });

    let config = server.session_config();
    if let Some(max_size) = cli.max_size {
        config.max_message_size = Some(max_size);
    }
    if let Some(domain) = &cli.domain {
        config.domain = Domain::parse(domain)
            .map_err(|error| format!("invalid --domain name {domain:?}: {error}"))?;
    }
    config.require_auth = cli.require_auth;
    config.allow_insecure_auth = cli.allow_insecure_auth;
    Ok(server)
}

/// Prints one line per stored message.
fn print_delivery(delivery: &Delivery) {
    let recipients: Vec<String> = delivery
        .recipients
        .iter()
        .map(|recipient| format!("<{recipient}>"))
        .collect();
    println!(
        "stored {} octets from <{}> for {} in {}",
        delivery.size,
        delivery.reverse_path,
        recipients.join(", "),
        delivery.message_file.display()
    );
}

/// Logs warnings of the server to stderr, such as failed TLS handshakes, or the levels
/// `RUST_LOG` names, such as `debug` or `smtp_blocking=trace`.
#[cfg(feature = "tracing")]
fn init_logging() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let targets: tracing_subscriber::filter::Targets = match filter.parse() {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!(
                "smtp-test-server: invalid RUST_LOG value {filter:?}: {error}; logging warnings"
            );
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::WARN)
        }
    };
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(targets);
    if let Err(error) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("smtp-test-server: logging is off: {error}");
    }
}

#[cfg(not(feature = "tracing"))]
fn init_logging() {}
