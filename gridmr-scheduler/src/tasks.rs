//! A job's tasks, by phase, and what is derived from them.
//!
//! [`TaskTable`] is the only way a task's state or output changes, so what
//! the scheduler derives from them never drifts: the tally of tasks per
//! phase and state (no decision counts a phase's tasks), the hint where the
//! search for a pending task starts, and the committed map outputs as every
//! reduce is sent them. A task is done exactly when it has an output.

use crate::job::Phase;
use gridmr_core::WorkerId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for a worker.
    Pending,
    /// At least one attempt runs.
    Running,
    /// An attempt succeeded: its output is the task's.
    Done,
}

/// One task (map split, reduce partition or the SINGLE run). Its state
/// and output are read here and changed through its [`TaskTable`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    state: TaskState,
    /// Attempts dispatched so far (the next attempt's number is this + 1).
    pub dispatched: u32,
    /// Attempts running now.
    pub running: u32,
    /// Failed attempts that count against `MAX_TASK_ATTEMPTS`.
    pub failures: u32,
    /// Attempts lost with their worker (the poison-task guard,
    /// `MAX_TASK_LOSSES`).
    pub lost: u32,
    /// The last failure's or loss's message.
    pub last_error: Option<String>,
    /// Workers on which an attempt of this task failed: a retry goes
    /// elsewhere when it can.
    #[serde(default)]
    pub failed_on: Vec<WorkerId>,
    /// Whether a backup (speculative) attempt was started for it.
    #[serde(default)]
    pub speculated: bool,
    output: Option<PathBuf>,
    /// The worker that keeps the output, when it is not on the share
    /// (`SHUFFLE=local`: a map output lives on the worker that ran it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holder: Option<WorkerId>,
    /// Where its attempts are in the job's attempt records (a heartbeat's
    /// progress report finds its attempt through them).
    #[serde(default)]
    pub attempts: Vec<usize>,
}

impl Default for Task {
    fn default() -> Self {
        Task::new()
    }
}

impl Task {
    /// A pending task with no attempts.
    pub fn new() -> Self {
        Task {
            state: TaskState::Pending,
            dispatched: 0,
            running: 0,
            failures: 0,
            lost: 0,
            last_error: None,
            failed_on: Vec::new(),
            speculated: false,
            output: None,
            holder: None,
            attempts: Vec::new(),
        }
    }

    /// Where it is.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// The committed attempt's output (map: index file; reduce and single:
    /// the attempt's part file, renamed at commit); `Some` exactly when it
    /// is done.
    pub fn output(&self) -> Option<&Path> {
        self.output.as_deref()
    }

    /// The worker that keeps its output, when that is not on the share.
    pub fn holder(&self) -> Option<&WorkerId> {
        self.holder.as_ref()
    }
}

/// Tasks per phase and state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally([[u32; 3]; 3]);

fn state_slot(s: TaskState) -> usize {
    match s {
        TaskState::Pending => 0,
        TaskState::Running => 1,
        TaskState::Done => 2,
    }
}

/// The three lists, as a job's record stores them.
#[derive(Default, Deserialize)]
struct TaskLists {
    #[serde(default)]
    single: Vec<Task>,
    #[serde(default)]
    maps: Vec<Task>,
    #[serde(default)]
    reduces: Vec<Task>,
}

/// The same, borrowed, to write.
#[derive(Serialize)]
struct TaskListsRef<'a> {
    single: &'a [Task],
    maps: &'a [Task],
    reduces: &'a [Task],
}

/// A job's tasks, by phase (see the module's documentation). Stored as its
/// three lists (`single`, `maps`, `reduces`); the rest is rebuilt when it
/// is read back.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "TaskLists")]
pub struct TaskTable {
    /// By [`Phase::slot`].
    lists: [Vec<Task>; 3],
    tally: Tally,
    next_pending: [usize; 3],
    reduce_inputs: Option<Arc<Vec<MapOutputRef>>>,
}

/// A committed map output as a reduce is sent it: its index file (a path on
/// the share, or, `SHUFFLE=local`, a plain name on its holder) and the
/// worker that keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOutputRef {
    /// The index file.
    pub index: String,
    /// The worker that keeps it (`None`: on the share).
    pub holder: Option<WorkerId>,
}

impl From<TaskLists> for TaskTable {
    fn from(l: TaskLists) -> Self {
        let mut t = TaskTable {
            lists: [l.single, l.maps, l.reduces],
            ..TaskTable::default()
        };
        for task in t.lists.iter_mut().flatten() {
            // A record written by hand or by an older master: done means
            // an output, and the reverse.
            if task.output.is_none() && task.state == TaskState::Done {
                task.state = TaskState::Pending;
            }
        }
        t.recount();
        t
    }
}

