//! Fuzz target `sasl_challenge`; `smtp_proto_fuzz::sasl_challenge::check` states the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto_fuzz::sasl_challenge::check(data));
