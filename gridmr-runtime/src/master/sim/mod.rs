//! The master's scheduler driven by a simulated cluster, as Hadoop's
//! Scheduler Load Simulator drives YARN's: the real, pure scheduler (the
//! `gridmr-scheduler` crate the master runs, with speculation and heartbeat
//! expiry on) fed events by simulated workers, task times and worker losses
//! on a simulated clock, with no network, no files and no sleeping. A lost
//! worker just falls silent: the scheduler finds out as the master does,
//! when its heartbeats stop for `WORKER_TIMEOUT_S`. It answers how the scheduler itself scales
//! (decisions and heartbeats per second of CPU, memory per task) and how
//! close its placement comes to the ideal makespan.
//!
//! With a [`DataConfig`] ([`SimConfig::data`]) task times are not drawn at random but follow
//! from the data each task moves and the links, storage, disks and cores it moves it over
//! ([`flow`]): the model behind docs/performance.md's predictions for clusters larger than the
//! lab, calibrated against the lab's measurements.
//!
//! ```
//! use gridmr_runtime::master::sim::{simulate, SimConfig};
//!
//! let report = simulate(&SimConfig {
//!     workers: 20,
//!     maps: 400,
//!     reduces: 40,
//!     ..SimConfig::default()
//! });
//! assert!(report.succeeded);
//! assert!(report.makespan_s >= report.ideal_s);
//! ```

pub mod flow;

pub use flow::{DataConfig, Shuffle};

use flow::Flow;
use gridmr_core::input::InputSplit;
use gridmr_core::{Counters, Params, WorkerId};
use gridmr_scheduler::{
    AttemptKey, Effect, Event as Sched, JobDirs, JobKind, JobRequest, JobState, Mode, Outcome,
    Phase, Plan, Scheduler, SchedulerConfig, WorkerEntry,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Workers in the cluster.
    pub workers: u32,
    /// Task slots per worker.
    pub slots: u32,
    /// Map tasks of the one job.
    pub maps: u32,
    /// Reduce tasks of the job.
    pub reduces: u32,
    /// A map task's run time: uniform in this range, in seconds.
    pub map_s: (f64, f64),
    /// A reduce task's run time: uniform in this range, in seconds.
    pub reduce_s: (f64, f64),
    /// Time between two heartbeats of one worker, in seconds.
    pub heartbeat_s: f64,
    /// Workers lost during the run (each at a random time in the map
    /// phase's expected span; it comes back, as a restarted worker
    /// registers again, `rejoin_s` later).
    pub losses: u32,
    /// How long a lost worker stays away, in seconds.
    pub rejoin_s: f64,
    /// Seed of the task times and losses.
    pub seed: u64,
    /// Task times from the data moved instead of `map_s` and `reduce_s` ([`flow`]).
    pub data: Option<DataConfig>,
}

impl Default for SimConfig {
    /// The issue's scale: 1,000 workers with 2 slots, heartbeats every
    /// second, 100,000 maps and 10,000 reduces of 5 to 15 s, 10 losses.
    fn default() -> Self {
        SimConfig {
            workers: 1000,
            slots: 2,
            maps: 100_000,
            reduces: 10_000,
            map_s: (5.0, 15.0),
            reduce_s: (5.0, 15.0),
            heartbeat_s: 1.0,
            losses: 10,
            rejoin_s: 30.0,
            seed: 42,
            data: None,
        }
    }
}

/// What the simulation measured.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    /// Whether the job succeeded.
    pub succeeded: bool,
    /// Attempts the scheduler placed.
    pub decisions: u64,
    /// CPU time in `schedule()`.
    pub schedule_time: Duration,
    /// Heartbeats handled.
    pub heartbeats: u64,
    /// CPU time handling heartbeats.
    pub heartbeat_time: Duration,
    /// Attempt outcomes handled (successes and losses).
    pub completions: u64,
    /// CPU time handling outcomes and their effects.
    pub complete_time: Duration,
    /// Attempts lost with their worker (run again elsewhere).
    pub lost_attempts: u64,
    /// Backup attempts that lost their race (speculation), killed or
    /// superseded.
    pub backup_attempts: u64,
    /// Simulated time from submit to the job's end, in seconds.
    pub makespan_s: f64,
    /// The ideal makespan: the maps' total time over all slots, plus the
    /// reduces' (reduces wait for every map), in seconds.
    pub ideal_s: f64,
    /// The whole simulation's wall time.
    pub wall: Duration,
}

impl SimReport {
    /// Placements per second of scheduler time.
    pub fn decisions_per_s(&self) -> f64 {
        self.decisions as f64 / self.schedule_time.as_secs_f64().max(1e-9)
    }

