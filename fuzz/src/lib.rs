//! The invariants of the smtp-proto fuzz targets, one module per target.
//!
//! Each module has a `check` function that takes the raw fuzz input and panics when an invariant
//! breaks. The targets in `fuzz_targets/` call these functions, and the stable test
//! `smtp-proto/tests/fuzz_regressions.rs` includes this file with `#[path]` and calls the same
//! functions on every file in `fuzz/seeds/` and `fuzz/regressions/`. The checks therefore use
//! only the public API of smtp-proto, apart from one memory check that only builds under
//! `cfg(fuzzing)`. `README.md` beside this crate lists the invariants and input layouts.
#![forbid(unsafe_code)]

pub mod capabilities;
pub mod client_session;
pub mod data_encoder;
pub mod reply;
pub mod sasl_challenge;

/// Splits `bytes` into chunks whose lengths come from `seed`, so one input byte chooses how a
/// stream is cut up.
///
/// Seed 0 gives one chunk, seed 1 gives one octet per chunk, and any other seed `n` gives
/// lengths from 1 to `n` drawn from a xorshift generator seeded with `n`.
pub fn split(bytes: &[u8], seed: u8) -> Vec<&[u8]> {
    if seed == 0 || bytes.is_empty() {
        return vec![bytes];
    }

    let mut state = u32::from(seed).wrapping_mul(0x9e37_79b9) | 1;
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let length = 1 + (state % u32::from(seed)) as usize;
        let (chunk, tail) = rest.split_at(length.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Panics unless every CR in `wire` is followed by LF and every LF follows a CR. `previous` is
/// the byte written before `wire`, if any; a CR at the end of `wire` is left to the next call.
pub fn assert_only_crlf(wire: &[u8], previous: Option<u8>) {
    for (index, &byte) in wire.iter().enumerate() {
        let before = index.checked_sub(1).map_or(previous, |i| Some(wire[i]));
        let after = wire.get(index + 1).copied();
        if byte == b'\n' {
            assert_eq!(
                before,
                Some(b'\r'),
                "bare LF at octet {index} of {:?}",
                show(wire)
            );
        }
        if byte == b'\r' && index + 1 < wire.len() {
            assert_eq!(
                after,
                Some(b'\n'),
                "bare CR at octet {index} of {:?}",
                show(wire)
            );
        }
    }
}

/// Counts the occurrences of `needle` in `haystack`, overlapping ones included; an empty
/// `needle` counts 0.
pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// Formats bytes for an assertion message, non-printable octets escaped.
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
