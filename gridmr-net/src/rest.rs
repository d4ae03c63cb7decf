//! JSON bodies of the master's REST API.
//!
//! Every field of the original GridMR's answers is kept under its name; the
//! fields GridMR in Rust added are documented as new. `docs/rest-api.md`
//! shows each endpoint with a curl example.

use gridmr_core::Counters;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /jobs`: what to run, on what, how wide.
///
/// Exactly one of `job` (a typed job registered in the cluster's binary) and
/// `script_url` (a Python job script) names the work.
///
/// ```
/// use gridmr_net::rest::SubmitRequest;
/// let req: SubmitRequest =
///     serde_json::from_str(r#"{"job":"wordcount","input_url":"/data/shared/in.txt","partitions":4}"#)
///         .unwrap();
/// assert_eq!(req.job.as_deref(), Some("wordcount"));
/// assert_eq!(req.partitions, Some(4));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitRequest {
    /// New: the name of a typed job registered in the cluster's binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// A Python job script (`nfs:///`, `file:///`, an absolute path, or `http(s)://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_url: Option<String>,
    /// The input: a file, a folder or a glob inside the shared folder
    /// (`nfs:///…`, `file:///…` or an absolute path).
    pub input_url: String,
    /// New: more inputs, read after `input_url`, each named like it. A map
    /// task knows which input its split came from (a join's sides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    /// New: the job's parameters, which every task sees (a typed job's
    /// `Params`; `GRIDMR_PARAM_<NAME>` in a script's or streaming command's
    /// environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
    /// Sets both `map_splits` and `reduce_partitions` unless they are given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Count>))]
    pub partitions: Option<u32>,
    /// How many map tasks (line-aligned byte ranges of the input).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Count>))]
    pub map_splits: Option<u32>,
    /// How many reduce tasks, hence part files.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Count>))]
    pub reduce_partitions: Option<u32>,
    /// DISTRIBUTED mode whatever the input's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_distributed: Option<bool>,
    /// New: the map-side sort buffer per task, in bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u64"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Count>))]
    pub sort_buffer_bytes: Option<u64>,
    /// New: LZ4-compress shuffle blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress_shuffle: Option<bool>,
    /// New: a Hadoop-Streaming mapper command (run with `sh -c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapper: Option<String>,
    /// New: the streaming reducer command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reducer: Option<String>,
    /// New: the streaming combiner command, run on each map task's sorted output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combiner: Option<String>,
    /// New: files (on the shared folder) copied into every streaming task's
    /// working folder, as Hadoop's `-files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// New: longest a script or streaming task may run, in seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Count>))]
    pub timeout_s: Option<u32>,
    /// New: where the job's map outputs are kept: `shared` (the shared
    /// folder, the original's) or `local` (the disk of the worker that ran
    /// each map, fetched by the reduces from it). Default: the master's
    /// `SHUFFLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_mode: Option<String>,
    /// New: write the output to this object-store prefix (`s3://bucket/prefix`, `gs://…`,
    /// `az://…`, in a bucket the master's `OBJECT_BUCKETS` names) instead of the job's
    /// folder. The prefix must hold no object yet; the job's `_SUCCESS` there is a manifest
    /// of its parts. The job runs DISTRIBUTED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_url: Option<String>,
}

fn shared_mode() -> String {
    "shared".into()
}

/// A count as the original's clients send it (the schema of the count
/// fields of [`SubmitRequest`]): a whole number, as a JSON integer, an
/// integer-valued float or a string of either.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Count {
    /// `3`.
    Integer(u64),
    /// `3.0` or `1e1`.
    Number(f64),
    /// `"3"`.
    Text(String),
}