    /// Heartbeats per second of handling time.
    pub fn heartbeats_per_s(&self) -> f64 {
        self.heartbeats as f64 / self.heartbeat_time.as_secs_f64().max(1e-9)
    }

    /// Makespan over the ideal (1.0 is perfect).
    pub fn makespan_ratio(&self) -> f64 {
        self.makespan_s / self.ideal_s.max(1e-9)
    }
}

/// A small deterministic generator (xorshift64*): the simulation needs
/// reproducible, not cryptographic, numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self, (lo, hi): (f64, f64)) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Simulated time in microseconds (an integer, so events order totally).
type Micros = u64;

fn micros(s: f64) -> Micros {
    (s * 1e6) as Micros
}

enum Event {
    /// An attempt ends (successfully, unless its worker was lost since).
    Finish {
        key: AttemptKey,
        worker: usize,
        incarnation: u32,
        output: PathBuf,
        took: f64,
    },
    /// Every live worker heartbeats.
    Heartbeats,
    /// A worker is lost.
    Lose(usize),
    /// A lost worker registers again.
    Rejoin(usize),
}

/// Pending events, in time order (ties in the order they were pushed).
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Micros, u64)>>,
    events: HashMap<u64, Event>,
    next: u64,
}

impl Queue {
    fn push(&mut self, at: Micros, e: Event) {
        self.next += 1;
        self.events.insert(self.next, e);
        self.heap.push(Reverse((at, self.next)));
    }

    fn peek(&self) -> Option<Micros> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn pop(&mut self) -> Option<(Micros, Event)> {
        let Reverse((at, n)) = self.heap.pop()?;
        self.events.remove(&n).map(|e| (at, e))
    }
}

/// The simulated workers.
struct Workers {
    ids: Vec<WorkerId>,
    index: HashMap<WorkerId, usize>,
    /// A worker's incarnation: an attempt's end counts only if its worker
    /// has not been lost since it started.
    incarnation: Vec<u32>,
    alive: Vec<bool>,
}

impl Workers {
    /// `n` live workers, `w00000` on.
    fn new(n: u32) -> Self {
        // `w00000`… are worker names, so none is dropped.
        let ids: Vec<WorkerId> = (0..n)
            .filter_map(|i| WorkerId::new(format!("w{i:05}")).ok())
            .collect();
        Workers {
            index: ids
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), i))
                .collect(),
            ids,
            incarnation: vec![0; n as usize],
            alive: vec![true; n as usize],
        }
    }
}

/// Every live worker's heartbeat at `now`.
fn heartbeats(state: &mut Scheduler, workers: &Workers, now: Micros, report: &mut SimReport) {
    let t = Instant::now();
    for (i, w) in workers.ids.iter().enumerate() {
        if workers.alive[i] {
            let beat = Sched::Heartbeat {
                worker: w.clone(),
                reports: Vec::new(),
            };
            state.handle(beat, ms(now));
            report.heartbeats += 1;
        }
    }
    report.heartbeat_time += t.elapsed();
}

/// Counts the job's attempts lost with their workers and the backups that lost their race.
fn count_attempts(job: &gridmr_scheduler::Job, report: &mut SimReport) {
    use gridmr_scheduler::AttemptState as A;
    for a in &job.attempts {
        match a.state {
            A::Lost(_) => report.lost_attempts += 1,
            A::Killed(_) | A::Superseded => report.backup_attempts += 1,
            _ => {}
        }
    }
}

/// Milliseconds of simulated time: the scheduler's `now`.
fn ms(at: Micros) -> u64 {
    at / 1000
}

/// One simulation's moving parts: the scheduler, the pending events, the random source, what
/// is measured, the workers and the data plane.
struct Sim {
    state: Scheduler,
    queue: Queue,
    rng: Rng,
    report: SimReport,
    workers: Workers,
    plane: Option<Plane>,
}

