//! The commit protocol (docs/architecture.md): a master killed at every step of a job's commit,
//! then restarted, never shows `_SUCCESS` beside a partial output, never changes an output
//! once `_SUCCESS` is there, and ends with the job SUCCEEDED and its exact output, and nothing
//! of the job left but `out/` and its records.

mod common;

use common::{embedded_wordcount, entries, repo_data, Cluster};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Every crash point of the commit, in protocol order.
const STEPS: [&str; 8] = [
    "commit:recorded",
    "commit:part-renamed",
    "commit:parts-renamed",
    "commit:result-written",
    "commit:attempts-removed",
    "commit:success-written",
    "commit:swept",
    "commit:job-recorded",
];

/// The files of an output folder with their contents.
fn snapshot(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .expect("out folder")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let name = e.file_name().into_string().expect("utf-8 name");
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// What a reader that trusts `_SUCCESS` (as Hadoop's and Spark's do) must be able to trust.
fn assert_success_means_whole(out: &Path, parts: u32, step: &str) {
    if out.join("_SUCCESS").exists() {
        for p in 0..parts {
            let part = out.join(format!("part-r-{p:05}"));
            assert!(part.is_file(), "{step}: _SUCCESS beside a missing {part:?}");
        }
    }
}

#[test]
fn a_master_killed_at_any_step_of_the_commit_ends_with_the_whole_output() {
    let source = repo_data("gutenberg/being_ernest.txt");
    let expected = embedded_wordcount(&source);
    for step in STEPS {
        let mut cluster = Cluster::start(2, &[("GRIDMR_INJECT_CRASH", step)], &[]);
        let input = cluster.put_input(&source, "ernest.txt");
        let id = cluster.submit(json!({
            "job": "wordcount", "input_url": input, "map_splits": 3, "reduce_partitions": 3,
            "force_distributed": true
        }));
        let status = cluster.wait_master_exit();
        assert!(!status.success(), "{step}: the master should have crashed");
        let job_dir = cluster.shared.path().join("jobs").join(&id);
        let out = job_dir.join("out");
        assert_success_means_whole(&out, 3, step);
        let committed = out.join("_SUCCESS").exists().then(|| snapshot(&out));

        cluster.restart_master(&[]);
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{step}: {done}");
        assert_eq!(cluster.result_lines(&id), expected, "{step}");
        assert_success_means_whole(&out, 3, step);
        if let Some(before) = committed {
            assert_eq!(snapshot(&out), before, "{step}: a committed output changed");
        }
        // Adopted with the counters it had, not an empty set.
        assert!(
            done["counters"]["gridmr"]["map_input_records"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{step}: {done}"
        );
        assert_eq!(
            entries(&out),
            [
                "_SUCCESS",
                "part-r-00000",
                "part-r-00001",
                "part-r-00002",
                "result.txt"
            ],
            "{step}"
        );
        // The saver writes job.json and drops commit.json just after the job ends.
        cluster.poll("the commit record removed", || {
            (!job_dir.join("commit.json").exists() && job_dir.join("job.json").exists())
                .then_some(())
        });
        for gone in ["shuffle", "work", "commit.json"] {
            assert!(
                !job_dir.join(gone).exists(),
                "{step}: {gone} left: {:?}",
                entries(&job_dir)
            );
        }
    }
}
