//! Envelopes and the per-recipient results of a mail transaction (RFC 5321 section 3.3).

use crate::address::{Mailbox, ReversePath};
use crate::client::error::Error;
use crate::reply::Reply;

/// The SMTP envelope of one message: the reverse-path for MAIL and a forward-path for each RCPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    reverse_path: ReversePath,
    recipients: Vec<Mailbox>,
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
        })
    }

    /// Returns the reverse-path sent with MAIL FROM.
    pub fn reverse_path(&self) -> &ReversePath {
        &self.reverse_path
    }

    /// Returns the recipients, in the order RCPT TO is sent.
    pub fn recipients(&self) -> &[Mailbox] {
        &self.recipients
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
}

impl RecipientResult {
    pub(crate) fn new(recipient: Mailbox, reply: Reply) -> Self {
        Self { recipient, reply }
    }

    /// Returns the recipient.
    pub fn recipient(&self) -> &Mailbox {
        &self.recipient
    }

    /// Returns the server's reply to its RCPT.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// Tells whether the server accepted the recipient (a 2xx reply).
    pub fn is_accepted(&self) -> bool {
        self.reply.code().value() / 100 == 2
    }

    /// Tells whether the rejection is final. A 552 to RCPT counts as transient: RFC 5321 section
    /// 4.5.3.1.10 says servers that still send it for "too many recipients" mean 452.
    pub fn is_permanent(&self) -> bool {
        self.reply.is_permanent() && self.reply.code().value() != 552
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
