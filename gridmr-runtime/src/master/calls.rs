//! The gRPC message of each attempt the scheduler dispatches, and its
//! answer read back as the attempt's outcome: the one place the master
//! turns its records into the workers' protocol and back.

use gridmr_core::layout;
use gridmr_core::shuffle::ShuffleMode;
use gridmr_core::task::{MapTarget, MapTask, ReduceTask};
use gridmr_core::WorkerId;
use gridmr_net::auth::WorkerRpc;
use gridmr_net::proto;
use gridmr_net::wire::{map_task_to_wire, reduce_task_to_wire, shuffle_to_wire};
use gridmr_scheduler::{
    AttemptError, Dispatch, Job, JobKind, MapOutputRef, Outcome, Phase, Scheduler,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The gRPC call of one attempt.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    Single(proto::JobTask),
    Map(proto::MapTask),
    /// A reduce: its message without its inputs, and the job's committed
    /// map outputs, shared by every reduce dispatch (with 100,000 maps a
    /// copy per dispatch would cost more than the decision); joined into
    /// one message when it is sent, outside the lock.
    Reduce {
        task: proto::ReduceTask,
        inputs: Arc<Vec<MapOutputRef>>,
        /// `SHUFFLE=local`: where the workers that keep the inputs listen.
        holders: Option<HashMap<WorkerId, String>>,
    },
}

impl Call {
    /// A reduce's whole message: its inputs as paths on the share, or, when
    /// `holders` are given, as sources on the workers that keep them.
    pub(crate) fn reduce_message(
        task: proto::ReduceTask,
        inputs: &[MapOutputRef],
        holders: Option<&HashMap<WorkerId, String>>,
    ) -> proto::ReduceTask {
        match holders {
            None => proto::ReduceTask {
                shuffle_inputs: inputs.iter().map(|i| i.index.clone()).collect(),
                ..task
            },
            Some(holders) => proto::ReduceTask {
                remote_inputs: inputs
                    .iter()
                    .map(|i| {
                        let worker_id =
                            i.holder.as_ref().map(|w| w.to_string()).unwrap_or_default();
                        proto::ShuffleSource {
                            address: i
                                .holder
                                .as_ref()
                                .and_then(|w| holders.get(w))
                                .cloned()
                                .unwrap_or_default(),
                            worker_id,
                            index_name: i.index.clone(),
                        }
                    })
                    .collect(),
                ..task
            },
        }
    }
}

/// Where each live worker listens, for a reduce's inputs (`SHUFFLE=local`):
/// one pass over the workers, not over the job's map outputs, under the
/// lock. A holder that is not live is left out: the reduce reports its
/// output lost.
fn holder_addresses(sched: &Scheduler) -> HashMap<WorkerId, String> {
    sched
        .workers
        .live()
        .map(|w| (w.id.clone(), w.address.clone()))
        .collect()
}

/// The gRPC call of dispatch `d` of `job`, built under the scheduler's lock
/// (a reduce's inputs are the job's shared list, joined when it is sent).
pub(crate) fn call_for(sched: &mut Scheduler, d: &Dispatch) -> Option<Call> {
    let (phase, index, attempt) = (d.key.task.phase, d.key.task.index, d.key.attempt);
    let inputs = match phase {
        Phase::Reduce => Some(sched.reduce_inputs(&d.key.job_id)?),
        _ => None,
    };
    let job = sched.job(&d.key.job_id)?;
    // A reduce reads every map's output: none is sent while a map is undone
    // (its output lost since the decision).
    if inputs
        .as_ref()
        .is_some_and(|i| i.len() != job.table.len(Phase::Map))
    {
        return None;
    }
    let holders = match (&inputs, job.shuffle_mode) {
        (Some(_), ShuffleMode::Local) => Some(holder_addresses(sched)),
        _ => None,
    };
    let (name, script) = (job.kind.name().to_owned(), job.kind.script_path());
    let (streaming, timeout_s) = (streaming_spec(&job.kind), job.timeout_s);
    let worker_id = d.worker_id.clone();
    Some(match phase {
        Phase::Single => Call::Single(proto::JobTask {
            streaming,
            timeout_s,
            ..single_message(job, &name, &script, attempt)
        }),
        Phase::Map => Call::Map(proto::MapTask {
            streaming,
            timeout_s,
            local_shuffle: job.shuffle_mode == ShuffleMode::Local && !job.map_only,
            // A map-only job's maps write its output.
            output_url: match job.map_only {
                true => job.output_url.clone().unwrap_or_default(),
                false => String::new(),
            },
            ..map_task_to_wire(
                &MapTask {
                    job_id: job.id.clone(),
                    index,
                    attempt,
                    worker_id,
                    split: job.splits.get(index as usize)?.clone(),
                    target: map_target(job),
                    shuffle: job.shuffle,
                    params: job.params.clone(),
                },
                &name,
                &script,
            )
        }),
        Phase::Reduce => Call::Reduce {
            inputs: inputs?,
            holders,
            task: proto::ReduceTask {
                streaming,
                timeout_s,
                output_url: job.output_url.clone().unwrap_or_default(),
                ..reduce_task_to_wire(
                    &ReduceTask {
                        job_id: job.id.clone(),
                        partition: index,
                        attempt,
                        worker_id,
                        map_outputs: Vec::new(),
                        output_dir: job.dirs.out.clone(),
                        params: job.params.clone(),
                    },
                    &name,
                    &script,
                )
            },
        },
    })
}

