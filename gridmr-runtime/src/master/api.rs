//! The REST API (axum). Every error is a 4xx or 5xx answer with a JSON body
//! `{"error": "…"}`; no request can stop the master.

use super::jobs::JobKind;
use super::state::{Effect, JobRequest};
use super::workers::{unix_now, WorkerEntry};
use super::{apply, submit, Shared};
use super::{ScriptSource, Staging};
use crate::paths::{check_inside, parse_url, Location};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridmr_core::shuffle::{Compression, ShuffleSettings};
use gridmr_net::proto::worker_client::WorkerClient;
use gridmr_net::proto::HeartbeatReq;
use gridmr_net::rest::{
    DeleteAnswer, ErrorBody, Health, Heartbeat, JobList, JobListing, JobMetricsList, JobResult,
    JobState, JobStatus, RegisterAnswer, RegisterRequest, SubmitRequest, TaskAttempts, WorkerList,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;

type Shr = State<Arc<Shared>>;

/// An error answer.
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                status: None,
            },
        }
    }

    fn bad(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    fn unknown_job(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("unknown job {id:?}"))
    }

    fn with_state(mut self, state: JobState) -> Self {
        self.body.status = Some(state);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/jobs", post(submit_job).get(list_jobs))
        .route("/jobs/{id}", get(job_status).delete(delete_job))
        .route("/jobs/{id}/ls", get(job_ls))
        .route("/jobs/{id}/result", get(job_result))
        .route("/jobs/{id}/tasks", get(job_tasks))
        .route("/workers", get(list_workers))
        .route("/workers/register", post(register_worker))
        .route("/workers/{id}/heartbeat", post(heartbeat))
        .route("/metrics", get(prometheus))
        .route("/metrics/jobs", get(job_metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .with_state(shared)
}

fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> ApiResult<T> {
    match raw {
        None => Ok(T::default()),
        Some(q) => serde_urlencoded::from_str(&q)
            .map_err(|e| ApiError::bad(format!("bad query string: {e}"))),
    }
}

async fn health(State(sh): Shr) -> Json<Health> {
    let workers = sh.lock().workers.live().count();
    Json(Health {
        ok: true,
        shared_dir: sh.shared_dir.display().to_string(),
        threshold: sh.settings.threshold_bytes,
        workers,
        jobs: sh.registry.names().map(str::to_owned).collect(),
    })
}

fn check_count(name: &str, value: Option<u32>, max: u32) -> ApiResult<()> {
    match value {
        Some(0) => Err(ApiError::bad(format!("{name} must be at least 1"))),
        Some(n) if n > max => Err(ApiError::bad(format!(
            "{name} = {n} is more than MAX_PARTITIONS = {max}"
        ))),
        _ => Ok(()),
    }
}

/// Resolves a local path given by a client: inside the shared folder (or
/// an `INPUT_ROOTS` folder), without `..`.
fn local_path(sh: &Shared, field: &str, url: &str) -> ApiResult<std::path::PathBuf> {
    let path = match parse_url(url) {
        Ok(Location::Local(p)) => p,
        Ok(Location::Remote(_)) => {
            return Err(ApiError::bad(format!(
                "{field} must be on the shared folder (nfs:///, file:/// or an absolute path)"
            )))
        }
        Err(e) => return Err(ApiError::bad(format!("{field} {e}"))),
    };
    let mut roots = vec![sh.shared_dir.clone()];
    roots.extend(sh.settings.input_roots.iter().cloned());
    check_inside(&path, &roots).map_err(|e| ApiError::bad(format!("{field}: {e}")))
}

/// Checks a submission and turns it into a [`JobRequest`] and what must be
/// copied into the job's folder.
fn check_submit(sh: &Shared, req: SubmitRequest) -> ApiResult<(JobRequest, Staging)> {
    let named = [
        req.job.is_some(),
        req.script_url.is_some(),
        req.mapper.is_some(),
    ];
    if named.iter().filter(|x| **x).count() > 1 {
        return Err(ApiError::bad(
            "give one of `job`, `script_url` or `mapper`, not both",
        ));
    }
    if req.mapper.is_none()
        && (req.reducer.is_some() || req.combiner.is_some() || req.files.is_some())
    {
        return Err(ApiError::bad(
            "`reducer`, `combiner` and `files` belong to streaming jobs, which need a `mapper`",
        ));
    }
    let mut staging = Staging::default();
    let mut map_only = false;
    let kind = if let Some(name) = &req.job {
        if sh.registry.get(name).is_err() {
            let known: Vec<&str> = sh.registry.names().collect();
            return Err(ApiError::bad(format!(
                "unknown job {name:?}; this cluster runs: {}",
                known.join(", ")
            )));
        }
        JobKind::Typed(name.clone())
    } else if let Some(url) = &req.script_url {
        staging.script = Some(match parse_url(url) {
            Ok(Location::Remote(u)) => ScriptSource::Remote(u),
            _ => ScriptSource::Local(local_path(sh, "script_url", url)?),
        });
        JobKind::Script(std::path::PathBuf::new())
    } else if let Some(mapper) = &req.mapper {
        let reducer = req.reducer.clone().unwrap_or_default();
        if mapper.trim().is_empty() {
            return Err(ApiError::bad("mapper is empty"));
        }
        // No reducer, or zero reduce tasks: a map-only job, as Hadoop's
        // `-numReduceTasks 0`.
        map_only = reducer.trim().is_empty() || req.reduce_partitions == Some(0);
        for f in req.files.iter().flatten() {
            let p = local_path(sh, "files", f)?;
            if !p.is_file() {
                return Err(ApiError::bad(format!(
                    "files: {} is not a file",
                    p.display()
                )));
            }
            staging.files.push(p);
        }
        JobKind::Streaming {
            mapper: mapper.clone(),
            reducer,
            combiner: req.combiner.clone().unwrap_or_default(),
            files_dir: None,
        }
    } else {
        return Err(ApiError::bad(
            "missing field: `job` (a typed job's name), `script_url` (a job script) or `mapper` (a streaming job)",
        ));
    };
    let input_path = local_path(sh, "input_url", &req.input_url)?;
    let max = sh.settings.max_partitions;
    check_count("partitions", req.partitions, max)?;
    check_count("map_splits", req.map_splits, max)?;
    if !map_only {
        check_count("reduce_partitions", req.reduce_partitions, max)?;
    }
    let mut shuffle = ShuffleSettings::default();
    if let Some(b) = req.sort_buffer_bytes {
        if !(64 << 10..=16 << 30).contains(&b) {
            return Err(ApiError::bad(
                "sort_buffer_bytes must be between 64 KiB and 16 GiB",
            ));
        }
        shuffle.sort_buffer_bytes = b;
    }
    if req.compress_shuffle == Some(true) {
        shuffle.compression = Compression::Lz4;
    }
    let request = JobRequest {
        kind,
        input_path,
        partitions: req.partitions,
        map_splits: req.map_splits,
        reduce_partitions: req.reduce_partitions,
        force_distributed: req.force_distributed.unwrap_or(false),
        shuffle,
        timeout_s: req.timeout_s.unwrap_or(0),
        map_only,
    };
    Ok((request, staging))
}

/// Largest job script `script_url` may download.
const MAX_SCRIPT_BYTES: usize = 4 << 20;

async fn download(url: &str) -> ApiResult<Vec<u8>> {
    let bad = |e: String| ApiError::bad(format!("script_url {url}: {e}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| bad(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(bad(format!("HTTP {}", resp.status())));
    }
    let bytes = resp.bytes().await.map_err(|e| bad(e.to_string()))?;
    if bytes.len() > MAX_SCRIPT_BYTES {
        return Err(bad(format!("larger than {MAX_SCRIPT_BYTES} bytes")));
    }
    Ok(bytes.to_vec())
}

async fn submit_job(State(sh): Shr, body: Bytes) -> ApiResult<Json<JobStatus>> {
    let req: SubmitRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid job request: {e}")))?;
    let (checked, mut staging) = check_submit(&sh, req)?;
    if let Some(ScriptSource::Remote(url)) = &staging.script {
        staging.script = Some(ScriptSource::Bytes(download(url).await?));
    }
    let status = submit(&sh, checked, staging)?;
    tracing::info!(job = %status.job_id, name = %status.job, input = %status.input_path, "job submitted");
    Ok(Json(status))
}

async fn list_jobs(State(sh): Shr) -> Json<JobList> {
    Json(JobList {
        jobs: sh.lock().jobs().map(|j| j.summary()).collect(),
    })
}

#[derive(Default, Deserialize)]
struct StatusQuery {
    wait_ms: Option<u64>,
}

async fn job_status(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobStatus>> {
    let q: StatusQuery = query(q)?;
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0).min(60_000));
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = sh.subscribe();
    loop {
        let status = sh
            .lock()
            .job(&id)
            .map(|j| j.status())
            .ok_or_else(|| ApiError::unknown_job(&id))?;
        if status.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(status));
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(Json(status)),
        }
    }
}

