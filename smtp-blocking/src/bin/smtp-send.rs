//! `smtp-send`: sends one message over SMTP, or the same message several times over one
//! connection, and exits with a `sysexits` code that shows whether a retry can help.
#![forbid(unsafe_code)]

#[path = "smtp-send/demo.rs"]
mod demo;

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use smtp_blocking::{Client, Error, Options, Roots, TranscriptText};
use smtp_proto::client::{Delivery, Envelope, RecipientResult, Stage, TlsPolicy};
use smtp_proto::{Credentials, Domain, Mailbox, Mechanism, ReversePath, Timeouts};

/// Sends a message over SMTP and prints the server's reply to each recipient and to the message.
#[derive(Debug, Parser)]
#[command(name = "smtp-send", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    /// Server to connect to: `HOST`, `HOST:PORT` or `[IPv6]:PORT`. Without a port: 465 with
    /// --tls wrapper, else 587.
    #[arg(long, value_name = "HOST[:PORT]", required_unless_present = "demo")]
    server: Option<String>,

    /// TLS policy: none, STARTTLS when offered (opportunistic), STARTTLS or fail (required), or
    /// implicit TLS from the first byte (wrapper).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = Tls::Required)]
    tls: Tls,

    /// PEM file of CA certificates to trust instead of the built-in roots.
    #[arg(long, value_name = "PATH", conflicts_with = "roots")]
    ca_file: Option<PathBuf>,

    /// Root certificates to trust: Mozilla's compiled-in list (webpki) or the system store
    /// (platform). Default: webpki.
    #[arg(long, value_enum, value_name = "SOURCE")]
    roots: Option<RootSource>,

    /// Accept any server certificate. For tests only: anyone on the path can then read and
    /// change the session, password included.
    #[arg(long)]
    accept_invalid_certs: bool,

    /// Name sent with EHLO. Default: this machine's host name if it is fully qualified (contains
    /// a dot) and a valid domain, else `localhost`.
    #[arg(long, visible_alias = "ehlo", value_name = "NAME")]
    helo: Option<String>,

    /// Envelope sender for MAIL FROM; `<>` or an empty value sends the null reverse path.
    #[arg(long, value_name = "ADDR", required_unless_present = "demo")]
    from: Option<String>,

    /// Envelope recipient for RCPT TO; repeat the flag for several recipients.
    #[arg(long, value_name = "ADDR", required_unless_present = "demo")]
    to: Vec<String>,

    /// User name for AUTH; the password comes from --auth-password-env, --auth-password-file
    /// or a prompt on the terminal.
    #[arg(long, value_name = "NAME")]
    auth_user: Option<String>,

    /// Environment variable that contains the password (or the OAuth token for XOAUTH2 and
    /// OAUTHBEARER).
    #[arg(
        long,
        value_name = "VAR",
        requires = "auth_user",
        conflicts_with = "auth_password_file"
    )]
    auth_password_env: Option<String>,

    /// File whose first line is the password (or the OAuth token).
    #[arg(long, value_name = "PATH", requires = "auth_user")]
    auth_password_file: Option<PathBuf>,

    /// SASL mechanism to use, such as PLAIN, LOGIN, CRAM-MD5, XOAUTH2 or OAUTHBEARER; default:
    /// the best one the server offers.
    #[arg(long, value_name = "MECHANISM", requires = "auth_user")]
    auth: Option<String>,

    /// Allow AUTH over a connection without TLS, which sends the password readable to anyone
    /// on the path.
    #[arg(long)]
    allow_insecure_auth: bool,

    /// File with the message (header and body); `-` or no flag reads standard input.
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,

    /// Send the message even when it is empty. Without this flag, an empty --data file or
    /// standard input is an error (exit 64).
    #[arg(long)]
    allow_empty: bool,

    /// Send with BDAT when the server offers CHUNKING (RFC 3030). With `off`, every message goes
    /// with DATA and dot-stuffing.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    chunking: Switch,

    /// Send the message this many times over one connection, pipelined when the server offers
    /// PIPELINING, and print a summary with the rate.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,

    /// Seconds to wait for each reply and for the TCP connect, at most 86400. Default: the RFC
    /// 5321 times (up to 10 minutes) and a 30-second connect timeout.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<Duration>,

    /// Print the session as it happens: `C:` for commands, `S:` for replies; AUTH payloads are
    /// redacted and message content is shown as an octet count.
    #[arg(long)]
    transcript: bool,

    /// Start an embedded server on a free port of 127.0.0.1 and send a sample message to it
    /// over STARTTLS with AUTH; prints the transcript and where the server stored the message.
    #[arg(long, exclusive = true)]
    demo: bool,
}

