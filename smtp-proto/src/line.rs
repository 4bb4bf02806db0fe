//! Line framing under a length limit, for replies and commands (RFC 5321 sections 2.3.8 and
//! 4.5.3.1).
//!
//! Lines are split before any grammar runs, so a peer that never sends a line end is stopped at
//! the limit instead of growing a buffer.

use crate::error::{ParseError, ParseErrorKind};

/// Finds the end of the line at the front of a buffer, under a maximum line length.
///
/// The framer stores how far it has searched an unfinished line, so feeding a line one byte at a
/// time costs linear time in total. Between two calls the caller may only append to the buffer,
/// except that it removes each line the framer returns from the front.
#[derive(Clone, Debug)]
pub(crate) struct LineFramer {
    max_length: usize,
    bare_lf: bool,
    searched: usize,
}

/// Position of the line end of the line at the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// Length of the line in octets, line end included.
    pub(crate) length: usize,
    /// Length of the line in octets without its CRLF or bare LF.
    pub(crate) content_length: usize,
}

impl LineFramer {
    /// Creates a framer for lines of at most `max_length` octets, line end included. With
    /// `bare_lf`, an LF without a CR before it also ends a line.
    pub(crate) const fn new(max_length: usize, bare_lf: bool) -> Self {
        Self {
            max_length,
            bare_lf,
            searched: 0,
        }
    }

    /// Finds the line at the front of `buf`, or returns `None` when its line end has not arrived.
    ///
    /// Returns an error as soon as `buf` contains `max_length` octets without a line end, because
    /// the line is then longer than the limit whatever comes next. Error offsets count from the
    /// start of `buf`.
    pub(crate) fn next_line(&mut self, buf: &[u8]) -> Result<Option<Line>, ParseError> {
        if buf.is_empty() {
            return Ok(None);
        }

        // Only the first `max_length` octets can contain the line end of an acceptable line.
        let window = &buf[..buf.len().min(self.max_length)];
        let start = self.searched.min(window.len());
        let Some(position) = window[start..].iter().position(|&byte| byte == b'\n') else {
            if buf.len() >= self.max_length {
                return Err(ParseError::new(
                    ParseErrorKind::LineTooLong,
                    self.max_length,
                ));
            }
            self.searched = window.len();
            return Ok(None);
        };
        let line_feed = start + position;
        self.searched = 0;

        let has_carriage_return = line_feed
            .checked_sub(1)
            .is_some_and(|index| window.get(index) == Some(&b'\r'));
        if !has_carriage_return && !self.bare_lf {
            return Err(ParseError::new(ParseErrorKind::BareLineFeed, line_feed));
        }
        Ok(Some(Line {
            length: line_feed + 1,
            content_length: line_feed - usize::from(has_carriage_return),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_line_finds_line_ends() {
        let cases: [(&str, &[u8], bool, Option<Line>); 8] = [
            ("crlf", b"220 ok\r\n", true, Some(line(8, 6))),
            ("bare lf", b"220 ok\n", true, Some(line(7, 6))),
            (
                "crlf without bare lf",
                b"220 ok\r\n",
                false,
                Some(line(8, 6)),
            ),
            ("empty crlf", b"\r\n", true, Some(line(2, 0))),
            ("first of two", b"a\r\nb\r\n", true, Some(line(3, 1))),
            ("no line end", b"220 ok", true, None),
            ("cr waiting for lf", b"220 ok\r", true, None),
            ("empty buffer", b"", true, None),
        ];

        for (label, input, bare_lf, expected) in cases {
            let mut framer = LineFramer::new(1000, bare_lf);

            assert_eq!(framer.next_line(input), Ok(expected), "{label}");
        }
    }

    #[test]
    fn next_line_rejects_bare_lf_when_disabled() {
        let mut framer = LineFramer::new(1000, false);

        let error = framer.next_line(b"220 ok\n").unwrap_err();

        assert_eq!(error.kind(), ParseErrorKind::BareLineFeed);
        assert_eq!(error.offset(), 6);
    }

    #[test]
    fn next_line_enforces_max_length() {
        type Case = (&'static str, Vec<u8>, Result<Option<Line>, ParseErrorKind>);
        let cases: [Case; 5] = [
            (
                "crlf line at limit",
                padded(8, b"\r\n"),
                Ok(Some(line(10, 8))),
            ),
            ("lf line at limit", padded(9, b"\n"), Ok(Some(line(10, 9)))),
            (
                "crlf line over limit",
                padded(9, b"\r\n"),
                Err(ParseErrorKind::LineTooLong),
            ),
            (
                "partial line at limit",
                padded(10, b""),
                Err(ParseErrorKind::LineTooLong),
            ),
            ("partial line below limit", padded(9, b""), Ok(None)),
        ];

        for (label, input, expected) in cases {
            let mut framer = LineFramer::new(10, true);

            let result = framer.next_line(&input).map_err(|error| error.kind());

            assert_eq!(result, expected, "{label}");
        }
    }

    #[test]
    fn next_line_resumes_search_where_it_stopped() {
        let input = b"250 a line fed one byte at a time\r\n";
        let mut framer = LineFramer::new(1000, true);

        for end in 1..input.len() {
            assert_eq!(
                framer.next_line(&input[..end]),
                Ok(None),
                "prefix of {end} bytes"
            );
            assert_eq!(framer.searched, end, "searched after {end} bytes");
        }

        assert_eq!(framer.next_line(input), Ok(Some(line(35, 33))));
        assert_eq!(framer.searched, 0);
    }

    const fn line(length: usize, content_length: usize) -> Line {
        Line {
            length,
            content_length,
        }
    }

    fn padded(length: usize, line_end: &[u8]) -> Vec<u8> {
        let mut line = vec![b'x'; length];
        line.extend_from_slice(line_end);
        line
    }
}
