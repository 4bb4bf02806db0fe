//! Mail transactions of the client session: MAIL, RCPT, then DATA or BDAT and the message
//! content (RFC 5321 section 3.3, RFC 2920, RFC 3030, RFC 2033).

use bytes::{Bytes, BytesMut};

use crate::address::XText;
use crate::capabilities::{Extension, SizeLimit};
use crate::client::state::{BodyTransfer, Expect, Framing, Pending, Transaction};
use crate::client::{
    Delivery, Envelope, Error, Event, Handle, RecipientPolicy, RecipientResult, Session, Stage,
    TranscriptLine,
};
use crate::command::{
    BodyType, Command, MailParameters, Notify, OriginalRecipient, RcptParameters,
};
use crate::data::{BodyInfo, DataEncoder};
use crate::reply::Reply;

/// The transfer plan of one message, decided from the message and the server's extensions.
struct Plan {
    parameters: MailParameters,
    chunked: bool,
    binary: bool,
    ascii_domains: bool,
    notify: Option<Notify>,
    original_recipients: bool,
}

impl Session {
    pub(crate) fn start_transaction(&mut self, handle: Handle, envelope: Envelope, body: Bytes) {
        let info = BodyInfo::scan(&body);
        let plan = match self.plan(&envelope, &body, &info) {
            Ok(plan) => plan,
            Err(error) => {
                self.events.push_back(Event::TransactionCompleted {
                    handle,
                    result: Err(error),
                });
                return;
            }
        };

        let pipelined = self.pipelining();
        let (reverse_path, recipients) = envelope.into_paths();
        let reverse_path = match plan.ascii_domains {
            true => reverse_path.to_ascii(),
            false => Ok(reverse_path),
        };
        let Ok(reverse_path) = reverse_path else {
            return;
        };
        self.send_command(
            Command::Mail {
                reverse_path,
                parameters: plan.parameters,
            },
            Expect::Mail,
        );

        // All or nothing cannot take back data sent before the RCPT replies, and LMTP never
        // uses BDAT, so early data only goes with the default policy.
        let early_data = pipelined
            && plan.chunked
            && self.config.recipient_policy == RecipientPolicy::AcceptedOnly;
        let recipient_count = recipients.len();
        self.transactions.push_back(Transaction {
            handle,
            recipients,
            body,
            rcpt_sent: 0,
            pipelined,
            data_sent: false,
            chunked: plan.chunked,
            binary: plan.binary,
            early_data,
            ascii_domains: plan.ascii_domains,
            notify: plan.notify,
            original_recipients: plan.original_recipients,
            results: Vec::with_capacity(recipient_count),
            mail_rejected: None,
            chunks_in_flight: 0,
            bdat_rejected: None,
            aborted: None,
            lmtp_pending: 0,
            final_reply: None,
        });
        if !pipelined {
            return;
        }

        for _ in 0..recipient_count {
            self.send_next_rcpt();
        }
        if !plan.chunked {
            self.send_command(Command::Data, Expect::Data);
        } else if early_data {
            self.start_message_data();
        }
    }

