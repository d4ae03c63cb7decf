//! The example jobs (Hadoop's examples) against sequential oracles: each is
//! run by the embedded engine at several thread counts, partition counts and
//! sort budgets (small enough to spill), and its output compared with what a
//! plain loop over the same input computes.

use gridmr_core::bundled::{grep, index, join, pi, terasort, wordmean};
use gridmr_core::output::read_output;
use gridmr_core::{JobConfig, JobDef, JobOutcome, LocalEngine};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Deterministic text: `lines` lines of words from a small vocabulary, with
/// some punctuation, capitals and non-ASCII words.
fn text(seed: u64, lines: usize) -> String {
    const WORDS: [&str; 16] = [
        "the",
        "Cat",
        "sat",
        "on",
        "mat",
        "fooo",
        "foo",
        "bar-baz",
        "über",
        "naïve",
        "x1",
        "Dog.",
        "a",
        "abracadabra",
        "Ünïcode",
        "fo",
    ];
    let mut s = seed;
    let mut out = String::new();
    for _ in 0..lines {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = (s >> 60) as usize + 1;
        for i in 0..n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[(s >> 59) as usize % WORDS.len()]);
        }
        out.push('\n');
    }
    out
}

/// The settings each job runs under: (threads, reduce partitions, sort budget).
const SETUPS: [(usize, u32, u64); 3] = [(1, 1, 64 << 20), (2, 3, 64 << 10), (3, 5, 4 << 10)];

fn run(job: &dyn JobDef, config: JobConfig, threads: usize) -> (JobOutcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::new(dir.path().join("work")).with_threads(threads);
    let outcome = engine.run(job, &config).unwrap();
    (outcome, dir)
}

fn configured(inputs: &[&Path], partitions: u32, budget: u64) -> JobConfig {
    let mut config = JobConfig::new(inputs[0].to_str().unwrap());
    for more in &inputs[1..] {
        config = config.with_input(more.to_str().unwrap());
    }
    config.reduce_partitions = Some(partitions);
    config.shuffle.sort_buffer_bytes = budget;
    config.splits.max_split_bytes = 8 << 10;
    config
}

fn documents(dir: &Path) -> Vec<(String, String)> {
    (0..4)
        .map(|d| {
            let name = format!("doc{d}.txt");
            let body = text(d, 300 + 100 * d as usize);
            std::fs::write(dir.join(&name), &body).unwrap();
            (name, body)
        })
        .collect()
}

#[test]
fn grep_counts_every_match_as_a_loop_does() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = documents(tmp.path());
    for (pattern, group) in [("fo+", 0usize), ("(\\w)a(\\w)", 2), ("ü\\w+", 0)] {
        let re = regex::Regex::new(pattern).unwrap();
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for (_, body) in &docs {
            for line in body.lines() {
                for caps in re.captures_iter(line) {
                    if let Some(m) = caps.get(group) {
                        *want.entry(m.as_str().to_owned()).or_default() += 1;
                    }
                }
            }
        }
        assert!(!want.is_empty());
        for (threads, partitions, budget) in SETUPS {
            let config = configured(&[tmp.path()], partitions, budget)
                .with_param("pattern", pattern)
                .with_param("group", group.to_string());
            let (out, _keep) = run(&grep::job(), config, threads);
            let got: BTreeMap<String, u64> = read_output::<String, u64>(&out.output_dir)
                .unwrap()
                .into_iter()
                .collect();
            assert_eq!(got, want, "pattern {pattern} with {threads} threads");
        }
    }
}

#[test]
fn grep_refuses_a_bad_pattern_or_group() {
    let tmp = tempfile::tempdir().unwrap();
    documents(tmp.path());
    let engine = LocalEngine::new(tmp.path().join("work"));
    for (pattern, group) in [("(unclosed", "0"), ("a(b)", "2"), ("a", "x")] {
        let config = JobConfig::new(tmp.path().join("doc0.txt").to_str().unwrap())
            .with_param("pattern", pattern)
            .with_param("group", group);
        let err = engine.run(&grep::job(), &config).unwrap_err();
        assert!(err.to_string().contains("parameter"), "{err}");
    }
    let config = JobConfig::new(tmp.path().join("doc0.txt").to_str().unwrap());
    let err = engine.run(&grep::job(), &config).unwrap_err();
    assert!(err.to_string().contains("\"pattern\""), "{err}");
}

