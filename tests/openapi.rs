//! The master's OpenAPI description (`GET /openapi.json`) against the
//! running server: every documented operation is served and every served
//! one documented, and schemathesis (from PyPI) fuzzes the live API from
//! the description, checking status codes, content types, bodies against
//! their schemas, authentication, and that no request gets a 5xx.
//!
//! The schemathesis test is ignored unless asked for (`cargo test --
//! --include-ignored`), and then fails where schemathesis is missing
//! (`.ci/run` installs it). Its
//! `positive_data_acceptance` check is left out: the master checks more
//! than a schema can say (that an input exists on the share, that a
//! worker's address answers), so a schema-valid request may rightly get a
//! 400.

mod common;

use common::{repo_data, Cluster};
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn every_route_is_documented_and_every_documented_route_served() {
    let cluster = Cluster::start(0, &[], &[]);
    let (code, doc) = cluster.get("/openapi.json");
    assert_eq!(code, 200, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    // A documented operation is routed: it never gets the fallback's
    // "no such endpoint" or "method not allowed".
    let http = common::authed_client(cluster.shared.path());
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "up-00000000000000000000000000000000")
            .replace("{task}", "map-00000")
            .replace("{name}", "x.txt");
        let req = http.request(
            method.parse().unwrap(),
            format!("{}{concrete}", cluster.url),
        );
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap_or(Value::Null);
        assert!(
            status != 405 && body["error"] != "no such endpoint",
            "{method} {path}: {status} {body}"
        );
    }
    // And what the router serves is documented (the web UI aside).
    for (method, path) in [
        ("GET", "/health"),
        ("POST", "/jobs"),
        ("GET", "/jobs"),
        ("GET", "/jobs/{id}"),
        ("DELETE", "/jobs/{id}"),
        ("POST", "/jobs/{id}/cancel"),
        ("GET", "/jobs/{id}/ls"),
        ("GET", "/jobs/{id}/result"),
        ("GET", "/jobs/{id}/tasks"),
        ("GET", "/jobs/{id}/tasks/{task}/logs"),
        ("POST", "/uploads"),
        ("PUT", "/uploads/{id}/{name}"),
        ("DELETE", "/uploads/{id}"),
        ("GET", "/workers"),
        ("POST", "/workers/register"),
        ("POST", "/workers/{id}/heartbeat"),
        ("GET", "/metrics"),
        ("GET", "/metrics/jobs"),
        ("GET", "/openapi.json"),
    ] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not in the description"
        );
    }
    // Bearer authentication, and /health without it (or with it, for the
    // master's folders and jobs).
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["paths"]["/health"]["get"]["security"],
        json!([{}, {"bearer": []}])
    );
    let (code, _) = (
        common::bare_client()
            .get(format!("{}/openapi.json", cluster.url))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        (),
    );
    assert_eq!(code, 401);
}

fn schemathesis() -> Option<String> {
    let found = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("schemathesis".into());
    }
    panic!("this test needs schemathesis (pip install schemathesis; bash .ci/run installs it)");
}

#[test]
#[ignore = "needs schemathesis: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn schemathesis_finds_nothing_wrong_with_the_live_api() {
    let Some(st) = schemathesis() else { return };
    let cluster = Cluster::start(1, &[], &[]);
    // Something to find: a finished job, with tasks and logs.
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let job = cluster.submit(json!({
        "job": "wordcount", "input_url": input.display().to_string(),
        "map_splits": 2, "reduce_partitions": 2,
    }));
    assert_eq!(cluster.wait(&job)["status"], "SUCCEEDED");
    let token = common::token(cluster.shared.path()).unwrap_or_default();
    let config = cluster.shared.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[operations]]
include-path-regex = "^/jobs/"
parameters = {{ "id" = "{job}", "task" = "map-00000" }}

[[operations]]
include-path-regex = "^/workers/"
parameters = {{ "id" = "w1" }}
"#
        ),
    )
    .unwrap();
    let base = cluster.url.replace("0.0.0.0", "127.0.0.1");
    let out = Command::new(st)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--request-timeout",
            "20",
        ])
        .args(["--generation-deterministic", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        // Its cache (.schemathesis/) goes to the temp dir, not the checkout.
        .current_dir(config.parent().unwrap())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    // The master is still up and answering.
    let (code, _) = cluster.get("/health");
    assert_eq!(code, 200);
}
