//! Reply parsing: this crate's `ReplyDecoder` beside the parsers of lettre 0.11 and of Stalwart's
//! `smtp-proto` 0.2, on an EHLO reply, a 250 reply and a multi-line 550 reply.
//!
//! "whole" feeds each reply in one piece. "split" feeds it in pieces of `PIECE` octets, as a slow
//! network delivers it; lettre reads a reply line by line and parses the text read so far after
//! each line, so its split case does the same.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput};
use smtp_proto::ReplyDecoder;
use stalwart_smtp_proto as stalwart;

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    reply_parsing(&mut criterion);
    criterion.final_summary();
}

fn reply_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply");
    for (name, reply) in REPLIES {
        group.throughput(Throughput::Bytes(reply.len() as u64));
        for split in [false, true] {
            let piece = if split { PIECE } else { reply.len() };
            let case = format!("{name}/{}", if split { "split" } else { "whole" });

            group.bench_with_input(BenchmarkId::new("smtp-proto", &case), reply, |b, reply| {
                let mut decoder = ReplyDecoder::default();
                let mut buf = BytesMut::with_capacity(4096);
                b.iter(|| {
                    for chunk in reply.chunks(piece) {
                        buf.extend_from_slice(chunk);
                        if let Some(reply) = decoder.decode(&mut buf).expect("valid reply") {
                            black_box(reply);
                        }
                    }
                });
            });

            group.bench_with_input(BenchmarkId::new("stalwart", &case), reply, |b, reply| {
                b.iter(|| {
                    let mut receiver = stalwart::response::parser::ResponseReceiver::default();
                    for chunk in reply.chunks(piece) {
                        let mut bytes = chunk.iter();
                        match receiver.parse(&mut bytes) {
                            Ok(response) => {
                                black_box(response);
                            }
                            Err(stalwart::Error::NeedsMoreData { .. }) => {}
                            Err(error) => panic!("stalwart rejected the reply: {error}"),
                        }
                    }
                });
            });

            group.bench_with_input(BenchmarkId::new("lettre", &case), reply, |b, reply| {
                b.iter(|| black_box(lettre_parse(reply, split)));
            });
        }
    }
    group.finish();
}

/// Parses a reply the way lettre 0.11 does: the bytes must be UTF-8, and when the reply arrives
/// line by line (`split`) the whole text read so far is parsed again after each line, as
/// `SmtpConnection::read_response` does.
fn lettre_parse(reply: &[u8], split: bool) -> lettre::transport::smtp::response::Response {
    let text = std::str::from_utf8(reply).expect("the benchmark replies are ASCII");
    if !split {
        return text.parse().expect("lettre parses the reply");
    }

    let mut read = String::with_capacity(100);
    for line in text.split_inclusive('\n') {
        read.push_str(line);
        if let Ok(response) = read.parse() {
            return response;
        }
    }
    panic!("lettre found no complete reply");
}

/// The size of the pieces a split reply arrives in, so that every line spans pieces.
const PIECE: usize = 16;

/// Replies as real servers send them: Postfix's EHLO reply, its reply after the end of data,
/// and a multi-line policy rejection with enhanced status codes.
const REPLIES: [(&str, &[u8]); 3] = [
    (
        "ehlo",
        b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
          250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n\
          250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
    ),
    ("250", b"250 2.0.0 Ok: queued as 4BXK2M0v3Xz9vN1\r\n"),
    (
        "550-multiline",
        b"550-5.7.1 [192.0.2.1] The IP address sending this message is not authorized to\r\n\
          550-5.7.1 send mail directly to this server. Please use the relay of your\r\n\
          550 5.7.1 provider instead. See https://mail.example.net/policy for details.\r\n",
    ),
];