impl Sim {
    /// Hands the scheduler one event, then runs its pass ([`Sched::Tick`]) and
    /// starts the attempts it places: each one's end is queued at its random
    /// run time (or, with a data plane, when its data has moved). A commit
    /// finishes at once.
    fn step(&mut self, event: Option<Sched>, now: Micros, cfg: &SimConfig) {
        let mut effects = Vec::new();
        if let Some(event) = event {
            let t = Instant::now();
            effects = self.state.handle(event, ms(now));
            self.report.complete_time += t.elapsed();
        }
        let t = Instant::now();
        effects.extend(self.state.handle(Sched::Tick, ms(now)));
        self.report.schedule_time += t.elapsed();
        // The master hands these to its store's journal at each pass.
        drop(self.state.take_journal());
        while let Some(effect) = effects.pop() {
            match effect {
                Effect::Dispatch(d) => {
                    self.report.decisions += 1;
                    let worker = self.workers.index.get(&d.worker_id).copied().unwrap_or(0);
                    let output = d.expected.first().cloned().unwrap_or_default();
                    if let Some(plane) = self.plane.as_mut() {
                        let started = Started {
                            key: d.key,
                            worker,
                            incarnation: self.workers.incarnation[worker],
                            output,
                            at: now,
                        };
                        plane.start(started, &self.workers);
                        continue;
                    }
                    let took = self.rng.uniform(match d.key.task.phase {
                        Phase::Reduce => cfg.reduce_s,
                        _ => cfg.map_s,
                    });
                    self.queue.push(
                        now + micros(took),
                        Event::Finish {
                            key: d.key,
                            worker,
                            incarnation: self.workers.incarnation[worker],
                            output,
                            took,
                        },
                    );
                }
                Effect::Commit(plan) => {
                    let done = Sched::CommitDone {
                        job: plan.job_id,
                        result: Ok(gridmr_core::commit::Committed {
                            result: None,
                            parts: Vec::new(),
                        }),
                    };
                    effects.extend(self.state.handle(done, ms(now)));
                }
                _ => {}
            }
        }
    }
}

/// An attempt running on the data plane.
struct Started {
    key: AttemptKey,
    worker: usize,
    incarnation: u32,
    output: PathBuf,
    at: Micros,
}

/// The data plane of a simulation with a [`DataConfig`]: the flow model and what each task
/// moves (the input cut evenly among the maps, the map output among the reduces).
struct Plane {
    flow: Flow<Started>,
    split: f64,
    partition: f64,
}

impl Plane {
    fn new(cfg: &SimConfig) -> Option<Plane> {
        let data = cfg.data.clone()?;
        let split = data.input_bytes / f64::from(cfg.maps.max(1));
        let partition = data.input_bytes * data.shuffle_ratio / f64::from(cfg.reduces.max(1));
        Some(Plane {
            flow: Flow::new(data),
            split,
            partition,
        })
    }

    fn start(&mut self, s: Started, workers: &Workers) {
        let worker = s.worker;
        match s.key.task.phase {
            Phase::Reduce => {
                let live = workers.alive.iter().filter(|a| **a).count();
                self.flow.start_reduce(worker, self.partition, live, s);
            }
            _ => self.flow.start_map(worker, self.split, s),
        }
    }

    /// When the next attempt's stage ends (rounded up to the clock's microsecond).
    fn next_end(&self) -> Option<Micros> {
        self.flow.next_end().map(|s| (s * 1e6).ceil() as Micros)
    }

    /// Moves the plane on to `now` and queues the ends of the attempts that finished.
    fn finish(&mut self, now: Micros, queue: &mut Queue) {
        for s in self.flow.advance(now as f64 / 1e6) {
            let took = now.saturating_sub(s.at) as f64 / 1e6;
            let finish = Event::Finish {
                key: s.key,
                worker: s.worker,
                incarnation: s.incarnation,
                output: s.output,
                took,
            };
            queue.push(now, finish);
        }
    }
}

fn entry(id: &WorkerId, slots: u32, now: Micros) -> WorkerEntry {
    WorkerEntry::new(id.clone(), format!("sim://{id}"), slots, ms(now))
}

/// The cluster and the job of `cfg`: a scheduler with every worker registered and the job
/// submitted and being prepared at time 0, its id, and the event that installs its plan.
fn set_up(cfg: &SimConfig) -> (Scheduler, gridmr_core::JobId, Sched) {
    let slots = cfg.workers.max(1) * cfg.slots.max(1);
    // The original's in-flight caps are for a handful of workers: lifted,
    // as an operator of a large cluster would lift them. Speculation and
    // heartbeat expiry run as the master's defaults have them.
    let config = SchedulerConfig {
        max_inflight: slots,
        max_inflight_maps: slots,
        max_inflight_reduces: slots,
        ..SchedulerConfig::default()
    };
    let mut state = Scheduler::new(config, 1);
    for id in Workers::new(cfg.workers).ids {
        state.handle(Sched::WorkerRegistered(entry(&id, cfg.slots.max(1), 0)), 0);
    }
    let id = state.next_id();
    let request = JobRequest {
        map_splits: Some(cfg.maps),
        reduce_partitions: Some(cfg.reduces),
        force_distributed: true,
        map_only: cfg.reduces == 0,
        ..JobRequest::new(JobKind::Typed("sim".into()), PathBuf::from("/sim/input"))
    };
    let dirs = JobDirs::under(PathBuf::from("/sim/jobs").join(&id));
    state.handle(
        Sched::Submitted {
            id: id.clone(),
            request: Box::new(request),
            dirs,
            foreseen: None,
        },
        0,
    );
    state.handle(Sched::Preparing { job: id.clone() }, 0);
    let split = 64u64 << 20;
    let splits = (0..u64::from(cfg.maps))
        .map(|i| InputSplit {
            path: PathBuf::from("/sim/input/data"),
            start: i * split,
            end: (i + 1) * split,
            input: 0,
        })
        .collect();
    let plan = Plan {
        mode: Mode::Distributed,
        input_size: u64::from(cfg.maps) * split,
        splits,
        reduce_partitions: cfg.reduces,
        params: Params::new(),
    };
    let planned = Sched::Planned {
        job: id.clone(),
        plan: Ok(plan),
    };
    (state, id, planned)
}

