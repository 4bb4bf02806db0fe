//! Reply writer, for the server side and for tests.

use bytes::{BufMut, BytesMut};

use super::Reply;

impl Reply {
    /// Writes the reply in the strict form of RFC 5321 section 4.2: `code-text CRLF` for each
    /// line but the last, then `code SP text CRLF`, or `code CRLF` when the last line has no
    /// text.
    pub fn encode(&self, buf: &mut BytesMut) {
        let digits = self.code.digits();
        let text_length: usize = self.lines().map(|line| line.len()).sum();
        let line_count = self.lines().count();
        buf.reserve(text_length + line_count * (digits.len() + 3));

        for (index, line) in self.lines().enumerate() {
            buf.put_slice(&digits);
            if index + 1 < line_count {
                buf.put_u8(b'-');
            } else if !line.is_empty() {
                buf.put_u8(b' ');
            }
            buf.put_slice(line);
            buf.put_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ReplyDecoder;
    use crate::reply::tests::reply;

    #[test]
    fn encode_writes_strict_lines() {
        type Case = (&'static str, u16, &'static [&'static [u8]], &'static [u8]);
        let cases: [Case; 6] = [
            ("single line", 250, &[b"Ok"], b"250 Ok\r\n"),
            ("code only", 220, &[b""], b"220\r\n"),
            ("no lines", 334, &[], b"334\r\n"),
            (
                "continuations",
                250,
                &[b"mx.example.net", b"PIPELINING", b"8BITMIME"],
                b"250-mx.example.net\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            ),
            (
                "empty continuation",
                250,
                &[b"", b"end"],
                b"250-\r\n250 end\r\n",
            ),
            ("empty last line", 250, &[b"x", b""], b"250-x\r\n250\r\n"),
        ];

        for (label, code, lines, expected) in cases {
            let mut buf = BytesMut::new();

            reply(code, lines).encode(&mut buf);

            assert_eq!(&buf[..], expected, "{label}");
        }
    }

    #[test]
    fn decode_of_encode_is_identity() {
        let cases: [(&str, u16, &[&[u8]]); 9] = [
            ("single line", 250, &[b"2.0.0 Ok"]),
            ("code only", 354, &[b""]),
            (
                "greeting",
                220,
                &[b"mx.example.net ESMTP", b"no bulk mail", b"-- ready --"],
            ),
            (
                "ehlo",
                250,
                &[
                    b"mx.example.net",
                    b"SIZE 10240000",
                    b"AUTH PLAIN LOGIN",
                    b"",
                ],
            ),
            ("rejection", 550, &[b"5.7.25 no PTR", b"5.7.25 record"]),
            ("leading space in text", 250, &[b" spaced"]),
            ("tab in text", 451, &[b"4.3.0\tbusy"]),
            ("utf-8 text", 250, &["caf\u{e9} \u{2713}".as_bytes()]),
            ("non utf-8 text", 554, &[b"caf\xe9"]),
        ];

        for (label, code, lines) in cases {
            let reply = reply(code, lines);
            let mut buf = BytesMut::new();
            reply.encode(&mut buf);

            let decoded = ReplyDecoder::default().decode(&mut buf);

            assert_eq!(decoded, Ok(Some(reply)), "{label}");
            assert!(buf.is_empty(), "{label}: bytes left");
        }
    }
}
