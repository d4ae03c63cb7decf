//! An async client for the master's REST API.
//!
//! ```no_run
//! # async fn demo() -> gridmr_net::Result<()> {
//! use gridmr_net::{rest::SubmitRequest, Client};
//! let master = Client::new("127.0.0.1:8080");
//! let job = master
//!     .submit(&SubmitRequest {
//!         job: Some("wordcount".into()),
//!         input_url: "/data/shared/books".into(),
//!         ..Default::default()
//!     })
//!     .await?;
//! let done = master.wait(&job.job_id, |_| {}).await?;
//! println!("{:?}", done.status);
//! # Ok(()) }
//! ```

use crate::auth::Token;
use crate::error::{Error, Result};
use crate::rest::{
    CancelAnswer, DeleteAnswer, ErrorBody, Health, Heartbeat, JobList, JobListing, JobMetricsList,
    JobStatus, RegisterAnswer, RegisterRequest, SubmitRequest, TaskAttempts, UploadAnswer,
    UploadedFile, WorkerList,
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::time::Duration;

/// How long one long-poll of [`Client::wait`] lasts on the server.
const WAIT_SLICE: Duration = Duration::from_millis(500);

/// Longest run of failed polls [`Client::wait`] rides out (a master
/// restarting) before it gives up.
pub const WAIT_OUTAGE: Duration = Duration::from_secs(120);

/// A handle on one master. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// `Bearer <token>`, marked sensitive so that no debug output shows it.
    bearer: Option<reqwest::header::HeaderValue>,
}

fn normalize(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.starts_with("http://") || base.starts_with("https://") {
        base.to_owned()
    } else {
        format!("http://{base}")
    }
}

