//! Map and reduce tasks: the units of work the embedded engine runs on its threads and cluster
//! workers run on request. Both call exactly these functions.
//!
//! Every task attempt writes under names unique to the attempt; nothing it writes is visible
//! under a final name until the job's committer (the engine, or the master) commits it. A
//! crashed, failed or duplicate attempt therefore never leaves a partial or doubled output.

pub use crate::control::{CancelFlag, Progress, TaskControl};
use crate::counters::{builtin, Counters};
use crate::error::{Error, Result, UserError};
use crate::ids::{AttemptId, JobId, Phase, TaskId, WorkerId};
use crate::input::{read_whole, InputFormat, InputSplit, LineReader, Lines, Record};
use crate::job::{Job, MapContext, MapOut, Mapper, ReduceContext, Reducer, TaskInfo, Values};
use crate::layout;
use crate::output::TextWriter;
use crate::params::Params;
use crate::shuffle::merge::KeyGroups;
use crate::shuffle::{
    Groups, KWayMerge, MapSink, RawGroups, RawMerge, RawOrder, RunIndex, SegmentReader,
    ShuffleSettings, SinkTarget,
};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One attempt of a map task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapTask {
    /// The job.
    pub job_id: JobId,
    /// The task's index (its split's number), from 0.
    pub index: u32,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The worker running it.
    pub worker_id: WorkerId,
    /// The input range.
    pub split: InputSplit,
    /// Where its output goes.
    pub target: MapTarget,
    /// Buffer, compression and merge settings.
    pub shuffle: ShuffleSettings,
    /// The job's parameters.
    #[serde(default)]
    pub params: Params,
}

/// Where a map attempt's output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapTarget {
    /// Sorted and cut into `partitions` for the reduces, as this attempt's
    /// data and index files in the job's shuffle folder `dir` (shared by all
    /// its map tasks). The folder must exist: an attempt never creates it
    /// (see [`existing_dir`]).
    Shuffle {
        /// The folder the output goes into: the job's shuffle folder, or
        /// (`SHUFFLE=local`) the worker's own folder for the job.
        dir: PathBuf,
        /// How many reduce partitions to cut the output into (at least 1).
        partitions: u32,
        /// The job's folder (logs, script working folders) when `dir` is not
        /// in it; `None`: `dir`'s parent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_dir: Option<PathBuf>,
    },
    /// A map-only job (Hadoop's `numReduceTasks = 0`): the mapper's records
    /// go, unsorted, to this attempt's part file
    /// `<out>/_attempts/part-m-NNNNN-aA`; `out`'s `_attempts` folder must
    /// exist.
    Direct {
        /// The job's output folder.
        out: PathBuf,
    },
}

impl MapTarget {
    /// The job's folder: the parent of its shuffle or output folder.
    pub fn job_dir(&self) -> &Path {
        let dir = match self {
            MapTarget::Shuffle {
                job_dir: Some(job), ..
            } => return job,
            MapTarget::Shuffle { dir, .. } => dir,
            MapTarget::Direct { out } => out,
        };
        dir.parent().unwrap_or(dir)
    }

    /// The folder this attempt writes into, which must exist.
    pub fn dir(&self) -> &Path {
        match self {
            MapTarget::Shuffle { dir, .. } => dir,
            MapTarget::Direct { out } => out,
        }
    }
}

impl MapTask {
    /// `map-NNNNN`.
    pub fn task_id(&self) -> TaskId {
        TaskId::new(Phase::Map, self.index)
    }

    /// `map-NNNNN-aA`.
    pub fn attempt_id(&self) -> AttemptId {
        AttemptId::new(self.task_id(), self.attempt)
    }

    /// The file-name stem of this attempt's output, `map-NNNNN-aA`.
    pub fn output_stem(&self) -> String {
        layout::MapOutput::stem(self.index, self.attempt)
    }
}

/// One attempt of a reduce task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceTask {
    /// The job.
    pub job_id: JobId,
    /// The partition it reduces.
    pub partition: u32,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The worker running it.
    pub worker_id: WorkerId,
    /// The index files of the committed map outputs (one per map task).
    pub map_outputs: Vec<PathBuf>,
    /// The job's output folder, which must exist (attempts write below it, in
    /// [`ATTEMPTS_DIR`]).
    pub output_dir: PathBuf,
    /// The job's parameters.
    #[serde(default)]
    pub params: Params,
}

impl ReduceTask {
    /// `reduce-NNNNN`.
    pub fn task_id(&self) -> TaskId {
        TaskId::new(Phase::Reduce, self.partition)
    }

    /// `reduce-NNNNN-aA`.
    pub fn attempt_id(&self) -> AttemptId {
        AttemptId::new(self.task_id(), self.attempt)
    }