/// Counts as the original's clients send them: a JSON integer, an
/// integer-valued float (`3.0`, `1e1`), or a string of either (`"3"`), as
/// Python's `int()` took them. A fraction, a negative or an oversized
/// number is refused with a message.
mod count {
    use serde::de::{Deserializer, Error};
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Float(f64),
        Text(String),
    }

    fn whole(v: f64) -> Option<u64> {
        (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64).then_some(v as u64)
    }

    fn opt_u64_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let raw = Option::<Raw>::deserialize(d)?;
        let Some(raw) = raw else { return Ok(None) };
        let value = match &raw {
            Raw::Int(n) => Some(*n),
            Raw::Float(f) => whole(*f),
            Raw::Text(t) => {
                let t = t.trim();
                t.parse::<u64>()
                    .ok()
                    .or_else(|| t.parse::<f64>().ok().and_then(whole))
            }
        };
        value.map(Some).ok_or_else(|| {
            let shown = match raw {
                Raw::Int(n) => n.to_string(),
                Raw::Float(f) => f.to_string(),
                Raw::Text(t) => format!("{t:?}"),
            };
            D::Error::custom(format!("{shown} is not a whole number of 0 or more"))
        })
    }

    pub(super) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        opt_u64_raw(d)
    }

    /// A whole number that must be there (a JSON integer, or an
    /// integer-valued float, as JSON Schema counts `3.0` an integer).
    pub(super) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        opt_u64_raw(d)?.ok_or_else(|| D::Error::custom("a whole number is needed"))
    }

    pub(super) fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = u64(d)?;
        u32::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))
    }

    pub(super) fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match opt_u64_raw(d)? {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| D::Error::custom(format!("{n} is too large"))),
        }
    }
}

/// The states of a job, as the original named them, plus `CANCELLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Accepted, not yet planned.
    Queued,
    /// Listing the input and planning splits.
    Preparing,
    /// Planned, waiting for its first task to start.
    Prepared,
    /// Map tasks are running (DISTRIBUTED).
    Mapping,
    /// Reduce tasks are running (DISTRIBUTED).
    Reducing,
    /// The single task is running (SINGLE).
    Running,
    /// Output committed.
    Succeeded,
    /// A task gave up, or the job could not be planned.
    Failed,
    /// New: stopped by `DELETE /jobs/{id}`.
    Cancelled,
    /// No job has this id: only in a 404 answer's body, as the original's
    /// clients read it.
    Unknown,
}

impl JobState {
    /// Whether the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// The name used in JSON and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Preparing => "PREPARING",
            JobState::Prepared => "PREPARED",
            JobState::Mapping => "MAPPING",
            JobState::Reducing => "REDUCING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
            JobState::Unknown => "UNKNOWN",
        }
    }

    /// Every state a job can be in, in lifecycle order (not
    /// [`JobState::Unknown`], which no job is in).
    pub const ALL: [JobState; 9] = [
        JobState::Queued,
        JobState::Preparing,
        JobState::Prepared,
        JobState::Mapping,
        JobState::Reducing,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];
}

/// How a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// One worker runs the whole job.
    Single,
    /// Map tasks over input splits, then reduce tasks over partitions.
    Distributed,
}

impl Mode {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "SINGLE",
            Mode::Distributed => "DISTRIBUTED",
        }
    }
}

/// Task counts of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskCounts {
    /// Tasks in the phase.
    pub total: u32,
    /// Waiting for a worker.
    pub pending: u32,
    /// An attempt is running.
    pub running: u32,
    /// Committed.
    pub succeeded: u32,
    /// Attempts that failed (each retried until `MAX_TASK_ATTEMPTS`).
    pub failed_attempts: u32,
    /// Attempts lost with their worker (retried without counting as failures
    /// of the task's code).
    pub lost_attempts: u32,
}

impl TaskCounts {
    /// Whether every task of the phase is committed.
    pub fn is_done(&self) -> bool {
        self.succeeded == self.total
    }
}

/// New: task counts per phase, for progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhaseTasks {
    /// The one task of a SINGLE job.
    pub single: TaskCounts,
    /// Map tasks of a DISTRIBUTED job.
    pub map: TaskCounts,
    /// Reduce tasks of a DISTRIBUTED job.
    pub reduce: TaskCounts,
}

