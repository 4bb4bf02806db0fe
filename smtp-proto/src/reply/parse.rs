//! Streaming reply decoder: frames lines under limits, then parses each line with nom.

use bytes::{Buf as _, BytesMut};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n};
use nom::character::complete::{digit1, one_of};
use nom::combinator::{eof, map_opt, value, verify};
use nom::sequence::terminated;
use nom::{IResult, Parser};

use super::{EnhancedStatusCode, Reply, ReplyCode};
use crate::error::{ParseError, ParseErrorKind};
use crate::line::LineFramer;

/// Limits and tolerances of a [`ReplyDecoder`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Maximum length of one reply line in octets, line end included.
    ///
    /// RFC 5321 section 4.5.3.1.5 requires accepting reply lines of 512 octets. The default of
    /// 1000, the text line size of section 4.5.3.1.6, leaves room for servers that send more.
    pub max_line_length: usize,
    /// Maximum number of lines in one reply. RFC 5321 sets none, and the default is 100.
    pub max_lines: usize,
    /// Whether a bare LF also ends a line, a tolerance for servers that omit the CR (RFC 5321
    /// section 2.3.8 requires CRLF). On by default.
    pub bare_lf: bool,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self {
            // RFC 5321 section 4.5.3.1.6, the text line.
            max_line_length: 1000,
            // An EHLO reply lists each extension on a line, and 100 is far more than servers
            // offer.
            max_lines: 100,
            bare_lf: true,
        }
    }
}

/// Streaming decoder of replies (RFC 5321 section 4.2).
///
/// Each call to [`decode`](Self::decode) consumes whole lines from the front of the buffer as
/// they arrive. It stores the lines of an unfinished multi-line reply, and leaves a partial last
/// line in the buffer. It never consumes bytes after the final line of the reply it returns, so
/// the caller can tell whether the server sent more than one reply, for example after the reply
/// to STARTTLS.
///
/// A line is `code SP text`, `code-text` (more lines follow), `code` alone, or `code SP` alone,
/// ended by CRLF or, with [`ReplyLimits::bare_lf`], by a bare LF. Every line of one reply must
/// have the same code. The text may contain any octet other than a control character (HT
/// is allowed), so 8-bit text such as UTF-8 (RFC 6531) is kept as bytes.
///
/// After an error, every later call returns the same error, because the stream can no longer be
/// split into replies.
#[derive(Debug)]
pub struct ReplyDecoder {
    limits: ReplyLimits,
    framer: LineFramer,
    /// Code of the unfinished reply, set by its first line.
    code: Option<ReplyCode>,
    /// Text of the lines of the unfinished reply, each followed by LF. Its capacity is kept
    /// from reply to reply, so a multi-line reply allocates only while the longest grows.
    text: Vec<u8>,
    /// Lines of the unfinished reply stored in `text`.
    line_count: usize,
    /// Stream offset of the first byte in the caller's buffer.
    offset: usize,
    error: Option<ParseError>,
}

impl ReplyDecoder {
    /// Creates a decoder with the given limits.
    pub fn new(limits: ReplyLimits) -> Self {
        Self {
            limits,
            framer: LineFramer::new(limits.max_line_length, limits.bare_lf),
            code: None,
            text: Vec::new(),
            line_count: 0,
            offset: 0,
            error: None,
        }
    }

    /// Consumes lines from the front of `buf` and returns the next complete reply, or `None`
    /// when more bytes are needed.
    ///
    /// Call it again after a reply, because `buf` may hold more. The caller may only append to
    /// `buf` between calls. Error offsets count from the first byte this decoder was given, and
    /// the offending line stays in `buf`.
    ///
    /// # Errors
    ///
    /// Returns a [`ParseError`] when a line breaks the reply grammar or a reply breaks a limit.
    /// A line longer than [`ReplyLimits::max_line_length`] fails as soon as that many bytes
    /// arrive without a line end. A reply longer than [`ReplyLimits::max_lines`] fails as soon as
    /// the last allowed line announces another.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, ParseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }

