//! The REST API (axum). Every error is a 4xx or 5xx answer with a JSON body
//! `{"error": "…"}`; no request can stop the master.
//!
//! This module holds the router, authentication, the OpenAPI description and the errors;
//! the handlers live in submodules by resource.

mod download;
mod jobs;
mod results;
mod uploads;
mod validate;
mod workers;

use download::*;
pub(crate) use jobs::task_logs;
use jobs::*;
pub(crate) use results::job_result;
use results::*;
use uploads::*;
use validate::*;
use workers::*;

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
                job_id: None,
                deleted: None,
            },
        }
    }

    fn bad(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 404 for a job id no job has: `"status": "UNKNOWN"` and the id in the
    /// body, as the original's clients read them.
    pub(crate) fn unknown_job(id: &str) -> Self {
        let mut e = Self::new(StatusCode::NOT_FOUND, format!("unknown job {id:?}"));
        e.body.status = Some(JobState::Unknown);
        e.body.job_id = Some(id.chars().take(128).collect());
        e
    }

    /// 404 for a `DELETE` of a job id no job has (again): `"deleted": false`.
    fn not_deleted(id: &str) -> Self {
        let mut e = Self::unknown_job(id);
        e.body.deleted = Some(false);
        e
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

/// The job id a path names: `job-000001`, or the original's form of the
/// same id, `job-1` (any number of digits, leading zeros or none). Ids stay
/// unique and are never reused, so the short form names one job only.
pub(crate) fn job_path_id(id: String) -> String {
    match id.strip_prefix("job-") {
        Some(digits)
            if !digits.is_empty()
                && digits.len() <= 19
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            match digits.parse::<u64>() {
                Ok(n) => format!("job-{n:06}"),
                Err(_) => id,
            }
        }
        _ => id,
    }
}

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
