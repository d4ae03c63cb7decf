//! The simulator's data plane: a fluid model of links, storage, disks and CPUs.
//!
//! Each task attempt is a sequence of **stages**; a stage needs amounts of several resources at
//! once (bytes through a link, core-seconds of CPU) and ends when the slowest of them is done. A
//! resource is shared equally by the stages using it at the moment, and every share is worked
//! out again whenever a stage starts or ends, so a stage's rate follows the load it meets (a
//! transfer slows down when another starts on the same link). Links are full duplex: a host's
//! link is two resources, in and out.
//!
//! The stages of a sort's tasks, with `S` a map's split, `M = S × shuffle_ratio` its output,
//! `P` a reduce's partition and `O = P × output_ratio` its output:
//!
//! | task | shared shuffle | local shuffle |
//! |---|---|---|
//! | map | read `S` from storage with the map's CPU; write `M` to storage | read `S` with the CPU; write `M` to the worker's disk |
//! | reduce | read `P` from storage, merge with the CPU and write `O` to storage, streamed | fetch `P` from every worker (`P/N` from each one's disk and out-link, `P·(N−1)/N` through its own in-link); then merge from disk with the CPU and write `O` to storage |
//!
//! The map outputs are taken as spread evenly over the `N` workers, so a local fetch's other
//! side is modelled in aggregate: `F` fetches at once share the `N − 1` other workers' out-links
//! (and the `N` disks) evenly, which is what every holder's link sees under an even spread. That
//! keeps a reduce's stage at a few resources whatever `N` (500 workers cost no more per event
//! than 5).
//!
//! The storage (the shared folder's file server) carries the shared shuffle twice, and the input
//! and the output unless they are in an object store ([`DataConfig::objects_bps`]), which then
//! carries them instead.

use std::collections::HashMap;

/// The shuffle the model follows (the scheduler's is the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shuffle {
    /// Map outputs on the storage (`SHUFFLE=shared`).
    Shared,
    /// Map outputs on each map's worker, fetched by the reduces (`SHUFFLE=local`).
    Local,
}

/// The data a job moves and the machines it moves over.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// The job's input, bytes (cut evenly among the maps).
    pub input_bytes: f64,
    /// Map output over map input (1 for a sort).
    pub shuffle_ratio: f64,
    /// Job output over map output (1 for a sort).
    pub output_ratio: f64,
    /// Where map outputs are kept.
    pub shuffle: Shuffle,
    /// Each worker's link, each way, bytes per second.
    pub link_bps: f64,
    /// The shared folder's file server, its link each way, bytes per second.
    pub storage_bps: f64,
    /// Inputs and outputs in an object store of this aggregate bandwidth each way (bytes per
    /// second; infinite: only the workers' links limit it); `None`: on the shared folder.
    pub objects_bps: Option<f64>,
    /// Each worker's disk, bytes per second (reads and writes share it).
    pub disk_bps: f64,
    /// Core-seconds of CPU per byte of map input.
    pub map_cpu_s_per_byte: f64,
    /// Core-seconds of CPU per byte of reduce input.
    pub reduce_cpu_s_per_byte: f64,
    /// Cores every task of every worker shares (the lab, whose hosts are namespaces of one
    /// machine); `None`: each task slot has a core of its own.
    pub shared_cores: Option<f64>,
}

/// A resource stages share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Res {
    StorageOut,
    StorageIn,
    ObjectsOut,
    ObjectsIn,
    LinkIn(usize),
    LinkOut(usize),
    Disk(usize),
    /// The other workers' out-links, as the local fetches see them together.
    HolderLinks,
    /// Every worker's disk, as the local fetches read them together.
    HolderDisks,
    /// A task's own core (one slot, one core).
    Core(u64),
    /// The cores all tasks share.
    Cores,
}

/// What a stage needs: amounts of resources, all at once.
type Stage = Vec<(Res, f64)>;

/// A running attempt.
struct Task<T> {
    worker: usize,
    stages: std::collections::VecDeque<Stage>,
    /// Fraction of the current stage done.
    done: f64,
    /// Fraction per second at the current shares.
    rate: f64,
    payload: T,
}

