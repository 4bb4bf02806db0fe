//! Target `reply`: the streaming reply decoder on any server bytes.
//!
//! Input layout: one byte of limits, one split seed for [`super::split`], then the stream.

use bytes::BytesMut;
use smtp_proto::{ParseError, Reply, ReplyDecoder, ReplyLimits};

/// Decodes the stream whole and in chunks, then checks that:
///
/// - both give the same replies, the same error and the same leftover bytes;
/// - every reply keeps to the limits and contains no control character other than HT;
/// - every reply encodes to bytes that decode to the same reply.
pub fn check(data: &[u8]) {
    let [limit_bits, seed, stream @ ..] = data else {
        return;
    };
    let limits = limits(*limit_bits);

    let whole = decode(limits, &[stream]);
    let chunked = decode(limits, &super::split(stream, *seed));

    assert_eq!(whole, chunked, "feeding in chunks changed the result");
    for reply in &whole.replies {
        assert_within_limits(reply, limits);
        assert_round_trip(reply);
    }
}

/// Chooses the decoder limits from one byte: the defaults, or smaller ones that the fuzzer can
/// reach with short inputs.
pub fn limits(bits: u8) -> ReplyLimits {
    let mut limits = ReplyLimits::default();
    limits.bare_lf = bits & 1 == 0;
    if bits & 2 != 0 {
        limits.max_line_length = 16 + usize::from(bits >> 4);
    }
    if bits & 4 != 0 {
        limits.max_lines = 1 + usize::from((bits >> 4) & 3);
    }
    limits
}

/// The result of decoding one stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    replies: Vec<Reply>,
    error: Option<ParseError>,
    /// The bytes still in the buffer when the input ended without an error.
    leftover: Vec<u8>,
    partial: bool,
}

fn decode(limits: ReplyLimits, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = ReplyDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();

    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(error) => {
                    // The decoder stays failed, so a caller that retries gets the same error.
                    assert_eq!(decoder.decode(&mut buf), Err(error.clone()));
                    return Outcome {
                        replies,
                        error: Some(error),
                        leftover: Vec::new(),
                        partial: false,
                    };
                }
            }
        }

        // Without a line end in the first `max_line_length` octets the decoder fails, so a
        // partial line is always shorter.
        assert!(
            buf.len() < limits.max_line_length,
            "{} octets buffered without a line end",
            buf.len()
        );
    }

    Outcome {
        replies,
        error: None,
        leftover: buf.to_vec(),
        partial: decoder.has_partial_reply(),
    }
}

fn assert_within_limits(reply: &Reply, limits: ReplyLimits) {
    assert!(reply.lines().next().is_some(), "reply without lines");
    assert!(
        reply.lines().count() <= limits.max_lines,
        "{reply:?} has too many lines"
    );
    for line in reply.lines() {
        // Three digits and a separator come before the text, and at least LF after it.
        assert!(
            line.len() + 5 <= limits.max_line_length,
            "{reply:?} has a long line"
        );
        let control = line
            .iter()
            .find(|&&byte| byte != b'\t' && (byte < 0x20 || byte == 0x7f));
        assert_eq!(control, None, "{reply:?} contains a control character");
    }
}

fn assert_round_trip(reply: &Reply) {
    let mut wire = BytesMut::new();
    reply.encode(&mut wire);

    // The encoder writes CRLF where the input may have had a bare LF, one octet more per line.
    let mut limits = ReplyLimits::default();
    limits.bare_lf = false;
    limits.max_line_length = wire.len() + 1;
    let decoded = ReplyDecoder::new(limits).decode(&mut wire);

    assert_eq!(
        decoded,
        Ok(Some(reply.clone())),
        "encode then decode changed the reply"
    );
    assert!(
        wire.is_empty(),
        "the encoded reply left {:?}",
        super::show(&wire)
    );
}
