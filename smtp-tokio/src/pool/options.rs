//! Settings of a [`Pool`](crate::Pool).

use std::time::Duration;

use crate::error::Error;

/// Connection limits of a [`Pool`](crate::Pool): how many connections, for how long, for how
/// many messages, when they are checked, and how long one send may take.
///
/// Start from [`PoolOptions::default`] and change the fields you need; [`Pool::new`] rejects
/// values out of range.
///
/// [`Pool::new`]: crate::Pool::new
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// The maximum number of connections open at once, idle ones included; sends beyond it
    /// wait for a connection. At least 1. Default: 4.
    pub max_connections: usize,
    /// How long a connection may sit unused before the pool closes it with QUIT. Default: 60
    /// seconds, below the five minutes a server waits for the next command (RFC 5321 section
    /// 4.5.3.2.7), so the client usually closes first.
    pub max_idle_time: Duration,
    /// How many messages one connection carries before the pool closes it with QUIT and opens
    /// another. At least 1. Default: 100.
    pub max_messages_per_connection: usize,
    /// A connection unused for longer than this gets a NOOP before it is reused, and is closed
    /// unless the reply is 250. Default: 10 seconds.
    ///
    /// Whatever its idle time, a connection is read before reuse without waiting, and a 421 or
    /// the end of the connection found there retires it.
    pub noop_after_idle: Duration,
    /// The overall deadline of one [`Pool::send`](crate::Pool::send): waiting for a connection,
    /// connecting, the retry and the transaction. When it passes, the send fails with
    /// [`Error::DeadlineExceeded`] and its connection is closed. More than zero. Default:
    /// `None`, so only the session's reply deadlines apply.
    pub send_timeout: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            max_idle_time: Duration::from_secs(60),
            max_messages_per_connection: 100,
            noop_after_idle: Duration::from_secs(10),
            send_timeout: None,
        }
    }
}

impl PoolOptions {
    /// Checks every field against its range.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |option, expected| Err(Error::InvalidPoolOption { option, expected });
        if self.max_connections == 0 {
            return invalid("max_connections", "at least 1");
        }
        if self.max_messages_per_connection == 0 {
            return invalid("max_messages_per_connection", "at least 1");
        }
        if self.send_timeout == Some(Duration::ZERO) {
            return invalid(
                "send_timeout",
                "more than zero, or None for no overall deadline",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(PoolOptions::default().validate().is_ok());
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let cases = [
            (
                "no connections",
                PoolOptions {
                    max_connections: 0,
                    ..PoolOptions::default()
                },
                "max_connections",
            ),
            (
                "no messages",
                PoolOptions {
                    max_messages_per_connection: 0,
                    ..PoolOptions::default()
                },
                "max_messages_per_connection",
            ),
            (
                "zero send timeout",
                PoolOptions {
                    send_timeout: Some(Duration::ZERO),
                    ..PoolOptions::default()
                },
                "send_timeout",
            ),
        ];
        for (label, options, field) in cases {
            let result = options.validate();

            assert!(
                matches!(result, Err(Error::InvalidPoolOption { option, .. }) if option == field),
                "{label}: {result:?}"
            );
        }
    }
}
