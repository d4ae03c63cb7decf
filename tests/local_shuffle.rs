//! The worker-served shuffle (`SHUFFLE=local`) on a real cluster: typed,
//! script and streaming jobs give the same output as with the shared
//! shuffle; a worker killed while its map outputs are needed, and a map
//! output damaged on its worker's disk (read in place or fetched), cost only
//! those maps; and a job's outputs leave the workers when it ends.

mod common;

use common::{embedded_wordcount, entries, repo_data, Cluster};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// The maps each worker ran (and succeeded with), by worker.
fn maps_done_on(attempts: &[Value], worker: &str) -> Vec<String> {
    attempts
        .iter()
        .filter(|a| {
            a["worker_id"] == worker
                && a["outcome"] == "succeeded"
                && a["task"].as_str().is_some_and(|t| t.starts_with("map-"))
        })
        .map(|a| a["task"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until no worker keeps anything of `job` (the master told them it
/// ended).
fn wait_dropped(cluster: &Cluster, job: &str, workers: &[&str]) {
    cluster.poll(&format!("the workers to drop {job}'s map outputs"), || {
        workers
            .iter()
            .all(|w| !cluster.worker_dir(w).join("shuffle").join(job).exists())
            .then_some(())
    });
}

#[test]
fn typed_script_and_streaming_jobs_give_the_same_output_in_both_modes() {
    let workers = ["w1", "w2", "w3"];
    let cluster = Cluster::start(3, &[], &[]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let script = cluster.put_input(&example("wordcount.py"), "wordcount.py");
    let expected = embedded_wordcount(&input);
    let split = json!({"map_splits": 5, "reduce_partitions": 3, "force_distributed": true});
    let mut kinds = vec![
        json!({"job": "wordcount", "input_url": input}),
        json!({"script_url": script, "input_url": input}),
        json!({
            "mapper": "awk '{ for (i = 1; i <= NF; i++) print $i \"\\t1\" }'",
            "reducer": "awk -F '\\t' '{ n[$1] += $2 } END { for (k in n) print k \"\\t\" n[k] }'",
            "input_url": input
        }),
    ];
    for body in &mut kinds {
        for (k, v) in split.as_object().unwrap() {
            body[k] = v.clone();
        }
    }
    for body in kinds {
        let mut results = Vec::new();
        for mode in ["shared", "local"] {
            let mut b = body.clone();
            b["shuffle_mode"] = json!(mode);
            let id = cluster.submit(b);
            let done = cluster.wait(&id);
            assert_eq!(done["status"], "SUCCEEDED", "{mode} {done}");
            let attempts = cluster.tasks(&id);
            if mode == "local" {
                let holders = workers
                    .iter()
                    .filter(|w| !maps_done_on(&attempts, w).is_empty())
                    .count();
                assert!(holders >= 2, "maps ran on one worker only: {attempts:?}");
                // The workers share this host: what a reduce did not keep itself it read
                // from the holder's folder, none of it over the network.
                let c = &done["counters"]["gridmr"];
                assert!(
                    c["reduce_shuffle_host_local_bytes"].as_u64() > Some(0)
                        && c["reduce_shuffle_remote_bytes"].is_null(),
                    "{c}"
                );
                wait_dropped(&cluster, &id, &workers);
            }
            results.push(cluster.result_lines(&id));
        }
        assert_eq!(results[0], results[1], "{body}");
        if body["job"] == "wordcount" {
            assert_eq!(results[1], expected);
        }
    }
    // Nothing of any job is left in a worker's folder.
    for w in workers {
        assert!(
            entries(&cluster.worker_dir(w).join("shuffle")).is_empty(),
            "{w}"
        );
        assert!(
            entries(&cluster.worker_dir(w).join("fetch")).is_empty(),
            "{w}"
        );
    }
}

/// A job on three workers whose attempts each wait `delay_ms` first (time
/// to act between the map and reduce phases), in local mode; returns its
/// id, its expected output, and its status once it reduces.
fn reducing_job(cluster: &Cluster, delay_input: &str) -> (String, Vec<String>, Value) {
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), delay_input);
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 4, "reduce_partitions": 3,
        "force_distributed": true, "shuffle_mode": "local"
    }));
    let status = cluster.poll("the maps to be done", || {
        let (_, v) = cluster.get(&format!("/jobs/{id}"));
        (v["status"] == "REDUCING").then_some(v)
    });
    (id, expected, status)
}

