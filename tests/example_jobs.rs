//! Hadoop's example jobs on a loopback cluster of real processes: a job of
//! two inputs (join), parameters (grep, and a streaming command's
//! environment), a typed map-only job (teragen), and a planning hook run by
//! the master (terasort's sampled split points), each checked against the
//! embedded engine or a sequential count.

mod common;

use common::{sorted_lines, Cluster};
use gridmr_core::bundled::{grep, join, terasort};
use gridmr_core::{JobConfig, JobDef, LocalEngine};
use serde_json::{json, Value};
use std::path::Path;

/// The embedded engine's answer, as sorted lines.
fn embedded(job: &dyn JobDef, config: JobConfig) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = LocalEngine::new(dir.path())
        .with_threads(2)
        .run(job, &config)
        .unwrap();
    sorted_lines(&std::fs::read_to_string(out.result_file.unwrap()).unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn join_and_grep_on_the_cluster_equal_the_embedded_engine() {
    let cluster = Cluster::start(2, &[], &[("WORKER_SLOTS", "2")]);
    let dir = cluster.shared.path().join("in");
    let (users, orders) = (dir.join("users.tsv"), dir.join("orders"));
    std::fs::create_dir(&orders).unwrap();
    let mut u = String::new();
    for i in 0..300 {
        u.push_str(&format!("{}\tuser{i}\n", i % 200));
    }
    write(&users, &u);
    for part in 0..3 {
        let mut o = String::new();
        for i in 0..400 {
            o.push_str(&format!("{}\torder{part}-{i}\n", (i * 7 + part) % 260));
        }
        write(&orders.join(format!("o{part}.tsv")), &o);
    }
    let config = |kind: &str| {
        JobConfig::new(users.display().to_string())
            .with_input(orders.display().to_string())
            .with_param("join", kind)
    };
    for (kind, shape) in [
        ("inner", json!({"map_splits": 5, "reduce_partitions": 3})),
        ("outer", json!({"map_splits": 2, "reduce_partitions": 4})),
        ("left", json!({})),
    ] {
        let mut body = json!({
            "job": "join",
            "input_url": users.display().to_string(),
            "inputs": [orders.display().to_string()],
            "params": {"join": kind},
        });
        body.as_object_mut()
            .unwrap()
            .extend(shape.as_object().unwrap().clone());
        let id = cluster.submit(body);
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(done["params"]["join"], kind, "{done}");
        assert_eq!(done["inputs"][0], orders.display().to_string());
        let want = embedded(&join::job(), config(kind));
        assert!(want.len() > 300, "{kind}: {}", want.len());
        assert_eq!(cluster.result_lines(&id), want, "{kind} join");
    }

    // grep: the parameter reaches every map task.
    let text: String = (0..2000)
        .map(|i| format!("line {i} foo{} fooo bar\n", "o".repeat(i % 4)))
        .collect();
    let input = dir.join("grep.txt");
    write(&input, &text);
    let id = cluster.submit(json!({
        "job": "grep", "input_url": input.display().to_string(),
        "params": {"pattern": "fo+"}, "map_splits": 3, "reduce_partitions": 2,
    }));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    let want = embedded(
        &grep::job(),
        JobConfig::new(input.display().to_string()).with_param("pattern", "fo+"),
    );
    assert_eq!(cluster.result_lines(&id), want);
    // Without its parameter the job fails with a message that names it.
    let id = cluster.submit(json!({"job": "grep", "input_url": input.display().to_string()}));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "FAILED");
    assert!(
        done["error"].as_str().unwrap().contains("\"pattern\""),
        "{done}"
    );
}

