//! The master's clock: the `now` every scheduler event carries.
//!
//! Milliseconds since the Unix epoch as the wall clock read at the first
//! call, advanced from then on by the monotonic clock: close to the wall
//! clock (attempt times are shown as dates), and never running backwards
//! when the wall clock is stepped (durations, timeouts and speculation
//! compare these numbers).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn origin() -> &'static (Instant, u64) {
    static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (Instant::now(), wall)
    })
}

/// Now, in milliseconds since the Unix epoch (monotonic; see the module).
pub(crate) fn now_ms() -> u64 {
    let (start, wall) = origin();
    wall.saturating_add(start.elapsed().as_millis() as u64)
}

/// `ms` as seconds since the Unix epoch (the API's `last_seen`).
pub(crate) fn unix_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_never_runs_backwards_and_starts_at_the_wall_clock() {
        let a = now_ms();
        let b = now_ms();
        assert!(b >= a);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(wall.abs_diff(b) < 60_000, "{wall} vs {b}");
    }
}
