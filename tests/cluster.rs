//! Word count through a loopback cluster of real processes equals the
//! embedded engine's, in SINGLE and DISTRIBUTED, for several M and R; and
//! tasks really run on several workers at once.

mod common;

use common::{embedded_wordcount, repo_data, sorted_lines, Cluster};
use serde_json::{json, Value};

#[test]
fn cluster_word_count_equals_the_embedded_engine() {
    let cluster = Cluster::start(3, &[], &[("WORKER_SLOTS", "2")]);
    let lf = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let crlf = cluster.put_input(
        &repo_data("gutenberg/lincoln_first_inaugural_crlf.txt"),
        "lincoln.txt",
    );
    for input in [&lf, &crlf] {
        let expected = embedded_wordcount(input);
        assert!(expected.len() > 500);
        // (map splits, reduce partitions, forced): SINGLE below the
        // threshold, then DISTRIBUTED with several shapes.
        let cases: [(Option<u32>, Option<u32>, bool, &str); 5] = [
            (None, None, false, "SINGLE"),
            (Some(1), Some(1), true, "DISTRIBUTED"),
            (Some(2), Some(3), true, "DISTRIBUTED"),
            (Some(7), Some(2), true, "DISTRIBUTED"),
            (Some(4), Some(5), true, "DISTRIBUTED"),
        ];
        let mut ids = Vec::new();
        for (m, r, force, _) in cases {
            let mut body =
                json!({"job": "wordcount", "input_url": format!("nfs://{}", input.display())});
            if let Some(m) = m {
                body["map_splits"] = json!(m);
            }
            if let Some(r) = r {
                body["reduce_partitions"] = json!(r);
            }
            if force {
                body["force_distributed"] = json!(true);
            }
            ids.push(cluster.submit(body));
        }
        // All five run at once; each must give the embedded engine's answer.
        for (id, (m, r, _, mode)) in ids.iter().zip(cases) {
            let done = cluster.wait(id);
            assert_eq!(done["status"], "SUCCEEDED", "{done}");
            assert_eq!(done["mode"], mode, "{done}");
            if let (Some(m), Some(r)) = (m, r) {
                assert_eq!(done["map_splits"], m);
                assert_eq!(done["reduce_partitions"], r);
                assert_eq!(done["tasks"]["reduce"]["succeeded"], r);
            }
            assert_eq!(
                cluster.result_lines(id),
                expected,
                "job {id} ({m:?}, {r:?})"
            );
            let c = &done["counters"]["gridmr"];
            assert_eq!(c["output_records"].as_u64(), Some(expected.len() as u64));
            // The committed layout: one part per partition, result, _SUCCESS last.
            let (_, ls) = cluster.get(&format!("/jobs/{id}/ls"));
            let out: Vec<&str> = ls["out"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                out.contains(&"_SUCCESS") && out.contains(&"result.txt"),
                "{ls}"
            );
            let parts = out.iter().filter(|n| n.starts_with("part-r-")).count() as u64;
            assert_eq!(parts, r.map_or(1, u64::from));
            assert!(
                ls["shuffle"].as_array().unwrap().is_empty(),
                "shuffle cleaned: {ls}"
            );
        }
    }
}