#[derive(Default, Deserialize)]
struct DeleteQuery {
    purge: Option<bool>,
}

async fn delete_job(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<DeleteAnswer>> {
    let q: DeleteQuery = query(q)?;
    let (cancelled, dirs, effects) = sh
        .lock()
        .delete(&id)
        .ok_or_else(|| ApiError::unknown_job(&id))?;
    apply(&sh, effects);
    sh.poke();
    let purge = q.purge.unwrap_or(false);
    let base = dirs.base.clone();
    if !purge {
        // Its records go: a deleted job must not come back at a restart.
        let _ = tokio::task::spawn_blocking(move || super::store::forget(&base)).await;
    } else {
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&base))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("job deleted, but removing {}: {e}", dirs.base.display()),
                )
            })?;
    }
    tracing::info!(job = %id, cancelled, purge, "job deleted");
    Ok(Json(DeleteAnswer {
        job_id: id,
        deleted: true,
        cancelled,
        purged: purge,
    }))
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn job_ls(State(sh): Shr, Path(id): Path<String>) -> ApiResult<Json<JobListing>> {
    let job = sh
        .lock()
        .job(&id)
        .cloned()
        .ok_or_else(|| ApiError::unknown_job(&id))?;
    let listing = tokio::task::spawn_blocking(move || JobListing {
        base: job.dirs.base.display().to_string(),
        script: String::new(),
        input: job.input_path.display().to_string(),
        chunks: job
            .splits
            .iter()
            .map(|s| format!("{}:{}+{}", s.path.display(), s.start, s.len()))
            .collect(),
        shuffle: names(&job.dirs.shuffle),
        out: names(&job.dirs.out),
        status: job.state,
        mode: job.mode,
        message: job.message.clone(),
        partitions: job.partitions_asked,
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(listing))
}

#[derive(Default, Deserialize)]
struct ResultQuery {
    format: Option<String>,
}

async fn job_result(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ResultQuery = query(q)?;
    let (state, file, error) = {
        let st = sh.lock();
        let job = st.job(&id).ok_or_else(|| ApiError::unknown_job(&id))?;
        (job.state, job.result_file.clone(), job.error.clone())
    };
    let file = match (state, file) {
        (JobState::Succeeded, Some(f)) => f,
        (JobState::Failed, _) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("job failed: {}", error.unwrap_or_default()),
            )
            .with_state(state))
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("job is {}; the result is not ready", state.as_str()),
            )
            .with_state(state))
        }
    };
    let size = tokio::fs::metadata(&file)
        .await
        .map_err(|e| ApiError::new(StatusCode::GONE, format!("{}: {e}", file.display())))?
        .len();
    let limit = sh.settings.result_inline_max_bytes;
    let as_text = match q.format.as_deref() {
        Some("text") => true,
        Some("json") if size > limit => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the result is {size} bytes, more than RESULT_INLINE_MAX_BYTES = {limit}; ask for ?format=text"),
            ))
        }
        Some("json") | None => size > limit,
        Some(other) => return Err(ApiError::bad(format!("format must be json or text, not {other:?}"))),
    };
    if as_text {
        let f = tokio::fs::File::open(&file)
            .await
            .map_err(|e| ApiError::new(StatusCode::GONE, format!("{}: {e}", file.display())))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 << 10);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "text/plain; charset=utf-8"
                .parse()
                .map_err(|_| ApiError::bad("header"))?,
        );
        headers.insert(header::CONTENT_LENGTH, size.into());
        return Ok((headers, Body::from_stream(stream)).into_response());
    }
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::new(StatusCode::GONE, format!("{}: {e}", file.display())))?;
    Ok(Json(JobResult {
        job_id: id,
        status: state,
        result: String::from_utf8_lossy(&bytes).into_owned(),
    })
    .into_response())
}

