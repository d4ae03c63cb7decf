//! Settings of the master and the worker.
//!
//! Every setting is a command-line flag and an environment variable; the
//! environment names are the original GridMR's where it had the setting.
//! Flags win over the environment.

use crate::security::Security;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// How the master picks a worker for the next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulerPolicy {
    /// The worker with the most free slots (ties: fewest running, then
    /// registration order).
    LeastLoaded,
    /// The original's: workers in turn, skipping full ones.
    RoundRobin,
}

/// The most attempts per task `MAX_TASK_ATTEMPTS` may ask for. A job run
/// again after a master restart numbers its attempts 1000 apart from its
/// earlier run's, and lost attempts count apart from failed ones, so this
/// keeps the runs' numbers from meeting.
pub const MAX_TASK_ATTEMPTS_CAP: u32 = gridmr_scheduler::MAX_TASK_ATTEMPTS_CAP;

impl MasterSettings {
    /// The REST port: `MASTER_PORT`, else the original's `REST_PORT`, else 8080.
    pub fn rest_port(&self) -> u16 {
        self.port.or(self.rest_port).unwrap_or(8080)
    }
}

/// The master's settings.
#[derive(Debug, Clone, Args)]
pub struct MasterSettings {
    /// Address the REST API listens on.
    #[arg(long, env = "MASTER_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port of the REST API (0: any free port, printed at start; default 8080,
    /// or the original's `REST_PORT` when set).
    #[arg(long, env = "MASTER_PORT")]
    pub port: Option<u16>,
    /// The original's name for the REST port, read when `MASTER_PORT` is not set.
    #[arg(long, env = "REST_PORT", hide = true)]
    pub rest_port: Option<u16>,
    /// The `partitions` of a job that names none of `partitions`, `map_splits`
    /// and `reduce_partitions` (the original's `DEFAULT_PARTITIONS`); unset: a
    /// job is as wide as the cluster's live slots when it is planned.
    #[arg(long, env = "DEFAULT_PARTITIONS")]
    pub default_partitions: Option<u32>,
    /// The folder shared with every worker (NFS in production). Job folders
    /// go under `<SHARED_DIR>/jobs/`, and inputs must lie inside it.
    #[arg(long, env = "SHARED_DIR", default_value = "/data/shared")]
    pub shared_dir: PathBuf,
    /// More folders inputs may be read from (comma-separated); they must be
    /// mounted at the same path on every worker.
    #[arg(long, env = "INPUT_ROOTS", value_delimiter = ',')]
    pub input_roots: Vec<PathBuf>,
    /// The object-store buckets jobs may read and write (comma-separated bucket URLs:
    /// `s3://logs,gs://results,az://container`); none: object URLs are refused. Credentials
    /// come from each cloud's usual environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    #[arg(long, env = "OBJECT_BUCKETS", value_delimiter = ',')]
    pub object_buckets: Vec<String>,
    /// Inputs at least this large run DISTRIBUTED when more than one
    /// partition is asked for; smaller ones run SINGLE.
    #[arg(
        long,
        env = "FILE_PARTITION_THRESHOLD_BYTES",
        default_value_t = 5_242_880
    )]
    pub threshold_bytes: u64,
    /// Timeout of control calls to workers (registration check,
    /// cancellation), in seconds.
    #[arg(long, env = "GRPC_TIMEOUT_S", default_value_t = 120)]
    pub grpc_timeout_s: u64,
    /// Longest a task attempt may run before it counts as failed, in
    /// seconds (0: no limit; lost workers are found by heartbeats).
    #[arg(long, env = "TASK_TIMEOUT_S", default_value_t = 0)]
    pub task_timeout_s: u64,
    /// Most task calls in flight at once, all kinds together.
    #[arg(long, env = "EXECUTOR_MAX_WORKERS", default_value_t = 32)]
    pub max_inflight: u32,
    /// Most SINGLE jobs running at once.
    #[arg(long, env = "MAX_INFLIGHT_SINGLES", default_value_t = 4)]
    pub max_inflight_singles: u32,
    /// Most map attempts running at once.
    #[arg(long, env = "MAX_INFLIGHT_MAPS", default_value_t = 16)]
    pub max_inflight_maps: u32,
    /// Most reduce attempts running at once.
    #[arg(long, env = "MAX_INFLIGHT_REDUCES", default_value_t = 8)]
    pub max_inflight_reduces: u32,
    /// Attempts per task before the job fails (1 to [`MAX_TASK_ATTEMPTS_CAP`]).
    #[arg(long, env = "MAX_TASK_ATTEMPTS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=MAX_TASK_ATTEMPTS_CAP as i64))]
    pub max_task_attempts: u32,
    /// Times a task may be running on a worker that is lost (killed,
    /// restarted, cut off) before the job fails: the guard against a task
    /// that kills every worker it lands on. Lost attempts do not count
    /// against `MAX_TASK_ATTEMPTS` (1 to [`MAX_TASK_ATTEMPTS_CAP`]).
    #[arg(long, env = "MAX_TASK_LOSSES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=MAX_TASK_ATTEMPTS_CAP as i64))]
    pub max_task_losses: u32,
    /// A worker on which this many attempts of one job failed is kept from
    /// that job for `EXCLUDE_S` seconds (Spark's `excludeOnFailure`); 0
    /// turns exclusion off. Ignored while every live worker is excluded.
    #[arg(long, env = "EXCLUDE_AFTER_FAILURES", default_value_t = 2)]
    pub exclude_after_failures: u32,
    /// How long an excluded worker is kept from the job, in seconds.
    #[arg(long, env = "EXCLUDE_S", default_value_t = 600)]
    pub exclude_s: u64,
    /// Backup attempts for stragglers (Hadoop's and Spark's speculation):
    /// `on` (default) or `off`.
    #[arg(long, env = "SPECULATION", default_value = "on", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub speculation: bool,
    /// A task is a straggler when its attempt has run this many times the
    /// median of its phase's successful attempts…
    #[arg(long, env = "SPECULATION_MULTIPLIER", default_value_t = 1.5)]
    pub speculation_multiplier: f64,
    /// …once this share of the phase's tasks is done…
    #[arg(long, env = "SPECULATION_QUANTILE", default_value_t = 0.75)]
    pub speculation_quantile: f64,
    /// …and for at least this many seconds.
    #[arg(long, env = "SPECULATION_MIN_S", default_value_t = 1.0)]
    pub speculation_min_s: f64,
    /// A worker silent for this long is dead and its tasks are rerun, in
    /// seconds (fractions allowed).
    #[arg(long, env = "WORKER_TIMEOUT_S", default_value_t = 10.0)]
    pub worker_timeout_s: f64,
    /// A job with work to hand out and no live worker able to take it fails
    /// after this many seconds of that (its message says "waiting for
    /// workers" meanwhile); 0: it waits as long as it takes.
    #[arg(long, env = "WAIT_FOR_WORKERS_S", default_value_t = 600)]
    pub wait_for_workers_s: u64,
    /// Most ended jobs the master keeps (0: all). Past it, the oldest are
    /// retired: forgotten, their records and working files removed, their
    /// `out/` kept unless `JOB_RETENTION_PURGE` (Spark keeps 1000).
    #[arg(long, env = "JOB_RETENTION_COUNT", default_value_t = 1000)]
    pub job_retention_count: usize,
    /// Ended jobs older than this many seconds are retired too (0: no age
    /// limit; Hadoop's job history keeps a week).
    #[arg(long, env = "JOB_RETENTION_S", default_value_t = 0)]
    pub job_retention_s: u64,
    /// A retired job's output goes too (its whole folder).
    #[arg(long, env = "JOB_RETENTION_PURGE", default_value_t = false)]
    pub job_retention_purge: bool,
    /// How the next task's worker is chosen.
    #[arg(long, env = "SCHEDULER_POLICY", value_enum, default_value_t = SchedulerPolicy::LeastLoaded)]
    pub policy: SchedulerPolicy,
    /// Reduces of a job with an object output sent ahead to a worker whose slots are taken
    /// (0: none). One waits there for the slot a reduce gives up when it starts uploading its
    /// part, so it fetches its inputs while the other uploads.
    #[arg(long, env = "REDUCE_READAHEAD", default_value_t = 1)]
    pub reduce_readahead: u32,
    /// Most map splits or reduce partitions a job may ask for.
    #[arg(long, env = "MAX_PARTITIONS", default_value_t = 10_000)]
    pub max_partitions: u32,
    /// Largest result `GET /jobs/{id}/result` answers as the original's JSON
    /// (streamed, never held whole); larger results are streamed as text
    /// unless JSON is asked for (`413`).
    #[arg(long, env = "RESULT_INLINE_MAX_BYTES", default_value_t = 256 << 20)]
    pub result_inline_max_bytes: u64,
    /// Log filter (`info`, `debug`, `gridmr_runtime=trace`, …).
    #[arg(long, env = "MASTER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Hosts `script_url` may download from over http(s)
    /// (comma-separated `host` or `host:port`); empty: downloads are off.
    #[arg(long, env = "GRIDMR_SCRIPT_HOSTS", value_delimiter = ',')]
    pub script_hosts: Vec<String>,
    /// The largest output of several parts joined into `result.txt` (the
    /// original's joined result, a copy); past it the part files alone are the
    /// output, and `GET /jobs/{id}/result` streams them joined. An output of
    /// one part always has `result.txt`, as a second name of the part.
    #[arg(long, env = "RESULT_TXT_MAX_BYTES", default_value_t = gridmr_core::commit::DEFAULT_RESULT_MAX_BYTES)]
    pub result_txt_max_bytes: u64,
    /// Where map outputs are kept unless a job says (`shuffle_mode`):
    /// `shared` (the shared folder; the original's layout) or `local` (the
    /// disk of the worker that ran the map, which serves them to reducers).
    #[arg(long, env = "SHUFFLE", default_value = "shared")]
    pub shuffle: gridmr_core::shuffle::ShuffleMode,
    /// Largest file `PUT /uploads/{id}/{name}` takes, in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 64 << 30)]
    pub max_upload_bytes: u64,
    /// How long an upload no job took is kept after its last write, in
    /// seconds.
    #[arg(long, env = "UPLOAD_TTL_S", default_value_t = 86_400)]
    pub upload_ttl_s: u64,
    /// Authentication and TLS.
    #[command(flatten)]
    pub security: Security,
}