    /// Checks the message against the server's extensions (RFC 6531, RFC 6152, RFC 3030,
    /// RFC 1870, RFC 3461, RFC 8689) and decides the MAIL parameters it needs, and no others.
    fn plan(&self, envelope: &Envelope, body: &[u8], info: &BodyInfo) -> Result<Plan, Error> {
        let capabilities = &self.capabilities;
        let smtputf8_offered = capabilities.has(Extension::SmtpUtf8);
        let header_utf8 = header_section(body).iter().any(|&octet| octet >= 0x80);
        if header_utf8 && !smtputf8_offered {
            return Err(Error::ExtensionRequired {
                extension: Extension::SmtpUtf8,
                reason: "a non-ASCII header field",
            });
        }

        // RFC 6531 section 3.2: without SMTPUTF8 an internationalised domain goes as its
        // A-label, but a non-ASCII local part cannot be sent at all.
        let address_utf8 = envelope.needs_smtputf8();
        let ascii_domains = address_utf8 && !smtputf8_offered;
        if ascii_domains {
            let mailboxes = envelope
                .reverse_path()
                .mailbox()
                .into_iter()
                .chain(envelope.recipients());
            for mailbox in mailboxes {
                if !mailbox.local_part().is_ascii() {
                    return Err(Error::ExtensionRequired {
                        extension: Extension::SmtpUtf8,
                        reason: "a non-ASCII local part",
                    });
                }
                mailbox.to_ascii().map_err(Error::InvalidAddress)?;
            }
        }

        let chunked =
            self.config.chunking && !self.config.lmtp && capabilities.has(Extension::Chunking);
        let binary = info.has_nul();
        if binary && !(chunked && capabilities.has(Extension::BinaryMime)) {
            return Err(Error::ExtensionRequired {
                extension: Extension::BinaryMime,
                reason: "a NUL octet in the message",
            });
        }
        if info.is_eight_bit() && !binary && !capabilities.has(Extension::EightBitMime) {
            return Err(Error::ExtensionRequired {
                extension: Extension::EightBitMime,
                reason: "8-bit message content",
            });
        }

        if !binary && self.config.reject_long_lines && info.longest_line() > 998 {
            return Err(Error::LineTooLong {
                length: info.longest_line(),
            });
        }

        let size = capabilities.size();
        if let Some(SizeLimit::Max(limit)) = size {
            if info.size() > limit {
                return Err(Error::MessageTooLarge {
                    size: info.size(),
                    limit,
                });
            }
        }

        let dsn = envelope.dsn().filter(|_| capabilities.has(Extension::Dsn));
        if let Some(requested) = envelope.dsn() {
            if dsn.is_none() && !requested.best_effort {
                return Err(Error::ExtensionRequired {
                    extension: Extension::Dsn,
                    reason: "a delivery status notification request",
                });
            }
        }

        // RFC 8689 section 4.1: REQUIRETLS is only offered, and only sent, inside TLS.
        let require_tls = envelope.requires_tls();
        if require_tls && !(self.encrypted && capabilities.has(Extension::RequireTls)) {
            return Err(Error::ExtensionRequired {
                extension: Extension::RequireTls,
                reason: "a message that requires TLS",
            });
        }

        let body_type = if binary {
            Some(BodyType::BinaryMime)
        } else if info.is_eight_bit() {
            Some(BodyType::EightBitMime)
        } else {
            None
        };
        Ok(Plan {
            parameters: MailParameters {
                size: size.map(|_| info.size()),
                body: body_type,
                smtputf8: header_utf8 || (address_utf8 && smtputf8_offered),
                ret: dsn.and_then(|dsn| dsn.ret),
                envid: dsn.and_then(|dsn| dsn.envid.clone()),
                requiretls: require_tls,
                ..MailParameters::default()
            },
            chunked,
            binary,
            ascii_domains,
            notify: dsn.and_then(|dsn| dsn.notify),
            original_recipients: dsn.is_some_and(|dsn| dsn.original_recipients),
        })
    }

    pub(crate) fn on_mail(&mut self, reply: Reply) {
        let Some(transaction) = self.transactions.front_mut() else {
            self.abort(Error::UnexpectedReply {
                stage: Stage::Mail,
                reply,
            });
            return;
        };

        if reply.code().value() / 100 != 2 {
            if transaction.pipelined {
                // The replies to the pipelined RCPTs and DATA are still on their way.
                transaction.mail_rejected = Some(reply);
                return;
            }
            self.needs_reset = true;
            self.finish_transaction(Err(Error::Rejected {
                stage: Stage::Mail,
                reply,
            }));
            return;
        }
        if !transaction.pipelined {
            self.send_next_rcpt();
        }
    }

