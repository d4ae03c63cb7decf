//! A starting master takes back what earlier masters left in the store:
//! ended jobs as they ended, the others run again (their committed map
//! outputs kept where the journal vouches for them), and the first job
//! number no folder uses.

use super::*;

/// The first job number not used by a folder under `jobs/`.
pub(super) fn first_free_seq(jobs_dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(jobs_dir) else {
        return 1;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("job-"))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .max()
        .map_or(1, |m| m + 1)
}

/// Attempt numbers each run of a job may use: a job run again after a
/// master restart numbers its attempts from `restarts × ATTEMPTS_PER_RUN + 1`
/// (see [`crate::settings::MAX_TASK_ATTEMPTS_CAP`]).
const ATTEMPTS_PER_RUN: u32 = 1000;

/// Takes back the jobs earlier masters left in the store: ended ones as they
/// ended; the others, their partial output removed, queued to run again.
/// Returns the latter, to prepare.
pub(super) fn recover(
    shared: &Arc<Shared>,
    jobs_dir: &Path,
) -> Vec<(gridmr_core::JobId, JobRequest)> {
    let mut again = Vec::new();
    for stored in store::load(jobs_dir) {
        match stored {
            store::Stored::Ended(job) => {
                // An ended job's commit record and working folders may outlive it by a crash.
                store::forget_commit(&job.dirs.base);
                commit::sweep(&job.dirs);
                shared.lock().restore(*job)
            }
            store::Stored::Unfinished {
                id,
                dirs,
                mut submitted,
            } => {
                if let Err(why) = stored_request_paths(&submitted.request, &dirs, shared) {
                    tracing::warn!(job = %id, %why,
                        "the job's stored request names paths the master did not write; left alone");
                    continue;
                }
                if let commit::Recovered::Committed(mut job, done) =
                    commit::recover(&dirs, &shared.crash, &shared.objects)
                {
                    // Its id is its folder's, whatever the record says.
                    job.id = id.clone();
                    tracing::info!(job = %id,
                        "the job's output was being committed when the last master stopped; \
                         commit finished, job adopted as succeeded");
                    shared.lock().adopt(*job, done, clock::now_ms());
                    continue;
                }
                submitted.restarts += 1;
                // A prepared DISTRIBUTED job resumes: its committed map
                // outputs are kept. Anything else runs again from scratch.
                let plan = store::read_plan(&dirs.base)
                    .filter(|p| p.mode == sched::Mode::Distributed && !submitted.request.map_only);
                let history = store::read_history(&dirs.base);
                let kept = match &plan {
                    Some(p) => {
                        let found =
                            keep_map_outputs(&dirs.shuffle, p.splits.len(), p.reduce_partitions);
                        journaled_outputs(found, &history)
                    }
                    None => Vec::new(),
                };
                let reset = commit::reset(&dirs, &kept)
                    .and_then(|()| store::save_request(&dirs.base, &submitted));
                if let Err(e) = reset {
                    tracing::warn!(job = %id, error = %e, "cannot run the job again; left alone");
                    continue;
                }
                let request = submitted.request;
                let base = submitted.restarts.saturating_mul(ATTEMPTS_PER_RUN);
                let submitted_event = Event::Submitted {
                    id: id.clone(),
                    request: Box::new(request.clone()),
                    dirs,
                    foreseen: None,
                };
                let mut st = shared.lock();
                let mut effects = st.handle(submitted_event, clock::now_ms());
                st.set_attempt_base(&id, base);
                drop(st);
                match plan {
                    Some(plan) => {
                        let mut st = shared.lock();
                        let resumed = Event::Resumed {
                            job: id.clone(),
                            plan,
                            kept: kept.clone(),
                        };
                        effects.extend(st.handle(resumed, clock::now_ms()));
                        let n = st
                            .job(&id)
                            .map_or(0, |j| j.count(Phase::Map, sched::TaskState::Done));
                        st.restore_history(&id, history, &kept);
                        drop(st);
                        tracing::info!(job = %id, restarts = submitted.restarts, maps_kept = n,
                            "the job had not ended when the last master stopped; resuming it");
                    }
                    None => {
                        shared.lock().restore_history(&id, history, &[]);
                        tracing::info!(job = %id, restarts = submitted.restarts,
                            "the job had not ended when the last master stopped; running it again");
                        again.push((id, request));
                    }
                }
                apply(shared, effects);
            }
        }
    }
    again
}

