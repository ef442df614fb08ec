//! The time now, in milliseconds since the Unix epoch. [`now_ms`] is the one place Pave reads
//! the wall clock; nothing else in this crate calls it (the rules here take `now` as an
//! argument). Code that decides by time takes a [`Clock`] instead, so its tests can freeze
//! time with a [`ManualClock`] and step it by hand.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    fn now(&self) -> Timestamp {
        Timestamp(self.now_ms())
    }
}

/// The wall clock, as [`now_ms`] reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// The wall clock in milliseconds since the Unix epoch. A clock set before 1970 reads as 0
/// rather than failing: every caller stamps or compares times, and none can do better.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A clock that stands still until it is set or advanced: for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the clock `ms` milliseconds on (back, when negative).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(250);
        assert_eq!(c.now(), Timestamp(1_250));
        c.set(5);
        assert_eq!(c.now_ms(), 5);
        let shared: std::sync::Arc<dyn Clock> = std::sync::Arc::new(c);
        assert_eq!(shared.now_ms(), 5);
    }

    #[test]
    fn the_system_clock_reads_after_2024() {
        assert!(SystemClock.now_ms() > 1_704_067_200_000);
    }
}
