//! Fetching a `script_url` from an allowed host, within a size cap and a few redirects.

use super::*;

/// Largest job script `script_url` may download.
pub(super) const MAX_SCRIPT_BYTES: usize = 4 << 20;
/// Most redirects a download follows (each to an allowed host).
pub(super) const MAX_REDIRECTS: usize = 3;

/// Whether `url`'s host (or `host:port`) is in `GRIDMR_SCRIPT_HOSTS`.
pub(super) fn host_allowed(url: &reqwest::Url, allowed: &[String]) -> bool {
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

/// A GET of `url` for `field`: only from `GRIDMR_SCRIPT_HOSTS`, redirects only to those hosts,
/// and no byte of the body in an error. `whole` bounds the whole exchange; without it only a
/// silence of 60 s between reads ends it (a large input takes as long as it takes).
async fn get_allowed(
    field: &str,
    url: &str,
    allowed: &[String],
    whole: Option<Duration>,
) -> ApiResult<reqwest::Response> {
    let bad = |e: String| ApiError::bad(format!("{field} {url}: {e}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if allowed.is_empty() {
        return Err(bad(
            "downloads are off on this master (GRIDMR_SCRIPT_HOSTS lists the hosts allowed); put the file on the shared folder".into(),
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
    let mut client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .redirect(policy);
    if let Some(whole) = whole {
        client = client.timeout(whole);
    }
    let resp = client
        .build()
        .map_err(|e| bad(e.to_string()))?
        .get(parsed)
        .send()
        .await
        .map_err(|e| bad(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(bad(format!("HTTP {}", resp.status())));
    }
    Ok(resp)
}

/// Downloads a job script (see [`get_allowed`]), at most [`MAX_SCRIPT_BYTES`] (counted while
/// streaming).
pub(super) async fn download(url: &str, allowed: &[String]) -> ApiResult<Vec<u8>> {
    let bad = |e: String| ApiError::bad(format!("script_url {url}: {e}"));
    let resp = get_allowed("script_url", url, allowed, Some(Duration::from_secs(30))).await?;
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

/// Downloads an `input_url` over http(s) (see [`get_allowed`]) into a fresh upload as
/// `input.data`, streamed, at most `MAX_UPLOAD_BYTES`; the job takes the upload as it would a
/// client's. Returns the file's path.
pub(super) async fn download_input(sh: &Shared, url: &str) -> ApiResult<std::path::PathBuf> {
    use crate::master::uploads;
    use futures_util::TryStreamExt;
    let resp = get_allowed("input_url", url, &sh.settings.script_hosts, None).await?;
    let cap = sh.settings.max_upload_bytes;
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("input_url {url}: larger than MAX_UPLOAD_BYTES ({cap} bytes)"),
        ));
    }
    let shared = sh.shared_dir.clone();
    let (id, _) = tokio::task::spawn_blocking(move || uploads::create(&shared))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let body = Body::from_stream(resp.bytes_stream().map_err(|e| e.without_url()));
    let written = uploads::write(&sh.shared_dir, &id, "input.data", body, cap).await;
    match written {
        Ok((path, _)) => Ok(path),
        Err(e) => {
            let _ = uploads::delete(&sh.shared_dir, &id);
            Err(ApiError::from(e))
        }
    }
}
