//! `/workers`: the list, registration (checked by a probe of the worker's own service) and heartbeats.

use super::*;

/// The registered workers.
#[utoipa::path(get, path = "/workers", tag = "cluster",
    responses((status = 200, description = "the workers", body = WorkerList), (status = 401, description = "no or wrong cluster token", body = ErrorBody)))]
pub(super) async fn list_workers(State(sh): Shr) -> Json<WorkerList> {
    let hosts = sh.hosts.lock().map(|h| h.clone()).unwrap_or_default();
    let st = sh.lock();
    Json(WorkerList {
        workers: st
            .workers
            .list
            .iter()
            .map(|w| {
                let mut info = view::worker_info(w);
                info.host = hosts.get(w.id.as_str()).copied();
                (w.id.to_string(), info)
            })
            .collect(),
        ring: st.workers.ring(),
    })
}

/// Reads a registration from the query string, a form body or a JSON body.
pub(super) fn registration(
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

/// Asks the worker at `address` who it is (the `Heartbeat` RPC, with the
/// token). `Err` when it does not answer.
pub(super) async fn probe(
    sh: &Shared,
    address: &str,
    id: &str,
) -> Result<gridmr_net::proto::HeartbeatResp, ProbeError> {
    let control = sh.control_timeout();
    let endpoint = sh
        .endpoint(address)
        .map_err(ProbeError::Address)?
        .connect_timeout(control)
        .timeout(control);
    let channel = endpoint.connect().await.map_err(|e| {
        use std::error::Error as _;
        ProbeError::Connect(match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        })
    })?;
    worker_rpc(channel, &sh.auth)
        .heartbeat(HeartbeatReq {
            worker_id: id.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(ProbeError::Answered)
}

/// Why a worker's address did not answer a probe.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProbeError {
    /// The address is not one a channel can be built to.
    #[error("{0}")]
    Address(crate::Error),
    /// Nothing answered there in time.
    #[error("{0}")]
    Connect(String),
    /// Something answered, with an error (a wrong token, not a worker).
    #[error("{}", .0.message())]
    Answered(tonic::Status),
}

/// An id alive at another address keeps it while that address still
/// answers as this worker: an impostor cannot take over a live worker's
/// identity, and a worker that moved can come back.
async fn refuse_impostor(sh: &Shared, id: &str, address: &str) -> ApiResult<()> {
    let previous = {
        let st = sh.lock();
        st.workers
            .list
            .iter()
            .find(|w| w.id == id && w.is_alive() && w.address != address)
            .map(|w| w.address.clone())
    };
    if let Some(old) = previous {
        if let Ok(hello) = probe(sh, &old, id).await {
            if hello.worker_id.is_empty() || hello.worker_id == id {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "worker {id:?} is alive at {old}; stop it first or pick another WORKER_ID"
                    ),
                ));
            }
        }
        tracing::info!(worker = %id, old = %old, new = %address, "worker moved");
    }
    Ok(())
}

/// The channel a worker's tasks go through: no per-call deadline (tasks
/// run long); HTTP/2 keep-alives notice a peer that vanished without
/// closing the connection.
fn task_channel(sh: &Shared, address: &str) -> ApiResult<tonic::transport::Channel> {
    Ok(sh
        .endpoint(address)
        .map_err(|e| ApiError::bad(e.to_string()))?
        .connect_timeout(sh.control_timeout())
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Registers a worker (a JSON body, a form, or the original's query string).
#[utoipa::path(post, path = "/workers/register", tag = "cluster", request_body = RegisterRequest,
    responses((status = 200, description = "registered", body = RegisterAnswer),
        (status = 400, description = "a bad id or address, or one that does not answer", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody),
        (status = 409, description = "the id is alive at another address", body = ErrorBody), (status = 413, description = "a body over 256 KiB", body = ErrorBody)))]
pub(super) async fn register_worker(
    State(sh): Shr,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<RegisterAnswer>> {
    let body = read_body(body).await?;
    let req = registration(q, &headers, &body)?;
    let worker = gridmr_core::WorkerId::new(req.worker_id.trim()).map_err(|e| {
        ApiError::bad(format!(
            "worker_id {:?} is not a plain name (no '/', '\\', spaces or control characters)",
            e.text
        ))
    })?;
    let id = worker.as_str();
    check_address(&req.address)?;
    refuse_impostor(&sh, id, &req.address).await?;
    let unreachable = |e: ProbeError| {
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
    let tasks = task_channel(&sh, &req.address)?;
    sh.pool.insert(id, worker_rpc(tasks, &sh.auth));
    let entry = WorkerEntry {
        // A GridMR worker names itself and lists its typed jobs; the
        // original's workers do neither.
        jobs: (!hello.worker_id.is_empty()).then(|| hello.jobs.clone()),
        heartbeats: req.heartbeat_ms.is_some(),
        build: hello.build.clone(),
        ..WorkerEntry::new(
            worker.clone(),
            req.address.clone(),
            slots,
            crate::master::clock::now_ms(),
        )
    };
    let (effects, count, ring): (Vec<Effect>, usize, Vec<String>) = {
        let mut st = sh.lock();
        let effects = st.handle(
            Event::WorkerRegistered(entry),
            crate::master::clock::now_ms(),
        );
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
pub(super) async fn heartbeat(
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
    let host = beat.as_ref().and_then(|b| b.host);
    let (claimed, reports) = beat.map_or((None, Vec::new()), |b| (b.address, b.progress));
    let (known, revived, effects) = {
        let mut st = sh.lock();
        let registered = st
            .workers
            .list
            .iter()
            .find(|w| w.id == id.as_str())
            .map(|w| (w.address.clone(), w.id.clone()));
        match (&registered, &claimed) {
            (Some((at, _)), Some(claimed)) if at != claimed => {
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
        let was_alive = st.workers.live().any(|w| w.id == id.as_str());
        let known = registered.is_some();
        let mut effects = Vec::new();
        if let Some((_, worker)) = registered {
            let reports = reports
                .iter()
                .filter_map(|r| {
                    Some(gridmr_scheduler::ProgressReport {
                        job_id: r.job_id.parse().ok()?,
                        task: gridmr_scheduler::TaskId::parse(&r.task)?,
                        attempt: r.attempt,
                        work: view::work_of(r.work),
                    })
                })
                .collect();
            let beat = Event::Heartbeat { worker, reports };
            effects = st.handle(beat, crate::master::clock::now_ms());
        }
        (known, !was_alive, effects)
    };
    apply(&sh, effects);
    if !known {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown worker {id:?}; register first"),
        ));
    }
    if let (Some(host), Ok(mut hosts)) = (host, sh.hosts.lock()) {
        hosts.insert(id.clone(), host);
    }
    if revived {
        sh.poke();
    }
    Ok(Json(serde_json::json!({"ok": true})))
}
