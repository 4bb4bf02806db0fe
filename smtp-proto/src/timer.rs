//! Reply deadlines, RFC 5321 section 4.5.3.2.

use std::time::{Duration, Instant};

/// How long the client waits for each reply, and for the server to take each block of message
/// data.
///
/// The defaults are the minimums of RFC 5321 section 4.5.3.2 where the RFC gives one; the RFC
/// names no value for EHLO, STARTTLS, AUTH, RSET, NOOP and the other single commands, so they
/// use the five minutes it gives MAIL and RCPT, and QUIT uses ten seconds because nothing is
/// lost when its reply never comes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The 220 greeting (section 4.5.3.2.1): 5 minutes.
    pub greeting: Duration,
    /// The reply to MAIL (section 4.5.3.2.2): 5 minutes.
    pub mail: Duration,
    /// The reply to each RCPT (section 4.5.3.2.3): 5 minutes.
    pub rcpt: Duration,
    /// The 354 reply to DATA (section 4.5.3.2.4): 2 minutes.
    pub data_initiation: Duration,
    /// Each write of message data (section 4.5.3.2.5): 3 minutes. The core does not perform
    /// writes, so adapters use this as their write timeout.
    pub data_block: Duration,
    /// The reply after the end-of-data line (section 4.5.3.2.6): 10 minutes.
    pub data_termination: Duration,
    /// EHLO, HELO, STARTTLS, AUTH, RSET and single commands: 5 minutes.
    pub command: Duration,
    /// The reply to QUIT: 10 seconds.
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            greeting: Duration::from_secs(5 * 60),
            mail: Duration::from_secs(5 * 60),
            rcpt: Duration::from_secs(5 * 60),
            data_initiation: Duration::from_secs(2 * 60),
            data_block: Duration::from_secs(3 * 60),
            data_termination: Duration::from_secs(10 * 60),
            command: Duration::from_secs(5 * 60),
            quit: Duration::from_secs(10),
        }
    }
}

impl Timeouts {
    /// Sets every timeout to `timeout`, for tests and for callers with one overall budget.
    pub fn uniform(timeout: Duration) -> Self {
        Self {
            greeting: timeout,
            mail: timeout,
            rcpt: timeout,
            data_initiation: timeout,
            data_block: timeout,
            data_termination: timeout,
            command: timeout,
            quit: timeout,
        }
    }
}

/// Returns `now + timeout`, or a time about a century away when the sum does not fit in an
/// `Instant`, so a huge configured timeout means "no deadline" instead of a panic.
pub fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    now.checked_add(timeout)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_rfc_5321() {
        let timeouts = Timeouts::default();

        assert_eq!(timeouts.greeting, Duration::from_secs(300));
        assert_eq!(timeouts.mail, Duration::from_secs(300));
        assert_eq!(timeouts.rcpt, Duration::from_secs(300));
        assert_eq!(timeouts.data_initiation, Duration::from_secs(120));
        assert_eq!(timeouts.data_block, Duration::from_secs(180));
        assert_eq!(timeouts.data_termination, Duration::from_secs(600));
    }
}