/// The `--tls` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Tls {
    None,
    Opportunistic,
    Required,
    Wrapper,
}

/// The `--roots` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RootSource {
    Webpki,
    Platform,
}

/// The values of on/off flags such as `--chunking`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

/// Exit codes from `sysexits.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Exit {
    Ok = 0,
    Usage = 64,
    NoInput = 66,
    Unavailable = 69,
    Software = 70,
    TempFail = 75,
}

impl Exit {
    /// Returns the code for an error: 69 when retrying cannot help, 75 otherwise.
    fn of(error: &Error) -> Self {
        match error {
            Error::InvalidServer(_) | Error::InvalidTlsServerName(_) => Self::Usage,
            Error::CaFile { .. } => Self::NoInput,
            _ if error.is_permanent() => Self::Unavailable,
            _ => Self::TempFail,
        }
    }

    /// Combines the codes of two messages: a permanent failure outweighs a transient one, which
    /// outweighs success.
    fn worst(self, other: Self) -> Self {
        let rank = |exit: Self| match exit {
            Self::Ok => 0,
            Self::TempFail => 1,
            _ => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// An error that ends the program: the message for stderr and the exit code.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    /// Builds the failure for a library error, with a hint when the flags suggest a cause.
    fn of(error: &Error, tls: Tls) -> Self {
        Self {
            exit: Exit::of(error),
            message: describe(error, tls),
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    fn no_input(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::NoInput,
            message: message.into(),
        }
    }
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

    let result = match cli.demo {
        true => demo::run(),
        false => run(&cli),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(failure) => {
            eprintln!("smtp-send: {}", failure.message);
            failure.exit
        }
    };
    ExitCode::from(exit as u8)
}

/// Sends the message as the flags set it up and returns the exit code for the replies.
fn run(cli: &Cli) -> Result<Exit, Failure> {
    let envelope = envelope(cli)?;
    let mut options = options(cli)?;
    options.session.credentials = credentials(cli, options.session.mechanism.as_ref())?;
    let message = read_message(cli)?;
    let server = cli
        .server
        .as_deref()
        .expect("clap requires --server without --demo");

    let connected = if cli.transcript {
        Client::connect_with_transcript(server, options, |line, tls| {
            println!("{}", TranscriptText::new(line, tls));
        })
    } else {
        Client::connect(server, options)
    };
    let mut client = connected.map_err(|error| Failure::of(&error, cli.tls))?;

    let start = Instant::now();
    let results = match cli.count {
        1 => vec![client.send(envelope, message)],
        count => client.send_batch((0..count).map(|_| (envelope.clone(), message.clone()))),
    };
    let elapsed = start.elapsed();

    let mut exit = Exit::Ok;
    for result in &results {
        exit = exit.worst(report(result, cli.tls));
    }
    if results.len() > 1 {
        print_summary(&results, elapsed);
    }

    // The replies decide the exit code; a failed QUIT after them changes nothing.
    let _quit = client.quit();
    Ok(exit)
}

/// Prints the outcome of one message and returns its exit code.
fn report(result: &Result<Delivery, Error>, tls: Tls) -> Exit {
    let delivery = match result {
        Ok(delivery) => delivery,
        Err(error) => {
            if let Some(smtp_proto::client::Error::RecipientsRejected { recipients }) = error.smtp()
            {
                recipients.iter().for_each(print_recipient);
            }
            eprintln!("smtp-send: {}", describe(error, tls));
            return Exit::of(error);
        }
    };

    delivery.recipients().iter().for_each(print_recipient);
    println!("message accepted: {}", delivery.reply());
    let rejected: Vec<&RecipientResult> = delivery.rejected().collect();
    if rejected.is_empty() {
        return Exit::Ok;
    }

    let total = delivery.recipients().len();
    eprintln!(
        "smtp-send: the message is queued for {} of {total} recipients: a retry with every \
         recipient delivers it again to those",
        total - rejected.len()
    );
    if rejected.iter().any(|result| result.is_permanent()) {
        Exit::Unavailable
    } else {
        Exit::TempFail
    }
}

/// Prints the `--count` summary: how many messages every recipient accepted, how many only
/// some, how many failed, and how many have an unknown outcome.
fn print_summary(results: &[Result<Delivery, Error>], elapsed: Duration) {
    let (mut every, mut some, mut failed, mut unknown) = (0, 0, 0, 0);
    for result in results {
        match result {
            Ok(delivery) if delivery.rejected().next().is_none() => every += 1,
            Ok(_) => some += 1,
            Err(error) if is_outcome_unknown(error) => unknown += 1,
            Err(_) => failed += 1,
        }
    }

    let seconds = elapsed.as_secs_f64();
    println!(
        "{} messages: {every} accepted by every recipient, {some} for some, {failed} failed, \
         {unknown} outcome unknown ({seconds:.3} seconds, {:.1} messages per second)",
        results.len(),
        results.len() as f64 / seconds.max(f64::EPSILON),
    );
}

/// Returns the error's text, followed by a hint when the flags suggest a likely cause.
fn describe(error: &Error, tls: Tls) -> String {
    let hint = match error {
        Error::Smtp(smtp_proto::client::Error::Timeout {
            stage: Stage::Greeting,
        }) if tls != Tls::Wrapper => Some("is this an implicit-TLS port? try --tls wrapper"),
        Error::Tls(rustls::Error::InvalidMessage(_)) if tls == Tls::Wrapper => {
            Some("the server answered in clear text: try --tls required (STARTTLS)")
        }
        Error::Smtp(smtp_proto::client::Error::AuthRequiresTls) => Some(
            "the server offers no STARTTLS: pass --allow-insecure-auth to send the password \
             without TLS",
        ),
        _ if is_outcome_unknown(error) => Some("a retry may deliver the message a second time"),
        _ => None,
    };
    match hint {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_string(),
    }
}

fn is_outcome_unknown(error: &Error) -> bool {
    matches!(
        error.smtp(),
        Some(smtp_proto::client::Error::OutcomeUnknown { .. })
    )
}

fn print_recipient(result: &RecipientResult) {
    let verdict = if result.is_accepted() {
        "accepted"
    } else {
        "rejected"
    };
    println!("{verdict} <{}>: {}", result.recipient(), result.reply());
}

/// Builds the envelope from --from and --to; addresses may be written with or without angle
/// brackets.
fn envelope(cli: &Cli) -> Result<Envelope, Failure> {
    let from = strip_brackets(
        cli.from
            .as_deref()
            .expect("clap requires --from without --demo"),
    );
    let reverse_path = ReversePath::parse(from)
        .map_err(|error| Failure::usage(format!("invalid --from address {from:?}: {error}")))?;

    let mut recipients = Vec::with_capacity(cli.to.len());
    for to in &cli.to {
        let to = strip_brackets(to);
        let mailbox = Mailbox::parse(to)
            .map_err(|error| Failure::usage(format!("invalid --to address {to:?}: {error}")))?;
        recipients.push(mailbox);
    }

    Envelope::new(reverse_path, recipients)
        .map_err(|error| Failure::usage(format!("invalid envelope: {error}")))
}

fn strip_brackets(address: &str) -> &str {
    match address
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
    {
        Some(inner) => inner,
        None => address,
    }
}

/// Builds the client options from the flags, all but the credentials.
fn options(cli: &Cli) -> Result<Options, Failure> {
    let mut options = Options::default();
    options.session.tls = match cli.tls {
        Tls::None => TlsPolicy::None,
        Tls::Opportunistic => TlsPolicy::Opportunistic,
        Tls::Required => TlsPolicy::Required,
        Tls::Wrapper => TlsPolicy::Wrapper,
    };
    options.session.ehlo_name = ehlo_name(cli.helo.as_deref())?;
    options.session.allow_insecure_auth = cli.allow_insecure_auth;
    options.session.chunking = cli.chunking == Switch::On;
    options.session.transcript = cli.transcript;
    options.accept_invalid_certs = cli.accept_invalid_certs;
    options.roots = match (&cli.ca_file, cli.roots) {
        (Some(path), _) => Roots::CaFile(path.clone()),
        (None, Some(RootSource::Platform)) => Roots::Platform,
        (None, Some(RootSource::Webpki) | None) => Roots::WebPki,
    };

    if let Some(timeout) = cli.timeout {
        options.session.timeouts = Timeouts::uniform(timeout);
        options.connect_timeout = timeout;
    }
    options.session.mechanism = cli.auth.as_deref().map(Mechanism::from_name);
    Ok(options)
}

/// Parses a `--timeout` value: a positive number of seconds up to [`MAX_TIMEOUT`].
fn parse_timeout(value: &str) -> Result<Duration, String> {
    let expected = "expected a positive number of seconds, such as 30 or 2.5";
    let seconds: f64 = value.parse().map_err(|_| expected.to_owned())?;
    if seconds > MAX_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "the value is too large: the maximum is {} seconds",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| expected.to_owned())
}

/// Returns the EHLO name: the flag's value, else the host name if it is fully qualified and a
/// valid domain, else `localhost`. A name without a dot, such as `vm`, is no FQDN, which RFC
/// 5321 section 4.1.1.1 asks for, and some servers reject it.
fn ehlo_name(flag: Option<&str>) -> Result<Domain, Failure> {
    if let Some(name) = flag {
        return Domain::parse(name)
            .map_err(|error| Failure::usage(format!("invalid --helo name {name:?}: {error}")));
    }

    let host = gethostname::gethostname();
    let parsed = host
        .to_str()
        .filter(|host| host.contains('.'))
        .and_then(|host| Domain::parse(host).ok());
    Ok(parsed.unwrap_or_else(|| Options::default().session.ehlo_name))
}

/// Builds the AUTH credentials from --auth-user and the password, and checks both before any
/// connection: an empty value or one with NUL, CR or LF cannot authenticate.
fn credentials(cli: &Cli, mechanism: Option<&Mechanism>) -> Result<Option<Credentials>, Failure> {
    let Some(user) = &cli.auth_user else {
        return Ok(None);
    };
    if user.is_empty() {
        return Err(Failure::usage(
            "--auth-user is empty: pass the user name to authenticate as",
        ));
    }
    if has_nul_or_line_break(user) {
        return Err(Failure::usage(format!(
            "invalid --auth-user {user:?}: a user name must not contain NUL, CR or LF"
        )));
    }
    if cli.tls == Tls::None && !cli.allow_insecure_auth {
        return Err(Failure::usage(
            "--auth-user with --tls none sends the password in clear text: pass \
             --allow-insecure-auth to allow that, or use --tls required",
        ));
    }

    let (password, origin) = password(cli, user)?;
    if password.is_empty() {
        return Err(Failure::usage(format!(
            "the password {origin} is empty: AUTH needs a password or OAuth token"
        )));
    }
    if has_nul_or_line_break(&password) {
        return Err(Failure::usage(format!(
            "the password {origin} contains NUL, CR or LF, which AUTH cannot send: remove them"
        )));
    }

    Ok(Some(match mechanism {
        Some(Mechanism::XOAuth2 | Mechanism::OAuthBearer) => {
            Credentials::oauth2(user.as_str(), password)
        }
        _ => Credentials::password(user.as_str(), password),
    }))
}

fn has_nul_or_line_break(text: &str) -> bool {
    text.contains(['\0', '\r', '\n'])
}

/// Reads the AUTH password from the environment variable, the file, or the terminal, and
/// returns it with a phrase naming where it came from, for error messages.
fn password(cli: &Cli, user: &str) -> Result<(String, String), Failure> {
    if let Some(variable) = &cli.auth_password_env {
        let password = std::env::var(variable).map_err(|error| {
            Failure::usage(format!(
                "cannot read the password from environment variable {variable} \
                 (--auth-password-env): {error}"
            ))
        })?;
        let origin = format!("in environment variable {variable} (--auth-password-env)");
        return Ok((password, origin));
    }

    if let Some(path) = &cli.auth_password_file {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Failure::no_input(format!(
                "cannot read --auth-password-file {}: {error}",
                path.display()
            ))
        })?;
        let first_line = text.lines().next().unwrap_or_default();
        let origin = format!(
            "on the first line of --auth-password-file {}",
            path.display()
        );
        return Ok((first_line.to_owned(), origin));
    }