async fn job_tasks(State(sh): Shr, Path(id): Path<String>) -> ApiResult<Json<TaskAttempts>> {
    let st = sh.lock();
    let job = st.job(&id).ok_or_else(|| ApiError::unknown_job(&id))?;
    Ok(Json(TaskAttempts {
        job_id: id,
        attempts: job.attempts.clone(),
    }))
}

async fn list_workers(State(sh): Shr) -> Json<WorkerList> {
    let st = sh.lock();
    Json(WorkerList {
        workers: st
            .workers
            .list
            .iter()
            .map(|w| (w.id.clone(), w.info()))
            .collect(),
        ring: st.workers.ring(),
    })
}

/// Reads a registration from the query string, a form body or a JSON body.
fn registration(
    q: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<RegisterRequest> {
    let bad = |e: String| ApiError::bad(format!("invalid registration: {e}"));
    if let Some(q) = q.filter(|q| q.contains("worker_id")) {
        return serde_urlencoded::from_str(&q).map_err(|e| bad(e.to_string()));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if body.is_empty() {
        return Err(bad(
            "give worker_id and address (query parameters, a form or JSON)".into(),
        ));
    }
    if json {
        serde_json::from_slice(body).map_err(|e| bad(e.to_string()))
    } else {
        serde_urlencoded::from_bytes(body).map_err(|e| bad(e.to_string()))
    }
}

fn check_address(address: &str) -> ApiResult<()> {
    let ok = address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "address {address:?} is not host:port"
        )))
    }
}