    /// Where this attempt writes: `<output>/_attempts/part-r-NNNNN-aA`.
    pub fn attempt_path(&self) -> PathBuf {
        layout::reduce_attempt_file(&self.output_dir, self.partition, self.attempt)
    }
}

pub use crate::layout::ATTEMPTS_DIR;

/// Creates `dir` if it is missing, but never its parent: an attempt of a job whose folder was
/// deleted under it fails instead of bringing the folder back.
///
/// ```
/// let tmp = tempfile::tempdir().unwrap();
/// let dir = tmp.path().join("shuffle");
/// gridmr_core::task::create_leaf_dir(&dir).unwrap();
/// gridmr_core::task::create_leaf_dir(&dir).unwrap(); // already there: fine
/// assert!(gridmr_core::task::create_leaf_dir(&tmp.path().join("gone/shuffle")).is_err());
/// assert!(!tmp.path().join("gone").exists());
/// ```
pub fn create_leaf_dir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::io("create", dir, e)),
    }
}

/// Checks that `dir`, a folder an attempt writes into (a job's `shuffle`, an output's
/// `_attempts`), exists, and never creates it: the master (or the embedded engine) makes these
/// folders when the job starts and removes them when it ends, so an attempt that outlives its
/// job (a worker frozen past the job's end, then thawed) fails here, or at its next file
/// creation, instead of leaving files in a finished job.
///
/// ```
/// let tmp = tempfile::tempdir().unwrap();
/// assert!(gridmr_core::task::existing_dir(tmp.path()).is_ok());
/// assert!(gridmr_core::task::existing_dir(&tmp.path().join("shuffle")).is_err());
/// assert!(!tmp.path().join("shuffle").exists());
/// ```
pub fn existing_dir(dir: &Path) -> Result<()> {
    match dir.symlink_metadata() {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::io(
            "open",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
        )),
        Err(e) => Err(Error::io("open", dir, e)),
    }
}

/// Opens partition `p` of every map output named by its index file (the
/// reduce side of the shuffle), skipping empty segments and adding their
/// sizes to `reduce_shuffle_bytes`. Feed the readers to a
/// [`KWayMerge`].
pub fn open_partition(
    map_outputs: &[PathBuf],
    p: u32,
    counters: &mut Counters,
) -> Result<Vec<SegmentReader>> {
    let mut readers = Vec::new();
    for index_path in map_outputs {
        let index = RunIndex::read(index_path)?;
        if p >= index.partitions() {
            return Err(Error::corrupt(
                index_path,
                0,
                format!(
                    "has {} partitions; partition {p} was asked for",
                    index.partitions()
                ),
            ));
        }
        if index.records[p as usize] > 0 {
            counters.add_builtin(builtin::REDUCE_SHUFFLE_BYTES, index.segment_len(p));
            readers.push(SegmentReader::open(&index, p)?);
        }
    }
    Ok(readers)
}

/// `part-r-NNNNN`, Hadoop's name for reduce output `partition`
/// ([`layout::part_r`]).
pub fn part_file_name(partition: u32) -> String {
    layout::part_r(partition)
}

/// What a successful attempt hands to the committer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    /// `map-NNNNN` or `reduce-NNNNN`.
    pub task_id: TaskId,
    /// The attempt.
    pub attempt: u32,
    /// The attempt's counters.
    pub counters: Counters,
    /// A map attempt's index file, or a reduce attempt's output file.
    pub output: PathBuf,
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs `f`, turning a user error or a panic into [`Error::Task`].
fn guarded<T>(phase: &'static str, f: impl FnOnce() -> Result<T, TaskFailure>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(TaskFailure::Engine(e))) => Err(e),
        // An engine error user code passed on with `?` stays the engine's.
        Ok(Err(TaskFailure::User(e))) => Err(match e.into_engine() {
            Ok(engine) => engine,
            Err(user) => Error::Task {
                phase,
                message: user.to_string(),
            },
        }),
        Err(payload) => Err(Error::Task {
            phase,
            message: format!("panicked: {}", panic_message(payload)),
        }),
    }
}

/// Inside a task: an engine error (I/O, corruption) or the user code's own.
enum TaskFailure {
    Engine(Error),
    User(UserError),
}

impl From<Error> for TaskFailure {
    fn from(e: Error) -> Self {
        TaskFailure::Engine(e)
    }
}

impl From<UserError> for TaskFailure {
    fn from(e: UserError) -> Self {
        TaskFailure::User(e)
    }
}

fn check_partitions(partitions: u32) -> Result<()> {
    if partitions == 0 {
        return Err(Error::setting("partitions", "must be at least 1"));
    }
    Ok(())
}

