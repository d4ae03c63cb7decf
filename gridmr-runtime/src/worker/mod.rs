//! The worker: a gRPC server that runs tasks of the jobs in its binary's
//! registry, and keeps itself registered with the master.
//!
//! At start it binds `GRPC_HOST:GRPC_PORT`, then registers with
//! `MASTER_HTTP` (retrying with backoff until the master answers) and
//! heartbeats every `HEARTBEAT_INTERVAL_MS`. When a heartbeat answers 404 the
//! master has forgotten it (it restarted), and it registers again. A worker
//! the master had declared dead for its silence is taken back by its next
//! heartbeat, without registering again.

mod attempts;
mod core;
pub(crate) mod exec;
mod failure;
mod faults;
pub(crate) mod fence;
mod grpc;
mod listen;
mod objects;
mod shuffle;
pub mod task_log;

pub use faults::Faults;
pub use task_log::AttemptLogLayer;

use self::core::WorkerCore;
use crate::error::{Error, Result};
use crate::settings::WorkerSettings;
use gridmr_core::Registry;
use gridmr_net::auth::{Auth, RequireToken, Token};
use gridmr_net::proto::worker_server::WorkerServer;
use gridmr_net::rest::{Heartbeat, RegisterRequest};
use gridmr_net::Client;
use grpc::WorkerService;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running worker.
pub struct WorkerHandle {
    id: String,
    addr: SocketAddr,
    stop: CancellationToken,
    server: JoinHandle<Result<()>>,
    membership: Option<JoinHandle<()>>,
    /// Its host-local shuffle listener, which frees its name when it ends.
    host_local: Option<JoinHandle<()>>,
    /// Its folder (`WORKER_DIR`), unlocked once it has stopped.
    shuffle: Arc<shuffle::WorkerShuffle>,
}

