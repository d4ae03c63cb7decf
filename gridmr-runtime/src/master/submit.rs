//! Submission: a checked request becomes a job folder (its script, files
//! and uploads staged into it), then a plan, made off the lock on the
//! blocking pool, goes back to the scheduler as an event.

use super::*;

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
    /// An http(s) `input_url`, downloaded before the job is laid out.
    pub(crate) input: Option<String>,
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
    let (foreseen, listed) = foresee(shared, &request).unzip();
    let status = {
        let mut st = shared.lock();
        let effects = st.handle(
            Event::Submitted {
                id: id.clone(),
                request: Box::new(request.clone()),
                dirs,
                foreseen,
            },
            clock::now_ms(),
        );
        let status = st.job(&id).map(view::JobView::status);
        drop(st);
        apply(shared, effects);
        status.ok_or_else(|| Error::setting("job", format!("{id} vanished as it was submitted")))?
    };
    shared.spawn_call(prepare(shared.clone(), id, request, listed));
    shared.poke();
    Ok(status)
}

/// The mode a job of file inputs will run in, from their sizes (the same rule planning applies
/// moments later), so that the submission's answer says it, with the files listed, which
/// planning then takes rather than listing them again; `None` for object inputs, listed at
/// planning only, or inputs that cannot be listed (planning reports that).
fn foresee(shared: &Shared, request: &JobRequest) -> Option<(sched::Mode, Vec<InputFile>)> {
    let specs = request.input_specs();
    if specs.iter().any(|s| crate::objstore::is_object_url(s)) {
        return None;
    }
    let files = list_inputs(&specs).ok()?;
    let size = files.iter().map(|f| f.len).sum::<u64>();
    let slots = shared.lock().workers.live_slots();
    let mode = sched::plan::foresee(request, Some(size), slots, shared.settings.threshold_bytes);
    Some((mode, files))
}

/// Plans job `id`: lists its inputs (or takes `listed`, the files its submission listed), runs
/// a typed job's planning hook, and hands the plan (or why there is none) to the scheduler.
pub(super) async fn prepare(
    shared: Arc<Shared>,
    id: gridmr_core::JobId,
    request: JobRequest,
    listed: Option<Vec<InputFile>>,
) {
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
    let samples = crate::objstore::input::Samples::new(shared.objects.clone());
    // Object inputs are listed here, with the store's client; files on the blocking pool
    // (unless the submission listed them).
    let specs = request.input_specs();
    let listed = match (
        listed,
        specs.iter().any(|s| crate::objstore::is_object_url(s)),
    ) {
        (Some(files), _) => Some(Ok(files)),
        (None, true) => Some(
            crate::objstore::input::list_inputs(&shared.objects, &specs)
                .await
                .map_err(|e| PlanError::Input(e.to_string())),
        ),
        (None, false) => None,
    };
    let planned = tokio::task::spawn_blocking(move || {
        let typed = typed
            .transpose()
            .map_err(|e| PlanError::UnknownJob(e.to_string()))?;
        let format = typed
            .as_ref()
            .map_or(gridmr_core::InputFormat::Lines, |j| j.input_format());
        let files = match listed {
            Some(files) => files?,
            None => list_inputs(&specs).map_err(|e| PlanError::Input(e.to_string()))?,
        };
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
                    samples: &samples,
                })
                .map_err(|e| PlanError::Hook(e.to_string()))?;
        }
        Ok(plan)
    })
    .await
    .unwrap_or_else(|e| Err(PlanError::Internal(e.to_string())));
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
        plan: planned,
    });
}