/// Phase times in seconds, as the original's `/metrics/jobs` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// `GET /jobs/{id}` (and the answer to `POST /jobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStatus {
    /// The job's id, never reused.
    pub job_id: String,
    /// Its state.
    pub status: JobState,
    /// SINGLE or DISTRIBUTED (decided when the job is planned).
    pub mode: Mode,
    /// A human-readable line about the job's progress or its error.
    pub message: String,
    /// The committed output files (`result.txt`), once SUCCEEDED.
    pub outputs: Vec<String>,
    /// The job script's copy in the job folder (script jobs), else empty.
    pub script_path: String,
    /// The input as given, resolved to a local path.
    pub input_path: String,
    /// New: how far each phase has got.
    #[serde(default)]
    pub progress: JobProgress,
    /// New: the inputs read after `input_path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// New: the job's parameters: as submitted, with what its planning hook
    /// added (a TeraSort's sampled split points).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// The original's chunk folder. GridMR splits by byte ranges instead of
    /// copying chunks, so this folder stays empty.
    pub chunks_dir: String,
    /// Where map outputs are written (`shuffle_mode: shared`).
    pub shuffle_dir: String,
    /// New: where its map outputs are kept: `shared` (in `shuffle_dir`) or
    /// `local` (on the workers that ran the maps).
    #[serde(default = "shared_mode")]
    pub shuffle_mode: String,
    /// `partitions` as asked (0 when not given).
    pub partitions: u32,
    /// Map tasks.
    pub map_splits: u32,
    /// Reduce tasks.
    pub reduce_partitions: u32,
    /// New: the typed job's name (empty for script jobs).
    #[serde(default)]
    pub job: String,
    /// New: the job's output folder (`part-r-NNNNN`, `result.txt`, `_SUCCESS`).
    #[serde(default)]
    pub output_dir: String,
    /// New: the error that failed the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// New: counters summed over committed attempts.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = BTreeMap<String, BTreeMap<String, u64>>)
    )]
    pub counters: Counters,
    /// New: task counts per phase.
    #[serde(default)]
    pub tasks: PhaseTasks,
    /// New: phase times.
    #[serde(default)]
    pub times: PhaseTimes,
    /// New: input size in bytes.
    #[serde(default)]
    pub input_size_bytes: u64,
    /// New: submit time, milliseconds since the Unix epoch.
    #[serde(default)]
    pub submitted_at_ms: u64,
    /// New: the last `reporter:status:` line a committed streaming or script
    /// attempt wrote on stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_status: Option<String>,
    /// New: workers kept from this job for now, after several of its
    /// attempts failed on each (`EXCLUDE_AFTER_FAILURES`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_workers: Vec<String>,
}

/// New: the answer of `POST /jobs/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancelAnswer {
    /// The job.
    pub job_id: String,
    /// Whether it was running (and is CANCELLED now); `false` for a job
    /// that had already ended, which keeps its state.
    pub cancelled: bool,
    /// Its state now.
    pub status: JobState,
}

/// One job in `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSummary {
    /// The job's id.
    pub job_id: String,
    /// Its state.
    pub status: JobState,
    /// Its mode.
    pub mode: Mode,
    /// Its progress or error line.
    pub message: String,
    /// Its committed output files.
    pub outputs: Vec<String>,
    /// New: the typed job's name.
    #[serde(default)]
    pub job: String,
}

/// `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobList {
    /// Jobs in submission order (one page of them).
    pub jobs: Vec<JobSummary>,
    /// New: how many jobs the master has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// New: the `offset` of the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