/// Where a map attempt of `job` writes: its part file (map-only) or its
/// sorted, partitioned shuffle output.
fn map_out<M, R>(job: &Job<M, R>, task: &MapTask) -> Result<MapOut<M::Key, M::Value>>
where
    M: Mapper,
    R: Reducer<Key = M::Key, Value = M::Value>,
{
    Ok(match &task.target {
        MapTarget::Direct { out } => {
            existing_dir(&layout::attempts_dir(out))?;
            let path = layout::map_only_attempt_file(out, task.index, task.attempt);
            MapOut::Direct(TextWriter::with_separator(&path, job.separator)?)
        }
        &MapTarget::Shuffle {
            ref dir,
            partitions,
            ..
        } => {
            check_partitions(partitions)?;
            existing_dir(dir)?;
            let partitioner = job
                .partitioner
                .make(&task.params)
                .map_err(|e| Error::Task {
                    phase: "map",
                    message: format!("making the partitioner: {e}"),
                })?;
            let target = SinkTarget {
                dir: dir.clone(),
                stem: task.output_stem(),
                partitions,
            };
            MapOut::Shuffle(MapSink::new(
                target,
                task.shuffle,
                partitioner,
                job.combiner.clone(),
            ))
        }
    })
}

/// Runs one map attempt of `job`.
pub fn run_map<M, R>(job: &Job<M, R>, task: &MapTask, control: &TaskControl) -> Result<TaskReport>
where
    M: Mapper,
    R: Reducer<Key = M::Key, Value = M::Value>,
{
    let info = TaskInfo {
        job_id: task.job_id.clone(),
        task_id: task.task_id(),
        attempt: task.attempt,
        worker_id: task.worker_id.clone(),
        input_file: Some(task.split.path.clone()),
        input: task.split.input,
        partition: None,
        params: task.params.clone(),
    };
    let mut counters = Counters::default();
    let mut out = map_out(job, task)?;
    let mut mapper = job.mapper.clone();
    let fed = guarded("map", || {
        let mut ctx = MapContext {
            info: &info,
            counters: &mut counters,
            out: &mut out,
            cancel: &control.cancel,
        };
        mapper.setup(&mut ctx)?;
        feed(&mut mapper, &mut ctx, task, control, job.input_format)?;
        mapper.cleanup(&mut ctx)?;
        Ok(())
    });
    let output = match fed {
        // The final merge of spilled runs calls the combiner, user code: it
        // runs under the same guard.
        Ok(()) => guarded("map", || Ok(out.finish(&mut counters)?))?,
        Err(e) => {
            out.discard();
            return Err(e);
        }
    };
    Ok(TaskReport {
        task_id: task.task_id(),
        attempt: task.attempt,
        counters,
        output,
    })
}

/// Feeds the split's records to the mapper, reporting the bytes read.
fn feed<M: Mapper>(
    mapper: &mut M,
    ctx: &mut MapContext<'_, M::Key, M::Value>,
    task: &MapTask,
    control: &TaskControl,
    format: InputFormat,
) -> Result<(), TaskFailure> {
    let (split, cancel, progress) = (&task.split, &control.cancel, &control.progress);
    let file = split.path.as_path();
    match format {
        InputFormat::Lines => {
            let mut reader = LineReader::open(split, LineReader::DEFAULT_BUFFER)?;
            progress.add_total(reader.len());
            let (mut records, mut seen) = (0u64, 0u64);
            while let Some((offset, bytes)) = reader.next_lines(M::LINES_PER_CALL)? {
                cancel.check()?;
                let lines = Lines {
                    file,
                    offset,
                    bytes,
                };
                let count = lines.count();
                if let Err(e) = mapper.map_lines(&lines, ctx) {
                    cancel.check()?; // a mapper that stopped because it was told to
                    return Err(e.into());
                }
                records += count;
                // The file's own bytes (a compressed file's, not what they decompress to).
                let now = reader.consumed();
                progress.add(now - seen, count);
                seen = now;
            }
            ctx.counters
                .add_builtin(builtin::MAP_INPUT_RECORDS, records);
            ctx.counters
                .add_builtin(builtin::MAP_INPUT_BYTES, reader.bytes_read());
        }
        InputFormat::WholeFiles => {
            let bytes = read_whole(file)?;
            let n = bytes.len() as u64;
            progress.add_total(n);
            ctx.counters.add_builtin(builtin::MAP_INPUT_RECORDS, 1);
            ctx.counters.add_builtin(builtin::MAP_INPUT_BYTES, n);
            mapper.map(
                &Record {
                    file,
                    offset: 0,
                    bytes: &bytes,
                },
                ctx,
            )?;
            progress.add(n, 1);
        }
    }
    Ok(())
}

