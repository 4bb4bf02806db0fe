//! ESMTP extensions against real servers that offer them: CHUNKING, SIZE, DSN,
//! ENHANCEDSTATUSCODES and SMTPUTF8 on Postfix, and LMTP on Postfix's smtp-sink.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_blocking::{Client, Options, Roots};
use smtp_interop::{Postfix, REJECTED_RECIPIENT, postfix, unique_token};
use smtp_proto::client::{Dsn, Envelope, Error as SessionError, TlsPolicy, TranscriptLine};
use smtp_proto::command::{Notify, Ret};
use smtp_proto::{Credentials, Domain, Extension, Mailbox, ReversePath, XText};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn bdat_used_when_offered() {
    let server = postfix();
    let token = unique_token("bdat");
    let message = message(&token, 100);
    let (mut client, lines) = submission(server, |_| {});
    assert!(client.capabilities().has(Extension::Chunking));

    client.send(envelope(&["chunks"]), message.clone()).unwrap();
    client.quit().unwrap();

    // MAIL, RCPT and BDAT went out in one group, before the reply to MAIL was read.
    let order = transcript_order(&lines);
    let mail = order
        .iter()
        .position(|line| line.starts_with("C: MAIL FROM"))
        .unwrap();
    let mail_reply = mail
        + order[mail..]
            .iter()
            .position(|line| line.starts_with("S: "))
            .unwrap();
    let group: Vec<&String> = order[mail..mail_reply].iter().collect();
    assert_eq!(group.len(), 4, "{order:?}");
    assert!(group[1].starts_with("C: RCPT TO"), "{order:?}");
    assert!(group[2].starts_with("C: BDAT"), "{order:?}");
    let sent = sent_lines(&lines);
    let bdat = format!("BDAT {} LAST", message.len());
    assert!(sent.contains(&bdat), "{sent:?}");
    assert!(!sent.iter().any(|line| line == "DATA"), "{sent:?}");
    assert_eq!(
        server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT),
        message
    );
}

#[test]
fn bdat_many_chunks_arrive_exact() {
    let server = postfix();
    let token = unique_token("bdat-chunks");
    let message = message(&token, 20_000);
    let (mut client, lines) = submission(server, |options| {
        options.session.bdat_chunk_size = 4096;
    });

    client.send(envelope(&["chunks"]), message.clone()).unwrap();
    client.quit().unwrap();

    let chunks: Vec<String> = sent_lines(&lines)
        .into_iter()
        .filter(|line| line.starts_with("BDAT "))
        .collect();
    assert!(chunks.len() >= 5, "{chunks:?}");
    assert!(chunks.last().unwrap().ends_with(" LAST"), "{chunks:?}");
    let total: usize = chunks
        .iter()
        .map(|line| line.split(' ').nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, message.len());
    assert_eq!(
        server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT),
        message
    );
}

#[test]
fn data_used_when_chunking_disabled() {
    let server = postfix();
    let token = unique_token("no-bdat");
    let message = message(&token, 100);
    let (mut client, lines) = submission(server, |options| options.session.chunking = false);

    client.send(envelope(&["data"]), message.clone()).unwrap();
    client.quit().unwrap();

    let sent = sent_lines(&lines);
    assert!(sent.iter().any(|line| line == "DATA"), "{sent:?}");
    assert!(
        !sent.iter().any(|line| line.starts_with("BDAT")),
        "{sent:?}"
    );
    assert_eq!(
        server.wait_for_message_as_sent(token.as_bytes(), DELIVERY_TIMEOUT),
        message
    );
}