/// `GET /jobs/{id}/ls`: the job's folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobListing {
    /// The job folder.
    pub base: String,
    /// The script's copy (script jobs), else empty.
    pub script: String,
    /// The input path.
    pub input: String,
    /// The original's chunk names; GridMR lists its splits as `path:start+len`.
    pub chunks: Vec<String>,
    /// Files in the shuffle folder.
    pub shuffle: Vec<String>,
    /// Files in the output folder.
    pub out: Vec<String>,
    /// The job's state.
    pub status: JobState,
    /// Its mode.
    pub mode: Mode,
    /// Its progress or error line.
    pub message: String,
    /// `partitions` as asked.
    pub partitions: u32,
}

/// `GET /jobs/{id}/result` for a result small enough to inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobResult {
    /// The job's id.
    pub job_id: String,
    /// Its state (SUCCEEDED).
    pub status: JobState,
    /// The whole `result.txt`.
    pub result: String,
}

/// `DELETE /jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteAnswer {
    /// The job's id.
    pub job_id: String,
    /// Always true: the job is gone from the job list.
    pub deleted: bool,
    /// New: the job was still running and was cancelled.
    #[serde(default)]
    pub cancelled: bool,
    /// New: its files were removed (`?purge=true`).
    #[serde(default)]
    pub purged: bool,
}

/// `POST /workers/register`, as query parameters, a form body or JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// The worker's id.
    pub worker_id: String,
    /// `host:port` where the master reaches its gRPC server.
    pub address: String,
    /// New: how many tasks it runs at once (default 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>))]
    pub slots: Option<u32>,
    /// New: how often the worker will heartbeat, in milliseconds. A worker
    /// that does not say (registered by hand, the original's) is probed by
    /// the master over gRPC instead of being expected to heartbeat.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count::opt_u64"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub heartbeat_ms: Option<u64>,
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterAnswer {
    /// Always true.
    pub ok: bool,
    /// Live workers.
    pub count: usize,
    /// Their addresses, in registration order.
    pub ring: Vec<String>,
}

/// New: `POST /workers/{id}/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    /// Attempts running on the worker.
    #[serde(deserialize_with = "count::u32")]
    pub running: u32,
    /// New: the `host:port` the worker registered with. A heartbeat naming
    /// another address than the registered one is refused (409), so a
    /// worker id cannot be kept alive from two places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// New: how far each attempt running on the worker has got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<AttemptProgress>,
    /// New: the worker's host: load, memory and the disk of its folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostStats>,
}

/// New: a worker's host as it reports it with each heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostStats {
    /// The load average over the last minute.
    pub load_1m: f64,
    /// The host's CPUs.
    pub cpus: u32,
    /// Memory, in bytes.
    pub mem_total_bytes: u64,
    /// Memory available for new work (`MemAvailable`), in bytes.
    pub mem_available_bytes: u64,
    /// The size of the file system of the worker's folder (`WORKER_DIR`), in bytes.
    pub disk_total_bytes: u64,
    /// Its free bytes.
    pub disk_free_bytes: u64,
}

/// New: how far one running attempt has got, as its worker reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptProgress {
    /// Its job.
    pub job_id: String,
    /// `single`, `map-NNNNN` or `reduce-NNNNN`.
    pub task: String,
    /// The attempt number.
    #[serde(deserialize_with = "count::u32")]
    pub attempt: u32,
    /// How far it got.
    #[serde(flatten)]
    pub work: WorkDone,
}

/// New: work done and to do. A map or SINGLE attempt counts input bytes; a
/// reduce attempt shuffle records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkDone {
    /// Work done: bytes (map, single) or records (reduce).
    #[serde(deserialize_with = "count::u64")]
    pub done: u64,
    /// Work to do, in the same unit (0 while unknown).
    #[serde(deserialize_with = "count::u64")]
    pub total: u64,
    /// Records handled.
    #[serde(deserialize_with = "count::u64")]
    pub records: u64,
}

impl WorkDone {
    /// `done / total`, at most 1 (0 while the total is unknown).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }
}

