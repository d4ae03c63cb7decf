//! Script tasks: the original GridMR's Python job scripts (through the
//! embedded driver) and Hadoop-Streaming commands. The user's code runs in a
//! subprocess per task; GridMR's side (splitting, the sorted shuffle, the
//! merge) is the same Rust data path as typed jobs, with `String` keys and
//! values partitioned by SHA-1 as the original did.

use super::process::{self, pump, Owner, Processes, Spec};

/// Attempt `attempt` of a SINGLE job's one task.
fn single_attempt(attempt: u32) -> AttemptId {
    AttemptId::new(TaskId::new(Phase::Single, 0), attempt)
}
use super::super::failure::Failure;
use super::protocol::{feed_pairs, split_line, Encoding, Grouper};
use gridmr_core::counters::builtin;
use gridmr_core::input::{list_inputs, Codec, InputSplit, LineReader};
use gridmr_core::layout;
use gridmr_core::shuffle::{KWayMerge, MapSink, ShuffleSettings, SinkTarget};
use gridmr_core::task::{
    create_leaf_dir, existing_dir, open_partition, CancelFlag, MapTarget, MapTask, Progress,
    ReduceTask,
};
use gridmr_core::{AttemptId, Counters, JobId, Params, Phase, Sha1Partitioner, TaskId, WorkerId};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a script job runs.
#[derive(Debug, Clone)]
pub(crate) enum Program {
    /// An original-style Python job script, through the driver.
    Python { script: PathBuf },
    /// Hadoop-Streaming commands (run with `sh -c`).
    Streaming {
        mapper: String,
        reducer: String,
        combiner: String,
        files_dir: Option<PathBuf>,
    },
}

/// A task's output lines as they come, into its attempt's part file,
/// counted (Hadoop's output records and bytes).
struct PartFile<'a> {
    path: &'a Path,
    out: std::io::BufWriter<std::fs::File>,
    lines: u64,
    bytes: u64,
}

impl<'a> PartFile<'a> {
    fn create(path: &'a Path) -> Result<Self, Failure> {
        let file = std::fs::File::create(path)
            .map_err(|e| Failure::engine(format!("create {}: {e}", path.display())))?;
        Ok(PartFile {
            path,
            out: std::io::BufWriter::with_capacity(256 << 10, file),
            lines: 0,
            bytes: 0,
        })
    }

    /// Writes one line (its line feed added).
    fn line(&mut self, line: &[u8]) -> Result<(), Failure> {
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
        self.out
            .write_all(line)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| Failure::engine(format!("write {}: {e}", self.path.display())))
    }

    /// Flushes the file and adds its counts to `counters`.
    fn finish(mut self, counters: &mut Counters) -> Result<(), Failure> {
        self.out
            .flush()
            .map_err(|e| Failure::engine(format!("write {}: {e}", self.path.display())))?;
        counters.add_builtin(builtin::OUTPUT_RECORDS, self.lines);
        counters.add_builtin(builtin::OUTPUT_BYTES, self.bytes);
        Ok(())
    }
}

/// A map attempt's log (its combiner's stderr goes there too).
fn map_log(task: &MapTask) -> PathBuf {
    layout::attempt_log(task.target.job_dir(), task.attempt_id())
}

/// Where a map attempt's sorted output goes: the job's shuffle folder, cut
/// into `partitions`.
#[derive(Clone, Copy)]
struct Shuffled<'a> {
    dir: &'a Path,
    partitions: u32,
    /// A SINGLE job's map: a script's values travel as the objects they
    /// are, where the driver can (`driver.py map --objects`).
    objects: bool,
}

impl Program {
    /// How its processes' lines are encoded.
    pub(crate) fn encoding(&self) -> Encoding {
        match self {
            Program::Python { .. } => Encoding::Script,
            Program::Streaming { .. } => Encoding::Streaming,
        }
    }
}

/// Where and how a worker runs script tasks.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) python: OsString,
    /// The Python driver (its folder goes with the last runner).
    pub(crate) driver: Arc<super::super::DriverFile>,
    pub(crate) worker_id: WorkerId,
    pub(crate) default_timeout: Option<Duration>,
    /// Limits, environment and tree kill of every task process.
    pub(crate) fence: Arc<super::super::fence::Fence>,
    /// The warm Python that forks driver runs (none: a fresh interpreter
    /// per run).
    pub(crate) fork: Option<Arc<super::fork_server::ForkServer>>,
}

