//! A loopback cluster of real processes for the integration tests: one
//! `gridmr master` and N `gridmr worker`s on 127.0.0.1 ephemeral ports over a
//! temporary shared folder. Every wait polls with a deadline; process logs go
//! to files and are printed when a test fails.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(120);

/// What test workers run tasks as: the test's own user. A worker started as root runs tasks
/// as `nobody` unless told otherwise, and the tests' scripts and inputs live in root's temporary
/// folders and interpreters; `tests/security.rs` checks the default itself.
pub const TASKS_AS_TEST_USER: &[(&str, &str)] = &[("GRIDMR_TASK_USER", "root")];

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gridmr")
}

/// The repository's test data folder.
pub fn repo_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel)
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master and its workers.
pub struct Cluster {
    pub shared: tempfile::TempDir,
    /// The workers' own folders (`WORKER_DIR`), one per worker id: not on
    /// the share, and not shared with any other cluster.
    pub local: tempfile::TempDir,
    pub url: String,
    master: Proc,
    workers: Vec<Proc>,
    http: reqwest::blocking::Client,
}

/// Reads the first stdout line of a child (its "listening on" line).
fn first_line(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not announce itself within 60 s"))
}

fn spawn_master(
    shared: &Path,
    port: &str,
    env: &[(&str, &str)],
    name: &str,
) -> (Child, String, PathBuf) {
    spawn_master_on(&Host::local(), shared, port, env, name)
}

/// Where a process runs: a network namespace (none: this one) and the
/// address it binds.
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: Option<String>,
    pub ip: String,
}

impl Host {
    pub fn local() -> Self {
        Host {
            netns: None,
            ip: "127.0.0.1".into(),
        }
    }

    /// A command for `program`, run in this host's namespace.
    fn command(&self, program: &str) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
        }
    }
}

fn spawn_master_on(
    host: &Host,
    shared: &Path,
    port: &str,
    env: &[(&str, &str)],
    name: &str,
) -> (Child, String, PathBuf) {
    let log = shared.join(format!("logs/{name}.log"));
    let mut child = host
        .command(bin())
        .arg("master")
        .env("MASTER_HOST", &host.ip)
        .env("MASTER_PORT", port)
        .env("SHARED_DIR", shared)
        .env("MASTER_LOG_LEVEL", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start master");
    let line = first_line(&mut child, name);
    // `gridmr master listening on URL`, or under LOG_FORMAT=json `{"message": …, "url": URL}`.
    let url = match serde_json::from_str::<serde_json::Value>(line.trim()) {
        Ok(v) => v["url"]
            .as_str()
            .expect("url in the announce object")
            .to_owned(),
        Err(_) => line
            .trim()
            .rsplit(' ')
            .next()
            .expect("url in the announce line")
            .to_owned(),
    };
    assert!(
        url.starts_with(&format!("http://{}:", host.ip))
            || url.starts_with(&format!("https://{}:", host.ip)),
        "{line:?}"
    );
    (child, url, log)
}

/// The cluster token the master wrote on the share, if any (none under
/// `GRIDMR_AUTH=off`).
pub fn token(shared: &Path) -> Option<String> {
    std::fs::read_to_string(shared.join(".gridmr/cluster.token"))
        .ok()
        .map(|t| t.trim().to_owned())
}

/// A blocking HTTP client that sends the share's cluster token.
pub fn authed_client(shared: &Path) -> reqwest::blocking::Client {
    authed_client_with_ca(shared, None)
}

/// The same, also trusting the PEM certificates in `ca`.
pub fn authed_client_with_ca(shared: &Path, ca: Option<&Path>) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token(shared) {
        let mut v =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).expect("token header");
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(90))
        .default_headers(headers);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("CA file");
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"));
    }
    builder.build().expect("http client")
}

/// A blocking HTTP client that sends no token.
pub fn bare_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

impl Cluster {
    /// Kills the master (SIGKILL) and starts a new one on the same port and
    /// shared folder.
    pub fn restart_master(&mut self, env: &[(&str, &str)]) {
        self.master.kill();
        let port = self.url.rsplit(':').next().expect("port").to_owned();
        let (child, url, log) = spawn_master(self.shared.path(), &port, env, "master-2");
        assert_eq!(url, self.url);
        self.master = Proc {
            name: "master-2".into(),
            child,
            log,
        };
    }