impl WorkerHandle {
    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address its gRPC server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token that stops the worker when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops the worker and waits for its server to close.
    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.join().await
    }

    /// Waits until the worker stops (after its stopper is cancelled, or an
    /// error).
    pub async fn join(self) -> Result<()> {
        if let Some(m) = self.membership {
            // Its last call to the master may hang on a dead link: bounded too.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, m).await;
        }
        let served = self.server.await;
        if let Some(h) = self.host_local {
            let _ = h.await;
        }
        // A worker started again in this process may take the folder over now, even while
        // a call of this one still winds down.
        self.shuffle.store.unlock();
        match served {
            Ok(r) => r,
            Err(e) => Err(Error::Serve {
                what: "gRPC",
                addr: self.addr,
                reason: e.to_string(),
            }),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The Python driver for job scripts, kept in the binary.
pub(crate) const DRIVER: &str = include_str!("driver.py");

/// Longest a stopping worker waits for calls in flight before it closes what remains (as
/// `systemctl stop` and Kubernetes' grace period expect a bounded stop).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often a worker pings an idle gRPC connection (HTTP/2 and TCP keep-alive).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long a ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The Python driver, written into a temporary folder of this worker's
/// own, which goes when the last holder drops it.
#[derive(Debug)]
pub(crate) struct DriverFile {
    pub(crate) path: std::path::PathBuf,
}

impl Drop for DriverFile {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes the driver where this worker's subprocesses can run it.
fn write_driver() -> Result<Arc<DriverFile>> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gridmr-worker-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let path = dir.join("driver.py");
    std::fs::write(&path, DRIVER).map_err(|e| Error::io("write", &path, e))?;
    Ok(Arc::new(DriverFile { path }))
}

/// The worker's own folder (`WORKER_DIR`, default `<temp>/gridmr-worker-<id>`) and the
/// shuffle machinery over it: the map outputs it keeps and serves, and the fetcher its
/// reduces use (with the cluster's token and TLS towards other workers).
fn build_shuffle(
    settings: &WorkerSettings,
    id: &gridmr_core::WorkerId,
    auth: &Auth,
) -> Result<Arc<shuffle::WorkerShuffle>> {
    // By default one folder per worker id and cluster (the share's path tells clusters
    // apart), so that a worker restarted as itself finds what it kept.
    let root = settings.work_dir.clone().unwrap_or_else(|| {
        let share = xxhash_rust::xxh3::xxh3_64(settings.shared_dir.as_os_str().as_encoded_bytes());
        std::env::temp_dir().join(format!("gridmr-worker-{id}-{:08x}", share as u32))
    });
    let store = Arc::new(
        shuffle::store::LocalStore::open(&root)
            .map_err(|e| Error::io("open WORKER_DIR", &root, e))?,
    );
    let fetcher = shuffle::fetch::Fetcher::new(
        id.clone(),
        store.clone(),
        auth.clone(),
        settings.security.grpc_client_tls()?,
        settings.shuffle_fetch_parallel,
        settings
            .shuffle_host_local
            .then(|| settings.shared_dir.clone()),
    );
    Ok(Arc::new(shuffle::WorkerShuffle {
        store,
        fetcher: Arc::new(fetcher),
        streams: Arc::new(tokio::sync::Semaphore::new(
            settings.shuffle_serve_streams.max(1) as usize,
        )),
        retain: Duration::from_secs(settings.shuffle_retain_s),
    }))
}

/// The worker's task machinery from its settings: the fence every task runs in, the Python
/// driver and warm fork server, the input roots, and the core that runs attempts.
fn build_core(
    settings: &WorkerSettings,
    registry: Registry,
    id: &gridmr_core::WorkerId,
    shared_dir: std::path::PathBuf,
    slots: u32,
    faults: Faults,
    shuffle: Arc<shuffle::WorkerShuffle>,
) -> Result<(Arc<WorkerCore>, Option<Arc<exec::fork_server::ForkServer>>)> {
    let fence = fence::Fence::new(&settings.fence)?;
    if settings.isolation == crate::settings::Isolation::Process {
        exec::child::check_binary().map_err(|e| Error::setting("TASK_ISOLATION", e.to_string()))?;
    }
    let fence = Arc::new(fence);
    let driver = write_driver()?;
    // Warm Python only where each attempt gets a cgroup (fork_server.rs).
    let fork = (settings.fork_server && fence.uses_cgroups()).then(|| {
        Arc::new(exec::fork_server::ForkServer::new(
            settings.python.clone().into(),
            driver.path.clone(),
            fence.clone(),
        ))
    });
    let runner = exec::script::Runner {
        python: settings.python.clone().into(),
        driver,
        worker_id: id.clone(),
        default_timeout: (settings.script_timeout_s > 0)
            .then(|| Duration::from_secs(settings.script_timeout_s)),
        fence,
        fork: fork.clone(),
    };
    let mut input_roots = vec![shared_dir.clone()];
    for r in &settings.input_roots {
        input_roots.push(
            r.canonicalize()
                .map_err(|e| Error::io("open input root", r, e))?,
        );
    }
    let roots = self::core::Roots {
        shared_dir,
        input_roots,
    };
    let mut core = WorkerCore::new(id.clone(), registry, roots, slots, faults, runner, shuffle);
    core.isolated = settings.isolation == crate::settings::Isolation::Process;
    core.objects = crate::objstore::ObjectStores::new(&settings.object_buckets)
        .map_err(|e| Error::setting("OBJECT_BUCKETS", e.to_string()))?;
    Ok((Arc::new(core), fork))
}

/// Serves the worker's gRPC service (every call checked for the cluster token) on `incoming`
/// until `stop`, then waits for calls in flight for at most [`SHUTDOWN_GRACE`].
fn serve(
    core: Arc<WorkerCore>,
    auth: Auth,
    incoming: impl futures_util::Stream<Item = std::io::Result<listen::Guarded>> + Send + 'static,
    addr: SocketAddr,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<()>> {
    let service = WorkerServer::with_interceptor(WorkerService { core }, RequireToken::new(auth));
    // Keep-alive pings close a connection whose peer stopped answering (a link cut, a host
    // gone): its calls end instead of holding a slot and a descriptor until TCP gives up.
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE_INTERVAL));
    let server_stop = stop;
    tokio::spawn(async move {
        let serve = builder
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, server_stop.clone().cancelled_owned());
        tokio::pin!(serve);
        // A graceful stop waits for calls in flight, but no longer than SHUTDOWN_GRACE: a
        // half-open connection (its peer gone without a word) must not hold a stopping worker
        // until TCP gives up, minutes later. What remains is closed.
        let deadline = async {
            server_stop.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            served = &mut serve => served.map_err(|e| Error::Serve {
                what: "gRPC",
                addr,
                reason: e.to_string(),
            }),
            () = deadline => {
                tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(),
                    "gRPC connections still open after the shutdown grace; closing them");
                Ok(())
            }
        }
    })
}

