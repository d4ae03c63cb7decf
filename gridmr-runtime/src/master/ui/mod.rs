//! The web UI the master serves: jobs (state, progress, phase times, sizes),
//! one job (a timeline of its attempts per worker, every attempt with its
//! worker, state, duration, error and log, its counters, its result), and
//! the workers (address, slots, running tasks, last heartbeat, exclusions).
//!
//! Pages are rendered on the server (maud) and kept current by polling
//! their HTML fragments once a second (`app.js`, no build step). The UI
//! sits behind the cluster token like the API: a browser signs in with a
//! one-time code from `gridmr ui` or with the token, and reads with a
//! session cookie ([`session`]). Every page is sent with a strict content
//! security policy (scripts and styles from the master only, no framing).

mod pages;
pub(crate) mod session;

use super::api::{self, ApiError};
use super::view::JobView;
use super::Shared;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridmr_net::rest::TaskAttempt;
use maud::Markup;
use std::collections::BTreeMap;
use std::sync::Arc;

type Shr = State<Arc<Shared>>;

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

/// The UI's routes (under `/ui`, and `/` which leads there).
pub(crate) fn routes(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(jobs))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route(
            "/ui/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/grant", post(grant))
        .route("/ui/workers", get(workers))
        .route("/ui/jobs/{id}", get(job))
        .route("/ui/jobs/{id}/result", get(result))
        .route("/ui/jobs/{id}/tasks/{task}/logs", get(logs))
        .route("/ui/fragments/jobs", get(jobs_fragment))
        .route("/ui/fragments/jobs/{id}", get(job_fragment))
        .route("/ui/fragments/workers", get(workers_fragment))
        .layer(middleware::from_fn_with_state(shared, guard_headers))
}

/// What a browser may see without signing in: the sign-in page, signing out
/// (it only ends the session its own cookie names), and the style sheet and
/// script (which hold nothing of the cluster's).
pub(crate) fn is_public(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("GET", "/")
            | ("GET" | "POST", "/ui/login")
            | ("POST", "/ui/logout")
            | ("GET", "/ui/app.css" | "/ui/app.js")
    )
}

/// Whether `req` is a UI read carrying a live session: sessions only ever
/// read (`GET /ui…`), so a cross-site form can change nothing.
pub(crate) fn has_session(sh: &Shared, req: &Request) -> bool {
    let path = req.uri().path();
    let ui = path == "/ui" || path.starts_with("/ui/");
    ui && req.method() == Method::GET
        && req
            .headers()
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(session::Sessions::from_cookies)
            .is_some_and(|id| sh.ui.is_valid(id))
}

/// Where a browser without a session goes: the sign-in page.
pub(crate) fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// The headers every UI answer carries.
async fn guard_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // The sign-in code travels in a URL: never pass it on.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

fn page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

fn now_ms() -> u64 {
    super::clock::now_ms()
}

/// `?state=running|succeeded|failed&page=N`, anything else ignored.
fn job_filter(q: Option<String>) -> pages::JobFilter {
    let mut filter = pages::JobFilter::default();
    for pair in q.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("state", s @ ("running" | "succeeded" | "failed"))) => {
                filter.state = Some(s.to_owned())
            }
            Some(("page", n)) => filter.page = n.parse().unwrap_or(0).min(1_000_000),
            _ => {}
        }
    }
    filter
}

async fn jobs(State(sh): Shr, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Response {
    page(pages::jobs_page(&job_list(&sh), &job_filter(q)))
}

async fn jobs_fragment(
    State(sh): Shr,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    page(pages::jobs_table(&job_list(&sh), &job_filter(q)))
}

fn job_list(sh: &Shared) -> Vec<gridmr_net::rest::JobStatus> {
    sh.lock().jobs().map(JobView::status).collect()
}

/// A job's status, its attempts in the API's form, and what else its page shows.
fn job_view(
    sh: &Shared,
    id: &str,
) -> Option<(
    gridmr_net::rest::JobStatus,
    Vec<TaskAttempt>,
    pages::JobExtras,
)> {
    use gridmr_scheduler::JobKind;
    let st = sh.lock();
    let job = st.job(id)?;
    let extras = match &job.kind {
        JobKind::Typed(name) => pages::JobExtras {
            program: Vec::new(),
            combiner: sh.registry.get(name).is_ok_and(|j| j.has_combiner()),
        },
        JobKind::Script(path) => pages::JobExtras {
            program: vec![("script".into(), path.display().to_string())],
            combiner: false,
        },
        JobKind::Streaming {
            mapper,
            reducer,
            combiner,
            ..
        } => pages::JobExtras {
            program: [
                ("mapper", mapper),
                ("combiner", combiner),
                ("reducer", reducer),
            ]
            .into_iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(k, c)| (k.to_owned(), c.clone()))
            .collect(),
            combiner: !combiner.is_empty(),
        },
    };
    Some((
        job.status(),
        job.attempts.iter().map(super::view::attempt_row).collect(),
        extras,
    ))
}