#[test]
fn the_inverted_index_lists_each_words_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = documents(tmp.path());
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, body) in &docs {
        for word in body.split(|c: char| !c.is_alphanumeric()) {
            if !word.is_empty() {
                want.entry(word.to_lowercase())
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    let want: BTreeMap<String, String> = want
        .into_iter()
        .map(|(w, d)| {
            let list: Vec<String> = d.into_iter().collect();
            (w, format!("{} {}", list.len(), list.join(",")))
        })
        .collect();
    for (threads, partitions, budget) in SETUPS {
        let (out, _keep) = run(
            &index::job(),
            configured(&[tmp.path()], partitions, budget),
            threads,
        );
        let got: Vec<(String, String)> = read_output(&out.output_dir).unwrap();
        let n = got.len();
        let got: BTreeMap<String, String> = got.into_iter().collect();
        assert_eq!(got.len(), n, "a word on two lines");
        assert_eq!(got, want, "{threads} threads");
    }
}

#[test]
fn wordmean_is_the_mean_a_loop_computes() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = documents(tmp.path());
    let (mut count, mut length) = (0u64, 0u64);
    for (_, body) in &docs {
        for w in body.to_lowercase().split_whitespace() {
            count += 1;
            length += w.chars().count() as u64;
        }
    }
    for (threads, partitions, budget) in SETUPS {
        let (out, _keep) = run(
            &wordmean::job(),
            configured(&[tmp.path()], partitions, budget),
            threads,
        );
        let got: BTreeMap<String, String> = read_output::<String, String>(&out.output_dir)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(got["count"], count.to_string());
        assert_eq!(got["length"], length.to_string());
        let mean: f64 = got["mean"].parse().unwrap();
        assert!((mean - length as f64 / count as f64).abs() < 1e-12);
    }
}

#[test]
fn pi_counts_the_points_a_loop_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (maps, points) = (5u32, 30_000u64);
    pi::write_input(&tmp.path().join("in"), maps, points).unwrap();
    let total = u64::from(maps) * points;
    let inside = (0..total).filter(|&i| pi::inside(i)).count() as u64;
    for (threads, partitions, budget) in SETUPS {
        let (out, _keep) = run(
            &pi::job(),
            configured(&[&tmp.path().join("in")], partitions, budget),
            threads,
        );
        assert_eq!(out.map_tasks, maps as usize);
        let (i, o) = pi::counts(&out.output_dir).unwrap();
        assert_eq!((i, o), (inside, total - inside));
    }
    assert!((pi::estimate(inside, total - inside) - std::f64::consts::PI).abs() < 1e-3);
}

#[test]
fn join_pairs_rows_as_nested_loops_do() {
    let tmp = tempfile::tempdir().unwrap();
    let mut left = String::new();
    let mut right = String::new();
    let mut lefts = Vec::new();
    let mut rights = Vec::new();
    for i in 0..400u32 {
        // Keys 0..150 on the left (some twice), 100..250 on the right (some
        // three times): inner, left-only and right-only keys all occur.
        let k = i % 150;
        let row = (k.to_string(), format!("L{i}\tx"));
        left.push_str(&format!("{}\t{}\n", row.0, row.1));
        lefts.push(row);
        let k = 100 + (i * 7) % 150;
        let row = (k.to_string(), format!("R{i}"));
        right.push_str(&format!("{}\t{}\n", row.0, row.1));
        rights.push(row);
    }
    // A line without a tab joins on its whole text, with an empty payload.
    left.push_str("120\n");
    lefts.push(("120".into(), String::new()));
    std::fs::write(tmp.path().join("left.tsv"), left).unwrap();
    std::fs::write(tmp.path().join("right.tsv"), right).unwrap();
    for kind in ["inner", "left", "right", "outer"] {
        let mut want = Vec::new();
        for (lk, lv) in &lefts {
            let mut matched = false;
            for (rk, rv) in &rights {
                if lk == rk {
                    matched = true;
                    want.push((lk.clone(), format!("{lv}\t{rv}")));
                }
            }
            if !matched && (kind == "left" || kind == "outer") {
                want.push((lk.clone(), format!("{lv}\t")));
            }
        }
        for (rk, rv) in &rights {
            if !lefts.iter().any(|(lk, _)| lk == rk) && (kind == "right" || kind == "outer") {
                want.push((rk.clone(), format!("\t{rv}")));
            }
        }
        want.sort();
        for (threads, partitions, budget) in SETUPS {
            let config = configured(
                &[&tmp.path().join("left.tsv"), &tmp.path().join("right.tsv")],
                partitions,
                budget,
            )
            .with_param("join", kind);
            let (out, _keep) = run(&join::job(), config, threads);
            let mut got: Vec<(String, String)> = read_output(&out.output_dir).unwrap();
            got.sort();
            assert_eq!(got, want, "{kind} join, {threads} threads");
        }
    }
}

