//! The scheduler's view of its workers: addresses, slots, liveness, and the
//! choice of a worker for the next task. What happens to a job when a
//! worker is lost is in [`crate::liveness`].

use crate::config::SchedulerPolicy;
use gridmr_core::WorkerId;

/// Whether the master counts on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// It answers: tasks may go to it.
    Alive,
    /// Written off; it comes back only by registering again (or, one that
    /// sends no heartbeats, by answering a probe).
    Dead(LossCause),
}

/// Why a worker was written off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossCause {
    /// It stopped sending heartbeats for longer than the worker timeout.
    Silent,
    /// A call to it, or a probe, failed.
    Unreachable,
    /// It registered again: the process the master knew is gone.
    Restarted,
}

impl LossCause {
    /// Why its attempts were lost, in words (kept on each attempt).
    pub fn why(self) -> &'static str {
        match self {
            LossCause::Silent => "its worker stopped sending heartbeats",
            LossCause::Unreachable => "its worker became unreachable",
            LossCause::Restarted => "the worker registered again (restarted)",
        }
    }
}

/// One registered worker.
#[derive(Debug, Clone)]
pub struct WorkerEntry {
    /// Its id (the address it registered with, or the one it chose).
    pub id: WorkerId,
    /// Where its gRPC service listens.
    pub address: String,
    /// Attempts it runs at once.
    pub slots: u32,
    /// Attempts the master has running on it.
    pub running: u32,
    /// Whether the master counts on it.
    pub liveness: Liveness,
    /// When it was last heard from (ms, the caller's clock).
    pub last_seen_ms: u64,
    /// The typed jobs its binary has, as it said when probed; `None` for a
    /// worker that does not say (the original's), taken to run anything.
    pub jobs: Option<Vec<String>>,
    /// Whether it has sent a heartbeat since it registered. One that never
    /// does (registered by hand, the original's flow) is probed by the
    /// master instead of being declared dead.
    pub heartbeats: bool,
    /// Its binary's build, as it reported it.
    pub build: String,
}

impl WorkerEntry {
    /// A live worker at `address` with `slots`, seen at `now_ms`, running
    /// nothing, heartbeating, taken to run any job.
    pub fn new(id: WorkerId, address: String, slots: u32, now_ms: u64) -> Self {
        WorkerEntry {
            id,
            address,
            slots,
            running: 0,
            liveness: Liveness::Alive,
            last_seen_ms: now_ms,
            jobs: None,
            heartbeats: true,
            build: String::new(),
        }
    }

    /// Whether the master counts on it.
    pub fn is_alive(&self) -> bool {
        self.liveness == Liveness::Alive
    }

    /// Slots free for another attempt (none while dead).
    pub fn free(&self) -> u32 {
        self.free_with(0)
    }

    /// Attempts it may still be sent when `ahead` more than its slots may wait on it (none
    /// while dead).
    pub fn free_with(&self, ahead: u32) -> u32 {
        if self.is_alive() {
            self.slots
                .saturating_add(ahead)
                .saturating_sub(self.running)
        } else {
            0
        }
    }

    /// Whether it can run tasks of the typed job `name` (scripts: any).
    pub fn can_run(&self, name: &str) -> bool {
        name.is_empty()
            || self
                .jobs
                .as_ref()
                .is_none_or(|jobs| jobs.iter().any(|j| j == name))
    }

    /// Heard from at `now_ms`: alive again if it was not.
    pub fn touch(&mut self, now_ms: u64) {
        self.last_seen_ms = now_ms;
        self.liveness = Liveness::Alive;
    }
}

/// Registered workers, in registration order.
#[derive(Debug, Default)]
pub struct Workers {
    /// The workers, in registration order.
    pub list: Vec<WorkerEntry>,
    cursor: usize,
    /// When [`Workers::expire`] last looked: the liveness clock's own tick.
    checked: Option<u64>,
}

impl Workers {
    /// The worker `id`.
    pub fn get(&self, id: &str) -> Option<&WorkerEntry> {
        self.list.iter().find(|w| w.id == id)
    }

