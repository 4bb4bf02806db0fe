//! Replays the fuzz inputs kept in the repository through the fuzz targets' invariant checks:
//! every file in `fuzz/seeds/TARGET/` and `fuzz/regressions/TARGET/`. The checks are the same
//! source the targets build, included from `fuzz/src/`, so a crash that the fuzzer found stays
//! fixed under a stable `cargo test`.
#![expect(
    clippy::disallowed_methods,
    reason = "the session check takes one real instant as the start of its fake clock"
)]

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[expect(
    unreachable_pub,
    reason = "the checks are public in the fuzz crate that also builds them"
)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

#[test]
fn reply_inputs_replay() {
    replay("reply", fuzz::reply::check);
}

#[test]
fn capabilities_inputs_replay() {
    replay("capabilities", fuzz::capabilities::check);
}

#[test]
fn sasl_challenge_inputs_replay() {
    replay("sasl_challenge", fuzz::sasl_challenge::check);
}

#[test]
fn data_encoder_inputs_replay() {
    replay("data_encoder", fuzz::data_encoder::check);
}

#[test]
fn client_session_inputs_replay() {
    let start = Instant::now();
    replay("client_session", |data| {
        fuzz::client_session::check(data, start)
    });
}

/// Runs `check` on every seed and regression input of `target` and fails with the names of the
/// files whose check panicked.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let seeds = files(&root.join("seeds").join(target));
    assert!(
        !seeds.is_empty(),
        "no seeds for {target}: run fuzz/make_seeds.py"
    );
    let regressions = files(&root.join("regressions").join(target));

    let mut failed = Vec::new();
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("fuzz inputs are readable");
        if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target} invariants broken by {failed:#?}"
    );
}

/// Lists the files in `directory`, sorted, or none when it does not exist.
fn files(directory: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("the folder can be listed").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
}