/// Attempt intervals `[started, finished]` on two different workers overlap.
fn overlapping_on_two_workers(attempts: &[Value], prefix: &str) -> bool {
    let of: Vec<(&str, u64, u64)> = attempts
        .iter()
        .filter(|a| a["task"].as_str().is_some_and(|t| t.starts_with(prefix)))
        .map(|a| {
            (
                a["worker_id"].as_str().unwrap(),
                a["started_ms"].as_u64().unwrap(),
                a["finished_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    of.iter()
        .any(|a| of.iter().any(|b| a.0 != b.0 && a.1 < b.2 && b.1 < a.2))
}

#[test]
fn maps_and_reduces_run_concurrently_on_two_workers() {
    // One slot per worker and a pause in every task, so that two attempts of
    // a phase can only run at once on two different workers.
    let cluster = Cluster::start(2, &[], &[("GRIDMR_INJECT_DELAY_MS", "300")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 4, "reduce_partitions": 2,
        "force_distributed": true
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let attempts = cluster.tasks(&id);
    assert_eq!(attempts.len(), 6, "{attempts:?}");
    let workers: std::collections::BTreeSet<&str> = attempts
        .iter()
        .filter_map(|a| a["worker_id"].as_str())
        .collect();
    assert_eq!(workers.len(), 2, "both workers ran tasks: {attempts:?}");
    assert!(
        overlapping_on_two_workers(&attempts, "map-"),
        "{attempts:?}"
    );
    assert!(
        overlapping_on_two_workers(&attempts, "reduce-"),
        "{attempts:?}"
    );
    // Every reduce started after the last map finished.
    let last_map = attempts
        .iter()
        .filter(|a| a["task"].as_str().unwrap().starts_with("map-"))
        .map(|a| a["finished_ms"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(attempts
        .iter()
        .filter(|a| a["task"].as_str().unwrap().starts_with("reduce-"))
        .all(|a| a["started_ms"].as_u64().unwrap() >= last_map));
}

/// Operators read the logs: the job and task lifecycle at info, no colour
/// codes in a file, and one JSON object per line with `LOG_FORMAT=json`.
#[test]
fn logs_tell_the_lifecycle_plainly_or_as_json() {
    let cluster = Cluster::start(1, &[("LOG_FORMAT", "json")], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let id = cluster.submit(serde_json::json!({
        "job": "wordcount", "input_url": input, "partitions": 2, "force_distributed": true
    }));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    let master = cluster.master_log();
    let lines: Vec<serde_json::Value> = master
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    for event in [
        "job planned",
        "attempt started",
        "attempt succeeded",
        "job succeeded",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l["fields"]["message"] == event && l["fields"]["job"] == id.as_str()),
            "no {event:?} for {id} in the master's log:\n{master}"
        );
    }
    let worker = std::fs::read_to_string(cluster.shared.path().join("logs/w1.log")).unwrap();
    assert!(
        worker.contains("task started") && worker.contains("task done"),
        "{worker}"
    );
    assert!(
        !worker.contains('\u{1b}'),
        "colour codes in a log file: {worker}"
    );
}

/// The CLI speaks to people in tables and short lines, and to scripts in JSON with --json:
/// `submit` prints the id, `jobs`, `workers` and `status` print tables and summaries,
/// `cancel` and `delete` one line each.
#[test]
fn the_cli_prints_tables_for_people_and_json_for_scripts() {
    let cluster = Cluster::start(1, &[], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let gridmr = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridmr"))
            .args(args)
            .env("GRIDMR_MASTER", &cluster.url)
            .env("SHARED_DIR", cluster.shared.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let input = input.display().to_string();
    let (id, said) = gridmr(&["submit", "--job", "wordcount", "--input", &input]);
    let id = id.trim().to_owned();
    assert!(id.starts_with("job-") && !id.contains('\n'), "{id:?}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("gridmr status --wait"), "{said}");
    let (summary, _) = gridmr(&["status", "--wait", &id]);
    let first = summary.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{id}  SUCCEEDED  SINGLE  wordcount")),
        "{summary}"
    );
    assert!(summary.contains("\noutput "), "{summary}");
    let (json, _) = gridmr(&["status", "--json", &id]);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["job_id"], id.as_str());
    let (jobs, _) = gridmr(&["jobs"]);
    let mut lines = jobs.lines();
    assert!(
        lines.next().unwrap().starts_with("JOB         STATUS"),
        "{jobs}"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(&format!("{id}  SUCCEEDED")),
        "{jobs}"
    );
    let (jobs, _) = gridmr(&["jobs", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&jobs).unwrap()["jobs"][0]["job_id"],
        id.as_str()
    );
    let (workers, _) = gridmr(&["workers"]);
    assert!(workers.starts_with("WORKER"), "{workers}");
    assert!(
        workers.lines().nth(1).unwrap().starts_with("w1 "),
        "{workers}"
    );
    let (cancel, _) = gridmr(&["cancel", &id]);
    assert_eq!(
        cancel.trim(),
        format!("{id} had already ended: SUCCEEDED (nothing to cancel)")
    );
    let (deleted, _) = gridmr(&["delete", &id]);
    assert_eq!(deleted.trim(), format!("deleted {id}"));
    // pi and teragen make their control files from flags, as Hadoop's drivers do.
    let (_, said) = gridmr(&[
        "submit",
        "--job",
        "pi",
        "--points",
        "1000",
        "--map-splits",
        "3",
        "--wait",
    ]);
    let pi = said
        .lines()
        .find_map(|l| l.strip_prefix("submitted "))
        .unwrap()
        .trim()
        .to_owned();
    let (_, done) = cluster.get(&format!("/jobs/{pi}"));
    assert_eq!(done["counters"]["gridmr"]["map_input_records"], 3, "{done}");
    let (_, said) = gridmr(&["submit", "--job", "teragen", "--rows", "500", "--wait"]);
    let gen = said
        .lines()
        .find_map(|l| l.strip_prefix("submitted "))
        .unwrap()
        .trim()
        .to_owned();
    let (_, done) = cluster.get(&format!("/jobs/{gen}"));
    assert_eq!(done["counters"]["gridmr"]["output_records"], 500, "{done}");
}

/// The CLI resolves a relative input against the current folder, and its
/// connection errors say why.
#[test]
fn the_cli_takes_relative_inputs_and_explains_connection_errors() {
    let cluster = Cluster::start(1, &[], &[]);
    cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args([
            "submit",
            "--job",
            "wordcount",
            "--input",
            "in/input.txt",
            "--wait",
        ])
        .current_dir(cluster.shared.path())
        .env("GRIDMR_MASTER", &cluster.url)
        .env("SHARED_DIR", cluster.shared.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Piped, --wait prints plain progress lines (a bar draws nothing): the
    // state, the tasks and the share done.
    assert!(
        err.lines()
            .any(|l| l.starts_with("job-") && l.contains('%') && l.contains(" · ")),
        "{err}"
    );
    // Shell completions come from the same command definitions.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && script.contains("_gridmr()") && script.contains("submit"));
    // Nothing listens on port 9 of loopback: the cause is in the message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args(["jobs", "--master", "http://127.0.0.1:9"])
        .env("GRIDMR_AUTH", "off")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

/// A running job's status moves: workers report how far each attempt got in
/// their heartbeats, and the job's phases show fractions and bytes between
/// none and all, which never exceed the input.
#[test]
fn a_running_jobs_progress_moves_between_nothing_and_everything() {
    let cluster = Cluster::start(2, &[], &[]);
    // 2.4 MB, far more than a pipe holds, read by a mapper that takes a
    // while over it: the bytes fed to it are its progress.
    let input = cluster.shared.path().join("in/lines.txt");
    let text: String = (0..200_000).map(|i| format!("line {i:06}\n")).collect();
    std::fs::write(&input, &text).unwrap();
    let mapper = "python3 -c 'import sys, time\nfor i, l in enumerate(sys.stdin):\n    \
                  i % 2000 or time.sleep(0.05)\n    sys.stdout.write(l)'";
    let id = cluster.submit(json!({
        "mapper": mapper, "reducer": "cat", "input_url": input.display().to_string(),
        "map_splits": 2, "reduce_partitions": 1,
    }));
    let seen = cluster.poll("a map phase part-way done", || {
        let (_, s) = cluster.get(&format!("/jobs/{id}"));
        assert_ne!(s["status"], "FAILED", "{s}");
        let map = &s["progress"]["map"];
        let fraction = map["fraction"].as_f64()?;
        (fraction > 0.05 && fraction < 0.9).then(|| s.clone())
    });
    let map = &seen["progress"]["map"];
    assert_eq!(map["total"].as_u64(), Some(text.len() as u64), "{seen}");
    let done = map["done"].as_u64().unwrap();
    assert!(done > 0 && done < text.len() as u64, "{seen}");
    // The attempts carry what their workers reported.
    let tasks = cluster.tasks(&id);
    assert!(
        tasks
            .iter()
            .any(|a| a["outcome"] == "running"
                && a["progress"]["done"].as_u64().is_some_and(|d| d > 0)),
        "{tasks:?}"
    );
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["progress"]["map"]["fraction"], 1.0);
    assert_eq!(done["progress"]["reduce"]["fraction"], 1.0);
    assert_eq!(
        done["progress"]["map"]["done"].as_u64(),
        Some(text.len() as u64)
    );
}

/// Past RESULT_TXT_MAX_BYTES a job's output is its part files: no
/// result.txt is written, the status lists the parts, and the result is
/// streamed as the parts joined.
#[test]
fn a_large_result_is_streamed_from_its_parts() {
    let cluster = Cluster::start(1, &[("RESULT_TXT_MAX_BYTES", "100")], &[]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input.display().to_string(),
        "reduce_partitions": 3, "force_distributed": true,
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let outputs: Vec<&str> = done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(outputs.len(), 3, "{done}");
    assert!(outputs.iter().all(|o| o.contains("/part-r-0000")), "{done}");
    let out = std::path::Path::new(done["output_dir"].as_str().unwrap()).to_path_buf();
    assert!(!out.join("result.txt").exists());
    let mut joined = String::new();
    for o in &outputs {
        joined.push_str(&std::fs::read_to_string(o).unwrap());
    }
    let (code, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
    assert_eq!(code, 200);
    assert_eq!(text, joined);
    assert_eq!(sorted_lines(&text), embedded_wordcount(&input));
    // The original's JSON form, streamed, for clients that read `.result`.
    let (code, json) = cluster.get(&format!("/jobs/{id}/result"));
    assert_eq!(code, 200);
    assert_eq!(
        (&json["job_id"], &json["status"]),
        (&json!(id), &json!("SUCCEEDED"))
    );
    assert_eq!(json["result"].as_str(), Some(joined.as_str()));
}

/// Past RESULT_INLINE_MAX_BYTES a result is text unless JSON is asked for,
/// which is refused rather than answered in part.
#[test]
fn a_result_past_the_json_limit_is_text() {
    let cluster = Cluster::start(1, &[("RESULT_INLINE_MAX_BYTES", "100")], &[]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let id = cluster.submit(json!({"job": "wordcount", "input_url": input.display().to_string()}));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    let (code, text) = cluster.get_text(&format!("/jobs/{id}/result"));
    assert_eq!(code, 200);
    assert_eq!(sorted_lines(&text), embedded_wordcount(&input));
    let (code, answer) = cluster.get(&format!("/jobs/{id}/result?format=json"));
    assert_eq!(code, 413, "{answer}");
}
