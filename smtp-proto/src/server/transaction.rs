//! Mail transactions of the server session: MAIL, RCPT, then DATA or BDAT and the message
//! content (RFC 5321 section 3.3, RFC 3030, RFC 2033).

use bytes::BytesMut;

use crate::address::{Mailbox, ReversePath};
use crate::command::{BodyType, MailParameters, RcptParameters};
use crate::data::{DataDecoder, DecodeStatus};
use crate::reply::Reply;
use crate::server::state::{ChunkState, DataState, Phase, Subject};
use crate::server::{BareLineEnds, Event, HelloKind, Session};

impl Session {
    /// Handles MAIL FROM (RFC 5321 section 4.1.1.2).
    pub(super) fn mail(&mut self, reverse_path: ReversePath, parameters: MailParameters) {
        if self.hello.is_none() {
            self.error_line(503, "5.5.1", "Send HELO or EHLO first");
            return;
        }
        if self.config.require_tls && !self.encrypted {
            self.error_line(530, "5.7.0", "Must issue a STARTTLS command first");
            return;
        }
        if self.config.require_auth && self.authenticated.is_none() {
            self.error_line(530, "5.7.0", "Authentication required");
            return;
        }
        if self.transaction.is_some() {
            self.error_line(503, "5.5.1", "Nested MAIL command");
            return;
        }
        if let Some(keyword) = self.unoffered_mail_parameter(&parameters) {
            let text = format!("{keyword} parameter not supported");
            self.error_line(555, "5.5.4", &text);
            return;
        }
        if let (Some(size), Some(limit)) = (parameters.size, self.size_limit()) {
            if size > limit {
                self.error_line(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                );
                return;
            }
        }
        // RFC 6531 section 3.4: a non-ASCII address needs the SMTPUTF8 parameter.
        if reverse_path.needs_smtputf8() && !parameters.smtputf8 {
            self.error_line(
                553,
                "5.6.7",
                "Non-ASCII sender needs the SMTPUTF8 parameter",
            );
            return;
        }

        let subject = Subject::Mail {
            parameters: parameters.clone(),
        };
        self.ask(subject, |handle| Event::MailFrom {
            reverse_path,
            parameters,
            handle,
        });
    }

    /// Handles RCPT TO (RFC 5321 section 4.1.1.3).
    pub(super) fn rcpt(&mut self, forward_path: Mailbox, parameters: RcptParameters) {
        let Some(transaction) = self.transaction.as_ref() else {
            self.error_line(503, "5.5.1", "Need MAIL before RCPT");
            return;
        };
        if transaction.chunked {
            self.error_line(503, "5.5.1", "RCPT after BDAT");
            return;
        }
        let smtputf8 = transaction.parameters.smtputf8;
        if transaction.recipients.len() >= self.config.max_recipients {
            self.error_line(452, "4.5.3", "Too many recipients");
            return;
        }
        let dsn = self.offers(self.config.extensions.dsn);
        let unoffered = if !dsn && parameters.notify.is_some() {
            Some("NOTIFY")
        } else if !dsn && parameters.orcpt.is_some() {
            Some("ORCPT")
        } else if !parameters.extra.is_empty() && !self.config.pass_unknown_parameters {
            parameters
                .extra
                .first()
                .map(|parameter| parameter.keyword())
        } else {
            None
        };
        if let Some(keyword) = unoffered {
            let text = format!("{keyword} parameter not supported");
            self.error_line(555, "5.5.4", &text);
            return;
        }
        if forward_path.needs_smtputf8() && !smtputf8 {
            self.error_line(553, "5.6.7", "Non-ASCII recipient needs SMTPUTF8 on MAIL");
            return;
        }

        let subject = Subject::Rcpt {
            forward_path: forward_path.clone(),
        };
        self.ask(subject, |handle| Event::RcptTo {
            forward_path,
            parameters,
            handle,
        });
    }

