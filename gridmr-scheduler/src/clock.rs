//! When things happened to a job, in milliseconds since the Unix epoch as
//! the caller's `now` gave them (the scheduler reads no clock of its own).

use crate::job::Phase;
use serde::{Deserialize, Serialize};

/// A job's time stamps. On disk it is also written as the
/// [`PhaseTimes`] it adds up to, so a record of an earlier master (which
/// kept only those) still reads back with its times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "ClockRecord", from = "ClockRecord")]
pub struct Clock {
    /// When the job was submitted.
    pub submitted_ms: u64,
    /// When planning ended.
    pub prepared_ms: Option<u64>,
    /// When each phase's first attempt started (by [`Phase::slot`]).
    pub phase_start_ms: [Option<u64>; 3],
    /// When each phase's last task was done.
    pub phase_end_ms: [Option<u64>; 3],
    /// When the job ended.
    pub finished_ms: Option<u64>,
    /// The times of a record that held no stamps (an earlier master's).
    pub frozen: Option<PhaseTimes>,
}

/// Phase times in seconds, as the original's `/metrics/jobs` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Submit to done (or to now, while running).
    pub t_total_s: f64,
    /// Listing the input and planning tasks.
    pub t_prepare_s: f64,
    /// The SINGLE task, from dispatch to commit.
    pub t_single_s: f64,
    /// First map dispatched to last map committed.
    pub t_map_s: f64,
    /// First reduce dispatched to the output committed.
    pub t_reduce_s: f64,
    /// Everything else: queueing, waiting for workers, final commit.
    pub t_overhead_s: f64,
}

/// A [`Clock`] on disk.
#[derive(Serialize, Deserialize)]
struct ClockRecord {
    submitted_ms: u64,
    times: PhaseTimes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stamps: Option<Stamps>,
}

#[derive(Serialize, Deserialize)]
struct Stamps {
    prepared_ms: Option<u64>,
    phase_start_ms: [Option<u64>; 3],
    phase_end_ms: [Option<u64>; 3],
    finished_ms: Option<u64>,
}

impl From<Clock> for ClockRecord {
    fn from(c: Clock) -> Self {
        // A running job's record (in `commit.json`) adds up to its last stamp.
        let last = [c.prepared_ms, c.finished_ms]
            .into_iter()
            .chain(c.phase_start_ms)
            .chain(c.phase_end_ms)
            .flatten()
            .max()
            .unwrap_or(c.submitted_ms);
        ClockRecord {
            submitted_ms: c.submitted_ms,
            times: c.times(last),
            stamps: c.frozen.is_none().then_some(Stamps {
                prepared_ms: c.prepared_ms,
                phase_start_ms: c.phase_start_ms,
                phase_end_ms: c.phase_end_ms,
                finished_ms: c.finished_ms,
            }),
        }
    }
}

impl From<ClockRecord> for Clock {
    fn from(r: ClockRecord) -> Self {
        match r.stamps {
            Some(s) => Clock {
                submitted_ms: r.submitted_ms,
                prepared_ms: s.prepared_ms,
                phase_start_ms: s.phase_start_ms,
                phase_end_ms: s.phase_end_ms,
                finished_ms: s.finished_ms,
                frozen: None,
            },
            None => Clock {
                submitted_ms: r.submitted_ms,
                frozen: Some(r.times),
                ..Clock::default()
            },
        }
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Clock {
    /// A clock started at `now_ms`.
    pub fn submitted_at(now_ms: u64) -> Self {
        Clock {
            submitted_ms: now_ms,
            ..Clock::default()
        }
    }

    /// `phase` started at `now_ms` (its first attempt; later calls change nothing).
    pub fn start(&mut self, p: Phase, now_ms: u64) {
        self.phase_start_ms[p.slot()].get_or_insert(now_ms);
    }

    /// `phase` ended at `now_ms`.
    pub fn end(&mut self, p: Phase, now_ms: u64) {
        self.phase_end_ms[p.slot()] = Some(now_ms);
    }

    fn span(&self, p: Phase, end: u64) -> u64 {
        match self.phase_start_ms[p.slot()] {
            Some(s) => self.phase_end_ms[p.slot()].unwrap_or(end).saturating_sub(s),
            None => 0,
        }
    }

    /// When the job ended, or `None` while it runs.
    pub fn ended_ms(&self) -> Option<u64> {
        match self.frozen {
            Some(t) => Some(self.submitted_ms + (t.t_total_s * 1000.0) as u64),
            None => self.finished_ms,
        }
    }

    /// The job's times, counted up to `now_ms` while it runs.
    pub fn times(&self, now_ms: u64) -> PhaseTimes {
        if let Some(t) = self.frozen {
            return t;
        }
        let end = self.finished_ms.unwrap_or(now_ms);
        let total = end.saturating_sub(self.submitted_ms);
        let prepare = self
            .prepared_ms
            .map(|p| p.saturating_sub(self.submitted_ms))
            .unwrap_or(total);
        let single = self.span(Phase::Single, end);
        let map = self.span(Phase::Map, end);
        let reduce = self.span(Phase::Reduce, end);
        let overhead = total.saturating_sub(prepare + single + map + reduce);
        PhaseTimes {
            t_total_s: seconds(total),
            t_prepare_s: seconds(prepare),
            t_single_s: seconds(single),
            t_map_s: seconds(map),
            t_reduce_s: seconds(reduce),
            t_overhead_s: seconds(overhead),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_add_up_from_the_stamps_and_survive_a_record() {
        let mut c = Clock::submitted_at(1_000);
        c.prepared_ms = Some(1_500);
        c.start(Phase::Map, 2_000);
        c.start(Phase::Map, 2_500);
        c.end(Phase::Map, 5_000);
        c.start(Phase::Reduce, 5_000);
        let running = c.times(6_000);
        assert_eq!(running.t_total_s, 5.0);
        assert_eq!(running.t_map_s, 3.0);
        assert_eq!(running.t_reduce_s, 1.0);
        c.finished_ms = Some(7_000);
        let t = c.times(99_000);
        assert_eq!((t.t_total_s, t.t_prepare_s, t.t_reduce_s), (6.0, 0.5, 2.0));
        assert_eq!(t.t_overhead_s, 0.5);
        let back: Clock = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        // An earlier master's record: its times, frozen.
        let old: Clock = serde_json::from_str(&format!(
            r#"{{"submitted_ms":1000,"times":{}}}"#,
            serde_json::to_string(&t).unwrap()
        ))
        .unwrap();
        assert_eq!(old.times(1), t);
        assert_eq!(old.ended_ms(), Some(7_000));
    }
}
