//! Capped exponential backoff between connection attempts.

use std::time::Duration;

/// Delay before the next connection attempt: `initial`, doubled after each
/// failure up to `max`, back to `initial` once a connection is established.
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

    /// A connection succeeded: start again from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
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
        b.reset();
        assert_eq!(b.next_delay(), ms(50));
    }

    #[test]
    fn degenerate_settings_are_raised() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::from_millis(1));
        assert_eq!(b.next_delay(), Duration::from_millis(1));
    }
}
