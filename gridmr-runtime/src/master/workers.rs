//! The master's view of its workers: addresses, slots, liveness, and the
//! choice of a worker for the next task.

use crate::settings::SchedulerPolicy;
use gridmr_net::rest::WorkerInfo;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One registered worker.
#[derive(Debug, Clone)]
pub(crate) struct WorkerEntry {
    pub(crate) id: String,
    pub(crate) address: String,
    pub(crate) slots: u32,
    /// Attempts the master has running on it.
    pub(crate) running: u32,
    pub(crate) alive: bool,
    pub(crate) last_seen: Instant,
    pub(crate) last_seen_unix: f64,
    /// The typed jobs its binary has, as it said when probed; `None` for a
    /// worker that does not say (the original's), taken to run anything.
    pub(crate) jobs: Option<Vec<String>>,
    /// Whether it has sent a heartbeat since it registered. One that never
    /// does (registered by hand, the original's flow) is probed by the
    /// master instead of being declared dead.
    pub(crate) heartbeats: bool,
    /// Its binary's build, as it reported it.
    pub(crate) build: String,
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl WorkerEntry {
    /// A live worker at `address` with `slots`, seen now, running nothing,
    /// heartbeating, taken to run any job.
    pub(crate) fn new(id: &str, address: String, slots: u32) -> Self {
        WorkerEntry {
            id: id.to_owned(),
            address,
            slots,
            running: 0,
            alive: true,
            last_seen: Instant::now(),
            last_seen_unix: unix_now(),
            jobs: None,
            heartbeats: true,
            build: String::new(),
        }
    }

    pub(crate) fn info(&self) -> WorkerInfo {
        WorkerInfo {
            address: self.address.clone(),
            last_seen: self.last_seen_unix,
            slots: self.slots,
            running: self.running,
            alive: self.alive,
            jobs: self.jobs.clone(),
            build: self.build.clone(),
        }
    }

    pub(crate) fn free(&self) -> u32 {
        if self.alive {
            self.slots.saturating_sub(self.running)
        } else {
            0
        }
    }

    /// Whether it can run tasks of the typed job `name` (scripts: any).
    pub(crate) fn can_run(&self, name: &str) -> bool {
        name.is_empty()
            || self
                .jobs
                .as_ref()
                .is_none_or(|jobs| jobs.iter().any(|j| j == name))
    }

    pub(crate) fn touch(&mut self) {
        self.last_seen = Instant::now();
        self.last_seen_unix = unix_now();
        self.alive = true;
    }
}

/// Registered workers, in registration order.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    pub(crate) list: Vec<WorkerEntry>,
    cursor: usize,
    /// When [`Workers::expire`] last looked: the liveness clock's own tick.
    checked: Option<Instant>,
}

impl Workers {
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut WorkerEntry> {
        self.list.iter_mut().find(|w| w.id == id)
    }

    pub(crate) fn live(&self) -> impl Iterator<Item = &WorkerEntry> {
        self.list.iter().filter(|w| w.alive)
    }

    pub(crate) fn live_slots(&self) -> u32 {
        self.live().map(|w| w.slots).sum()
    }

    pub(crate) fn ring(&self) -> Vec<String> {
        self.live().map(|w| w.address.clone()).collect()
    }

    /// Adds or replaces a worker; returns whether it was known before.
    pub(crate) fn upsert(&mut self, entry: WorkerEntry) -> bool {
        match self.list.iter_mut().find(|w| w.id == entry.id) {
            Some(w) => {
                let running = w.running;
                *w = WorkerEntry { running, ..entry };
                true
            }
            None => {
                self.list.push(entry);
                false
            }
        }
    }

    /// Live workers silent for longer than `timeout`: those that send
    /// heartbeats are marked dead (first list); those that never do are to
    /// be probed (second list), and are not asked again until `timeout`
    /// has passed once more.
    ///
    /// The clock that times silence runs only while the master does: when
    /// more than half of `timeout` has passed since the last look (the
    /// master was stopped, paused or starved of CPU, while the scheduler
    /// looks several times a timeout), no worker could have been heard
    /// meanwhile, so every silence is shortened by that gap, as Hadoop's and
    /// Spark's liveness monitors allow for their own GC pauses. Returns the
    /// gap when it did so.
    pub(crate) fn expire(
        &mut self,
        timeout: Duration,
        now: Instant,
    ) -> (Vec<String>, Vec<String>, Option<Duration>) {
        let gap = self
            .checked
            .replace(now)
            .map(|last| now.saturating_duration_since(last))
            .filter(|gap| *gap > timeout / 2);
        if let Some(gap) = gap {
            for w in &mut self.list {
                w.last_seen = (w.last_seen + gap).min(now);
            }
        }
        let (mut dead, mut probe) = (Vec::new(), Vec::new());
        for w in self.list.iter_mut().filter(|w| w.alive) {
            if now.saturating_duration_since(w.last_seen) > timeout {
                if w.heartbeats {
                    w.alive = false;
                    dead.push(w.id.clone());
                } else {
                    w.last_seen = now;
                    probe.push(w.id.clone());
                }
            }
        }
        (dead, probe, gap)
    }