/// Starts a worker: binds its gRPC server, then (if `MASTER_HTTP` is set)
/// registers with the master and heartbeats in the background.
pub async fn start(settings: WorkerSettings, registry: Registry) -> Result<WorkerHandle> {
    let (listener, addr) = crate::bind::listen(&settings.grpc_host, settings.grpc_port).await?;
    let shared_dir = settings
        .shared_dir
        .canonicalize()
        .map_err(|e| Error::io("open shared folder", &settings.shared_dir, e))?;
    let id = settings
        .worker_id
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("{}-{}", hostname(), addr.port()));
    let id =
        gridmr_core::WorkerId::new(id).map_err(|e| Error::setting("WORKER_ID", e.to_string()))?;
    let slots = settings
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
        .max(1);
    let faults = Faults::parse(&settings.inject_fail, settings.inject_delay_ms)?;
    let (auth, token_pending) = settings.security.worker_auth(&shared_dir)?;
    let grpc_tls = settings.security.grpc_server_tls()?;
    let shuffle = build_shuffle(&settings, &id, &auth)?;
    let (core, fork) = build_core(&settings, registry, &id, shared_dir, slots, faults, shuffle)?;
    let cgroups = core.runner.fence.uses_cgroups();
    let stop = CancellationToken::new();
    if let Some(fork) = fork {
        tokio::spawn(warm_up_when_idle(fork, core.clone(), stop.clone()));
    }
    tokio::spawn(core.shuffle.clone().sweep_until(stop.clone()));
    let shuffle = core.shuffle.clone();
    let host_local = serve_host_local(&settings, &id, &shuffle, &auth, &stop);

    let tls = grpc_tls.is_some();
    let incoming = listen::incoming(
        listener,
        grpc_tls.map(tokio_rustls::TlsAcceptor::from),
        stop.clone(),
    );
    let server = serve(core.clone(), auth.clone(), incoming, addr, stop.clone());
    tracing::info!(worker = %id, %addr, slots, tls, auth = auth.is_on(), task_cgroups = cgroups, "worker listening");

    let membership =
        settings.master_http.clone().map(|master| {
            let advertise = settings.advertise_host.clone().unwrap_or_else(|| {
                match settings.grpc_host.as_str() {
                    "0.0.0.0" | "::" | "[::]" => hostname(),
                    host => host.to_owned(),
                }
            });
            let request = RegisterRequest {
                worker_id: id.to_string(),
                address: format!("{advertise}:{}", addr.port()),
                slots: Some(slots),
                heartbeat_ms: Some(settings.heartbeat_ms.max(10)),
            };
            let interval = Duration::from_millis(settings.heartbeat_ms.max(10));
            tokio::spawn(keep_registered(
                Membership {
                    master,
                    security: settings.security.clone(),
                    auth,
                    token_pending,
                },
                request,
                interval,
                core,
                stop.clone(),
            ))
        });

    Ok(WorkerHandle {
        id: id.to_string(),
        addr,
        stop,
        server,
        membership,
        host_local,
        shuffle,
    })
}

/// Starts answering the host-local reads of reducers on this host
/// (`SHUFFLE_HOST_LOCAL`), unless another process holds this worker's name.
fn serve_host_local(
    settings: &WorkerSettings,
    id: &gridmr_core::WorkerId,
    shuffle: &Arc<shuffle::WorkerShuffle>,
    auth: &Auth,
    stop: &CancellationToken,
) -> Option<JoinHandle<()>> {
    if !settings.shuffle_host_local {
        return None;
    }
    let name = shuffle::host::socket_name(id, &settings.shared_dir);
    match shuffle::host::HostListener::bind(&name) {
        Ok(listener) => Some(tokio::spawn(listener.serve_until(
            shuffle.store.clone(),
            auth.clone(),
            stop.clone(),
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "host-local shuffle reads of this worker's outputs are off: its socket name is taken");
            None
        }
    }
}

/// How a worker reaches its master.
struct Membership {
    master: String,
    security: crate::security::Security,
    /// The worker's own auth; its token cell is filled here once the master
    /// has written the shared token file.
    auth: Auth,
    /// The shared token file to wait for, when no token was known at start.
    token_pending: Option<std::path::PathBuf>,
}

impl Membership {
    /// The REST client, once the token is known (`None`: not yet).
    fn client(&self) -> Result<Option<Client>> {
        if let (Some(path), Auth::Token(cell)) = (&self.token_pending, &self.auth) {
            if cell.get().is_none() {
                if !path.exists() {
                    return Ok(None);
                }
                cell.set(Token::read_file(path)?);
                tracing::info!("found the cluster token on the share");
            }
        }
        self.security
            .rest_client(&self.master, self.auth.current())
            .map(Some)
    }
}

/// How long a worker must have run no task before it starts its Python fork server.
const WARM_UP_IDLE: Duration = Duration::from_millis(500);

/// Starts the fork server once the worker has run no task for [`WARM_UP_IDLE`], so that a
/// worker given typed work as soon as it joins does not share its cores with an interpreter's
/// start-up (docs/performance.md: 16% of a short cluster job's CPU samples). A script task
/// that comes first starts the server itself; a failure here is retried (and reported) by it.
async fn warm_up_when_idle(
    fork: Arc<exec::fork_server::ForkServer>,
    core: Arc<WorkerCore>,
    stop: CancellationToken,
) {
    if !idle_for(&core.running, WARM_UP_IDLE, &stop).await {
        return;
    }
    let started = tokio::task::spawn_blocking(move || fork.warm_up()).await;
    if let Ok(Err(e)) = started {
        tracing::debug!(error = %e, "the Python fork server did not start");
    }
}

/// Waits until `running` has read 0 at every look for `idle` (looking five times in that span),
/// and returns true; or returns false as soon as `stop` is cancelled.
async fn idle_for(running: &AtomicU32, idle: Duration, stop: &CancellationToken) -> bool {
    let mut idle_since = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(idle / 5) => {}
        }
        if running.load(Ordering::Relaxed) > 0 {
            idle_since = tokio::time::Instant::now();
        } else if idle_since.elapsed() >= idle {
            return true;
        }
    }
}