/// Checks the paths of a request read back from the share, which tasks and others may have
/// edited: the script and the streaming files must be the copies in the job's own folder, and
/// every input must lie inside the input roots, as at submission (an input gone since is left
/// to fail the job as it runs, with its own error).
fn stored_request_paths(
    request: &JobRequest,
    dirs: &sched::JobDirs,
    shared: &Shared,
) -> Result<()> {
    let refused =
        |what: &str, p: &Path| Error::setting("stored request", format!("{what} {}", p.display()));
    match &request.kind {
        sched::JobKind::Script(p) if *p != dirs.base.join("script.py") => {
            return Err(refused("script", p))
        }
        sched::JobKind::Streaming {
            files_dir: Some(d), ..
        } if *d != dirs.base.join("files") => return Err(refused("files", d)),
        _ => {}
    }
    let roots = shared.input_roots();
    if let Some(url) = &request.output_url {
        if shared.objects.check(url).is_err() {
            return Err(refused("output", Path::new(url)));
        }
    }
    for input in std::iter::once(&request.input_path).chain(&request.more_inputs) {
        // An object input: in a bucket this master may use, or refused.
        let text = input.to_string_lossy();
        if crate::objstore::is_object_url(&text) {
            if shared.objects.check(&text).is_err() {
                return Err(refused("input", input));
            }
            continue;
        }
        // The part before any glob character is what must exist.
        let fixed: PathBuf = input
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
            .collect();
        let gone = !fixed.exists();
        if !gone && crate::paths::check_inside(input, &roots).is_err() {
            return Err(refused("input", input));
        }
    }
    Ok(())
}

/// Waits until the workers are back with a master that has just started:
/// WORKER_TIMEOUT_S, within which every live worker heartbeats, gets a 404
/// and registers again. A job as wide as the cluster planned before then
/// would be as narrow as the workers that happened to be back.
pub(super) async fn workers_back(shared: &Arc<Shared>) {
    tokio::time::sleep(shared.settings.worker_timeout()).await;
}

/// The map outputs of an earlier run worth keeping, by map index: for
/// each map, the first `map-NNNNN-aA.index` in `shuffle` whose index reads
/// back whole (checksum, data file long enough) with `partitions`
/// partitions. (A block damaged beyond that is found by the reduce that
/// reads it, and that map runs again.)
fn keep_map_outputs(shuffle: &Path, maps: usize, partitions: u32) -> Vec<Option<PathBuf>> {
    let mut kept: Vec<Option<PathBuf>> = vec![None; maps];
    let Ok(entries) = std::fs::read_dir(shuffle) else {
        return kept;
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files {
        let Some(index) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(layout::MapOutput::map_index_of)
            .map(|i| i as usize)
        else {
            continue;
        };
        if index >= maps || kept[index].is_some() {
            continue;
        }
        let whole =
            gridmr_core::shuffle::RunIndex::read(&path).is_ok_and(|i| i.partitions() == partitions);
        if whole {
            kept[index] = Some(path);
        }
    }
    kept
}

/// The map outputs among `found` whose attempt the job's journal records as succeeded, with
/// its counters: as Hadoop's recovery keeps only the tasks its job history saw finish, so that
/// a kept output comes with the counters it added.
fn journaled_outputs(
    found: Vec<Option<PathBuf>>,
    history: &[sched::HistoryLine],
) -> Vec<Option<PathBuf>> {
    found
        .into_iter()
        .enumerate()
        .map(|(map, output)| {
            let attempt = output
                .as_deref()
                .and_then(|o| o.file_name()?.to_str())
                .and_then(layout::MapOutput::attempt_of)?;
            let journaled = history.iter().any(|l| {
                l.attempt.task.phase == Phase::Map
                    && l.attempt.task.index as usize == map
                    && l.attempt.number == attempt
                    && l.attempt.state == sched::AttemptState::Succeeded
                    && l.counters.is_some()
            });
            output.filter(|_| journaled)
        })
        .collect()
}