    /// Waits for the master to exit by itself (a crash injected with `GRIDMR_INJECT_CRASH`).
    pub fn wait_master_exit(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.master.child.try_wait().expect("master status") {
                return status;
            }
            assert!(Instant::now() < end, "the master did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `within` for a worker to exit; its exit status, or `None` if it still runs.
    pub fn wait_worker_exit(
        &mut self,
        id: &str,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let w = self
            .workers
            .iter_mut()
            .find(|w| w.name == id)
            .expect("known worker");
        let end = Instant::now() + within;
        loop {
            if let Some(status) = w.child.try_wait().expect("worker status") {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the master.
    pub fn signal_master(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.master.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} master");
    }

    /// Sends a signal (`STOP`, `CONT`, …) to a worker.
    pub fn signal_worker(&self, id: &str, signal: &str) {
        let w = self
            .workers
            .iter()
            .find(|w| w.name == id)
            .expect("known worker");
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(w.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} {id}");
    }

    /// A master (with `master_env`) and `workers` workers (each with
    /// `worker_env`), all registered.
    pub fn start(workers: usize, master_env: &[(&str, &str)], worker_env: &[(&str, &str)]) -> Self {
        let mut cluster = Self::start_master_on(&Host::local(), master_env);
        for i in 0..workers {
            cluster.add_worker(&format!("w{}", i + 1), worker_env);
        }
        cluster.wait_live_workers(workers);
        cluster
    }

    /// A master alone, on `host`.
    pub fn start_master_on(host: &Host, master_env: &[(&str, &str)]) -> Self {
        let shared = tempfile::tempdir().expect("temp dir");
        // Other hosts' processes (another user, say) read the share too.
        std::fs::set_permissions(
            shared.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("share mode");
        std::fs::create_dir_all(shared.path().join("logs")).expect("logs dir");
        std::fs::create_dir_all(shared.path().join("in")).expect("in dir");
        let (child, url, log) = spawn_master_on(host, shared.path(), "0", master_env, "master");
        let ca = master_env
            .iter()
            .find(|(k, _)| *k == "GRIDMR_TLS_CA")
            .map(|(_, v)| PathBuf::from(v));
        let http = authed_client_with_ca(shared.path(), ca.as_deref());
        Cluster {
            shared,
            local: tempfile::tempdir().expect("temp dir"),
            url,
            master: Proc {
                name: "master".into(),
                child,
                log,
            },
            workers: Vec::new(),
            http,
        }
    }

    /// Starts one more worker (not waiting for its registration).
    pub fn add_worker(&mut self, id: &str, env: &[(&str, &str)]) {
        self.add_worker_on(&Host::local(), id, env)
    }

    /// Starts one more worker on `host` (not waiting for its registration).
    pub fn add_worker_on(&mut self, host: &Host, id: &str, env: &[(&str, &str)]) {
        let log = self.shared.path().join(format!("logs/{id}.log"));
        let mut child = host
            .command(bin())
            .arg("worker")
            .env("GRPC_HOST", &host.ip)
            .env("GRPC_PORT", "0")
            .env("SHARED_DIR", self.shared.path())
            .env("WORKER_ID", id)
            .env("MASTER_HTTP", &self.url)
            .env("WORKER_SLOTS", "1")
            .env("HEARTBEAT_INTERVAL_MS", "200")
            .env("WORKER_DIR", self.worker_dir(id))
            .envs(TASKS_AS_TEST_USER.iter().copied())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start worker");
        first_line(&mut child, id);
        self.workers.push(Proc {
            name: id.into(),
            child,
            log,
        });
    }

    /// Worker `id`'s own folder (`WORKER_DIR`).
    pub fn worker_dir(&self, id: &str) -> PathBuf {
        self.local.path().join(id)
    }

    /// `kill -9` of a worker.
    pub fn kill_worker(&mut self, id: &str) {
        let w = self
            .workers
            .iter_mut()
            .find(|w| w.name == id)
            .expect("known worker");
        w.kill();
    }

    /// Polls until `check` gives `Some`, or panics after the deadline.
    pub fn poll<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_live_workers(&self, n: usize) {
        self.poll(&format!("{n} live workers"), || {
            let (_, v) = self.get("/workers");
            let live = v["workers"]
                .as_object()?
                .values()
                .filter(|w| w["alive"] == json!(true))
                .count();
            (live == n).then_some(())
        });
    }

    /// Copies a file into the shared folder's `in/`; returns its path.
    pub fn put_input(&self, src: &Path, name: &str) -> PathBuf {
        let dest = self.shared.path().join("in").join(name);
        std::fs::copy(src, &dest).expect("copy input");
        dest
    }

    fn answer(resp: reqwest::blocking::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// The master process's peak resident memory (`VmHWM`), in KiB.
    pub fn master_peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.master.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM")
    }

    /// The master's log so far.
    pub fn master_log(&self) -> String {
        std::fs::read_to_string(&self.master.log).unwrap_or_default()
    }

    /// Every live worker's `host:port`, by id.
    pub fn worker_addresses(&self) -> Vec<(String, String)> {
        let (_, v) = self.get("/workers");
        v["workers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(id, w)| (id.clone(), w["address"].as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.http
                .get(format!("{}{path}", self.url))
                .send()
                .expect("GET"),
        )
    }

    pub fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .expect("GET");
        (resp.status().as_u16(), resp.text().expect("body"))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        Self::answer(
            self.http
                .post(format!("{}{path}", self.url))
                .json(body)
                .send()
                .expect("POST"),
        )
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        Self::answer(
            self.http
                .post(format!("{}{path}", self.url))
                .header("content-type", content_type)
                .body(body.to_owned())
                .send()
                .expect("POST"),
        )
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.http
                .delete(format!("{}{path}", self.url))
                .send()
                .expect("DELETE"),
        )
    }

    /// Submits a job and returns its id.
    pub fn submit(&self, body: Value) -> String {
        let (status, v) = self.post_json("/jobs", &body);
        assert_eq!(status, 200, "submit {body}: {v}");
        v["job_id"].as_str().expect("job_id").to_owned()
    }

    /// Waits for a job to finish; returns its final status.
    pub fn wait(&self, job_id: &str) -> Value {
        self.poll(&format!("job {job_id} to finish"), || {
            let (code, v) = self.get(&format!("/jobs/{job_id}?wait_ms=1000"));
            assert_eq!(code, 200, "{v}");
            let s = v["status"].as_str()?;
            matches!(s, "SUCCEEDED" | "FAILED" | "CANCELLED").then_some(v)
        })
    }

    /// The job's result file, as sorted lines.
    pub fn result_lines(&self, job_id: &str) -> Vec<String> {
        let (code, text) = self.get_text(&format!("/jobs/{job_id}/result?format=text"));
        assert_eq!(code, 200, "{text}");
        sorted_lines(&text)
    }

    /// Waits until an attempt of `job_id` is running on `worker`.
    pub fn wait_running_on(&self, job_id: &str, worker: &str) {
        self.poll(&format!("an attempt running on {worker}"), || {
            self.tasks(job_id)
                .iter()
                .any(|a| a["worker_id"] == worker && a["outcome"] == "running")
                .then_some(())
        });
    }

    /// Asserts that `job_id` lost attempts on `lost_on` only, and that each
    /// of those tasks was then committed by `rerun_on`. Returns the lost
    /// attempts.
    pub fn assert_lost_and_rerun(&self, job_id: &str, lost_on: &str, rerun_on: &str) -> Vec<Value> {
        let attempts = self.tasks(job_id);
        let lost: Vec<Value> = attempts
            .iter()
            .filter(|a| a["outcome"] == "lost")
            .cloned()
            .collect();
        assert!(!lost.is_empty(), "no attempt was lost: {attempts:?}");
        assert!(
            lost.iter().all(|a| a["worker_id"] == lost_on),
            "{attempts:?}"
        );
        for a in &lost {
            assert!(
                attempts.iter().any(|b| b["task"] == a["task"]
                    && b["outcome"] == "succeeded"
                    && b["worker_id"] == rerun_on),
                "{} was not rerun on {rerun_on}: {attempts:?}",
                a["task"]
            );
        }
        lost
    }

    pub fn tasks(&self, job_id: &str) -> Vec<Value> {
        let (code, v) = self.get(&format!("/jobs/{job_id}/tasks"));
        assert_eq!(code, 200, "{v}");
        v["attempts"].as_array().cloned().unwrap_or_default()
    }
}

/// The names in a folder, sorted (none when it is missing).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().into_string().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// The embedded engine's word count of `input`, as sorted lines.
pub fn embedded_wordcount(input: &Path) -> Vec<String> {
    let work = tempfile::tempdir().expect("temp dir");
    let outcome = gridmr_core::LocalEngine::new(work.path())
        .with_threads(2)
        .run(
            &gridmr_core::bundled::wordcount::job(),
            &gridmr_core::JobConfig::new(input.display().to_string()),
        )
        .expect("embedded word count");
    sorted_lines(
        &std::fs::read_to_string(outcome.result_file.expect("a small result")).expect("result"),
    )
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.kill();
        }
        self.master.kill();
        if std::thread::panicking() {
            for p in std::iter::once(&self.master).chain(&self.workers) {
                let log = std::fs::read_to_string(&p.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("---- {} log (last lines) ----", p.name);
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}
