//! `TASK_ISOLATION=process`: each typed attempt runs in a child of the
//! worker's own binary (as Hadoop runs each task in a JVM of its own), so
//! user code that aborts, exits or leaks fails one attempt, and the worker
//! lives on.
//!
//! The worker starts `<its binary> task-child <worker id>` through the task
//! fence and writes the task on its stdin: one tag byte (`m` map, `r`
//! reduce) and the task's protobuf message (`MapTask` or `ReduceTask`, as
//! on the wire). The child finds the job in its registry (the same binary,
//! the same registry), runs the attempt, and writes one JSON line,
//! [`ChildReport`], on stdout; a failure is its stderr and a non-zero exit.
//! [`main_with`](crate::main_with) answers `task-child` before parsing its
//! command line, so every binary built on it can run children.

use super::super::failure::Failure;
use super::process::{self, Owner, Processes, Spec};
use super::script::Runner;
use gridmr_core::layout;
use gridmr_core::task::{MapTask, ReduceTask, TaskControl};
use gridmr_core::{Counters, Registry, WorkerId};
use gridmr_net::proto;
use gridmr_net::wire::{
    map_task_from_wire, map_task_to_wire, reduce_task_from_wire, reduce_task_to_wire,
};
use prost::Message;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// The hidden command a worker's binary answers as a task child.
pub const CHILD_COMMAND: &str = "task-child";

/// What a child prints when asked `task-child --probe`.
const PROBE_ANSWER: &str = "gridmr task-child 1";

/// A child's answer.
#[derive(serde::Serialize, serde::Deserialize)]
struct ChildReport {
    output: PathBuf,
    counters: Counters,
}

/// Checks that this process's binary runs task children (its `main` calls
/// `main_with`), before a worker with `TASK_ISOLATION=process` takes tasks.
pub(crate) fn check_binary() -> Result<(), ChildError> {
    let exe = std::env::current_exe().map_err(ChildError::CurrentExe)?;
    let out = std::process::Command::new(&exe)
        .args([CHILD_COMMAND, "--probe"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| ChildError::Spawn {
            exe: exe.clone(),
            source,
        })?;
    if String::from_utf8_lossy(&out.stdout).trim() == PROBE_ANSWER {
        Ok(())
    } else {
        Err(ChildError::NoChildEntry(exe))
    }
}

/// Why this binary runs no task children, or why a child could not run
/// the task it was handed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildError {
    /// The worker cannot name its own binary.
    #[error("this binary: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// The binary could not be started.
    #[error("{}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The binary's `main` does not hand `task-child` to GridMR.
    #[error("{} does not run task children: its main must call gridmr_runtime::main_with", .0.display())]
    NoChildEntry(PathBuf),
    /// The task could not be read from stdin.
    #[error("reading the task: {0}")]
    Stdin(#[source] std::io::Error),
    /// Stdin was empty.
    #[error("no task on stdin")]
    NoTask,
    /// The first byte names no task kind.
    #[error("unknown task tag {0}")]
    UnknownTag(u8),
    /// The worker id it was started with is none.
    #[error(transparent)]
    WorkerId(#[from] gridmr_core::ids::BadId),
    /// The task message does not decode.
    #[error(transparent)]
    Decode(#[from] prost::DecodeError),
    /// The task message decodes but is not a valid task.
    #[error(transparent)]
    Wire(#[from] gridmr_net::Error),
    /// The job is unknown, or the task itself failed.
    #[error(transparent)]
    Core(#[from] gridmr_core::Error),
}

/// Runs a typed map attempt in a child.
pub(crate) fn run_map(
    runner: &Runner,
    procs: &Processes,
    task: &MapTask,
    job: &str,
) -> Result<(PathBuf, Counters), Failure> {
    let msg = map_task_to_wire(task, job, "").encode_to_vec();
    let owner = Owner::new(&task.job_id, task.attempt_id());
    let log = layout::attempt_log(task.target.job_dir(), task.attempt_id());
    run(runner, procs, &owner, log, b'm', msg)
}

/// Runs a typed reduce attempt in a child.
pub(crate) fn run_reduce(
    runner: &Runner,
    procs: &Processes,
    task: &ReduceTask,
    job: &str,
) -> Result<(PathBuf, Counters), Failure> {
    let msg = reduce_task_to_wire(task, job, "").encode_to_vec();
    let owner = Owner::new(&task.job_id, task.attempt_id());
    let job_dir = task.output_dir.parent().unwrap_or(&task.output_dir);
    let log = layout::attempt_log(job_dir, task.attempt_id());
    run(runner, procs, &owner, log, b'r', msg)
}

fn run(
    runner: &Runner,
    procs: &Processes,
    owner: &Owner,
    log: PathBuf,
    tag: u8,
    msg: Vec<u8>,
) -> Result<(PathBuf, Counters), Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::engine(format!("this binary: {e}")))?;
    let spec = Spec {
        what: "the typed task (TASK_ISOLATION=process)".into(),
        argv: vec![
            exe.into(),
            CHILD_COMMAND.into(),
            runner.worker_id.to_string().into(),
        ],
        cwd: std::env::temp_dir(),
        env: Vec::new(),
        timeout: None,
        expect_end: false,
        fence: runner.fence.clone(),
        fork: None,
        // What the child writes on stderr (a panic's message, say).
        log: Some(log),
    };
    let mut report = None;
    process::run(
        &spec,
        procs,
        owner,
        move |w| {
            w.write_all(&[tag])?;
            w.write_all(&msg)
        },
        |line| {
            let r: ChildReport = serde_json::from_slice(line)
                .map_err(|e| Failure::engine(format!("the task child answered {line:?}: {e}")))?;
            report = Some(r);
            Ok(())
        },
    )?;
    let r = report.ok_or_else(|| Failure::engine("the task child ended without its report"))?;
    Ok((r.output, r.counters))
}

/// The child's side: `task-child <worker id>` (or `--probe`).
pub fn child_main(registry: &Registry, args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some("--probe") {
        println!("{PROBE_ANSWER}");
        return ExitCode::SUCCESS;
    }
    // What the job's code writes through `tracing` goes to stderr, which the
    // worker keeps as the attempt's log.
    let level = std::env::var("TASK_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let worker_id = args.first().cloned().unwrap_or_default();
    match child(registry, &worker_id) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn child(registry: &Registry, worker_id: &str) -> Result<ChildReport, ChildError> {
    let worker_id: WorkerId = worker_id.parse()?;
    let worker_id = &worker_id;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(ChildError::Stdin)?;
    let (tag, body) = input.split_first().ok_or(ChildError::NoTask)?;
    let report = match tag {
        b'm' => {
            let msg = proto::MapTask::decode(body)?;
            // Its parent sends the task with its shuffle folder resolved, so
            // no worker folder is needed here.
            let task = map_task_from_wire(&msg, worker_id, std::path::Path::new("/"))?;
            // Its parent stops it by killing it, and reads no progress.
            let control = TaskControl::default();
            registry.get(&msg.job_name)?.run_map(&task, &control)?
        }
        b'r' => {
            let msg = proto::ReduceTask::decode(body)?;
            let task = reduce_task_from_wire(&msg, worker_id)?;
            let control = TaskControl::default();
            registry.get(&msg.job_name)?.run_reduce(&task, &control)?
        }
        &other => return Err(ChildError::UnknownTag(other)),
    };
    Ok(ChildReport {
        output: report.output,
        counters: report.counters,
    })
}