/// A streaming job's commands, as its tasks carry them.
fn streaming_spec(kind: &JobKind) -> Option<proto::StreamingSpec> {
    match kind {
        JobKind::Streaming {
            mapper,
            reducer,
            combiner,
            files_dir,
        } => Some(proto::StreamingSpec {
            mapper: mapper.clone(),
            reducer: reducer.clone(),
            combiner: combiner.clone(),
            files_dir: files_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        }),
        _ => None,
    }
}

/// Where a job's map attempts write: straight into its output folder
/// (map-only) or into its shuffle.
fn map_target(job: &Job) -> MapTarget {
    if job.map_only {
        MapTarget::Direct {
            out: job.dirs.out.clone(),
        }
    } else {
        MapTarget::Shuffle {
            dir: job.dirs.shuffle.clone(),
            partitions: job.reduce_partitions,
            job_dir: None,
        }
    }
}

/// A SINGLE attempt's message (without its streaming commands and time
/// limit).
fn single_message(job: &Job, name: &str, script: &str, attempt: u32) -> proto::JobTask {
    proto::JobTask {
        job_id: job.id.to_string(),
        script_path: script.to_owned(),
        input_path: job.input_path.display().to_string(),
        more_inputs: job
            .more_inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        params: job.params.clone().into(),
        output_dir: job.dirs.out.display().to_string(),
        job_name: name.to_owned(),
        attempt,
        shuffle: Some(shuffle_to_wire(&job.shuffle)),
        work_dir: layout::single_work_dir(&job.dirs.base, attempt)
            .display()
            .to_string(),
        ..Default::default()
    }
}

/// Sends `call` to a worker and reads its answer as the attempt's outcome (a gRPC error
/// is the caller's to judge: a lost worker, a timeout, a refusal).
pub(crate) async fn send(client: &mut WorkerRpc, call: Call) -> Result<Outcome, tonic::Status> {
    match call {
        Call::Single(m) => client.execute_job(m).await.map(|r| {
            let r = r.into_inner();
            outcome(Answer {
                success: r.success,
                output: r.output_path,
                error: r.error,
                failure: r.failure,
                lost_input: String::new(),
                also_lost: Vec::new(),
                counters: r.counters,
                status: r.status_message,
            })
        }),
        Call::Map(m) => client.execute_map(m).await.map(|r| {
            let r = r.into_inner();
            outcome(Answer {
                success: r.success,
                output: r.index_path,
                error: r.error,
                failure: r.failure,
                lost_input: String::new(),
                also_lost: Vec::new(),
                counters: r.counters,
                status: r.status_message,
            })
        }),
        Call::Reduce {
            task,
            inputs,
            holders,
        } => client
            .execute_reduce(Call::reduce_message(task, &inputs, holders.as_ref()))
            .await
            .map(|r| {
                let r = r.into_inner();
                outcome(Answer {
                    success: r.success,
                    output: r.output_path,
                    error: r.error,
                    failure: r.failure,
                    lost_input: r.lost_input,
                    also_lost: r.lost_inputs,
                    counters: r.counters,
                    status: r.status_message,
                })
            }),
    }
}

/// What a worker's answer says about its attempt.
struct Answer {
    success: bool,
    output: String,
    error: String,
    failure: i32,
    lost_input: String,
    /// Every input a reduce found lost (`lost_input` among them).
    also_lost: Vec<String>,
    counters: Vec<gridmr_net::proto::Counter>,
    status: String,
}

/// Most inputs one reduce's answer may report lost (a worker's answer is
/// bounded as any other message).
const MAX_LOST_INPUTS: usize = 100_000;

/// An attempt's outcome from its worker's answer.
fn outcome(a: Answer) -> Outcome {
    use gridmr_net::proto::Failure as Kind;
    if !a.success {
        let error = if a.error.is_empty() {
            "the worker reported failure without an error".to_owned()
        } else {
            a.error
        };
        return match Kind::try_from(a.failure).unwrap_or(Kind::Unspecified) {
            Kind::Unspecified | Kind::Task => Outcome::Failed(AttemptError::Task(error)),
            Kind::Engine => Outcome::Failed(AttemptError::Engine(error)),
            Kind::Timeout => Outcome::Failed(AttemptError::Timeout(error)),
            Kind::Cancelled => Outcome::Killed(error),
            Kind::MapOutputLost if !a.lost_input.is_empty() => Outcome::InputLost {
                also: a
                    .also_lost
                    .iter()
                    .filter(|other| **other != a.lost_input)
                    .take(MAX_LOST_INPUTS)
                    .map(PathBuf::from)
                    .collect(),
                input: PathBuf::from(a.lost_input),
                message: error,
            },
            Kind::MapOutputLost => Outcome::Failed(AttemptError::Engine(error)),
        };
    }
    if a.output.is_empty() {
        return Outcome::Failed(AttemptError::Engine(
            "the worker reported success but named no output".into(),
        ));
    }
    Outcome::Succeeded {
        output: PathBuf::from(a.output),
        counters: gridmr_net::wire::counters_from_wire(&a.counters),
        status: (!a.status.is_empty()).then_some(a.status),
    }
}
