//! Fuzz target `capabilities`; `smtp_proto_fuzz::capabilities::check` states the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto_fuzz::capabilities::check(data));
