//! The message body of the DATA command: transparency (dot-stuffing) and the end of mail data
//! (RFC 5321 sections 4.5.2 and 4.1.1.4), and the message size (RFC 1870).
//!
//! Every bare CR and every bare LF in a body becomes CRLF on the wire, so the only line ends the
//! server receives are CRLF, and the only end-of-data sequence it receives is the one
//! [`DataEncoder`] writes last. This is what keeps a body from ending the mail data early and smuggling commands
//! to a server that accepts a bare LF or a bare CR as a line end.

use bytes::{BufMut, BytesMut};

/// Streaming DATA encoder: canonicalises every bare CR and bare LF to CRLF, doubles a dot at the
/// start of every line, and writes the end-of-data line (RFC 5321 sections 4.5.2 and 4.1.1.4).
///
/// Feed the body in chunks of any size with [`encode`](Self::encode), then call
/// [`finish`](Self::finish) once. Line state carries across chunks, so a dot that starts a chunk
/// is doubled when the previous chunk ended a line. A CR at the end of one chunk followed by an LF
/// at the start of the next is one CRLF. `finish` completes a last line that lacks a line end
/// and writes `.\r\n`, so the wire ends with `\r\n.\r\n`, or is just `.\r\n` for an empty body.
/// No other `\r\n.\r\n` ever appears in the output.
///
/// ```
/// use bytes::BytesMut;
/// use smtp_proto::DataEncoder;
///
/// let mut encoder = DataEncoder::new();
/// let mut wire = BytesMut::new();
/// encoder.encode(b"Subject: hi\n\n.hidden\nlast", &mut wire);
/// encoder.finish(&mut wire);
/// assert_eq!(&wire[..], b"Subject: hi\r\n\r\n..hidden\r\nlast\r\n.\r\n");
/// ```
#[derive(Clone, Debug)]
pub struct DataEncoder {
    /// The next body byte starts a line, so a dot there is doubled.
    at_line_start: bool,
    /// The last body byte was a CR, already written as CRLF, so an LF right after it belongs to
    /// that line end and is dropped.
    after_cr: bool,
    /// Dots are doubled and the end-of-data line written, for DATA; BDAT content (RFC 3030) is
    /// only canonicalised.
    stuffing: bool,
}

