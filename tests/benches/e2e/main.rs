//! End-to-end benchmark: this project's client beside lettre and Postfix's smtp-source, sending
//! to Postfix's smtp-sink (or to a small sink of this benchmark for CHUNKING) on loopback, all in
//! the same run on the same machine.
//!
//! `cargo bench -p smtp-interop --bench e2e -- run` runs every scenario and prints a Markdown
//! report; `run --smoke` sends a few hundred messages and checks the counts, for CI. Each client
//! runs in a process of its own under `measure`, which reports the wall time, the CPU time and
//! the peak RSS of that process from `getrusage`. The server and the client are pinned to
//! different cores, or to the same core, with `taskset`. After every run the sink's own counter
//! must equal the number of messages sent, or the benchmark fails.
#![forbid(unsafe_code)]

mod clients;
mod relay;
mod report;
mod sink;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::sys::resource::{UsageWho, getrusage};

use clients::{BoxError, Kind, Workload};
use report::{Measurement, Report, Row};

#[derive(Debug, Parser)]
#[command(about = "End-to-end SMTP client benchmark against smtp-sink on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Step,
}

#[derive(Debug, Subcommand)]
enum Step {
    /// Runs the scenarios and prints the report.
    Run {
        /// Sends a few hundred messages per row and skips the slow rows, for CI.
        #[arg(long)]
        smoke: bool,
        /// How many rounds run, each running every row once; the report gives the median and
        /// the range of each row.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Runs only the scenarios whose name contains this text, such as `1k` or `idle`.
        #[arg(long)]
        only: Option<String>,
        /// Also writes the report to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Runs a command and prints its wall time, CPU time and peak RSS.
    Measure {
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Runs one client.
    Client {
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        port: u16,
        /// Messages in total, over all connections.
        #[arg(long, default_value_t = 0)]
        messages: usize,
        /// Message size in octets, header section included.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        connections: usize,
    },
    /// Runs the benchmark's own sink, which offers PIPELINING and optionally CHUNKING.
    Sink {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        chunking: bool,
    },
    /// Relays connections with TCP_NODELAY and TCP_QUICKACK, for lettre's blocking transport.
    Relay {
        #[arg(long)]
        listen: u16,
        #[arg(long)]
        upstream: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Step::Run {
            smoke,
            repeat,
            only,
            output,
        } => run(smoke, repeat.max(1), only.as_deref(), output.as_deref()),
        Step::Measure { command } => measure(&command),
        Step::Client {
            kind,
            port,
            messages,
            size,
            connections,
        } => clients::run(
            kind,
            &Workload {
                port,
                messages,
                size,
                connections,
            },
        ),
        Step::Sink { port, chunking } => sink::run(port, chunking).map_err(Into::into),
        Step::Relay { listen, upstream } => relay::run(listen, upstream).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("e2e: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command`, waits for it, and prints its resource use as one `measure:` line.
fn measure(command: &[String]) -> Result<(), BoxError> {
    let (program, arguments) = command.split_first().ok_or("measure needs a command")?;
    let started = Instant::now();
    let status = Command::new(program).args(arguments).status()?;
    let elapsed = started.elapsed();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;

    let micros = |time: nix::sys::time::TimeVal| time.tv_sec() * 1_000_000 + time.tv_usec();
    println!(
        "measure: elapsed_us={} cpu_us={} maxrss_kib={}",
        elapsed.as_micros(),
        micros(usage.user_time()) + micros(usage.system_time()),
        usage.max_rss(),
    );
    if !status.success() {
        return Err(format!("{program} failed: {status}").into());
    }
    Ok(())
}

/// Which server a scenario sends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// Postfix's smtp-sink; without `pipelining` it runs with `-p`.
    SmtpSink { pipelining: bool },
    /// The benchmark's own sink, with PIPELINING and CHUNKING.
    ChunkingSink,
}

/// Where the client runs relative to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pinning {
    DifferentCores,
    SameCore,
}

impl Pinning {
    fn cores(self) -> (&'static str, &'static str) {
        match self {
            Self::DifferentCores => ("0", "1"),
            Self::SameCore => ("0", "0"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::DifferentCores => "client and server on different cores",
            Self::SameCore => "client and server on the same core",
        }
    }
}

/// The client of one row.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// One of the clients of this benchmark.
    Client(Kind),
    /// Postfix's smtp-source, lock-step, with `-s` sessions in parallel.
    SmtpSource,
}

/// One row of a scenario.
#[derive(Clone, Copy, Debug)]
struct Plan {
    label: &'static str,
    peer: Peer,
    /// Messages (or idle sessions) in the full run.
    count: usize,
    /// Through the NODELAY and QUICKACK relay.
    relay: bool,
    /// This project's client: the report gives its ratio to each other row.
    ours: bool,
    /// Left out of the smoke run, because it takes seconds even for a few messages.
    slow: bool,
}

/// One scenario: a server, a message size, a connection count, a pinning and its rows.
#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    title: &'static str,
    server: Server,
    size: usize,
    connections: usize,
    pinning: Pinning,
    /// Each row opens `count` idle sessions instead of sending messages.
    idle: bool,
    plans: Vec<Plan>,
}

fn run(
    smoke: bool,
    repeat: usize,
    only: Option<&str>,
    output: Option<&Path>,
) -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    let scratch = std::env::temp_dir().join(format!("smtp-e2e-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;
    let mut report = Report::new(smoke, repeat);

    for scenario in scenarios() {
        if only.is_some_and(|only| !scenario.name.contains(only)) {
            continue;
        }
        if smoke && !SMOKE_SCENARIOS.contains(&scenario.name) {
            continue;
        }
        let plans: Vec<(&Plan, usize)> = scenario
            .plans
            .iter()
            .filter(|plan| !(smoke && plan.slow))
            .map(|plan| {
                (
                    plan,
                    if smoke {
                        plan.count.min(SMOKE_COUNT)
                    } else {
                        plan.count
                    },
                )
            })
            .collect();

        // Each round runs every row once, so a burst of load from elsewhere on the machine
        // spreads over the rows instead of falling on every run of one row.
        let mut measurements = vec![Vec::with_capacity(repeat); plans.len()];
        for _ in 0..repeat {
            for (index, &(plan, count)) in plans.iter().enumerate() {
                let measurement = run_once(&exe, &scratch, &scenario, plan, count)?;
                eprintln!(
                    "{} / {}: {:.0} per second, {:.1} µs CPU each",
                    scenario.name,
                    plan.label,
                    measurement.rate(),
                    measurement.cpu_per_unit()
                );
                measurements[index].push(measurement);
            }
        }
        let rows = plans
            .iter()
            .zip(measurements)
            .map(|(&(plan, count), measurements)| Row {
                label: plan.label,
                ours: plan.ours,
                count,
                measurements,
            })
            .collect();
        report.add(&scenario, rows);
    }

    let text = report.render();
    println!("{text}");
    if let Some(output) = output {
        fs::write(output, &text)?;
    }
    let _ignored = fs::remove_dir_all(&scratch);
    Ok(())
}

/// Starts the server, runs one client under `measure`, and checks the server's counter.
fn run_once(
    exe: &Path,
    scratch: &Path,
    scenario: &Scenario,
    plan: &Plan,
    count: usize,
) -> Result<Measurement, BoxError> {
    let (server_core, client_core) = scenario.pinning.cores();
    let port = free_port()?;
    let counter_file = scratch.join(format!("sink-{port}.out"));
    let mut children = Children::default();

    let server = match scenario.server {
        Server::SmtpSink { pipelining } => {
            let mut command = Command::new("taskset");
            command.args(["-c", server_core, SMTP_SINK, "-u", "nobody", "-c"]);
            if !pipelining {
                command.arg("-p");
            }
            command.args(["-m", "20000", &format!("127.0.0.1:{port}"), "1024"]);
            command
        }
        Server::ChunkingSink => {
            let mut command = Command::new("taskset");
            command.args(["-c", server_core]).arg(exe).args([
                "sink",
                "--chunking",
                "--port",
                &port.to_string(),
            ]);
            command
        }
    };
    children.spawn(server, &counter_file)?;
    wait_for_port(port)?;
    // The readiness probe is a session of its own.
    let probe_sessions = 1;

    let mut client_port = port;
    if plan.relay {
        client_port = free_port()?;
        let mut relay = Command::new("taskset");
        relay.args(["-c", server_core]).arg(exe).args([
            "relay",
            "--listen",
            &client_port.to_string(),
            "--upstream",
            &port.to_string(),
        ]);
        children.spawn(relay, &scratch.join(format!("relay-{client_port}.out")))?;
        wait_for_port(client_port)?;
    }

    let mut client = Command::new("taskset");
    client
        .args(["-c", client_core])
        .arg(exe)
        .args(["measure", "--"]);
    let connections = scenario.connections.to_string();
    let (messages, sessions) = if scenario.idle {
        (0, count)
    } else {
        (count, 0)
    };
    match plan.peer {
        Peer::Client(kind) => {
            let kind =
                clap::ValueEnum::to_possible_value(&kind).ok_or("every client kind has a name")?;
            client.arg(exe).args([
                "client",
                "--kind",
                kind.get_name(),
                "--port",
                &client_port.to_string(),
                "--messages",
                &messages.to_string(),
                "--size",
                &scenario.size.to_string(),
                "--connections",
                &if scenario.idle {
                    count.to_string()
                } else {
                    connections.clone()
                },
            ]);
        }
        Peer::SmtpSource => {
            // smtp-source's -l counts the payload only; its header section adds about 150 octets.
            let payload = scenario
                .size
                .saturating_sub(SMTP_SOURCE_HEADERS)
                .to_string();
            client.args([
                SMTP_SOURCE,
                "-d",
                "-l",
                &payload,
                "-m",
                &count.to_string(),
                "-s",
                &connections,
                "-M",
                "bench.example.org",
                "-f",
                "sender@example.org",
                "-t",
                "recipient@example.net",
                &format!("127.0.0.1:{client_port}"),
            ]);
        }
    }
    let output = client.stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} in {} failed: {}\n{stdout}",
            plan.label, scenario.name, output.status
        )
        .into());
    }
    let measurement = Measurement::parse(&stdout, count)?;

    // The sink counts messages at the end of data and sessions at their end.
    let (expected_messages, expected_sessions) = match (scenario.idle, plan.peer) {
        (true, _) => (0, sessions + probe_sessions),
        (false, Peer::Client(Kind::RawNoop)) => (0, 0),
        (false, _) => (messages, 0),
    };
    let counted = wait_for_counters(&counter_file, expected_messages, expected_sessions)?;
    if counted.messages != expected_messages as u64
        || (scenario.idle && counted.sessions != expected_sessions as u64)
    {
        return Err(format!(
            "{} in {}: the sink counted {} messages in {} sessions, expected {} messages{}",
            plan.label,
            scenario.name,
            counted.messages,
            counted.sessions,
            expected_messages,
            if scenario.idle {
                format!(" in {expected_sessions} sessions")
            } else {
                String::new()
            }
        )
        .into());
    }
    drop(children);
    Ok(measurement)
}

