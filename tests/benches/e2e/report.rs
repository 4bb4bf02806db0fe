//! Measurements of the client processes and the Markdown report made from them.

use std::fmt::Write as _;
use std::fs;

use crate::{Pinning, Scenario};

/// The resource use of one client process, as `measure` printed it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measurement {
    /// Messages sent, or idle sessions opened.
    pub(crate) count: usize,
    pub(crate) elapsed_us: u64,
    pub(crate) cpu_us: u64,
    pub(crate) maxrss_kib: u64,
}

impl Measurement {
    /// Parses the output of `measure` and checks the client's own `delivered=` count, when it
    /// printed one, against `count`.
    pub(crate) fn parse(stdout: &str, count: usize) -> Result<Self, String> {
        let field = |line: &str, key: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix(key))
                .and_then(|value| value.parse().ok())
        };
        let line = stdout
            .lines()
            .find(|line| line.starts_with("measure:"))
            .ok_or_else(|| format!("no measure line in the client output: {stdout}"))?;
        let value = |key| field(line, key).ok_or_else(|| format!("no {key} in {line:?}"));

        let delivered = stdout.lines().find_map(|line| field(line, "delivered="));
        if let Some(delivered) = delivered {
            if delivered != count as u64 {
                return Err(format!(
                    "the client delivered {delivered} of {count} messages"
                ));
            }
        }
        Ok(Self {
            count,
            elapsed_us: value("elapsed_us=")?,
            cpu_us: value("cpu_us=")?,
            maxrss_kib: value("maxrss_kib=")?,
        })
    }

    /// Messages, or sessions, per second of wall time.
    pub(crate) fn rate(&self) -> f64 {
        self.count as f64 * 1e6 / self.elapsed_us.max(1) as f64
    }

    /// Client CPU time, user and system, per message or session.
    pub(crate) fn cpu_per_unit(&self) -> f64 {
        self.cpu_us as f64 / self.count.max(1) as f64
    }

    fn rss_mib(&self) -> f64 {
        self.maxrss_kib as f64 / 1024.0
    }
}

/// The repeated measurements of one row.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) label: &'static str,
    pub(crate) ours: bool,
    pub(crate) count: usize,
    pub(crate) measurements: Vec<Measurement>,
}

impl Row {
    fn median(&self, value: impl Fn(&Measurement) -> f64) -> f64 {
        median(self.measurements.iter().map(value).collect())
    }

    /// Returns the median over the rounds of this row's value divided by `peer`'s in the same
    /// round. Rows of one round run one after the other, so the pair saw about the same load.
    fn paired_ratio(&self, peer: &Self, value: impl Fn(&Measurement) -> f64) -> f64 {
        let ratios = self
            .measurements
            .iter()
            .zip(&peer.measurements)
            .map(|(this, other)| value(this) / value(other))
            .collect();
        median(ratios)
    }

    fn range(&self, value: impl Fn(&Measurement) -> f64) -> (f64, f64) {
        let values = self.measurements.iter().map(value);
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        })
    }
}

/// Returns the median of `values`, or NaN when there are none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        length if length % 2 == 1 => values[length / 2],
        length => (values[length / 2 - 1] + values[length / 2]) / 2.0,
    }
}

/// The report of one run: the machine, then one section per scenario.
#[derive(Debug)]
pub(crate) struct Report {
    header: String,
    sections: String,
}

impl Report {
    pub(crate) fn new(smoke: bool, repeat: usize) -> Self {
        let mut header = String::new();
        let _ = writeln!(header, "## Run");
        let _ = writeln!(header);
        let _ = writeln!(header, "- CPU: {}", cpu_model());
        let _ = writeln!(
            header,
            "- cores: {}",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let _ = writeln!(
            header,
            "- kernel: {}",
            read_trimmed("/proc/sys/kernel/osrelease")
        );
        let _ = writeln!(
            header,
            "- load average at the start (1, 5, 15 min): {}",
            load_average()
        );
        let _ = writeln!(
            header,
            "- {} run, {repeat} rounds of every row; figures are medians, ranges min–max",
            if smoke { "smoke" } else { "full" }
        );
        Self {
            header,
            sections: String::new(),
        }
    }

    pub(crate) fn add(&mut self, scenario: &Scenario, rows: Vec<Row>) {
        let out = &mut self.sections;
        let unit = if scenario.idle { "session" } else { "message" };
        let pinning = match scenario.pinning {
            Pinning::DifferentCores => Pinning::DifferentCores.label(),
            Pinning::SameCore => Pinning::SameCore.label(),
        };
        let _ = writeln!(out, "\n### {} (`{}`)\n", scenario.title, scenario.name);
        let _ = writeln!(out, "{pinning}.\n");
        let _ = writeln!(
            out,
            "| client | {unit}s | {unit}s/s (min–max) | CPU µs per {unit} (min–max) | \
             peak RSS MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for row in &rows {
            let (rate_low, rate_high) = row.range(Measurement::rate);
            let (cpu_low, cpu_high) = row.range(Measurement::cpu_per_unit);
            let _ = writeln!(
                out,
                "| {}{} | {} | {:.0} ({:.0}–{:.0}) | {:.1} ({:.1}–{:.1}) | {:.1} |",
                row.label,
                if row.ours { " **(this project)**" } else { "" },
                row.count,
                row.median(Measurement::rate),
                rate_low,
                rate_high,
                row.median(Measurement::cpu_per_unit),
                cpu_low,
                cpu_high,
                row.median(Measurement::rss_mib),
            );
        }

        for ours in rows.iter().filter(|row| row.ours) {
            let _ = writeln!(
                out,
                "\nRatios of {}: the median over the rounds of this row's figure divided by \
                 the peer's in the same round:\n",
                ours.label
            );
            let _ = writeln!(
                out,
                "| peer | {unit}s/s: this ÷ peer | CPU per {unit}: this ÷ peer | \
                 peak RSS: this ÷ peer |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|");
            for peer in rows.iter().filter(|row| !std::ptr::eq(*row, ours)) {
                let ratio = |value: fn(&Measurement) -> f64| ours.paired_ratio(peer, value);
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.2} | {:.2} |",
                    peer.label,
                    ratio(Measurement::rate),
                    ratio(Measurement::cpu_per_unit),
                    ratio(Measurement::rss_mib),
                );
            }
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut text = self.header.clone();
        let _ = writeln!(
            text,
            "- load average at the end (1, 5, 15 min): {}",
            load_average()
        );
        text.push_str(&self.sections);
        text
    }
}

fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown".to_owned(),
            |(_, model)| model.trim().to_owned(),
        )
}

fn load_average() -> String {
    let text = read_trimmed("/proc/loadavg");
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
