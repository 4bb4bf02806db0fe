//! DATA encoding of a 10 MB body beside a plain copy of the same bytes.
//!
//! "plain" is text with CRLF line ends and no line starting with a dot, so the encoder only
//! copies. "dots" starts every tenth line with a dot, and "bare-lf" ends every line with a bare
//! LF, so the encoder inserts an octet on those lines. "memcpy" copies the plain body into a
//! buffer of the same kind, which is the limit the encoder is measured against.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput};
use smtp_proto::DataEncoder;

fn main() {
    // `--once NAME` copies (`memcpy`) or encodes (`plain`, `dots`, `bare-lf`) one body once and
    // exits, for an instruction count under callgrind.
    let arguments: Vec<String> = std::env::args().collect();
    if let Some(position) = arguments.iter().position(|argument| argument == "--once") {
        let name = arguments.get(position + 1).map_or("plain", String::as_str);
        encode_once(name);
        return;
    }

    let mut criterion = Criterion::default().sample_size(20).configure_from_args();
    data_encoding(&mut criterion);
    criterion.final_summary();
}

/// Copies or encodes the body `name` once.
fn encode_once(name: &str) {
    let kind = match name {
        "dots" => Line::DotEveryTenth,
        "bare-lf" => Line::BareLf,
        _ => Line::Crlf,
    };
    let body = body(BODY_SIZE, kind);
    let mut out = BytesMut::with_capacity(BODY_SIZE * 2);
    if name == "memcpy" {
        out.extend_from_slice(black_box(&body));
    } else {
        let mut encoder = DataEncoder::new();
        encoder.encode(black_box(&body), &mut out);
        encoder.finish(&mut out);
    }
    black_box(&out);
}

fn data_encoding(c: &mut Criterion) {
    let bodies = [
        ("plain", body(BODY_SIZE, Line::Crlf)),
        ("dots", body(BODY_SIZE, Line::DotEveryTenth)),
        ("bare-lf", body(BODY_SIZE, Line::BareLf)),
    ];

    let mut group = c.benchmark_group("data");
    group.throughput(Throughput::Bytes(BODY_SIZE as u64));
    let mut out = BytesMut::with_capacity(BODY_SIZE * 2);

    group.bench_function("memcpy", |b| {
        let plain = &bodies[0].1;
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(plain));
            black_box(&out);
        });
    });
    for (name, body) in &bodies {
        group.bench_with_input(BenchmarkId::new("encode", name), body, |b, body| {
            b.iter(|| {
                out.clear();
                let mut encoder = DataEncoder::new();
                encoder.encode(black_box(body), &mut out);
                encoder.finish(&mut out);
                black_box(&out);
            });
        });
    }
    group.finish();
}

/// Line ends and leading dots of a generated body.
#[derive(Clone, Copy)]
enum Line {
    Crlf,
    DotEveryTenth,
    BareLf,
}

/// Builds a body of `size` octets of 76-character lines of mail text.
fn body(size: usize, kind: Line) -> Vec<u8> {
    let text = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem";
    let mut body = Vec::with_capacity(size + 80);
    let mut line = 0;
    while body.len() < size {
        if matches!(kind, Line::DotEveryTenth) && line % 10 == 0 {
            body.push(b'.');
        }
        body.extend_from_slice(text);
        match kind {
            Line::BareLf => body.push(b'\n'),
            _ => body.extend_from_slice(b"\r\n"),
        }
        line += 1;
    }
    body.truncate(size);
    body
}

/// A 10 MB body, the largest message many providers accept.
const BODY_SIZE: usize = 10 * 1000 * 1000;
