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
    let files = match (state, file) {
        (JobState::Succeeded, Some(f)) => vec![f],
        // Too large for result.txt: its part files, joined as it would be.
        (JobState::Succeeded, None) => parts,
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
    let (size, stream) = stream_files(&sh, files).await?;
    let limit = sh.settings.result_inline_max_bytes;
    match answer_as_text(q.format.as_deref(), size, limit)? {
        true => Ok(text_answer(size, stream)),
        false => Ok(json_answer(&id, stream)),
    }
}

/// A result streamed as `text/plain`, `size` bytes.
fn text_answer(size: u64, stream: ByteStream) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, size.into());
    (headers, Body::from_stream(stream)).into_response()
}

/// A result streamed as the original's JSON answer, `{"job_id", "status",
/// "result"}`, the result escaped as it goes (never held whole).
fn json_answer(id: &str, stream: ByteStream) -> Response {
    let head = format!(
        "{{\"job_id\":{},\"status\":\"SUCCEEDED\",\"result\":\"",
        serde_json::Value::from(id)
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let body = JsonString::new(stream).wrap(head.into_bytes(), b"\"}".to_vec());
    (headers, Body::from_stream(body)).into_response()
}

/// The bytes of a result, chunk by chunk.
pub(super) type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// Escapes a byte stream as the inside of a JSON string: UTF-8 kept across
/// chunk boundaries, invalid bytes as U+FFFD (as `String::from_utf8_lossy`).
struct JsonString {
    inner: ByteStream,
    /// The start of a character cut by the chunk's end.
    carry: Vec<u8>,
}

impl JsonString {
    fn new(inner: ByteStream) -> Self {
        JsonString {
            inner,
            carry: Vec::new(),
        }
    }

    /// `head`, the escaped stream, then `tail`.
    fn wrap(self, head: Vec<u8>, tail: Vec<u8>) -> ByteStream {
        use futures_util::StreamExt;
        let body = futures_util::stream::unfold(Some(self), |state| async move {
            let mut me = state?;
            match me.inner.next().await {
                Some(Ok(chunk)) => {
                    let escaped = me.escape(&chunk, false);
                    Some((Ok(Bytes::from(escaped)), Some(me)))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None => {
                    let rest = me.escape(&[], true);
                    Some((Ok(Bytes::from(rest)), None))
                }
            }
        });
        futures_util::stream::once(async move { Ok(Bytes::from(head)) })
            .chain(body)
            .chain(futures_util::stream::once(
                async move { Ok(Bytes::from(tail)) },
            ))
            .boxed()
    }

    /// The escaped text of `chunk` after what was carried; at the `end`,
    /// a cut character left over is invalid.
    fn escape(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        let mut text = String::with_capacity(bytes.len());
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        None if end => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            break;
                        }
                        None => {
                            self.carry = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        let quoted = serde_json::Value::from(text).to_string();
        let mut out = quoted.into_bytes();
        // The quotes go: the answer's head and tail hold them.
        out.pop();
        out.remove(0);
        out
    }
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
    let gone = |e: crate::objstore::ObjectError| {
        ApiError::new(StatusCode::GONE, format!("the result: {e}"))
    };
    let out = sh.objects.check(url).map_err(gone)?;
    let manifest = read_manifest(&sh.objects, &out).await.map_err(gone)?;
    let size = manifest.size();
    let as_text = answer_as_text(format, size, sh.settings.result_inline_max_bytes)?;
    let parts: Vec<_> = manifest.parts.iter().map(|p| out.join(&p.name)).collect();
    let stream = object_chunks(sh.objects.clone(), parts);
    match as_text {
        true => Ok(text_answer(size, stream)),
        false => Ok(json_answer(&id, stream)),
    }
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
) -> ApiResult<(u64, ByteStream)> {
    use futures_util::StreamExt;
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
    Ok((size, stream.boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks cut anywhere, a character cut in two included, escape to the
    /// JSON string of the whole; invalid bytes read as U+FFFD.
    #[tokio::test]
    async fn a_result_escapes_as_one_json_string_however_it_is_cut() {
        let text = "a\tb \"q\" \\ ñ€😀\nend\u{1}";
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice("z".as_bytes());
        bytes.extend_from_slice(&"é".as_bytes()[..1]);
        let whole =
            serde_json::Value::from(String::from_utf8_lossy(&bytes).into_owned()).to_string();
        for size in 1..=bytes.len() {
            let chunks: Vec<std::io::Result<Bytes>> = bytes
                .chunks(size)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let stream: ByteStream = Box::pin(futures_util::stream::iter(chunks));
            let body = JsonString::new(stream).wrap(b"\"".to_vec(), b"\"".to_vec());
            let got: Vec<Bytes> = futures_util::TryStreamExt::try_collect(body).await.unwrap();
            assert_eq!(
                String::from_utf8(got.concat()).unwrap(),
                whole,
                "cut every {size}"
            );
        }
    }
}
