//! The original GridMR's curl sequence, answered with the shapes of its
//! contract; and bad requests answered with 4xx JSON errors while the master
//! keeps serving.

mod common;

use common::{repo_data, sorted_lines, Cluster};
use serde_json::{json, Value};

fn has_keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing {k:?} in {v}");
    }
}

// One long script on purpose: it replays the original README's curl session step by step,
// each call reading what the one before left, as a user at a terminal would.
#[test]
fn the_original_curl_sequence() {
    let cluster = Cluster::start(2, &[], &[("WORKER_SLOTS", "2")]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");

    // curl /health
    let (code, health) = cluster.get("/health");
    assert_eq!(code, 200);
    assert_eq!(health["ok"], true);
    assert_eq!(health["threshold"], 5_242_880);
    assert!(health["shared_dir"].as_str().is_some());

    // curl -X POST /workers/register -d worker_id=…&address=… (a form body, as
    // the original's README), and with query parameters (as its code read).
    let (_, workers) = cluster.get("/workers");
    let address = workers["workers"]["w1"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    // A GridMR worker says what it can run and which build it is.
    assert_eq!(
        workers["workers"]["w1"]["jobs"],
        json!([
            "grep",
            "invertedindex",
            "join",
            "pi",
            "teragen",
            "terasort",
            "teravalidate",
            "wordcount",
            "wordmean"
        ]),
        "{workers}"
    );
    assert!(
        workers["workers"]["w1"]["build"]
            .as_str()
            .is_some_and(|b| b.starts_with("gridmr-runtime ")),
        "{workers}"
    );
    // Its heartbeats report its host: CPUs, memory, the disk of its folder.
    let host = cluster.poll("a heartbeat with the host's figures", || {
        let (_, w) = cluster.get("/workers");
        let host = w["workers"]["w1"]["host"].clone();
        host.is_object().then_some(host)
    });
    assert!(host["cpus"].as_u64() >= Some(1), "{host}");
    assert!(host["mem_total_bytes"].as_u64() > Some(0), "{host}");
    assert!(host["disk_total_bytes"].as_u64() > Some(0), "{host}");
    let (code, reg) = cluster.post_raw(
        "/workers/register",
        "application/x-www-form-urlencoded",
        &format!("worker_id=w1&address={address}"),
    );
    assert_eq!(code, 200, "{reg}");
    assert_eq!(reg["ok"], true);
    assert_eq!(reg["count"], 2);
    assert!(reg["ring"].as_array().unwrap().contains(&json!(address)));
    let (code, reg) = cluster.post_raw(
        &format!("/workers/register?worker_id=w1&address={address}"),
        "text/plain",
        "",
    );
    assert_eq!(code, 200, "{reg}");

    // An address that answers as another worker is refused.
    let (code, reg) = cluster.post_raw(
        "/workers/register",
        "application/x-www-form-urlencoded",
        &format!("worker_id=impostor&address={address}"),
    );
    assert_eq!(code, 400, "{reg}");
    assert!(
        reg["error"]
            .as_str()
            .unwrap()
            .contains("answers as worker \"w1\""),
        "{reg}"
    );

    // curl /workers
    let (_, workers) = cluster.get("/workers");
    has_keys(&workers["workers"]["w1"], &["address", "last_seen"]);
    assert_eq!(
        workers["workers"]["w1"]["slots"], 2,
        "re-registering keeps the worker's own slots"
    );
    assert_eq!(workers["ring"].as_array().unwrap().len(), 2);

    // curl -X POST /jobs -d '{"job": …, "input_url": "nfs:///…", "partitions": 2}'
    let (code, job) = cluster.post_json(
        "/jobs",
        &json!({"job": "wordcount", "input_url": format!("nfs://{}", input.display()), "partitions": 2}),
    );
    assert_eq!(code, 200, "{job}");
    assert_eq!(job["status"], "QUEUED");
    let id = job["job_id"].as_str().unwrap().to_owned();
    let status_keys = [
        "job_id",
        "status",
        "mode",
        "message",
        "outputs",
        "script_path",
        "input_path",
        "chunks_dir",
        "shuffle_dir",
        "partitions",
        "map_splits",
        "reduce_partitions",
    ];
    has_keys(&job, &status_keys);

    // curl /jobs/{id}
    let done = cluster.wait(&id);
    has_keys(&done, &status_keys);
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(done["mode"], "SINGLE", "a tiny input runs SINGLE");
    assert_eq!(
        done["partitions"], 1,
        "as one partition, whatever was asked"
    );
    assert!(done["outputs"][0]
        .as_str()
        .unwrap()
        .ends_with("out/result.txt"));

    // curl /jobs/{id}/ls
    let (code, ls) = cluster.get(&format!("/jobs/{id}/ls"));
    assert_eq!(code, 200);
    has_keys(
        &ls,
        &[
            "base",
            "script",
            "input",
            "chunks",
            "shuffle",
            "out",
            "status",
            "mode",
            "message",
            "partitions",
        ],
    );
    assert!(ls["out"].as_array().unwrap().contains(&json!("result.txt")));

    // curl /jobs/{id}/result: the original's JSON with the whole result.txt.
    let (code, result) = cluster.get(&format!("/jobs/{id}/result"));
    assert_eq!(code, 200);
    assert_eq!(result["job_id"], id.as_str());
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(
        sorted_lines(result["result"].as_str().unwrap()),
        ["grid\t2", "hola\t3", "mr\t1", "mundo\t2"]
    );

    // The same samples DISTRIBUTED give the same counts.
    let dist = cluster.submit(
        json!({"job": "wordcount", "input_url": input, "partitions": 3, "force_distributed": true}),
    );
    assert_eq!(cluster.wait(&dist)["mode"], "DISTRIBUTED");
    assert_eq!(
        cluster.result_lines(&dist),
        ["grid\t2", "hola\t3", "mr\t1", "mundo\t2"]
    );

    // curl /metrics/jobs
    let (code, metrics) = cluster.get("/metrics/jobs");
    assert_eq!(code, 200);
    let m = metrics["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == id.as_str())
        .unwrap();
    has_keys(
        m,
        &[
            "job_id",
            "status",
            "mode",
            "input_size_bytes",
            "map_splits",
            "reduce_partitions",
            "t_total_s",
            "t_prepare_s",
            "t_single_s",
            "t_map_s",
            "t_reduce_s",
            "t_overhead_s",
        ],
    );
    assert_eq!(
        m["input_size_bytes"],
        std::fs::metadata(&input).unwrap().len()
    );
    assert!(m["t_total_s"].as_f64().unwrap() > 0.0);

    // curl /metrics (Prometheus)
    let (code, text) = cluster.get_text("/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains("gridmr_jobs{state=\"SUCCEEDED\"} 2"),
        "{text}"
    );
    assert!(text.contains("gridmr_workers_live 2"), "{text}");
    assert!(
        text.contains("gridmr_tasks_total{phase=\"reduce\",outcome=\"succeeded\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("gridmr_task_duration_seconds_bucket"),
        "{text}"
    );

    // curl /jobs
    let (_, list) = cluster.get("/jobs");
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    has_keys(
        &jobs[0],
        &["job_id", "status", "mode", "message", "outputs"],
    );

    // curl -X DELETE /jobs/{id}; then the id is unknown, and never reused.
    let (code, del) = cluster.delete(&format!("/jobs/{id}"));
    assert_eq!(code, 200);
    assert_eq!(
        del,
        json!({"job_id": id, "deleted": true, "cancelled": false, "purged": false})
    );
    assert!(
        std::path::Path::new(done["outputs"][0].as_str().unwrap()).exists(),
        "files kept without purge"
    );
    let (code, gone) = cluster.get(&format!("/jobs/{id}"));
    assert_eq!(code, 404);
    assert!(gone["error"].as_str().unwrap().contains(&id));
    assert_eq!(
        (&gone["status"], &gone["job_id"]),
        (&json!("UNKNOWN"), &json!(id))
    );
    // A second DELETE: 404, and "deleted": false for the clients that read it.
    let (code, again) = cluster.delete(&format!("/jobs/{id}"));
    assert_eq!(code, 404);
    assert_eq!(
        (&again["deleted"], &again["status"]),
        (&json!(false), &json!("UNKNOWN"))
    );
    // The original's short id form names the same job (the README's `curl $M/jobs/job-1`).
    let short = format!(
        "job-{}",
        dist.trim_start_matches("job-").trim_start_matches('0')
    );
    let (code, same) = cluster.get(&format!("/jobs/{short}"));
    assert_eq!((code, &same["job_id"]), (200, &json!(dist)));
    let (code, _) = cluster.get(&format!("/jobs/{short}/ls"));
    assert_eq!(code, 200);
    let (code, _) = cluster.get(&format!("/jobs/{short}/result"));
    assert_eq!(code, 200);
    let next = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_ne!(next, id);
    assert_ne!(next, dist);
    cluster.wait(&next);
    let (code, del) = cluster.delete(&format!("/jobs/{next}?purge=true"));
    assert_eq!((code, &del["purged"]), (200, &json!(true)));
    assert!(!cluster.shared.path().join("jobs").join(&next).exists());
}

// A table of bad requests against one cluster, then a check that it still serves: long
// because the table is, and the point is that they all hit the same process.
#[test]
fn bad_requests_get_4xx_json_errors_and_nothing_else_breaks() {
    let cluster = Cluster::start(1, &[], &[("GRIDMR_INJECT_DELAY_MS", "200")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let outside = tempfile::NamedTempFile::new().unwrap();
    // A job running through all of it.
    let running = cluster.submit(
        json!({"job": "wordcount", "input_url": input, "partitions": 4, "force_distributed": true}),
    );

    let shared = cluster.shared.path().display().to_string();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"job": "wordcount"}), 400, "input_url"),
        (json!({"input_url": input}), 400, "missing field"),
        (
            json!({"job": "nope", "input_url": input}),
            400,
            "unknown job",
        ),
        (
            json!({"job": "wordcount", "script_url": "/x.py", "input_url": input}),
            400,
            "not both",
        ),
        (
            json!({"job": "wordcount", "input_url": outside.path()}),
            400,
            "outside the shared folder",
        ),
        (
            json!({"job": "wordcount", "input_url": format!("{shared}/in/../../../etc/passwd")}),
            400,
            "..",
        ),
        (
            json!({"job": "wordcount", "input_url": format!("{shared}/in/missing.txt")}),
            400,
            "missing.txt",
        ),
        (
            json!({"job": "wordcount", "input_url": "relative/path"}),
            400,
            "absolute path",
        ),
        (
            json!({"job": "wordcount", "input_url": "https://example.org/x"}),
            400,
            "shared folder",
        ),
        (
            json!({"job": "wordcount", "input_url": input, "partitions": 0}),
            400,
            "at least 1",
        ),
        (
            json!({"job": "wordcount", "input_url": input, "reduce_partitions": 1_000_000}),
            400,
            "MAX_PARTITIONS",
        ),
        (
            json!({"job": "wordcount", "input_url": input, "partitions": -1}),
            400,
            "invalid",
        ),
        (
            json!({"job": "wordcount", "input_url": input, "partitions": 1e20}),
            400,
            "invalid",
        ),
    ];
    for (body, code, needle) in cases {
        let (got, answer) = cluster.post_json("/jobs", &body);
        assert_eq!(got, code, "{body} → {answer}");
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("JSON error for {body}: {answer}"));
        assert!(error.contains(needle), "{body} → {error}");
    }
    for (content_type, body) in [
        ("application/json", "{not json"),
        ("application/json", ""),
        ("text/plain", "[]"),
    ] {
        let (got, answer) = cluster.post_raw("/jobs", content_type, body);
        assert_eq!(got, 400, "{body:?} → {answer}");
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("invalid job request"));
    }
    // Registrations: missing fields, a bad address, an address nobody answers.
    for (ct, body, needle) in [
        (
            "application/x-www-form-urlencoded",
            "worker_id=x",
            "invalid registration",
        ),
        (
            "application/json",
            r#"{"worker_id":"x","address":"nohostport"}"#,
            "host:port",
        ),
        (
            "application/json",
            r#"{"worker_id":"a/b","address":"127.0.0.1:5"}"#,
            "plain name",
        ),
        (
            "application/x-www-form-urlencoded",
            "worker_id=ghost&address=127.0.0.1:1",
            "unreachable",
        ),
        ("text/plain", "", "invalid registration"),
    ] {
        let (got, answer) = cluster.post_raw("/workers/register", ct, body);
        assert_eq!(got, 400, "{body} → {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{body} → {answer}"
        );
    }
    let (_, workers) = cluster.get("/workers");
    assert!(
        workers["workers"].get("ghost").is_none(),
        "an unreachable worker is not added"
    );
    // Unknown things are 404 with JSON.
    for path in [
        "/jobs/job-999999",
        "/jobs/job-999999/ls",
        "/jobs/job-999999/result",
        "/jobs/job-999999/tasks",
        "/nope",
    ] {
        let (got, answer) = cluster.get(path);
        assert_eq!(got, 404, "{path}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
    let (got, _) = cluster.delete("/jobs/job-999999");
    assert_eq!(got, 404);
    let (got, answer) = cluster.post_json("/workers/nobody/heartbeat", &json!({"running": 0}));
    assert_eq!(got, 404, "{answer}");
    let (got, answer) = cluster.get(&format!("/jobs/{running}?wait_ms=abc"));
    assert_eq!(got, 400, "{answer}");
    let (got, answer) = cluster.get(&format!("/jobs/{running}/result?format=xml"));
    assert!(got == 400 || got == 409, "{answer}");

    // The result of a job that is still running is a 409 with its state.
    let (got, answer) = cluster.get(&format!("/jobs/{running}/result"));
    if got == 409 {
        assert!(answer["status"].is_string(), "{answer}");
    }

    // The master is up, the running job finished well, and new jobs run.
    let done = cluster.wait(&running);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let (code, health) = cluster.get("/health");
    assert_eq!((code, &health["ok"]), (200, &json!(true)));
    let next = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_eq!(cluster.wait(&next)["status"], "SUCCEEDED");
}

#[test]
fn deleting_a_running_job_cancels_it() {
    let cluster = Cluster::start(2, &[], &[("GRIDMR_INJECT_DELAY_MS", "300")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let id = cluster.submit(json!({"job": "wordcount", "input_url": input, "map_splits": 8, "reduce_partitions": 2, "force_distributed": true}));
    cluster.poll("a running attempt", || {
        cluster
            .tasks(&id)
            .iter()
            .any(|a| a["outcome"] == "running")
            .then_some(())
    });
    let (code, del) = cluster.delete(&format!("/jobs/{id}?purge=true"));
    assert_eq!(code, 200, "{del}");
    assert_eq!(del["cancelled"], true);
    // No task of it runs any more: the workers' slots come free and a new job
    // gets them.
    let next = cluster.submit(
        json!({"job": "wordcount", "input_url": input, "partitions": 2, "force_distributed": true}),
    );
    assert_eq!(cluster.wait(&next)["status"], "SUCCEEDED");
    let (_, list) = cluster.get("/jobs");
    assert!(list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["job_id"] != id.as_str()));
    let (code, _) = cluster.get(&format!("/jobs/{id}"));
    assert_eq!(code, 404);
    // The purge is final: attempts that were still starting when it came
    // (the next job ran after them, behind the workers' single slots) fail
    // rather than make the job's folder again.
    let base = cluster.shared.path().join("jobs").join(&id);
    assert!(!base.exists(), "{} came back", base.display());
}
