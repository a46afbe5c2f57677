//! The wall clock decisions are judged by. Contracts are valid between wall-clock times, so a
//! decision needs the wall clock; freshness, though, is measured on the monotonic clock
//! ([`std::time::Instant`]), which a step of the system clock cannot move. Tests step this clock to
//! prove that a clock stepped back never makes a dead follower's snapshot look fresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::Timestamp;

/// The system clock, plus an offset that only tests change.
#[derive(Debug, Clone, Default)]
pub struct WallClock {
    offset_micros: Arc<AtomicI64>,
}

impl WallClock {
    /// The current wall-clock time.
    pub fn now(&self) -> Timestamp {
        let t = Timestamp::now();
        match self.offset_micros.load(Ordering::Relaxed) {
            0 => t,
            offset => Timestamp::from_micros(t.as_micros().saturating_add(offset)),
        }
    }

    /// Steps the clock by `seconds` (negative: back), as an NTP correction or an operator would.
    pub fn step(&self, seconds: i64) {
        self.offset_micros.fetch_add(seconds.saturating_mul(1_000_000), Ordering::Relaxed);
    }
}

/// Every handle to the system clock is the same clock.
impl PartialEq for WallClock {
    fn eq(&self, other: &Self) -> bool {
        self.offset_micros.load(Ordering::Relaxed) == other.offset_micros.load(Ordering::Relaxed)
    }
}
