//! The embedded engine end to end: results, output layout, counters, spills, failures.

mod common;

use common::{data, oracle_word_count, run_job};
use gridmr_core::bundled::wordcount::{self, SumReducer, WordCountMapper};
use gridmr_core::counters::builtin;
use gridmr_core::{
    Compression, Error, InputFormat, Job, JobConfig, LocalEngine, MapContext, Mapper, Partitioner,
    Record, ReduceContext, Reducer, Sha1Partitioner, UserError, UserResult, Values,
};
use std::collections::BTreeMap;

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Attempt 1 of map task 0 over `input[start..end)`, into 2 partitions under `dir/shuffle`
/// (made here, as a master or the engine makes it: an attempt never creates it).
fn map_task(
    dir: &std::path::Path,
    input: &std::path::Path,
    (start, end): (u64, u64),
) -> gridmr_core::task::MapTask {
    std::fs::create_dir_all(dir.join("shuffle")).unwrap();
    gridmr_core::task::MapTask {
        job_id: "j".parse().unwrap(),
        index: 0,
        attempt: 1,
        worker_id: "w".parse().unwrap(),
        split: gridmr_core::InputSplit {
            path: input.to_path_buf(),
            start,
            end,
            input: 0,
        },
        target: gridmr_core::task::MapTarget::Shuffle {
            dir: dir.join("shuffle"),
            partitions: 2,
            job_dir: None,
        },
        shuffle: gridmr_core::ShuffleSettings::default(),
        params: Default::default(),
    }
}

#[test]
fn original_samples_give_the_reference_counts() {
    let input = data("samples/input.txt");
    for (splits, partitions) in [(None, 1), (Some(2), 2), (Some(3), 4), (Some(50), 3)] {
        let run = run_job(&wordcount::job(), input.to_str().unwrap(), 2, |c| {
            c.splits.splits = splits;
            c.reduce_partitions = Some(partitions);
        });
        let want = expected(&[("hola", 3), ("mundo", 2), ("grid", 2), ("mr", 1)]);
        assert_eq!(run.counts(), want, "splits {splits:?}, R {partitions}");
    }
    let samples = [
        (
            "data1.txt",
            ["hola", "cruel", "como", "esta", "arriba", "nacional"],
        ),
        (
            "data2.txt",
            ["esta", "patas", "arriba", "es", "muy", "bacano"],
        ),
    ];
    for (file, ones) in samples {
        let input = data(&format!("samples/{file}"));
        let run = run_job(&wordcount::job(), input.to_str().unwrap(), 2, |_| {});
        let mut want = expected(&[("el", 2), ("mundo", 2)]);
        want.extend(ones.iter().map(|w| (w.to_string(), 1)));
        assert_eq!(run.counts(), want, "{file}");
    }
}

#[test]
fn corpus_word_count_equals_the_oracle_in_every_configuration() {
    let lf = std::fs::read(data("gutenberg/being_ernest.txt")).unwrap();
    let crlf = std::fs::read(data("gutenberg/lincoln_first_inaugural_crlf.txt")).unwrap();
    let want = oracle_word_count(&[&lf, &crlf]);
    let input = format!("{}/*.txt", data("gutenberg").display());
    let configs = [
        (1, None, 1, 64 << 20, Compression::None),
        (2, Some(7), 3, 64 << 20, Compression::Lz4),
        (2, Some(3), 5, 4 << 10, Compression::None), // tiny budget: many spills and merges
        (3, Some(16), 2, 1 << 10, Compression::Lz4),
    ];
    for (threads, splits, partitions, budget, compression) in configs {
        let run = run_job(&wordcount::job(), &input, threads, |c| {
            c.splits.splits = splits;
            c.reduce_partitions = Some(partitions);
            c.shuffle.sort_buffer_bytes = budget;
            c.shuffle.compression = compression;
            c.shuffle.merge_factor = 4;
        });
        assert_eq!(
            run.counts(),
            want,
            "{threads} threads, {splits:?} splits, R {partitions}"
        );
        let c = &run.outcome.counters;
        assert_eq!(c.builtin(builtin::OUTPUT_RECORDS), want.len() as u64);
        assert_eq!(c.builtin(builtin::REDUCE_INPUT_GROUPS), want.len() as u64);
        assert_eq!(
            c.builtin(builtin::MAP_OUTPUT_RECORDS),
            want.values().sum::<u64>()
        );
        assert_eq!(
            c.builtin(builtin::MAP_INPUT_BYTES),
            (lf.len() + crlf.len()) as u64
        );
        let lines = lf.split(|&b| b == b'\n').count() + crlf.split(|&b| b == b'\n').count() - 2;
        assert_eq!(c.builtin(builtin::MAP_INPUT_RECORDS), lines as u64);
        if budget < 64 << 10 {
            assert!(
                c.builtin(builtin::SPILLS) > run.outcome.map_tasks as u64,
                "budget {budget}"
            );
        } else {
            assert_eq!(c.builtin(builtin::SPILLS), 0);
        }
    }
}

