//! The driver: the scheduling loop, the attempt calls and their answers,
//! and the one executor of the scheduler's effects. Everything slow runs
//! outside the lock, as a task the master tracks and `stop()` awaits.

use super::reported::{verify_output, BadOutput};
use super::*;

/// Writes ended jobs to the store. A job deleted meanwhile loses the file
/// again (the DELETE removes it too, whichever comes last).
fn save_ended(shared: &Arc<Shared>, ended: Vec<sched::Job>) {
    if ended.is_empty() {
        return;
    }
    let sh = shared.clone();
    shared.spawn_file_work(move || {
        let shared = sh;
        for job in ended {
            if let Err(e) = store::save_ended(&job) {
                // Tried again at the next tick: a disk that was full may
                // have room once the job's files are cleaned up.
                tracing::warn!(job = %job.id, error = %e, "cannot save the ended job; will retry");
                shared.lock().unsaved_again(&job.id);
                continue;
            }
            shared.crash.reach("commit:job-recorded");
            // The last step of the commit protocol: `job.json` now says how the job ended
            // (and holds every attempt the journal had).
            store::forget_commit(&job.dirs.base);
            store::forget_history(&job.dirs.base);
            if shared.lock().job(&job.id).is_none() {
                store::forget(&job.dirs.base);
            }
        }
    });
}

/// Tidies a retired job's folder: its records and working files go (a restart does not bring
/// it back), its `out/` stays unless `JOB_RETENTION_PURGE`.
fn retire(shared: &Arc<Shared>, dirs: sched::JobDirs) {
    let purge = shared.settings.job_retention_purge;
    shared.spawn_file_work(move || {
        let result = if purge {
            store::purge(&dirs.base)
        } else {
            store::forget(&dirs.base);
            commit::sweep(&dirs);
            store::remove_all_but(&dirs.base, &dirs.out)
        };
        if let Err(e) = result {
            tracing::warn!(job_dir = %dirs.base.display(), error = %e,
                "cannot tidy a retired job's folder");
        }
    });
}

/// Appends started and ended attempts to their jobs' `history.jsonl`. Lines of one attempt
/// may land in either order (the reader ranks an end above a start).
fn write_journal(shared: &Shared, journal: Vec<(PathBuf, Vec<sched::HistoryLine>)>) {
    if journal.is_empty() {
        return;
    }
    shared.spawn_file_work(move || {
        for (base, lines) in journal {
            if let Err(e) = store::append_history(&base, &lines) {
                tracing::warn!(error = %e, "cannot journal attempts; a master restart will not show them");
            }
        }
    });
}

/// Removes, now and then, the uploads no job took (`UPLOAD_TTL_S`).
pub(super) async fn expire_uploads(shared: Arc<Shared>, stop: CancellationToken) {
    let ttl = Duration::from_secs(shared.settings.upload_ttl_s);
    let every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let dir = shared.shared_dir.clone();
        let _ = tokio::task::spawn_blocking(move || uploads::expire(&dir, ttl)).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

pub(super) async fn schedule_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let tick = (shared.settings.worker_timeout() / 4)
        .clamp(Duration::from_millis(20), Duration::from_millis(500));
    loop {
        let (effects, sends, ended, journal) = {
            let mut st = shared.lock();
            let mut effects = st.handle(Event::Tick, clock::now_ms());
            // Each attempt's message is built under the lock its decision was made under.
            let mut sends = Vec::new();
            effects.retain(|e| match e {
                Effect::Dispatch(d) => {
                    sends.push((d.clone(), calls::call_for(&mut st, d)));
                    false
                }
                _ => true,
            });
            shared.statuses.publish(&mut st);
            (effects, sends, st.take_unsaved(), st.take_journal())
        };
        write_journal(&shared, journal);
        apply(&shared, effects);
        save_ended(&shared, ended);
        for (d, call) in sends {
            send(&shared, d, call);
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(tick) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Whether a gRPC error means the worker is gone rather than the task bad.
fn is_lost(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    match status.code() {
        Code::Unavailable | Code::Cancelled => true,
        Code::Unknown => status.source().is_some(),
        _ => false,
    }
}

async fn run_attempt(shared: Arc<Shared>, d: Dispatch, call: Call) {
    let Some(mut client) = shared.pool.get(&d.worker_id) else {
        let outcome = Outcome::Lost(format!("worker {} has no channel", d.worker_id));
        shared.step(Event::AttemptEnded {
            key: d.key,
            worker: d.worker_id,
            outcome,
        });
        return;
    };
    let limit = match shared.settings.task_timeout_s {
        0 => None,
        s => Some(Duration::from_secs(s)),
    };
    let call = calls::send(&mut client, call);
    let answer = match limit {
        None => call.await,
        Some(limit) => match tokio::time::timeout(limit, call).await {
            Ok(a) => a,
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "no answer within TASK_TIMEOUT_S = {}",
                limit.as_secs()
            ))),
        },
    };
    let (result, unreachable) = match answer {
        Ok(o) => (checked(&d, o).await, false),
        Err(status) => failed_call(&d.worker_id, &status),
    };
    let effects = {
        let mut st = shared.lock();
        let now = clock::now_ms();
        let worker = d.worker_id.clone();
        let mut effects = st.handle(
            Event::AttemptEnded {
                key: d.key,
                worker: worker.clone(),
                outcome: result,
            },
            now,
        );
        if unreachable {
            let lost = Event::WorkerLost {
                worker,
                cause: LossCause::Unreachable,
            };
            effects.extend(st.handle(lost, now));
        }
        effects
    };
    apply(&shared, effects);
    shared.poke();
}

