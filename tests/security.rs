//! The attacks of issue 9, each tried on a real loopback cluster and shown
//! to fail, and the same jobs shown to succeed with the cluster token.

mod common;

use common::{bare_client, Cluster};
use gridmr_net::proto::worker_client::WorkerClient;
use gridmr_net::proto::{self, worker_server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

fn write(cluster: &Cluster, name: &str, text: &str) -> PathBuf {
    let p = cluster.shared.path().join("in").join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn answer(resp: reqwest::blocking::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn rest_needs_the_token_and_a_job_runs_with_it() {
    let cluster = Cluster::start(1, &[], &[]);
    let token = common::token(cluster.shared.path()).expect("the master wrote a token");
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(cluster.shared.path().join(".gridmr/cluster.token"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o600);
    let bare = bare_client();
    for (method, path) in [
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/workers"),
        ("POST", "/workers/register"),
        ("POST", "/workers/w1/heartbeat"),
        ("GET", "/jobs/job-000001/result"),
        ("DELETE", "/jobs/job-000001"),
        ("GET", "/metrics"),
    ] {
        let url = format!("{}{path}", cluster.url);
        let req = match method {
            "GET" => bare.get(&url),
            "POST" => bare.post(&url).body("{}"),
            _ => bare.delete(&url),
        };
        let (code, body) = answer(req.send().unwrap());
        assert_eq!(code, 401, "{method} {path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
        let (code, body) = answer(
            match method {
                "GET" => bare.get(&url),
                "POST" => bare.post(&url).body("{}"),
                _ => bare.delete(&url),
            }
            .bearer_auth("x".repeat(64))
            .send()
            .unwrap(),
        );
        assert_eq!(code, 401, "{method} {path} with a wrong token: {body}");
        assert!(!body.to_string().contains(&token));
    }
    let (code, health) = answer(bare.get(format!("{}/health", cluster.url)).send().unwrap());
    assert_eq!(code, 200);
    assert_eq!(health["auth"], true);
    // The open answer says the master is up, and nothing of its files or jobs.
    for private in ["shared_dir", "threshold", "jobs", "input_roots"] {
        assert!(health.get(private).is_none(), "{private} in {health}");
    }
    let (_, full) = cluster.get("/health");
    assert_eq!(
        full["shared_dir"],
        cluster.shared.path().display().to_string()
    );
    assert!(full["jobs"].as_array().is_some_and(|j| !j.is_empty()));
    // The same job, with the token, runs.
    let input = write(&cluster, "a.txt", "to be or not to be\n");
    let id = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    assert!(cluster.result_lines(&id).contains(&"be\t2".to_owned()));
    // The token is in no log.
    assert!(!cluster.master_log().contains(&token));
}

#[test]
fn auth_off_is_explicit_and_warned_about() {
    let off = [("GRIDMR_AUTH", "off")];
    let cluster = Cluster::start(1, &off, &off);
    assert!(common::token(cluster.shared.path()).is_none());
    let (code, health) = answer(
        bare_client()
            .get(format!("{}/health", cluster.url))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    assert_eq!(health["auth"], false);
    assert!(health["warnings"][0]
        .as_str()
        .unwrap()
        .contains("GRIDMR_AUTH=off"));
    let (code, _) = answer(
        bare_client()
            .get(format!("{}/jobs", cluster.url))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200);
    assert!(cluster.master_log().contains("GRIDMR_AUTH=off"));
}

#[test]
fn an_impostor_cannot_take_a_live_workers_id() {
    let cluster = Cluster::start(1, &[], &[]);
    let (_, real) = cluster.worker_addresses().into_iter().next().unwrap();
    // A listener that is not the worker.
    let decoy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let decoy = decoy.local_addr().unwrap().to_string();
    let (code, body) = cluster.post_json(
        "/workers/register",
        &json!({"worker_id": "w1", "address": decoy}),
    );
    assert_eq!(code, 409, "{body}");
    // Nor keep it alive from elsewhere.
    let (code, body) = cluster.post_json(
        "/workers/w1/heartbeat",
        &json!({"running": 0, "address": decoy}),
    );
    assert_eq!(code, 409, "{body}");
    // Nor by a heartbeat that names no address.
    let (code, body) = cluster.post_json("/workers/w1/heartbeat", &json!({"running": 0}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("address"),
        "{body}"
    );
    assert_eq!(cluster.worker_addresses(), vec![("w1".to_owned(), real)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_refuse_grpc_without_the_token() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(1, &[], &[]))
        .await
        .unwrap();
    let (_, address) = tokio::task::block_in_place(|| cluster.worker_addresses())
        .into_iter()
        .next()
        .unwrap();
    let outside = tempfile::tempdir().unwrap();
    let mut client = WorkerClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let hb = client
        .heartbeat(proto::HeartbeatReq::default())
        .await
        .unwrap_err();
    assert_eq!(hb.code(), tonic::Code::Unauthenticated);
    let map = client
        .execute_map(proto::MapTask {
            job_id: "j".into(),
            input_chunk: "/etc/passwd".into(),
            shuffle_dir: outside.path().display().to_string(),
            reduce_partitions: 1,
            job_name: "wordcount".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(map.code(), tonic::Code::Unauthenticated);
    let cancel = client
        .cancel_job(proto::CancelReq {
            job_id: "job-000009".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(cancel.code(), tonic::Code::Unauthenticated);
    // With the token, a path outside the share is refused all the same.
    let token = common::token(cluster.shared.path()).unwrap();
    let mut req = Request::new(proto::MapTask {
        job_id: "j".into(),
        input_chunk: "/etc/passwd".into(),
        shuffle_dir: cluster.shared.path().display().to_string(),
        reduce_partitions: 1,
        job_name: "wordcount".into(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let err = client.execute_map(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("outside"), "{err}");
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// A worker that claims every task succeeded with a file of its choosing.
struct Liar {
    output: String,
    /// The typed jobs it claims to have.
    jobs: Vec<String>,
    /// Heartbeat calls it answered (the master's probes).
    probes: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Liar {
    fn new(output: String, jobs: &[&str]) -> Self {
        Liar {
            output,
            jobs: jobs.iter().map(|j| j.to_string()).collect(),
            probes: Default::default(),
        }
    }

    /// Serves it on an ephemeral port; returns the address.
    async fn serve(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(worker_server::WorkerServer::new(self))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        address
    }
}

#[tonic::async_trait]
impl worker_server::Worker for Liar {
    async fn heartbeat(
        &self,
        _: Request<proto::HeartbeatReq>,
    ) -> Result<Response<proto::HeartbeatResp>, Status> {
        self.probes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Response::new(proto::HeartbeatResp {
            ok: true,
            worker_id: "liar".into(),
            slots: 1,
            jobs: self.jobs.clone(),
            ..Default::default()
        }))
    }
    async fn execute_job(
        &self,
        r: Request<proto::JobTask>,
    ) -> Result<Response<proto::JobResult>, Status> {
        Ok(Response::new(proto::JobResult {
            job_id: r.into_inner().job_id,
            success: true,
            output_path: self.output.clone(),
            ..Default::default()
        }))
    }
    async fn execute_map(
        &self,
        r: Request<proto::MapTask>,
    ) -> Result<Response<proto::MapResult>, Status> {
        Ok(Response::new(proto::MapResult {
            job_id: r.into_inner().job_id,
            success: true,
            index_path: self.output.clone(),
            ..Default::default()
        }))
    }
    async fn execute_reduce(
        &self,
        r: Request<proto::ReduceTask>,
    ) -> Result<Response<proto::ReduceResult>, Status> {
        Ok(Response::new(proto::ReduceResult {
            job_id: r.into_inner().job_id,
            success: true,
            output_path: self.output.clone(),
            ..Default::default()
        }))
    }
    async fn cancel_job(
        &self,
        _: Request<proto::CancelReq>,
    ) -> Result<Response<proto::CancelResp>, Status> {
        Ok(Response::new(proto::CancelResp::default()))
    }
    type FetchShuffleStream = tonic::codegen::BoxStream<proto::FetchChunk>;
    async fn fetch_shuffle(
        &self,
        _: Request<proto::FetchReq>,
    ) -> Result<Response<Self::FetchShuffleStream>, Status> {
        Err(Status::unimplemented("a liar keeps nothing"))
    }
    async fn drop_shuffle(
        &self,
        _: Request<proto::DropShuffleReq>,
    ) -> Result<Response<proto::DropShuffleResp>, Status> {
        Ok(Response::new(proto::DropShuffleResp::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_commits_no_path_a_worker_makes_up() {
    let cluster =
        tokio::task::spawn_blocking(|| Cluster::start(0, &[("MAX_TASK_ATTEMPTS", "2")], &[]))
            .await
            .unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "master-host secret\n").unwrap();
    let address = Liar::new(secret.display().to_string(), &["wordcount"])
        .serve()
        .await;
    let input = write(&cluster, "a.txt", "a b\n");
    let (cluster, status) = tokio::task::spawn_blocking(move || {
        let (code, body) = cluster.post_json(
            "/workers/register",
            &json!({"worker_id": "liar", "address": address}),
        );
        assert_eq!(code, 200, "{body}");
        let id = cluster.submit(json!({"job": "wordcount", "input_url": input}));
        let status = cluster.wait(&id);
        let (code, _) = cluster.get(&format!("/jobs/{id}/result"));
        assert_eq!(code, 409);
        let (code, body) = cluster.delete(&format!("/jobs/{id}?purge=true"));
        assert_eq!(code, 200, "{body}");
        (cluster, status)
    })
    .await
    .unwrap();
    assert_eq!(status["status"], "FAILED", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("not this attempt's"),
        "{status}"
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "master-host secret\n"
    );
    assert!(outside.path().exists());
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// Registration matches reality: a typed job goes only to workers that
/// have it (refused at submit when no live one does), and a worker
/// registered by hand, which sends no heartbeats, is probed instead of
/// being declared dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_registered_by_hand_are_probed_and_typed_jobs_need_a_worker_that_has_them() {
    let cluster =
        tokio::task::spawn_blocking(|| Cluster::start(0, &[("WORKER_TIMEOUT_S", "0.3")], &[]))
            .await
            .unwrap();
    let liar = Liar::new(String::new(), &["grep"]);
    let probes = liar.probes.clone();
    let address = liar.serve().await;
    let input = write(&cluster, "a.txt", "a b\n");
    tokio::task::spawn_blocking(move || {
        let (code, body) = cluster.post_json(
            "/workers/register",
            &json!({"worker_id": "liar", "address": address}),
        );
        assert_eq!(code, 200, "{body}");
        let (code, body) =
            cluster.post_json("/jobs", &json!({"job": "wordcount", "input_url": input}));
        assert_eq!(code, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("no live worker can run"),
            "{body}"
        );
        // Several timeouts pass: it is probed, and stays alive.
        cluster.poll("three probes", || {
            (probes.load(std::sync::atomic::Ordering::Relaxed) >= 4).then_some(())
        });
        let (_, w) = cluster.get("/workers");
        assert_eq!(w["workers"]["liar"]["alive"], true, "{w}");
        drop(cluster);
    })
    .await
    .unwrap();
}

#[test]
fn inputs_through_symbolic_links_are_refused() {
    let cluster = Cluster::start(1, &[], &[]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "root:x:0:0\n").unwrap();
    let folder = cluster.shared.path().join("in/linked");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("ok.txt"), "fine\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("passwd"), folder.join("p.txt")).unwrap();
    let (code, body) =
        cluster.post_json("/jobs", &json!({"job": "wordcount", "input_url": folder}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("outside"),
        "{body}"
    );
    std::os::unix::fs::symlink(outside.path(), cluster.shared.path().join("in/dir")).unwrap();
    let glob = format!("{}/in/dir/*", cluster.shared.path().display());
    let (code, body) = cluster.post_json("/jobs", &json!({"job": "wordcount", "input_url": glob}));
    assert_eq!(code, 400, "{body}");
}

/// Serves `answer` (raw HTTP) to every connection; returns `host:port`.
fn serve_raw(answer: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(&answer);
        }
    });
    addr
}

#[test]
fn downloads_only_from_allowed_hosts_and_within_the_cap() {
    let secret_body = "SECRET-BODY-LINE";
    let target = serve_raw(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{secret_body}",
            secret_body.len()
        )
        .into_bytes(),
    );
    let redirect = serve_raw(
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://{target}/x.py\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_bytes(),
    );
    let mut big = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'#', 6 << 20));
    let huge = serve_raw(big);
    // Off by default: no fetch at all.
    let cluster = Cluster::start(0, &[], &[]);
    let input = write(&cluster, "a.txt", "a\n");
    let (code, body) = cluster.post_json(
        "/jobs",
        &json!({"script_url": format!("http://{target}/x.py"), "input_url": input}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("downloads are off"));
    drop(cluster);
    let allowed = format!("{redirect},{huge}");
    let cluster = Cluster::start(0, &[("GRIDMR_SCRIPT_HOSTS", allowed.as_str())], &[]);
    let input = write(&cluster, "a.txt", "a\n");
    for (url, want) in [
        (
            format!("http://{target}/x.py"),
            "not in GRIDMR_SCRIPT_HOSTS",
        ),
        (format!("http://{redirect}/r.py"), "redirect"),
        (format!("http://{huge}/big.py"), "larger than"),
    ] {
        let (code, body) =
            cluster.post_json("/jobs", &json!({"script_url": url, "input_url": input}));
        assert_eq!(code, 400, "{url}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(want), "{url}: {error}");
        assert!(
            !error.contains(secret_body) && !error.contains("####"),
            "{error}"
        );
    }
}

#[test]
fn oversized_requests_get_json_errors() {
    let cluster = Cluster::start(0, &[], &[]);
    let input = write(&cluster, "a.txt", "a\n");
    let (code, body) = cluster.post_json(
        "/jobs",
        &json!({"mapper": "x".repeat(20_000), "reducer": "cat", "input_url": input}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("mapper"), "{body}");
    let (code, body) = cluster.post_json(
        "/jobs",
        &json!({"mapper": "cat", "input_url": input, "pad": "y".repeat(400_000)}),
    );
    assert_eq!(code, 413, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (code, body) = cluster.get("/jobs/%ZZ");
    assert!((400..500).contains(&code), "{code}");
    assert!(body["error"].is_string(), "{body}");
}

fn processes_with(marker: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(marker) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn task_processes_are_fenced() {
    let worker_env = [("TASK_MEMORY_MB", "300"), ("SECRET_PROBE", "leak")];
    let cluster = Cluster::start(1, &[("MAX_TASK_ATTEMPTS", "1")], &worker_env);
    let input = write(&cluster, "a.txt", "a\nb\n");
    // A memory-hungry mapper dies of its limit.
    let id = cluster.submit(json!({
        "mapper": "python3 -c 'x = bytearray(1 << 30)'",
        "reducer": "cat",
        "input_url": input,
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("MemoryError"),
        "{done}"
    );
    // The token is not in a task's environment.
    let id = cluster.submit(json!({
        "mapper": "env | grep -c -e SECRET_PROBE -e GRIDMR_TOKEN; env | grep -c ^PATH= ; cat >/dev/null",
        "input_url": input,
    }));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    let (_, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
    assert_eq!(text.lines().collect::<Vec<_>>(), ["0", "1"], "{text}");
    // A detached grandchild holding the output pipe dies at the timeout.
    let started = Instant::now();
    let id = cluster.submit(json!({
        "mapper": "setsid sleep 317.25 & sleep 318.25",
        "reducer": "cat",
        "input_url": input,
        "timeout_s": 2,
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("timed out"),
        "{done}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "the attempt outlived its timeout"
    );
    cluster.poll("the detached sleep to be killed", || {
        (processes_with("317.25") == 0).then_some(())
    });
    // Children of a succeeded task do not outlive it.
    let id = cluster.submit(json!({
        "mapper": "(setsid sleep 319.25 >/dev/null 2>&1 &); cat",
        "input_url": input,
    }));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    cluster.poll("the succeeded task's child to be killed", || {
        (processes_with("319.25") == 0).then_some(())
    });
}

fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

#[test]
fn tls_for_rest_and_grpc() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(certs.path());
    let (ca, cert, key) = (
        ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let env = [
        ("GRIDMR_TLS_CA", ca.as_str()),
        ("GRIDMR_TLS_CERT", cert.as_str()),
        ("GRIDMR_TLS_KEY", key.as_str()),
    ];
    let cluster = Cluster::start(2, &env, &env);
    assert!(cluster.url.starts_with("https://"), "{}", cluster.url);
    let input = write(&cluster, "a.txt", "x y x\n");
    let id = cluster.submit(
        json!({"job": "wordcount", "input_url": input, "partitions": 2, "force_distributed": true}),
    );
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&id), ["x\t2", "y\t1"]);
    // Worker to worker too: the reduces fetch the map outputs over the
    // workers' TLS, each worker presenting its certificate.
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 2, "reduce_partitions": 2,
        "force_distributed": true, "shuffle_mode": "local"
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), ["x\t2", "y\t1"]);
    // A client that does not trust the CA is refused.
    let err = bare_client()
        .get(format!("{}/health", cluster.url))
        .send()
        .unwrap_err();
    assert!(
        err.is_connect() || err.to_string().contains("certificate"),
        "{err}"
    );
    // Plain HTTP to the TLS port gets no API answer.
    let plain = cluster.url.replace("https://", "http://");
    let plain_ok = bare_client()
        .get(format!("{plain}/health"))
        .send()
        .map(|r| r.status().is_success())
        .unwrap_or(false);
    assert!(!plain_ok);
    // A worker takes gRPC calls only from a holder of a certificate the CA
    // signed: the token alone, over TLS that trusts the worker, is refused.
    let (_, address) = cluster.worker_addresses().into_iter().next().unwrap();
    let token = common::token(cluster.shared.path()).unwrap();
    let call = |identity: bool| {
        let ca_pem = std::fs::read(&ca).unwrap();
        let (cert_pem, key_pem) = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
        let address = address.clone();
        let token = token.clone();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
                let mut tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca_pem))
                    .domain_name("localhost");
                if identity {
                    tls = tls.identity(Identity::from_pem(cert_pem, key_pem));
                }
                let host = address
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let channel = Endpoint::from_shared(format!("https://{host}"))
                    .unwrap()
                    .tls_config(tls)
                    .unwrap()
                    .connect_timeout(Duration::from_secs(20))
                    .connect()
                    .await?;
                let mut req = Request::new(proto::HeartbeatReq::default());
                req.metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                WorkerClient::new(channel)
                    .heartbeat(req)
                    .await
                    .map(|_| ())
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
            })
    };
    assert!(call(true).is_ok(), "{:?}", call(true));
    let refused = call(false);
    assert!(
        refused.is_err(),
        "a worker answered a caller without a certificate"
    );
}

/// Fuzzes the REST parsing on a live master: random bodies, content types,
/// query strings and path segments get a 4xx with a JSON error (or a 200),
/// never a 5xx, and the master keeps answering.
#[test]
fn rest_parsing_fuzz() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let cluster = Cluster::start(0, &[], &[]);
    let input = write(&cluster, "a.txt", "a\n").display().to_string();
    let fields = prop::sample::select(vec![
        "job",
        "script_url",
        "mapper",
        "reducer",
        "input_url",
        "partitions",
        "map_splits",
        "reduce_partitions",
        "files",
        "timeout_s",
        "sort_buffer_bytes",
        "worker_id",
        "address",
    ]);
    let values = prop_oneof![
        Just(json!(null)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(|s| json!(s)),
        Just(json!(input.clone())),
        Just(json!("wordcount")),
        Just(json!(["/etc/passwd", "../../x"])),
    ];
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::btree_map(fields, values, 0..6)
            .prop_map(|m| serde_json::to_vec(&m).unwrap()),
    ];
    let targets = prop::sample::select(vec![
        "/jobs",
        "/workers/register",
        "/workers/w%2F1/heartbeat",
        "/jobs/job-000001?wait_ms=abc",
        "/jobs?offset=-1",
        "/jobs/..%2F..%2Fetc",
    ]);
    let content_types = prop::sample::select(vec![
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
    ]);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&(targets, content_types, bodies), |(target, ct, body)| {
            let (code, v) = cluster.post_raw(target, ct, &String::from_utf8_lossy(&body));
            prop_assert!(code < 500, "{target} {ct}: {code} {v}");
            if code >= 400 {
                prop_assert!(v["error"].is_string(), "{target}: {code} {v}");
            }
            Ok(())
        })
        .unwrap();
    let (code, _) = cluster.get("/health");
    assert_eq!(code, 200);
}

#[test]
fn idle_and_slow_header_connections_are_closed() {
    let cluster = Cluster::start(0, &[], &[]);
    let addr = cluster.url.trim_start_matches("http://").to_owned();
    let mut idle: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // A request's headers begun and never finished.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    idle.push(slow);
    // The API still answers while they hang.
    assert_eq!(cluster.get("/health").0, 200);
    // Each is closed by the server (HEADER_TIMEOUT, 10 s) well before 60 s.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = [0u8; 512];
        let n = loop {
            match s.read(&mut buf) {
                Ok(0) => break 0,
                Ok(_) => continue, // a 408 answer before the close
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break 0,
                Err(e) => panic!("the connection was not closed: {e}"),
            }
        };
        assert_eq!(n, 0);
    }
}

/// The unprivileged account the task-user test runs tasks as, made when
/// missing; `None` when this test process cannot switch users.
fn task_user() -> Option<&'static str> {
    const NAME: &str = "gridmr-task-test";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let exists = |n: &str| {
        Command::new("id")
            .arg(n)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !exists(NAME) {
        // Tests run in parallel: a concurrent useradd may win; check again.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                NAME,
            ])
            .status();
    }
    exists(NAME).then_some(NAME)
}

#[test]
#[ignore = "needs root and useradd: cargo test -- --include-ignored as root (CI's user is root)"]
fn tasks_run_as_the_task_user() {
    let user = task_user().expect("this test needs root and useradd");
    let cluster = Cluster::start(
        1,
        &[],
        &[("GRIDMR_TASK_USER", user), ("GRIDMR_TASK_CGROUPS", "off")],
    );
    // The share is readable by the task user (as a deployment makes it);
    // the token inside stays the worker's own (0600 in a 0700 folder).
    let open = |p: &Path| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap()
    };
    open(cluster.shared.path());
    open(&cluster.shared.path().join("in"));
    let input = write(&cluster, "a.txt", "a\nb\n");
    open(&input);
    let token = cluster.shared.path().join(".gridmr/cluster.token");
    assert!(token.exists());
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", user])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    // A streaming task: its uid, and whether it could read the token.
    let id = cluster.submit(json!({
        "mapper": format!("id -u; cat {} 2>/dev/null | wc -c; cat >/dev/null", token.display()),
        "input_url": input,
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let (_, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [uid.as_str(), "0"],
        "{text}"
    );
    // A Python job script, on the distributed path: map and reduce run as
    // the task user too.
    let script = write(
        &cluster,
        "uid.py",
        "import os\ndef map_func(line):\n    return [(os.getuid(), 1)]\n\ndef reduce_func(key, values):\n    return key, sum(values)\n",
    );
    open(&script);
    let id = cluster.submit(json!({
        "script_url": script,
        "input_url": input,
        "partitions": 2,
        "force_distributed": true,
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), [format!("{uid}\t2")]);
}

/// A worker started as root that is not told otherwise runs tasks as `nobody`: they cannot
/// write into the share, leave their cgroup, or outlive their attempt.
#[test]
#[ignore = "needs root: cargo test -- --include-ignored as root (CI's user is root)"]
fn a_root_worker_runs_tasks_as_nobody_by_default() {
    assert!(is_root(), "this test needs a worker started as root");
    let cluster = Cluster::start(1, &[], &[("GRIDMR_TASK_USER", "")]);
    let share = cluster.shared.path().to_path_buf();
    let input = write(&cluster, "a.txt", "a\n");
    let mark = format!("{}.{}", 600 + std::process::id() % 100, std::process::id());
    let mapper = format!(
        "cat >/dev/null; id -u; \
         (touch {share}/planted && echo wrote-share) || echo share-refused; \
         (echo $$ > /sys/fs/cgroup/cgroup.procs && echo left-cgroup) 2>/dev/null || echo cgroup-kept; \
         setsid -f env -i sleep {mark} </dev/null >/dev/null 2>&1; echo started",
        share = share.display()
    );
    let id = cluster.submit(json!({"mapper": mapper, "input_url": input}));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let (_, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
    let nobody = String::from_utf8(
        Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [nobody.trim(), "share-refused", "cgroup-kept", "started"],
        "{text}"
    );
    assert!(!share.join("planted").exists());
    // The detached process ended with its attempt.
    cluster.poll("the detached task process to be gone", || {
        let found = Command::new("pgrep")
            .args(["-f", &format!("sleep {mark}")])
            .output()
            .unwrap();
        (!found.status.success()).then_some(())
    });
}

/// The master trusts nothing it reads back from the share: links planted in a finished job's
/// folder are not followed when it serves or lists it, and a job record edited to point
/// outside the job's folder moves nothing it serves or deletes.
#[test]
fn links_and_records_planted_on_the_share_are_not_followed() {
    let mut cluster = Cluster::start(1, &[], &[]);
    let input = write(&cluster, "a.txt", "x y x\n");
    let run = |cluster: &Cluster| {
        let id = cluster.submit(json!({"job": "wordcount", "input_url": input}));
        assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
        id
    };
    let (linked, swapped, edited) = (run(&cluster), run(&cluster), run(&cluster));
    let jobs = cluster.shared.path().join("jobs");
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();

    // result.txt replaced by a link to a file of the master's host.
    let result = jobs.join(&linked).join("out/result.txt");
    std::fs::remove_file(&result).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &result).unwrap();
    let (code, text) = cluster.get_text(&format!("/jobs/{linked}/result?format=text"));
    assert_eq!(code, 410, "{text}");
    assert!(
        hostname.is_empty() || !text.contains(hostname.trim()),
        "{text}"
    );

    // out/ replaced by a link to /etc: listed as nothing, not as /etc.
    let out = jobs.join(&swapped).join("out");
    std::fs::rename(&out, jobs.join(&swapped).join("out.old")).unwrap();
    std::os::unix::fs::symlink("/etc", &out).unwrap();
    let (code, ls) = cluster.get(&format!("/jobs/{swapped}/ls"));
    assert_eq!(code, 200, "{ls}");
    assert_eq!(ls["out"], json!([]), "{ls}");
    assert_eq!(cluster.get_text(&format!("/jobs/{swapped}/result")).0, 410);

    // job.json edited to name a folder and a file outside, then a master restart.
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("keep.txt"), "precious").unwrap();
    let record = jobs.join(&edited).join("job.json");
    // An ended job's record is written just after its status says so.
    cluster.poll("the ended job's record", || record.exists().then_some(()));
    let mut job: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    job["dirs"]["base"] = json!(victim.path());
    job["dirs"]["out"] = json!(victim.path());
    job["result_file"] = json!(victim.path().join("keep.txt"));
    std::fs::write(&record, serde_json::to_vec(&job).unwrap()).unwrap();
    cluster.restart_master(&[]);
    let (code, text) = cluster.get_text(&format!("/jobs/{edited}/result?format=text"));
    assert!(!text.contains("precious"), "{code}: {text}");
    assert_eq!(cluster.result_lines(&edited), ["x\t2", "y\t1"]);
    assert_eq!(cluster.delete(&format!("/jobs/{edited}?purge=true")).0, 200);
    assert!(
        victim.path().join("keep.txt").exists(),
        "a purge left the job's folder"
    );
    assert!(!jobs.join(&edited).exists());

    // An honest job right after gets its exact output.
    cluster.wait_live_workers(1);
    let honest = run(&cluster);
    assert_eq!(cluster.result_lines(&honest), ["x\t2", "y\t1"]);
}

/// Opens `n` idle TCP connections to `addr` from the loopback address `from`, keeping those
/// the server accepts (a connection it closed at once reads end-of-file).
fn idle_connections(from: &str, addr: &str, n: usize) -> Vec<std::net::TcpStream> {
    let target: std::net::SocketAddr = addr.parse().unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    (0..n)
        .filter_map(|_| {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind(local).ok()?;
            let stream = rt.block_on(socket.connect(target)).ok()?;
            let stream = stream.into_std().ok()?;
            stream.set_nonblocking(false).ok()?;
            Some(stream)
        })
        .collect()
}

/// Whether the server closed `conn` within `within`.
fn closed_within(conn: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    let end = Instant::now() + within;
    let mut buf = [0u8; 256];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        conn.set_read_timeout(Some(left)).unwrap();
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

/// Idle sockets from one caller take neither a worker's descriptors nor the master's
/// connections from everyone else: each caller gets its share, silent connections are closed
/// after the handshake timeout, and jobs and `/health` go on.
#[test]
fn idle_connections_from_one_caller_block_neither_worker_nor_master() {
    let cluster = Cluster::start(1, &[], &[]);
    let worker = cluster.worker_addresses()[0].1.clone();
    let master = cluster.url.trim_start_matches("http://").to_owned();
    let held_worker = idle_connections("127.0.0.2", &worker, 300);
    let held_master = idle_connections("127.0.0.2", &master, 300);
    // Past its share, the caller's connections are closed at once.
    let mut extra = idle_connections("127.0.0.2", &worker, 1);
    assert!(
        closed_within(&mut extra[0], Duration::from_secs(5)),
        "a 65th connection stayed"
    );
    let mut extra = idle_connections("127.0.0.2", &master, 1);
    assert!(
        closed_within(&mut extra[0], Duration::from_secs(5)),
        "a 65th connection stayed"
    );
    // Everyone else is served.
    for _ in 0..30 {
        let (code, _) = cluster.get("/health");
        assert_eq!(code, 200);
    }
    let input = write(&cluster, "a.txt", "x y x\n");
    let id =
        cluster.submit(json!({"job": "wordcount", "input_url": input, "force_distributed": true}));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&id), ["x\t2", "y\t1"]);
    // A connection that never says a word is closed after the handshake timeout (10 s).
    let mut silent = held_worker.into_iter().next().unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(30)),
        "a silent connection stayed"
    );
    drop(held_master);
}

/// `gridmr login` keeps a master's token (0600) for every later command, refuses a token the
/// master does not take, and a command with no token says so instead of uploading the share.
#[test]
fn the_cli_logs_in_per_master_and_says_when_it_has_no_token() {
    let cluster = Cluster::start(1, &[], &[]);
    let token = common::token(cluster.shared.path()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join("gridmr/credentials.json");
    let gridmr = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gridmr"))
            .args(args)
            .args(["--master", &cluster.url])
            .env_remove("SHARED_DIR")
            .env_remove("GRIDMR_TOKEN")
            .env("GRIDMR_TOKEN_FILE", "")
            .env("GRIDMR_CREDENTIALS", &creds)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let input = write(&cluster, "a.txt", "x y x\n");
    // No token anywhere: a clear message, and nothing is uploaded.
    let (ok, text) = gridmr(
        &[
            "submit",
            "--job",
            "wordcount",
            "--input",
            input.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        !ok && text.contains("gridmr login") && !text.contains("uploads"),
        "{text}"
    );
    // A wrong token is not saved.
    let (ok, text) = gridmr(
        &["login", "--token-stdin"],
        &format!("{}\n", "w".repeat(43)),
    );
    assert!(!ok && text.contains("does not accept"), "{text}");
    assert!(!creds.exists());
    // The right one is, privately, and every command finds it.
    let (ok, text) = gridmr(&["login", "--token-stdin"], &format!("{token}\n"));
    assert!(ok, "{text}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&creds).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600);
    let (ok, text) = gridmr(
        &[
            "submit",
            "--job",
            "wordcount",
            "--input",
            input.to_str().unwrap(),
            "--wait",
        ],
        "",
    );
    assert!(ok && !text.contains("uploaded"), "{text}");
    let (ok, text) = gridmr(&["logout"], "");
    assert!(ok, "{text}");
    let (ok, _) = gridmr(&["jobs"], "");
    assert!(!ok, "forgotten");
}

/// Signing out of the web UI is a `POST` from its own pages: a link (`GET`) or a form on
/// another site ends no session.
#[test]
fn signing_out_is_a_post_from_the_uis_own_pages() {
    let cluster = Cluster::start(0, &[], &[]);
    let token = common::token(cluster.shared.path()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{}/ui/login", cluster.url))
        .form(&[("token", token.as_str())])
        .send()
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = |c: &reqwest::blocking::Client| {
        c.get(format!("{}/ui", cluster.url))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(page(&client), 200);
    let get = client
        .get(format!("{}/ui/logout", cluster.url))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let cross = client
        .post(format!("{}/ui/logout", cluster.url))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    assert_eq!(page(&client), 200, "still signed in");
    let own = client
        .post(format!("{}/ui/logout", cluster.url))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .unwrap();
    assert_eq!(own.status().as_u16(), 303);
    assert_eq!(page(&client), 303, "signed out: back to the sign-in page");
}