fn unknown(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(pages::message_page(
            "Unknown job",
            &format!("There is no job {id:?}."),
        )),
    )
        .into_response()
}

async fn job(State(sh): Shr, Path(id): Path<String>) -> Response {
    let id = crate::master::api::job_path_id(id);
    match job_view(&sh, &id) {
        Some((status, attempts, extras)) => {
            page(pages::job_page(&status, &attempts, &extras, now_ms()))
        }
        None => unknown(&id),
    }
}

async fn job_fragment(State(sh): Shr, Path(id): Path<String>) -> Response {
    let id = crate::master::api::job_path_id(id);
    match job_view(&sh, &id) {
        Some((status, attempts, extras)) => {
            page(pages::job_detail(&status, &attempts, &extras, now_ms()))
        }
        None => unknown(&id),
    }
}

fn worker_rows(sh: &Shared) -> Vec<pages::WorkerRow> {
    let hosts = sh.hosts.lock().map(|h| h.clone()).unwrap_or_default();
    let st = sh.lock();
    let now = now_ms();
    let mut excluded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut running: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut history: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for job in st.jobs() {
        for a in &job.attempts {
            let h = history.entry(a.worker.to_string()).or_default();
            match &a.state {
                gridmr_scheduler::AttemptState::Succeeded => h.0 += 1,
                gridmr_scheduler::AttemptState::Failed(_) => h.1 += 1,
                gridmr_scheduler::AttemptState::Lost(_)
                | gridmr_scheduler::AttemptState::Killed(_) => h.2 += 1,
                _ => {}
            }
        }
    }
    for job in st.jobs().filter(|j| !j.state.is_terminal()) {
        for w in job.excluded_workers(now) {
            excluded
                .entry(w.to_string())
                .or_default()
                .push(job.id.to_string());
        }
        for a in job.attempts.iter().filter(|a| a.is_running()) {
            running
                .entry(a.worker.to_string())
                .or_default()
                .push((job.id.to_string(), a.task.name()));
        }
    }
    st.workers
        .list
        .iter()
        .map(|w| pages::WorkerRow {
            id: w.id.to_string(),
            info: gridmr_net::rest::WorkerInfo {
                host: hosts.get(w.id.as_str()).copied(),
                ..super::view::worker_info(w)
            },
            seen_s: super::clock::now_ms().saturating_sub(w.last_seen_ms) as f64 / 1000.0,
            excluded_from: excluded.remove(w.id.as_str()).unwrap_or_default(),
            running: running.remove(w.id.as_str()).unwrap_or_default(),
            history: history.remove(w.id.as_str()).unwrap_or_default(),
        })
        .collect()
}

async fn workers(State(sh): Shr) -> Response {
    page(pages::workers_page(&worker_rows(&sh)))
}

async fn workers_fragment(State(sh): Shr) -> Response {
    page(pages::workers_table(&worker_rows(&sh)))
}

async fn logs(State(sh): Shr, Path((id, task)): Path<(String, String)>) -> Response {
    match api::task_logs(State(sh), Path((id, task))).await {
        Ok(Json(logs)) => page(pages::logs_page(&logs)),
        Err(e) => e.into_response(),
    }
}

