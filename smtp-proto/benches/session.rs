//! Whole mail transactions through a client `Session` in memory, the heap allocations each one
//! makes, the allocations per reply of the `ReplyDecoder`, and the memory an idle session keeps.
//!
//! A counting global allocator (`stats_alloc`) wraps the system allocator, so the counts cover
//! every allocation of the session and the decoder. The envelopes the session takes by value are
//! cloned before counting starts. The counts are printed before criterion measures the time.

#![expect(
    clippy::disallowed_methods,
    reason = "each session takes one real instant as the start of a clock that never moves"
)]

use std::alloc::System;
use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use smtp_proto::client::{Config, Envelope, Event, Session, TlsPolicy};
use smtp_proto::{Mailbox, ReplyDecoder, ReversePath};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    report_allocations();

    let mut criterion = Criterion::default().configure_from_args();
    transaction_time(&mut criterion);
    criterion.final_summary();
}

/// Prints the allocations per message on the pipelined steady path, per reply of the decoder,
/// and the memory of an idle session.
fn report_allocations() {
    let mut run = Transactions::new(true);
    run.messages(run.envelopes(WARM_UP));
    let envelopes = run.envelopes(MEASURED);
    let region = Region::new(GLOBAL);
    run.messages(envelopes);
    let change = region.change();
    println!(
        "session, pipelined: {:.2} allocations and {:.0} allocated octets per message",
        change.allocations as f64 / MEASURED as f64,
        change.bytes_allocated as f64 / MEASURED as f64,
    );

    let mut run = Transactions::new(false);
    run.messages(run.envelopes(WARM_UP));
    let envelopes = run.envelopes(MEASURED);
    let region = Region::new(GLOBAL);
    run.messages(envelopes);
    let change = region.change();
    println!(
        "session, lock-step: {:.2} allocations and {:.0} allocated octets per message",
        change.allocations as f64 / MEASURED as f64,
        change.bytes_allocated as f64 / MEASURED as f64,
    );

    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::with_capacity(4096);
    let mut decode = |count: usize| {
        for _ in 0..count {
            buf.extend_from_slice(END_OF_DATA_REPLY);
            let reply = decoder.decode(&mut buf).expect("valid reply");
            black_box(reply);
        }
    };
    decode(WARM_UP);
    let region = Region::new(GLOBAL);
    decode(MEASURED);
    let change = region.change();
    println!(
        "reply decoder: {:.2} allocations per 250 reply",
        change.allocations as f64 / MEASURED as f64
    );

    let region = Region::new(GLOBAL);
    let session = ready_session(true);
    let change = region.change();
    let heap = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    println!(
        "idle session: {} octets inline, {heap} octets on the heap, {} live allocations",
        size_of::<Session>(),
        change.allocations as isize - change.deallocations as isize,
    );
    drop(session);
}

fn transaction_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(1));
    for pipelined in [true, false] {
        let name = if pipelined { "pipelined" } else { "lock-step" };
        group.bench_function(format!("transaction/{name}"), |b| {
            let mut run = Transactions::new(pipelined);
            // The time includes cloning the envelope, which the session takes by value.
            b.iter(|| run.messages(run.envelopes(1)));
        });
    }
    group.finish();
}

/// A session that is ready for mail, and a scripted server that answers each message.
struct Transactions {
    session: Session,
    envelope: Envelope,
    body: Bytes,
    now: Instant,
    pipelined: bool,
}

impl Transactions {
    fn new(pipelined: bool) -> Self {
        let envelope = Envelope::new(
            ReversePath::parse("sender@example.org").expect("valid sender"),
            vec![Mailbox::parse("recipient@example.net").expect("valid recipient")],
        )
        .expect("one recipient");

        Self {
            session: ready_session(pipelined),
            envelope,
            body: Bytes::from(message(1024)),
            now: Instant::now(),
            pipelined,
        }
    }

    /// Returns `count` copies of the envelope, made before the allocations are counted.
    fn envelopes(&self, count: usize) -> Vec<Envelope> {
        vec![self.envelope.clone(); count]
    }

    /// Sends one message per envelope, each answered by the scripted server, and checks each
    /// result.
    fn messages(&mut self, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            let handle = self
                .session
                .send(envelope, self.body.clone())
                .expect("session accepts work");
            if self.pipelined {
                self.transmit();
                self.session.handle_input(ENVELOPE_REPLIES);
            } else {
                for reply in [MAIL_REPLY, RCPT_REPLY, DATA_REPLY] {
                    self.transmit();
                    self.session.handle_input(reply);
                }
            }
            self.transmit();
            self.session.handle_input(END_OF_DATA_REPLY);

            let mut delivered = false;
            while let Some(event) = self.session.poll_event() {
                if let Event::TransactionCompleted {
                    handle: done,
                    result,
                } = event
                {
                    delivered = done == handle && result.is_ok();
                }
            }
            assert!(delivered, "the message was not delivered");
        }
    }

    fn transmit(&mut self) {
        while let Some(bytes) = self.session.poll_transmit(self.now) {
            black_box(bytes);
        }
    }
}

/// Returns a session past its greeting and EHLO, with or without PIPELINING offered.
fn ready_session(pipelined: bool) -> Session {
    let mut config = Config::default();
    config.tls = TlsPolicy::None;
    let now = Instant::now();
    let mut session = Session::new(config, now);

    session.handle_input(b"220 mx.example.net ESMTP Postfix\r\n");
    while session.poll_transmit(now).is_some() {}
    let ehlo: &[u8] = if pipelined {
        b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n\
          250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
    } else {
        b"250-mx.example.net\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n\
          250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
    };
    session.handle_input(ehlo);
    while session.poll_event().is_some() {}
    assert!(session.is_ready(), "the session is not ready after EHLO");
    session
}

/// Builds a message of `size` octets: a few header fields and 76-character body lines.
fn message(size: usize) -> Vec<u8> {
    let mut message = b"From: sender@example.org\r\nTo: recipient@example.net\r\n\
        Subject: benchmark\r\nMessage-ID: <1@example.org>\r\n\r\n"
        .to_vec();
    while message.len() + 78 <= size {
        message.extend_from_slice(&[b'x'; 76]);
        message.extend_from_slice(b"\r\n");
    }
    let rest = size - message.len() - 2;
    message.extend(std::iter::repeat_n(b'y', rest));
    message.extend_from_slice(b"\r\n");
    message
}

const MAIL_REPLY: &[u8] = b"250 2.1.0 Ok\r\n";
const RCPT_REPLY: &[u8] = b"250 2.1.5 Ok\r\n";
const DATA_REPLY: &[u8] = b"354 End data with <CR><LF>.<CR><LF>\r\n";
const ENVELOPE_REPLIES: &[u8] =
    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
const END_OF_DATA_REPLY: &[u8] = b"250 2.0.0 Ok: queued as 4BXK2M0v3Xz9vN1\r\n";
/// Messages sent before counting, so buffers have grown to their steady size.
const WARM_UP: usize = 100;
const MEASURED: usize = 10_000;
