//! The scheduler's policy: caps, retries, speculation, liveness and
//! retention. The master fills it from its settings (each field has an
//! environment twin there, named in its doc).

/// How the scheduler picks a worker for the next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulerPolicy {
    /// The worker with the most free slots (ties: fewest running, then
    /// registration order).
    #[default]
    LeastLoaded,
    /// The original's: workers in turn, skipping full ones.
    RoundRobin,
}

/// The most attempts per task `MAX_TASK_ATTEMPTS` may ask for. A job run
/// again after a master restart numbers its attempts past every earlier
/// run's, and lost attempts count apart from failed ones, so this keeps the
/// runs' numbers from meeting.
pub const MAX_TASK_ATTEMPTS_CAP: u32 = 100;

/// The scheduler's policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Attempts in flight across the cluster (`EXECUTOR_MAX_WORKERS`).
    pub max_inflight: u32,
    /// SINGLE attempts in flight (`MAX_INFLIGHT_SINGLES`).
    pub max_inflight_singles: u32,
    /// Map attempts in flight (`MAX_INFLIGHT_MAPS`).
    pub max_inflight_maps: u32,
    /// Reduce attempts in flight (`MAX_INFLIGHT_REDUCES`).
    pub max_inflight_reduces: u32,
    /// Failed attempts per task before its job fails (`MAX_TASK_ATTEMPTS`).
    pub max_task_attempts: u32,
    /// Attempts per task lost with their worker before its job fails (`MAX_TASK_LOSSES`).
    pub max_task_losses: u32,
    /// Failed attempts of one job that keep a worker from it (`EXCLUDE_AFTER_FAILURES`; 0: never).
    pub exclude_after_failures: u32,
    /// How long an excluded worker is kept from the job, seconds (`EXCLUDE_S`).
    pub exclude_s: u64,
    /// Backup attempts for stragglers (`SPECULATION`).
    pub speculation: bool,
    /// Share of a phase's tasks done before backups start (`SPECULATION_QUANTILE`).
    pub speculation_quantile: f64,
    /// How many times the median a straggler has run (`SPECULATION_MULTIPLIER`).
    pub speculation_multiplier: f64,
    /// The least a straggler has run, seconds (`SPECULATION_MIN_S`).
    pub speculation_min_s: f64,
    /// Silence after which a worker is written off, ms (`WORKER_TIMEOUT_S`).
    pub worker_timeout_ms: u64,
    /// How long a job waits with no worker able to run it, seconds; 0: for ever
    /// (`WAIT_FOR_WORKERS_S`).
    pub wait_for_workers_s: u64,
    /// Ended jobs kept (`JOB_RETENTION_COUNT`; 0: all).
    pub job_retention_count: usize,
    /// Longest an ended job is kept, seconds (`JOB_RETENTION_S`; 0: for ever).
    pub job_retention_s: u64,
    /// How the next task's worker is chosen (`SCHEDULER_POLICY`).
    pub policy: SchedulerPolicy,
    /// Reduces of a job with an object output that a worker whose slots are all taken may be
    /// sent ahead (`REDUCE_READAHEAD`; 0: none). Such a reduce waits on the worker for a slot,
    /// which a reduce gives up when it starts uploading its part: the next one fetches its
    /// inputs (the link's inbound half) while the first uploads (its outbound half).
    pub reduce_readahead: u32,
}

impl Default for SchedulerConfig {
    /// The master's defaults.
    fn default() -> Self {
        SchedulerConfig {
            max_inflight: 32,
            max_inflight_singles: 4,
            max_inflight_maps: 16,
            max_inflight_reduces: 8,
            max_task_attempts: 4,
            max_task_losses: 100,
            exclude_after_failures: 2,
            exclude_s: 600,
            speculation: true,
            speculation_quantile: 0.75,
            speculation_multiplier: 1.5,
            speculation_min_s: 1.0,
            worker_timeout_ms: 10_000,
            wait_for_workers_s: 600,
            job_retention_count: 1000,
            job_retention_s: 0,
            policy: SchedulerPolicy::LeastLoaded,
            reduce_readahead: 1,
        }
    }
}

impl SchedulerConfig {
    /// `max_task_attempts`, within 1 ..= [`MAX_TASK_ATTEMPTS_CAP`].
    pub fn max_attempts(&self) -> u32 {
        self.max_task_attempts.clamp(1, MAX_TASK_ATTEMPTS_CAP)
    }

    /// `max_task_losses`, within 1 ..= [`MAX_TASK_ATTEMPTS_CAP`].
    pub fn max_losses(&self) -> u32 {
        self.max_task_losses.clamp(1, MAX_TASK_ATTEMPTS_CAP)
    }
}
