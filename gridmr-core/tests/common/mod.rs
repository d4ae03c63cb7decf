//! Helpers shared by the integration tests: data paths, an independent word-count oracle, and
//! a runner that puts a job through the embedded engine in a temporary folder.
#![allow(dead_code)]

use gridmr_core::output::read_output;
use gridmr_core::{JobConfig, JobDef, JobOutcome, LocalEngine};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The repository's `data/` folder.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Word count as Python's `text.lower().split()`, written the slow, obvious way.
pub fn oracle_word_count(texts: &[&[u8]]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for bytes in texts {
        let text: String = bytes.utf8_chunks().map(|c| c.valid()).collect();
        for word in text
            .to_lowercase()
            .split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
            .filter(|w| !w.is_empty())
        {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// A finished run: its outcome and the temporary folder that holds it.
pub struct Run {
    pub outcome: JobOutcome,
    pub dir: tempfile::TempDir,
}

impl Run {
    /// The output as a sorted map (fails on a duplicate key: a broken reduce).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let records: Vec<(String, u64)> = read_output(&self.outcome.output_dir).unwrap();
        let n = records.len();
        let map: BTreeMap<String, u64> = records.into_iter().collect();
        assert_eq!(map.len(), n, "a key appears on more than one output line");
        map
    }
}

/// Runs `job` over `input` with `threads` threads, tweaking the config with `tweak`.
pub fn run_job(
    job: &dyn JobDef,
    input: &str,
    threads: usize,
    tweak: impl FnOnce(&mut JobConfig),
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::new(dir.path().join("work")).with_threads(threads);
    let mut config = JobConfig::new(input);
    tweak(&mut config);
    let outcome = engine.run(job, &config).unwrap();
    Run { outcome, dir }
}
