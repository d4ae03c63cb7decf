//! What a job leaves behind, and what a stalled process may not do: an attempt that outlives
//! its job (a worker frozen until after the job ended) cannot write into it, and a master that
//! was itself stopped does not declare the workers it could not hear dead.

mod common;

use common::{embedded_wordcount, entries, repo_data, Cluster};
use serde_json::json;
use std::time::Duration;

#[test]
fn an_attempt_that_outlives_its_job_leaves_nothing_in_it() {
    let mut cluster = Cluster::start(0, &[("WORKER_TIMEOUT_S", "1"), ("SPECULATION", "off")], &[]);
    cluster.add_worker("w1", &[]);
    // w2 starts each attempt 2 s late: it is surely inside one when it is frozen.
    cluster.add_worker("w2", &[("GRIDMR_INJECT_DELAY_MS", "2000")]);
    cluster.wait_live_workers(2);
    let source = repo_data("gutenberg/being_ernest.txt");
    let input = cluster.put_input(&source, "ernest.txt");
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 4, "reduce_partitions": 2,
        "force_distributed": true
    }));
    cluster.wait_running_on(&id, "w2");
    cluster.signal_worker("w2", "STOP");
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), embedded_wordcount(&source));
    cluster.assert_lost_and_rerun(&id, "w2", "w1");

    // Thawed after the job ended, w2 finishes its attempt: it may write nothing, and its
    // answer is recorded as a late one.
    cluster.signal_worker("w2", "CONT");
    let late = cluster.poll("w2's late answer", || {
        cluster
            .tasks(&id)
            .into_iter()
            .find(|a| a["worker_id"] == "w2" && !a["late"].is_null())
    });
    assert_eq!(late["outcome"], "lost", "{late}");
    // It failed: the job's shuffle folder was gone, and an attempt never makes it again.
    assert_eq!(late["late"], "failed", "{late}");
    let job_dir = cluster.shared.path().join("jobs").join(&id);
    cluster.poll("only the output and the records left", || {
        let left = entries(&job_dir);
        let allowed = ["job.json", "logs", "out", "plan.json", "request.json"];
        left.iter()
            .all(|e| allowed.contains(&e.as_str()))
            .then_some(())
    });
    assert_eq!(
        entries(&job_dir.join("out")),
        ["_SUCCESS", "part-r-00000", "part-r-00001", "result.txt"]
    );
    // The job still reads as it ended, and the cluster runs the next job exactly.
    assert_eq!(cluster.result_lines(&id), embedded_wordcount(&source));
    cluster.wait_live_workers(2);
    let next = cluster.submit(json!({"job": "wordcount", "input_url": input}));
    assert_eq!(cluster.wait(&next)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&next), embedded_wordcount(&source));
}

#[test]
fn a_master_stopped_for_longer_than_the_worker_timeout_loses_no_worker() {
    let cluster = Cluster::start(
        2,
        &[("WORKER_TIMEOUT_S", "1"), ("SPECULATION", "off")],
        &[("GRIDMR_INJECT_DELAY_MS", "300")],
    );
    let source = repo_data("gutenberg/being_ernest.txt");
    let input = cluster.put_input(&source, "ernest.txt");
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 6, "reduce_partitions": 2,
        "force_distributed": true
    }));
    cluster.poll("the job to start mapping", || {
        let (_, v) = cluster.get(&format!("/jobs/{id}"));
        (v["status"] == "MAPPING").then_some(())
    });
    cluster.signal_master("STOP");
    // The fault itself: the master stays stopped for four worker timeouts.
    std::thread::sleep(Duration::from_secs(4));
    cluster.signal_master("CONT");
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), embedded_wordcount(&source));
    let lost: Vec<_> = cluster
        .tasks(&id)
        .into_iter()
        .filter(|a| a["outcome"] == "lost")
        .collect();
    assert!(
        lost.is_empty(),
        "attempts lost to the master's own stop: {lost:?}"
    );
    assert!(
        cluster.master_log().contains("fresh heartbeat window"),
        "{}",
        cluster.master_log()
    );
    let (_, workers) = cluster.get("/workers");
    let alive = workers["workers"]
        .as_object()
        .map(|w| w.values().filter(|w| w["alive"] == true).count());
    assert_eq!(alive, Some(2), "{workers}");
}

#[test]
fn a_job_with_no_worker_to_run_it_says_so_and_fails_after_the_wait_limit() {
    let cluster = Cluster::start(0, &[("WAIT_FOR_WORKERS_S", "2")], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let script = cluster.shared.path().join("in/wc.py");
    std::fs::write(
        &script,
        "def map_func(line):\n    return [(w, 1) for w in line.split()]\n\n\
         def reduce_func(k, vs):\n    return k, sum(vs)\n",
    )
    .unwrap();
    let id = cluster.submit(json!({"script_url": script, "input_url": input}));
    let waiting = cluster.poll("the job to say it waits", || {
        let (_, v) = cluster.get(&format!("/jobs/{id}"));
        v["message"]
            .as_str()
            .filter(|m| m.contains("waiting for workers: 0 alive"))
            .map(str::to_owned)
    });
    assert!(
        cluster
            .master_log()
            .contains("waiting for workers: 0 alive"),
        "{waiting}"
    );
    let failed = cluster.wait(&id);
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("WAIT_FOR_WORKERS_S") && error.contains("waiting for workers: 0 alive"),
        "{error}"
    );
}

/// A stopping worker waits for calls in flight, but not for ever: `SIGTERM` during an attempt
/// that would take a minute ends the worker within its 10 s grace, and the job goes on
/// elsewhere.
#[test]
fn a_worker_stopped_mid_attempt_exits_within_its_grace() {
    let mut cluster = Cluster::start(0, &[("SPECULATION", "off")], &[]);
    cluster.add_worker("w1", &[("GRIDMR_INJECT_DELAY_MS", "60000")]);
    cluster.add_worker("w2", &[]);
    cluster.wait_live_workers(2);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 2, "force_distributed": true
    }));
    cluster.wait_running_on(&id, "w1");
    cluster.signal_worker("w1", "TERM");
    let status = cluster.wait_worker_exit("w1", Duration::from_secs(30));
    assert!(status.is_some(), "the worker still runs 30 s after SIGTERM");
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        cluster.result_lines(&id),
        ["grid\t2", "hola\t3", "mr\t1", "mundo\t2"]
    );
}