impl DataEncoder {
    /// Creates an encoder positioned at the start of a body.
    pub const fn new() -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
            stuffing: true,
        }
    }

    /// Creates an encoder for BDAT content (RFC 3030 section 2): bare CR and bare LF still
    /// become CRLF and [`finish`](Self::finish) still completes a last line, but no dot is
    /// doubled and no end-of-data line is written, because BDAT frames the content by its length.
    /// The output is then exactly [`BodyInfo::size`] octets long.
    pub const fn without_stuffing() -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
            stuffing: false,
        }
    }

    /// Appends the wire form of `chunk`, the next part of the body, to `out`.
    pub fn encode(&mut self, chunk: &[u8], out: &mut BytesMut) {
        let mut rest = chunk;

        // An LF that completes the CR ending the previous chunk was written with that CR.
        if self.after_cr {
            let Some((&first, tail)) = rest.split_first() else {
                return;
            };
            if first == LF {
                rest = tail;
            }
            self.after_cr = false;
        }

        // Line ends that grow from LF to CRLF add about one octet per line, so this covers bodies
        // with lines of 32 octets or more in one allocation.
        out.reserve(rest.len() + rest.len() / 32 + 2);

        // Text that needs no change is copied in long runs: `rest[..written]` is in `out`, and
        // only a doubled dot or a canonicalised line end interrupts the run.
        let mut written = 0;
        let mut line = 0;
        loop {
            if self.at_line_start {
                let Some(&first) = rest.get(line) else {
                    break;
                };
                if self.stuffing && first == b'.' {
                    out.extend_from_slice(&rest[written..line]);
                    out.put_u8(b'.');
                    written = line;
                }
                self.at_line_start = false;
            }

            let Some(offset) = find_line_end(&rest[line..]) else {
                break;
            };
            let end = line + offset;
            self.at_line_start = true;
            if rest[end] == CR && rest.get(end + 1) == Some(&LF) {
                line = end + 2;
                // Copying the run while it is still in the cache beats copying it all at the end.
                if line - written >= RUN_LENGTH {
                    out.extend_from_slice(&rest[written..line]);
                    written = line;
                }
                continue;
            }

            // A bare LF or a bare CR becomes CRLF. A CR that ends the chunk may still be the
            // first half of a CRLF split across chunks.
            out.extend_from_slice(&rest[written..end]);
            out.extend_from_slice(CRLF);
            written = end + 1;
            line = end + 1;
            self.after_cr = rest[end] == CR && line == rest.len();
        }
        out.extend_from_slice(&rest[written..]);
    }

    /// Completes a last line that lacks a line end, appends the end-of-data line `.\r\n` to `out`
    /// and resets the encoder for the next body.
    pub fn finish(&mut self, out: &mut BytesMut) {
        out.reserve(CRLF.len() + END_OF_DATA.len());
        if !self.at_line_start {
            out.extend_from_slice(CRLF);
        }
        if self.stuffing {
            out.extend_from_slice(END_OF_DATA);
        }
        *self = Self {
            stuffing: self.stuffing,
            ..Self::new()
        };
    }
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Facts about a whole message body that are needed before `MAIL FROM`: its size for the SIZE
/// parameter (RFC 1870) and whether it needs `BODY=8BITMIME` (RFC 6152) or binary
/// transport (RFC 3030).
///
/// ```
/// use smtp_proto::BodyInfo;
///
/// let info = BodyInfo::scan(b"Subject: caf\xC3\xA9\n\nhi");
/// assert_eq!(info.size(), 22);
/// assert!(info.is_eight_bit());
/// assert!(!info.has_nul());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyInfo {
    size: u64,
    longest_line: usize,
    eight_bit: bool,
    nul: bool,
}

impl BodyInfo {
    /// Scans `body`, the whole message as the caller will pass it to [`DataEncoder`].
    pub fn scan(body: &[u8]) -> Self {
        // Every bare CR and bare LF grows by one octet when it becomes CRLF.
        let mut size = body.len() as u64;
        let mut longest_line = 0;
        let mut rest = body;
        while let Some(end) = find_line_end(rest) {
            longest_line = longest_line.max(end);
            let (_, line_end) = rest.split_at(end);
            rest = match line_end {
                [CR, LF, tail @ ..] => tail,
                [_, tail @ ..] => {
                    size += 1;
                    tail
                }
                [] => &[],
            };
        }

        // The encoder adds CRLF to a last line that lacks a line end.
        if !matches!(body.last(), None | Some(&(CR | LF))) {
            size += CRLF.len() as u64;
        }

        Self {
            size,
            longest_line: longest_line.max(rest.len()),
            eight_bit: !body.is_ascii(),
            nul: body.contains(&0),
        }
    }

    /// Returns the length of the longest line in octets, without its line end. RFC 5321 section
    /// 4.5.3.1.6 allows 998 in text sent with DATA or as 7bit or 8bit MIME.
    pub const fn longest_line(&self) -> usize {
        self.longest_line
    }

    /// Returns whether any octet is 0x80 or above, so the body needs `BODY=8BITMIME` (RFC 6152)
    /// or `BODY=BINARYMIME` (RFC 3030).
    pub const fn is_eight_bit(&self) -> bool {
        self.eight_bit
    }

    /// Returns whether the body contains a NUL octet, which 7bit and 8bit data may not contain
    /// (RFC 2045 sections 2.7 and 2.8), so the body needs `BODY=BINARYMIME` with BDAT (RFC 3030).
    pub const fn has_nul(&self) -> bool {
        self.nul
    }