/// A successful answer whose output the master did not plan for the attempt fails it (see
/// [`verify_output`]); any other outcome is as the worker said.
async fn checked(d: &Dispatch, outcome: Outcome) -> Outcome {
    let Outcome::Succeeded {
        output,
        counters,
        status,
    } = outcome
    else {
        return outcome;
    };
    let (expected, job_dir) = (d.expected.clone(), d.job_dir.clone());
    let verified = tokio::task::spawn_blocking(move || {
        verify_output(&output, &expected, &job_dir).map(|()| output)
    })
    .await
    .unwrap_or_else(|e| Err(BadOutput::Internal(e.to_string())));
    match verified {
        Ok(output) => Outcome::Succeeded {
            output,
            counters,
            status,
        },
        Err(e) => {
            tracing::warn!(job = %d.key.job_id, worker = %d.worker_id, error = %e,
                "a worker reported an output the master did not plan");
            Outcome::Failed(AttemptError::Engine(e.to_string()))
        }
    }
}

/// A call that got no answer: the attempt's outcome, and whether its worker is unreachable
/// (then it is written off too).
fn failed_call(worker: &str, status: &tonic::Status) -> (Outcome, bool) {
    if is_lost(status) {
        let why = format!("worker {worker}: {}", status.message());
        return (Outcome::Lost(why), true);
    }
    let error = if status.code() == Code::DeadlineExceeded {
        AttemptError::Timeout(format!("worker {worker}: {}", status.message()))
    } else {
        AttemptError::Engine(format!(
            "worker {worker} answered {:?}: {}",
            status.code(),
            status.message()
        ))
    };
    (Outcome::Failed(error), false)
}

