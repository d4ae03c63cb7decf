//! The master: the REST API for clients, the scheduler that hands tasks to
//! workers over gRPC, and the job store.
//!
//! One lock guards the scheduler (`gridmr_scheduler::Scheduler`, a pure
//! state machine: events in with the time, effects out); nothing slow
//! happens under it, and every event goes through [`Shared::step`]. Task calls run as their own tokio tasks; file work
//! (listing inputs, committing outputs, removing files) runs on the
//! blocking pool. The scheduler wakes on every event (a submit, an attempt's
//! answer, a registration) and on a short tick that checks heartbeats.

mod api;
mod calls;
mod clock;
mod commit;
mod confined;
mod faults;
mod http;
mod metrics;
mod pool;
pub mod sim;
mod store;
mod ui;
mod uploads;
mod view;

use crate::error::{Error, Result};
use crate::settings::MasterSettings;
use calls::Call;
use gridmr_core::input::list_inputs;
use gridmr_core::layout;
use gridmr_core::Registry;
use gridmr_scheduler as sched;
use gridmr_scheduler::{
    AttemptError, Dispatch, Effect, Event, JobRequest, LossCause, Outcome, Phase, Scheduler,
};
use metrics::Metrics;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;

/// What the REST handlers and the scheduler share.
pub(crate) struct Shared {
    pub(crate) settings: Arc<MasterSettings>,
    /// The cluster token REST callers must show and worker calls carry.
    pub(crate) auth: gridmr_net::auth::Auth,
    /// TLS towards workers (`GRIDMR_TLS_CA` set): their addresses are
    /// dialled as `https://`.
    pub(crate) grpc_tls: Option<tonic::transport::ClientTlsConfig>,
    pub(crate) shared_dir: PathBuf,
    pub(crate) registry: Registry,
    pub(crate) metrics: Arc<Metrics>,
    /// The workers' gRPC channels, by id.
    pub(crate) pool: pool::WorkerPool,
    /// The web UI's sign-in codes and browser sessions.
    pub(crate) ui: ui::session::Sessions,
    /// Where this master crashes on purpose (`GRIDMR_INJECT_CRASH`, tests only).
    crash: faults::CrashPoints,
    state: Mutex<Scheduler>,
    wake: Notify,
    changed: watch::Sender<u64>,
    /// Stops the master when cancelled.
    stop: CancellationToken,
    /// Every task the master starts besides its scheduler loop and HTTP server:
    /// [`MasterHandle::join`] waits for them all.
    tasks: TaskTracker,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Scheduler> {
        // A panic while holding the lock is a bug; the state is still the
        // best there is, so keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `event` to the scheduler (lock, handle at [`clock::now_ms`],
    /// unlock), carries out its effects and wakes the scheduling pass and
    /// every long-poll: the one way an event reaches the scheduler outside
    /// its own loop.
    pub(crate) fn step(self: &Arc<Self>, event: Event) {
        let effects = self.lock().handle(event, clock::now_ms());
        apply(self, effects);
        self.poke();
    }

    /// Runs `work` (a call to a worker, a wait) as a tracked task that ends early when the
    /// master stops.
    pub(crate) fn spawn_call<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// Runs `work` to its end as a tracked task (a commit: a stopping master waits for it).
    pub(crate) fn spawn_to_end<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(work);
    }

    /// Runs file work on the blocking pool as a tracked task.
    pub(crate) fn spawn_file_work<F>(&self, work: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.tasks.spawn_blocking(work);
    }