async fn register_worker(
    State(sh): Shr,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RegisterAnswer>> {
    let req = registration(q, &headers, &body)?;
    let id = req.worker_id.trim();
    if id.is_empty() || id.len() > 128 || id.contains(['/', ' ']) {
        return Err(ApiError::bad(format!(
            "worker_id {id:?} is not a plain name"
        )));
    }
    check_address(&req.address)?;
    let url = format!("http://{}", req.address);
    let control = Duration::from_secs(sh.settings.grpc_timeout_s.clamp(1, 5));
    let probe = Endpoint::from_shared(url.clone())
        .map_err(|e| ApiError::bad(format!("address {:?}: {e}", req.address)))?
        .connect_timeout(control)
        .timeout(control);
    let unreachable = |e: String| {
        ApiError::bad(format!(
            "worker address {} is unreachable: {e}",
            req.address
        ))
    };
    let channel = probe
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let hello = WorkerClient::new(channel)
        .heartbeat(HeartbeatReq {
            worker_id: id.to_owned(),
        })
        .await
        .map_err(|e| unreachable(e.message().to_owned()))?
        .into_inner();
    // A GridMR worker names itself; the original's workers leave it empty.
    if !hello.worker_id.is_empty() && hello.worker_id != id {
        return Err(ApiError::bad(format!(
            "{} answers as worker {:?}, not {id:?}",
            req.address, hello.worker_id
        )));
    }
    // Slots: as registered, else as the worker reports, else 1.
    let slots = req
        .slots
        .or((hello.slots > 0).then_some(hello.slots))
        .unwrap_or(1)
        .clamp(1, 1024);
    // The task channel: no per-call deadline (tasks run long); HTTP/2
    // keep-alives notice a peer that vanished without closing the connection.
    let tasks = Endpoint::from_shared(url)
        .map_err(|e| ApiError::bad(e.to_string()))?
        .connect_timeout(control)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy();
    let entry = WorkerEntry {
        id: id.to_owned(),
        address: req.address.clone(),
        slots,
        running: 0,
        alive: true,
        last_seen: Instant::now(),
        last_seen_unix: unix_now(),
        client: WorkerClient::new(tasks),
    };
    let (effects, count, ring): (Vec<Effect>, usize, Vec<String>) = {
        let mut st = sh.lock();
        let effects = st.register(entry);
        (effects, st.workers.live().count(), st.workers.ring())
    };
    apply(&sh, effects);
    sh.poke();
    tracing::info!(worker = %id, address = %req.address, slots, "worker registered");
    Ok(Json(RegisterAnswer {
        ok: true,
        count,
        ring,
    }))
}

async fn heartbeat(
    State(sh): Shr,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    if !body.is_empty() {
        serde_json::from_slice::<Heartbeat>(&body)
            .map_err(|e| ApiError::bad(format!("invalid heartbeat: {e}")))?;
    }
    let (known, revived) = {
        let mut st = sh.lock();
        let was_alive = st.workers.live().any(|w| w.id == id);
        (st.heartbeat(&id), !was_alive)
    };
    if !known {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown worker {id:?}; register first"),
        ));
    }
    if revived {
        sh.poke();
    }
    Ok(Json(serde_json::json!({"ok": true})))
}

async fn prometheus(State(sh): Shr) -> Response {
    let text = {
        let st = sh.lock();
        sh.metrics.render(
            &st.jobs_by_state(),
            st.workers.live().count(),
            st.workers.list.len(),
        )
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn job_metrics(State(sh): Shr) -> Json<JobMetricsList> {
    Json(JobMetricsList {
        jobs: sh.lock().jobs().map(|j| j.metrics()).collect(),
    })
}