impl MasterSettings {
    /// Defaults for a master on `127.0.0.1`, any port, over `shared_dir`:
    /// what tests and the embedded example use.
    pub fn local(shared_dir: impl Into<PathBuf>) -> Self {
        MasterSettings {
            host: "127.0.0.1".into(),
            port: Some(0),
            rest_port: None,
            default_partitions: None,
            shared_dir: shared_dir.into(),
            input_roots: Vec::new(),
            object_buckets: Vec::new(),
            threshold_bytes: 5_242_880,
            grpc_timeout_s: 120,
            task_timeout_s: 0,
            max_inflight: 32,
            max_inflight_singles: 4,
            max_inflight_maps: 16,
            max_inflight_reduces: 8,
            max_task_attempts: 4,
            max_task_losses: 100,
            exclude_after_failures: 2,
            exclude_s: 600,
            speculation: true,
            speculation_multiplier: 1.5,
            speculation_quantile: 0.75,
            speculation_min_s: 1.0,
            worker_timeout_s: 10.0,
            wait_for_workers_s: 600,
            job_retention_count: 1000,
            job_retention_s: 0,
            job_retention_purge: false,
            policy: SchedulerPolicy::LeastLoaded,
            reduce_readahead: 1,
            max_partitions: 10_000,
            result_inline_max_bytes: 256 << 20,
            log_level: "info".into(),
            script_hosts: Vec::new(),
            result_txt_max_bytes: gridmr_core::commit::DEFAULT_RESULT_MAX_BYTES,
            shuffle: gridmr_core::shuffle::ShuffleMode::Shared,
            max_upload_bytes: 64 << 30,
            upload_ttl_s: 86_400,
            security: Security::default(),
        }
    }

