//! Failures on real processes: a worker killed with SIGKILL in the middle of
//! the map phase, a task that fails once, a task that always fails.

mod common;

use common::{embedded_wordcount, repo_data, Cluster};
use serde_json::json;

#[test]
fn a_worker_killed_during_the_map_phase_does_not_fail_the_job() {
    worker_killed_during_the_map_phase("shared");
}

/// The same with the worker-served shuffle: the killed worker's finished
/// maps are lost with it, and run again.
#[test]
fn a_worker_killed_during_the_map_phase_does_not_fail_a_local_shuffle_job() {
    worker_killed_during_the_map_phase("local");
}

fn worker_killed_during_the_map_phase(shuffle_mode: &str) {
    // Slow tasks so the kill lands while maps are running; a short
    // heartbeat timeout so a silent worker is noticed quickly either way.
    let mut cluster = Cluster::start(
        2,
        &[("WORKER_TIMEOUT_S", "2"), ("SPECULATION", "off")],
        &[("GRIDMR_INJECT_DELAY_MS", "400")],
    );
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 8, "reduce_partitions": 3,
        "force_distributed": true, "shuffle_mode": shuffle_mode
    }));
    // Wait until w2 is running a map, then kill it.
    cluster.poll("a map running on w2", || {
        cluster
            .tasks(&id)
            .iter()
            .any(|a| {
                a["worker_id"] == "w2"
                    && a["outcome"] == "running"
                    && a["task"].as_str().is_some_and(|t| t.starts_with("map-"))
            })
            .then_some(())
    });
    cluster.kill_worker("w2");

    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    // The killed worker's attempts are lost, and run again by the survivor.
    cluster.assert_lost_and_rerun(&id, "w2", "w1");
    assert_eq!(
        done["tasks"]["map"]["failed_attempts"], 0,
        "lost is not failed"
    );
    cluster.poll("w2 declared dead", || {
        let (_, w) = cluster.get("/workers");
        (w["workers"]["w2"]["alive"] == false).then_some(())
    });
}

#[test]
fn failing_tasks_are_retried_then_fail_the_job_with_their_error() {
    // Every worker fails the first attempt of map-00001, and every attempt
    // of reduce-00002 (so only jobs with 3+ partitions hit it).
    let cluster = Cluster::start(
        2,
        &[("MAX_TASK_ATTEMPTS", "3")],
        &[("GRIDMR_INJECT_FAIL", "map-00001@1,reduce-00002@*")],
    );
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);

    let flaky = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 3, "reduce_partitions": 2,
        "force_distributed": true
    }));
    let doomed = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 2, "reduce_partitions": 3,
        "force_distributed": true
    }));

    let done = cluster.wait(&flaky);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&flaky), expected);
    assert_eq!(done["tasks"]["map"]["failed_attempts"], 1);
    let attempts = cluster.tasks(&flaky);
    let m1: Vec<_> = attempts
        .iter()
        .filter(|a| a["task"] == "map-00001")
        .collect();
    assert_eq!(m1.len(), 2, "{attempts:?}");
    assert_eq!(m1[0]["outcome"], "failed");
    assert!(m1[0]["error"]
        .as_str()
        .unwrap()
        .contains("injected failure"));
    assert_eq!(m1[1]["outcome"], "succeeded");
    // Counters count committed attempts only: the failed attempt read input too.
    assert_eq!(
        done["counters"]["gridmr"]["map_input_bytes"],
        std::fs::metadata(&input).unwrap().len()
    );

    let failed = cluster.wait(&doomed);
    assert_eq!(failed["status"], "FAILED", "{failed}");
    // A failed job leaves no map outputs or attempt files behind: its shuffle folder is
    // gone and its output folder empty.
    let shuffle = std::path::PathBuf::from(failed["shuffle_dir"].as_str().unwrap());
    let out = std::path::PathBuf::from(failed["output_dir"].as_str().unwrap());
    cluster.poll("the failed job's files to be removed", || {
        let empty = std::fs::read_dir(&out).unwrap().count() == 0;
        (empty && !shuffle.exists()).then_some(())
    });
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("reduce-00002")
            && error.contains("3 time(s)")
            && error.contains("injected failure"),
        "{error}"
    );
    let r2 = cluster
        .tasks(&doomed)
        .into_iter()
        .filter(|a| a["task"] == "reduce-00002")
        .count();
    assert_eq!(r2, 3);
    let (code, body) = cluster.get(&format!("/jobs/{doomed}/result"));
    assert_eq!(code, 409);
    assert!(
        body["error"].as_str().unwrap().contains("reduce-00002"),
        "{body}"
    );

    // The cluster is still healthy and runs the next job.
    let again = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_eq!(cluster.wait(&again)["status"], "SUCCEEDED");
}