    // A prompt needs the terminal on stdin, and stdin must not also carry the message.
    let message_from_file = cli
        .data
        .as_deref()
        .is_some_and(|path| path != Path::new("-"));
    if !(message_from_file && std::io::stdin().is_terminal()) {
        return Err(Failure::usage(
            "--auth-user needs a password: pass --auth-password-env VAR or --auth-password-file \
             PATH (a password prompt needs a terminal on stdin and the message in --data PATH)",
        ));
    }
    let password =
        rpassword::prompt_password(format!("Password for {user}: ")).map_err(|error| Failure {
            exit: Exit::Software,
            message: format!("cannot read the password from the terminal: {error}"),
        })?;
    Ok((password, "typed at the prompt".to_owned()))
}

/// Reads the message from the --data file, or from stdin for `-` or no flag. An empty message
/// is an error unless --allow-empty is set.
fn read_message(cli: &Cli) -> Result<Bytes, Failure> {
    let file = cli.data.as_deref().filter(|path| *path != Path::new("-"));
    let message = match file {
        Some(path) => std::fs::read(path).map_err(|error| {
            Failure::no_input(format!(
                "cannot read --data file {}: {error}",
                path.display()
            ))
        })?,
        None => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("smtp-send: reading the message from standard input; end with Ctrl-D");
            }
            let mut message = Vec::new();
            stdin.read_to_end(&mut message).map_err(|error| {
                Failure::no_input(format!("cannot read the message from stdin: {error}"))
            })?;
            message
        }
    };

    if message.is_empty() && !cli.allow_empty {
        let origin = match file {
            Some(path) => format!("--data file {}", path.display()),
            None => "standard input".to_owned(),
        };
        return Err(Failure::usage(format!(
            "the message from {origin} is empty: pass a message with --data PATH or on standard \
             input, or --allow-empty to send an empty one"
        )));
    }
    Ok(Bytes::from(message))
}