/// Runs one job of `cfg.maps` maps and `cfg.reduces` reduces on the
/// simulated cluster, to its end.
pub fn simulate(cfg: &SimConfig) -> SimReport {
    let started = Instant::now();
    let slots = cfg.workers.max(1) * cfg.slots.max(1);
    let (state, id, planned) = set_up(cfg);
    let mut sim = Sim {
        state,
        queue: Queue::default(),
        rng: Rng(cfg.seed | 1),
        report: SimReport::default(),
        workers: Workers::new(cfg.workers),
        plane: Plane::new(cfg),
    };
    let mean = |r: (f64, f64)| (r.0 + r.1) / 2.0;
    let map_span = f64::from(cfg.maps) * mean(cfg.map_s) / f64::from(slots);
    schedule_losses(cfg, map_span, &mut sim.rng, &mut sim.queue);
    sim.queue.push(micros(cfg.heartbeat_s), Event::Heartbeats);
    let (mut map_work, mut reduce_work) = (0.0, 0.0);
    let mut now: Micros = 0;
    sim.step(Some(planned), now, cfg);
    let finished = |state: &Scheduler| state.job(&id).is_none_or(|j| j.state.is_terminal());
    loop {
        // The data plane's next end comes first when it is due before the queue's next event.
        if let Some(p) = sim.plane.as_mut() {
            if let Some(t) = p
                .next_end()
                .filter(|t| sim.queue.peek().is_none_or(|q| *t < q))
            {
                p.finish(t, &mut sim.queue);
                continue;
            }
        }
        let Some((at, event)) = sim.queue.pop() else {
            break;
        };
        now = at;
        if let Some(p) = sim.plane.as_mut() {
            p.finish(now, &mut sim.queue);
        }
        if matches!(event, Event::Heartbeats) {
            heartbeats(&mut sim.state, &sim.workers, now, &mut sim.report);
            sim.queue
                .push(now + micros(cfg.heartbeat_s), Event::Heartbeats);
        }
        let mut world = World {
            workers: &mut sim.workers,
            queue: &mut sim.queue,
            report: &mut sim.report,
            work: (&mut map_work, &mut reduce_work),
            plane: sim.plane.as_mut(),
        };
        let Some(event) = world.turn(event, now, cfg) else {
            continue;
        };
        sim.step(event, now, cfg);
        if finished(&sim.state) {
            break;
        }
    }
    let mut report = sim.report;
    if let Some(job) = sim.state.job(&id) {
        count_attempts(job, &mut report);
    }
    report.succeeded = sim
        .state
        .job(&id)
        .is_some_and(|j| j.state == JobState::Succeeded);
    report.makespan_s = now as f64 / 1e6;
    report.ideal_s = (map_work + reduce_work) / f64::from(slots);
    report.wall = started.elapsed();
    report
}

/// `cfg.losses` workers lost at random times during the map phase.
fn schedule_losses(cfg: &SimConfig, map_span: f64, rng: &mut Rng, queue: &mut Queue) {
    for _ in 0..cfg.losses {
        let at = micros(rng.uniform((0.0, map_span)));
        let w = (rng.next() % u64::from(cfg.workers.max(1))) as usize;
        queue.push(at, Event::Lose(w));
    }
}

/// What a simulated event changes besides the scheduler.
struct World<'a> {
    workers: &'a mut Workers,
    queue: &'a mut Queue,
    report: &'a mut SimReport,
    /// Map and reduce work done, seconds.
    work: (&'a mut f64, &'a mut f64),
    /// The data plane, when task times follow from the data.
    plane: Option<&'a mut Plane>,
}