#[test]
fn terasort_sorts_what_teragen_made_and_teravalidate_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = 20_000u64;
    let mut expected: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            let mut r = Vec::new();
            terasort::row(i, &mut r);
            r
        })
        .collect();
    let checksum: u64 = expected
        .iter()
        .map(|r| terasort::row_checksum(r))
        .fold(0, u64::wrapping_add);
    expected.sort();
    terasort::write_gen_input(&tmp.path().join("ctl"), 4, rows).unwrap();
    for (threads, partitions, budget) in SETUPS {
        let mut gen = configured(&[&tmp.path().join("ctl")], 0, budget);
        gen.reduce_partitions = Some(0);
        let (made, _keep) = run(&terasort::teragen(), gen, threads);
        assert_eq!(made.counters.get("terasort", "rows"), rows);
        assert_eq!(made.counters.get("terasort", "checksum"), checksum);
        let generated = std::fs::read(made.result_file.as_ref().unwrap()).unwrap();
        assert_eq!(generated.len() as u64, rows * terasort::ROW_BYTES as u64);

        let parts = format!("{}/part-m-*", made.output_dir.display());
        let mut sort = JobConfig::new(parts);
        sort.reduce_partitions = Some(partitions);
        sort.shuffle.sort_buffer_bytes = budget;
        sort.splits.max_split_bytes = 256 << 10;
        let sort = sort.with_param("terasort.samples", "1000");
        let (sorted, _keep2) = run(&terasort::terasort(), sort, threads);
        // The parts, in name order, are every row in sorted order.
        let mut joined = Vec::new();
        for p in 0..partitions {
            let part = sorted.output_dir.join(format!("part-r-{p:05}"));
            joined.extend(std::fs::read(&part).unwrap());
        }
        let lines: Vec<&[u8]> = joined
            .strip_suffix(b"\n")
            .unwrap()
            .split(|b| *b == b'\n')
            .collect();
        assert_eq!(lines.len(), expected.len());
        assert!(
            lines.iter().zip(&expected).all(|(a, b)| a[..10] == b[..10]),
            "keys out of order with {partitions} partitions"
        );
        // Every partition got a share (the sample worked).
        for p in 0..partitions {
            let n = std::fs::metadata(sorted.output_dir.join(format!("part-r-{p:05}")))
                .unwrap()
                .len();
            assert!(
                n as f64 > 0.4 * (rows as f64 * 100.0) / partitions as f64,
                "part {p}: {n}"
            );
        }

        let check = JobConfig::new(format!("{}/part-r-*", sorted.output_dir.display()));
        let (validated, _keep3) = run(&terasort::teravalidate(), check, threads);
        let report = terasort::read_report(&validated.output_dir).unwrap();
        assert_eq!(
            (report.rows, report.checksum, report.unordered),
            (rows, checksum, 0),
            "{:?}",
            report.problems
        );
    }
}

#[test]
fn teravalidate_finds_rows_out_of_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows: Vec<Vec<u8>> = (0..3000u64)
        .map(|i| {
            let mut r = Vec::new();
            terasort::row(i, &mut r);
            r
        })
        .collect();
    rows.sort();
    // Part 0 holds the upper half and part 1 the lower: each part is sorted,
    // but their concatenation is not. One swap inside part 1 too.
    let (low, high) = rows.split_at_mut(1500);
    low.swap(10, 20);
    let write = |name: &str, rows: &[Vec<u8>]| {
        let mut text = Vec::new();
        for r in rows {
            text.extend_from_slice(r);
            text.push(b'\n');
        }
        std::fs::write(tmp.path().join(name), text).unwrap();
    };
    write("part-r-00000", high);
    write("part-r-00001", low);
    let config = JobConfig::new(format!("{}/part-r-*", tmp.path().display()));
    let (out, _keep) = run(&terasort::teravalidate(), config, 2);
    let report = terasort::read_report(&out.output_dir).unwrap();
    assert_eq!(report.rows, 3000);
    assert!(report.unordered >= 2, "{report:?}");
    assert!(
        report.problems.iter().any(|p| p.contains("part-r-00001")),
        "{report:?}"
    );
}