    /// The worker with a free slot for the next task, among those `fits`
    /// accepts; `None` when none has one.
    pub(crate) fn pick(
        &mut self,
        policy: SchedulerPolicy,
        fits: impl Fn(&WorkerEntry) -> bool,
    ) -> Option<usize> {
        let n = self.list.len();
        if n == 0 {
            return None;
        }
        match policy {
            SchedulerPolicy::LeastLoaded => self
                .list
                .iter()
                .enumerate()
                .filter(|(_, w)| w.free() > 0 && fits(w))
                .max_by(|(ia, a), (ib, b)| {
                    a.free()
                        .cmp(&b.free())
                        .then(b.running.cmp(&a.running))
                        .then(ib.cmp(ia))
                })
                .map(|(i, _)| i),
            SchedulerPolicy::RoundRobin => {
                for step in 0..n {
                    let i = (self.cursor + step) % n;
                    if self.list[i].free() > 0 && fits(&self.list[i]) {
                        self.cursor = (i + 1) % n;
                        return Some(i);
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, slots: u32, running: u32) -> WorkerEntry {
        WorkerEntry {
            running,
            ..WorkerEntry::new(id, format!("{id}:1"), slots)
        }
    }

    #[tokio::test]
    async fn least_loaded_prefers_free_slots_then_order() {
        let mut w = Workers::default();
        w.upsert(entry("a", 2, 1));
        w.upsert(entry("b", 2, 0));
        w.upsert(entry("c", 2, 0));
        assert_eq!(w.pick(SchedulerPolicy::LeastLoaded, |_| true), Some(1));
        w.list[1].running = 2;
        w.list[2].running = 2;
        assert_eq!(w.pick(SchedulerPolicy::LeastLoaded, |_| true), Some(0));
        w.list[0].running = 2;
        assert_eq!(w.pick(SchedulerPolicy::LeastLoaded, |_| true), None);
    }

    #[tokio::test]
    async fn round_robin_takes_turns_and_skips_full_or_dead() {
        let mut w = Workers::default();
        for id in ["a", "b", "c"] {
            w.upsert(entry(id, 1, 0));
        }
        assert_eq!(w.pick(SchedulerPolicy::RoundRobin, |_| true), Some(0));
        assert_eq!(w.pick(SchedulerPolicy::RoundRobin, |_| true), Some(1));
        w.list[2].alive = false;
        assert_eq!(w.pick(SchedulerPolicy::RoundRobin, |_| true), Some(0));
    }

    #[tokio::test]
    async fn silent_workers_expire_and_upsert_keeps_running_count() {
        let mut w = Workers::default();
        w.upsert(entry("a", 1, 1));
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            w.expire(Duration::from_secs(1), later),
            (vec!["a".to_string()], vec![], None)
        );
        assert_eq!(w.live_slots(), 0);
        assert!(w.upsert(entry("a", 3, 0)));
        assert_eq!((w.list[0].slots, w.list[0].running), (3, 1));
    }

    #[test]
    fn a_stalled_master_gives_workers_a_fresh_window() {
        let timeout = Duration::from_secs(2);
        let start = Instant::now();
        let mut w = Workers::default();
        let mut a = entry("a", 1, 0);
        a.last_seen = start;
        w.upsert(a);
        // Looked at every half second: silent for 2.5 s, dead.
        let mut at = start;
        let mut dead = Vec::new();
        for _ in 0..5 {
            at += Duration::from_millis(500);
            let (d, _, gap) = w.expire(timeout, at);
            assert_eq!(gap, None);
            dead.extend(d);
        }
        assert_eq!(dead, ["a"]);

        let mut w = Workers::default();
        let mut a = entry("a", 1, 0);
        a.last_seen = start;
        w.upsert(a);
        assert_eq!(w.expire(timeout, start).2, None);
        // The master stopped for 15 s: its first look after finds no one dead,
        let resumed = start + Duration::from_secs(15);
        let (dead, _, gap) = w.expire(timeout, resumed);
        assert_eq!((dead.len(), gap), (0, Some(Duration::from_secs(15))));
        // and the worker has a whole timeout to be heard from again, after which silence
        // counts as before.
        let mut dead_at = None;
        for step in 1..=5 {
            let (dead, _, gap) = w.expire(timeout, resumed + Duration::from_millis(500 * step));
            assert_eq!(gap, None);
            if !dead.is_empty() && dead_at.is_none() {
                dead_at = Some(step);
            }
        }
        assert_eq!(
            dead_at,
            Some(5),
            "dead 2.5 s after the master resumed, not before"
        );
    }
}
