//! The REST API (axum). Every error is a 4xx or 5xx answer with a JSON body
//! `{"error": "…"}`; no request can stop the master.

use super::view::{self, JobView};
use super::{apply, submit, Shared};
use super::{ScriptSource, Staging};
use crate::paths::{check_inside, parse_url, Location};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridmr_core::shuffle::{Compression, ShuffleSettings};
use gridmr_net::auth::worker_rpc;
use gridmr_net::proto::HeartbeatReq;
use gridmr_net::rest::{
    CancelAnswer, DeleteAnswer, ErrorBody, Health, Heartbeat, JobList, JobListing, JobMetricsList,
    JobResult, JobState, JobStatus, RegisterAnswer, RegisterRequest, SubmitRequest, TaskAttempts,
    TaskLogs, UploadAnswer, UploadedFile, WorkerList,
};
use gridmr_scheduler::{Effect, Event, JobKind, JobRequest, WorkerEntry};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

type Shr = State<Arc<Shared>>;

/// An error answer.
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> Self {
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

/// The runtime's errors by variant: what the caller asked for wrongly is a 4xx, what failed
/// on the master's side a 5xx (a full disk 507).
impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> Self {
        use crate::error::{Error as E, Refusal};
        use gridmr_core::Blame;
        let status = match &e {
            E::Refused { reason, .. } => match reason {
                Refusal::Invalid => StatusCode::BAD_REQUEST,
                Refusal::NotFound => StatusCode::NOT_FOUND,
                Refusal::Conflict => StatusCode::CONFLICT,
                Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            },
            E::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            E::Core(core) => match core.blame() {
                Blame::User => StatusCode::BAD_REQUEST,
                Blame::Cancelled => StatusCode::CONFLICT,
                Blame::Engine | Blame::InputLost(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            E::Net(_) => StatusCode::BAD_GATEWAY,
            E::JobNotSucceeded { .. } => StatusCode::CONFLICT,
            E::Io { .. } | E::Setting { .. } | E::Bind { .. } | E::Serve { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Largest request body any endpoint reads (a submission or a
/// registration is a few hundred bytes).
pub(crate) const MAX_BODY_BYTES: usize = 256 << 10;
/// Longest streaming command (`mapper`, `reducer`, `combiner`).
pub(crate) const MAX_COMMAND_BYTES: usize = 8 << 10;
/// Longest path or URL in a request.
pub(crate) const MAX_PATH_BYTES: usize = 4 << 10;
/// Most `files` a streaming job may ship.
pub(crate) const MAX_FILES: usize = 256;
/// Most jobs one `GET /jobs` answer lists.
pub(crate) const MAX_PAGE: usize = 1000;
/// Most inputs a job may read.
pub(crate) const MAX_INPUTS: usize = 64;
/// Most parameters a job may be submitted with.
pub(crate) const MAX_PARAMS: usize = 256;
/// Longest parameter name.
pub(crate) const MAX_PARAM_NAME: usize = 128;

/// Checks a job's parameters: at most [`MAX_PARAMS`], each name of at most
/// [`MAX_PARAM_NAME`] letters, digits, `.`, `_` or `-` (so that it is also
/// a plain environment variable suffix), each value free text within the
/// request's size.
fn check_params(
    params: Option<std::collections::BTreeMap<String, String>>,
) -> ApiResult<gridmr_core::Params> {
    let params = params.unwrap_or_default();
    if params.len() > MAX_PARAMS {
        return Err(ApiError::bad(format!(
            "{} params; at most {MAX_PARAMS} are allowed",
            params.len()
        )));
    }
    for (name, value) in &params {
        let plain = !name.is_empty()
            && name.len() <= MAX_PARAM_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(ApiError::bad(format!(
                "param name {:?}: use 1 to {MAX_PARAM_NAME} letters, digits, `.`, `_` or `-`",
                name.chars().take(64).collect::<String>()
            )));
        }
        if value.contains('\0') {
            return Err(ApiError::bad(format!("param {name}: a NUL byte")));
        }
    }
    Ok(params.into())
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]; more is a 413.
async fn read_body(body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            use std::error::Error as _;
            let mut source = e.source();
            let mut too_big = false;
            while let Some(s) = source {
                too_big |= s.is::<http_body_util::LengthLimitError>();
                source = s.source();
            }
            if too_big {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::bad(format!("reading the request body: {e}"))
            }
        })
}

/// Every endpoint but `GET /health` needs `Authorization: Bearer <token>`
/// (unless `GRIDMR_AUTH=off`).
async fn require_token(State(sh): Shr, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !sh.auth.is_on() || path == "/health" || super::ui::is_public(req.method(), path) {
        return next.run(req).await;
    }
    let given = req.headers().get(header::AUTHORIZATION);
    if has_token(&sh, req.headers()) || super::ui::has_session(&sh, &req) {
        return next.run(req).await;
    }
    // A browser without a session signs in first.
    if given.is_none() && req.method() == axum::http::Method::GET && path.starts_with("/ui") {
        return super::ui::to_login();
    }
    let why = if given.is_none() {
        "missing `Authorization: Bearer <cluster token>`; the master keeps the token in \
         <SHARED_DIR>/.gridmr/cluster.token (or set GRIDMR_TOKEN / GRIDMR_TOKEN_FILE)"
    } else {
        "wrong cluster token"
    };
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, why).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"gridmr\""),
    );
    resp
}

/// Whether a request carries the cluster token (always true under
/// `GRIDMR_AUTH=off`).
fn has_token(sh: &Shared, headers: &axum::http::HeaderMap) -> bool {
    if !sh.auth.is_on() {
        return true;
    }
    match (sh.auth.current(), headers.get(header::AUTHORIZATION)) {
        (Some(token), Some(v)) => token.matches_bearer(v.as_bytes()),
        _ => false,
    }
}

/// Turns any error answer that is not JSON yet (axum's own rejections:
/// a bad path segment, a missing content type) into `{"error": "…"}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 4 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    ApiError::new(status, text).into_response()
}