/// What a script attempt produced.
pub(crate) struct ScriptOutput {
    pub(crate) output: PathBuf,
    pub(crate) counters: Counters,
    pub(crate) status: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Map,
    Combine,
    Reduce,
}

/// An engine error (I/O, shuffle files) as the attempt's failure, blamed by its kind.
fn err(e: gridmr_core::Error) -> Failure {
    Failure::from(e)
}

/// A failed file operation of the worker's own (not the job's code).
fn io_failure(e: impl std::fmt::Display) -> Failure {
    Failure::engine(e.to_string())
}

fn io_err(e: gridmr_core::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Runner {
    fn spec(
        &self,
        program: &Program,
        step: Step,
        cwd: &Path,
        env: Vec<(String, String)>,
        timeout_s: u32,
    ) -> Result<Spec, Failure> {
        let timeout = match timeout_s {
            0 => self.default_timeout,
            s => Some(Duration::from_secs(u64::from(s))),
        };
        let mut env = env;
        env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        env.push(("PYTHONIOENCODING".into(), "utf-8".into()));
        let (what, argv, expect_end) = match program {
            Program::Python { script } => {
                let mode = match step {
                    Step::Map => "map",
                    Step::Reduce => "reduce",
                    Step::Combine => {
                        return Err(Failure::engine("Python job scripts have no combiner"))
                    }
                };
                let argv = vec![
                    self.python.clone(),
                    self.driver.path.clone().into(),
                    mode.into(),
                    script.clone().into(),
                ];
                (format!("the job script's {mode}"), argv, true)
            }
            Program::Streaming {
                mapper,
                reducer,
                combiner,
                ..
            } => {
                let (name, cmd) = match step {
                    Step::Map => ("mapper", mapper),
                    Step::Combine => ("combiner", combiner),
                    Step::Reduce => ("reducer", reducer),
                };
                let argv = vec!["sh".into(), "-c".into(), cmd.into()];
                (format!("the {name} `{cmd}`"), argv, false)
            }
        };
        Ok(Spec {
            log: None,
            what,
            argv,
            cwd: cwd.to_path_buf(),
            env,
            timeout,
            expect_end,
            fence: self.fence.clone(),
            fork: self.fork.clone(),
        })
    }

    /// A task process's own variables: who it is, its input file (as
    /// Hadoop Streaming names it), and the job's parameters as
    /// `GRIDMR_PARAM_<NAME>` (upper case, `.` and `-` as `_`).
    fn env(
        &self,
        task: TaskId,
        attempt: u32,
        input: Option<&Path>,
        params: &Params,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            ("GRIDMR_WORKER_ID".to_owned(), self.worker_id.to_string()),
            ("GRIDMR_TASK_ID".to_owned(), task.to_string()),
            ("GRIDMR_ATTEMPT".to_owned(), attempt.to_string()),
        ];
        if let Some(input) = input {
            let file = input.display().to_string();
            env.push(("mapreduce_map_input_file".into(), file.clone()));
            env.push(("map_input_file".into(), file));
        }
        for (name, value) in params.iter() {
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            env.push((format!("GRIDMR_PARAM_{name}"), value.to_owned()));
        }
        env
    }
}