/// The last counters a sink printed.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    sessions: u64,
    messages: u64,
}

/// Reads the sink's counters until they reach the expected values or stop changing.
fn wait_for_counters(file: &Path, messages: usize, sessions: usize) -> Result<Counters, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counters = last_counters(&fs::read_to_string(file)?);
        let reached = counters.messages >= messages as u64 && counters.sessions >= sessions as u64;
        if reached || Instant::now() > deadline {
            // Counters that are already past the expectation would grow further on a miscount.
            thread::sleep(Duration::from_millis(50));
            return Ok(last_counters(&fs::read_to_string(file)?));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Parses the last `sess=N ... mesg=M` record; smtp-sink separates them with CR.
fn last_counters(text: &str) -> Counters {
    let Some(record) = text
        .split(['\r', '\n'])
        .rfind(|record| record.contains("mesg="))
    else {
        return Counters::default();
    };
    let value = |key: &str| {
        record
            .split_whitespace()
            .find_map(|field| field.strip_prefix(key))
            .and_then(|number| number.parse().ok())
            .unwrap_or(0)
    };
    Counters {
        sessions: value("sess="),
        messages: value("mesg="),
    }
}

/// Server processes of one run, killed and reaped when dropped.
#[derive(Debug, Default)]
struct Children(Vec<Child>);

impl Children {
    fn spawn(&mut self, mut command: Command, stdout: &Path) -> std::io::Result<()> {
        let child = command
            .stdout(fs::File::create(stdout)?)
            .stderr(Stdio::inherit())
            .spawn()?;
        self.0.push(child);
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ignored = child.kill();
            let _ignored = child.wait();
        }
    }
}