#[test]
fn a_frozen_worker_is_declared_dead_by_heartbeats_and_used_again_when_it_thaws() {
    // SIGSTOP keeps the worker's connections open: only the missing
    // heartbeats can tell the master.
    // No backup attempts: this test is about the heartbeats.
    let cluster = Cluster::start(
        2,
        &[("WORKER_TIMEOUT_S", "1.5"), ("SPECULATION", "off")],
        &[("GRIDMR_INJECT_DELAY_MS", "300")],
    );
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 6, "reduce_partitions": 2,
        "force_distributed": true
    }));
    cluster.wait_running_on(&id, "w2");
    cluster.signal_worker("w2", "STOP");
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    let lost = cluster.assert_lost_and_rerun(&id, "w2", "w1");
    assert!(lost
        .iter()
        .all(|a| a["error"].as_str().unwrap().contains("heartbeats")));
    let (_, w) = cluster.get("/workers");
    assert_eq!(w["workers"]["w2"]["alive"], false, "{w}");

    // Thawed, it heartbeats again and takes work again.
    cluster.signal_worker("w2", "CONT");
    cluster.wait_live_workers(2);
    let next = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 4, "reduce_partitions": 2,
        "force_distributed": true
    }));
    assert_eq!(cluster.wait(&next)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&next), expected);
}

