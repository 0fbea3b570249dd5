//! How long a client may take, as deadlines rather than idle timers.
//!
//! An idle timer restarted by every byte lets a client that sends one byte a second hold a
//! connection for ever. So, after RFC 5321 §4.5.3.2, each wait has a deadline of its own,
//! fixed when it starts and not moved by what trickles in:
//!
//! - a command line must be complete within `smtp.command_timeout` (5m) of the server
//!   being ready for it (after the previous command was answered);
//! - message data must be complete within `smtp.data_total_timeout` (10m) of the `354`,
//!   and may not pause for longer than `smtp.data_timeout` (3m, the "data block" time).
//!
//! When one passes the session says `421 4.4.2` ([`Closing`]) and closes; a message not
//! yet complete was never acknowledged and is dropped. The session also spends its
//! writes within the same deadline, so a client that stops reading its replies is let go
//! like one that stops writing.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::smtp::SmtpConfig;
use crate::smtp::error::Closing;

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub command: Duration,
    pub data_pause: Duration,
    pub data_total: Duration,
}

impl Limits {
    pub fn from_config(config: &SmtpConfig) -> Limits {
        Limits {
            command: config.command_timeout,
            data_pause: config.data_timeout,
            data_total: config.data_total_timeout,
        }
    }
}

/// The deadline the session is working to.
#[derive(Debug, Clone)]
pub struct Deadline {
    limits: Limits,
    /// When the current wait began: the server was ready for a command, or sent `354`.
    started: Instant,
    in_data: bool,
}

impl Deadline {
    /// Waiting for the first command from `now`.
    pub fn new(limits: Limits, now: Instant) -> Deadline {
        Deadline {
            limits,
            started: now,
            in_data: false,
        }
    }

    /// The server is ready for the next command (it answered the last one) at `now`.
    pub fn await_command(&mut self, now: Instant) {
        self.started = now;
        self.in_data = false;
    }

    /// The server sent `354` at `now`: message data from here.
    pub fn await_data(&mut self, now: Instant) {
        self.started = now;
        self.in_data = true;
    }

    /// Until when the next read (or write) may take, having last heard from the client at
    /// `last_read`, and why the session ends if it takes longer.
    pub fn next(&self, last_read: Instant) -> (Instant, Closing) {
        let limits = &self.limits;
        if !self.in_data {
            return (
                self.started + limits.command,
                Closing::CommandTimeout {
                    limit: limits.command,
                },
            );
        }
        let total = self.started + limits.data_total;
        let pause = last_read.max(self.started) + limits.data_pause;
        if pause < total {
            (
                pause,
                Closing::DataTimeout {
                    limit: limits.data_pause,
                },
            )
        } else {
            (
                total,
                Closing::DataTotalTimeout {
                    limit: limits.data_total,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        command: Duration::from_secs(300),
        data_pause: Duration::from_secs(180),
        data_total: Duration::from_secs(600),
    };

    #[tokio::test(start_paused = true)]
    async fn a_command_deadline_is_not_moved_by_bytes_that_arrive() {
        let start = Instant::now();
        let deadline = Deadline::new(LIMITS, start);
        tokio::time::advance(Duration::from_secs(299)).await;
        // a byte arrived just now: the deadline stays where it was
        let (at, why) = deadline.next(Instant::now());
        assert_eq!(at, start + Duration::from_secs(300));
        assert!(matches!(why, Closing::CommandTimeout { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn each_command_gets_its_own_deadline() {
        let start = Instant::now();
        let mut deadline = Deadline::new(LIMITS, start);
        tokio::time::advance(Duration::from_secs(200)).await;
        deadline.await_command(Instant::now());
        assert_eq!(
            deadline.next(Instant::now()).0,
            start + Duration::from_secs(500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn data_may_pause_for_the_data_timeout_within_the_total() {
        let start = Instant::now();
        let mut deadline = Deadline::new(LIMITS, start);
        deadline.await_data(start);
        let (at, why) = deadline.next(start);
        assert_eq!(at, start + Duration::from_secs(180));
        assert!(matches!(why, Closing::DataTimeout { .. }));
        // data keeps coming: each pause is measured from the last read ...
        tokio::time::advance(Duration::from_secs(170)).await;
        let (at, _) = deadline.next(Instant::now());
        assert_eq!(at, start + Duration::from_secs(350));
        // ... until the whole data phase reaches its own deadline
        tokio::time::advance(Duration::from_secs(300)).await;
        let (at, why) = deadline.next(Instant::now());
        assert_eq!(at, start + Duration::from_secs(600));
        assert!(matches!(why, Closing::DataTotalTimeout { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_data_the_next_command_has_the_command_deadline() {
        let start = Instant::now();
        let mut deadline = Deadline::new(LIMITS, start);
        deadline.await_data(start);
        tokio::time::advance(Duration::from_secs(590)).await;
        deadline.await_command(Instant::now());
        let (at, why) = deadline.next(Instant::now());
        assert_eq!(at, start + Duration::from_secs(890));
        assert!(matches!(why, Closing::CommandTimeout { .. }));
    }
}