    /// The scheduler's policy, from these settings.
    pub fn scheduler_config(&self) -> gridmr_scheduler::SchedulerConfig {
        gridmr_scheduler::SchedulerConfig {
            max_inflight: self.max_inflight,
            max_inflight_singles: self.max_inflight_singles,
            max_inflight_maps: self.max_inflight_maps,
            max_inflight_reduces: self.max_inflight_reduces,
            max_task_attempts: self.max_task_attempts,
            max_task_losses: self.max_task_losses,
            exclude_after_failures: self.exclude_after_failures,
            exclude_s: self.exclude_s,
            speculation: self.speculation,
            speculation_quantile: self.speculation_quantile,
            speculation_multiplier: self.speculation_multiplier,
            speculation_min_s: self.speculation_min_s,
            worker_timeout_ms: self.worker_timeout().as_millis() as u64,
            wait_for_workers_s: self.wait_for_workers_s,
            job_retention_count: self.job_retention_count,
            job_retention_s: self.job_retention_s,
            policy: match self.policy {
                SchedulerPolicy::LeastLoaded => gridmr_scheduler::SchedulerPolicy::LeastLoaded,
                SchedulerPolicy::RoundRobin => gridmr_scheduler::SchedulerPolicy::RoundRobin,
            },
            reduce_readahead: self.reduce_readahead,
        }
    }