#[test]
fn a_worker_killed_while_reduces_need_its_map_outputs_costs_only_its_maps() {
    let delay = [("GRIDMR_INJECT_DELAY_MS", "1500")];
    let mut cluster = Cluster::start(3, &[], &delay);
    let (id, expected, _) = reducing_job(&cluster, "ernest.txt");
    let before = cluster.tasks(&id);
    let victim = ["w1", "w2", "w3"]
        .into_iter()
        .find(|w| !maps_done_on(&before, w).is_empty())
        .expect("a worker that keeps map outputs");
    let its_maps = maps_done_on(&before, victim);
    cluster.kill_worker(victim);

    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    let after = cluster.tasks(&id);
    let runs = |task: &str| {
        after
            .iter()
            .filter(|a| a["task"] == task && a["outcome"] == "succeeded")
            .count()
    };
    for map in (0..4).map(|m| format!("map-{m:05}")) {
        let again = if its_maps.contains(&map) { 2 } else { 1 };
        assert_eq!(
            runs(&map),
            again,
            "{map} (the victim kept {its_maps:?}): {after:?}"
        );
    }
    assert_eq!(
        done["tasks"]["map"]["failed_attempts"], 0,
        "a lost worker's maps are not charged"
    );
}

#[test]
fn a_map_output_damaged_on_its_workers_disk_runs_that_map_again() {
    damaged_output_story(true);
}

#[test]
fn a_map_output_damaged_and_fetched_over_the_network_runs_that_map_again() {
    damaged_output_story(false);
}

/// A kept data file damaged while the reduces wait: read in place from the
/// holder's folder (`host_local`) or fetched over gRPC, it is found and its
/// map runs again.
fn damaged_output_story(host_local: bool) {
    let env = [
        ("GRIDMR_INJECT_DELAY_MS", "2500"),
        (
            "SHUFFLE_HOST_LOCAL",
            if host_local { "true" } else { "false" },
        ),
    ];
    let cluster = Cluster::start(3, &[], &env);
    let (id, expected, _) = reducing_job(&cluster, "ernest.txt");
    // Flip a byte in the middle of one kept data file.
    let data = ["w1", "w2", "w3"]
        .iter()
        .flat_map(|w| {
            let dir = cluster.worker_dir(w).join("shuffle").join(&id);
            entries(&dir).into_iter().map(move |n| dir.join(n))
        })
        .find(|p| p.extension().is_some_and(|e| e == "data"))
        .expect("a kept data file");
    let map = data.file_name().unwrap().to_string_lossy()[..9].to_owned();
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&data, bytes).unwrap();

    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    let attempts = cluster.tasks(&id);
    let lost: Vec<_> = attempts
        .iter()
        .filter(|a| a["kind"] == "map_output_lost")
        .collect();
    assert!(!lost.is_empty(), "{attempts:?}");
    assert!(
        lost.iter()
            .all(|a| a["error"].as_str().unwrap_or_default().contains(&map)),
        "{lost:?}"
    );
    let runs = |task: &str| attempts.iter().filter(|a| a["task"] == task).count();
    assert_eq!(
        runs(&map),
        2,
        "only the damaged map runs again: {attempts:?}"
    );
    assert_eq!(
        done["tasks"]["reduce"]["failed_attempts"], 0,
        "the reduces are not charged"
    );
    // Where the reduces' inputs came from: every worker runs on this host.
    let c = &done["counters"]["gridmr"];
    let (host, remote) = (
        c["reduce_shuffle_host_local_bytes"].as_u64().unwrap_or(0),
        c["reduce_shuffle_remote_bytes"].as_u64().unwrap_or(0),
    );
    if host_local {
        assert!(host > 0 && remote == 0, "{c}");
    } else {
        assert!(remote > 0 && host == 0, "{c}");
    }
}