/// The REST API's OpenAPI 3.1 description, from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "GridMR master", description = "The REST API of a GridMR master: jobs, uploads, workers, metrics. Every endpoint but /health needs `Authorization: Bearer <cluster token>`."),
    paths(health, submit_job, list_jobs, job_status, cancel_job, delete_job, job_ls, job_result,
        job_tasks, task_logs, create_upload, put_upload, delete_upload, list_workers,
        register_worker, heartbeat, prometheus, job_metrics, openapi),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
pub(crate) struct ApiDoc;

/// The cluster token as the API's security scheme.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "cluster",
    responses((status = 200, description = "the OpenAPI description", body = Object),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(super::ui::routes(shared.clone()))
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/jobs", post(submit_job).get(list_jobs))
        .route("/jobs/{id}", get(job_status).delete(delete_job))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/jobs/{id}/ls", get(job_ls))
        .route("/jobs/{id}/result", get(job_result))
        .route("/jobs/{id}/tasks", get(job_tasks))
        .route("/jobs/{id}/tasks/{task}/logs", get(task_logs))
        .route("/uploads", post(create_upload))
        .route("/uploads/{id}", axum::routing::delete(delete_upload))
        .route("/uploads/{id}/{*name}", axum::routing::put(put_upload))
        .route("/workers", get(list_workers))
        .route("/workers/register", post(register_worker))
        .route("/workers/{id}/heartbeat", post(heartbeat))
        .route("/metrics", get(prometheus))
        .route("/metrics/jobs", get(job_metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> ApiResult<T> {
    match raw {
        None => Ok(T::default()),
        Some(q) => serde_urlencoded::from_str(&q)
            .map_err(|e| ApiError::bad(format!("bad query string: {e}"))),
    }
}

/// Liveness: answers without the token, then with whether the master is up,
/// its live workers and whether it wants the token; with the token also its
/// folders, threshold and jobs.
#[utoipa::path(get, path = "/health", tag = "cluster", security((), ("bearer" = [])),
    responses((status = 200, description = "the master is up", body = Health)))]
async fn health(State(sh): Shr, headers: axum::http::HeaderMap) -> Json<Health> {
    let workers = sh.lock().workers.live().count();
    let full = has_token(&sh, &headers);
    Json(Health {
        ok: true,
        shared_dir: full.then(|| sh.shared_dir.display().to_string()),
        threshold: full.then_some(sh.settings.threshold_bytes),
        input_roots: if full {
            sh.settings
                .input_roots
                .iter()
                .map(|r| r.display().to_string())
                .collect()
        } else {
            Vec::new()
        },
        workers,
        jobs: if full {
            sh.registry.names().map(str::to_owned).collect()
        } else {
            Vec::new()
        },
        auth: sh.auth.is_on(),
        warnings: if sh.auth.is_on() {
            Vec::new()
        } else {
            vec!["GRIDMR_AUTH=off: the API and the workers accept calls from anyone who can reach them".into()]
        },
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
    check_inside(&path, &sh.input_roots()).map_err(|e| ApiError::bad(format!("{field}: {e}")))
}

/// Refuses fields longer than a command or path can sensibly be (a 400
/// before anything else is looked at).
fn check_sizes(req: &SubmitRequest) -> ApiResult<()> {
    for (field, value, max) in [
        ("mapper", &req.mapper, MAX_COMMAND_BYTES),
        ("reducer", &req.reducer, MAX_COMMAND_BYTES),
        ("combiner", &req.combiner, MAX_COMMAND_BYTES),
        ("job", &req.job, 256),
        ("script_url", &req.script_url, MAX_PATH_BYTES),
    ] {
        if let Some(v) = value.as_deref().filter(|v| v.len() > max) {
            return Err(ApiError::bad(format!(
                "{field} is {} bytes; at most {max} are allowed",
                v.len()
            )));
        }
    }
    let inputs = req.inputs.as_deref().unwrap_or_default();
    if inputs.len() + 1 > MAX_INPUTS {
        return Err(ApiError::bad(format!(
            "{} inputs; at most {MAX_INPUTS} are allowed",
            inputs.len() + 1
        )));
    }
    for input in std::iter::once(&req.input_url).chain(inputs) {
        if input.len() > MAX_PATH_BYTES {
            return Err(ApiError::bad(format!(
                "an input is {} bytes; at most {MAX_PATH_BYTES} are allowed",
                input.len()
            )));
        }
    }
    let files = req.files.as_deref().unwrap_or_default();
    if files.len() > MAX_FILES {
        return Err(ApiError::bad(format!(
            "{} files; at most {MAX_FILES} are allowed",
            files.len()
        )));
    }
    if let Some(f) = files.iter().find(|f| f.len() > MAX_PATH_BYTES) {
        return Err(ApiError::bad(format!(
            "a files entry is {} bytes; at most {MAX_PATH_BYTES} are allowed",
            f.len()
        )));
    }
    Ok(())
}

/// What a submission runs (a typed job, a script, streaming commands) and whether it is
/// map-only; a script's or streaming job's files go into `staging`.
fn submitted_kind(
    sh: &Shared,
    req: &SubmitRequest,
    staging: &mut Staging,
) -> ApiResult<(JobKind, bool)> {
    Ok(if let Some(name) = &req.job {
        if sh.registry.get(name).is_err() {
            let known: Vec<&str> = sh.registry.names().collect();
            return Err(ApiError::bad(format!(
                "unknown job {name:?}; this cluster runs: {}",
                known.join(", ")
            )));
        }
        // Live workers that all lack the job would leave it waiting forever.
        // (With none live, it waits for workers, as any job does.)
        let unable = {
            let st = sh.lock();
            let mut live = st.workers.live().peekable();
            live.peek().is_some() && live.all(|w| !w.can_run(name))
        };
        if unable {
            return Err(ApiError::bad(format!(
                "no live worker can run job {name:?}: their binaries do not have it \
                 (deploy a worker binary with it registered)"
            )));
        }
        // Zero reduce tasks: a map-only job, as Hadoop's `numReduceTasks = 0`.
        (
            JobKind::Typed(name.clone()),
            req.reduce_partitions == Some(0),
        )
    } else if let Some(url) = &req.script_url {
        staging.script = Some(match parse_url(url) {
            Ok(Location::Remote(u)) => ScriptSource::Remote(u),
            _ => ScriptSource::Local(local_path(sh, "script_url", url)?),
        });
        (JobKind::Script(std::path::PathBuf::new()), false)
    } else if let Some(mapper) = &req.mapper {
        let reducer = req.reducer.clone().unwrap_or_default();
        if mapper.trim().is_empty() {
            return Err(ApiError::bad("mapper is empty"));
        }
        // No reducer, or zero reduce tasks: a map-only job, as Hadoop's
        // `-numReduceTasks 0`.
        let map_only = reducer.trim().is_empty() || req.reduce_partitions == Some(0);
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
        let kind = JobKind::Streaming {
            mapper: mapper.clone(),
            reducer,
            combiner: req.combiner.clone().unwrap_or_default(),
            files_dir: None,
        };
        (kind, map_only)
    } else {
        return Err(ApiError::bad(
            "missing field: `job` (a typed job's name), `script_url` (a job script) or `mapper` (a streaming job)",
        ));
    })
}

/// A submission's map-side buffer and compression.
fn submitted_shuffle(req: &SubmitRequest) -> ApiResult<ShuffleSettings> {
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
    Ok(shuffle)
}

/// Checks a submission and turns it into a [`JobRequest`] and what must be
/// copied into the job's folder.
fn check_submit(sh: &Shared, req: SubmitRequest) -> ApiResult<(JobRequest, Staging)> {
    check_sizes(&req)?;
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
    let (kind, map_only) = submitted_kind(sh, &req, &mut staging)?;
    let input_path = local_path(sh, "input_url", &req.input_url)?;
    let more_inputs = req
        .inputs
        .iter()
        .flatten()
        .map(|i| local_path(sh, "inputs", i))
        .collect::<ApiResult<Vec<_>>>()?;
    let shuffle = submitted_shuffle(&req)?;
    let params = check_params(req.params)?;
    let max = sh.settings.max_partitions;
    check_count("partitions", req.partitions, max)?;
    check_count("map_splits", req.map_splits, max)?;
    if !map_only {
        check_count("reduce_partitions", req.reduce_partitions, max)?;
    }
    let request = JobRequest {
        kind,
        input_path,
        more_inputs,
        params,
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
/// Most redirects a download follows (each to an allowed host).
const MAX_REDIRECTS: usize = 3;

/// Whether `url`'s host (or `host:port`) is in `GRIDMR_SCRIPT_HOSTS`.
fn host_allowed(url: &reqwest::Url, allowed: &[String]) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default();
    allowed.iter().any(|a| {
        let a = a.trim();
        match a
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            Some((h, p)) => {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(host)
                    && p.parse::<u16>().ok() == port
            }
            None => a.eq_ignore_ascii_case(host),
        }
    })
}

/// Downloads a job script: only from `GRIDMR_SCRIPT_HOSTS`, redirects only
/// to those hosts, at most [`MAX_SCRIPT_BYTES`] (counted while streaming),
/// and no byte of the body in an error.
async fn download(url: &str, allowed: &[String]) -> ApiResult<Vec<u8>> {
    let bad = |e: String| ApiError::bad(format!("script_url {url}: {e}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if allowed.is_empty() {
        return Err(bad(
            "downloads are off on this master (GRIDMR_SCRIPT_HOSTS lists the hosts allowed); put the script on the shared folder".into(),
        ));
    }
    if !host_allowed(&parsed, allowed) {
        return Err(bad("its host is not in GRIDMR_SCRIPT_HOSTS".into()));
    }
    let hosts = allowed.to_vec();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if host_allowed(attempt.url(), &hosts) {
            attempt.follow()
        } else {
            attempt.error("a redirect to a host not in GRIDMR_SCRIPT_HOSTS")
        }
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(policy)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| bad(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(bad(format!("HTTP {}", resp.status())));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_SCRIPT_BYTES as u64)
    {
        return Err(bad(format!("larger than {MAX_SCRIPT_BYTES} bytes")));
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(e.without_url().to_string()))?;
        if body.len() + chunk.len() > MAX_SCRIPT_BYTES {
            return Err(bad(format!("larger than {MAX_SCRIPT_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Submits a job.
#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = SubmitRequest,
    responses((status = 200, description = "the job, queued", body = JobStatus),
        (status = 400, description = "a bad request, input or setting", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody),
        (status = 413, description = "a request body over 256 KiB", body = ErrorBody), (status = 415, description = "not JSON", body = ErrorBody)))]
async fn submit_job(State(sh): Shr, body: Body) -> ApiResult<Json<JobStatus>> {
    let body = read_body(body).await?;
    let req: SubmitRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid job request: {e}")))?;
    let (checked, mut staging) = check_submit(&sh, req)?;
    // Every file a folder or glob names must resolve inside the roots too.
    let roots = sh.input_roots();
    let specs = checked.input_specs();
    tokio::task::spawn_blocking(move || {
        specs
            .iter()
            .try_for_each(|spec| crate::paths::confine_input(spec, &roots).map(drop))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::bad(format!("input: {e}")))?;
    if let Some(ScriptSource::Remote(url)) = &staging.script {
        staging.script = Some(ScriptSource::Bytes(
            download(url, &sh.settings.script_hosts).await?,
        ));
    }
    let status = submit(&sh, checked, staging)?;
    tracing::info!(job = %status.job_id, name = %status.job, input = %status.input_path, "job submitted");
    Ok(Json(status))
}

#[derive(Default, Deserialize)]
struct ListQuery {
    offset: Option<i64>,
    limit: Option<i64>,
}

/// `GET /jobs?offset=N&limit=M`: at most [`MAX_PAGE`] jobs per answer, in
/// submission order; `next_offset` names the next page.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    params(("offset" = Option<i64>, Query, minimum = 0, description = "first job of the page"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "jobs per page (at most 1000 are answered)")),
    responses((status = 200, description = "the jobs", body = JobList),
        (status = 400, description = "a bad query", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody)))]
async fn list_jobs(State(sh): Shr, RawQuery(q): RawQuery) -> ApiResult<Json<JobList>> {
    let q: ListQuery = query(q)?;
    let offset = usize::try_from(q.offset.unwrap_or(0))
        .map_err(|_| ApiError::bad("offset must be 0 or more"))?;
    let limit = match q.limit {
        None => MAX_PAGE,
        Some(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        Some(_) => return Err(ApiError::bad("limit must be 1 or more")),
    };
    let st = sh.lock();
    let total = st.jobs().count();
    let jobs: Vec<_> = st
        .jobs()
        .skip(offset)
        .take(limit)
        .map(|j| j.summary())
        .collect();
    let end = offset.saturating_add(jobs.len());
    Ok(Json(JobList {
        jobs,
        total: Some(total),
        next_offset: (end < total).then_some(end),
    }))
}

#[derive(Default, Deserialize)]
struct StatusQuery {
    wait_ms: Option<i64>,
}

/// A job's status; with `wait_ms`, answers as soon as it ends.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "the job's id"),
        ("wait_ms" = Option<i64>, Query, minimum = 0, description = "wait up to this long for the job to end (at most 60 s)")),
    responses((status = 200, description = "the job", body = JobStatus),
        (status = 400, description = "a bad query", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
async fn job_status(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobStatus>> {
    let q: StatusQuery = query(q)?;
    let wait_ms = u64::try_from(q.wait_ms.unwrap_or(0))
        .map_err(|_| ApiError::bad("wait_ms must be 0 or more"))?;
    let wait = Duration::from_millis(wait_ms.min(60_000));
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

/// Cancels a job and keeps its record, as CANCELLED (Hadoop's `job
/// -kill`): its attempts are stopped and its shuffle and attempt files
/// removed. A job that has already ended keeps its state.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "cancelled, or already ended", body = CancelAnswer),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
async fn cancel_job(
    State(sh): Shr,
    Path(id): Path<String>,
) -> ApiResult<Json<gridmr_net::rest::CancelAnswer>> {
    let (cancelled, effects, status) = {
        let mut st = sh.lock();
        let ended = st
            .job(&id)
            .ok_or_else(|| ApiError::unknown_job(&id))?
            .state
            .is_terminal();
        let effects = st.handle(Event::Cancel { job: id.clone() }, super::clock::now_ms());
        let status = st
            .job(&id)
            .map_or(JobState::Cancelled, |j| view::rest_state(j.state));
        (!ended, effects, status)
    };
    apply(&sh, effects);
    sh.poke();
    tracing::info!(job = %id, cancelled, "job cancel asked");
    Ok(Json(gridmr_net::rest::CancelAnswer {
        job_id: id,
        cancelled,
        status,
    }))
}

/// Cancels and forgets a job; `purge` removes its folder.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "the job's id"),
        ("purge" = Option<bool>, Query, description = "also remove the job's files")),
    responses((status = 200, description = "forgotten", body = DeleteAnswer),
        (status = 400, description = "a bad query", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
async fn delete_job(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<DeleteAnswer>> {
    let q: DeleteQuery = query(q)?;
    let effects = sh
        .lock()
        .handle(Event::Delete { job: id.clone() }, super::clock::now_ms());
    let Some((cancelled, dirs)) = effects.iter().find_map(|e| match e {
        Effect::Deleted {
            was_running, dirs, ..
        } => Some((*was_running, dirs.clone())),
        _ => None,
    }) else {
        return Err(ApiError::unknown_job(&id));
    };
    apply(&sh, effects);
    sh.poke();
    let purge = q.purge.unwrap_or(false);
    let base = dirs.base.clone();
    if !purge {
        // Its records go: a deleted job must not come back at a restart.
        let _ = tokio::task::spawn_blocking(move || super::store::forget(&base)).await;
    } else {
        tokio::task::spawn_blocking(move || super::store::purge(&base))
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

/// A job folder's names, listed without following a link (a folder a task replaced by a link
/// lists as empty).
fn names(share: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    super::confined::list(share, dir).unwrap_or_default()
}

/// The files of a job's folder.
#[utoipa::path(get, path = "/jobs/{id}/ls", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the listing", body = JobListing),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
async fn job_ls(State(sh): Shr, Path(id): Path<String>) -> ApiResult<Json<JobListing>> {
    let job = sh
        .lock()
        .job(&id)
        .cloned()
        .ok_or_else(|| ApiError::unknown_job(&id))?;
    let share = sh.shared_dir.clone();
    let listing = tokio::task::spawn_blocking(move || JobListing {
        base: job.dirs.base.display().to_string(),
        script: String::new(),
        input: job.input_path.display().to_string(),
        chunks: job
            .splits
            .iter()
            .map(|s| format!("{}:{}+{}", s.path.display(), s.start, s.len()))
            .collect(),
        shuffle: names(&share, &job.dirs.shuffle),
        out: names(&share, &job.dirs.out),
        status: view::rest_state(job.state),
        mode: view::rest_mode(job.mode),
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

/// A finished job's result: inline JSON, or streamed text.
#[utoipa::path(get, path = "/jobs/{id}/result", tag = "jobs",
    params(("id" = String, Path, description = "the job's id"),
        ("format" = Option<String>, Query, description = "`json` (default when small) or `text`")),
    responses((status = 200, description = "the result",
            content((JobResult = "application/json"), (String = "text/plain"))),
        (status = 400, description = "a bad format", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "the job has not succeeded", body = ErrorBody), (status = 410, description = "the result file is gone", body = ErrorBody),
        (status = 413, description = "the result is too large to answer as JSON", body = ErrorBody)))]
pub(crate) async fn job_result(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ResultQuery = query(q)?;
    let (state, file, parts, error) = {
        let st = sh.lock();
        let job = st.job(&id).ok_or_else(|| ApiError::unknown_job(&id))?;
        (
            view::rest_state(job.state),
            job.result_file.clone(),
            job.parts.clone(),
            job.error.clone(),
        )
    };
    let file = match (state, file) {
        (JobState::Succeeded, Some(f)) => f,
        // Too large for result.txt: its part files, joined as it would be.
        (JobState::Succeeded, None) if q.format.as_deref() != Some("json") => {
            return stream_files(&sh, parts).await
        }
        (JobState::Succeeded, None) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the result is larger than RESULT_TXT_MAX_BYTES; ask for ?format=text",
            ))
        }
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
    let opened = open_confined(&sh, vec![file.clone()]).await?.remove(0);
    let size = opened.1;
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
    let mut f = tokio::fs::File::from_std(opened.0);
    if as_text {
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
    let mut bytes = Vec::with_capacity(size as usize);
    tokio::io::AsyncReadExt::read_to_end(&mut f, &mut bytes)
        .await
        .map_err(|e| ApiError::new(StatusCode::GONE, format!("{}: {e}", file.display())))?;
    Ok(Json(JobResult {
        job_id: id,
        status: state,
        result: String::from_utf8_lossy(&bytes).into_owned(),
    })
    .into_response())
}

/// Opens files of the share to serve them, with their sizes: beneath the share, through no
/// symbolic link, regular files only (`confined`); a file gone or refused answers 410.
async fn open_confined(
    sh: &Shared,
    files: Vec<std::path::PathBuf>,
) -> ApiResult<Vec<(std::fs::File, u64)>> {
    let share = sh.shared_dir.clone();
    tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|path| {
                let file = super::confined::open_file(&share, path)?;
                let size = file.metadata()?.len();
                Ok((file, size))
            })
            .collect::<std::io::Result<Vec<_>>>()
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::GONE, format!("the result: {e}")))
}

/// `files` joined, streamed as text. Each is checked and sized first, then opened again
/// (confined) when the one before it ends: a job of 100,000 parts holds one open at a time.
async fn stream_files(sh: &Shared, files: Vec<std::path::PathBuf>) -> ApiResult<Response> {
    let mut size = 0u64;
    for chunk in files.chunks(256) {
        size += open_confined(sh, chunk.to_vec())
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>();
    }
    let share = sh.shared_dir.clone();
    let stream = futures_util::stream::unfold(
        (
            files.into_iter(),
            None::<tokio_util::io::ReaderStream<tokio::fs::File>>,
        ),
        move |(mut files, mut current)| {
            let share = share.clone();
            async move {
                use futures_util::StreamExt;
                loop {
                    if let Some(reader) = current.as_mut() {
                        if let Some(chunk) = reader.next().await {
                            return Some((chunk, (files, current)));
                        }
                    }
                    let next = files.next()?;
                    let share = share.clone();
                    let opened = tokio::task::spawn_blocking(move || {
                        super::confined::open_file(&share, &next)
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                    match opened {
                        Ok(f) => {
                            current = Some(tokio_util::io::ReaderStream::with_capacity(
                                tokio::fs::File::from_std(f),
                                256 << 10,
                            ))
                        }
                        Err(e) => return Some((Err(e), (files, None))),
                    }
                }
            }
        },
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, size.into());
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// Every attempt of a job's tasks.
#[utoipa::path(get, path = "/jobs/{id}/tasks", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the attempts", body = TaskAttempts),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
async fn job_tasks(State(sh): Shr, Path(id): Path<String>) -> ApiResult<Json<TaskAttempts>> {
    let st = sh.lock();
    let job = st.job(&id).ok_or_else(|| ApiError::unknown_job(&id))?;
    Ok(Json(TaskAttempts {
        job_id: id,
        attempts: job.attempts.iter().map(view::attempt_row).collect(),
    }))
}

/// The logs of a task's attempts (the stderr of script and streaming
/// processes), kept in the job's `logs/` folder.
#[utoipa::path(get, path = "/jobs/{id}/tasks/{task}/logs", tag = "jobs",
    params(("id" = String, Path, description = "the job's id"),
        ("task" = String, Path, description = "`single`, `map-NNNNN` or `reduce-NNNNN`")),
    responses((status = 200, description = "the logs", body = TaskLogs),
        (status = 400, description = "not a task name", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
pub(crate) async fn task_logs(
    State(sh): Shr,
    Path((id, task)): Path<(String, String)>,
) -> ApiResult<Json<gridmr_net::rest::TaskLogs>> {
    let base = {
        let st = sh.lock();
        st.job(&id)
            .ok_or_else(|| ApiError::unknown_job(&id))?
            .dirs
            .base
            .clone()
    };
    let task = gridmr_scheduler::TaskRef::parse(&task)
        .ok_or_else(|| {
            ApiError::bad(format!(
                "{task:?} is not a task name (single, map-NNNNN, reduce-NNNNN)"
            ))
        })?
        .name();
    let name = task.clone();
    let share = sh.shared_dir.clone();
    let logs = tokio::task::spawn_blocking(move || {
        let prefix = format!("{name}-a");
        let mut logs = Vec::new();
        let dir = gridmr_core::layout::logs_dir(&base);
        for file in super::confined::list(&share, &dir).unwrap_or_default() {
            let Some(attempt) = file
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".log"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // Regular files only, reached through no link: a link is no attempt's log.
            let mut text = Vec::new();
            if let Ok(f) = super::confined::open_file(&share, &dir.join(&file)) {
                use std::io::Read;
                let _ = f.take(2 << 20).read_to_end(&mut text);
            }
            logs.push(gridmr_net::rest::AttemptLog {
                attempt,
                text: String::from_utf8_lossy(&text).into_owned(),
            });
        }
        logs.sort_by_key(|l| l.attempt);
        logs
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(gridmr_net::rest::TaskLogs {
        job_id: id,
        task,
        logs,
    }))
}

impl From<super::uploads::UploadError> for ApiError {
    fn from(e: super::uploads::UploadError) -> Self {
        use super::uploads::UploadError as U;
        let status = match &e {
            U::Bad(_) | U::Body(_) => StatusCode::BAD_REQUEST,
            U::Unknown(_) => StatusCode::NOT_FOUND,
            U::Exists(_) => StatusCode::CONFLICT,
            U::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            U::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            U::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A fresh upload folder.
#[utoipa::path(post, path = "/uploads", tag = "uploads",
    responses((status = 200, description = "the upload", body = UploadAnswer),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 507, description = "the shared folder is full", body = ErrorBody)))]
async fn create_upload(State(sh): Shr) -> ApiResult<Json<UploadAnswer>> {
    let shared = sh.shared_dir.clone();
    let (upload_id, path) = tokio::task::spawn_blocking(move || super::uploads::create(&shared))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(UploadAnswer {
        upload_id,
        path: path.display().to_string(),
    }))
}

/// Streams a file into an upload.
#[utoipa::path(put, path = "/uploads/{id}/{name}", tag = "uploads",
    params(("id" = String, Path, pattern = "^up-[0-9a-f]{32}$", description = "the upload's id"),
        ("name" = String, Path, pattern = "^[^./][^/]*(/[^./][^/]*)*$", description = "the file's name in the upload (may hold `/`)")),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream",
        description = "the file's bytes (none: an empty file)"),
    responses((status = 200, description = "stored", body = UploadedFile),
        (status = 400, description = "a bad id or name", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such upload", body = ErrorBody),
        (status = 409, description = "the file exists", body = ErrorBody), (status = 413, description = "over MAX_UPLOAD_BYTES", body = ErrorBody),
        (status = 507, description = "the shared folder is full", body = ErrorBody)))]
async fn put_upload(
    State(sh): Shr,
    Path((id, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<UploadedFile>> {
    let (path, bytes) = super::uploads::write(
        &sh.shared_dir,
        &id,
        &name,
        body,
        sh.settings.max_upload_bytes,
    )
    .await?;
    Ok(Json(UploadedFile {
        upload_id: id,
        path: path.display().to_string(),
        bytes,
    }))
}

/// Removes an upload.
#[utoipa::path(delete, path = "/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, pattern = "^up-[0-9a-f]{32}$", description = "the upload's id")),
    responses((status = 200, description = "removed"),
        (status = 400, description = "a bad id", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such upload", body = ErrorBody)))]
async fn delete_upload(
    State(sh): Shr,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let shared = sh.shared_dir.clone();
    let gone = id.clone();
    tokio::task::spawn_blocking(move || super::uploads::delete(&shared, &gone))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(serde_json::json!({"upload_id": id, "deleted": true})))
}

/// The registered workers.
#[utoipa::path(get, path = "/workers", tag = "cluster",
    responses((status = 200, description = "the workers", body = WorkerList), (status = 401, description = "no or wrong cluster token", body = ErrorBody)))]
async fn list_workers(State(sh): Shr) -> Json<WorkerList> {
    let st = sh.lock();
    Json(WorkerList {
        workers: st
            .workers
            .list
            .iter()
            .map(|w| (w.id.clone(), view::worker_info(w)))
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

/// Asks the worker at `address` who it is (the `Heartbeat` RPC, with the
/// token). `Err` when it does not answer.
async fn probe(
    sh: &Shared,
    address: &str,
    id: &str,
) -> Result<gridmr_net::proto::HeartbeatResp, String> {
    let control = sh.control_timeout();
    let endpoint = sh
        .endpoint(address)
        .map_err(|e| e.to_string())?
        .connect_timeout(control)
        .timeout(control);
    let channel = endpoint.connect().await.map_err(|e| {
        use std::error::Error as _;
        match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        }
    })?;
    worker_rpc(channel, &sh.auth)
        .heartbeat(HeartbeatReq {
            worker_id: id.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|e| e.message().to_owned())
}

/// Registers a worker (a JSON body, a form, or the original's query string).
#[utoipa::path(post, path = "/workers/register", tag = "cluster", request_body = RegisterRequest,
    responses((status = 200, description = "registered", body = RegisterAnswer),
        (status = 400, description = "a bad id or address, or one that does not answer", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody),
        (status = 409, description = "the id is alive at another address", body = ErrorBody), (status = 413, description = "a body over 256 KiB", body = ErrorBody)))]
async fn register_worker(
    State(sh): Shr,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<RegisterAnswer>> {
    let body = read_body(body).await?;
    let req = registration(q, &headers, &body)?;
    let id = req.worker_id.trim();
    if id.is_empty() || id.len() > 128 || id.contains(['/', ' ']) {
        return Err(ApiError::bad(format!(
            "worker_id {:?} is not a plain name",
            id.chars().take(64).collect::<String>()
        )));
    }
    check_address(&req.address)?;
    // An id alive at another address keeps it while that address still
    // answers as this worker: an impostor cannot take over a live worker's
    // identity, and a worker that moved can come back.
    let previous = {
        let st = sh.lock();
        st.workers
            .list
            .iter()
            .find(|w| w.id == id && w.is_alive() && w.address != req.address)
            .map(|w| w.address.clone())
    };
    if let Some(old) = previous {
        if let Ok(hello) = probe(&sh, &old, id).await {
            if hello.worker_id.is_empty() || hello.worker_id == id {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "worker {id:?} is alive at {old}; stop it first or pick another WORKER_ID"
                    ),
                ));
            }
        }
        tracing::info!(worker = %id, old = %old, new = %req.address, "worker moved");
    }
    let unreachable = |e: String| {
        ApiError::bad(format!(
            "worker address {} is unreachable: {e}",
            req.address
        ))
    };
    let hello = probe(&sh, &req.address, id).await.map_err(unreachable)?;
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
    let tasks = sh
        .endpoint(&req.address)
        .map_err(|e| ApiError::bad(e.to_string()))?
        .connect_timeout(sh.control_timeout())
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy();
    sh.pool.insert(id, worker_rpc(tasks, &sh.auth));
    let entry = WorkerEntry {
        // A GridMR worker names itself and lists its typed jobs; the
        // original's workers do neither.
        jobs: (!hello.worker_id.is_empty()).then(|| hello.jobs.clone()),
        heartbeats: req.heartbeat_ms.is_some(),
        build: hello.build.clone(),
        ..WorkerEntry::new(id, req.address.clone(), slots, super::clock::now_ms())
    };
    let (effects, count, ring): (Vec<Effect>, usize, Vec<String>) = {
        let mut st = sh.lock();
        let effects = st.handle(Event::WorkerRegistered(entry), super::clock::now_ms());
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

/// A worker's heartbeat, with its attempts' progress.
#[utoipa::path(post, path = "/workers/{id}/heartbeat", tag = "cluster",
    request_body(content = Option<Heartbeat>, description = "optional: a worker registered by hand sends none"),
    params(("id" = String, Path, description = "the worker's id")),
    responses((status = 200, description = "taken"),
        (status = 400, description = "a bad heartbeat", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "unknown worker: register again", body = ErrorBody),
        (status = 409, description = "the worker is registered at another address", body = ErrorBody),
        (status = 413, description = "a body over 256 KiB", body = ErrorBody)))]
async fn heartbeat(
    State(sh): Shr,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let body = read_body(body).await?;
    let beat = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice::<Heartbeat>(&body)
                .map_err(|e| ApiError::bad(format!("invalid heartbeat: {e}")))?,
        )
    };
    let (claimed, reports) = beat.map_or((None, Vec::new()), |b| (b.address, b.progress));
    let (known, revived) = {
        let mut st = sh.lock();
        let registered = st
            .workers
            .list
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.address.clone());
        match (&registered, &claimed) {
            (Some(at), Some(claimed)) if at != claimed => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("worker {id:?} is registered at {at}, not {claimed}"),
                ));
            }
            // Only the worker itself knows where it registered: a heartbeat that does not
            // say keeps no worker alive.
            (Some(_), None) => {
                return Err(ApiError::bad(format!(
                    "a heartbeat for worker {id:?} must name the address it registered with \
                     (\"address\")"
                )));
            }
            _ => {}
        }
        let was_alive = st.workers.live().any(|w| w.id == id);
        let known = registered.is_some();
        if known {
            let reports = reports
                .iter()
                .filter_map(|r| {
                    Some(gridmr_scheduler::ProgressReport {
                        job_id: r.job_id.clone(),
                        task: gridmr_scheduler::TaskRef::parse(&r.task)?,
                        attempt: r.attempt,
                        work: view::work_of(r.work),
                    })
                })
                .collect();
            let beat = Event::Heartbeat {
                worker: id.clone(),
                reports,
            };
            let effects = st.handle(beat, super::clock::now_ms());
            debug_assert!(effects.is_empty(), "a heartbeat has no effects");
        }
        (known, !was_alive)
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

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "cluster",
    responses((status = 200, description = "the metrics", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody)))]
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

/// Every job's phase times.
#[utoipa::path(get, path = "/metrics/jobs", tag = "cluster",
    responses((status = 200, description = "the jobs' metrics", body = JobMetricsList), (status = 401, description = "no or wrong cluster token", body = ErrorBody)))]
async fn job_metrics(State(sh): Shr) -> Json<JobMetricsList> {
    Json(JobMetricsList {
        jobs: sh.lock().jobs().map(|j| j.metrics()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Refusal};

    #[test]
    fn errors_keep_their_kind_to_the_http_status() {
        let status = |e: Error| ApiError::from(e).status;
        assert_eq!(
            status(Error::refused(Refusal::NotFound, "no upload")),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(Error::refused(Refusal::Conflict, "taken")),
            StatusCode::CONFLICT
        );
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(
            status(Error::io("write", "/share/x", full)),
            StatusCode::INSUFFICIENT_STORAGE
        );
        let user = gridmr_core::Error::Input {
            spec: "/in/*.txt".into(),
            reason: "matches nothing".into(),
        };
        assert_eq!(status(Error::Core(user)), StatusCode::BAD_REQUEST);
        let engine = gridmr_core::Error::io("read", "/x", std::io::Error::other("eio"));
        assert_eq!(
            status(Error::Core(engine)),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