impl World<'_> {
    /// Carries out `event` at `now`: the scheduler's event it makes, if
    /// any; `None` when the event is void (an answer from a worker that
    /// died meanwhile).
    fn turn(&mut self, event: Event, now: Micros, cfg: &SimConfig) -> Option<Option<Sched>> {
        let workers = &mut *self.workers;
        Some(match event {
            Event::Finish {
                key,
                worker,
                incarnation,
                output,
                took,
            } => {
                if incarnation != workers.incarnation[worker] || !workers.alive[worker] {
                    return None; // died with its worker: never answers
                }
                match key.task.phase {
                    Phase::Reduce => *self.work.1 += took,
                    _ => *self.work.0 += took,
                }
                self.report.completions += 1;
                Some(Sched::AttemptEnded {
                    key,
                    worker: workers.ids[worker].clone(),
                    outcome: Outcome::Succeeded {
                        output,
                        counters: Counters::default(),
                        status: None,
                    },
                })
            }
            // The heartbeats themselves go to the scheduler (see `simulate`).
            Event::Heartbeats => None,
            Event::Lose(w) => {
                if !workers.alive[w] {
                    return None;
                }
                // It falls silent; the scheduler finds out by the missed heartbeats.
                workers.alive[w] = false;
                workers.incarnation[w] += 1;
                if let Some(p) = self.plane.as_mut() {
                    p.flow.drop_worker(w);
                }
                self.queue
                    .push(now + micros(cfg.rejoin_s), Event::Rejoin(w));
                None
            }
            Event::Rejoin(w) => {
                workers.alive[w] = true;
                let slots = cfg.slots.max(1);
                Some(Sched::WorkerRegistered(entry(&workers.ids[w], slots, now)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model against the lab (benches/scaling.sh, `NS="1 2 4 8" ROWS=2000000`: a 200 MB
    /// TeraSort, 100 Mbit/s links, 1 slot per worker, 2N reduces; AMD EPYC, 2 vCPUs shared by
    /// every host; docs/performance.md): the CPU cost per byte from the uncapped N = 1 run
    /// (map 2.389 s, reduce 1.692 s), every capped makespan within 20%.
    #[test]
    fn the_model_matches_the_lab_within_a_fifth() {
        let measured = [
            (1, 6, Shuffle::Shared, 59.32),
            (1, 6, Shuffle::Local, 35.59),
            (2, 6, Shuffle::Shared, 57.99),
            (2, 6, Shuffle::Local, 40.35),
            (4, 6, Shuffle::Shared, 52.41),
            (4, 6, Shuffle::Local, 38.65),
            (8, 9, Shuffle::Shared, 56.50),
            (8, 9, Shuffle::Local, 37.59),
        ];
        let (input, shuffle) = (200e6, 206.03e6);
        let rate = 100e6 / 8.0;
        for (n, maps, mode, lab) in measured {
            let r = simulate(&SimConfig {
                workers: n,
                slots: 1,
                maps,
                reduces: 2 * n,
                losses: 0,
                data: Some(DataConfig {
                    input_bytes: input,
                    shuffle_ratio: shuffle / input,
                    output_ratio: input / shuffle,
                    shuffle: mode,
                    link_bps: rate,
                    storage_bps: rate,
                    objects_bps: None,
                    disk_bps: 2e9,
                    map_cpu_s_per_byte: 2.389 / input,
                    reduce_cpu_s_per_byte: 1.692 / shuffle,
                    shared_cores: Some(2.0),
                }),
                ..SimConfig::default()
            });
            assert!(r.succeeded);
            let ratio = r.makespan_s / lab;
            assert!(
                (0.8..=1.2).contains(&ratio),
                "N={n} {mode:?}: model {:.1} s, lab {lab} s",
                r.makespan_s
            );
        }
    }

    #[test]
    fn a_small_cluster_with_losses_finishes_near_the_ideal() {
        let r = simulate(&SimConfig {
            workers: 50,
            maps: 2_000,
            reduces: 200,
            losses: 5,
            ..SimConfig::default()
        });
        assert!(r.succeeded);
        assert_eq!(
            r.decisions,
            2_200 + r.lost_attempts + r.backup_attempts,
            "{r:?}"
        );
        assert!(
            r.lost_attempts > 0,
            "losses found by heartbeat expiry: {r:?}"
        );
        assert!(r.makespan_s >= r.ideal_s * 0.99, "{r:?}");
        assert!(r.makespan_ratio() < 1.25, "{r:?}");
        assert!(r.heartbeats > 0);
    }
}