/// New: how far one phase of a job has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhaseProgress {
    /// 0 to 1: finished tasks count whole, running ones by their best
    /// attempt's report.
    pub fraction: f64,
    /// Work done: input bytes (map, single) or shuffle records (reduce).
    pub done: u64,
    /// Work to do, in the same unit: for reduce, the records of the tasks
    /// started so far.
    pub total: u64,
}

/// New: how far each phase of a job has got (from the workers' heartbeats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobProgress {
    /// The SINGLE task.
    pub single: PhaseProgress,
    /// The map tasks.
    pub map: PhaseProgress,
    /// The reduce tasks.
    pub reduce: PhaseProgress,
}

/// One worker in `GET /workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerInfo {
    /// `host:port` of its gRPC server.
    pub address: String,
    /// Last registration or heartbeat, seconds since the Unix epoch.
    pub last_seen: f64,
    /// New: task slots.
    #[serde(default)]
    pub slots: u32,
    /// New: attempts the master has running on it.
    #[serde(default)]
    pub running: u32,
    /// New: false once it missed heartbeats for `WORKER_TIMEOUT_S`.
    #[serde(default)]
    pub alive: bool,
    /// New: the typed jobs its binary has (absent: it did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<String>>,
    /// New: its binary's build, as it reported it when registering.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build: String,
    /// New: its host, as its last heartbeat reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostStats>,
}

/// `GET /workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerList {
    /// Workers by id.
    pub workers: BTreeMap<String, WorkerInfo>,
    /// Live workers' addresses, in registration order.
    pub ring: Vec<String>,
}

/// One job in `GET /metrics/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobMetrics {
    /// The job's id.
    pub job_id: String,
    /// Its state.
    pub status: JobState,
    /// Its mode.
    pub mode: Mode,
    /// Input bytes.
    pub input_size_bytes: u64,
    /// Map tasks.
    pub map_splits: u32,
    /// Reduce tasks.
    pub reduce_partitions: u32,
    /// Phase times.
    #[serde(flatten)]
    pub times: PhaseTimes,
}

/// `GET /metrics/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobMetricsList {
    /// Every job's metrics.
    pub jobs: Vec<JobMetrics>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always true when the master answers.
    pub ok: bool,
    /// The shared folder. Only for a caller with the cluster token (or
    /// under `GRIDMR_AUTH=off`): the open answer says nothing of the
    /// master's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_dir: Option<String>,
    /// `FILE_PARTITION_THRESHOLD_BYTES` (with the token only, as
    /// `shared_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// New: the folders inputs may come from besides the share
    /// (`INPUT_ROOTS`; with the token only), so a client can tell which of
    /// its paths the master reads in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_roots: Vec<String>,
    /// New: live workers.
    #[serde(default)]
    pub workers: usize,
    /// New: the typed jobs this cluster's binary registers (with the token
    /// only, as `shared_dir`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// New: whether the API and the workers require the cluster token
    /// (false only under `GRIDMR_AUTH=off`).
    #[serde(default)]
    pub auth: bool,
    /// New: what an operator should know (authentication switched off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// New: where an attempt is, or how it ended (`outcome` in `GET /jobs/{id}/tasks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Still running.
    Running,
    /// Its output is the task's.
    Succeeded,
    /// It failed; counts against the task's attempts unless its `kind` is `map_output_lost`.
    Failed,
    /// Its worker went away.
    Lost,
    /// Stopped: its job was cancelled or failed, or another attempt of its task won.
    #[serde(alias = "cancelled")]
    Killed,
    /// It succeeded after another attempt of its task had.
    Superseded,
    /// Running when the master that ran it stopped; nobody heard how it ended.
    Unknown,
}