    /// Wakes the scheduler and every long-poll.
    pub(crate) fn poke(&self) {
        self.wake.notify_one();
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn jobs_dir(&self) -> PathBuf {
        self.shared_dir.join("jobs")
    }

    /// Timeout of a control call to a worker (registration probe): at most
    /// 5 s, whatever `GRPC_TIMEOUT_S` says.
    pub(crate) fn control_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.grpc_timeout_s.clamp(1, 5))
    }

    /// The folders inputs may come from: the share and `INPUT_ROOTS`.
    pub(crate) fn input_roots(&self) -> Vec<PathBuf> {
        let mut roots = vec![self.shared_dir.clone()];
        roots.extend(self.settings.input_roots.iter().cloned());
        roots
    }

    /// A gRPC endpoint for a worker's `host:port`: `https://` with the
    /// cluster's TLS when `GRIDMR_TLS_CA` is set.
    pub(crate) fn endpoint(&self, address: &str) -> Result<tonic::transport::Endpoint> {
        let scheme = if self.grpc_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| Error::setting("worker address", e.to_string()))?;
        match &self.grpc_tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|e| Error::setting("GRIDMR_TLS_CA", e.to_string())),
            None => Ok(endpoint),
        }
    }
}

/// A running master.
pub struct MasterHandle {
    addr: SocketAddr,
    auth: gridmr_net::auth::Auth,
    tls: bool,
    stop: CancellationToken,
    server: JoinHandle<Result<()>>,
    scheduler: JoinHandle<()>,
    tasks: TaskTracker,
}

impl MasterHandle {
    /// The address the REST API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The REST API's base URL (`http://127.0.0.1:PORT`, or `https://`
    /// when it serves TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The cluster token callers must send (`None` under
    /// `GRIDMR_AUTH=off`).
    pub fn token(&self) -> Option<&gridmr_net::auth::Token> {
        self.auth.current()
    }

    /// A REST client for this master that sends its token (plain HTTP; for
    /// a TLS master build one with [`gridmr_net::Client::with_ca`]).
    pub fn client(&self) -> gridmr_net::Client {
        gridmr_net::Client::new(&self.url()).with_token(self.token())
    }

    /// A token that stops the master when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops the master and waits for it.
    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.join().await
    }

    /// Waits until the master stops: its scheduler loop, its HTTP server (which waits for
    /// the requests it is answering) and every task it started (a commit under way runs to
    /// its end; calls to workers end at once).
    pub async fn join(self) -> Result<()> {
        let _ = self.scheduler.await;
        let served = self.server.await;
        self.tasks.close();
        self.tasks.wait().await;
        match served {
            Ok(r) => r,
            Err(e) => Err(Error::Serve {
                what: "REST",
                addr: self.addr,
                reason: e.to_string(),
            }),
        }
    }
}

/// The first job number not used by a folder under `jobs/`.
fn first_free_seq(jobs_dir: &Path) -> u64 {
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

/// Starts a master: the REST API on `host:port` and the scheduler.
/// `registry` names the typed jobs clients may submit; the workers must run
/// a binary with the same registry.
pub async fn start(settings: MasterSettings, registry: Registry) -> Result<MasterHandle> {
    let shared_dir = settings
        .shared_dir
        .canonicalize()
        .map_err(|e| Error::io("open shared folder", &settings.shared_dir, e))?;
    let jobs_dir = shared_dir.join("jobs");
    std::fs::create_dir_all(&jobs_dir).map_err(|e| Error::io("create", &jobs_dir, e))?;
    let auth = settings.security.master_auth(&shared_dir)?;
    if !auth.is_on() {
        tracing::warn!(
            "GRIDMR_AUTH=off: anyone who can reach this master's port can run any command on every worker"
        );
    }
    let rest_tls = settings.security.rest_tls()?;
    let grpc_tls = settings.security.grpc_client_tls()?;
    let (listener, addr) = crate::bind::listen(&settings.host, settings.port).await?;
    let settings = Arc::new(settings);
    let metrics = Arc::new(Metrics::new());
    let shared = Arc::new(Shared {
        state: Mutex::new(Scheduler::new(
            settings.scheduler_config(),
            first_free_seq(&jobs_dir),
        )),
        settings,
        auth: auth.clone(),
        grpc_tls,
        shared_dir,
        registry,
        metrics,
        pool: pool::WorkerPool::default(),
        ui: ui::session::Sessions::new(rest_tls.is_some()),
        crash: faults::CrashPoints::from_env(),
        wake: Notify::new(),
        changed: watch::channel(0).0,
        stop: CancellationToken::new(),
        tasks: TaskTracker::new(),
    });
    let again = recover(&shared, &jobs_dir);
    let stop = shared.stop.clone();
    let scheduler = tokio::spawn(schedule_loop(shared.clone(), stop.clone()));
    shared.spawn_call(expire_uploads(shared.clone(), stop.clone()));
    for (id, request) in again {
        let sh = shared.clone();
        shared.spawn_call(async move {
            if request.width_from_cluster() {
                workers_back(&sh).await;
            }
            prepare(sh, id, request).await
        });
    }
    let tasks = shared.tasks.clone();
    let app = api::router(shared);
    let tls = rest_tls.is_some();
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        http::serve(listener, app, rest_tls, server_stop).await;
        Ok(())
    });
    tracing::info!(%addr, tls, auth = auth.is_on(), "master listening");
    Ok(MasterHandle {
        addr,
        auth,
        tls,
        stop,
        server,
        scheduler,
        tasks,
    })
}