#[test]
fn teragen_terasort_teravalidate_on_the_cluster() {
    let cluster = Cluster::start(2, &[], &[("WORKER_SLOTS", "2")]);
    let ctl = cluster.shared.path().join("in/ctl");
    let rows = 30_000u64;
    terasort::write_gen_input(&ctl, 3, rows).unwrap();
    let id = cluster.submit(json!({
        "job": "teragen", "input_url": ctl.display().to_string(), "reduce_partitions": 0,
    }));
    let made = cluster.wait(&id);
    assert_eq!(made["status"], "SUCCEEDED", "{made}");
    assert_eq!(made["counters"]["terasort"]["rows"], rows);
    let out = Path::new(made["output_dir"].as_str().unwrap()).to_path_buf();
    let parts = (0..3)
        .filter(|m| out.join(format!("part-m-{m:05}")).is_file())
        .count();
    assert_eq!(parts, 3, "one part-m file per map task");

    let id = cluster.submit(json!({
        "job": "terasort", "input_url": format!("{}/part-m-*", out.display()),
        "map_splits": 4, "reduce_partitions": 3, "params": {"terasort.samples": "3000"},
    }));
    let sorted = cluster.wait(&id);
    assert_eq!(sorted["status"], "SUCCEEDED", "{sorted}");
    // The master sampled the input and handed the split points to the tasks.
    let splits: Vec<String> =
        serde_json::from_str(sorted["params"][terasort::SPLITS_PARAM].as_str().unwrap()).unwrap();
    assert_eq!(splits.len(), 2, "{sorted}");
    let sorted_out = Path::new(sorted["output_dir"].as_str().unwrap()).to_path_buf();
    let mut previous: Option<String> = None;
    for p in 0..3 {
        let text = std::fs::read_to_string(sorted_out.join(format!("part-r-{p:05}"))).unwrap();
        assert!(text.lines().count() > 5000, "part {p} holds its share");
        for line in text.lines() {
            let key = line[..10].to_owned();
            assert!(previous.as_ref().is_none_or(|k| *k <= key), "order");
            previous = Some(key);
        }
    }

    let id = cluster.submit(json!({
        "job": "teravalidate", "input_url": format!("{}/part-r-*", sorted_out.display()),
        "reduce_partitions": 2, "force_distributed": true,
    }));
    let checked = cluster.wait(&id);
    assert_eq!(checked["status"], "SUCCEEDED", "{checked}");
    let report: Vec<Value> = cluster
        .result_lines(&id)
        .into_iter()
        .map(Value::String)
        .collect();
    let lines: Vec<&str> = report.iter().filter_map(Value::as_str).collect();
    assert!(
        lines.contains(&format!("rows\t{rows}").as_str()),
        "{lines:?}"
    );
    assert!(lines.contains(&"unordered\t0"), "{lines:?}");
    let checksum = made["counters"]["terasort"]["checksum"].as_u64().unwrap();
    assert!(
        lines.contains(&format!("checksum\t{checksum}").as_str()),
        "{lines:?}"
    );
}

#[test]
fn params_are_checked_and_reach_streaming_commands() {
    let cluster = Cluster::start(1, &[], &[]);
    let input = cluster.shared.path().join("in/x.txt");
    write(&input, "a\nb\n");
    let base = || json!({"job": "grep", "input_url": input.display().to_string()});
    for (field, value, says) in [
        ("params", json!({"bad name": "x"}), "param name"),
        ("params", json!({"p": 3}), "invalid job request"),
        (
            "inputs",
            json!((0..70)
                .map(|_| input.display().to_string())
                .collect::<Vec<_>>()),
            "inputs",
        ),
        ("inputs", json!(["/etc/passwd"]), "inputs"),
    ] {
        let mut body = base();
        body[field] = value;
        let (code, answer) = cluster.post_json("/jobs", &body);
        assert_eq!(code, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    // A streaming mapper sees the parameter as GRIDMR_PARAM_<NAME>.
    let id = cluster.submit(json!({
        "mapper": "while read l; do printf '%s\\t%s\\n' \"$l\" \"$GRIDMR_PARAM_GREETING_WORD\"; done",
        "input_url": input.display().to_string(),
        "params": {"greeting.word": "hola"},
    }));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&id), ["a\thola", "b\thola"]);
}