impl Client {
    /// A client for the master at `base`: `http://host:port`,
    /// `https://host:port` or `host:port`, sending no token (see
    /// [`Client::with_token`]) and trusting the system's roots for https.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Client {
            base: normalize(base),
            http,
            bearer: None,
        }
    }

    /// A client that trusts the PEM certificates in `ca` for an https master
    /// (`GRIDMR_TLS_CA`), besides the usual roots.
    pub fn with_ca(base: &str, ca: &std::path::Path) -> Result<Self> {
        let tls = |reason: String| Error::Tls {
            what: "CA",
            path: ca.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(ca).map_err(|e| tls(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| tls(e.to_string()))?;
        if certs.is_empty() {
            return Err(tls("holds no PEM certificate".into()));
        }
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
        let http = builder.build().map_err(|e| tls(e.to_string()))?;
        Ok(Client {
            base: normalize(base),
            http,
            bearer: None,
        })
    }

    /// The same client, sending `Authorization: Bearer <token>` with every
    /// request (`None`: no header, for a master with `GRIDMR_AUTH=off`).
    pub fn with_token(mut self, token: Option<&Token>) -> Self {
        self.bearer = token.and_then(|t| {
            let mut v =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.expose())).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        self
    }

    /// Whether requests carry a token.
    pub fn has_token(&self) -> bool {
        self.bearer.is_some()
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, url);
        match &self.bearer {
            Some(b) => req.header(reqwest::header::AUTHORIZATION, b.clone()),
            None => req,
        }
    }

    /// The master's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(|source| Error::Transport {
            url: url.to_owned(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or(body);
        Err(Error::Http {
            url: url.to_owned(),
            status,
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T> {
        let resp = self.send(url, req).await?;
        let bytes = resp.bytes().await.map_err(|source| Error::Transport {
            url: url.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        self.json(&url, self.request(reqwest::Method::GET, &url))
            .await
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health> {
        self.get("/health").await
    }

    /// `POST /jobs`.
    pub async fn submit(&self, req: &SubmitRequest) -> Result<JobStatus> {
        let url = self.url("/jobs");
        self.json(&url, self.request(reqwest::Method::POST, &url).json(req))
            .await
    }

    /// `GET /jobs/{id}`.
    pub async fn status(&self, job_id: &str) -> Result<JobStatus> {
        self.get(&format!("/jobs/{job_id}")).await
    }

    /// `GET /jobs/{id}?wait_ms=…`: answers as soon as the job is finished, or
    /// after `wait` with its current status.
    pub async fn status_wait(&self, job_id: &str, wait: Duration) -> Result<JobStatus> {
        self.get(&format!("/jobs/{job_id}?wait_ms={}", wait.as_millis()))
            .await
    }

    /// Long-polls until the job is finished, calling `progress` with every
    /// status seen, and returns the final status (whatever its state).
    ///
    /// It rides out a master restart: while the master cannot be reached
    /// ([`Error::is_transient`]) it asks again with backoff, for up to
    /// [`WAIT_OUTAGE`] in a row; jobs outlive their master, so the wait
    /// goes on where it was.
    pub async fn wait(
        &self,
        job_id: &str,
        mut progress: impl FnMut(&JobStatus),
    ) -> Result<JobStatus> {
        let mut outage: Option<std::time::Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let status = match self.status_wait(job_id, WAIT_SLICE).await {
                Ok(s) => s,
                Err(e) if e.is_transient() => {
                    let since = *outage.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= WAIT_OUTAGE {
                        return Err(e);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(e) => return Err(e),
            };
            outage = None;
            backoff = Duration::from_millis(100);
            progress(&status);
            if status.status.is_terminal() {
                return Ok(status);
            }
        }
    }

    /// `GET /jobs`.
    pub async fn list(&self) -> Result<JobList> {
        self.get("/jobs").await
    }

    /// `GET /jobs/{id}/ls`.
    pub async fn ls(&self, job_id: &str) -> Result<JobListing> {
        self.get(&format!("/jobs/{job_id}/ls")).await
    }

    /// `GET /jobs/{id}/tasks`.
    pub async fn tasks(&self, job_id: &str) -> Result<TaskAttempts> {
        self.get(&format!("/jobs/{job_id}/tasks")).await
    }

    /// `GET /jobs/{id}/tasks/{task}/logs`: the logs of a task's attempts.
    pub async fn task_logs(&self, job_id: &str, task: &str) -> Result<crate::rest::TaskLogs> {
        self.get(&format!("/jobs/{job_id}/tasks/{task}/logs")).await
    }

    /// `GET /jobs/{id}/result?format=text`, streamed into `out` without
    /// holding the result in memory. Returns the bytes written.
    pub async fn result_to(&self, job_id: &str, out: &mut impl Write) -> Result<u64> {
        let url = self.url(&format!("/jobs/{job_id}/result?format=text"));
        let resp = self
            .send(&url, self.request(reqwest::Method::GET, &url))
            .await?;
        let mut stream = resp.bytes_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| Error::Transport {
                url: url.clone(),
                source,
            })?;
            out.write_all(&chunk).map_err(Error::Write)?;
            written += chunk.len() as u64;
        }
        out.flush().map_err(Error::Write)?;
        Ok(written)
    }

    /// `POST /jobs/{id}/cancel`: stops a running job, which keeps its record.
    pub async fn cancel(&self, job_id: &str) -> Result<CancelAnswer> {
        let url = self.url(&format!("/jobs/{job_id}/cancel"));
        self.json(&url, self.request(reqwest::Method::POST, &url))
            .await
    }

    /// `DELETE /jobs/{id}` (`purge`: also remove its files).
    pub async fn delete(&self, job_id: &str, purge: bool) -> Result<DeleteAnswer> {
        let url = self.url(&format!("/jobs/{job_id}?purge={purge}"));
        self.json(&url, self.request(reqwest::Method::DELETE, &url))
            .await
    }

    /// `GET /workers`.
    pub async fn workers(&self) -> Result<WorkerList> {
        self.get("/workers").await
    }

    /// `POST /workers/register` (JSON body).
    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterAnswer> {
        let url = self.url("/workers/register");
        self.json(&url, self.request(reqwest::Method::POST, &url).json(req))
            .await
    }

    /// `POST /workers/{id}/heartbeat`. An [`Error::Http`] with status 404
    /// means the master does not know the worker: register again.
    pub async fn heartbeat(&self, worker_id: &str, beat: &Heartbeat) -> Result<()> {
        let url = self.url(&format!("/workers/{worker_id}/heartbeat"));
        self.send(
            &url,
            self.request(reqwest::Method::POST, &url)
                .json(beat)
                .timeout(Duration::from_secs(5)),
        )
        .await
        .map(drop)
    }

    /// `GET /metrics/jobs`.
    pub async fn job_metrics(&self) -> Result<JobMetricsList> {
        self.get("/metrics/jobs").await
    }

    /// `POST /ui/grant`: a one-time sign-in link for the web UI (a URL on
    /// this master, good for a couple of minutes).
    pub async fn ui_link(&self) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Grant {
            path: String,
        }
        let url = self.url("/ui/grant");
        let grant: Grant = self
            .json(&url, self.request(reqwest::Method::POST, &url))
            .await?;
        Ok(self.url(&grant.path))
    }

    /// `POST /uploads`: a fresh upload folder on the shared folder.
    pub async fn create_upload(&self) -> Result<UploadAnswer> {
        let url = self.url("/uploads");
        self.json(&url, self.request(reqwest::Method::POST, &url))
            .await
    }

    /// `PUT /uploads/{id}/{name}`: streams the local file `local` (never
    /// read whole into memory) as `name` of the upload (`name` may hold
    /// `/`).
    pub async fn upload_file(
        &self,
        upload_id: &str,
        name: &str,
        local: &std::path::Path,
    ) -> Result<UploadedFile> {
        let read = |source| Error::Read {
            path: local.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::open(local).await.map_err(read)?;
        let len = file.metadata().await.map_err(read)?.len();
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| Error::Decode {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("uploads").push(upload_id);
            segments.extend(name.split('/'));
        }
        let url = url.to_string();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 << 10,
        ));
        let req = self
            .request(reqwest::Method::PUT, &url)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        self.json(&url, req).await
    }

    /// `DELETE /uploads/{id}`.
    pub async fn delete_upload(&self, upload_id: &str) -> Result<()> {
        let url = self.url(&format!("/uploads/{upload_id}"));
        self.send(&url, self.request(reqwest::Method::DELETE, &url))
            .await
            .map(drop)
    }
}