/// Removes an attempt's output (a map's index and data, a part file, a typed
/// SINGLE attempt's folder) that the job no longer needs.
fn remove_attempt_output(phase: Phase, path: &Path) {
    // A plain name is a map output a worker keeps (`SHUFFLE=local`): that
    // worker removes it when the job ends; nothing here may touch it.
    if path.is_relative() {
        return;
    }
    match phase {
        Phase::Map => layout::MapOutput::new(path).remove(),
        Phase::Reduce => {
            let _ = std::fs::remove_file(path);
        }
        Phase::Single => {
            // A typed job's engine output has a folder of its own
            // (`single-aN/`); a script's is one file.
            match path.parent() {
                Some(dir) if layout::is_single_attempt_dir(dir) => {
                    let _ = std::fs::remove_dir_all(dir);
                }
                _ => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// Sends an attempt with its message; one whose message could not be built
/// (its job went, or a map it needs was undone, since the decision) ends
/// at once as killed, and its task goes back to the queue.
fn send(shared: &Arc<Shared>, d: Dispatch, call: Option<Call>) {
    match call {
        Some(call) => {
            shared.spawn_call(run_attempt(shared.clone(), d, call));
        }
        None => shared.step(Event::AttemptEnded {
            key: d.key,
            worker: d.worker_id,
            outcome: Outcome::Killed("its job changed before it was sent".into()),
        }),
    }
}

/// Carries out effects outside the lock.
pub(crate) fn apply(shared: &Arc<Shared>, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Dispatch(d) => {
                let call = calls::call_for(&mut shared.lock(), &d);
                send(shared, d, call);
            }
            Effect::Observed(o) => shared.metrics.observe(&o),
            Effect::Retired(dirs) => retire(shared, dirs),
            Effect::Deleted { .. } => {}
            Effect::RemoveAttemptOutput(phase, path) => {
                // Of a job with an object output: the attempt's upload is aborted first.
                let url = path
                    .ancestors()
                    .nth(3)
                    .and_then(|base| base.file_name())
                    .and_then(|id| shared.lock().job(&id.to_string_lossy())?.output_url.clone());
                let objects = shared.objects.clone();
                shared.spawn_file_work(move || {
                    if let Some(url) = url {
                        commit::abort_upload_of(&objects, &url, &path);
                    }
                    remove_attempt_output(phase, &path)
                });
            }
            Effect::Commit(plan) => {
                let sh = shared.clone();
                shared.spawn_to_end(async move {
                    let shared = sh;
                    let id = plan.job_id.clone();
                    let max = shared.settings.result_txt_max_bytes;
                    let crash = shared.crash.clone();
                    let objects = shared.objects.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        commit::commit(&plan, max, &crash, &objects)
                    })
                    .await
                    .map_err(|e| sched::CommitError::Internal(e.to_string()))
                    .and_then(|r| r);
                    shared.step(Event::CommitDone { job: id, result });
                });
            }
            Effect::Clean(dirs) => {
                // A job with an object output: its attempts' uploads are aborted first.
                let url = dirs.base.file_name().and_then(|id| {
                    let st = shared.lock();
                    st.job(&id.to_string_lossy())?.output_url.clone()
                });
                let objects = shared.objects.clone();
                shared.spawn_file_work(move || {
                    if let Some(url) = url {
                        commit::abort_uploads(&objects, &url, &dirs);
                    }
                    commit::clean(&dirs)
                });
            }
            Effect::Sweep(dirs) => {
                shared.spawn_file_work(move || commit::sweep(&dirs));
            }
            Effect::Probe { worker_id } => {
                let Some(mut client) = shared.pool.get(&worker_id) else {
                    continue;
                };
                let sh = shared.clone();
                let timeout = shared.control_timeout();
                shared.spawn_call(async move {
                    let shared = sh;
                    let req = gridmr_net::proto::HeartbeatReq {
                        worker_id: worker_id.to_string(),
                    };
                    let alive = matches!(
                        tokio::time::timeout(timeout, client.heartbeat(req)).await,
                        Ok(Ok(_))
                    );
                    shared.step(if alive {
                        Event::Probed { worker: worker_id }
                    } else {
                        Event::WorkerLost {
                            worker: worker_id,
                            cause: LossCause::Unreachable,
                        }
                    });
                });
            }
            Effect::Cancel { job_id, workers } => {
                let timeout = Duration::from_secs(shared.settings.grpc_timeout_s.max(1));
                for mut client in workers.iter().filter_map(|w| shared.pool.get(w)) {
                    let req = gridmr_net::proto::CancelReq {
                        job_id: job_id.to_string(),
                        ..Default::default()
                    };
                    shared.spawn_call(async move {
                        let _ = tokio::time::timeout(timeout, client.cancel_job(req)).await;
                    });
                }
            }
            Effect::DropShuffle { job_id, workers } => {
                let timeout = Duration::from_secs(shared.settings.grpc_timeout_s.max(1));
                for (worker, mut client) in workers
                    .into_iter()
                    .filter_map(|w| shared.pool.get(&w).map(|c| (w, c)))
                {
                    let req = gridmr_net::proto::DropShuffleReq {
                        job_id: job_id.to_string(),
                    };
                    let job = job_id.clone();
                    shared.spawn_call(async move {
                        // A worker that does not answer sweeps its old outputs itself
                        // (SHUFFLE_RETAIN_S).
                        if let Ok(Err(status)) =
                            tokio::time::timeout(timeout, client.drop_shuffle(req)).await
                        {
                            tracing::debug!(%job, %worker, error = %status.message(),
                                "a worker did not drop the job's map outputs");
                        }
                    });
                }
            }
            Effect::CancelAttempt {
                job_id,
                task,
                attempt,
                worker_id,
            } => {
                let Some(mut client) = shared.pool.get(&worker_id) else {
                    continue;
                };
                let timeout = Duration::from_secs(shared.settings.grpc_timeout_s.max(1));
                let req = gridmr_net::proto::CancelReq {
                    job_id: job_id.to_string(),
                    task: task.name(),
                    attempt,
                };
                shared.spawn_call(async move {
                    let _ = tokio::time::timeout(timeout, client.cancel_job(req)).await;
                });
            }
        }
    }
}
