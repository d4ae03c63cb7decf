//! `GET /metrics`: the master's Prometheus metrics (with the
//! `prometheus-client` crate, the Prometheus project's own Rust client, so
//! the text format and histogram buckets are right by construction).

use gridmr_core::counters::builtin;
use gridmr_core::Counters;
use gridmr_scheduler::{JobState, Observation};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

type Labels = Vec<(String, String)>;

fn duration_histogram() -> Histogram {
    // 10 ms … ~5.5 h.
    Histogram::new(exponential_buckets(0.01, 2.0, 21))
}

/// The master's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) jobs_submitted: Counter,
    jobs_finished: Family<Labels, Counter>,
    jobs: Family<Labels, Gauge>,
    tasks: Family<Labels, Counter>,
    task_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    workers_live: Gauge,
    workers_registered: Gauge,
    input_bytes: Counter,
    shuffle_bytes: Counter,
    output_bytes: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let jobs_submitted = Counter::default();
        let jobs_finished = Family::<Labels, Counter>::default();
        let jobs = Family::<Labels, Gauge>::default();
        let tasks = Family::<Labels, Counter>::default();
        let task_seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let workers_live = Gauge::default();
        let workers_registered = Gauge::default();
        let input_bytes = Counter::default();
        let shuffle_bytes = Counter::default();
        let output_bytes = Counter::default();
        registry.register(
            "gridmr_jobs_submitted",
            "Jobs accepted",
            jobs_submitted.clone(),
        );
        registry.register(
            "gridmr_jobs_finished",
            "Jobs finished, by final state",
            jobs_finished.clone(),
        );
        registry.register(
            "gridmr_jobs",
            "Jobs in the job list, by state",
            jobs.clone(),
        );
        registry.register(
            "gridmr_tasks",
            "Task attempts finished, by phase and outcome",
            tasks.clone(),
        );
        registry.register(
            "gridmr_task_duration_seconds",
            "Task attempt durations, by phase",
            task_seconds.clone(),
        );
        registry.register("gridmr_workers_live", "Live workers", workers_live.clone());
        registry.register(
            "gridmr_workers_registered",
            "Workers ever registered (live or dead)",
            workers_registered.clone(),
        );
        registry.register(
            "gridmr_input_bytes",
            "Input bytes read by committed map attempts of succeeded jobs",
            input_bytes.clone(),
        );
        registry.register(
            "gridmr_shuffle_bytes",
            "Shuffle bytes written by committed map attempts of succeeded jobs",
            shuffle_bytes.clone(),
        );
        registry.register(
            "gridmr_output_bytes",
            "Output bytes written by succeeded jobs",
            output_bytes.clone(),
        );
        Metrics {
            registry,
            jobs_submitted,
            jobs_finished,
            jobs,
            tasks,
            task_seconds,
            workers_live,
            workers_registered,
            input_bytes,
            shuffle_bytes,
            output_bytes,
        }
    }

    /// Counts what the scheduler saw happen.
    pub(crate) fn observe(&self, o: &Observation) {
        match o {
            Observation::JobSubmitted => {
                self.jobs_submitted.inc();
            }
            Observation::JobEnded { state, counters } => {
                if let Some(c) = counters {
                    self.bytes_from(c);
                }
                self.jobs_finished(*state);
            }
            Observation::AttemptEnded {
                phase,
                outcome,
                seconds,
            } => self.task_finished(phase.as_str(), outcome, *seconds),
        }
    }

    pub(crate) fn task_finished(&self, phase: &str, outcome: &str, seconds: f64) {
        self.tasks
            .get_or_create(&vec![
                ("phase".into(), phase.into()),
                ("outcome".into(), outcome.into()),
            ])
            .inc();
        self.task_seconds
            .get_or_create(&vec![("phase".into(), phase.into())])
            .observe(seconds);
    }

    pub(crate) fn jobs_finished(&self, state: JobState) {
        self.jobs_finished
            .get_or_create(&vec![("state".into(), state.as_str().into())])
            .inc();
    }

    pub(crate) fn bytes_from(&self, counters: &Counters) {
        self.input_bytes
            .inc_by(counters.builtin(builtin::MAP_INPUT_BYTES));
        self.shuffle_bytes
            .inc_by(counters.builtin(builtin::MAP_OUTPUT_BYTES));
        self.output_bytes
            .inc_by(counters.builtin(builtin::OUTPUT_BYTES));
    }

    /// The text exposition, with the gauges set from the current state.
    pub(crate) fn render(
        &self,
        jobs_by_state: &BTreeMap<&'static str, u64>,
        live: usize,
        registered: usize,
    ) -> String {
        for (state, n) in jobs_by_state {
            self.jobs
                .get_or_create(&vec![("state".into(), (*state).into())])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.workers_live.set(live as i64);
        self.workers_registered.set(registered as i64);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
