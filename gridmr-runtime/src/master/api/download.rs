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

/// Downloads a job script: only from `GRIDMR_SCRIPT_HOSTS`, redirects only
/// to those hosts, at most [`MAX_SCRIPT_BYTES`] (counted while streaming),
/// and no byte of the body in an error.
pub(super) async fn download(url: &str, allowed: &[String]) -> ApiResult<Vec<u8>> {
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