impl Serialize for TaskTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let [single, maps, reduces] = &self.lists;
        TaskListsRef {
            single,
            maps,
            reduces,
        }
        .serialize(s)
    }
}

impl TaskTable {
    fn recount(&mut self) {
        self.tally = self.counted();
        self.next_pending = [0; 3];
        self.reduce_inputs = None;
    }

    /// The tally, counted from the tasks.
    fn counted(&self) -> Tally {
        let mut t = Tally::default();
        for (p, list) in self.lists.iter().enumerate() {
            for task in list {
                t.0[p][state_slot(task.state)] += 1;
            }
        }
        t
    }

    /// Whether the tally agrees with the tasks (a check for debug builds).
    pub fn is_consistent(&self) -> bool {
        self.tally == self.counted()
    }

    /// The tasks of `phase`.
    pub fn tasks(&self, phase: Phase) -> &[Task] {
        &self.lists[phase.slot()]
    }

    /// How many tasks `phase` has.
    pub fn len(&self, phase: Phase) -> usize {
        self.lists[phase.slot()].len()
    }

    /// Task `index` of `phase`.
    pub fn get(&self, phase: Phase, index: usize) -> Option<&Task> {
        self.lists[phase.slot()].get(index)
    }

    /// Task `index` of `phase`, to change its counts (its state and output
    /// change through the methods below).
    pub fn task_mut(&mut self, phase: Phase, index: usize) -> Option<&mut Task> {
        self.lists[phase.slot()].get_mut(index)
    }

