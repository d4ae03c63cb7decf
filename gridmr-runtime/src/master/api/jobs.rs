//! `/jobs`: submit, list, status (with long-polling), cancel, delete, the folder listing, the attempts and their logs.

use super::*;

/// Submits a job.
#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = SubmitRequest,
    responses((status = 200, description = "the job, queued", body = JobStatus),
        (status = 400, description = "a bad request, input or setting", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody),
        (status = 413, description = "a request body over 256 KiB", body = ErrorBody), (status = 415, description = "not JSON", body = ErrorBody)))]
pub(super) async fn submit_job(State(sh): Shr, body: Body) -> ApiResult<Json<JobStatus>> {
    let body = read_body(body).await?;
    let req: SubmitRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid job request: {e}")))?;
    let (mut checked, mut staging) = check_submit(&sh, req)?;
    if let Some(url) = staging.input.take() {
        checked.input_path = download_input(&sh, &url).await?;
    }
    // Every file a folder or glob names must resolve inside the roots too.
    let roots = sh.input_roots();
    let specs = checked.input_specs();
    if let Some(url) = &checked.output_url {
        output_is_new(&sh, url).await?;
    }
    tokio::task::spawn_blocking(move || {
        specs
            .iter()
            .filter(|spec| !crate::objstore::is_object_url(spec))
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

/// Refuses an object output prefix that already holds objects (409), as Hadoop refuses an
/// output folder that exists: a job's manifest must never sit beside another's parts.
async fn output_is_new(sh: &Shared, url: &str) -> ApiResult<()> {
    let out = sh
        .objects
        .check(url)
        .map_err(|e| ApiError::bad(format!("output_url: {e}")))?;
    match crate::objstore::output::is_empty(&sh.objects, &out).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("output_url {out} already holds objects; choose a new prefix or remove them"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("output_url: the object store: {e}"),
        )),
    }
}

#[derive(Default, Deserialize)]
pub(super) struct ListQuery {
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
pub(super) async fn list_jobs(State(sh): Shr, RawQuery(q): RawQuery) -> ApiResult<Json<JobList>> {
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
pub(super) struct StatusQuery {
    wait_ms: Option<i64>,
}

/// A job's status; with `wait_ms`, answers as soon as it ends.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "the job's id"),
        ("wait_ms" = Option<i64>, Query, minimum = 0, description = "wait up to this long for the job to end (at most 60 s)")),
    responses((status = 200, description = "the job", body = JobStatus),
        (status = 400, description = "a bad query", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
pub(super) async fn job_status(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobStatus>> {
    let id = job_path_id(id);
    let q: StatusQuery = query(q)?;
    let wait_ms = u64::try_from(q.wait_ms.unwrap_or(0))
        .map_err(|_| ApiError::bad("wait_ms must be 0 or more"))?;
    let wait = Duration::from_millis(wait_ms.min(60_000));
    let deadline = tokio::time::Instant::now() + wait;
    // A job not on the board yet (its step has not been published) is
    // published first.
    let mut beats = match sh.statuses.subscribe(&id) {
        Some(b) => b,
        None => {
            sh.statuses.publish(&mut sh.lock());
            sh.statuses
                .subscribe(&id)
                .ok_or_else(|| ApiError::unknown_job(&id))?
        }
    };
    // Woken by this job's changes only; the status is built once, to answer.
    while !beats.borrow_and_update().ended {
        match tokio::time::timeout_at(deadline, beats.changed()).await {
            Ok(Ok(())) => continue,
            _ => break,
        }
    }
    let status = sh
        .statuses
        .status(&id, || sh.lock())
        .ok_or_else(|| ApiError::unknown_job(&id))?;
    Ok(Json(JobStatus::clone(&status)))
}

#[derive(Default, Deserialize)]
pub(super) struct DeleteQuery {
    purge: Option<bool>,
}

/// Cancels a job and keeps its record, as CANCELLED (Hadoop's `job
/// -kill`): its attempts are stopped and its shuffle and attempt files
/// removed. A job that has already ended keeps its state.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "cancelled, or already ended", body = CancelAnswer),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
pub(super) async fn cancel_job(
    State(sh): Shr,
    Path(id): Path<String>,
) -> ApiResult<Json<gridmr_net::rest::CancelAnswer>> {
    let id = job_path_id(id);
    let (cancelled, effects, status) = {
        let mut st = sh.lock();
        let job = st.job(&id).ok_or_else(|| ApiError::unknown_job(&id))?;
        let (ended, job) = (job.state.is_terminal(), job.id.clone());
        let effects = st.handle(Event::Cancel { job }, crate::master::clock::now_ms());
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
pub(super) async fn delete_job(
    State(sh): Shr,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<DeleteAnswer>> {
    let q: DeleteQuery = query(q)?;
    let id = job_path_id(id);
    // An id that is no job id names no job.
    let job = gridmr_core::JobId::new(id.clone()).map_err(|_| ApiError::not_deleted(&id))?;
    let effects = sh
        .lock()
        .handle(Event::Delete { job }, crate::master::clock::now_ms());
    let Some((cancelled, dirs)) = effects.iter().find_map(|e| match e {
        Effect::Deleted {
            was_running, dirs, ..
        } => Some((*was_running, dirs.clone())),
        _ => None,
    }) else {
        return Err(ApiError::not_deleted(&id));
    };
    apply(&sh, effects);
    sh.poke();
    let purge = q.purge.unwrap_or(false);
    let base = dirs.base.clone();
    if !purge {
        // Its records go: a deleted job must not come back at a restart.
        let _ = tokio::task::spawn_blocking(move || crate::master::store::forget(&base)).await;
    } else {
        tokio::task::spawn_blocking(move || crate::master::store::purge(&base))
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
pub(super) fn names(share: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    crate::master::confined::list(share, dir).unwrap_or_default()
}

/// The files of a job's folder.
#[utoipa::path(get, path = "/jobs/{id}/ls", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the listing", body = JobListing),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
pub(super) async fn job_ls(State(sh): Shr, Path(id): Path<String>) -> ApiResult<Json<JobListing>> {
    let id = job_path_id(id);
    let job = sh
        .lock()
        .job(&id)
        .cloned()
        .ok_or_else(|| ApiError::unknown_job(&id))?;
    let share = sh.shared_dir.clone();
    let listing = tokio::task::spawn_blocking(move || JobListing {
        base: job.dirs.base.display().to_string(),
        script: job.kind.script_path(),
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
        partitions: match job.mode {
            gridmr_scheduler::Mode::Single => 1,
            gridmr_scheduler::Mode::Distributed => job.partitions_asked,
        },
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(listing))
}

/// Every attempt of a job's tasks.
#[utoipa::path(get, path = "/jobs/{id}/tasks", tag = "jobs",
    params(("id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "the attempts", body = TaskAttempts),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such job", body = ErrorBody)))]
pub(super) async fn job_tasks(
    State(sh): Shr,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskAttempts>> {
    let id = job_path_id(id);
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
    let id = job_path_id(id);
    let base = {
        let st = sh.lock();
        st.job(&id)
            .ok_or_else(|| ApiError::unknown_job(&id))?
            .dirs
            .base
            .clone()
    };
    let task = gridmr_scheduler::TaskId::parse(&task)
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
        for file in crate::master::confined::list(&share, &dir).unwrap_or_default() {
            let Some(attempt) = file
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".log"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // Regular files only, reached through no link: a link is no attempt's log.
            let mut text = Vec::new();
            if let Ok(f) = crate::master::confined::open_file(&share, &dir.join(&file)) {
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
