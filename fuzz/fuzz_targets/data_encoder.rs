//! Fuzz target `data_encoder`; `smtp_proto_fuzz::data_encoder::check` states the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto_fuzz::data_encoder::check(data));