        let result = self.decode_lines(buf);
        if let Err(error) = &result {
            self.error = Some(error.clone());
            self.code = None;
            self.text.clear();
            self.line_count = 0;
        }
        result
    }

    /// Returns whether lines of an unfinished reply are stored.
    pub fn has_partial_reply(&self) -> bool {
        self.line_count > 0
    }

    /// Returns the octets of text stored for the unfinished reply.
    #[cfg(fuzzing)]
    pub(crate) fn buffered_text(&self) -> usize {
        self.text.len()
    }

    fn decode_lines(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, ParseError> {
        loop {
            let Some(line) = self
                .framer
                .next_line(buf)
                .map_err(|error| error.shifted(self.offset))?
            else {
                return Ok(None);
            };
            let parsed = reply_line(&buf[..line.content_length])
                .map_err(|error| error.shifted(self.offset))?;

            // Check the code and the line count before the line leaves the buffer.
            let code = *self.code.get_or_insert(parsed.code);
            if parsed.code != code {
                return Err(ParseError::new(ParseErrorKind::CodeMismatch, self.offset));
            }
            let count = self.line_count + 1;
            let max = self.limits.max_lines;
            if count > max || (count == max && !parsed.is_last) {
                return Err(ParseError::new(ParseErrorKind::TooManyLines, self.offset));
            }

            // The text is copied out, so the reply never keeps the caller's buffer alive.
            let text = &buf[parsed.text_start..line.content_length];
            let reply = match (parsed.is_last, self.line_count) {
                (true, 0) => Some(Reply::from_checked_text(code, text)),
                (true, _) => {
                    self.text.extend_from_slice(text);
                    let reply = Reply::from_checked_text(code, &self.text);
                    self.text.clear();
                    self.line_count = 0;
                    Some(reply)
                }
                (false, _) => {
                    self.text.extend_from_slice(text);
                    self.text.push(b'\n');
                    self.line_count += 1;
                    None
                }
            };
            buf.advance(line.length);
            self.offset += line.length;
            if let Some(reply) = reply {
                self.code = None;
                return Ok(Some(reply));
            }
        }
    }
}

impl Default for ReplyDecoder {
    /// Creates a decoder with the default [`ReplyLimits`].
    fn default() -> Self {
        Self::new(ReplyLimits::default())
    }
}

/// Returns whether `byte` may appear in reply text: HT, printable ASCII, or an 8-bit octet.
///
/// RFC 5321 section 4.2 allows HT and 32 to 126 in `textstring`. 8-bit octets are a tolerance for
/// UTF-8 (RFC 6531) and for servers that send other encodings.
pub(super) const fn is_text_octet(byte: u8) -> bool {
    byte == b'\t' || (byte >= b' ' && byte != 0x7f)
}

/// Parses the enhanced status code at the start of reply text and returns it with the text after
/// it and its space.
///
/// ```text
/// status-code = class "." subject "." detail    ; RFC 3463 section 2
/// class       = "2" / "4" / "5"
/// subject     = 1*3digit
/// detail      = 1*3digit
/// ```
///
/// RFC 2034 section 4 puts the code first, followed by a space, so a code followed by anything
/// other than a space or the end of the text is not a status code.
pub(super) fn enhanced_status_code(text: &[u8]) -> Option<(EnhancedStatusCode, &[u8])> {
    let number = || {
        map_opt(
            take_while_m_n(1, 3, |byte: u8| byte.is_ascii_digit()),
            decimal,
        )
    };
    let class = map_opt(one_of("245"), |class: char| class.to_digit(10));
    let status_code = (class, tag("."), number(), tag("."), number());
    let mut parser = terminated(status_code, alt((tag(" "), eof)));

    let result: IResult<&[u8], _> = parser.parse(text);

    let (rest, (class, _, subject, _, detail)) = result.ok()?;
    let status = EnhancedStatusCode::new(u8::try_from(class).ok()?, subject, detail)?;
    Some((status, rest))
}

/// One parsed reply line.
#[derive(Debug, PartialEq, Eq)]
struct ReplyLine {
    code: ReplyCode,
    /// Whether the line ends the reply, that is, the code is not followed by a hyphen.
    is_last: bool,
    /// Offset of the text in the line.
    text_start: usize,
}