// A restart is a sequence (jobs in several states, the master killed, a new one on the
// same share): the checks after the restart read what the steps before it left.
#[test]
fn a_master_restart_keeps_ended_jobs_and_runs_unfinished_ones_again() {
    // Every attempt takes at least a second, so a job is surely running
    // when the master is killed.
    let mut cluster = Cluster::start(
        2,
        &[("MAX_TASK_ATTEMPTS", "1")],
        &[("GRIDMR_INJECT_DELAY_MS", "1000")],
    );
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let counts = ["grid\t2", "hola\t3", "mr\t1", "mundo\t2"];
    let done = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    let done_before = cluster.wait(&done);
    assert_eq!(done_before["status"], "SUCCEEDED");
    let done_tasks = cluster.tasks(&done);
    let script = cluster.shared.path().join("raises.py");
    std::fs::write(
        &script,
        "def map_func(line):\n    raise ValueError('boom')\n\ndef reduce_func(k, vs):\n    return k, 0\n",
    )
    .unwrap();
    let failed = cluster.submit(json!({"script_url": script, "input_url": input}));
    let failed_before = cluster.wait(&failed);
    assert_eq!(failed_before["status"], "FAILED");
    let deleted = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_eq!(cluster.wait(&deleted)["status"], "SUCCEEDED");
    assert_eq!(cluster.delete(&format!("/jobs/{deleted}")).0, 200);
    // No width asked: the job is as wide as the live workers' slots, then
    // and after the restart.
    let running =
        cluster.submit(json!({"job": "wordcount", "input_url": input, "force_distributed": true}));
    cluster.poll("the job to start mapping", || {
        let (_, v) = cluster.get(&format!("/jobs/{running}"));
        (v["status"] == "MAPPING").then_some(())
    });

    // A client waiting on the job rides out the restart.
    let mut waiting = std::process::Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args(["status", "--wait", "--json", &running])
        .env("GRIDMR_MASTER", &cluster.url)
        .env("SHARED_DIR", cluster.shared.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Workers heartbeat every 200 ms: all are back well within 1.5 s.
    cluster.restart_master(&[("MAX_TASK_ATTEMPTS", "1"), ("WORKER_TIMEOUT_S", "1.5")]);
    // Ended jobs are served as they ended, straight away.
    let (code, done_after) = cluster.get(&format!("/jobs/{done}"));
    assert_eq!(code, 200, "{done_after}");
    for field in ["status", "counters", "times", "tasks", "outputs", "mode"] {
        assert_eq!(done_after[field], done_before[field], "{field}");
    }
    assert_eq!(cluster.result_lines(&done), counts);
    assert_eq!(cluster.tasks(&done), done_tasks);
    let (_, failed_after) = cluster.get(&format!("/jobs/{failed}"));
    assert_eq!(failed_after["status"], "FAILED");
    assert_eq!(failed_after["error"], failed_before["error"]);
    assert!(failed_after["error"].as_str().unwrap().contains("boom"));
    assert_eq!(
        cluster.get(&format!("/jobs/{deleted}")).0,
        404,
        "deleted stays deleted"
    );
    let (_, list) = cluster.get("/jobs");
    assert_eq!(list["jobs"].as_array().unwrap().len(), 3, "{list}");

    // The workers register again, and the job that was running runs again
    // to the end, its attempts numbered apart from the first run's.
    cluster.wait_live_workers(2);
    let again = cluster.wait(&running);
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    assert_eq!(
        (&again["map_splits"], &again["reduce_partitions"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(cluster.result_lines(&running), counts);
    // Every attempt is kept across the restart: the first run's, ended or `unknown` (running
    // when the master stopped), then the second run's, numbered from 1001.
    let attempts = cluster.tasks(&running);
    let (first, second): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = attempts
        .iter()
        .partition(|a| a["attempt"].as_u64().unwrap() < 1000);
    assert!(!first.is_empty() && !second.is_empty(), "{attempts:?}");
    assert!(first.iter().all(|a| a["outcome"] != "running"), "{first:?}");
    let seconds_start = attempts
        .iter()
        .position(|a| a["attempt"].as_u64().unwrap() > 1000)
        .unwrap();
    assert_eq!(
        seconds_start,
        first.len(),
        "earlier runs' attempts come first"
    );
    let (_, request) = cluster.get(&format!("/jobs/{running}"));
    assert_eq!(request["counters"]["gridmr"]["map_input_records"], 3);
    let exit = cluster.poll("the waiting client to end", || waiting.try_wait().unwrap());
    assert!(exit.success(), "status --wait gave up during the restart");
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut waiting.stdout.take().unwrap(), &mut printed).unwrap();
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed["status"], "SUCCEEDED", "{printed}");

    // Ids are never reused, and a new job runs as usual.
    let new = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert!(
        ![&done, &failed, &deleted, &running].contains(&&new),
        "{new}"
    );
    assert_eq!(cluster.wait(&new)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&new), counts);
}

#[test]
fn a_lost_map_output_runs_that_map_again() {
    // Slow attempts leave time to remove a committed map output before the
    // reduce reads it.
    let cluster = Cluster::start(1, &[], &[("GRIDMR_INJECT_DELAY_MS", "1500")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 2, "reduce_partitions": 1,
        "force_distributed": true
    }));
    let status = cluster.poll("the maps to be done", || {
        let (_, v) = cluster.get(&format!("/jobs/{id}"));
        (v["status"] == "REDUCING").then_some(v)
    });
    let shuffle = std::path::PathBuf::from(status["shuffle_dir"].as_str().unwrap());
    let data = std::fs::read_dir(&shuffle)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "data")
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("map-00001")
        })
        .expect("map-00001's data file");
    std::fs::remove_file(&data).unwrap();

    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    let attempts = cluster.tasks(&id);
    let lost: Vec<_> = attempts
        .iter()
        .filter(|a| a["task"] == "reduce-00000" && a["outcome"] == "failed")
        .collect();
    assert_eq!(lost.len(), 1, "{attempts:?}");
    assert_eq!(lost[0]["kind"], "map_output_lost");
    assert!(
        lost[0]["error"].as_str().unwrap().contains("map-00001"),
        "{lost:?}"
    );
    let runs = |task: &str| attempts.iter().filter(|a| a["task"] == task).count();
    assert_eq!(runs("map-00001"), 2, "only the lost map runs again");
    assert_eq!(runs("map-00000"), 1);
    assert_eq!(
        done["tasks"]["reduce"]["failed_attempts"], 0,
        "the reduce is not charged"
    );
}