    /// Every task, to change its counts.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Task> {
        self.lists.iter_mut().flatten()
    }

    /// How many tasks of `phase` are in `state`.
    pub fn count(&self, phase: Phase, state: TaskState) -> usize {
        self.tally.0[phase.slot()][state_slot(state)] as usize
    }

    /// Whether every task of `phase` is done (true for none).
    pub fn all_done(&self, phase: Phase) -> bool {
        self.count(phase, TaskState::Done) == self.len(phase)
    }

    /// Makes `phase`'s `n` tasks, pending, unless it has some already.
    pub fn make(&mut self, phase: Phase, n: usize) {
        let list = &mut self.lists[phase.slot()];
        if list.is_empty() {
            *list = (0..n).map(|_| Task::new()).collect();
            self.recount();
        }
    }

    fn set_state(&mut self, phase: Phase, index: usize, state: TaskState) {
        let Some(task) = self.lists[phase.slot()].get_mut(index) else {
            return;
        };
        let old = std::mem::replace(&mut task.state, state);
        let counts = &mut self.tally.0[phase.slot()];
        counts[state_slot(old)] = counts[state_slot(old)].saturating_sub(1);
        counts[state_slot(state)] += 1;
        if state == TaskState::Pending {
            let hint = &mut self.next_pending[phase.slot()];
            *hint = (*hint).min(index);
        }
        // A map's output counts only while it is done.
        if phase == Phase::Map && (old == TaskState::Done || state == TaskState::Done) {
            self.reduce_inputs = None;
        }
    }

    /// An attempt of task `index` was dispatched: it runs (a done task
    /// stays done: a backup attempt does not undo it).
    pub fn start(&mut self, phase: Phase, index: usize) {
        if self
            .get(phase, index)
            .is_some_and(|t| t.state != TaskState::Done)
        {
            self.set_state(phase, index, TaskState::Running);
        }
    }

    /// Task `index` is done with `output`, kept by `holder` when it is not
    /// on the share.
    pub fn done(&mut self, phase: Phase, index: usize, output: PathBuf, holder: Option<WorkerId>) {
        if let Some(task) = self.task_mut(phase, index) {
            task.output = Some(output);
            task.holder = holder;
            self.set_state(phase, index, TaskState::Done);
        }
    }

    /// Task `index` has no attempt running and is not done: it waits again.
    pub fn requeue(&mut self, phase: Phase, index: usize) {
        if self
            .get(phase, index)
            .is_some_and(|t| t.running == 0 && t.state == TaskState::Running)
        {
            self.set_state(phase, index, TaskState::Pending);
        }
    }

    /// Task `index`'s output is lost: it waits again. Returns the output,
    /// when it was done.
    pub fn undo(&mut self, phase: Phase, index: usize) -> Option<PathBuf> {
        let task = self.task_mut(phase, index)?;
        let output = task.output.take()?;
        task.holder = None;
        self.set_state(phase, index, TaskState::Pending);
        Some(output)
    }

    /// Where the search for a pending task of `phase` starts.
    pub fn next_pending(&self, phase: Phase) -> usize {
        self.next_pending[phase.slot()].min(self.len(phase))
    }

    /// Task `index` was just handed out: the next search starts after it.
    pub fn handed_out(&mut self, phase: Phase, index: usize) {
        self.next_pending[phase.slot()] = index + 1;
    }

    /// The map whose output is `path`, if one's is.
    pub fn map_with_output(&self, path: &Path) -> Option<u32> {
        self.tasks(Phase::Map)
            .iter()
            .position(|t| t.output() == Some(path))
            .map(|m| m as u32)
    }

    /// The done maps whose output `worker` keeps.
    pub fn maps_held_by(&self, worker: &WorkerId) -> Vec<usize> {
        self.tasks(Phase::Map)
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == TaskState::Done && t.holder.as_ref() == Some(worker))
            .map(|(i, _)| i)
            .collect()
    }

    /// The committed map outputs, shared between dispatches (rebuilt after
    /// a map is done or undone).
    pub fn reduce_inputs(&mut self) -> Arc<Vec<MapOutputRef>> {
        let maps = &self.lists[Phase::Map.slot()];
        self.reduce_inputs
            .get_or_insert_with(|| {
                Arc::new(
                    maps.iter()
                        .filter_map(|t| {
                            t.output().map(|p| MapOutputRef {
                                index: p.display().to_string(),
                                holder: t.holder.clone(),
                            })
                        })
                        .collect(),
                )
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_hint_and_inputs_follow_every_change() {
        let mut t = TaskTable::default();
        t.make(Phase::Map, 3);
        t.make(Phase::Map, 9);
        assert_eq!(t.len(Phase::Map), 3, "made once");
        assert_eq!(t.count(Phase::Map, TaskState::Pending), 3);
        t.start(Phase::Map, 0);
        t.handed_out(Phase::Map, 0);
        assert_eq!(t.next_pending(Phase::Map), 1);
        t.done(Phase::Map, 0, "/m0".into(), None);
        assert_eq!(t.reduce_inputs()[0].index, "/m0");
        // A map output kept by a worker names it.
        let w: WorkerId = "w1".parse().unwrap();
        t.start(Phase::Map, 1);
        t.done(Phase::Map, 1, "map-00001-a1.index".into(), Some(w.clone()));
        assert_eq!(t.reduce_inputs()[1].holder.as_ref(), Some(&w));
        assert_eq!(t.maps_held_by(&w), vec![1]);
        assert_eq!(
            t.undo(Phase::Map, 1),
            Some(PathBuf::from("map-00001-a1.index"))
        );
        assert!(t.maps_held_by(&w).is_empty());
        assert_eq!(t.get(Phase::Map, 1).unwrap().holder(), None);
        // A backup attempt does not undo a done task.
        t.start(Phase::Map, 0);
        assert_eq!(t.get(Phase::Map, 0).unwrap().state(), TaskState::Done);
        t.start(Phase::Map, 2);
        t.requeue(Phase::Map, 2);
        assert_eq!(t.next_pending(Phase::Map), 1);
        assert_eq!(t.map_with_output(Path::new("/m0")), Some(0));
        assert_eq!(t.undo(Phase::Map, 0), Some(PathBuf::from("/m0")));
        assert_eq!(t.undo(Phase::Map, 0), None, "undone once");
        assert_eq!(t.next_pending(Phase::Map), 0);
        assert!(t.reduce_inputs().is_empty());
        assert_eq!(t.count(Phase::Map, TaskState::Pending), 3);
        assert!(t.is_consistent());
    }

    #[test]
    fn a_stored_table_reads_back_with_its_tally_and_no_output_less_done_task() {
        let mut t = TaskTable::default();
        t.make(Phase::Map, 2);
        t.make(Phase::Reduce, 1);
        t.done(Phase::Map, 1, "/m1".into(), None);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["maps"][1]["output"], "/m1");
        assert!(json["single"].as_array().unwrap().is_empty());
        let back: TaskTable = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.count(Phase::Map, TaskState::Done), 1);
        assert_eq!(back.count(Phase::Reduce, TaskState::Pending), 1);
        let mut forged = json;
        forged["maps"][0]["state"] = "Done".into();
        let back: TaskTable = serde_json::from_value(forged).unwrap();
        assert_eq!(
            back.count(Phase::Map, TaskState::Done),
            1,
            "done needs an output"
        );
    }
}