#[test]
fn size_declared_and_limit_enforced() {
    let server = postfix();
    let token = unique_token("size");
    let small = message(&token, 100);
    let (mut client, lines) = submission(server, |_| {});
    let limit = match client.capabilities().size() {
        Some(smtp_proto::SizeLimit::Max(limit)) => limit,
        other => panic!("Postfix should announce a SIZE limit, got {other:?}"),
    };

    client.send(envelope(&["size"]), small.clone()).unwrap();
    let mut large = b"Subject: too large\r\n\r\n".to_vec();
    large.resize(limit as usize + 1, b'x');
    let error = client.send(envelope(&["size"]), large).unwrap_err();
    client.quit().unwrap();

    match error.smtp() {
        Some(SessionError::MessageTooLarge { size, limit: found }) => {
            assert!(*size > limit, "{size}");
            assert_eq!(*found, limit);
        }
        other => panic!("expected a local size error, got {other:?}"),
    }
    let mails: Vec<String> = sent_lines(&lines)
        .into_iter()
        .filter(|line| line.starts_with("MAIL FROM"))
        .collect();
    assert_eq!(
        mails,
        [format!(
            "MAIL FROM:<sender@example.test> SIZE={}",
            small.len()
        )]
    );
}

#[test]
fn dsn_success_report_delivered() {
    let server = postfix();
    let token = unique_token("dsn");
    let envid = format!("envid-{token}");
    let mut dsn = Dsn::default();
    dsn.ret = Some(Ret::Headers);
    dsn.envid = Some(XText::new(&envid).unwrap());
    dsn.notify = Some(Notify::SUCCESS | Notify::FAILURE);
    dsn.original_recipients = true;
    let (mut client, lines) = submission(server, |_| {});
    assert!(client.capabilities().has(Extension::Dsn));

    client
        .send(envelope(&["dsn"]).with_dsn(dsn), message(&token, 10))
        .unwrap();
    client.quit().unwrap();

    let sent = sent_lines(&lines);
    assert!(
        sent.iter()
            .any(|line| line.contains(" RET=HDRS") && line.contains(&format!(" ENVID={envid}"))),
        "{sent:?}"
    );
    assert!(
        sent.contains(
            &"RCPT TO:<dsn@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dsn@example.test"
                .to_string()
        ),
        "{sent:?}"
    );
    // Postfix reports the successful delivery to the sender, quoting the envelope id.
    let report = server.wait_for_message(
        format!("Original-Envelope-Id: {envid}").as_bytes(),
        DELIVERY_TIMEOUT,
    );
    assert!(
        String::from_utf8_lossy(&report).contains("Action: delivered"),
        "{}",
        String::from_utf8_lossy(&report)
    );
}

#[test]
fn enhanced_status_codes_on_replies() {
    let server = postfix();
    let (mut client, _) = submission(server, |_| {});
    assert!(client.capabilities().has(Extension::EnhancedStatusCodes));
    let envelope = Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        vec![
            Mailbox::parse("esc@example.test").unwrap(),
            Mailbox::parse(REJECTED_RECIPIENT).unwrap(),
        ],
    )
    .unwrap();

    let delivery = client
        .send(envelope, message(&unique_token("esc"), 10))
        .unwrap();
    client.quit().unwrap();

    let final_code = delivery.reply().enhanced_status().unwrap();
    assert_eq!(final_code.to_string(), "2.0.0");
    let rejected = delivery.rejected().next().unwrap();
    assert_eq!(rejected.reply().enhanced_status().unwrap().class(), 5);
}

#[test]
fn idn_domain_with_smtputf8_delivered() {
    let server = postfix();
    let token = unique_token("idn");
    let (mut client, lines) = submission(server, |_| {});
    assert!(client.capabilities().has(Extension::SmtpUtf8));
    let envelope = Envelope::new(
        ReversePath::parse("absender@bücher.example").unwrap(),
        vec![Mailbox::parse("idn@example.test").unwrap()],
    )
    .unwrap();

    client.send(envelope, message(&token, 10)).unwrap();
    client.quit().unwrap();

    let sent = sent_lines(&lines);
    assert!(
        sent.contains(&format!(
            "MAIL FROM:<absender@bücher.example> SIZE={} SMTPUTF8",
            message(&token, 10).len()
        )),
        "{sent:?}"
    );
    let arrived = server.wait_for_message(token.as_bytes(), DELIVERY_TIMEOUT);
    assert!(
        String::from_utf8_lossy(&arrived).contains("Return-Path: <absender@bücher.example>"),
        "{}",
        String::from_utf8_lossy(&arrived)
    );
}