    /// `WORKER_TIMEOUT_S` as a duration.
    pub fn worker_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.worker_timeout_s.clamp(0.05, 86_400.0))
    }
}

/// `TASK_ISOLATION`: where a worker runs typed tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Isolation {
    /// On the worker's task threads: fastest; user code shares the worker's
    /// fate.
    #[default]
    Thread,
    /// Each attempt in a child process of the worker's own binary (its
    /// `main` must call `main_with`), fenced like script tasks.
    Process,
}

/// The worker's settings.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// Address the gRPC server listens on.
    #[arg(long, env = "GRPC_HOST", default_value = "0.0.0.0")]
    pub grpc_host: String,
    /// Port of the gRPC server (0: any free port).
    #[arg(long, env = "GRPC_PORT", default_value_t = 50051)]
    pub grpc_port: u16,
    /// The shared folder; it must be mounted at the same path as on the
    /// master.
    #[arg(long, env = "SHARED_DIR", default_value = "/data/shared")]
    pub shared_dir: PathBuf,
    /// More folders inputs may be read from (comma-separated), as the
    /// master's `INPUT_ROOTS`; outputs stay inside the shared folder.
    #[arg(long, env = "INPUT_ROOTS", value_delimiter = ',')]
    pub input_roots: Vec<PathBuf>,
    /// The object-store buckets tasks may read and write, as the master's `OBJECT_BUCKETS`.
    #[arg(long, env = "OBJECT_BUCKETS", value_delimiter = ',')]
    pub object_buckets: Vec<String>,
    /// This worker's id (default: `<hostname>-<port>`).
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,
    /// The master's REST address, where the worker registers and
    /// heartbeats (`http://host:8080`).
    #[arg(long, env = "MASTER_HTTP")]
    pub master_http: Option<String>,
    /// The host the master should dial (default: GRPC_HOST unless it is
    /// 0.0.0.0, else this machine's hostname).
    #[arg(long, env = "ADVERTISE_HOST")]
    pub advertise_host: Option<String>,
    /// Tasks run at once (default: the number of cores).
    #[arg(long, env = "WORKER_SLOTS")]
    pub slots: Option<u32>,
    /// Where typed tasks run: `thread` (default; in the worker process) or
    /// `process` (each attempt in a child of this binary, so user code that
    /// aborts or exits fails one attempt and the worker lives).
    #[arg(long, env = "TASK_ISOLATION", value_enum, default_value_t = Isolation::Thread)]
    pub isolation: Isolation,
    /// Time between heartbeats, in milliseconds.
    #[arg(long, env = "HEARTBEAT_INTERVAL_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,
    /// The Python that runs job scripts.
    #[arg(long, env = "GRIDMR_PYTHON", default_value = "python3")]
    pub python: String,
    /// Longest a script or streaming task may run, in seconds, unless the
    /// job sets its own (0: no limit).
    #[arg(long, env = "SCRIPT_TIMEOUT_S", default_value_t = 3600)]
    pub script_timeout_s: u64,
    /// Start Python job-script tasks from a warm fork server (`on`, the
    /// default, where attempts get cgroups) instead of a fresh interpreter
    /// per task (`off`).
    #[arg(long, env = "PYTHON_FORK_SERVER", default_value = "on", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub fork_server: bool,
    /// Testing hook: fail these attempts on purpose. Comma-separated
    /// `TASK@ATTEMPT`, TASK being `single`, `map-00003`, `reduce-00001` or
    /// `*`, ATTEMPT a number or `*`.
    #[arg(long, env = "GRIDMR_INJECT_FAIL", value_delimiter = ',')]
    pub inject_fail: Vec<String>,
    /// Testing hook: wait this long before running each task, in
    /// milliseconds.
    #[arg(long, env = "GRIDMR_INJECT_DELAY_MS", default_value_t = 0)]
    pub inject_delay_ms: u64,
    /// Log filter.
    #[arg(long, env = "WORKER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// This worker's own folder, on its local disk: the map outputs it keeps
    /// and serves (`SHUFFLE=local`) and the segments its reduces fetch
    /// (default: `<temp>/gridmr-worker-<id>`). A worker restarted with the
    /// same folder serves what it kept again.
    #[arg(long, env = "WORKER_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Most map-output segments this worker sends at once; more requests
    /// wait their turn (`SHUFFLE=local`).
    #[arg(long, env = "SHUFFLE_SERVE_STREAMS", default_value_t = 64)]
    pub shuffle_serve_streams: u32,
    /// Most segments one reduce attempt fetches at once (Hadoop's
    /// `parallelcopies`).
    #[arg(long, env = "SHUFFLE_FETCH_PARALLEL", default_value_t = 8)]
    pub shuffle_fetch_parallel: u32,
    /// Whether a reduce reads the map outputs that workers of its own host
    /// keep from their folders (handed over as open files, no copy) instead
    /// of fetching them over gRPC (`SHUFFLE=local`; as Spark's
    /// `spark.shuffle.readHostLocalDisk`).
    #[arg(long, env = "SHUFFLE_HOST_LOCAL", default_value_t = true, action = clap::ArgAction::Set)]
    pub shuffle_host_local: bool,
    /// Map outputs of a job no master has ended are removed after this many
    /// seconds without a change (a master that never said the job ended).
    #[arg(long, env = "SHUFFLE_RETAIN_S", default_value_t = 86_400)]
    pub shuffle_retain_s: u64,
    /// Limits and environment of script and streaming tasks.
    #[command(flatten)]
    pub fence: FenceSettings,
    /// Authentication and TLS.
    #[command(flatten)]
    pub security: Security,
}

