//! Fuzz target `client_session`; `smtp_proto_fuzz::client_session::check` states the
//! invariants.
#![no_main]

use std::sync::LazyLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

/// One start instant for every run, so runs differ only in their input.
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

fuzz_target!(|data: &[u8]| smtp_proto_fuzz::client_session::check(data, *START));