#[test]
fn a_cancelled_job_keeps_its_record_and_stops_its_tasks() {
    let cluster = Cluster::start(1, &[], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    // A marker of this run's own: a process left by an earlier run must
    // not count.
    let marker = format!("337.{}", std::process::id());
    let id = cluster.submit(json!({
        "mapper": format!("sleep {marker}; cat"), "reducer": "cat", "input_url": input,
        "partitions": 2, "force_distributed": true
    }));
    let mapper_alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
    };
    cluster.poll("the mapper to run", || mapper_alive().then_some(()));
    let (code, body) = cluster.post_json(&format!("/jobs/{id}/cancel"), &json!({}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["cancelled"], true);
    assert_eq!(body["status"], "CANCELLED");
    let (_, v) = cluster.get(&format!("/jobs/{id}"));
    assert_eq!(v["status"], "CANCELLED", "{v}");
    assert!(cluster.tasks(&id).iter().all(|a| a["outcome"] == "killed"));
    cluster.poll("the mapper to be killed", || {
        (!mapper_alive()).then_some(())
    });
    // Cancelling again changes nothing; an unknown job is a 404.
    let (code, body) = cluster.post_json(&format!("/jobs/{id}/cancel"), &json!({}));
    assert_eq!((code, &body["cancelled"]), (200, &json!(false)), "{body}");
    assert_eq!(
        cluster.post_json("/jobs/job-999999/cancel", &json!({})).0,
        404
    );
    // The worker is free for the next job.
    let next = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_eq!(cluster.wait(&next)["status"], "SUCCEEDED");
}

#[test]
fn a_slow_worker_is_overtaken_by_backup_attempts() {
    // w2 takes 30 s before each attempt; w1 none.
    let mut cluster = Cluster::start(1, &[("SPECULATION_MIN_S", "0.5")], &[]);
    cluster.add_worker("w2", &[("GRIDMR_INJECT_DELAY_MS", "30000")]);
    cluster.wait_live_workers(2);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 4, "reduce_partitions": 4,
        "force_distributed": true
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    let attempts = cluster.tasks(&id);
    let killed: Vec<_> = attempts
        .iter()
        .filter(|a| a["outcome"] == "killed")
        .collect();
    assert!(!killed.is_empty(), "no backup overtook w2: {attempts:?}");
    for k in &killed {
        assert_eq!(k["worker_id"], "w2", "{k}");
        assert!(
            k["error"].as_str().unwrap().contains("another attempt"),
            "{k}"
        );
        assert!(
            attempts.iter().any(|a| a["task"] == k["task"]
                && a["outcome"] == "succeeded"
                && a["worker_id"] == "w1"),
            "{attempts:?}"
        );
    }
    assert_eq!(done["tasks"]["map"]["failed_attempts"], 0);
}

#[test]
fn a_master_restart_keeps_the_committed_maps_of_a_running_job() {
    let env = [("SPECULATION", "off"), ("WORKER_TIMEOUT_S", "1.5")];
    let mut cluster = Cluster::start(2, &env, &[("GRIDMR_INJECT_DELAY_MS", "700")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 6, "reduce_partitions": 2,
        "force_distributed": true
    }));
    let done_before: Vec<String> = cluster.poll("two maps committed", || {
        let done: Vec<String> = cluster
            .tasks(&id)
            .iter()
            .filter(|a| a["outcome"] == "succeeded")
            .filter_map(|a| a["task"].as_str().map(str::to_owned))
            .collect();
        (done.len() >= 2).then_some(done)
    });
    // The master keeps a map output after a restart when its journal saw the map succeed
    // (as Hadoop's job history): kill it once it has.
    let history = cluster
        .shared
        .path()
        .join("jobs")
        .join(&id)
        .join("history.jsonl");
    cluster.poll("the journal to hold the two maps", || {
        let text = std::fs::read_to_string(&history).unwrap_or_default();
        let journaled = done_before.iter().all(|task| {
            text.lines().any(|l| {
                l.contains(&format!("\"task\":\"{task}\""))
                    && l.contains("\"outcome\":\"succeeded\"")
            })
        });
        journaled.then_some(())
    });
    cluster.restart_master(&env);
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    // The new run (attempts from 1001) ran only the maps that had not been committed; the
    // kept maps still show the attempt that made their output.
    let attempts = cluster.tasks(&id);
    let maps = |new_run: bool| -> Vec<String> {
        attempts
            .iter()
            .filter(|a| (a["attempt"].as_u64().unwrap() > 1000) == new_run)
            .filter_map(|a| {
                a["task"]
                    .as_str()
                    .filter(|t| t.starts_with("map-"))
                    .map(str::to_owned)
            })
            .collect()
    };
    let rerun = maps(true);
    for kept in &done_before {
        assert!(!rerun.contains(kept), "{kept} ran again: {rerun:?}");
        assert!(maps(false).contains(kept), "{kept}'s attempt was forgotten");
    }
    assert!(rerun.len() < 6, "{rerun:?}");
    assert!(cluster.master_log().contains("resuming"));
    // The kept maps' counters were kept with them: the whole input was read, once.
    assert_eq!(
        done["counters"]["gridmr"]["map_input_bytes"],
        std::fs::metadata(&input).unwrap().len(),
        "{done}"
    );
}