#[test]
fn lmtp_reply_per_recipient() {
    let sink = SmtpSink::start_lmtp();
    let mut options = Options::default();
    options.session.tls = TlsPolicy::None;
    options.session.lmtp = true;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    let mut client = Client::connect(&format!("127.0.0.1:{}", sink.port), options).unwrap();
    let envelope = Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        vec![
            Mailbox::parse("one@example.test").unwrap(),
            Mailbox::parse("two@example.test").unwrap(),
            Mailbox::parse("three@example.test").unwrap(),
        ],
    )
    .unwrap();

    let first = client.send(envelope.clone(), message("lmtp", 10)).unwrap();
    let second = client.send(envelope, message("lmtp again", 10)).unwrap();
    client.quit().unwrap();

    for delivery in [&first, &second] {
        assert_eq!(delivery.recipients().len(), 3);
        for recipient in delivery.recipients() {
            let data_reply = recipient
                .data_reply()
                .expect("one LMTP reply per recipient");
            assert_eq!(data_reply.code().value(), 250, "{recipient:?}");
            assert!(recipient.is_accepted());
        }
    }
}

/// Postfix's smtp-sink in LMTP mode on a free loopback port, ended when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
}

impl SmtpSink {
    fn start_lmtp() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = Command::new("smtp-sink")
            .args([
                "-u",
                "nobody",
                "-L",
                "-c",
                &format!("127.0.0.1:{port}"),
                "10",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink comes with Debian's postfix package: install postfix");

        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "smtp-sink did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Lines = Arc<Mutex<Vec<TranscriptLine>>>;

/// Connects to Postfix's submission port with STARTTLS and AUTH, recording the transcript.
fn submission(server: &Postfix, configure: impl FnOnce(&mut Options)) -> (Client, Lines) {
    let mut options = Options::default();
    options.session.tls = TlsPolicy::Required;
    options.session.ehlo_name = Domain::parse("client.example.test").unwrap();
    options.session.credentials = Some(Credentials::password(&server.user, &server.password));
    options.session.transcript = true;
    options.roots = Roots::CaFile(server.ca_file.clone());
    configure(&mut options);

    let lines: Lines = Arc::default();
    let recorded = Arc::clone(&lines);
    let client = Client::connect_with_transcript(
        &format!("127.0.0.1:{}", server.submission_port),
        options,
        move |line, _| recorded.lock().unwrap().push(line.clone()),
    )
    .unwrap();
    (client, lines)
}

fn envelope(local_parts: &[&str]) -> Envelope {
    let recipients = local_parts
        .iter()
        .map(|local| Mailbox::parse(&format!("{local}@example.test")).unwrap())
        .collect();
    Envelope::new(
        ReversePath::parse("sender@example.test").unwrap(),
        recipients,
    )
    .unwrap()
}

/// Builds a message of about `lines` body lines, some starting with a dot.
fn message(token: &str, lines: usize) -> Vec<u8> {
    let mut message = format!("From: sender@example.test\r\nSubject: {token}\r\n\r\n").into_bytes();
    for index in 0..lines {
        let prefix = if index % 7 == 0 { "." } else { "" };
        message.extend_from_slice(format!("{prefix}line {index} of {token}\r\n").as_bytes());
    }
    message
}

/// Returns the transcript as `C: ` and `S: ` lines, and `C: <data>` for message content.
fn transcript_order(lines: &Lines) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| match line {
            TranscriptLine::Sent(bytes) => Some(format!("C: {}", String::from_utf8_lossy(bytes))),
            TranscriptLine::Received(bytes) => {
                Some(format!("S: {}", String::from_utf8_lossy(bytes)))
            }
            TranscriptLine::MessageData { .. } => Some("C: <data>".to_string()),
            _ => None,
        })
        .collect()
}

fn sent_lines(lines: &Lines) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| match line {
            TranscriptLine::Sent(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}