/// Returns a loopback port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing accepts connections on 127.0.0.1:{port}").into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Returns the scenarios of a full run, in report order.
fn scenarios() -> Vec<Scenario> {
    let smtp_sink = Server::SmtpSink { pipelining: true };
    let one_k = |name, pinning| {
        let plans = vec![
            ours("smtp-blocking (send_batch)", Kind::SmtpProto, 10_000),
            peer(
                "hand-written, grouped (one round trip per message)",
                Kind::RawGrouped,
                10_000,
            ),
            peer("hand-written, lock-step", Kind::RawLockstep, 10_000),
            source("smtp-source -d", 10_000),
            slow("lettre blocking, as released", Kind::Lettre, 100),
            relayed(
                "lettre blocking, NODELAY/QUICKACK relay",
                Kind::Lettre,
                10_000,
            ),
            relayed(
                "hand-written lock-step, same relay",
                Kind::RawLockstep,
                10_000,
            ),
            slow("lettre tokio, as released", Kind::LettreTokio, 100),
            lettre_tokio_nodelay(10_000),
            peer("NOOP round trips", Kind::RawNoop, 10_000),
        ];
        let title = "One connection, 10 000 messages of 1 KiB";
        Scenario::new(name, title, smtp_sink, 1024, 1, plans).pinned(pinning)
    };

    vec![
        one_k("1k", Pinning::DifferentCores),
        one_k("1k-same-core", Pinning::SameCore),
        Scenario::new(
            "100k",
            "One connection, 1 000 messages of 100 KiB",
            smtp_sink,
            100 * 1024,
            1,
            vec![
                ours("smtp-blocking (send_batch)", Kind::SmtpProto, 1_000),
                peer("hand-written, grouped", Kind::RawGrouped, 1_000),
                source("smtp-source -d", 1_000),
                slow("lettre blocking, as released", Kind::Lettre, 100),
                relayed(
                    "lettre blocking, NODELAY/QUICKACK relay",
                    Kind::Lettre,
                    1_000,
                ),
                lettre_tokio_nodelay(1_000),
            ],
        ),
        Scenario::new(
            "16-connections",
            "16 connections, 10 000 messages of 1 KiB",
            smtp_sink,
            1024,
            16,
            vec![
                ours("smtp-tokio, 16 tasks", Kind::SmtpTokio, 10_000),
                ours("smtp-blocking, 16 threads", Kind::SmtpProto, 10_000),
                source("smtp-source -d -s 16", 10_000),
                slow("lettre tokio, as released", Kind::LettreTokio, 1_000),
                lettre_tokio_nodelay(10_000),
            ],
        ),
        Scenario::new(
            "no-pipelining",
            "One connection, 10 000 messages of 1 KiB, smtp-sink -p (no PIPELINING)",
            Server::SmtpSink { pipelining: false },
            1024,
            1,
            vec![
                ours("smtp-blocking (send_batch)", Kind::SmtpProto, 10_000),
                peer(
                    "hand-written, lock-step (the limit)",
                    Kind::RawLockstep,
                    10_000,
                ),
                source("smtp-source -d", 10_000),
                lettre_tokio_nodelay(10_000),
            ],
        ),
        Scenario::new(
            "chunking",
            "One connection, 10 000 messages of 1 KiB, sink with PIPELINING and CHUNKING",
            Server::ChunkingSink,
            1024,
            1,
            vec![
                ours("smtp-blocking, BDAT", Kind::SmtpProto, 10_000),
                ours("smtp-blocking, DATA", Kind::SmtpProtoData, 10_000),
                peer("hand-written, grouped DATA", Kind::RawGrouped, 10_000),
                source("smtp-source -d", 10_000),
                lettre_tokio_nodelay(10_000),
            ],
        ),
        Scenario {
            idle: true,
            ..Scenario::new(
                "idle",
                "10 000 idle sessions in one process",
                smtp_sink,
                0,
                1,
                vec![
                    ours("smtp-blocking Client", Kind::IdleSmtpProto, 10_000),
                    peer("lettre SmtpConnection", Kind::IdleLettre, 10_000),
                ],
            )
        },
    ]
}

