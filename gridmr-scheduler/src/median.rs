//! A running median (two heaps): the speculation rule compares a running
//! attempt with the median of its phase's successful ones, and a phase of
//! 100,000 tasks must not sort 100,000 durations at every look.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The median of the values pushed so far, in O(log n) per push.
#[derive(Debug, Clone, Default)]
pub(crate) struct Median {
    /// The smaller half (its largest on top); holds the extra value when odd.
    low: BinaryHeap<u64>,
    /// The larger half (its smallest on top).
    high: BinaryHeap<Reverse<u64>>,
}

impl Median {
    /// Adds a value.
    pub(crate) fn push(&mut self, v: u64) {
        match self.low.peek() {
            Some(&top) if v > top => self.high.push(Reverse(v)),
            _ => self.low.push(v),
        }
        if self.low.len() > self.high.len() + 1 {
            if let Some(v) = self.low.pop() {
                self.high.push(Reverse(v));
            }
        } else if self.high.len() > self.low.len() {
            if let Some(Reverse(v)) = self.high.pop() {
                self.low.push(v);
            }
        }
    }

    /// The upper median (of an even count, the larger middle value, as
    /// `sorted[n / 2]`); `None` while empty.
    pub(crate) fn get(&self) -> Option<u64> {
        if self.low.len() > self.high.len() {
            self.low.peek().copied()
        } else {
            self.high.peek().map(|r| r.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_the_sorted_middle_at_every_step() {
        let mut m = Median::default();
        assert_eq!(m.get(), None);
        let mut seen = Vec::new();
        let mut x: u64 = 12345;
        for _ in 0..500 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (x >> 33) % 1000;
            m.push(v);
            seen.push(v);
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(m.get(), Some(sorted[sorted.len() / 2]));
        }
    }
}