/// A gzip input (two members) beside a plain one: the same counts as the texts themselves,
/// the gzip file one split however small the split size, the plain one cut.
#[test]
fn a_gzip_input_counts_as_the_text_it_holds() {
    use std::io::Write;
    let lf = std::fs::read(data("gutenberg/being_ernest.txt")).unwrap();
    let crlf = std::fs::read(data("gutenberg/lincoln_first_inaugural_crlf.txt")).unwrap();
    let want = oracle_word_count(&[&lf, &crlf]);
    let dir = tempfile::tempdir().unwrap();
    let mut gz = Vec::new();
    for half in lf.chunks(lf.len() / 2 + 1) {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(half).unwrap();
        gz.extend(e.finish().unwrap());
    }
    std::fs::write(dir.path().join("ernest.txt.gz"), &gz).unwrap();
    std::fs::write(dir.path().join("lincoln.txt"), &crlf).unwrap();
    let input = dir.path().display().to_string();
    let run = run_job(&wordcount::job(), &input, 2, |c| {
        c.splits.max_split_bytes = 16 << 10;
        c.reduce_partitions = Some(3);
    });
    assert_eq!(run.counts(), want);
    let c = &run.outcome.counters;
    assert_eq!(
        c.builtin(builtin::MAP_INPUT_BYTES),
        (lf.len() + crlf.len()) as u64
    );
    // The plain file in pieces of 16 KiB at most, the gzip file in one, in whole waves.
    let pieces = (crlf.len() as u64).div_ceil(16 << 10) + 1;
    assert_eq!(run.outcome.map_tasks as u64, pieces.next_multiple_of(2));
}

#[test]
fn output_layout_order_and_placement() {
    let input = data("gutenberg/being_ernest.txt");
    let run = run_job(&wordcount::job(), input.to_str().unwrap(), 2, |c| {
        c.reduce_partitions = Some(3);
        c.splits.splits = Some(4);
    });
    let out = &run.outcome.output_dir;
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_SUCCESS",
            "part-r-00000",
            "part-r-00001",
            "part-r-00002",
            "result.txt"
        ]
    );
    let mut joined = Vec::new();
    for p in 0..3u32 {
        let part = std::fs::read_to_string(out.join(format!("part-r-{p:05}"))).unwrap();
        joined.extend_from_slice(part.as_bytes());
        let keys: Vec<&str> = part
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "part {p} is not sorted by key"
        );
        for k in keys {
            assert_eq!(
                Sha1Partitioner.partition(k, 3),
                p,
                "key {k} in the wrong part"
            );
        }
    }
    assert_eq!(
        std::fs::read(run.outcome.result_file.as_ref().unwrap()).unwrap(),
        joined
    );
    // Intermediate files are removed after success.
    let job_dir = run.dir.path().join("work/jobs").join(&run.outcome.job_id);
    assert!(!job_dir.join("shuffle").exists());
}

#[test]
fn output_folder_that_is_not_empty_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("part-r-00000"), "old\t1\n").unwrap();
    let engine = LocalEngine::new(dir.path().join("work"));
    let mut config = JobConfig::new(data("samples/input.txt").to_str().unwrap());
    config.output = Some(out.clone());
    let err = engine.run(&wordcount::job(), &config).unwrap_err();
    assert!(
        matches!(err, Error::Setting { name: "output", .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("part-r-00000")).unwrap(),
        "old\t1\n"
    );
}

#[test]
fn missing_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::new(dir.path().join("work"));
    let config = JobConfig::new(dir.path().join("nope/*.txt").to_str().unwrap());
    let err = engine.run(&wordcount::job(), &config).unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err}");
}

/// Fails (or panics) on the first attempt of every map task; counts a user counter.
#[derive(Clone)]
struct Flaky {
    panic: bool,
    fail_until_attempt: u32,
}