impl WorkerSettings {
    /// Defaults for a worker on `127.0.0.1`, any port, over `shared_dir`,
    /// registering with `master_http`.
    pub fn local(shared_dir: impl Into<PathBuf>, master_http: Option<String>) -> Self {
        WorkerSettings {
            grpc_host: "127.0.0.1".into(),
            grpc_port: 0,
            shared_dir: shared_dir.into(),
            input_roots: Vec::new(),
            object_buckets: Vec::new(),
            worker_id: None,
            master_http,
            advertise_host: None,
            slots: None,
            isolation: Isolation::Thread,
            heartbeat_ms: 1000,
            python: "python3".into(),
            script_timeout_s: 3600,
            fork_server: true,
            inject_fail: Vec::new(),
            inject_delay_ms: 0,
            log_level: "info".into(),
            work_dir: None,
            shuffle_serve_streams: 64,
            shuffle_fetch_parallel: 8,
            shuffle_host_local: true,
            shuffle_retain_s: 86_400,
            fence: FenceSettings::default(),
            security: Security::default(),
        }
    }
}

/// What fences a script or streaming task's processes (`docs/security.md`).
/// Each limit is a `setrlimit` applied in the child before `exec`; 0 turns
/// one off.
#[derive(Debug, Clone, Args)]
pub struct FenceSettings {
    /// Address space of each task process, in MiB (RLIMIT_AS).
    #[arg(long, env = "TASK_MEMORY_MB", default_value_t = 4096)]
    pub memory_mb: u64,
    /// CPU seconds of each task process (RLIMIT_CPU).
    #[arg(long, env = "TASK_CPU_S", default_value_t = 7200)]
    pub cpu_s: u64,
    /// Largest file a task process may write, in MiB (RLIMIT_FSIZE).
    #[arg(long, env = "TASK_FILE_MB", default_value_t = 65_536)]
    pub file_mb: u64,
    /// Open files per task process (RLIMIT_NOFILE).
    #[arg(long, env = "TASK_OPEN_FILES", default_value_t = 1024)]
    pub open_files: u64,
    /// Processes of the task's user (RLIMIT_NPROC; counts every process of
    /// that user, so it matters most with `GRIDMR_TASK_USER`).
    #[arg(long, env = "TASK_PROCESSES", default_value_t = 4096)]
    pub processes: u64,
    /// Run task processes as this unprivileged user (name or uid); needs a
    /// worker started as root. Unset on a worker started as root, tasks run
    /// as `nobody`; `root` runs them as root, an explicit choice the worker
    /// logs as a warning.
    #[arg(long, env = "GRIDMR_TASK_USER")]
    pub task_user: Option<String>,
    /// More environment variables handed to tasks (comma-separated names),
    /// besides the allow-list (PATH, HOME, LANG, LC_*, TZ, …).
    #[arg(long, env = "GRIDMR_TASK_ENV", value_delimiter = ',')]
    pub pass_env: Vec<String>,
    /// Give each attempt a cgroup v2 leaf, killed as one with `cgroup.kill`,
    /// where the worker may make one (`on`, the default); `off` keeps to the
    /// fallback of a process-group kill plus a per-attempt environment tag,
    /// for hosts whose cgroups another manager owns.
    #[arg(long, env = "GRIDMR_TASK_CGROUPS", default_value = "on", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub cgroups: bool,
}

impl Default for FenceSettings {
    fn default() -> Self {
        FenceSettings {
            memory_mb: 4096,
            cpu_s: 7200,
            file_mb: 65_536,
            open_files: 1024,
            processes: 4096,
            task_user: None,
            pass_env: Vec::new(),
            cgroups: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedulers_defaults_are_the_masters() {
        assert_eq!(
            MasterSettings::local("/share").scheduler_config(),
            gridmr_scheduler::SchedulerConfig::default(),
            "gridmr-scheduler's SchedulerConfig::default() drifted from the master's settings"
        );
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        master: MasterSettings,
    }

    #[test]
    fn the_original_rest_port_counts_when_master_port_is_not_set() {
        use clap::Parser;
        let port = |args: &[&str]| {
            let mut argv = vec!["master"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).unwrap().master.rest_port()
        };
        assert_eq!(port(&[]), 8080);
        assert_eq!(port(&["--rest-port", "9000"]), 9000);
        assert_eq!(port(&["--port", "0", "--rest-port", "9000"]), 0);
    }
}