impl Scenario {
    /// Creates a scenario that sends messages, with the client and server on different cores.
    fn new(
        name: &'static str,
        title: &'static str,
        server: Server,
        size: usize,
        connections: usize,
        plans: Vec<Plan>,
    ) -> Self {
        Self {
            name,
            title,
            server,
            size,
            connections,
            pinning: Pinning::DifferentCores,
            idle: false,
            plans,
        }
    }

    fn pinned(self, pinning: Pinning) -> Self {
        Self { pinning, ..self }
    }
}

fn lettre_tokio_nodelay(count: usize) -> Plan {
    peer("lettre tokio, TCP_NODELAY", Kind::LettreTokioNodelay, count)
}

fn ours(label: &'static str, kind: Kind, count: usize) -> Plan {
    Plan {
        ours: true,
        ..peer(label, kind, count)
    }
}

fn peer(label: &'static str, kind: Kind, count: usize) -> Plan {
    Plan {
        label,
        peer: Peer::Client(kind),
        count,
        relay: false,
        ours: false,
        slow: false,
    }
}

fn relayed(label: &'static str, kind: Kind, count: usize) -> Plan {
    Plan {
        relay: true,
        ..peer(label, kind, count)
    }
}

fn slow(label: &'static str, kind: Kind, count: usize) -> Plan {
    Plan {
        slow: true,
        ..peer(label, kind, count)
    }
}

fn source(label: &'static str, count: usize) -> Plan {
    Plan {
        peer: Peer::SmtpSource,
        ..peer(label, Kind::RawLockstep, count)
    }
}

/// The scenarios of a smoke run.
const SMOKE_SCENARIOS: [&str; 4] = ["1k", "no-pipelining", "chunking", "idle"];
/// Messages, or idle sessions, per row in a smoke run.
const SMOKE_COUNT: usize = 300;
const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";
/// The octets of smtp-source's own header section, taken off its `-l` payload so its messages
/// are about as large as the others.
const SMTP_SOURCE_HEADERS: usize = 150;