impl Mapper for Flaky {
    type Key = String;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        if ctx.info().attempt < self.fail_until_attempt {
            if self.panic {
                panic!("boom on attempt {}", ctx.info().attempt);
            }
            return Err(UserError::msg(format!("bad record at {}", r.offset)));
        }
        ctx.increment("app", "lines", 1);
        WordCountMapper::default().map(r, ctx)
    }
}

#[test]
fn failed_attempts_are_retried_and_counted_once() {
    for panic in [false, true] {
        let job = Job::new(
            "flaky",
            Flaky {
                panic,
                fail_until_attempt: 2,
            },
            SumReducer,
        );
        let dir = tempfile::tempdir().unwrap();
        let engine = LocalEngine::new(dir.path().join("work")).with_max_attempts(2);
        let mut config = JobConfig::new(data("samples/input.txt").to_str().unwrap());
        config.splits.splits = Some(3);
        let outcome = engine.run(&job, &config).unwrap();
        assert_eq!(
            outcome.counters.get("app", "lines"),
            3,
            "only committed attempts count"
        );
        let mut counts: Vec<(String, u64)> =
            gridmr_core::output::read_output(&outcome.output_dir).unwrap();
        counts.sort();
        assert_eq!(counts[1], ("hola".to_string(), 3));
    }
}

#[test]
fn a_task_that_always_fails_fails_the_job_with_its_error() {
    for panic in [false, true] {
        let job = Job::new(
            "broken",
            Flaky {
                panic,
                fail_until_attempt: u32::MAX,
            },
            SumReducer,
        );
        let dir = tempfile::tempdir().unwrap();
        let engine = LocalEngine::new(dir.path().join("work")).with_max_attempts(3);
        let config = JobConfig::new(data("samples/input.txt").to_str().unwrap());
        let err = engine.run(&job, &config).unwrap_err();
        let Error::JobFailed {
            attempts,
            last_error,
            task,
            ..
        } = &err
        else {
            panic!("expected JobFailed, got {err}");
        };
        assert_eq!(*attempts, 3);
        assert!(task.starts_with("map-"), "{task}");
        let want = if panic {
            "panicked: boom on attempt 3"
        } else {
            "bad record at "
        };
        assert!(last_error.contains(want), "{last_error}");
    }
}

/// Emits `(file name, byte count)` once per whole file.
#[derive(Clone)]
struct FileSizes;

impl Mapper for FileSizes {
    type Key = String;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let name = r
            .file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        ctx.emit(name, r.bytes.len() as u64)?;
        Ok(())
    }
}

#[test]
fn whole_file_input_gives_one_record_per_file() {
    let job = Job::new("sizes", FileSizes, SumReducer).with_input_format(InputFormat::WholeFiles);
    let run = run_job(&job, data("samples").to_str().unwrap(), 2, |c| {
        c.splits.splits = Some(10)
    });
    assert_eq!(run.outcome.map_tasks, 3);
    let want = expected(&[("data1.txt", 54), ("data2.txt", 49), ("input.txt", 39)]);
    assert_eq!(run.counts(), want);
}

/// Reads only the first value of each key: the rest must be skipped, not leak into the next key.
#[derive(Clone)]
struct FirstValue;

impl Reducer for FirstValue {
    type Key = u64;
    type Value = u64;
    type OutKey = u64;
    type OutValue = u64;
    fn reduce(
        &mut self,
        key: &u64,
        values: &mut Values<'_, u64>,
        ctx: &mut ReduceContext<'_, u64, u64>,
    ) -> UserResult {
        let first = values.next().unwrap_or(0);
        ctx.emit(key, &first)?;
        Ok(())
    }
}

/// Emits `(line length, offset)` for every line, with no combiner.
#[derive(Clone)]
struct LengthOffsets;

impl Mapper for LengthOffsets {
    type Key = u64;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, u64, u64>) -> UserResult {
        ctx.emit(r.bytes.len() as u64, r.offset)?;
        Ok(())
    }
}