    /// The worker `id`, to change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut WorkerEntry> {
        self.list.iter_mut().find(|w| w.id == id)
    }

    /// The workers the master counts on.
    pub fn live(&self) -> impl Iterator<Item = &WorkerEntry> {
        self.list.iter().filter(|w| w.is_alive())
    }

    /// Their slots, together.
    pub fn live_slots(&self) -> u32 {
        self.live().map(|w| w.slots).sum()
    }

    /// The live workers' addresses.
    pub fn ring(&self) -> Vec<String> {
        self.live().map(|w| w.address.clone()).collect()
    }

    /// Adds or replaces a worker; returns whether it was known before.
    pub fn upsert(&mut self, entry: WorkerEntry) -> bool {
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
    pub fn expire(
        &mut self,
        timeout_ms: u64,
        now_ms: u64,
    ) -> (Vec<WorkerId>, Vec<WorkerId>, Option<u64>) {
        let gap = self
            .checked
            .replace(now_ms)
            .map(|last| now_ms.saturating_sub(last))
            .filter(|gap| *gap > timeout_ms / 2);
        if let Some(gap) = gap {
            for w in &mut self.list {
                w.last_seen_ms = w.last_seen_ms.saturating_add(gap).min(now_ms);
            }
        }
        let (mut dead, mut probe) = (Vec::new(), Vec::new());
        for w in self.list.iter_mut().filter(|w| w.is_alive()) {
            if now_ms.saturating_sub(w.last_seen_ms) > timeout_ms {
                if w.heartbeats {
                    w.liveness = Liveness::Dead(LossCause::Silent);
                    dead.push(w.id.clone());
                } else {
                    w.last_seen_ms = now_ms;
                    probe.push(w.id.clone());
                }
            }
        }
        (dead, probe, gap)
    }

    /// The worker with a free slot for the next task, among those `fits`
    /// accepts; `None` when none has one.
    pub fn pick(
        &mut self,
        policy: SchedulerPolicy,
        fits: impl Fn(&WorkerEntry) -> bool,
    ) -> Option<usize> {
        self.pick_ahead(policy, 0, fits)
    }

    /// [`Workers::pick`], where `ahead` attempts more than its slots may wait on a worker: a
    /// worker with a free slot is still preferred.
    pub fn pick_ahead(
        &mut self,
        policy: SchedulerPolicy,
        ahead: u32,
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
                .filter(|(_, w)| w.free_with(ahead) > 0 && fits(w))
                .max_by(|(ia, a), (ib, b)| {
                    a.free_with(ahead)
                        .cmp(&b.free_with(ahead))
                        .then(b.running.cmp(&a.running))
                        .then(ib.cmp(ia))
                })
                .map(|(i, _)| i),
            // A worker with a free slot first, then one a task may wait on.
            SchedulerPolicy::RoundRobin => {
                for room in [0, ahead] {
                    for step in 0..n {
                        let i = (self.cursor + step) % n;
                        if self.list[i].free_with(room) > 0 && fits(&self.list[i]) {
                            self.cursor = (i + 1) % n;
                            return Some(i);
                        }
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
            ..WorkerEntry::new(id.parse().unwrap(), format!("{id}:1"), slots, 0)
        }
    }

    #[test]
    fn a_task_sent_ahead_goes_where_a_slot_is_free_first() {
        for policy in [SchedulerPolicy::LeastLoaded, SchedulerPolicy::RoundRobin] {
            let mut w = Workers {
                list: vec![entry("a", 1, 1), entry("b", 1, 0), entry("c", 1, 2)],
                ..Workers::default()
            };
            assert_eq!(w.pick_ahead(policy, 1, |_| true), Some(1), "{policy:?}");
            w.list[1].running = 1;
            // Every slot taken: only with room ahead, and never past it.
            assert_eq!(w.pick(policy, |_| true), None);
            assert_eq!(w.pick_ahead(policy, 1, |_| true), Some(0), "{policy:?}");
            w.list[0].running = 2;
            w.list[1].running = 2;
            assert_eq!(w.pick_ahead(policy, 1, |_| true), None);
        }
    }

    #[test]
    fn least_loaded_prefers_free_slots_then_order() {
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

    #[test]
    fn round_robin_takes_turns_and_skips_full_or_dead() {
        let mut w = Workers::default();
        for id in ["a", "b", "c"] {
            w.upsert(entry(id, 1, 0));
        }
        assert_eq!(w.pick(SchedulerPolicy::RoundRobin, |_| true), Some(0));
        assert_eq!(w.pick(SchedulerPolicy::RoundRobin, |_| true), Some(1));
        w.list[2].liveness = Liveness::Dead(LossCause::Unreachable);
        assert_eq!(w.pick(SchedulerPolicy::RoundRobin, |_| true), Some(0));
    }

    #[test]
    fn silent_workers_expire_and_upsert_keeps_running_count() {
        let mut w = Workers::default();
        w.upsert(entry("a", 1, 1));
        assert_eq!(
            w.expire(1_000, 5_000),
            (vec!["a".parse().unwrap()], vec![], None)
        );
        assert_eq!(w.live_slots(), 0);
        assert!(w.upsert(entry("a", 3, 0)));
        assert_eq!((w.list[0].slots, w.list[0].running), (3, 1));
    }

    #[test]
    fn a_stalled_master_gives_workers_a_fresh_window() {
        let timeout = 2_000;
        let start = 1_000_000;
        let mut w = Workers::default();
        w.upsert(WorkerEntry::new(
            "a".parse().unwrap(),
            "a:1".into(),
            1,
            start,
        ));
        // Looked at every half second: silent for 2.5 s, dead.
        let mut at = start;
        let mut dead = Vec::new();
        for _ in 0..5 {
            at += 500;
            let (d, _, gap) = w.expire(timeout, at);
            assert_eq!(gap, None);
            dead.extend(d);
        }
        assert_eq!(dead, ["a"]);

        let mut w = Workers::default();
        w.upsert(WorkerEntry::new(
            "a".parse().unwrap(),
            "a:1".into(),
            1,
            start,
        ));
        assert_eq!(w.expire(timeout, start).2, None);
        // The master stopped for 15 s: its first look after finds no one dead,
        let resumed = start + 15_000;
        let (dead, _, gap) = w.expire(timeout, resumed);
        assert_eq!((dead.len(), gap), (0, Some(15_000)));
        // and the worker has a whole timeout to be heard from again, after which silence
        // counts as before.
        let mut dead_at = None;
        for step in 1..=5 {
            let (dead, _, gap) = w.expire(timeout, resumed + 500 * step);
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