/// The running attempts and the resources they share; `T` is what the simulator gets back
/// when an attempt ends.
pub(crate) struct Flow<T> {
    cfg: DataConfig,
    tasks: HashMap<u64, Task<T>>,
    next_id: u64,
    /// Simulated seconds the shares were last worked out at.
    at: f64,
    /// Workers holding map outputs (the last reduce's count).
    holders: f64,
}

impl<T> Flow<T> {
    pub(crate) fn new(cfg: DataConfig) -> Self {
        Flow {
            cfg,
            tasks: HashMap::new(),
            next_id: 0,
            at: 0.0,
            holders: 1.0,
        }
    }

    /// Starts a map of `split` bytes on `worker`.
    pub(crate) fn start_map(&mut self, worker: usize, split: f64, payload: T) {
        let c = &self.cfg;
        let id = self.next_id;
        let out = split * c.shuffle_ratio;
        let source = self.data_out();
        let write = match c.shuffle {
            Shuffle::Shared => vec![(Res::LinkOut(worker), out), (Res::StorageIn, out)],
            Shuffle::Local => vec![(Res::Disk(worker), out)],
        };
        let read = vec![
            (source, split),
            (Res::LinkIn(worker), split),
            (self.cpu(id), split * c.map_cpu_s_per_byte),
        ];
        self.start(worker, vec![read, write], payload);
    }

    /// Starts a reduce of `partition` bytes on `worker`, its map outputs spread evenly over
    /// `holders` workers (this one among them).
    pub(crate) fn start_reduce(
        &mut self,
        worker: usize,
        partition: f64,
        holders: usize,
        payload: T,
    ) {
        let c = &self.cfg;
        let id = self.next_id;
        let out = partition * c.output_ratio;
        let cpu = (self.cpu(id), partition * c.reduce_cpu_s_per_byte);
        let write = [(Res::LinkOut(worker), out), (self.data_in(), out)];
        let stages = match c.shuffle {
            Shuffle::Shared => {
                let mut s = vec![
                    (Res::StorageOut, partition),
                    (Res::LinkIn(worker), partition),
                    cpu,
                ];
                s.extend(write);
                vec![s]
            }
            Shuffle::Local => {
                let n = holders.max(1) as f64;
                self.holders = n;
                let remote = partition * (n - 1.0) / n;
                let fetch = vec![
                    (Res::HolderDisks, partition),
                    (Res::HolderLinks, remote),
                    (Res::LinkIn(worker), remote),
                ];
                let mut merge = vec![(Res::Disk(worker), partition), cpu];
                merge.extend(write);
                vec![fetch, merge]
            }
        };
        self.start(worker, stages, payload);
    }

    /// Where the input is read from.
    fn data_out(&self) -> Res {
        match self.cfg.objects_bps {
            Some(_) => Res::ObjectsOut,
            None => Res::StorageOut,
        }
    }

    /// Where the output is written.
    fn data_in(&self) -> Res {
        match self.cfg.objects_bps {
            Some(_) => Res::ObjectsIn,
            None => Res::StorageIn,
        }
    }

    fn cpu(&self, id: u64) -> Res {
        match self.cfg.shared_cores {
            Some(_) => Res::Cores,
            None => Res::Core(id),
        }
    }

    fn start(&mut self, worker: usize, stages: Vec<Stage>, payload: T) {
        self.tasks.insert(
            self.next_id,
            Task {
                worker,
                stages: stages.into(),
                done: 0.0,
                rate: 0.0,
                payload,
            },
        );
        self.next_id += 1;
        self.reshare();
    }

    /// Drops every attempt running on `worker` (it was lost: they never answer).
    pub(crate) fn drop_worker(&mut self, worker: usize) {
        self.tasks.retain(|_, t| t.worker != worker);
        self.reshare();
    }

    /// When the next stage ends, in simulated seconds.
    pub(crate) fn next_end(&self) -> Option<f64> {
        self.tasks
            .values()
            .filter(|t| t.rate > 0.0)
            .map(|t| self.at + (1.0 - t.done) / t.rate)
            .min_by(f64::total_cmp)
    }