/// Parses one reply line without its line end (RFC 5321 section 4.2).
///
/// ```text
/// Reply-line = *( Reply-code "-" [ textstring ] CRLF )
///              Reply-code [ SP textstring ] CRLF
/// textstring = 1*(%d09 / %d32-126)
/// ```
///
/// A `Reply-code` followed by SP and no text is accepted too. Error offsets count from the
/// start of the line.
fn reply_line(line: &[u8]) -> Result<ReplyLine, ParseError> {
    if line.is_empty() {
        return Err(ParseError::new(ParseErrorKind::EmptyLine, 0));
    }

    let (rest, code) =
        reply_code(line).map_err(|_| ParseError::new(ParseErrorKind::InvalidCode, 0))?;
    let (text, is_last) = separator(rest)
        .map_err(|_| ParseError::new(ParseErrorKind::InvalidSeparator, line.len() - rest.len()))?;
    let text_start = line.len() - text.len();
    if let Some(position) = text.iter().position(|&byte| !is_text_octet(byte)) {
        let offset = text_start + position;
        return Err(ParseError::new(ParseErrorKind::InvalidText, offset));
    }

    Ok(ReplyLine {
        code,
        is_last,
        text_start,
    })
}

/// Parses a reply code (RFC 5321 section 4.2).
///
/// ```text
/// Reply-code = %x32-35 %x30-35 %x30-39
/// ```
///
/// All leading digits are taken, so `2500` is an invalid code rather than `250` and a separator.
fn reply_code(input: &[u8]) -> IResult<&[u8], ReplyCode> {
    let digits = verify(digit1, |digits: &[u8]| digits.len() == 3);
    let mut parser = map_opt(digits, |digits| decimal(digits).and_then(ReplyCode::new));

    parser.parse(input)
}

/// Parses what follows the reply code and returns whether the line is the last of its reply.
///
/// A hyphen announces more lines, and a space or the end of the line ends the reply (RFC 5321
/// section 4.2.1).
fn separator(input: &[u8]) -> IResult<&[u8], bool> {
    let mut parser = alt((
        value(false, tag("-")),
        value(true, tag(" ")),
        value(true, eof),
    ));

    parser.parse(input)
}