/// Runs `reducer` over every key of `groups`, with its setup and cleanup, looking at the
/// cancel flag and counting progress every [`CancelFlag::CHECK_EVERY`] keys. The key is one
/// slot, decoded into in place from key to key. Returns the groups and records read.
fn reduce_groups<R, G>(
    reducer: &mut R,
    groups: &mut G,
    ctx: &mut ReduceContext<'_, R::OutKey, R::OutValue>,
    control: &TaskControl,
) -> Result<(u64, u64)>
where
    R: Reducer,
    G: KeyGroups<R::Key, R::Value>,
{
    guarded("reduce", || {
        reducer.setup(ctx)?;
        let mut key: Option<R::Key> = None;
        let mut seen = 0u64;
        let mut reported = 0u64;
        while groups.next_key(&mut key)? {
            let Some(k) = key.as_ref() else { break };
            if seen.is_multiple_of(CancelFlag::CHECK_EVERY) {
                control.cancel.check()?;
                let read = groups.records();
                control.progress.add(read - reported, read - reported);
                reported = read;
            }
            seen += 1;
            let mut error = None;
            {
                let mut values = groups.values(k, &mut error);
                reducer.reduce(k, &mut Values { inner: &mut values }, ctx)?;
            }
            if let Some(e) = error {
                return Err(TaskFailure::Engine(e));
            }
        }
        reducer.cleanup(ctx)?;
        let read = groups.records();
        control.progress.add(read - reported, read - reported);
        Ok((groups.groups(), read))
    })
}

/// Runs one reduce attempt of `job`, writing `task.attempt_path()`.
pub fn run_reduce<M, R>(
    job: &Job<M, R>,
    task: &ReduceTask,
    control: &TaskControl,
) -> Result<TaskReport>
where
    M: Mapper,
    R: Reducer<Key = M::Key, Value = M::Value>,
{
    let path = task.attempt_path();
    let result = reduce_into(job, task, control, &path);
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn reduce_into<M, R>(
    job: &Job<M, R>,
    task: &ReduceTask,
    control: &TaskControl,
    path: &Path,
) -> Result<TaskReport>
where
    M: Mapper,
    R: Reducer<Key = M::Key, Value = M::Value>,
{
    let p = task.partition;
    let mut counters = Counters::default();
    let readers = open_partition(&task.map_outputs, p, &mut counters)?;
    control
        .progress
        .add_total(readers.iter().map(SegmentReader::records).sum());
    if let Some(dir) = path.parent() {
        existing_dir(dir)?;
    }
    let info = TaskInfo {
        job_id: task.job_id.clone(),
        task_id: task.task_id(),
        attempt: task.attempt,
        worker_id: task.worker_id.clone(),
        input_file: None,
        input: 0,
        partition: Some(p),
        params: task.params.clone(),
    };
    let mut writer = TextWriter::<R::OutKey, R::OutValue>::with_separator(path, job.separator)?;
    let mut reducer = job.reducer.clone();
    let mut ctx = ReduceContext {
        info: &info,
        counters: &mut counters,
        out: &mut writer,
    };
    // Keys with a raw order are merged and grouped as bytes, each key decoded once.
    let (groups, records) = match RawOrder::of::<M::Key>() {
        Some(order) => reduce_groups(
            &mut reducer,
            &mut RawGroups::new(RawMerge::new(order, readers)?),
            &mut ctx,
            control,
        )?,
        None => reduce_groups(
            &mut reducer,
            &mut Groups::new(KWayMerge::<M::Key, M::Value>::new(readers)?),
            &mut ctx,
            control,
        )?,
    };
    counters.add_builtin(builtin::REDUCE_INPUT_GROUPS, groups);
    counters.add_builtin(builtin::REDUCE_INPUT_RECORDS, records);
    writer.finish(&mut counters)?;
    Ok(TaskReport {
        task_id: task.task_id(),
        attempt: task.attempt,
        counters,
        output: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_code_is_blamed_for_its_own_errors_and_panics_only() {
        let disk_full = || {
            Error::io(
                "write",
                "/spill/run-1",
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            )
        };
        // What `ctx.emit(..)?` inside a mapper does with a spill's I/O error.
        let passed_on = guarded::<()>("map", || Err(TaskFailure::User(disk_full().into())));
        assert!(
            passed_on.unwrap_err().is_io(),
            "the engine's, not the user's"
        );
        let own = guarded::<()>("map", || Err(TaskFailure::User(UserError::msg("bad"))));
        assert!(matches!(own, Err(Error::Task { phase: "map", .. })));
        let panicked = guarded::<()>("reduce", || panic!("boom"));
        assert!(
            matches!(panicked, Err(Error::Task { ref message, .. }) if message.contains("boom"))
        );
    }
}
