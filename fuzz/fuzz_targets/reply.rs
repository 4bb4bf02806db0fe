//! Fuzz target `reply`; `smtp_proto_fuzz::reply::check` states the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto_fuzz::reply::check(data));