#[test]
fn a_reducer_may_leave_values_unread() {
    let job = Job::new("first", LengthOffsets, FirstValue);
    let input = data("gutenberg/being_ernest.txt");
    let text = std::fs::read(&input).unwrap();
    let run = run_job(&job, input.to_str().unwrap(), 2, |c| {
        c.splits.splits = Some(5);
        c.reduce_partitions = Some(2);
        c.shuffle.sort_buffer_bytes = 8 << 10;
    });
    let got: BTreeMap<u64, u64> =
        gridmr_core::output::read_output::<u64, u64>(&run.outcome.output_dir)
            .unwrap()
            .into_iter()
            .collect();
    // Values of a key arrive in map-task order, and in emit order within a task, so the first
    // value is the offset of the first line of that length.
    let mut want = BTreeMap::new();
    let mut offset = 0u64;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let len = line.strip_suffix(b"\n").unwrap_or(line);
        let len = len.strip_suffix(b"\r").unwrap_or(len).len() as u64;
        want.entry(len).or_insert(offset);
        offset += line.len() as u64;
    }
    assert_eq!(got, want);
}

#[test]
fn a_cancelled_attempt_stops_and_leaves_no_output() {
    use gridmr_core::task::{run_map, run_reduce, MapTask, ReduceTask, TaskControl};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    // More lines than a task handles between two looks at its flag.
    let text: String = (0..5000)
        .map(|i| format!("word{} common\n", i % 97))
        .collect();
    std::fs::write(&input, &text).unwrap();
    let job = gridmr_core::bundled::wordcount::job();
    let control = TaskControl::default();
    let task = map_task(dir.path(), &input, (0, text.len() as u64));
    // Not cancelled: it runs.
    let done = run_map(&job, &task, &control).unwrap();
    assert!(done.output.exists());
    // Cancelled: the next attempt stops with Error::Cancelled and removes its files.
    control.cancel.cancel();
    let stopped = run_map(
        &job,
        &MapTask {
            attempt: 2,
            ..task.clone()
        },
        &control,
    );
    assert!(
        matches!(stopped, Err(gridmr_core::Error::Cancelled)),
        "{stopped:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("shuffle"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-a2"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::create_dir_all(dir.path().join("out/_attempts")).unwrap();
    let reduce = ReduceTask {
        job_id: "j".parse().unwrap(),
        partition: 0,
        attempt: 1,
        worker_id: "w".parse().unwrap(),
        map_outputs: vec![done.output],
        output_dir: dir.path().join("out"),
        params: Default::default(),
    };
    let stopped = run_reduce(&job, &reduce, &control);
    assert!(
        matches!(stopped, Err(gridmr_core::Error::Cancelled)),
        "{stopped:?}"
    );
    assert!(!reduce.attempt_path().exists());
}

#[test]
fn a_failed_job_does_not_cancel_the_callers_flag_but_the_caller_can_cancel() {
    use gridmr_core::task::CancelFlag;
    let work = tempfile::tempdir().unwrap();
    let flag = CancelFlag::default();
    let engine = LocalEngine::new(work.path())
        .with_threads(2)
        .with_cancel(flag.clone());
    let missing = JobConfig::new(work.path().join("no-such-input").display().to_string());
    assert!(engine.run(&wordcount::job(), &missing).is_err());
    assert!(
        !flag.is_cancelled(),
        "the engine's own stop flag is a child"
    );
    let input = JobConfig::new(data("samples/input.txt").display().to_string());
    assert!(engine.run(&wordcount::job(), &input).is_ok());
    flag.cancel();
    let stopped = engine.run(&wordcount::job(), &input);
    assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
}

#[test]
fn tasks_count_their_progress_exactly() {
    use gridmr_core::task::{run_map, run_reduce, MapTarget, MapTask, ReduceTask, TaskControl};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let text: String = (0..5000).map(|i| format!("w{} x\n", i % 31)).collect();
    std::fs::write(&input, &text).unwrap();
    let job = gridmr_core::bundled::wordcount::job();
    let (first, second) = (TaskControl::default(), TaskControl::default());
    let half = text.len() as u64 / 2;
    let mut outputs = Vec::new();
    for (start, end, progress) in [(0, half, &first), (half, text.len() as u64, &second)] {
        let task = MapTask {
            index: outputs.len() as u32,
            target: MapTarget::Shuffle {
                dir: dir.path().join("shuffle"),
                partitions: 1,
                job_dir: None,
            },
            ..map_task(dir.path(), &input, (start, end))
        };
        outputs.push(run_map(&job, &task, progress).unwrap().output);
    }
    // Each map counted its split's bytes (a split's lines may run past its
    // end, so together they count the file once) and its lines.
    let (first, second) = (&first.progress, &second.progress);
    assert_eq!(first.done() + second.done(), text.len() as u64);
    assert_eq!(first.total(), half);
    assert_eq!(first.records() + second.records(), 5000);
    assert_eq!(first.fraction(), 1.0);
    std::fs::create_dir_all(dir.path().join("out/_attempts")).unwrap();
    let control = TaskControl::default();
    let reduce = ReduceTask {
        job_id: "j".parse().unwrap(),
        partition: 0,
        attempt: 1,
        worker_id: "w".parse().unwrap(),
        map_outputs: outputs,
        output_dir: dir.path().join("out"),
        params: Default::default(),
    };
    run_reduce(&job, &reduce, &control).unwrap();
    // The combiner left one record per word per map: 31 words, 2 maps, plus "x".
    let progress = &control.progress;
    assert_eq!((progress.done(), progress.total()), (64, 64));
}

#[test]
fn an_output_over_the_cap_is_its_parts_without_result_txt() {
    let input = data("samples/input.txt");
    let small = run_job(&wordcount::job(), input.to_str().unwrap(), 2, |c| {
        c.reduce_partitions = Some(2);
    });
    let joined = std::fs::read(small.outcome.result_file.as_ref().unwrap()).unwrap();
    let capped = run_job(&wordcount::job(), input.to_str().unwrap(), 2, |c| {
        c.reduce_partitions = Some(2);
        c.result_max_bytes = 10;
    });
    let out = &capped.outcome.output_dir;
    assert_eq!(capped.outcome.result_file, None);
    assert!(!out.join("result.txt").exists());
    assert!(gridmr_core::commit::is_complete(out), "_SUCCESS still last");
    let mut parts = Vec::new();
    for p in gridmr_core::output::output_files(out).unwrap() {
        parts.extend(std::fs::read(p).unwrap());
    }
    assert_eq!(
        parts, joined,
        "the parts, joined, are what result.txt would hold"
    );
}

/// Emits, per run of lines it is handed, the run's size and line count, and checks that each
/// line of the run is whole.
#[derive(Clone, Default)]
struct RunSizes;

impl Mapper for RunSizes {
    type Key = String;
    type Value = u64;
    const LINES_PER_CALL: usize = 16;
    fn map(&mut self, _: &Record<'_>, _: &mut MapContext<'_, String, u64>) -> UserResult {
        Err(UserError::msg(
            "map is not called when map_lines is overridden",
        ))
    }
    fn map_lines(
        &mut self,
        lines: &gridmr_core::input::Lines<'_>,
        ctx: &mut MapContext<'_, String, u64>,
    ) -> UserResult {
        let n = lines.count();
        if lines.bytes.len() > Self::LINES_PER_CALL && n != 1 {
            return Err(UserError::msg(format!("a run of {n} lines over the limit")));
        }
        ctx.emit_ref("bytes", lines.bytes.len() as u64)?;
        ctx.emit_ref("lines", n)?;
        ctx.emit_ref("runs", 1)?;
        Ok(())
    }
}

#[test]
fn a_mapper_may_take_its_split_as_runs_of_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let long = "z".repeat(40);
    let text = format!("ab\ncd\r\nef\n\n{long}\ngh\nij\nkl\nmn\nlast");
    std::fs::write(&input, &text).unwrap();
    for splits in [1, 2, 5] {
        let job = Job::new("runs", RunSizes, SumReducer).with_combiner(gridmr_core::SumCombiner);
        let run = run_job(&job, input.to_str().unwrap(), 2, |c| {
            c.splits.splits = Some(splits);
        });
        let counts = run.counts();
        assert_eq!(counts["bytes"], text.len() as u64, "{splits} splits");
        assert_eq!(counts["lines"], 10, "{splits} splits");
        // At least: the long line alone, and the 35 other bytes in runs of at most 16.
        assert!(counts["runs"] >= 4, "{counts:?}");
        let c = &run.outcome.counters;
        assert_eq!(c.builtin(builtin::MAP_INPUT_RECORDS), 10);
        assert_eq!(c.builtin(builtin::MAP_INPUT_BYTES), text.len() as u64);
    }
}