impl AttemptOutcome {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Running => "running",
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Lost => "lost",
            AttemptOutcome::Killed => "killed",
            AttemptOutcome::Superseded => "superseded",
            AttemptOutcome::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// New: whose fault a failed attempt was (`kind` in `GET /jobs/{id}/tasks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The job's code or its input.
    Task,
    /// The worker could not run it, or answered with something unusable.
    Engine,
    /// It ran past its timeout.
    Timeout,
    /// A map output it read was missing or damaged; that map ran again.
    MapOutputLost,
}

impl FailureKind {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Task => "task",
            FailureKind::Engine => "engine",
            FailureKind::Timeout => "timeout",
            FailureKind::MapOutputLost => "map_output_lost",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// New: one task attempt in `GET /jobs/{id}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskAttempt {
    /// `single`, `map-NNNNN` or `reduce-NNNNN`.
    pub task: String,
    /// 1, 2, …
    pub attempt: u32,
    /// The worker it ran on.
    pub worker_id: String,
    /// Dispatch time, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// When its answer arrived; `None` while it runs.
    pub finished_ms: Option<u64>,
    /// Where it is, or how it ended.
    pub outcome: AttemptOutcome,
    /// Its error, if it failed, was lost or killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `failed`: whose fault it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
    /// The last progress its worker reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<WorkDone>,
    /// What its worker reported after the attempt had ended (`succeeded`, `failed`, `lost`,
    /// `killed`): a late result (the attempt had been declared lost, or another attempt had
    /// won), recorded as such and never used; its output was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<String>,
}

/// New: `GET /jobs/{id}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskAttempts {
    /// The job's id.
    pub job_id: String,
    /// Every attempt, in dispatch order.
    pub attempts: Vec<TaskAttempt>,
}

/// New: one attempt's log in `GET /jobs/{id}/tasks/{task}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptLog {
    /// The attempt number.
    pub attempt: u32,
    /// What its processes wrote on stderr (at most 1 MiB).
    pub text: String,
}

/// New: `GET /jobs/{id}/tasks/{task}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskLogs {
    /// The job.
    pub job_id: String,
    /// `single`, `map-NNNNN` or `reduce-NNNNN`.
    pub task: String,
    /// Every attempt of the task that left a log, by attempt number.
    pub logs: Vec<AttemptLog>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The job's state, when the error is about a job that exists;
    /// `UNKNOWN` when no job has the id asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobState>,
    /// The job id asked for, when the error is about a job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// `false` when a `DELETE` found no such job (as the original's clients
    /// read `deleted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SubmitRequest, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn counts_are_read_as_the_original_read_them() {
        for (given, want) in [
            ("3", 3),
            ("\"3\"", 3),
            ("3.0", 3),
            ("1e1", 10),
            ("\" 4 \"", 4),
            ("\"2.0\"", 2),
        ] {
            let r = parse(&format!(r#"{{"input_url": "/i", "partitions": {given}}}"#)).unwrap();
            assert_eq!(r.partitions, Some(want), "{given}");
        }
        let r = parse(r#"{"input_url": "/i", "partitions": null, "timeout_s": "30"}"#).unwrap();
        assert_eq!((r.partitions, r.timeout_s), (None, Some(30)));
        for bad in ["3.5", "-1", "\"x\"", "\"\"", "1e12", "true"] {
            let e = parse(&format!(
                r#"{{"input_url": "/i", "reduce_partitions": {bad}}}"#
            ));
            assert!(e.is_err(), "{bad} was accepted");
        }
    }
}

/// New: `POST /uploads`: a fresh upload folder on the shared folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadAnswer {
    /// Its id (`up-` and 32 hex digits), for `PUT /uploads/{id}/{name}`.
    pub upload_id: String,
    /// Its folder: name its files in a job's `input_url`, `inputs`,
    /// `script_url` or `files`, and the job takes the upload.
    pub path: String,
}

/// New: `PUT /uploads/{id}/{name}`: a file stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadedFile {
    /// The upload.
    pub upload_id: String,
    /// The file's path on the shared folder.
    pub path: String,
    /// Its size.
    pub bytes: u64,
}
