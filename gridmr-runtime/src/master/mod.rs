//! The master: the REST API for clients, the scheduler that hands tasks to
//! workers over gRPC, and the job store.
//!
//! One lock guards the scheduler (`gridmr_scheduler::Scheduler`, a pure
//! state machine: events in with the time, effects out); nothing slow
//! happens under it, and every event goes through `Shared::step`. Task calls run as their own tokio tasks; file work
//! (listing inputs, committing outputs, removing files) runs on the
//! blocking pool. The scheduler wakes on every event (a submit, an attempt's
//! answer, a registration) and on a short tick that checks heartbeats.

mod api;
mod calls;
mod clock;
mod commit;
mod confined;
mod driver;
mod faults;
mod http;
mod metrics;
mod pool;
mod recovery;
mod reported;
pub mod sim;
mod status;
mod store;
mod submit;
mod ui;
mod uploads;
mod view;

use crate::error::{Error, Result};
use crate::settings::MasterSettings;
use calls::Call;
pub(crate) use driver::apply;
use gridmr_core::input::{list_inputs, InputFile};
use gridmr_core::layout;
use gridmr_core::Registry;
use gridmr_scheduler as sched;
use gridmr_scheduler::PlanError;
use gridmr_scheduler::{
    AttemptError, Dispatch, Effect, Event, JobRequest, LossCause, Outcome, Phase, Scheduler,
};
use metrics::Metrics;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
pub(crate) use submit::{submit, ScriptSource, Staging};
use tokio::sync::Notify;
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
    /// The buckets jobs may read and write (`OBJECT_BUCKETS`), and their clients.
    pub(crate) objects: crate::objstore::ObjectStores,
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
    /// Each job's status, published after every step.
    pub(crate) statuses: status::StatusBoard,
    /// Each worker's host, as its last heartbeat reported it (shown, never scheduled on).
    pub(crate) hosts: Mutex<std::collections::HashMap<String, gridmr_net::rest::HostStats>>,
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

    /// Publishes the jobs the last step changed (waking their long-polls)
    /// and wakes the scheduler.
    pub(crate) fn poke(&self) {
        self.statuses.publish(&mut self.lock());
        self.wake.notify_one();
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
    let (listener, addr) = crate::bind::listen(&settings.host, settings.rest_port()).await?;
    let objects = crate::objstore::ObjectStores::new(&settings.object_buckets)
        .map_err(|e| Error::setting("OBJECT_BUCKETS", e.to_string()))?;
    let settings = Arc::new(settings);
    let metrics = Arc::new(Metrics::new());
    let shared = Arc::new(Shared {
        state: Mutex::new(Scheduler::new(
            settings.scheduler_config(),
            recovery::first_free_seq(&jobs_dir),
        )),
        settings,
        auth: auth.clone(),
        grpc_tls,
        shared_dir,
        objects,
        registry,
        metrics,
        pool: pool::WorkerPool::default(),
        ui: ui::session::Sessions::new(rest_tls.is_some()),
        crash: faults::CrashPoints::from_env(),
        wake: Notify::new(),
        statuses: status::StatusBoard::default(),
        hosts: Mutex::default(),
        stop: CancellationToken::new(),
        tasks: TaskTracker::new(),
    });
    let again = recovery::recover(&shared, &jobs_dir);
    shared.statuses.publish(&mut shared.lock());
    let stop = shared.stop.clone();
    let scheduler = tokio::spawn(driver::schedule_loop(shared.clone(), stop.clone()));
    shared.spawn_call(driver::expire_uploads(shared.clone(), stop.clone()));
    for (id, request) in again {
        let sh = shared.clone();
        shared.spawn_call(async move {
            if request.width_from_cluster() {
                recovery::workers_back(&sh).await;
            }
            submit::prepare(sh, id, request, None).await
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