    /// Handles DATA (RFC 5321 section 4.1.1.4).
    pub(super) fn data(&mut self) {
        let Some(transaction) = self.transaction.as_ref() else {
            self.error_line(503, "5.5.1", "Need MAIL command");
            return;
        };
        if transaction.chunked {
            self.error_line(503, "5.5.1", "DATA after BDAT");
            return;
        }
        if transaction.recipients.is_empty() {
            self.error_line(554, "5.5.1", "No valid recipients");
            return;
        }
        // RFC 3030 section 3: BINARYMIME content only goes with BDAT.
        if transaction.parameters.body == Some(BodyType::BinaryMime) {
            self.error_line(503, "5.5.1", "BODY=BINARYMIME needs BDAT");
            return;
        }

        self.output
            .extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        self.phase = Phase::Data(DataState {
            decoder: DataDecoder::new(),
            after_cr: false,
            received: 0,
            failure: None,
        });
    }

    /// Reads DATA content: removes dot-stuffing, watches for bare line ends and the size limit,
    /// and finishes the message at the end-of-data line; returns whether input was read.
    pub(super) fn read_data(&mut self) -> bool {
        if self.input.is_empty() {
            return false;
        }
        let limit = self.size_limit();
        let reject_bare = self.config.bare_line_ends == BareLineEnds::Reject;
        let too_large = self.status_reply(552, "5.3.4", "Message size exceeds fixed maximum");
        let bare = self.status_reply(550, "5.6.0", "Bare CR or LF in message, expected CRLF");
        let Phase::Data(state) = &mut self.phase else {
            return false;
        };

        let mut content = BytesMut::new();
        let status = state.decoder.decode(&self.input, &mut content);
        let consumed = match status {
            DecodeStatus::Complete { consumed } => consumed,
            _ => self.input.len(),
        };
        let wire = self.input.split_to(consumed);

        // A bare LF is an LF after anything but CR; a bare CR is a CR before anything but LF.
        let mut bare_line_end = false;
        for &octet in wire.iter() {
            bare_line_end |= (octet == b'\n') != state.after_cr;
            state.after_cr = octet == b'\r';
        }
        state.received += content.len() as u64;
        if state.failure.is_none() {
            if reject_bare && bare_line_end {
                state.failure = Some(bare);
            } else if limit.is_some_and(|limit| state.received > limit) {
                state.failure = Some(too_large);
            }
        }

        let failure = state.failure.clone();
        if failure.is_none() && !content.is_empty() {
            self.events.push_back(Event::MessageData {
                chunk: content.freeze(),
            });
        }
        if matches!(status, DecodeStatus::Complete { .. }) {
            self.phase = Phase::Command;
            match failure {
                Some(reply) => self.reject_message(reply),
                None => self.message_complete(),
            }
        }
        true
    }

    /// Handles BDAT (RFC 3030 section 2): the chunk is read, then accepted or discarded. A
    /// rejected chunk is still read to its end, so its octets are never taken for commands.
    pub(super) fn bdat(&mut self, size: u64, last: bool) {
        let rejection = self.bdat_rejection(size);

        self.phase = Phase::Chunk(ChunkState {
            size,
            remaining: size,
            last,
            rejection,
        });
        if size == 0 {
            self.finish_chunk();
        }
    }

    /// Returns the reply that rejects a BDAT chunk of `size` octets, or `None` to accept it.
    fn bdat_rejection(&mut self, size: u64) -> Option<Reply> {
        if !self.offers(self.config.extensions.chunking) {
            return Some(self.status_reply(502, "5.5.1", "BDAT not available"));
        }
        let limit = self.size_limit();
        let too_large = self.status_reply(552, "5.3.4", "Message size exceeds fixed maximum");
        let Some(transaction) = self.transaction.as_mut() else {
            return Some(self.status_reply(503, "5.5.1", "Need MAIL command"));
        };

        transaction.chunked = true;
        if transaction.recipients.is_empty() {
            return Some(self.status_reply(554, "5.5.1", "No valid recipients"));
        }
        if let Some(failure) = &transaction.bdat_failure {
            return Some(failure.clone());
        }
        let total = transaction.received.saturating_add(size);
        if limit.is_some_and(|limit| total > limit) {
            transaction.bdat_failure = Some(too_large.clone());
            return Some(too_large);
        }
        None
    }