/// Attempt numbers each run of a job may use: a job run again after a
/// master restart numbers its attempts from `restarts × ATTEMPTS_PER_RUN + 1`
/// (see [`crate::settings::MAX_TASK_ATTEMPTS_CAP`]).
const ATTEMPTS_PER_RUN: u32 = 1000;

/// Takes back the jobs earlier masters left in the store: ended ones as they
/// ended; the others, their partial output removed, queued to run again.
/// Returns the latter, to prepare.
fn recover(shared: &Arc<Shared>, jobs_dir: &Path) -> Vec<(String, JobRequest)> {
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
                    commit::recover(&dirs, &shared.crash)
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
                    request: request.clone(),
                    dirs,
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
    for input in std::iter::once(&request.input_path).chain(&request.more_inputs) {
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
async fn workers_back(shared: &Arc<Shared>) {
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
async fn expire_uploads(shared: Arc<Shared>, stop: CancellationToken) {
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

async fn schedule_loop(shared: Arc<Shared>, stop: CancellationToken) {
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
            (effects, sends, st.take_unsaved(), st.take_journal())
        };
        write_journal(&shared, journal);
        let moved = !effects.is_empty() || !sends.is_empty();
        apply(&shared, effects);
        save_ended(&shared, ended);
        for (d, call) in sends {
            send(&shared, d, call);
        }
        if moved {
            shared.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(tick) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Where a job script comes from.
#[derive(Debug, Clone)]
pub(crate) enum ScriptSource {
    Local(PathBuf),
    Remote(String),
    Bytes(Vec<u8>),
}

/// What a submission copies into its job folder.
#[derive(Debug, Clone, Default)]
pub(crate) struct Staging {
    pub(crate) script: Option<ScriptSource>,
    pub(crate) files: Vec<PathBuf>,
}

/// Copies a job's script and files into its folder; fixes up its kind.
fn stage(base: &Path, kind: &mut sched::JobKind, staging: Staging) -> Result<()> {
    if let (sched::JobKind::Script(path), Some(source)) = (&mut *kind, staging.script) {
        let dest = base.join("script.py");
        match source {
            ScriptSource::Local(src) => {
                std::fs::copy(&src, &dest).map_err(|e| Error::io("copy", &src, e))?;
            }
            ScriptSource::Bytes(bytes) => {
                std::fs::write(&dest, bytes).map_err(|e| Error::io("write", &dest, e))?;
            }
            ScriptSource::Remote(url) => {
                return Err(Error::setting(
                    "script_url",
                    format!("{url} was not downloaded"),
                ))
            }
        }
        *path = dest;
    }
    if let sched::JobKind::Streaming { files_dir, .. } = kind {
        if !staging.files.is_empty() {
            let dir = base.join("files");
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
            for f in &staging.files {
                let name = f.file_name().unwrap_or(f.as_os_str());
                std::fs::copy(f, dir.join(name)).map_err(|e| Error::io("copy", f, e))?;
            }
            *files_dir = Some(dir);
        }
    }
    Ok(())
}

/// Moves the uploads the job's paths lie in into its folder and points the
/// paths there (see [`uploads`]).
fn take_uploads(
    shared_dir: &Path,
    job_dir: &Path,
    request: &mut JobRequest,
    staging: &mut Staging,
) -> Result<()> {
    let mut paths: Vec<&mut PathBuf> = vec![&mut request.input_path];
    paths.extend(request.more_inputs.iter_mut());
    if let Some(ScriptSource::Local(p)) = &mut staging.script {
        paths.push(p);
    }
    paths.extend(staging.files.iter_mut());
    uploads::claim(shared_dir, job_dir, &mut paths).map_err(upload_refused)
}

/// An upload's error as the runtime's, keeping whose fault it is.
fn upload_refused(e: uploads::UploadError) -> Error {
    use crate::error::Refusal;
    use uploads::UploadError as U;
    let reason = match e {
        U::Io { op, path, source } => return Error::io(op, path, source),
        U::Bad(_) | U::Body(_) => Refusal::Invalid,
        U::Unknown(_) => Refusal::NotFound,
        U::Exists(_) => Refusal::Conflict,
        U::TooLarge(_) => Refusal::TooLarge,
    };
    Error::refused(reason, e.to_string())
}

/// Lays out a new job: a fresh id whose folder did not exist, its folders,
/// its script and files, and its entry in the store. Returns its status.
pub(crate) fn submit(
    shared: &Arc<Shared>,
    mut request: JobRequest,
    mut staging: Staging,
) -> Result<gridmr_net::rest::JobStatus> {
    let jobs_dir = shared.jobs_dir();
    let (id, base) = loop {
        let id = shared.lock().next_id();
        let base = jobs_dir.join(&id);
        match std::fs::create_dir(&base) {
            Ok(()) => break (id, base),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", &base, e)),
        }
    };
    let dirs = sched::JobDirs::under(base);
    commit::make_dirs(&dirs)?;
    take_uploads(&shared.shared_dir, &dirs.base, &mut request, &mut staging)?;
    stage(&dirs.base, &mut request.kind, staging)?;
    store::save_request(
        &dirs.base,
        &store::Submitted {
            request: request.clone(),
            restarts: 0,
        },
    )?;
    let status = {
        let mut st = shared.lock();
        let effects = st.handle(
            Event::Submitted {
                id: id.clone(),
                request: request.clone(),
                dirs,
            },
            clock::now_ms(),
        );
        let status = st.job(&id).map(view::JobView::status);
        drop(st);
        apply(shared, effects);
        status.ok_or_else(|| Error::setting("job", format!("{id} vanished as it was submitted")))?
    };
    shared.spawn_call(prepare(shared.clone(), id, request));
    shared.poke();
    Ok(status)
}

async fn prepare(shared: Arc<Shared>, id: String, request: JobRequest) {
    let (effects, live_slots) = {
        let mut st = shared.lock();
        let effects = st.handle(Event::Preparing { job: id.clone() }, clock::now_ms());
        let preparing = st
            .job(&id)
            .is_some_and(|j| j.state == sched::JobState::Preparing);
        (effects, preparing.then(|| st.workers.live_slots()))
    };
    apply(&shared, effects);
    // Gone, or no longer queued (cancelled meanwhile): nothing to prepare.
    let Some(live_slots) = live_slots else {
        return;
    };
    shared.poke();
    let typed = match &request.kind {
        sched::JobKind::Typed(name) => Some(shared.registry.get(name)),
        _ => None,
    };
    let threshold = shared.settings.threshold_bytes;
    let planned = tokio::task::spawn_blocking(move || {
        let typed = typed.transpose().map_err(|e| e.to_string())?;
        let format = typed
            .as_ref()
            .map_or(gridmr_core::InputFormat::Lines, |j| j.input_format());
        let files = list_inputs(&request.input_specs()).map_err(|e| e.to_string())?;
        let combined = typed.as_ref().is_some_and(|j| j.has_combiner());
        let mut plan = sched::plan(&files, format, combined, &request, live_slots, threshold);
        // A typed DISTRIBUTED job's planning hook runs here, before its
        // first task (in SINGLE mode the worker's engine runs it).
        if let (Some(job), sched::Mode::Distributed) = (&typed, plan.mode) {
            plan.params = job
                .plan(&gridmr_core::PlanContext {
                    files: &files,
                    partitions: plan.reduce_partitions,
                    params: &request.params,
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(plan)
    })
    .await
    .unwrap_or_else(|e| Err(format!("planning thread: {e}")));
    if let Ok(plan) = &planned {
        if plan.mode == sched::Mode::Distributed {
            let base = shared.jobs_dir().join(&id);
            let plan = plan.clone();
            let saved = tokio::task::spawn_blocking(move || store::save_plan(&base, &plan)).await;
            if let Ok(Err(e)) = saved {
                tracing::warn!(job = %id, error = %e, "cannot save the plan; a restart will plan the job again");
            }
        }
    }
    shared.step(Event::Planned {
        job: id,
        plan: planned.map_err(sched::PlanFailed),
    });
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
    .unwrap_or_else(|e| Err(e.to_string()));
    match verified {
        Ok(output) => Outcome::Succeeded {
            output,
            counters,
            status,
        },
        Err(e) => {
            tracing::warn!(job = %d.key.job_id, worker = %d.worker_id, error = %e,
                "a worker reported an output the master did not plan");
            Outcome::Failed(AttemptError::Engine(e))
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

/// Checks an output a worker reported: it must be one the master planned
/// for that attempt, a regular file (no symbolic link; a map's data file
/// too), and resolve inside the job's folder. Nothing a message names is
/// trusted further.
fn verify_output(output: &Path, expected: &[PathBuf], job_dir: &Path) -> Result<(), String> {
    if !expected.iter().any(|e| e == output) {
        return Err(format!(
            "the worker reported output {:?}, which is not this attempt's ({})",
            output.display().to_string(),
            expected
                .iter()
                .map(|e| e.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    let mut files = vec![output.to_path_buf()];
    if output.extension().is_some_and(|e| e == "index") {
        files.push(layout::MapOutput::new(output).data());
    }
    let base = job_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", job_dir.display()))?;
    for f in files {
        let meta = f
            .symlink_metadata()
            .map_err(|e| format!("reported output {}: {e}", f.display()))?;
        if !meta.file_type().is_file() {
            return Err(format!(
                "reported output {} is not a regular file",
                f.display()
            ));
        }
        let resolved = f
            .canonicalize()
            .map_err(|e| format!("reported output {}: {e}", f.display()))?;
        if !resolved.starts_with(&base) {
            return Err(format!(
                "reported output {} resolves outside the job's folder",
                f.display()
            ));
        }
    }
    Ok(())
}

fn remove_attempt_output(phase: Phase, path: &Path) {
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
                shared.spawn_file_work(move || remove_attempt_output(phase, &path));
            }
            Effect::Commit(plan) => {
                let sh = shared.clone();
                shared.spawn_to_end(async move {
                    let shared = sh;
                    let id = plan.job_id.clone();
                    let max = shared.settings.result_txt_max_bytes;
                    let crash = shared.crash.clone();
                    let result =
                        tokio::task::spawn_blocking(move || commit::commit(&plan, max, &crash))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                            .map_err(sched::CommitFailed);
                    shared.step(Event::CommitDone { job: id, result });
                });
            }
            Effect::Clean(dirs) => {
                shared.spawn_file_work(move || commit::clean(&dirs));
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
                        worker_id: worker_id.clone(),
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
                        job_id: job_id.clone(),
                        ..Default::default()
                    };
                    shared.spawn_call(async move {
                        let _ = tokio::time::timeout(timeout, client.cancel_job(req)).await;
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
                    job_id,
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
