//! Envelopes and the per-recipient results of a mail transaction (RFC 5321 section 3.3).

use crate::address::{Mailbox, ReversePath, XText};
use crate::client::error::Error;
use crate::command::{Notify, Ret};
use crate::reply::Reply;

/// The SMTP envelope of one message: the reverse-path for MAIL and a forward-path for each RCPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    reverse_path: ReversePath,
    recipients: Vec<Mailbox>,
    dsn: Option<Dsn>,
    require_tls: bool,
}

/// Delivery status notification requests for a message (RFC 3461).
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `RET` on MAIL: whether a failure report carries the full message or only its headers.
    pub ret: Option<Ret>,
    /// `ENVID` on MAIL: an identifier the reports quote.
    pub envid: Option<XText>,
    /// `NOTIFY` on every RCPT: when to send a report.
    pub notify: Option<Notify>,
    /// `ORCPT=rfc822;address` on every RCPT whose address is ASCII, naming the recipient as
    /// given. An address with non-ASCII characters gets no ORCPT, because its `utf-8` address
    /// type (RFC 6533) is not supported.
    pub original_recipients: bool,
    /// Sends the message without these parameters when the server lacks DSN, instead of
    /// failing with [`Error::ExtensionRequired`].
    pub best_effort: bool,
}

impl Envelope {
    /// Creates an envelope; it needs at least one recipient.
    pub fn new(
        reverse_path: impl Into<ReversePath>,
        recipients: Vec<Mailbox>,
    ) -> Result<Self, Error> {
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }

        Ok(Self {
            reverse_path: reverse_path.into(),
            recipients,
            dsn: None,
            require_tls: false,
        })
    }

    /// Requests delivery status notifications (RFC 3461) for this message.
    pub fn with_dsn(mut self, dsn: Dsn) -> Self {
        self.dsn = Some(dsn);
        self
    }

    /// Requires TLS on every hop of this message (RFC 8689): `REQUIRETLS` on MAIL, which the
    /// session only sends inside TLS to a server that offers the extension.
    pub fn with_require_tls(mut self) -> Self {
        self.require_tls = true;
        self
    }

    /// Returns the delivery status notification requests.
    pub fn dsn(&self) -> Option<&Dsn> {
        self.dsn.as_ref()
    }

    /// Tells whether the message requires TLS on every hop (RFC 8689).
    pub fn requires_tls(&self) -> bool {
        self.require_tls
    }

    /// Returns the reverse-path sent with MAIL FROM.
    pub fn reverse_path(&self) -> &ReversePath {
        &self.reverse_path
    }

    /// Returns the recipients, in the order RCPT TO is sent.
    pub fn recipients(&self) -> &[Mailbox] {
        &self.recipients
    }

    /// Returns the reverse-path and the recipients, for a transaction that takes them over.
    pub(crate) fn into_paths(self) -> (ReversePath, Vec<Mailbox>) {
        (self.reverse_path, self.recipients)
    }

    /// Tells whether an address needs the SMTPUTF8 extension (RFC 6531 section 3.2).
    pub fn needs_smtputf8(&self) -> bool {
        self.reverse_path.needs_smtputf8() || self.recipients.iter().any(Mailbox::needs_smtputf8)
    }
}

/// The server's answer to the RCPT TO of one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientResult {
    recipient: Mailbox,
    reply: Reply,
    data_reply: Option<Reply>,
}

impl RecipientResult {
    pub(crate) fn new(recipient: Mailbox, reply: Reply) -> Self {
        Self {
            recipient,
            reply,
            data_reply: None,
        }
    }

    pub(crate) fn set_data_reply(&mut self, reply: Reply) {
        self.data_reply = Some(reply);
    }

    /// Returns the recipient.
    pub fn recipient(&self) -> &Mailbox {
        &self.recipient
    }

    /// Returns the server's reply to its RCPT.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// Returns the LMTP server's reply for this recipient after the message data (RFC 2033
    /// section 4.2); `None` over SMTP, where one reply covers every recipient.
    pub fn data_reply(&self) -> Option<&Reply> {
        self.data_reply.as_ref()
    }

    /// Tells whether the server accepted the recipient: a 2xx reply to RCPT and, over LMTP, to
    /// the message data.
    pub fn is_accepted(&self) -> bool {
        self.final_reply().code().value() / 100 == 2
    }

    /// Tells whether the rejection is final. A 552 to RCPT counts as transient: RFC 5321 section
    /// 4.5.3.1.10 says servers that still send it for "too many recipients" mean 452.
    pub fn is_permanent(&self) -> bool {
        let reply = self.final_reply();
        reply.is_permanent() && (self.data_reply.is_some() || reply.code().value() != 552)
    }

    fn final_reply(&self) -> &Reply {
        match &self.data_reply {
            Some(reply) if self.reply.code().value() / 100 == 2 => reply,
            _ => &self.reply,
        }
    }

    /// Tells whether the rejection may succeed later (4xx, or the 552 described at
    /// [`is_permanent`](Self::is_permanent)).
    pub fn is_transient(&self) -> bool {
        !self.is_accepted() && !self.is_permanent()
    }
}

/// The report of a message the server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    recipients: Vec<RecipientResult>,
    reply: Reply,
}

impl Delivery {
    pub(crate) fn new(recipients: Vec<RecipientResult>, reply: Reply) -> Self {
        Self { recipients, reply }
    }

    /// Returns the result of every recipient, accepted or not, in envelope order.
    pub fn recipients(&self) -> &[RecipientResult] {
        &self.recipients
    }

    /// Returns the recipients the server rejected; the message did not go to them.
    pub fn rejected(&self) -> impl Iterator<Item = &RecipientResult> {
        self.recipients.iter().filter(|r| !r.is_accepted())
    }

    /// Returns the server's reply after the message data; its text usually carries the queue id.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }
}