    pub(crate) fn on_rcpt(&mut self, reply: Reply) {
        let Some(transaction) = self.transactions.front_mut() else {
            self.abort(Error::UnexpectedReply {
                stage: Stage::Rcpt,
                reply,
            });
            return;
        };
        let Some(recipient) = transaction
            .recipients
            .get(transaction.results.len())
            .cloned()
        else {
            self.abort(Error::UnexpectedReply {
                stage: Stage::Rcpt,
                reply,
            });
            return;
        };

        transaction
            .results
            .push(RecipientResult::new(recipient, reply));
        if transaction.results.len() < transaction.recipients.len() {
            if !transaction.pipelined {
                self.send_next_rcpt();
            }
            return;
        }

        // Every RCPT has its reply, so data that waits for the replies may go now.
        let waiting = !transaction.pipelined || (transaction.chunked && !transaction.early_data);
        if !waiting {
            return;
        }
        let chunked = transaction.chunked;
        match self.refusal_before_data() {
            None if chunked => self.start_message_data(),
            None => self.send_command(Command::Data, Expect::Data),
            Some(error) => {
                self.needs_reset = true;
                self.finish_transaction(Err(error));
            }
        }
    }

    pub(crate) fn on_data(&mut self, reply: Reply) {
        let refusal = self.refusal_before_data();
        if reply.code().value() != 354 {
            let error = refusal.unwrap_or_else(|| Self::refusal(Stage::Data, reply));
            self.needs_reset = true;
            self.finish_transaction(Err(error));
            return;
        }

        let Some(transaction) = self.transactions.front_mut() else {
            return;
        };
        let Some(error) = refusal else {
            self.start_message_data();
            return;
        };

        if transaction.results.iter().any(RecipientResult::is_accepted)
            && transaction.mail_rejected.is_none()
        {
            // All or nothing, and some recipients were accepted: ending the data now would
            // deliver an empty message to them, so the connection is dropped instead.
            self.finish_transaction(Err(error));
            self.abort(Error::Closed);
            return;
        }
        // No recipient would receive it: end the data with a lone dot and report the rejection.
        transaction.aborted = Some(error);
        transaction.data_sent = true;
        self.output.extend_from_slice(b".\r\n");
        self.record_sent(b".");
        self.inflight.push_back(Pending {
            expect: Expect::EndOfData,
            deadline: None,
        });
    }

    pub(crate) fn on_end_of_data(&mut self, reply: Reply) {
        let Some(transaction) = self.transactions.front_mut() else {
            return;
        };
        if let Some(error) = transaction.aborted.take() {
            self.finish_transaction(Err(error));
            return;
        }

        // RFC 2033 section 4.2: LMTP sends one reply per accepted recipient, in RCPT order.
        if transaction.lmtp_pending > 0 {
            transaction.lmtp_pending -= 1;
            let next = transaction.results.iter_mut().find(|result| {
                result.reply().code().value() / 100 == 2 && result.data_reply().is_none()
            });
            if let Some(result) = next {
                result.set_data_reply(reply.clone());
            }
            transaction.final_reply = Some(reply);
            if transaction.lmtp_pending > 0 {
                return;
            }

            let results = std::mem::take(&mut transaction.results);
            let final_reply = transaction.final_reply.take();
            let result = match final_reply {
                Some(reply) if results.iter().any(RecipientResult::is_accepted) => {
                    Ok(Delivery::new(results, reply))
                }
                _ => Err(Error::RecipientsRejected {
                    recipients: results,
                }),
            };
            self.finish_transaction(result);
            return;
        }

        let result = if reply.code().value() / 100 == 2 {
            Ok(Delivery::new(
                std::mem::take(&mut transaction.results),
                reply,
            ))
        } else {
            Err(Self::refusal(Stage::EndOfData, reply))
        };
        self.finish_transaction(result);
    }

    /// Handles the reply to one BDAT chunk of the front transaction.
    pub(crate) fn on_bdat(&mut self, reply: Reply) {
        let Some(transaction) = self.transactions.front_mut() else {
            self.abort(Error::UnexpectedReply {
                stage: Stage::Bdat,
                reply,
            });
            return;
        };

        // RFC 3030 section 2: after a failed chunk no further chunk may be sent; chunks already
        // pipelined are discarded by the server and still get replies. A transaction whose chunk
        // marked LAST is not out yet is the newest one, and the transfer is its own.
        transaction.chunks_in_flight = transaction.chunks_in_flight.saturating_sub(1);
        if reply.code().value() / 100 != 2 && transaction.bdat_rejected.is_none() {
            transaction.bdat_rejected = Some(reply.clone());
            if !transaction.data_sent {
                self.transfer = None;
            }
        }
        let more_chunks = !transaction.data_sent && transaction.bdat_rejected.is_none();
        if transaction.chunks_in_flight > 0 || more_chunks {
            return;
        }

        let refusal = self.refusal_before_data();
        let Some(transaction) = self.transactions.front_mut() else {
            return;
        };
        let result = match (refusal, transaction.bdat_rejected.take()) {
            (Some(error), _) => Err(error),
            (None, Some(rejected)) => Err(Self::refusal(Stage::Bdat, rejected)),
            (None, None) => Ok(Delivery::new(
                std::mem::take(&mut transaction.results),
                reply,
            )),
        };
        // The server's transaction only ends with the chunk marked LAST.
        if result.is_err() && !transaction.data_sent {
            self.needs_reset = true;
        }
        self.finish_transaction(result);
    }