/// Logs to stderr at the levels `RUST_LOG` names, such as `debug` or `smtp_blocking=trace`;
/// without `RUST_LOG`, nothing is logged.
#[cfg(feature = "tracing")]
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let Ok(filter) = std::env::var("RUST_LOG") else {
        return;
    };
    let targets: tracing_subscriber::filter::Targets = match filter.parse() {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("smtp-send: ignoring invalid RUST_LOG value {filter:?}: {error}");
            return;
        }
    };
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(targets);
    if let Err(error) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("smtp-send: logging is off: {error}");
    }
}

#[cfg(not(feature = "tracing"))]
fn init_logging() {}

/// The longest `--timeout`. No SMTP reply is worth waiting longer for (RFC 5321 section
/// 4.5.3.2 suggests at most 10 minutes), and far larger values overflow the `Instant +
/// Duration` deadline arithmetic, which panics.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The help text after the flags: exit codes and what a partial acceptance means.
const EXIT_CODES_HELP: &str = "\
Exit codes (sysexits.h):
  0   every recipient and every message accepted
  64  invalid flag, address or input, such as an empty message, an empty password or an unset
      --auth-password-env variable; nothing was sent
  66  the --data, --auth-password-file or --ca-file file is unreadable (or the CA file holds no
      certificate); nothing was sent
  69  permanent failure: a 5xx reply, a refused policy, or a failed TLS set-up (certificate or
      handshake)
  70  internal error
  75  transient failure (4xx reply, timeout, lost connection) or unknown outcome

Partial acceptance: with several --to recipients, a message that some recipients accepted and
others rejected is queued for the accepted ones. The exit code is then 69 if a rejection is
permanent, else 75, and the `accepted <ADDR>` lines show which recipients have the message. A
blind retry with every recipient delivers a second copy to those.

Unknown outcome: when the connection closes or times out after the whole message went out, the
server may have queued it. The exit code is 75, and a retry may deliver the message twice.";