    /// Returns the message size as RFC 1870 counts it: the octets after CRLF
    /// canonicalisation, including a CRLF added to a last line without one, and excluding
    /// dot-stuffing and the end-of-data line.
    pub const fn size(&self) -> u64 {
        self.size
    }
}

/// Streaming decoder of DATA as it arrives on the wire: removes the dot that
/// [`DataEncoder`] doubles at the start of a line and finds the end-of-data line (RFC 5321
/// sections 4.5.2 and 4.1.1.4).
///
/// Only CRLF ends a line. A dot after a bare LF or a bare CR is body text, so `\n.\r\n` and
/// `\r.\r\n` never end the mail data, which defeats SMTP smuggling through this decoder. Bare CR
/// and bare LF bytes are kept in the body as they arrived.
///
/// ```
/// use bytes::BytesMut;
/// use smtp_proto::data::{DataDecoder, DecodeStatus};
///
/// let mut decoder = DataDecoder::new();
/// let mut body = BytesMut::new();
/// let status = decoder.decode(b"..dot\r\n.\r\nQUIT\r\n", &mut body);
/// assert_eq!(status, DecodeStatus::Complete { consumed: 10 });
/// assert_eq!(&body[..], b".dot\r\n");
/// ```
#[derive(Clone, Debug)]
pub struct DataDecoder {
    state: DecodeState,
}

impl DataDecoder {
    /// Creates a decoder positioned at the start of the mail data, right after the 354 reply.
    pub const fn new() -> Self {
        Self {
            state: DecodeState::LineStart,
        }
    }

    /// Appends the body text found in `input` to `out`, and reports whether `input` contained
    /// the end-of-data line.
    ///
    /// [`DecodeStatus::Incomplete`] means every byte of `input` was used and more input is
    /// needed. [`DecodeStatus::Complete`] means the first `consumed` bytes of `input` finished
    /// the mail data; the bytes after them are not body text (the next command, for example).
    /// After `Complete` the decoder is ready for the next body.
    #[must_use]
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> DecodeStatus {
        out.reserve(input.len());
        let mut rest = input;
        while let Some((&byte, tail)) = rest.split_first() {
            // Each arm either consumes `byte` or leaves it for the state it moves to.
            match self.state {
                DecodeState::LineStart if byte == b'.' => {
                    self.state = DecodeState::Dot;
                    rest = tail;
                }
                DecodeState::Dot if byte == CR => {
                    self.state = DecodeState::DotCr;
                    rest = tail;
                }
                DecodeState::DotCr if byte == LF => {
                    self.state = DecodeState::LineStart;
                    return DecodeStatus::Complete {
                        consumed: input.len() - tail.len(),
                    };
                }
                // A dot followed by more text is a stuffing dot and was dropped. The CR after it
                // is body text.
                DecodeState::DotCr => {
                    out.put_u8(CR);
                    self.state = DecodeState::Text;
                }
                DecodeState::Cr if byte == LF => {
                    out.put_u8(LF);
                    self.state = DecodeState::LineStart;
                    rest = tail;
                }
                DecodeState::LineStart | DecodeState::Dot | DecodeState::Cr => {
                    self.state = DecodeState::Text;
                }
                DecodeState::Text => {
                    let Some(cr) = find_either(rest, CR, CR) else {
                        out.extend_from_slice(rest);
                        return DecodeStatus::Incomplete;
                    };
                    let (text, after) = rest.split_at(cr + 1);
                    out.extend_from_slice(text);
                    self.state = DecodeState::Cr;
                    rest = after;
                }
            }
        }
        DecodeStatus::Incomplete
    }
}