/// Waits for the token (a worker started before its master), then
/// registers (with backoff until the master answers) and heartbeats; a 404
/// heartbeat means "register again".
async fn keep_registered(
    membership: Membership,
    request: RegisterRequest,
    interval: Duration,
    core: Arc<WorkerCore>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut complained = false;
    let master = loop {
        match membership.client() {
            Ok(Some(c)) => break c,
            Ok(None) if !complained => {
                tracing::warn!("waiting for the master to write the cluster token on the share");
                complained = true;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the master");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    };
    let mut registered = false;
    let mut backoff = Duration::from_millis(50);
    let mut complained = false;
    loop {
        if !registered {
            match master.register(&request).await {
                Ok(answer) => {
                    registered = true;
                    complained = false;
                    backoff = Duration::from_millis(50);
                    tracing::info!(master = master.base(), workers = answer.count, "registered");
                }
                Err(e) => {
                    if !complained {
                        tracing::warn!(master = master.base(), error = %e, "cannot register yet; retrying");
                        complained = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        let beat = Heartbeat {
            running: core.running.load(Ordering::Relaxed),
            address: Some(request.address.clone()),
            progress: core.progress(),
            host: crate::sys::host_stats(core.shuffle.store.root()),
        };
        match master.heartbeat(core.id.as_str(), &beat).await {
            Ok(()) => complained = false,
            Err(gridmr_net::Error::Http { status: 404, .. }) => {
                tracing::warn!("the master does not know this worker; registering again");
                registered = false;
            }
            Err(gridmr_net::Error::Http {
                status: 409,
                message,
                ..
            }) => {
                tracing::warn!(%message, "the master has this id at another address; registering again");
                registered = false;
            }
            Err(e) => {
                if !complained {
                    tracing::warn!(error = %e, "heartbeat failed");
                    complained = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `task` as paused time moves on by `step`, up to `limit`; the time it took.
    async fn finishes_within(
        task: &mut JoinHandle<bool>,
        step: Duration,
        limit: Duration,
    ) -> Option<Duration> {
        let start = tokio::time::Instant::now();
        while start.elapsed() <= limit {
            if task.is_finished() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(step).await;
        }
        None
    }

    /// Spawns `idle_for` over shared `running` and `stop`.
    fn spawn_idle(
        running: &Arc<AtomicU32>,
        idle: Duration,
        stop: &CancellationToken,
    ) -> JoinHandle<bool> {
        let (r, s) = (running.clone(), stop.clone());
        tokio::spawn(async move { idle_for(&r, idle, &s).await })
    }

    /// Polls `task` until it answers true, in at least `idle` and at most three spans.
    async fn warms_after(task: &mut JoinHandle<bool>, idle: Duration) {
        let took = finishes_within(task, idle / 50, idle * 3)
            .await
            .expect("warmed up");
        assert!(took >= idle, "{took:?}");
        assert!(task.await.expect("joined"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_warms_up_after_the_idle_span_and_a_busy_one_waits() {
        let idle = Duration::from_millis(500);
        let running = Arc::new(AtomicU32::new(0));
        let stop = CancellationToken::new();

        // Idle from the start: true once the span has passed, not before.
        warms_after(&mut spawn_idle(&running, idle, &stop), idle).await;

        // Busy: no warm-up however long the task runs; idle again, one span later.
        running.store(1, Ordering::Relaxed);
        let mut task = spawn_idle(&running, idle, &stop);
        assert_eq!(finishes_within(&mut task, idle / 50, idle * 4).await, None);
        running.store(0, Ordering::Relaxed);
        warms_after(&mut task, idle).await;

        // Stopped: false at once, without waiting out the span.
        running.store(1, Ordering::Relaxed);
        let mut task = spawn_idle(&running, idle, &stop);
        stop.cancel();
        let took = finishes_within(&mut task, idle / 50, idle)
            .await
            .expect("stopped");
        assert!(took < idle / 5, "{took:?}");
        assert!(!task.await.expect("joined"));
    }
}
