//! Capped exponential backoff between connection attempts.

use std::time::Duration;

/// Delay before the next connection attempt: `initial`, doubled after each
/// failure up to `max`. A connection that broke counts as a failure unless
/// it stayed up for at least `max`: a peer that accepts the handshake and
/// then drops the connection (a crash loop, a frame it refuses, a shorter
/// idle timeout) is redialled with the same growing delays as one that
/// refuses outright, not in a tight loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Self { initial, max, next: initial }
    }

    /// The delay to wait now; the following one doubles, up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// A connection that had been established broke after `lasted`: the
    /// delay before redialling. A connection that stayed up for `max` or
    /// more was healthy, so the delays start again from `initial`.
    pub(crate) fn connection_lost(&mut self, lasted: Duration) -> Duration {
        if lasted >= self.max {
            self.next = self.initial;
        }
        self.next_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(50), ms(300));
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [ms(50), ms(100), ms(200), ms(300), ms(300), ms(300)]);
        assert_eq!(b.connection_lost(ms(300)), ms(50), "a healthy connection starts over");
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn connections_that_break_at_once_back_off_like_failed_dials() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(50), ms(300));
        let delays: Vec<_> = (0..5).map(|_| b.connection_lost(ms(1))).collect();
        assert_eq!(delays, [ms(50), ms(100), ms(200), ms(300), ms(300)]);
        assert_eq!(b.connection_lost(ms(299)), ms(300));
        assert_eq!(b.connection_lost(ms(300)), ms(50));
    }

    #[test]
    fn degenerate_settings_are_raised() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::from_millis(1));
        assert_eq!(b.next_delay(), Duration::from_millis(1));
    }
}