/// Converts one to three ASCII digits to a number.
fn decimal(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |number, digit| number * 10 + u16::from(digit - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::tests::reply;

    #[test]
    fn decode_single_replies() {
        type Case = (&'static str, &'static [u8], u16, &'static [&'static [u8]]);
        let cases: [Case; 14] = [
            ("code sp text", b"250 Ok\r\n", 250, &[b"Ok"]),
            ("code only", b"220\r\n", 220, &[b""]),
            ("code and space", b"250 \r\n", 250, &[b""]),
            ("auth continue code only", b"334\r\n", 334, &[b""]),
            (
                "auth challenge",
                b"334 VXNlcm5hbWU6\r\n",
                334,
                &[b"VXNlcm5hbWU6"],
            ),
            (
                "bare lf",
                b"220 mx.example.net ESMTP\n",
                220,
                &[b"mx.example.net ESMTP"],
            ),
            (
                "text keeps spaces",
                b"250  two  spaces \r\n",
                250,
                &[b" two  spaces "],
            ),
            ("text with tab", b"250 a\tb\r\n", 250, &[b"a\tb"]),
            ("non utf-8 text", b"250 caf\xe9\r\n", 250, &[b"caf\xe9"]),
            (
                "continuations",
                b"250-mx.example.net\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n",
                250,
                &[b"mx.example.net", b"PIPELINING", b"SIZE 10240000"],
            ),
            (
                "empty continuation",
                b"250-\r\n250 end\r\n",
                250,
                &[b"", b"end"],
            ),
            (
                "multi-line greeting",
                b"220-mx.example.net ESMTP\r\n220-no bulk mail\r\n220 -dashed word\r\n",
                220,
                &[b"mx.example.net ESMTP", b"no bulk mail", b"-dashed word"],
            ),
            (
                "last line starts with a code",
                b"220-mx.example.net\r\n220-welcome\r\n220 220-looking text\r\n",
                220,
                &[b"mx.example.net", b"welcome", b"220-looking text"],
            ),
            (
                "mixed line ends",
                b"250-first\n250-second\r\n250 third\n",
                250,
                &[b"first", b"second", b"third"],
            ),
        ];

        for (label, input, code, lines) in cases {
            let replies = decode_all(input, ReplyLimits::default());

            assert_eq!(replies, Ok(vec![reply(code, lines)]), "{label}");
        }
    }

    #[test]
    fn decode_rejects_invalid_lines() {
        let cases: [(&str, &[u8], ParseErrorKind, usize); 20] = [
            ("empty line", b"\r\n", ParseErrorKind::EmptyLine, 0),
            ("empty bare lf line", b"\n", ParseErrorKind::EmptyLine, 0),
            ("short code", b"25\r\n", ParseErrorKind::InvalidCode, 0),
            ("letters", b"abc hello\r\n", ParseErrorKind::InvalidCode, 0),
            (
                "four digits",
                b"2500 ok\r\n",
                ParseErrorKind::InvalidCode,
                0,
            ),
            ("nul bytes", b"\x00\x00\r\n", ParseErrorKind::InvalidCode, 0),
            (
                "leading space",
                b" 250 ok\r\n",
                ParseErrorKind::InvalidCode,
                0,
            ),
            (
                "first digit one",
                b"199 ok\r\n",
                ParseErrorKind::InvalidCode,
                0,
            ),
            (
                "second digit six",
                b"260 ok\r\n",
                ParseErrorKind::InvalidCode,
                0,
            ),
            (
                "first digit six",
                b"600 ok\r\n",
                ParseErrorKind::InvalidCode,
                0,
            ),
            (
                "letter separator",
                b"250ok\r\n",
                ParseErrorKind::InvalidSeparator,
                3,
            ),
            (
                "tab separator",
                b"250\tok\r\n",
                ParseErrorKind::InvalidSeparator,
                3,
            ),
            (
                "nul in text",
                b"250 a\x00b\r\n",
                ParseErrorKind::InvalidText,
                5,
            ),
            (
                "bare cr in text",
                b"250 a\rb\r\n",
                ParseErrorKind::InvalidText,
                5,
            ),
            (
                "cr before crlf",
                b"250 ok\r\r\n",
                ParseErrorKind::InvalidText,
                6,
            ),
            (
                "delete in text",
                b"250 \x7f\r\n",
                ParseErrorKind::InvalidText,
                4,
            ),
            (
                "escape in text",
                b"250 \x1b[31m\r\n",
                ParseErrorKind::InvalidText,
                4,
            ),
            (
                "code mismatch",
                b"250-first\r\n251 second\r\n",
                ParseErrorKind::CodeMismatch,
                11,
            ),
            (
                "severity mismatch",
                b"250-first\r\n550 second\r\n",
                ParseErrorKind::CodeMismatch,
                11,
            ),
            (
                "error after a reply",
                b"220 ready\r\n250-x\r\n\r\n",
                ParseErrorKind::EmptyLine,
                18,
            ),
        ];

        for (label, input, kind, offset) in cases {
            let error = decode_all(input, ReplyLimits::default()).unwrap_err();

            assert_eq!(error.kind(), kind, "{label}");
            assert_eq!(error.offset(), offset, "{label}");
        }
    }

    #[test]
    fn decode_rejects_bare_lf_when_disabled() {
        let limits = ReplyLimits {
            bare_lf: false,
            ..ReplyLimits::default()
        };

        let error = decode_all(b"220 mx.example.net ESMTP\n", limits).unwrap_err();

        assert_eq!(error.kind(), ParseErrorKind::BareLineFeed);
        assert_eq!(error.offset(), 24);
    }

    #[test]
    fn decode_enforces_line_length() {
        let cases = [
            ("crlf line at limit", line_of_length(1000, b"\r\n"), None),
            ("bare lf line at limit", line_of_length(1000, b"\n"), None),
            (
                "crlf line over limit",
                line_of_length(1001, b"\r\n"),
                Some(1000),
            ),
            (
                "bare lf line over limit",
                line_of_length(1001, b"\n"),
                Some(1000),
            ),
        ];

        for (label, input, error_offset) in cases {
            let result = decode_all(&input, ReplyLimits::default());

            match error_offset {
                None => assert_eq!(result.map(|replies| replies.len()), Ok(1), "{label}"),
                Some(offset) => {
                    let error = result.unwrap_err();
                    assert_eq!(error.kind(), ParseErrorKind::LineTooLong, "{label}");
                    assert_eq!(error.offset(), offset, "{label}");
                }
            }
        }
    }

    #[test]
    fn decode_rejects_long_line_before_line_end() {
        let limits = ReplyLimits::default();
        let mut decoder = ReplyDecoder::new(limits);
        let mut buf = BytesMut::from(&b"250 "[..]);
        let chunk = [b'a'; 100];

        // Feed up to 1 MB without a line end; the error must come once the limit is reached.
        let mut fed = buf.len();
        let error = loop {
            match decoder.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(reply)) => panic!("unexpected reply {reply}"),
                Err(error) => break error,
            }
            assert!(fed < 1_000_000, "no error after {fed} bytes");
            buf.extend_from_slice(&chunk);
            fed += chunk.len();
        };

        assert_eq!(error.kind(), ParseErrorKind::LineTooLong);
        assert_eq!(error.offset(), limits.max_line_length);
        assert!(
            fed < limits.max_line_length + chunk.len(),
            "error after {fed} bytes"
        );
        assert!(!decoder.has_partial_reply());
    }

    #[test]
    fn decode_rejects_long_continuation_line_before_line_end() {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::from(&b"250-first\r\n"[..]);
        buf.extend_from_slice(&[b'a'; 1000]);

        let error = decoder.decode(&mut buf).unwrap_err();

        assert_eq!(error.kind(), ParseErrorKind::LineTooLong);
        assert_eq!(error.offset(), 11 + 1000);
        assert_eq!(buf.len(), 1000, "only the first line is consumed");
    }

    #[test]
    fn decode_enforces_line_count() {
        let cases = [
            ("at limit", many_lines(100, true), None),
            ("over limit", many_lines(101, true), Some(99)),
            (
                "last line missing at limit",
                many_lines(100, false),
                Some(99),
            ),
            ("below limit", many_lines(99, false), None),
        ];

        for (label, input, error_line) in cases {
            let mut decoder = ReplyDecoder::default();
            let mut buf = BytesMut::from(&input[..]);

            let result = decoder.decode(&mut buf);

            match error_line {
                None => assert!(result.is_ok(), "{label}: {result:?}"),
                Some(line) => {
                    let error = result.unwrap_err();
                    assert_eq!(error.kind(), ParseErrorKind::TooManyLines, "{label}");
                    assert_eq!(error.offset(), line * b"250-line\r\n".len(), "{label}");
                }
            }
        }
    }

    #[test]
    fn decode_keeps_bytes_after_reply() {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::from(&b"220 Ready\r\n250-x\r\n250 AUTH LOGIN\r\n"[..]);

        let first = decoder.decode(&mut buf).unwrap();

        assert_eq!(first, Some(reply(220, &["Ready"])));
        assert_eq!(&buf[..], b"250-x\r\n250 AUTH LOGIN\r\n");
        assert!(!decoder.has_partial_reply());

        let second = decoder.decode(&mut buf).unwrap();

        assert_eq!(second, Some(reply(250, &["x", "AUTH LOGIN"])));
        assert!(buf.is_empty());
    }

    #[test]
    fn decode_stores_unfinished_reply() {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::from(&b"250-x\r\n250 AU"[..]);

        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(decoder.has_partial_reply());
        assert_eq!(&buf[..], b"250 AU", "the partial line stays in the buffer");

        buf.extend_from_slice(b"TH LOGIN\r\n");

        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(reply(250, &["x", "AUTH LOGIN"])))
        );
        assert!(!decoder.has_partial_reply());
    }

    #[test]
    fn decode_repeats_error() {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::from(&b"250-x\r\n550 y\r\n"[..]);

        let first = decoder.decode(&mut buf).unwrap_err();
        buf.extend_from_slice(b"250 z\r\n");
        let second = decoder.decode(&mut buf).unwrap_err();

        assert_eq!(first.kind(), ParseErrorKind::CodeMismatch);
        assert_eq!(second, first);
        assert!(!decoder.has_partial_reply());
    }

    #[test]
    fn decode_copies_reply_out_of_buffer() {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::from(&b"250-first\r\n250 second\r\n354 go\r\n"[..]);
        let received = buf.as_ptr_range();

        let replies = [
            decoder.decode(&mut buf).unwrap().unwrap(),
            decoder.decode(&mut buf).unwrap().unwrap(),
        ];

        for reply in &replies {
            for line in reply.lines() {
                let start = line.as_ptr();
                assert!(
                    !received.contains(&start),
                    "{reply:?} points into the buffer"
                );
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn decode_split_at_every_point_matches_whole() {
        let whole = decode_all(SESSION, ReplyLimits::default()).unwrap();
        assert_eq!(whole.len(), 10);

        for split in 0..=SESSION.len() {
            let (head, tail) = SESSION.split_at(split);

            let replies = decode_chunks(&[head, tail]);

            assert_eq!(replies, Ok(whole.clone()), "split at {split}");
        }

        let bytes: Vec<&[u8]> = SESSION.chunks(1).collect();
        assert_eq!(decode_chunks(&bytes), Ok(whole), "one byte at a time");
    }

    #[test]
    fn decode_error_split_at_every_point_matches_whole() {
        let input: &[u8] = b"220 ready\r\n250-mx.example.net\r\n250-SIZE\r\n251 8BITMIME\r\n";
        let whole = decode_all(input, ReplyLimits::default()).unwrap_err();

        for split in 0..=input.len() {
            let (head, tail) = input.split_at(split);

            assert_eq!(
                decode_chunks(&[head, tail]),
                Err(whole.clone()),
                "split at {split}"
            );
        }
    }

    #[test]
    fn enhanced_status_code_parses_prefix() {
        type Case = (
            &'static str,
            &'static [u8],
            Option<((u8, u16, u16), &'static [u8])>,
        );
        let cases: [Case; 10] = [
            ("success", b"2.0.0 Ok", Some(((2, 0, 0), b"Ok"))),
            ("policy", b"5.7.25 PTR", Some(((5, 7, 25), b"PTR"))),
            ("alone", b"4.4.1", Some(((4, 4, 1), b""))),
            (
                "one space removed",
                b"2.0.0  two",
                Some(((2, 0, 0), b" two")),
            ),
            ("two parts", b"5.7 denied", None),
            ("letter", b"4.x.1 later", None),
            ("class three", b"3.0.0 go", None),
            ("four digit detail", b"5.1.1000 x", None),
            ("colon after", b"5.1.1: x", None),
            ("empty", b"", None),
        ];

        for (label, text, expected) in cases {
            let parsed = enhanced_status_code(text);

            let expected = expected.map(|((class, subject, detail), rest)| {
                (
                    EnhancedStatusCode {
                        class,
                        subject,
                        detail,
                    },
                    rest,
                )
            });
            assert_eq!(parsed, expected, "{label}");
        }
    }

    /// A client session as a server sends it: a multi-line greeting, an EHLO reply, replies to
    /// MAIL, RCPT (one with a multi-line rejection), DATA and QUIT, some ended by a bare LF.
    const SESSION: &[u8] = b"220-mx.example.net ESMTP Postfix\r\n\
        220-Unsolicited bulk mail is not welcome here\r\n\
        220 -- ready --\r\n\
        250-mx.example.net\r\n\
        250-PIPELINING\r\n\
        250-SIZE 10240000\r\n\
        250-AUTH PLAIN LOGIN\r\n\
        250-ENHANCEDSTATUSCODES\r\n\
        250 8BITMIME\r\n\
        250 2.1.0 Ok\r\n\
        550-5.7.25 The sending IP does not have a\r\n\
        550-5.7.25 PTR record that matches its\r\n\
        550 5.7.25 forward DNS record\r\n\
        250 2.1.5 Ok\n\
        354 End data with <CR><LF>.<CR><LF>\r\n\
        250 2.0.0 Ok: queued as 4Xy7Zq\r\n\
        250 \r\n\
        334\r\n\
        221 2.0.0 Bye\n";

    fn decode_all(input: &[u8], limits: ReplyLimits) -> Result<Vec<Reply>, ParseError> {
        let mut decoder = ReplyDecoder::new(limits);
        let mut buf = BytesMut::from(input);
        let mut replies = Vec::new();
        while let Some(reply) = decoder.decode(&mut buf)? {
            replies.push(reply);
        }
        assert!(buf.is_empty(), "bytes left: {buf:?}");
        Ok(replies)
    }

    fn decode_chunks(chunks: &[&[u8]]) -> Result<Vec<Reply>, ParseError> {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::new();
        let mut replies = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(reply) = decoder.decode(&mut buf)? {
                replies.push(reply);
            }
        }
        assert!(buf.is_empty(), "bytes left: {buf:?}");
        Ok(replies)
    }

    fn line_of_length(length: usize, line_end: &[u8]) -> Vec<u8> {
        let mut line = b"250 ".to_vec();
        line.resize(length - line_end.len(), b'a');
        line.extend_from_slice(line_end);
        line
    }

    fn many_lines(count: usize, finished: bool) -> Vec<u8> {
        let mut input = b"250-line\r\n".repeat(count);
        if finished {
            let last = input.len() - b"line\r\n".len() - 1;
            input[last] = b' ';
        }
        input
    }
}