async fn result(State(sh): Shr, Path(id): Path<String>) -> Response {
    let text = axum::extract::RawQuery(Some("format=text".into()));
    match api::job_result(State(sh), Path(id), text).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/grant` (with the token): a one-time sign-in link.
async fn grant(State(sh): Shr) -> Result<Json<serde_json::Value>, ApiError> {
    let code = sh
        .ui
        .grant()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no randomness"))?;
    Ok(Json(serde_json::json!({
        "path": format!("/ui/login?code={code}"),
        "expires_in_s": session::CODE_TTL.as_secs(),
    })))
}

/// Signs the browser in with `session` and sends it to the jobs.
fn signed_in(sh: &Shared, session: &str) -> Response {
    let mut resp = Redirect::to("/ui").into_response();
    if let Ok(v) = HeaderValue::from_str(&sh.ui.cookie(session)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(serde::Deserialize, Default)]
struct CodeQuery {
    code: Option<String>,
}

/// `GET /ui/login[?code=…]`: spends a sign-in code, or shows the form.
async fn login_form(State(sh): Shr, req: Request) -> Response {
    let q: CodeQuery = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if !sh.auth.is_on() {
        return Redirect::to("/ui").into_response();
    }
    match q.code {
        Some(code) => match sh.ui.redeem(&code) {
            Some(session) => signed_in(&sh, &session),
            None => (
                StatusCode::UNAUTHORIZED,
                page(pages::login_page(Some(
                    "That sign-in link has expired or was used already: run gridmr ui again.",
                ))),
            )
                .into_response(),
        },
        None => page(pages::login_page(None)),
    }
}

#[derive(serde::Deserialize)]
struct TokenForm {
    token: String,
}

/// `POST /ui/login` (form): the cluster token, for a session.
async fn login(State(sh): Shr, body: Body) -> Response {
    let refused =
        |why: &str| (StatusCode::UNAUTHORIZED, page(pages::login_page(Some(why)))).into_response();
    let Ok(bytes): Result<Bytes, _> = axum::body::to_bytes(body, 16 << 10).await else {
        return refused("That form was too large.");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&bytes) else {
        return refused("Paste the cluster token.");
    };
    let good = sh
        .auth
        .current()
        .is_some_and(|t| t.matches(form.token.trim().as_bytes()));
    if !good {
        return refused("That is not this cluster's token.");
    }
    match sh.ui.open() {
        Some(session) => signed_in(&sh, &session),
        None => refused("The master could not start a session."),
    }
}

/// `POST /ui/logout`: ends the session (a `POST`, so that no link or image elsewhere can).
async fn logout(State(sh): Shr, req: Request) -> Response {
    // Only from the UI's own pages: a form on another site posting here is refused (the
    // browser says where a request comes from; the pages send no referrer, so Origin may be
    // `null` for our own form).
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let cross_site = header("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none");
    let foreign_origin = match (header("origin"), header("host")) {
        (Some(origin), Some(host)) if origin != "null" => {
            origin.split_once("://").map_or(origin, |(_, h)| h) != host
        }
        _ => false,
    };
    if cross_site || foreign_origin {
        return (StatusCode::FORBIDDEN, "sign out from the UI's own pages").into_response();
    }
    if let Some(id) = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::Sessions::from_cookies)
    {
        sh.ui.close(id);
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&sh.ui.cookie("")) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::job_filter;
    use super::pages::{self, *};
    use gridmr_net::rest::{JobState, JobStatus, TaskAttempt};

    fn status(json: serde_json::Value) -> JobStatus {
        let mut base = serde_json::json!({
            "job_id": "job-000007", "status": "MAPPING", "mode": "DISTRIBUTED",
            "message": "mapping <now>", "outputs": [], "script_path": "", "input_path": "/s/in",
            "chunks_dir": "", "shuffle_dir": "", "partitions": 0, "map_splits": 2,
            "reduce_partitions": 1, "job": "wordcount", "output_dir": "/s/out", "error": null,
            "counters": {"gridmr": {"output_bytes": 2048}},
            "tasks": gridmr_net::rest::PhaseTasks::default(),
            "times": gridmr_net::rest::PhaseTimes::default(),
            "input_size_bytes": 5_000_000, "submitted_at_ms": 0,
        });
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn attempt(
        task: &str,
        worker: &str,
        start: u64,
        end: Option<u64>,
        outcome: &str,
    ) -> TaskAttempt {
        TaskAttempt {
            task: task.into(),
            attempt: 1,
            worker_id: worker.into(),
            started_ms: start,
            finished_ms: end,
            outcome: serde_json::from_value(serde_json::json!(outcome)).unwrap(),
            error: (outcome == "failed").then(|| "<boom>".into()),
            kind: None,
            progress: None,
            late: None,
        }
    }

    #[test]
    fn pages_escape_what_they_show_and_stop_polling_when_a_job_ends() {
        let running = status(serde_json::json!({}));
        let attempts = [
            attempt("map-00000", "w1", 1000, Some(3000), "succeeded"),
            attempt("map-00001", "w2", 1000, Some(2000), "failed"),
            attempt("map-00001", "w1", 2000, None, "running"),
        ];
        let extras = pages::JobExtras::default();
        let html = job_detail(&running, &attempts, &extras, 4000).into_string();
        assert!(html.contains("mapping &lt;now&gt;") && !html.contains("<now>"));
        assert!(html.contains("&lt;boom&gt;"));
        assert!(!html.contains("data-final"));
        // One lane per worker, one bar per attempt.
        assert_eq!(html.matches("<g class=\"lane\"").count(), 2, "{html}");
        assert_eq!(html.matches("<rect class=\"att").count(), 3);
        assert!(html.contains("2.0 kB") && html.contains("5.0 MB"));
        let done = status(serde_json::json!({"status": "SUCCEEDED"}));
        assert_eq!(done.status, JobState::Succeeded);
        let html = job_detail(&done, &attempts, &extras, 4000).into_string();
        assert!(html.contains("data-final=\"1\"") && html.contains("/result"));
    }

    #[test]
    fn a_job_page_says_an_error_once_hides_a_missing_combiner_and_shows_skew() {
        let failed = status(serde_json::json!({
            "status": "FAILED", "message": "task map-00001 failed 4 time(s); last error: boom",
            "error": "task map-00001 failed 4 time(s); last error: boom",
            "counters": {"gridmr": {"combine_input_records": 7, "map_input_bytes": 10025601011u64}},
        }));
        let mut failed = failed;
        failed.tasks.map = serde_json::from_value(serde_json::json!({"total": 3, "pending": 1,
            "running": 1, "succeeded": 1, "failed_attempts": 4, "lost_attempts": 0}))
        .unwrap();
        let mut done = attempt("map-00000", "w1", 1000, Some(3000), "succeeded");
        done.progress = Some(gridmr_net::rest::WorkDone {
            done: 5,
            total: 5,
            records: 40,
        });
        let attempts = [done, attempt("map-00001", "w2", 1000, Some(2000), "failed")];
        let extras = pages::JobExtras::default();
        let html = job_detail(&failed, &attempts, &extras, 4000).into_string();
        assert_eq!(html.matches("last error: boom").count(), 1, "{html}");
        assert!(
            !html.contains("combine_input_records"),
            "no combiner: {html}"
        );
        assert!(html.contains("10,025,601,011"), "{html}");
        assert!(html.contains("class=\"num pending\">1<"), "{html}");
        assert!(html.contains("2.00 s / 2.00 s / 2.00 s"), "{html}");
        let with = pages::JobExtras {
            combiner: true,
            ..Default::default()
        };
        let html = job_detail(&failed, &attempts, &with, 4000).into_string();
        assert!(html.contains("combine_input_records"));
    }

    #[test]
    fn the_jobs_list_filters_and_pages() {
        let jobs: Vec<JobStatus> = (1..=120)
            .map(|i| {
                let state = if i % 2 == 0 { "SUCCEEDED" } else { "FAILED" };
                let mut s = status(serde_json::json!({"status": state}));
                s.job_id = format!("job-{i:06}");
                s
            })
            .collect();
        let all = jobs_table(&jobs, &job_filter(None)).into_string();
        assert_eq!(all.matches("<tr data-job=").count(), pages::JOBS_PER_PAGE);
        assert!(
            all.contains("job-000120") && !all.contains("job-000070\""),
            "newest first"
        );
        assert!(all.contains("page 1 of 3") && all.contains("href=\"/ui?page=1\""));
        let failed =
            jobs_table(&jobs, &job_filter(Some("state=failed&page=1".into()))).into_string();
        assert_eq!(failed.matches("<tr data-job=").count(), 10);
        assert!(failed.contains("job-000019") && !failed.contains("job-000020"));
        assert!(failed.contains("60 job(s)"));
    }

    #[test]
    fn numbers_read_as_people_read_them() {
        assert_eq!(pages::count(10_025_601_011), "10,025,601,011");
        assert_eq!(pages::count(999), "999");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(17_400_000), "17.4 MB");
        assert_eq!(secs(0.5), "0.50 s");
        assert_eq!(secs(185.0), "3 min 05 s");
        assert_eq!(clock(3_723_000), "01:02:03");
    }
}
