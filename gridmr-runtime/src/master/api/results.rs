//! `GET /jobs/{id}/result`: the committed output, as JSON when small, else streamed from the part files (every file opened confined to the job's folder).

use super::*;

#[derive(Default, Deserialize)]
pub(super) struct ResultQuery {
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
    let id = job_path_id(id);
    let q: ResultQuery = query(q)?;
    let (state, file, parts, error, output_url) = {
        let st = sh.lock();
        let job = st.job(&id).ok_or_else(|| ApiError::unknown_job(&id))?;
        (
            view::rest_state(job.state),
            job.result_file.clone(),
            job.parts.clone(),
            job.error.clone(),
            job.output_url.clone(),
        )
    };
    if let (JobState::Succeeded, Some(url)) = (state, &output_url) {
        return object_result(&sh, id, url, q.format.as_deref()).await;
    }
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
    let as_text = answer_as_text(
        q.format.as_deref(),
        size,
        sh.settings.result_inline_max_bytes,
    )?;
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

/// Whether a result of `size` bytes is answered as text (asked for, or too large for JSON
/// without being asked for JSON) or as JSON; JSON asked for past `limit` answers 413.
fn answer_as_text(format: Option<&str>, size: u64, limit: u64) -> ApiResult<bool> {
    match format {
        Some("text") => Ok(true),
        Some("json") if size > limit => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the result is {size} bytes, more than RESULT_INLINE_MAX_BYTES = {limit}; ask for ?format=text"),
        )),
        Some("json") | None => Ok(size > limit),
        Some(other) => Err(ApiError::bad(format!("format must be json or text, not {other:?}"))),
    }
}

/// A committed object output: the parts its manifest (`_SUCCESS`) names, read from the store,
/// inline as JSON up to `RESULT_INLINE_MAX_BYTES`, else streamed as text.
async fn object_result(
    sh: &Shared,
    id: String,
    url: &str,
    format: Option<&str>,
) -> ApiResult<Response> {
    use crate::objstore::output::read_manifest;
    use futures_util::TryStreamExt;
    let gone = |e: crate::objstore::ObjectError| {
        ApiError::new(StatusCode::GONE, format!("the result: {e}"))
    };
    let out = sh.objects.check(url).map_err(gone)?;
    let manifest = read_manifest(&sh.objects, &out).await.map_err(gone)?;
    let size = manifest.size();
    let as_text = answer_as_text(format, size, sh.settings.result_inline_max_bytes)?;
    let parts: Vec<_> = manifest.parts.iter().map(|p| out.join(&p.name)).collect();
    let stream = object_chunks(sh.objects.clone(), parts);
    if as_text {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CONTENT_LENGTH, size.into());
        return Ok((headers, Body::from_stream(stream)).into_response());
    }
    let chunks: Vec<axum::body::Bytes> = stream
        .try_collect()
        .await
        .map_err(|e| ApiError::new(StatusCode::GONE, format!("the result: {e}")))?;
    Ok(Json(JobResult {
        job_id: id,
        status: JobState::Succeeded,
        result: String::from_utf8_lossy(&chunks.concat()).into_owned(),
    })
    .into_response())
}

/// The bytes of `parts`, one object after the other (built outside the handler, so that its
/// future holds a boxed stream only).
fn object_chunks(
    stores: crate::objstore::ObjectStores,
    parts: Vec<crate::objstore::ObjectUrl>,
) -> futures_util::stream::BoxStream<'static, std::io::Result<axum::body::Bytes>> {
    use futures_util::{StreamExt, TryStreamExt};
    use object_store::ObjectStoreExt;
    futures_util::stream::iter(parts)
        .then(move |url| {
            let stores = stores.clone();
            async move {
                let client = stores.client(&url).map_err(std::io::Error::other)?;
                let got = client
                    .get(&url.path())
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(got.into_stream().map_err(std::io::Error::other))
            }
        })
        .try_flatten()
        .boxed()
}

/// Opens files of the share to serve them, with their sizes: beneath the share, through no
/// symbolic link, regular files only (`confined`); a file gone or refused answers 410.
pub(super) async fn open_confined(
    sh: &Shared,
    files: Vec<std::path::PathBuf>,
) -> ApiResult<Vec<(std::fs::File, u64)>> {
    let share = sh.shared_dir.clone();
    tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|path| {
                let file = crate::master::confined::open_file(&share, path)?;
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
pub(super) async fn stream_files(
    sh: &Shared,
    files: Vec<std::path::PathBuf>,
) -> ApiResult<Response> {
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
                        crate::master::confined::open_file(&share, &next)
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
