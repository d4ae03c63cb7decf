//! Checking what a client sends: a submission's fields, counts, paths and parameters, and a
//! worker's address.

use super::*;

/// Checks a job's parameters: at most [`MAX_PARAMS`], each name of at most
/// [`MAX_PARAM_NAME`] letters, digits, `.`, `_` or `-` (so that it is also
/// a plain environment variable suffix), each value free text within the
/// request's size.
pub(super) fn check_params(
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

pub(super) fn check_count(name: &str, value: Option<u32>, max: u32) -> ApiResult<()> {
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
pub(super) fn local_path(sh: &Shared, field: &str, url: &str) -> ApiResult<std::path::PathBuf> {
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

/// Resolves an input given by a client: an object URL in an allowed bucket (kept as the URL),
/// else a [`local_path`].
fn checked_input(sh: &Shared, field: &str, url: &str) -> ApiResult<std::path::PathBuf> {
    if crate::objstore::is_object_url(url) {
        let checked = sh
            .objects
            .check(url)
            .map_err(|e| ApiError::bad(format!("{field}: {e}")))?;
        return Ok(checked.to_string().into());
    }
    local_path(sh, field, url)
}

/// Refuses fields longer than a command or path can sensibly be (a 400
/// before anything else is looked at).
pub(super) fn check_sizes(req: &SubmitRequest) -> ApiResult<()> {
    for (field, value, max) in [
        ("mapper", &req.mapper, MAX_COMMAND_BYTES),
        ("reducer", &req.reducer, MAX_COMMAND_BYTES),
        ("combiner", &req.combiner, MAX_COMMAND_BYTES),
        ("job", &req.job, 256),
        ("script_url", &req.script_url, MAX_PATH_BYTES),
        ("output_url", &req.output_url, MAX_PATH_BYTES),
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
pub(super) fn submitted_kind(
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
pub(super) fn submitted_shuffle(req: &SubmitRequest) -> ApiResult<ShuffleSettings> {
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
pub(super) fn check_submit(sh: &Shared, req: SubmitRequest) -> ApiResult<(JobRequest, Staging)> {
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
    // An http(s) input is downloaded at submission (the original's rule), from the hosts
    // GRIDMR_SCRIPT_HOSTS allows; until then its URL stands for it.
    let input_path = match parse_url(&req.input_url) {
        Ok(Location::Remote(url)) => {
            staging.input = Some(url.clone());
            std::path::PathBuf::from(url)
        }
        _ => checked_input(sh, "input_url", &req.input_url)?,
    };
    let more_inputs = req
        .inputs
        .iter()
        .flatten()
        .map(|i| checked_input(sh, "inputs", i))
        .collect::<ApiResult<Vec<_>>>()?;
    let output_url = match &req.output_url {
        None => None,
        Some(url) if crate::objstore::is_object_url(url) => Some(
            sh.objects
                .check(url)
                .map_err(|e| ApiError::bad(format!("output_url: {e}")))?
                .to_string(),
        ),
        Some(url) => {
            return Err(ApiError::bad(format!(
                "output_url {url:?} is not an object-store URL (s3://, gs://, az://); \
                 other outputs go to the job's folder"
            )))
        }
    };
    // Object inputs and outputs are read and written by tasks, never by one SINGLE process.
    let objects = output_url.is_some()
        || std::iter::once(&input_path)
            .chain(&more_inputs)
            .any(|p| crate::objstore::is_object_url(&p.to_string_lossy()));
    let shuffle = submitted_shuffle(&req)?;
    let shuffle_mode = match &req.shuffle_mode {
        None => sh.settings.shuffle,
        Some(mode) => mode
            .parse()
            .map_err(|e: gridmr_core::shuffle::UnknownShuffleMode| ApiError::bad(e.to_string()))?,
    };
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
        // The original's DEFAULT_PARTITIONS, for a job that names no width at all.
        partitions: match (req.partitions, req.map_splits, req.reduce_partitions) {
            (None, None, None) => sh.settings.default_partitions.filter(|&p| p > 0),
            (given, ..) => given,
        },
        map_splits: req.map_splits,
        reduce_partitions: req.reduce_partitions,
        force_distributed: req.force_distributed.unwrap_or(false) || objects,
        shuffle,
        timeout_s: req.timeout_s.unwrap_or(0),
        map_only,
        shuffle_mode,
        output_url,
    };
    Ok((request, staging))
}

pub(super) fn check_address(address: &str) -> ApiResult<()> {
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
