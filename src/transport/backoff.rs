//! Exponential reconnect backoff with full jitter: the n-th wait is uniform in
//! `[0, min(max, initial * 2^n)]`, so many clients of a restarted server do not all
//! reconnect in the same instant.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The cap for the next wait, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next wait; grows until it reaches the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        // Never zero: a floor of a tenth of the initial delay keeps a refused connect from
        // becoming a busy loop.
        let floor = self.initial / 10;
        let ms = rand::rng().random_range(floor.as_millis() as u64..=cap.as_millis().max(1) as u64);
        Duration::from_millis(ms)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let caps: Vec<u128> = (0..6)
            .map(|_| {
                let c = b.ceiling().as_millis();
                let d = b.next_delay().as_millis();
                assert!(d <= c && d >= 10, "delay {d} within [10, {c}]");
                c
            })
            .collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling().as_millis(), 100);
    }
}