impl Default for DataDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Progress of a [`DataDecoder`] after one call of [`DataDecoder::decode`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeStatus {
    /// The end-of-data line has not arrived yet; all input was used.
    Incomplete,
    /// The end-of-data line ended within the first `consumed` bytes of the input.
    Complete {
        /// The number of input bytes that belong to the mail data, its end-of-data line included.
        consumed: usize,
    },
}

/// Position of a [`DataDecoder`] within the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecodeState {
    /// At the start of a line, before any byte of it.
    LineStart,
    /// The line so far is one dot, not yet written.
    Dot,
    /// The line so far is a dot and a CR, neither written yet.
    DotCr,
    /// Inside a line, after a byte other than CR.
    Text,
    /// Inside a line, right after a CR that was written.
    Cr,
}

/// Returns the index of the first byte in `haystack` that equals `first` or `second`.
///
/// The search reads eight bytes at a time as one `u64` and tests all of them with a few integer
/// operations, in place of one comparison per byte.
fn find_either(haystack: &[u8], first: u8, second: u8) -> Option<usize> {
    let first_repeated = ONES * u64::from(first);
    let second_repeated = ONES * u64::from(second);

    let mut words = haystack.chunks_exact(8);
    let mut offset = 0;
    for word in words.by_ref() {
        let bytes: [u8; 8] = word
            .try_into()
            .expect("chunks_exact(8) yields 8-byte slices");
        let value = u64::from_le_bytes(bytes);
        let matches = zero_bytes(value ^ first_repeated) | zero_bytes(value ^ second_repeated);
        if matches != 0 {
            return Some(offset + (matches.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }

    let remainder = words.remainder();
    let index = remainder.iter().position(|&b| b == first || b == second)?;
    Some(offset + index)
}

/// Returns the index of the first CR or LF in `haystack`.
///
/// The search reads eight bytes at a time as one `u64`. A word without a byte below 0x0E, the
/// common case in text, costs three integer operations. Only a word with such a byte is searched
/// byte by byte, because the byte may also be a tab.
fn find_line_end(haystack: &[u8]) -> Option<usize> {
    let mut words = haystack.chunks_exact(8);
    let mut offset = 0;
    for word in words.by_ref() {
        let bytes: [u8; 8] = word
            .try_into()
            .expect("chunks_exact(8) yields 8-byte slices");
        let value = u64::from_le_bytes(bytes);
        if value.wrapping_sub(ONES * 0x0E) & !value & HIGH_BITS != 0 {
            if let Some(index) = word.iter().position(|&byte| byte == CR || byte == LF) {
                return Some(offset + index);
            }
        }
        offset += 8;
    }

    let index = words
        .remainder()
        .iter()
        .position(|&byte| byte == CR || byte == LF)?;
    Some(offset + index)
}

/// Sets the high bit of the lowest zero byte of `value`. The borrow may wrongly set bits above
/// that byte, but the lowest set bit always marks the first zero byte.
const fn zero_bytes(value: u64) -> u64 {
    value.wrapping_sub(ONES) & !value & HIGH_BITS
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const CRLF: &[u8] = b"\r\n";
const END_OF_DATA: &[u8] = b".\r\n";
/// How much unchanged text the encoder scans before it copies it out.
const RUN_LENGTH: usize = 16 * 1024;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `body` as one chunk.
    fn encode_whole(body: &[u8]) -> Vec<u8> {
        encode_chunks(&[body])
    }

    fn encode_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut encoder = DataEncoder::new();
        let mut out = BytesMut::new();
        for chunk in chunks {
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out.to_vec()
    }

    /// Decodes wire bytes fed in `chunks`, and returns the body with the consumed count of the
    /// chunk that completed it.
    fn decode_chunks(chunks: &[&[u8]]) -> Option<(Vec<u8>, usize)> {
        let mut decoder = DataDecoder::new();
        let mut out = BytesMut::new();
        for chunk in chunks {
            if let DecodeStatus::Complete { consumed } = decoder.decode(chunk, &mut out) {
                return Some((out.to_vec(), consumed));
            }
        }
        None
    }

    /// Canonicalises line ends byte by byte, including the CRLF added to a last line.
    fn canonical(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut bytes = body.iter().peekable();
        while let Some(&byte) = bytes.next() {
            match byte {
                b'\r' => {
                    bytes.next_if_eq(&&b'\n');
                    out.extend_from_slice(b"\r\n");
                }
                b'\n' => out.extend_from_slice(b"\r\n"),
                other => out.push(other),
            }
        }
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn repeat(unit: &[u8], count: usize) -> Vec<u8> {
        unit.repeat(count)
    }

    fn long_body_without_final_crlf() -> Vec<u8> {
        let mut body = repeat(&[b"a".repeat(78).as_slice(), b"\r\n"].concat(), 819);
        body.extend_from_slice(&b"b".repeat(14));
        body.extend_from_slice(b"xx");
        body
    }

    /// Lists every input with its exact wire form.
    fn encode_cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let d3_out = [repeat(b"..x\r\n", 100_000), b".\r\n".to_vec()].concat();
        let long_body = long_body_without_final_crlf();
        let long_out = [long_body.as_slice(), b"\r\n.\r\n"].concat();
        vec![
            (
                "d1 dots at line starts",
                b"Subject: dots\r\n\r\n.\r\n..already two\r\n.leading dot\r\nnot.a.leading.dot\r\nlast\r\n"
                    .to_vec(),
                b"Subject: dots\r\n\r\n..\r\n...already two\r\n..leading dot\r\nnot.a.leading.dot\r\nlast\r\n.\r\n"
                    .to_vec(),
            ),
            ("d2 lone dot line", b".\r\n".to_vec(), b"..\r\n.\r\n".to_vec()),
            ("d3 many dot lines", repeat(b".x\r\n", 100_000), d3_out),
            (
                "smuggling bare lf before dot",
                b"Subject: s1\r\n\r\nline1\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
                    .to_vec(),
                b"Subject: s1\r\n\r\nline1\r\n..\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n..\r\n.\r\n"
                    .to_vec(),
            ),
            (
                "smuggling dot bare lf",
                b"line1\r\n.\nrest\r\n".to_vec(),
                b"line1\r\n..\r\nrest\r\n.\r\n".to_vec(),
            ),
            (
                "three leading dots",
                b"...line1\r\n.\nrest\r\n".to_vec(),
                b"....line1\r\n..\r\nrest\r\n.\r\n".to_vec(),
            ),
            (
                "smuggling lf dot lf",
                b"line1\n.\nrest\r\n".to_vec(),
                b"line1\r\n..\r\nrest\r\n.\r\n".to_vec(),
            ),
            (
                "smuggling cr dot cr",
                b"line1\r.\rrest\r\n".to_vec(),
                b"line1\r\n..\r\nrest\r\n.\r\n".to_vec(),
            ),
            (
                "final line without crlf",
                b"no newline at end".to_vec(),
                b"no newline at end\r\n.\r\n".to_vec(),
            ),
            (
                "final crlf kept as is",
                b"one\r\ntwo\r\n".to_vec(),
                b"one\r\ntwo\r\n.\r\n".to_vec(),
            ),
            ("final lone cr", b"x\r".to_vec(), b"x\r\n.\r\n".to_vec()),
            ("body is one cr", b"\r".to_vec(), b"\r\n.\r\n".to_vec()),
            ("final bare lf", b"x\n".to_vec(), b"x\r\n.\r\n".to_vec()),
            ("cr cr lf", b"a\r\r\nb".to_vec(), b"a\r\n\r\nb\r\n.\r\n".to_vec()),
            ("lf cr", b"a\n\rb".to_vec(), b"a\r\n\r\nb\r\n.\r\n".to_vec()),
            ("long body without final crlf", long_body, long_out),
            ("empty body", Vec::new(), b".\r\n".to_vec()),
        ]
    }

    #[test]
    fn encode_exact_wire_bytes() {
        for (label, input, expected) in encode_cases() {
            assert_eq!(encode_whole(&input), expected, "{label}");
        }
    }

    #[test]
    fn encode_long_body_wire_length() {
        let body = long_body_without_final_crlf();

        assert_eq!(body.len(), 65_536);
        assert_eq!(encode_whole(&body).len(), 65_541);
    }

    #[test]
    fn encode_output_has_no_bare_line_ends() {
        for (label, input, _) in encode_cases() {
            let wire = encode_whole(&input);
            for (index, &byte) in wire.iter().enumerate() {
                if byte == b'\r' {
                    assert_eq!(
                        wire.get(index + 1),
                        Some(&b'\n'),
                        "{label}: bare CR at {index}"
                    );
                }
                if byte == b'\n' {
                    assert!(index > 0, "{label}: bare LF at 0");
                    assert_eq!(wire[index - 1], b'\r', "{label}: bare LF at {index}");
                }
            }
        }
    }

    #[test]
    fn encode_end_of_data_only_at_end() {
        for (label, input, _) in encode_cases() {
            let wire = encode_whole(&input);
            let ends = wire.windows(5).filter(|w| w == b"\r\n.\r\n").count();
            let expected_ends = usize::from(!input.is_empty());

            assert_eq!(ends, expected_ends, "{label}");
            assert!(wire.ends_with(b".\r\n"), "{label}");
            assert!(!wire.starts_with(b".\r\n") || input.is_empty(), "{label}");
        }
    }

    #[test]
    fn encode_two_chunks_at_every_split() {
        for (label, input, expected) in encode_cases() {
            // Inputs above 4096 bytes repeat lines of at most 80 bytes, so their splits are
            // checked in the first and last 160 bytes and at a stride in between.
            let splits: Vec<usize> = if input.len() <= 4096 {
                (0..=input.len()).collect()
            } else {
                (0..160)
                    .chain((160..input.len() - 160).step_by(20_011))
                    .chain(input.len() - 160..=input.len())
                    .collect()
            };
            for split in splits {
                let (first, second) = input.split_at(split);
                assert_eq!(
                    encode_chunks(&[first, second]),
                    expected,
                    "{label} at {split}"
                );
            }
        }
    }

    #[test]
    fn encode_one_byte_per_chunk() {
        for (label, input, expected) in encode_cases() {
            let chunks: Vec<&[u8]> = input.chunks(1).collect();

            assert_eq!(encode_chunks(&chunks), expected, "{label}");
        }
    }

    #[test]
    fn encode_empty_chunks_change_nothing() {
        let chunks: &[&[u8]] = &[b"", b"a\r", b"", b"\n.", b"", b"b"];

        assert_eq!(encode_chunks(chunks), b"a\r\n..b\r\n.\r\n");
    }

    #[test]
    fn without_stuffing_only_canonicalises() {
        let cases: [(&str, &[u8], &[u8]); 4] = [
            ("leading dot kept", b".x\r\n.\r\n", b".x\r\n.\r\n"),
            ("bare line ends", b"a\nb\rc\r\n", b"a\r\nb\r\nc\r\n"),
            (
                "last line completed",
                b"Subject: x\r\n\r\nend",
                b"Subject: x\r\n\r\nend\r\n",
            ),
            ("empty body", b"", b""),
        ];

        for (label, body, expected) in cases {
            let mut encoder = DataEncoder::without_stuffing();
            let mut out = BytesMut::new();
            encoder.encode(body, &mut out);
            encoder.finish(&mut out);

            assert_eq!(&out[..], expected, "{label}");
            assert_eq!(out.len() as u64, BodyInfo::scan(body).size(), "{label}");
        }
    }

    #[test]
    fn encoder_reusable_after_finish() {
        let mut encoder = DataEncoder::new();
        let mut out = BytesMut::new();
        encoder.encode(b"first\r", &mut out);
        encoder.finish(&mut out);
        out.clear();

        encoder.encode(b"\n.second", &mut out);
        encoder.finish(&mut out);

        assert_eq!(&out[..], b"\r\n..second\r\n.\r\n");
    }

    #[test]
    fn decode_of_encode_is_canonical_body() {
        for (label, input, _) in encode_cases() {
            let wire = encode_whole(&input);

            let decoded = decode_chunks(&[&wire]);

            assert_eq!(decoded, Some((canonical(&input), wire.len())), "{label}");
        }
    }

    #[test]
    fn decode_two_chunks_at_every_split() {
        for (label, input, _) in encode_cases() {
            let wire = encode_whole(&input);
            if wire.len() > 4096 {
                continue;
            }
            let expected = canonical(&input);
            for split in 0..=wire.len() {
                let (first, second) = wire.split_at(split);
                let Some((body, consumed)) = decode_chunks(&[first, second]) else {
                    panic!("{label} at {split}: end of data not found");
                };

                assert_eq!(body, expected, "{label} at {split}");
                let expected_consumed = if split == wire.len() {
                    split
                } else {
                    wire.len() - split
                };
                assert_eq!(consumed, expected_consumed, "{label} at {split}");
            }
        }
    }

    #[test]
    fn decode_one_byte_per_chunk() {
        for (label, input, _) in encode_cases() {
            let wire = encode_whole(&input);
            let chunks: Vec<&[u8]> = wire.chunks(1).collect();

            assert_eq!(
                decode_chunks(&chunks),
                Some((canonical(&input), 1)),
                "{label}"
            );
        }
    }

    #[test]
    fn decode_wire_cases() {
        let cases: &[(&str, &[u8], DecodeStatus, &[u8])] = &[
            (
                "empty body",
                b".\r\n",
                DecodeStatus::Complete { consumed: 3 },
                b"",
            ),
            (
                "stops before next command",
                b"a\r\n.\r\nQUIT\r\n",
                DecodeStatus::Complete { consumed: 6 },
                b"a\r\n",
            ),
            (
                "stuffed dot removed",
                b"..\r\n.\r\n",
                DecodeStatus::Complete { consumed: 7 },
                b".\r\n",
            ),
            (
                "dot then text",
                b".x\r\n.\r\n",
                DecodeStatus::Complete { consumed: 7 },
                b"x\r\n",
            ),
            (
                "dot cr text",
                b".\rx\r\n.\r\n",
                DecodeStatus::Complete { consumed: 8 },
                b"\rx\r\n",
            ),
            (
                "bare lf dot is text",
                b"x\n.\r\n",
                DecodeStatus::Incomplete,
                b"x\n.\r\n",
            ),
            (
                "bare cr dot is text",
                b"x\r.\r\n",
                DecodeStatus::Incomplete,
                b"x\r.\r\n",
            ),
            (
                "dot bare lf is text",
                b"x\r\n.\n",
                DecodeStatus::Incomplete,
                b"x\r\n\n",
            ),
            (
                "mid line dot kept",
                b"a.b\r\n",
                DecodeStatus::Incomplete,
                b"a.b\r\n",
            ),
            ("nothing yet", b"", DecodeStatus::Incomplete, b""),
        ];
        for &(label, input, expected_status, expected_body) in cases {
            let mut decoder = DataDecoder::new();
            let mut out = BytesMut::new();

            let status = decoder.decode(input, &mut out);

            assert_eq!(status, expected_status, "{label}");
            assert_eq!(&out[..], expected_body, "{label}");
        }
    }

    #[test]
    fn decoder_reusable_after_complete() {
        let mut decoder = DataDecoder::new();
        let mut out = BytesMut::new();
        let wire = b"one\r\n.\r\n..two\r\n.\r\n";

        let first = decoder.decode(wire, &mut out);
        let DecodeStatus::Complete { consumed } = first else {
            panic!("first body not complete: {first:?}");
        };
        let second = decoder.decode(&wire[consumed..], &mut out);

        assert_eq!(consumed, 8);
        assert_eq!(second, DecodeStatus::Complete { consumed: 10 });
        assert_eq!(&out[..], b"one\r\n.two\r\n");
    }

    #[test]
    fn body_info_cases() {
        let cases: &[(&str, &[u8], u64, bool, bool)] = &[
            (
                "m0 message",
                b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nhello\r\n",
                64,
                false,
                false,
            ),
            ("no final crlf", b"hello", 7, false, false),
            ("bare lf counts two", b"a\nb\n", 6, false, false),
            ("bare cr counts two", b"a\rb\r", 6, false, false),
            ("crlf split nowhere", b"a\r\n", 3, false, false),
            ("cr cr lf", b"\r\r\n", 4, false, false),
            ("eight bit", b"Gr\xC3\xBC\xC3\x9Fe", 9, true, false),
            ("high byte alone", b"\x80\r\n", 3, true, false),
            ("nul", b"a\0b\r\n", 5, false, true),
            ("empty", b"", 0, false, false),
        ];
        for &(label, body, size, eight_bit, nul) in cases {
            let info = BodyInfo::scan(body);

            assert_eq!(info.size(), size, "{label}: size");
            assert_eq!(info.is_eight_bit(), eight_bit, "{label}: eight bit");
            assert_eq!(info.has_nul(), nul, "{label}: nul");
        }
    }

    #[test]
    fn body_info_longest_line() {
        let long = [b'x'; 1200];
        let cases: [(&str, &[u8], usize); 5] = [
            ("empty", b"", 0),
            ("one line without end", b"abc", 3),
            ("longest in the middle", b"a\r\nbcdef\r\ngh\r\n", 5),
            ("bare line ends", b"ab\ncde\rf", 3),
            ("long last line", &long, 1200),
        ];

        for (label, body, longest) in cases {
            assert_eq!(BodyInfo::scan(body).longest_line(), longest, "{label}");
        }
    }

    #[test]
    fn body_info_size_matches_decoded_wire() {
        for (label, input, _) in encode_cases() {
            let decoded = decode_chunks(&[&encode_whole(&input)]).map(|(body, _)| body.len());

            assert_eq!(
                Some(BodyInfo::scan(&input).size() as usize),
                decoded,
                "{label}"
            );
        }
    }

    #[test]
    fn find_either_every_position() {
        for length in 0..40 {
            for target in 0..length {
                let mut haystack = vec![b'a'; length];
                haystack[target] = b'\n';
                if target + 1 < length {
                    haystack[target + 1] = b'\r';
                }

                assert_eq!(
                    find_either(&haystack, CR, LF),
                    Some(target),
                    "{length} {target}"
                );
                assert_eq!(
                    find_either(&haystack, b'b', b'b'),
                    None,
                    "{length} {target}"
                );
            }
        }
    }

    #[test]
    fn find_line_end_every_position() {
        for length in 0..40 {
            for target in 0..length {
                for line_end in [CR, LF] {
                    // Tabs and other bytes below 0x0E pass the word test but are no line end.
                    let mut haystack: Vec<u8> =
                        (0..length).map(|i| [b'a', b'\t', 0x0C][i % 3]).collect();
                    haystack[target] = line_end;

                    assert_eq!(find_line_end(&haystack), Some(target), "{length} {target}");
                }
            }
            let plain = vec![b'\t'; length];
            assert_eq!(find_line_end(&plain), None, "{length} without line end");
        }
    }

    #[test]
    fn find_line_end_ignores_near_misses() {
        let haystack = [
            0x8D, 0x8A, 0xFF, 0x00, 0x0C, 0x0E, 0x09, 0x0B, 0x8D, 0x2E, LF,
        ];

        assert_eq!(find_line_end(&haystack), Some(10));
    }

    #[test]
    fn find_either_high_bytes_no_false_match() {
        // 0x8D and 0x8A differ from CR and LF only in the high bit.
        let haystack = [0x8D, 0x8A, 0xFF, 0x00, 0x0C, 0x0E, 0x09, 0x0B, 0x8D, b'\r'];

        assert_eq!(find_either(&haystack, CR, LF), Some(9));
    }
}
