//! Target `data_encoder`: dot-stuffing, CRLF canonicalisation and the end of data.
//!
//! Input layout: one split seed for [`super::split`], then the message body.

use bytes::BytesMut;
use smtp_proto::data::{DataDecoder, DecodeStatus};
use smtp_proto::{BodyInfo, DataEncoder};

/// Encodes the body in chunks, then checks that the wire form:
///
/// - equals the wire form of the whole body;
/// - has no bare CR or LF;
/// - contains exactly one end-of-data sequence `CRLF.CRLF`, at its end, counting the CRLF that
///   ends the DATA command;
/// - unstuffs to the CRLF-canonical body, whose length [`BodyInfo::size`] returns.
pub fn check(data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };

    let mut encoder = DataEncoder::new();
    let mut wire = BytesMut::new();
    for chunk in super::split(body, seed) {
        encoder.encode(chunk, &mut wire);
    }
    encoder.finish(&mut wire);

    // `finish` resets the encoder, so it encodes the next body from the start.
    let mut whole = BytesMut::new();
    encoder.encode(body, &mut whole);
    encoder.finish(&mut whole);
    assert_eq!(wire, whole, "encoding in chunks changed the wire form");

    super::assert_only_crlf(&wire, Some(b'\n'));
    let mut after_data_command = b"\r\n".to_vec();
    after_data_command.extend_from_slice(&wire);
    assert_eq!(
        super::count(&after_data_command, b"\r\n.\r\n"),
        1,
        "{}",
        super::show(&wire)
    );
    assert!(
        after_data_command.ends_with(b"\r\n.\r\n"),
        "{}",
        super::show(&wire)
    );

    let canonical = canonical(body);
    assert_eq!(
        BodyInfo::scan(body).size(),
        canonical.len() as u64,
        "BodyInfo::size"
    );
    for chunks in [vec![&wire[..]], super::split(&wire, seed)] {
        let mut decoder = DataDecoder::new();
        let mut unstuffed = BytesMut::new();
        let mut consumed = 0;
        for chunk in &chunks {
            assert_eq!(consumed, 0, "the end of data came before the last chunk");
            match decoder.decode(chunk, &mut unstuffed) {
                DecodeStatus::Complete { consumed: used } => consumed = used,
                DecodeStatus::Incomplete => {}
                other => panic!("unknown status {other:?}"),
            }
        }
        assert_eq!(
            consumed,
            chunks.last().map_or(0, |chunk| chunk.len()),
            "end of data early"
        );
        assert_eq!(
            super::show(&unstuffed),
            super::show(&canonical),
            "unstuffed body"
        );
    }
}

/// Returns the body with every CRLF, bare CR and bare LF written as CRLF, and CRLF added to a
/// last line without a line end: the message the server stores.
pub fn canonical(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 2 + 2);
    let mut bytes = body.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                bytes.next_if_eq(&b'\n');
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
    }
    if !body.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