/// Cancels its own attempt's flag at its tenth line and counts the lines it maps.
#[derive(Clone)]
struct CancelsItself {
    flag: gridmr_core::task::CancelFlag,
    mapped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Mapper for CancelsItself {
    type Key = String;
    type Value = u64;
    fn map(&mut self, _: &Record<'_>, _: &mut MapContext<'_, String, u64>) -> UserResult {
        let n = 1 + self
            .mapped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n == 10 {
            self.flag.cancel();
        }
        Ok(())
    }
}

#[test]
fn an_attempt_cancelled_within_a_run_of_lines_stops_within_1024_lines() {
    use gridmr_core::task::{run_map, CancelFlag, TaskControl};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    // One run of lines (64 KiB) holds about 13,000 of these.
    let text: String = (0..20_000).map(|i| format!("w{}\n", i % 1000)).collect();
    std::fs::write(&input, &text).unwrap();
    let flag = CancelFlag::default();
    let mapped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mapper = CancelsItself {
        flag: flag.clone(),
        mapped: mapped.clone(),
    };
    let job = Job::new("cancels", mapper, SumReducer);
    let task = map_task(dir.path(), &input, (0, text.len() as u64));
    let control = TaskControl {
        cancel: flag,
        progress: Default::default(),
    };
    let stopped = run_map(&job, &task, &control);
    assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
    let n = mapped.load(std::sync::atomic::Ordering::Relaxed);
    assert!((10..=1024).contains(&n), "{n} lines mapped");
}

#[test]
fn word_count_over_runs_of_ascii_and_other_text_equals_the_oracle() {
    // Over 64 KiB runs: most all ASCII (tokenised whole), some with a line of other text or
    // bytes that are not UTF-8 (tokenised line by line), CRLF and LF mixed.
    let mut text = Vec::new();
    for i in 0..30_000u32 {
        match i % 4_000 {
            7 => text.extend_from_slice("Été ΣΑΣ\u{2003}Straße\u{1c}x\r\n".as_bytes()),
            8 => text.extend_from_slice(b"caf\xc3\xa9 \xff\xfeBAD bytes\n"),
            _ if i % 3 == 0 => {
                text.extend_from_slice(format!("The Word{} and\tMORE\r\n", i % 50).as_bytes())
            }
            _ => text.extend_from_slice(format!("a{} b\x0bc{}\x01d\n", i % 7, i % 11).as_bytes()),
        }
    }
    text.extend_from_slice(b"no final newline");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.txt");
    std::fs::write(&input, &text).unwrap();
    let want = oracle_word_count(&[&text]);
    for splits in [1, 3] {
        let run = run_job(&wordcount::job(), input.to_str().unwrap(), 2, |c| {
            c.splits.splits = Some(splits);
        });
        assert_eq!(run.counts(), want, "{splits} splits");
    }
}

/// Emits `(line, 1)` for every line, and says when it has finished mapping.
#[derive(Clone)]
struct LinesThenDone(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Mapper for LinesThenDone {
    type Key = String;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        ctx.emit(String::from_utf8_lossy(r.bytes).into_owned(), 1)?;
        Ok(())
    }
    fn cleanup(&mut self, _: &mut MapContext<'_, String, u64>) -> UserResult {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Adds, but panics once the mapper has finished: in the final merge of the spilled runs.
struct PanicsWhenMerging(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl gridmr_core::combine::Combiner<String, u64> for PanicsWhenMerging {
    fn combine(&self, _: &String, acc: &mut u64, value: u64) {
        assert!(
            !self.0.load(std::sync::atomic::Ordering::Relaxed),
            "combiner bug"
        );
        *acc += value;
    }
}

#[test]
fn a_combiner_that_panics_in_the_final_merge_fails_its_attempt_not_the_process() {
    use gridmr_core::task::{run_map, MapTarget, TaskControl};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    // 3,000 keys, each twice, far over an 8 KiB buffer: many runs share keys.
    let text: String = (0..6000).map(|i| format!("k{}\n", i % 3000)).collect();
    std::fs::write(&input, &text).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let job = Job::new("merge-panics", LinesThenDone(done.clone()), SumReducer)
        .with_combiner(PanicsWhenMerging(done));
    let mut task = map_task(dir.path(), &input, (0, text.len() as u64));
    task.shuffle.sort_buffer_bytes = 8 << 10;
    assert!(matches!(task.target, MapTarget::Shuffle { .. }));
    let failed = run_map(&job, &task, &TaskControl::default());
    match failed {
        Err(Error::Task { message, .. }) => {
            assert!(message.contains("combiner bug"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Its spill runs and its half-written merge went with it.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("shuffle"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