/// An attempt's working folder (with the job's `files` linked in), removed
/// when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(
        runner: &Runner,
        parent: &Path,
        name: &str,
        program: &Program,
    ) -> Result<Self, Failure> {
        let dir = parent.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        existing_dir(parent)
            .and_then(|()| create_leaf_dir(&dir))
            .map_err(err)?;
        runner.fence.give(&dir).map_err(|e| {
            Failure::engine(format!("hand {} to GRIDMR_TASK_USER: {e}", dir.display()))
        })?;
        if let Program::Streaming {
            files_dir: Some(files),
            ..
        } = program
        {
            if let Ok(entries) = std::fs::read_dir(files) {
                for e in entries.flatten() {
                    let link = dir.join(e.file_name());
                    std::os::unix::fs::symlink(e.path(), &link)
                        .map_err(|x| Failure::engine(format!("link {}: {x}", link.display())))?;
                }
            }
        }
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a map attempt's working folder goes: the job's `work/` folder.
fn work_parent(task: &MapTask) -> PathBuf {
    layout::work_dir(task.target.job_dir())
}

fn sink(
    dir: &Path,
    stem: String,
    partitions: u32,
    settings: ShuffleSettings,
) -> MapSink<String, String> {
    MapSink::new(
        SinkTarget {
            dir: dir.to_path_buf(),
            stem,
            partitions,
        },
        settings,
        Arc::new(Sha1Partitioner),
        None,
    )
}

/// One map attempt of a script job, its split's lines through the mapper:
/// into the sorted shuffle, or (map-only) straight into its part file.
pub(crate) fn run_map(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    task: &MapTask,
    progress: &Progress,
    timeout_s: u32,
) -> Result<ScriptOutput, Failure> {
    match &task.target {
        MapTarget::Shuffle {
            dir, partitions, ..
        } => {
            let to = Shuffled {
                dir,
                partitions: *partitions,
                objects: false,
            };
            map_to_shuffle(runner, procs, program, task, progress, to, timeout_s)
        }
        MapTarget::Direct { out } => {
            run_map_only(runner, procs, program, task, progress, out, timeout_s)
        }
    }
}

/// A map attempt whose `key<TAB>value` lines, grouped by key, go into the
/// sorted shuffle (through the streaming combiner when there is one).
fn map_to_shuffle(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    task: &MapTask,
    progress: &Progress,
    to: Shuffled<'_>,
    timeout_s: u32,
) -> Result<ScriptOutput, Failure> {
    existing_dir(to.dir).map_err(err)?;
    let stem = task.output_stem();
    let work = WorkDir::create(runner, &work_parent(task), &stem, program)?;
    let env = runner.env(
        task.task_id(),
        task.attempt,
        Some(&task.split.path),
        &task.params,
    );
    let mut spec = runner
        .spec(program, Step::Map, &work.0, env, timeout_s)?
        .logging_to(map_log(task));
    if to.objects && matches!(program, Program::Python { .. }) {
        spec.argv.push("--objects".into());
    }
    let combine = matches!(program, Program::Streaming { combiner, .. } if !combiner.is_empty());
    let first_stem = if combine {
        format!("{stem}-precombine")
    } else {
        stem.clone()
    };
    let mut out = sink(to.dir, first_stem, to.partitions, task.shuffle);

    let exact_end = program.encoding() == Encoding::Script;
    let (feed, input) = feed_split(&task.split, progress, exact_end)?;
    let mut counters = Counters::default();
    // The reducer sees each key once with all its values, so map output is
    // grouped by key here: one shuffle record per distinct key instead of
    // one per pair (the Python driver has already counted equal pairs).
    let encoding = program.encoding();
    let mut grouper = Grouper::new(task.shuffle.sort_buffer_bytes);
    let mut pairs = 0u64;
    let finished = process::run(
        &spec,
        procs,
        &Owner::new(&task.job_id, task.attempt_id()),
        feed,
        |line| {
            pairs += grouper
                .add(encoding, line)
                .map_err(|e| Failure::task(e.to_string()))?;
            if grouper.is_full() {
                grouper.drain_into(&mut out).map_err(err)?;
            }
            Ok(())
        },
    );
    let finished = match finished.and_then(|f| {
        grouper
            .drain_into(&mut out)
            .map(|()| f)
            .map_err(|e| Failure::engine(e.to_string()))
    }) {
        Ok(f) => f,
        Err(e) => {
            out.discard();
            return Err(e);
        }
    };
    let mut sunk = Counters::default();
    let mut index = out.finish(&mut sunk).map_err(err)?;
    count_grouped(&mut counters, &sunk, pairs);
    input.add_to(&mut counters);
    counters.merge(&finished.counters);
    let mut status = finished.status;
    if combine {
        let pre = index.index_path.clone();
        let combined = combine_output(
            runner,
            procs,
            program,
            task,
            to,
            &pre,
            (&stem, &work.0),
            timeout_s,
            &mut counters,
        );
        gridmr_core::layout::MapOutput::new(&pre).remove();
        let (i, s) = combined?;
        index = i;
        status = s.or(status);
    }
    counters.add_builtin(
        builtin::MAP_OUTPUT_BYTES,
        index.offsets.last().copied().unwrap_or(0),
    );
    Ok(ScriptOutput {
        output: index.index_path,
        counters,
        status,
    })
}

/// Grouping by key acts as a combiner: the script's `pairs` are the map
/// output and the grouping's input, the grouped shuffle records (`sunk`)
/// its output.
fn count_grouped(counters: &mut Counters, sunk: &Counters, pairs: u64) {
    for (group, name, n) in sunk.iter() {
        let name = match name {
            builtin::MAP_OUTPUT_RECORDS => builtin::COMBINE_OUTPUT_RECORDS,
            other => other,
        };
        counters.add(group, name, n);
    }
    counters.add_builtin(builtin::MAP_OUTPUT_RECORDS, pairs);
    counters.add_builtin(builtin::COMBINE_INPUT_RECORDS, pairs);
}

/// What a split's feeder counted, read once the process has finished.
#[derive(Default)]
struct InputCount {
    records: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl InputCount {
    fn add_to(&self, counters: &mut Counters) {
        counters.add_builtin(
            builtin::MAP_INPUT_RECORDS,
            self.records.load(Ordering::Relaxed),
        );
        counters.add_builtin(builtin::MAP_INPUT_BYTES, self.bytes.load(Ordering::Relaxed));
    }
}

/// The feeder of a task's process (a split's lines, each ended by one
/// `\n`) and the counts it leaves behind.
type SplitFeed = (
    Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>,
    InputCount,
);

/// The feeder of a split's lines, adding the bytes it has fed to
/// `progress` as it goes.
/// Feeds a split's lines to a task process, each ending in a line feed; but
/// for a script (`exact_end`) the file's last line ends as the file does, so
/// `map_func` sees `"last"` where the file has no final line feed, as the
/// original's did.
fn feed_split(
    split: &InputSplit,
    progress: &Progress,
    exact_end: bool,
) -> Result<SplitFeed, Failure> {
    let mut reader = LineReader::open(split, LineReader::DEFAULT_BUFFER).map_err(err)?;
    progress.add_total(reader.len());
    let progress = progress.clone();
    let count = InputCount::default();
    let (records, bytes) = (count.records.clone(), count.bytes.clone());
    let feed = move |w: &mut dyn Write| {
        let mut n = 0u64;
        let mut reported = (0u64, 0u64);
        while let Some((_, line)) = reader.next_line().map_err(io_err)? {
            w.write_all(line)?;
            if !(exact_end && reader.last_line_unterminated()) {
                w.write_all(b"\n")?;
            }
            n += 1;
            if n.is_multiple_of(CancelFlag::CHECK_EVERY) {
                let read = reader.consumed();
                progress.add(read - reported.0, n - reported.1);
                reported = (read, n);
            }
        }
        progress.add(reader.consumed().saturating_sub(reported.0), n - reported.1);
        records.store(n, Ordering::Relaxed);
        bytes.store(reader.bytes_read(), Ordering::Relaxed);
        Ok(())
    };
    Ok((Box::new(feed), count))
}

/// One map attempt of a map-only streaming job: the mapper's output lines,
/// as they come, into `<out_dir>/_attempts/part-m-NNNNN-aA`.
fn run_map_only(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    task: &MapTask,
    progress: &Progress,
    out_dir: &Path,
    timeout_s: u32,
) -> Result<ScriptOutput, Failure> {
    let attempts = layout::attempts_dir(out_dir);
    existing_dir(&attempts).map_err(err)?;
    let path = layout::map_only_attempt_file(out_dir, task.index, task.attempt);
    let result = (|| {
        let stem = format!(
            "{}-work",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let work = WorkDir::create(runner, &attempts, &stem, program)?;
        let env = runner.env(
            task.task_id(),
            task.attempt,
            Some(&task.split.path),
            &task.params,
        );
        let spec = runner
            .spec(program, Step::Map, &work.0, env, timeout_s)?
            .logging_to(map_log(task));
        let mut out = PartFile::create(&path)?;
        let (feed, input) = feed_split(&task.split, progress, false)?;
        let finished = process::run(
            &spec,
            procs,
            &Owner::new(&task.job_id, task.attempt_id()),
            feed,
            |line| out.line(line),
        )?;
        let mut counters = finished.counters;
        input.add_to(&mut counters);
        out.finish(&mut counters)?;
        Ok(ScriptOutput {
            output: path.clone(),
            counters,
            status: finished.status,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Runs a map output's partitions through the streaming combiner, each
/// partition's records sorted by key, into the attempt's final shuffle file.
#[allow(clippy::too_many_arguments)]
fn combine_output(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    task: &MapTask,
    to: Shuffled<'_>,
    pre_index: &Path,
    (stem, cwd): (&str, &Path),
    timeout_s: u32,
    counters: &mut Counters,
) -> Result<(gridmr_core::shuffle::RunIndex, Option<String>), Failure> {
    let mut out = sink(to.dir, stem.to_owned(), to.partitions, task.shuffle);
    let mut status = None;
    for p in 0..to.partitions {
        let mut scratch = Counters::default();
        let readers = open_partition(&[pre_index.to_path_buf()], p, &mut scratch).map_err(err)?;
        if readers.is_empty() {
            continue;
        }
        let merge = KWayMerge::<String, String>::new(readers).map_err(err)?;
        let env = runner.env(
            task.task_id(),
            task.attempt,
            Some(&task.split.path),
            &task.params,
        );
        let spec = runner
            .spec(program, Step::Combine, cwd, env, timeout_s)?
            .logging_to(map_log(task));
        let done = process::run(
            &spec,
            procs,
            &Owner::new(&task.job_id, task.attempt_id()),
            feed_pairs(merge, None, Encoding::Streaming, Progress::default()),
            |line| {
                let (k, v) = split_line(line);
                out.emit(k, v).map_err(err)
            },
        );
        match done {
            Ok(f) => {
                counters.merge(&f.counters);
                status = f.status.or(status);
            }
            Err(e) => {
                out.discard();
                return Err(e);
            }
        }
    }
    let index = out.finish(counters).map_err(err)?;
    Ok((index, status))
}

/// One reduce attempt of a script job: the partition, merged and sorted by
/// key, through the reducer, its lines into the attempt's part file.
pub(crate) fn run_reduce(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    task: &ReduceTask,
    progress: &Progress,
    timeout_s: u32,
) -> Result<ScriptOutput, Failure> {
    let path = task.attempt_path();
    let result = reduce_into(runner, procs, program, (task, progress), timeout_s, &path);
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn reduce_into(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    (task, progress): (&ReduceTask, &Progress),
    timeout_s: u32,
    path: &Path,
) -> Result<ScriptOutput, Failure> {
    let mut counters = Counters::default();
    let readers = open_partition(&task.map_outputs, task.partition, &mut counters).map_err(err)?;
    progress.add_total(readers.iter().map(|r| r.records()).sum());
    let merge = KWayMerge::<String, String>::new(readers).map_err(err)?;
    if let Some(dir) = path.parent() {
        existing_dir(dir).map_err(err)?;
    }
    let mut out = PartFile::create(path)?;
    let parent = layout::attempts_dir(&task.output_dir);
    let work = WorkDir::create(
        runner,
        &parent,
        &format!("{}-work", task.attempt_id()),
        program,
    )?;
    let env = runner.env(task.task_id(), task.attempt, None, &task.params);
    let job_dir = task.output_dir.parent().unwrap_or(&task.output_dir);
    let spec = runner
        .spec(program, Step::Reduce, &work.0, env, timeout_s)?
        .logging_to(layout::attempt_log(job_dir, task.attempt_id()));
    let records = Arc::new(AtomicU64::new(0));
    let finished = process::run(
        &spec,
        procs,
        &Owner::new(&task.job_id, task.attempt_id()),
        feed_pairs(
            merge,
            Some(records.clone()),
            program.encoding(),
            progress.clone(),
        ),
        |line| out.line(line),
    )?;
    out.finish(&mut counters)?;
    counters.add_builtin(
        builtin::REDUCE_INPUT_RECORDS,
        records.load(Ordering::Relaxed),
    );
    counters.merge(&finished.counters);
    Ok(ScriptOutput {
        output: path.to_path_buf(),
        counters,
        status: finished.status,
    })
}

/// A writer that remembers the last byte written through it.
struct LastByte<'a> {
    inner: &'a mut dyn Write,
    byte: Option<u8>,
}

impl<'a> LastByte<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        LastByte { inner, byte: None }
    }
}

impl Write for LastByte<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.byte = Some(buf[n - 1]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Whether `path` is empty or ends with a line feed.
fn ends_with_line_feed(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Which of `map_func`, `reduce_func`, `process` a Python script defines.
fn probe(
    runner: &Runner,
    procs: &Processes,
    owner: &Owner,
    script: &Path,
    cwd: &Path,
) -> Result<Vec<String>, Failure> {
    let spec = Spec {
        log: None,
        what: "the job script".into(),
        argv: vec![
            runner.python.clone(),
            runner.driver.path.clone().into(),
            "probe".into(),
            script.into(),
        ],
        cwd: cwd.to_path_buf(),
        env: vec![("PYTHONDONTWRITEBYTECODE".into(), "1".into())],
        timeout: Some(Duration::from_secs(60)),
        expect_end: true,
        fence: runner.fence.clone(),
        fork: runner.fork.clone(),
    };
    let mut names = Vec::new();
    process::run(
        &spec,
        procs,
        owner,
        |_| Ok(()),
        |line| {
            names.extend(
                String::from_utf8_lossy(line)
                    .split_whitespace()
                    .map(str::to_owned),
            );
            Ok(())
        },
    )?;
    Ok(names)
}

/// One SINGLE-mode attempt of a script job: what it reads, where it writes.
pub(crate) struct SingleAttempt<'a> {
    pub(crate) job_id: &'a JobId,
    /// The job's inputs (files, folders or globs), in order.
    pub(crate) inputs: &'a [String],
    pub(crate) params: &'a Params,
    pub(crate) output_dir: &'a Path,
    /// The attempt's own folder, removed when it ends.
    pub(crate) work_dir: &'a Path,
    pub(crate) attempt: u32,
    pub(crate) shuffle: ShuffleSettings,
    pub(crate) timeout_s: u32,
}

/// The SINGLE mode of a script job: `process(input, output)` when the script
/// defines it (the input joined into one file when it is several), else every
/// input file mapped and everything reduced into one partition.
pub(crate) fn run_single(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    a: &SingleAttempt<'_>,
) -> Result<ScriptOutput, Failure> {
    let result = single(runner, procs, program, a);
    let _ = std::fs::remove_dir_all(a.work_dir);
    result
}

/// A SINGLE attempt of a script with `process(input_path, output_path)`: the script runs once
/// over the whole input, in the original's layout. It reads `<attempt>/input/input.data` (the
/// one input file under that name, a hard link or else a symbolic link; several joined as the
/// original joined them) and writes `<attempt>/out/result.txt`, which becomes the attempt's part
/// file; the other files it leaves in `<attempt>/out/` go to the job's `out/` beside its output.
fn run_process(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    script: &Path,
    a: &SingleAttempt<'_>,
    files: &[gridmr_core::input::InputFile],
) -> Result<ScriptOutput, Failure> {
    let SingleAttempt {
        job_id,
        params,
        output_dir,
        work_dir,
        attempt,
        timeout_s,
        ..
    } = *a;
    let source = process_input(work_dir, files)?;
    let out = work_dir.join("out");
    create_leaf_dir(&out).map_err(err)?;
    runner.fence.give(&out).map_err(io_failure)?;
    let written = out.join(gridmr_core::commit::RESULT_FILE);
    let dest = layout::reduce_attempt_file(output_dir, 0, attempt);
    if let Some(d) = dest.parent() {
        create_leaf_dir(d).map_err(err)?;
    }
    let mut spec = runner.spec(
        program,
        Step::Map,
        work_dir,
        runner.env(
            TaskId::new(Phase::Single, 0),
            attempt,
            Some(&source),
            params,
        ),
        timeout_s,
    )?;
    spec.what = "the job script's process".into();
    spec.log = Some(layout::attempt_log(
        output_dir.parent().unwrap_or(output_dir),
        single_attempt(attempt),
    ));
    spec.argv = vec![
        runner.python.clone(),
        runner.driver.path.clone().into(),
        "process".into(),
        script.into(),
        source.clone().into(),
        written.clone().into(),
    ];
    let finished = process::run(
        &spec,
        procs,
        &Owner::new(job_id, single_attempt(attempt)),
        |_| Ok(()),
        |_| Ok(()),
    )?;
    let is_file = written.symlink_metadata().is_ok_and(|m| m.is_file());
    if !is_file {
        return Err(Failure::task(format!(
            "process(input_path, output_path) wrote no file at {}",
            written.display()
        )));
    }
    std::fs::rename(&written, &dest).map_err(io_failure)?;
    keep_side_files(&out, &layout::side_files_dir(&dest))?;
    let mut counters = finished.counters;
    counters.add_builtin(builtin::MAP_INPUT_BYTES, files.iter().map(|f| f.len).sum());
    Ok(ScriptOutput {
        output: dest,
        counters,
        status: finished.status,
    })
}

/// `<attempt>/input/input.data`, the original's name for a SINGLE job's input: the one file
/// itself (a hard link, or a symbolic link across file systems), or several joined, each
/// ending its last line.
fn process_input(
    work_dir: &Path,
    files: &[gridmr_core::input::InputFile],
) -> Result<PathBuf, Failure> {
    let joined = work_dir.join("input").join("input.data");
    if let Some(d) = joined.parent() {
        std::fs::create_dir_all(d).map_err(io_failure)?;
    }
    let compressed = |f: &gridmr_core::input::InputFile| Codec::of(&f.path);
    if let [one] = files {
        if compressed(one).is_none() {
            let linked = std::fs::hard_link(&one.path, &joined)
                .or_else(|_| std::os::unix::fs::symlink(&one.path, &joined));
            if linked.is_ok() {
                return Ok(joined);
            }
        }
    }
    let mut out = std::fs::File::create(&joined).map_err(io_failure)?;
    for f in files {
        let r = std::fs::File::open(&f.path).map_err(io_failure)?;
        // A compressed file is joined as the text it holds, as a map task would read it.
        let ends_line = match compressed(f) {
            Some(codec) => {
                let mut last = LastByte::new(&mut out);
                pump(codec.decoder(r), &mut last).map_err(io_failure)?;
                last.byte.is_none_or(|b| b == b'\n')
            }
            None => {
                pump(r, &mut out).map_err(io_failure)?;
                ends_with_line_feed(&f.path).map_err(io_failure)?
            }
        };
        // Files keep their line boundaries: one that does not end with a line feed gets
        // one (the original concatenated `gamma` and `delta` into `gammadelta`). One file
        // alone is its text exactly, as a link to it would be.
        if !ends_line && files.len() > 1 {
            out.write_all(b"\n").map_err(io_failure)?;
        }
    }
    Ok(joined)
}

/// Moves what `process()` wrote beside its result (regular files and folders, not links, not
/// the output's own names: [`layout::is_reserved_output_name`]) into `side`, the attempt's
/// side-files folder ([`layout::side_files_dir`]); the commit moves them into the output
/// folder if it picks this attempt, where the original left them.
fn keep_side_files(written: &Path, side: &Path) -> Result<(), Failure> {
    let Ok(entries) = std::fs::read_dir(written) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let kind = entry.file_type().map_err(io_failure)?;
        let movable = kind.is_file() || kind.is_dir();
        if !movable || layout::is_reserved_output_name(&name.to_string_lossy()) {
            continue;
        }
        create_leaf_dir(side).map_err(err)?;
        std::fs::rename(entry.path(), side.join(&name)).map_err(io_failure)?;
    }
    Ok(())
}

fn single(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    a: &SingleAttempt<'_>,
) -> Result<ScriptOutput, Failure> {
    let SingleAttempt {
        job_id,
        output_dir,
        work_dir,
        attempt,
        ..
    } = *a;
    // Only while the job's attempt folder exists: an attempt that outlived its job starts
    // nothing in the job's folder.
    existing_dir(&layout::attempts_dir(output_dir))
        .and_then(|()| create_leaf_dir(work_dir))
        .map_err(err)?;
    runner.fence.give(work_dir).map_err(|e| {
        Failure::engine(format!(
            "hand {} to GRIDMR_TASK_USER: {e}",
            work_dir.display()
        ))
    })?;
    let files = list_inputs(a.inputs).map_err(err)?;
    if let Program::Python { script } = program {
        if probe(
            runner,
            procs,
            &Owner::new(job_id, single_attempt(attempt)),
            script,
            work_dir,
        )?
        .iter()
        .any(|n| n == "process")
        {
            return run_process(runner, procs, program, script, a, &files);
        }
    }
    map_then_reduce(runner, procs, program, a, &files)
}

/// A SINGLE script attempt without `process()`: each input file through
/// the mapper into the attempt's own shuffle, then one reduce over it all.
fn map_then_reduce(
    runner: &Runner,
    procs: &Processes,
    program: &Program,
    a: &SingleAttempt<'_>,
    files: &[gridmr_core::input::InputFile],
) -> Result<ScriptOutput, Failure> {
    let SingleAttempt {
        job_id,
        params,
        output_dir,
        work_dir,
        attempt,
        shuffle,
        timeout_s,
        ..
    } = *a;
    // The attempt's own shuffle, inside its working folder (made by this attempt, so its
    // map steps find the folders they never create).
    let shuffle_dir = layout::shuffle_dir(work_dir);
    create_leaf_dir(&shuffle_dir)
        .and_then(|()| create_leaf_dir(&layout::work_dir(work_dir)))
        .map_err(err)?;
    let mut counters = Counters::default();
    let mut outputs = Vec::new();
    let mut status = None;
    for (i, f) in files.iter().filter(|f| f.len > 0).enumerate() {
        let task = MapTask {
            job_id: job_id.clone(),
            index: i as u32,
            attempt,
            worker_id: runner.worker_id.clone(),
            split: InputSplit {
                path: f.path.clone(),
                start: 0,
                end: f.len,
                input: f.input,
            },
            target: MapTarget::Shuffle {
                dir: shuffle_dir.clone(),
                partitions: 1,
                job_dir: None,
            },
            shuffle,
            params: params.clone(),
        };
        // The original ran a SINGLE job in one process: reduce_func got map_func's objects.
        let to = Shuffled {
            dir: &shuffle_dir,
            partitions: 1,
            objects: true,
        };
        let out = map_to_shuffle(
            runner,
            procs,
            program,
            &task,
            &Progress::default(),
            to,
            timeout_s,
        )?;
        counters.merge(&out.counters);
        status = out.status.or(status);
        outputs.push(out.output);
    }
    let reduce = ReduceTask {
        job_id: job_id.clone(),
        partition: 0,
        attempt,
        worker_id: runner.worker_id.clone(),
        map_outputs: outputs,
        output_dir: output_dir.to_path_buf(),
        params: params.clone(),
    };
    let out = run_reduce(
        runner,
        procs,
        program,
        &reduce,
        &Progress::default(),
        timeout_s,
    )?;
    counters.merge(&out.counters);
    Ok(ScriptOutput {
        output: out.output,
        counters,
        status: out.status.or(status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_core::input::InputFile;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// `process()`'s `input.data`: files joined as the text they hold, a gzip file
    /// decompressed, every file's last line ended; one gzip file alone is not linked.
    #[test]
    fn a_single_jobs_input_is_the_text_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<InputFile> = [
            ("a.txt", b"alpha\nbeta".to_vec()),
            ("b.txt.gz", gzip(b"gamma\ndelta")),
            ("c.txt", b"eps\n".to_vec()),
        ]
        .into_iter()
        .map(|(name, body)| {
            let path = dir.path().join(name);
            std::fs::write(&path, &body).unwrap();
            InputFile {
                path,
                len: body.len() as u64,
                input: 0,
            }
        })
        .collect();
        let work = dir.path().join("work");
        let joined = process_input(&work, &files).unwrap();
        assert_eq!(
            std::fs::read_to_string(&joined).unwrap(),
            "alpha\nbeta\ngamma\ndelta\neps\n"
        );
        let alone = dir.path().join("alone");
        let joined = process_input(&alone, &files[1..2]).unwrap();
        assert!(!joined.symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&joined).unwrap(), "gamma\ndelta");
    }
}