    /// Reads the octets of a BDAT chunk; returns whether input was read.
    pub(super) fn read_chunk(&mut self) -> bool {
        let Phase::Chunk(state) = &mut self.phase else {
            return false;
        };
        if self.input.is_empty() {
            return false;
        }

        let available = self.input.len() as u64;
        let taken = state.remaining.min(available);
        state.remaining -= taken;
        let finished = state.remaining == 0;
        let accepted = state.rejection.is_none();
        // `taken` is at most the buffer length, so it fits in usize.
        let chunk = self.input.split_to(taken as usize).freeze();

        if accepted && !chunk.is_empty() {
            if let Some(transaction) = self.transaction.as_mut() {
                transaction.received += taken;
            }
            self.events.push_back(Event::MessageData { chunk });
        }
        if finished {
            self.finish_chunk();
        }
        true
    }

    /// Replies to a BDAT chunk whose octets were all read.
    fn finish_chunk(&mut self) {
        let Phase::Chunk(state) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };

        match (state.rejection, state.last) {
            (Some(reply), true) => self.reject_message(reply),
            // Chunks pipelined behind a rejected one are part of the same failure, so they do
            // not count towards the error limit.
            (Some(reply), false) => self.write_reply(&reply),
            (None, true) => self.message_complete(),
            (None, false) => {
                let text = format!("{} octets received", state.size);
                self.status_line(250, "2.0.0", &text);
            }
        }
    }

    /// Sends the reply that fails the message, tells the application, and ends the
    /// transaction.
    fn reject_message(&mut self, reply: Reply) {
        let open = self.transaction.take().is_some();

        self.write_reply(&reply);
        if open {
            self.events.push_back(Event::MessageRejected { reply });
        }
    }

    /// Ends the transaction at the end of its content and asks the application for the reply:
    /// once over SMTP, once per accepted recipient over LMTP (RFC 2033 section 4.2).
    fn message_complete(&mut self) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };

        if !self.config.lmtp {
            self.ask(Subject::Message, |handle| Event::MessageComplete {
                recipient: None,
                handle,
            });
            return;
        }
        for recipient in transaction.recipients {
            let subject = Subject::LmtpRecipient {
                recipient: recipient.clone(),
            };
            self.ask(subject, |handle| Event::MessageComplete {
                recipient: Some(recipient),
                handle,
            });
        }
    }

    /// Returns the keyword of the first MAIL parameter whose extension is not offered.
    fn unoffered_mail_parameter<'a>(&self, parameters: &'a MailParameters) -> Option<&'a str> {
        let extensions = self.config.extensions;
        let binary = extensions.chunking && extensions.binarymime;
        let body_offered = match parameters.body {
            None => true,
            Some(BodyType::SevenBit) => extensions.eight_bit_mime || binary,
            Some(BodyType::EightBitMime) => extensions.eight_bit_mime,
            Some(BodyType::BinaryMime) => binary,
        };
        let checks = [
            (parameters.size.is_some(), extensions.size, "SIZE"),
            (parameters.body.is_some(), body_offered, "BODY"),
            (parameters.smtputf8, extensions.smtputf8, "SMTPUTF8"),
            (parameters.ret.is_some(), extensions.dsn, "RET"),
            (parameters.envid.is_some(), extensions.dsn, "ENVID"),
            (
                parameters.requiretls,
                extensions.requiretls && self.encrypted,
                "REQUIRETLS",
            ),
        ];
        let typed = checks
            .into_iter()
            .find(|&(used, offered, _)| used && !self.offers(offered))
            .map(|(_, _, keyword)| keyword);

        typed.or_else(|| {
            parameters
                .extra
                .first()
                .filter(|_| !self.config.pass_unknown_parameters)
                .map(|parameter| parameter.keyword())
        })
    }

    /// Tells whether an extension is in force: offered, and the client greeted with EHLO or
    /// LHLO rather than HELO.
    pub(super) fn offers(&self, offered: bool) -> bool {
        offered && matches!(self.hello, Some(HelloKind::Ehlo | HelloKind::Lhlo))
    }

    /// Returns the enforced message size limit.
    fn size_limit(&self) -> Option<u64> {
        self.config.max_message_size
    }
}