    /// Returns why the front transaction must not deliver its message, once every reply before
    /// the data is in.
    pub(crate) fn refusal_before_data(&self) -> Option<Error> {
        let transaction = self.transactions.front()?;
        if let Some(reply) = &transaction.mail_rejected {
            return Some(Error::Rejected {
                stage: Stage::Mail,
                reply: reply.clone(),
            });
        }

        let accepted = transaction
            .results
            .iter()
            .filter(|result| result.is_accepted())
            .count();
        let all_needed = self.config.recipient_policy == RecipientPolicy::AllOrNothing;
        if accepted == 0 || (all_needed && accepted < transaction.results.len()) {
            return Some(Error::RecipientsRejected {
                recipients: transaction.results.clone(),
            });
        }
        None
    }

    /// Sends RCPT for the next recipient of the newest transaction, which is the only one whose
    /// envelope is still going out.
    fn send_next_rcpt(&mut self) {
        let Some(transaction) = self.transactions.back_mut() else {
            return;
        };
        let Some(recipient) = transaction.recipients.get(transaction.rcpt_sent) else {
            return;
        };

        let forward_path = match transaction.ascii_domains {
            true => recipient.to_ascii().unwrap_or_else(|_| recipient.clone()),
            false => recipient.clone(),
        };
        let orcpt = transaction
            .original_recipients
            .then(|| XText::new(recipient.as_str()).ok())
            .flatten()
            .map(OriginalRecipient::rfc822);
        let command = Command::Rcpt {
            forward_path,
            parameters: RcptParameters {
                notify: transaction.notify,
                orcpt,
                ..RcptParameters::default()
            },
        };
        transaction.rcpt_sent += 1;
        self.send_command(command, Expect::Rcpt);
    }

    pub(crate) fn finish_transaction(&mut self, result: Result<Delivery, Error>) {
        let Some(transaction) = self.transactions.pop_front() else {
            return;
        };

        self.events.push_back(Event::TransactionCompleted {
            handle: transaction.handle,
            result,
        });
    }

    /// Starts sending the newest transaction's content, with DATA's framing or in BDAT chunks;
    /// every older transaction has sent its content already.
    fn start_message_data(&mut self) {
        let Some(transaction) = self.transactions.back() else {
            return;
        };

        let body = transaction.body.clone();
        let framing = match transaction.chunked {
            true => Framing::Chunks {
                chunk_size: self.config.bdat_chunk_size.max(1),
                binary: transaction.binary,
                scratch: BytesMut::new(),
            },
            false => Framing::EndOfData,
        };
        self.start_transfer(body, Expect::EndOfData, framing);
    }

    pub(crate) fn start_transfer(&mut self, body: Bytes, then: Expect, framing: Framing) {
        let encoder = match framing {
            Framing::EndOfData => DataEncoder::new(),
            Framing::Chunks { .. } => DataEncoder::without_stuffing(),
        };
        self.transfer = Some(BodyTransfer {
            body,
            offset: 0,
            encoder,
            octets: 0,
            then,
            framing,
        });
    }

    /// Encodes the next chunk of message content into the output; after the end of the content
    /// the next work may start in the same write.
    pub(crate) fn fill_message_data(&mut self) {
        let Some(mut transfer) = self.transfer.take() else {
            return;
        };

        let finished = match transfer.framing {
            Framing::EndOfData => self.fill_data_chunk(&mut transfer),
            Framing::Chunks { .. } => self.fill_bdat_chunk(&mut transfer),
        };
        if !finished {
            self.transfer = Some(transfer);
            return;
        }

        if let Some(transaction) = self.transactions.back_mut() {
            transaction.data_sent |= transfer.then == Expect::EndOfData;
        }
        self.advance();
    }