    /// Moves the model on to `now`; returns the attempts that ended, oldest first.
    pub(crate) fn advance(&mut self, now: f64) -> Vec<T> {
        let dt = (now - self.at).max(0.0);
        self.at = now;
        let mut stage_ended = false;
        let mut ended = Vec::new();
        for (id, t) in &mut self.tasks {
            t.done += t.rate * dt;
            // A stage whose end is now (to rounding) is over.
            if t.done >= 1.0 - 1e-9 {
                t.stages.pop_front();
                t.done = 0.0;
                stage_ended = true;
                if t.stages.is_empty() {
                    ended.push(*id);
                }
            }
        }
        ended.sort_unstable();
        let out = ended
            .into_iter()
            .filter_map(|id| self.tasks.remove(&id))
            .map(|t| t.payload)
            .collect();
        if stage_ended {
            self.reshare();
        }
        out
    }

    /// Works out every running stage's rate from the resources' users.
    fn reshare(&mut self) {
        let mut users: HashMap<Res, f64> = HashMap::new();
        for t in self.tasks.values() {
            for (r, _) in t.stages.front().into_iter().flatten() {
                *users.entry(*r).or_default() += 1.0;
            }
        }
        let c = &self.cfg;
        let share = |r: &Res| -> f64 {
            let n = users.get(r).copied().unwrap_or(1.0);
            match r {
                Res::StorageOut | Res::StorageIn => c.storage_bps / n,
                Res::ObjectsOut | Res::ObjectsIn => c.objects_bps.unwrap_or(f64::INFINITY) / n,
                Res::LinkIn(_) | Res::LinkOut(_) => c.link_bps / n,
                Res::Disk(_) => c.disk_bps / n,
                Res::HolderLinks => (self.holders - 1.0).max(1.0) * c.link_bps / n,
                Res::HolderDisks => self.holders * c.disk_bps / n,
                Res::Core(_) => 1.0,
                Res::Cores => (c.shared_cores.unwrap_or(1.0) / n).min(1.0),
            }
        };
        for t in self.tasks.values_mut() {
            let secs = t
                .stages
                .front()
                .into_iter()
                .flatten()
                .map(|(r, amount)| amount / share(r))
                .fold(0.0, f64::max);
            t.rate = if secs > 0.0 {
                1.0 / secs
            } else {
                f64::INFINITY
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(shuffle: Shuffle) -> DataConfig {
        DataConfig {
            input_bytes: 0.0,
            shuffle_ratio: 1.0,
            output_ratio: 1.0,
            shuffle,
            link_bps: 100.0,
            storage_bps: 100.0,
            objects_bps: None,
            disk_bps: 1e12,
            map_cpu_s_per_byte: 0.0,
            reduce_cpu_s_per_byte: 0.0,
            shared_cores: None,
        }
    }

    /// Runs the flow to its end; the time each payload ended.
    fn run(flow: &mut Flow<u32>) -> Vec<(u32, f64)> {
        let mut ends = Vec::new();
        while let Some(t) = flow.next_end() {
            ends.extend(flow.advance(t).into_iter().map(|p| (p, t)));
        }
        ends
    }

    #[test]
    fn two_maps_share_the_storage_link_then_write_in_turn() {
        // Two maps of 100 bytes on two workers: reading shares the storage's out-link (2 s),
        // writing shares its in-link (2 s).
        let mut flow = Flow::new(cfg(Shuffle::Shared));
        flow.start_map(0, 100.0, 1);
        flow.start_map(1, 100.0, 2);
        let ends = run(&mut flow);
        assert_eq!(ends.len(), 2);
        assert!(ends.iter().all(|(_, t)| (t - 4.0).abs() < 1e-6), "{ends:?}");
    }

    #[test]
    fn a_local_reduce_fetches_from_every_worker_then_writes() {
        // Partition 300 over 3 workers: 200 bytes cross the reducer's in-link (2 s), then 300
        // go to storage (3 s).
        let mut flow = Flow::new(cfg(Shuffle::Local));
        flow.start_reduce(0, 300.0, 3, 7);
        assert_eq!(run(&mut flow), [(7, 5.0)]);
    }

    #[test]
    fn a_lost_worker_takes_its_attempts_with_it() {
        let mut flow = Flow::new(cfg(Shuffle::Shared));
        flow.start_map(0, 100.0, 1);
        flow.start_map(1, 100.0, 2);
        flow.advance(1.0);
        flow.drop_worker(0);
        // The survivor has 50 bytes of its read left, now alone on the link: 0.5 s, then 1 s.
        let ends = run(&mut flow);
        assert_eq!(ends.len(), 1);
        assert!((ends[0].1 - 2.5).abs() < 1e-6, "{ends:?}");
    }
}