    /// Encodes DATA content; returns whether the end-of-data line went out.
    fn fill_data_chunk(&mut self, transfer: &mut BodyTransfer) -> bool {
        let end = transfer
            .body
            .len()
            .min(transfer.offset + self.config.max_transmit_chunk.max(1));
        let before = self.output.len();
        transfer
            .encoder
            .encode(&transfer.body[transfer.offset..end], &mut self.output);
        transfer.offset = end;
        if end < transfer.body.len() {
            transfer.octets += (self.output.len() - before) as u64;
            return false;
        }

        transfer.encoder.finish(&mut self.output);
        transfer.octets += (self.output.len() - before) as u64;
        if self.config.transcript {
            self.transcript.push_back(TranscriptLine::MessageData {
                octets: transfer.octets,
            });
        }

        // RFC 2033 section 4.2: an LMTP server replies once for each accepted recipient.
        let mut replies = 1;
        if let (true, Some(transaction)) = (self.config.lmtp, self.transactions.back_mut()) {
            if transfer.then == Expect::EndOfData {
                let accepted = transaction
                    .results
                    .iter()
                    .filter(|result| result.is_accepted())
                    .count();
                replies = accepted.max(1);
                transaction.lmtp_pending = accepted;
            }
        }
        for _ in 0..replies {
            self.inflight.push_back(Pending {
                expect: transfer.then,
                deadline: None,
            });
        }
        true
    }

    /// Sends the next BDAT chunk; returns whether the chunk marked LAST went out.
    fn fill_bdat_chunk(&mut self, transfer: &mut BodyTransfer) -> bool {
        // Without PIPELINING each chunk waits for the reply to the previous one.
        let waiting = self
            .inflight
            .iter()
            .any(|pending| matches!(pending.expect, Expect::Bdat { .. }));
        if waiting && !self.pipelining() {
            return false;
        }
        let Framing::Chunks {
            chunk_size,
            binary,
            scratch,
        } = &mut transfer.framing
        else {
            return false;
        };

        let end = transfer.body.len().min(transfer.offset + *chunk_size);
        let input = &transfer.body[transfer.offset..end];
        let last = end == transfer.body.len();
        scratch.clear();
        if *binary {
            scratch.extend_from_slice(input);
        } else {
            transfer.encoder.encode(input, scratch);
            if last {
                transfer.encoder.finish(scratch);
            }
        }
        transfer.offset = end;

        let size = scratch.len() as u64;
        let chunk = scratch.split().freeze();
        if let Some(transaction) = self.transactions.back_mut() {
            transaction.chunks_in_flight += 1;
        }
        self.send_command(Command::Bdat { size, last }, Expect::Bdat { last });
        self.output.extend_from_slice(&chunk);
        if self.config.transcript {
            self.transcript
                .push_back(TranscriptLine::MessageData { octets: size });
        }
        last
    }
}

/// Returns the header section of a message: everything before the first empty line.
fn header_section(message: &[u8]) -> &[u8] {
    let mut line_start = 0;
    while let Some(offset) = message[line_start..]
        .iter()
        .position(|&octet| octet == b'\n')
    {
        let line = &message[line_start..line_start + offset];
        if line.is_empty() || line == b"\r" {
            return &message[..line_start];
        }
        line_start += offset + 1;
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_ends_at_empty_line() {
        let cases: [(&str, &[u8], &[u8]); 4] = [
            ("crlf", b"A: 1\r\nB: 2\r\n\r\nbody", b"A: 1\r\nB: 2\r\n"),
            ("bare lf", b"A: 1\n\nbody", b"A: 1\n"),
            ("no body", b"A: 1\r\n", b"A: 1\r\n"),
            ("empty first line", b"\r\nbody", b""),
        ];

        for (label, message, expected) in cases {
            assert_eq!(header_section(message), expected, "{label}");
        }
    }
}
