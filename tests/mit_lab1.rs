//! MIT 6.5840 Lab 1's test suite (`test-mr.sh`), ported to GridMR's public
//! API: word count, indexer, map and reduce parallelism, job count, early
//! exit, and crash (user code that kills its worker process or stalls, with
//! workers restarted in a loop).
//!
//! This test binary is also the cluster's binary: started as `master` or
//! `worker` it runs [`gridmr::runtime::main_with`] with the lab's jobs, as a
//! user's own binary would. `harness = false`; run it with
//! `cargo test --test mit_lab1`, or `-- crash 20` for twenty crash runs (the
//! bench script `benches/mit-crash.sh` does that and records the count).

use gridmr::job::{MapContext, Mapper, ReduceContext, Reducer, Values};
use gridmr::net::rest::JobState;
use gridmr::{InputFormat, Job, Record, Registry, UserResult};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- the jobs

/// `strings.FieldsFunc(contents, not a letter)`: the lab's words.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
}

fn file_name(record: &Record<'_>) -> String {
    record
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A reducer of text values to one text, from a function of the key and
/// the key's values (the lab's reduce functions are all of this shape).
#[derive(Clone)]
struct TextReduce(fn(&str, Vec<String>) -> String);

impl Reducer for TextReduce {
    type Key = String;
    type Value = String;
    type OutKey = String;
    type OutValue = String;
    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, String>,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        let out = (self.0)(key, values.collect());
        ctx.emit(key, &out)?;
        Ok(())
    }
}

/// `indexer`'s reduce: "N doc1,doc2", the documents sorted.
fn docs(_: &str, mut docs: Vec<String>) -> String {
    docs.sort();
    format!("{} {}", docs.len(), docs.join(","))
}

/// `rtiming`'s reduce: the most reduces it saw running at once.
fn parallel_reduce(_: &str, _: Vec<String>) -> String {
    format!("parallel-{}", nparallel("reduce"))
}

/// How many values.
fn join(_: &str, values: Vec<String>) -> String {
    values.len().to_string()
}

/// `crash`'s reduce: the values sorted, with `maybe_crash` first.
fn crash_reduce(_: &str, mut values: Vec<String>) -> String {
    maybe_crash();
    values.sort();
    values.join(" ")
}

/// `wc`: (word, "1") for every word.
#[derive(Clone, Default)]
struct Wc;

impl Mapper for Wc {
    type Key = String;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        for w in words(&r.text()) {
            ctx.emit(w.to_owned(), 1)?;
        }
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Count;

impl Reducer for Count {
    type Key = String;
    type Value = u64;
    type OutKey = String;
    type OutValue = u64;
    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, u64>,
        ctx: &mut ReduceContext<'_, String, u64>,
    ) -> UserResult {
        let n = values.count() as u64;
        ctx.emit(key, &n)?;
        Ok(())
    }
}

/// `indexer`: (word, document) once per word and document; the reduce
/// gives "N doc1,doc2" with the documents sorted.
#[derive(Clone, Default)]
struct Indexer;

impl Mapper for Indexer {
    type Key = String;
    type Value = String;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, String>) -> UserResult {
        let doc = file_name(r);
        let text = r.text();
        let unique: std::collections::BTreeSet<&str> = words(&text).collect();
        for w in unique {
            ctx.emit(w.to_owned(), doc.clone())?;
        }
        Ok(())
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The folder the timing and job-count jobs meet in (`MIT_SCRATCH`).
fn scratch() -> PathBuf {
    PathBuf::from(std::env::var("MIT_SCRATCH").unwrap_or_else(|_| "/tmp".into()))
}

/// How many workers are inside a `phase` task now: each task leaves a file
/// named after its process for its whole run, as the lab's `nparallel`.
fn nparallel(phase: &str) -> usize {
    let dir = scratch();
    let me = dir.join(format!("mr-worker-{phase}-{}", std::process::id()));
    let _ = std::fs::write(&me, "x");
    let mut most = 0;
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        let n = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("mr-worker-{phase}-"))
                    })
                    .count()
            })
            .unwrap_or(0);
        most = most.max(n);
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&me);
    most
}

/// `mtiming`: each map reports the most maps it saw running at once.
#[derive(Clone, Default)]
struct MapTiming;

impl Mapper for MapTiming {
    type Key = String;
    type Value = String;
    fn map(&mut self, _: &Record<'_>, ctx: &mut MapContext<'_, String, String>) -> UserResult {
        let n = nparallel("map");
        ctx.emit(
            format!("times-{}", std::process::id()),
            format!("{:.1}", now_s()),
        )?;
        ctx.emit(format!("parallel-{n}"), "1".into())?;
        Ok(())
    }
}

/// `rtiming`: each reduce reports the most reduces it saw running at once.
#[derive(Clone, Default)]
struct ReduceTiming;

impl Mapper for ReduceTiming {
    type Key = String;
    type Value = String;
    fn map(&mut self, _: &Record<'_>, ctx: &mut MapContext<'_, String, String>) -> UserResult {
        for k in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            ctx.emit(k.into(), "1".into())?;
        }
        Ok(())
    }
}

/// `jobcount`: every map call leaves a file; the reduce counts them. A map
/// run more often than once per input file shows.
#[derive(Clone, Default)]
struct JobCount;

impl Mapper for JobCount {
    type Key = String;
    type Value = String;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, String>) -> UserResult {
        // One file per map call (attempt), as the lab's `jobcount`.
        let info = ctx.info();
        let mark = scratch().join(format!(
            "mr-worker-jobcount-{}-{}-a{}",
            std::process::id(),
            info.task_id,
            info.attempt
        ));
        let _ = std::fs::write(&mark, file_name(r));
        std::thread::sleep(Duration::from_millis(200 + (r.bytes.len() % 300) as u64));
        ctx.emit("a".into(), "x".into())?;
        Ok(())
    }
}

#[derive(Clone, Default)]
struct CountMarks;

impl Reducer for CountMarks {
    type Key = String;
    type Value = String;
    type OutKey = String;
    type OutValue = usize;
    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, String>,
        ctx: &mut ReduceContext<'_, String, usize>,
    ) -> UserResult {
        values.for_each(drop);
        let n = std::fs::read_dir(scratch())
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("mr-worker-jobcount")
                    })
                    .count()
            })
            .unwrap_or(0);
        ctx.emit(key, &n)?;
        Ok(())
    }
}

/// `early_exit`: the reduce of key "a" is slow, so a job that reported
/// success before every reduce had finished would show a short result.
#[derive(Clone, Default)]
struct EarlyExit;

impl Reducer for EarlyExit {
    type Key = String;
    type Value = u64;
    type OutKey = String;
    type OutValue = u64;
    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, u64>,
        ctx: &mut ReduceContext<'_, String, u64>,
    ) -> UserResult {
        if key == "a" {
            std::thread::sleep(Duration::from_secs(2));
        }
        Count.reduce(key, values, ctx)
    }
}

/// A random number from the clock and the process (no crate needed).
fn coin() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// The lab's `maybeCrash`: a third of the calls end the whole worker
/// process, a third stall for up to `MIT_CRASH_SLEEP_MS` (10 s in the lab),
/// the rest go on. Off without `MIT_CRASH=1`, for the reference run.
fn maybe_crash() {
    if std::env::var("MIT_CRASH").as_deref() != Ok("1") {
        return;
    }
    let max_sleep: u64 = std::env::var("MIT_CRASH_SLEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let r = coin() % 1000;
    if r < 330 {
        std::process::exit(1);
    } else if r < 660 && max_sleep > 0 {
        std::thread::sleep(Duration::from_millis(coin() % max_sleep));
    }
}

/// `crash`: (file, its length and first bytes), with `maybe_crash` in both
/// phases.
#[derive(Clone, Default)]
struct CrashMap;

impl Mapper for CrashMap {
    type Key = String;
    type Value = String;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, String>) -> UserResult {
        maybe_crash();
        let name = file_name(r);
        let head: String = r
            .text()
            .chars()
            .take(10)
            .filter(|c| !c.is_control())
            .collect();
        ctx.emit(format!("{name}-len"), r.bytes.len().to_string())?;
        ctx.emit(format!("{name}-head"), head)?;
        ctx.emit(name, "seen".into())?;
        Ok(())
    }
}

/// Not the lab's: word count whose first attempt of `map-00000` aborts
/// its process, for `TASK_ISOLATION=process`.
#[derive(Clone, Default)]
struct AbortOnce;

impl Mapper for AbortOnce {
    type Key = String;
    type Value = u64;
    fn setup(&mut self, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let info = ctx.info();
        tracing::info!(task = %info.task_id, attempt = info.attempt, "user code: setup");
        Ok(())
    }
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let info = ctx.info();
        if info.task_id == "map-00000" && info.attempt == 1 {
            std::process::abort();
        }
        Wc.map(r, ctx)
    }
}

fn registry() -> Registry {
    let whole = InputFormat::WholeFiles;
    let mut r = Registry::new();
    r.register(Job::new("mit-wc", Wc, Count).with_input_format(whole));
    r.register(Job::new("mit-indexer", Indexer, TextReduce(docs)).with_input_format(whole));
    r.register(Job::new("mit-mtiming", MapTiming, TextReduce(join)).with_input_format(whole));
    r.register(
        Job::new("mit-rtiming", ReduceTiming, TextReduce(parallel_reduce)).with_input_format(whole),
    );
    r.register(Job::new("mit-jobcount", JobCount, CountMarks).with_input_format(whole));
    r.register(Job::new("mit-early-exit", Wc, EarlyExit).with_input_format(whole));
    r.register(Job::new("mit-crash", CrashMap, TextReduce(crash_reduce)).with_input_format(whole));
    r.register(Job::new("abort-once", AbortOnce, Count).with_input_format(whole));
    r.register(Job::new("logging-wc", LoggingWc, Count).with_input_format(whole));
    r
}

/// Not the lab's: word count whose map tasks write through `tracing`.
#[derive(Clone, Default)]
struct LoggingWc;

impl Mapper for LoggingWc {
    type Key = String;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        tracing::warn!(file = %file_name(r), "user code: mapping");
        Wc.map(r, ctx)
    }
}

// ------------------------------------------------------------- the cluster

/// The lab's inputs: `pg-*.txt` from ../shared/corpus/gutenberg-lab, or
/// the repository's own texts where that folder is missing.
fn corpus() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/corpus/gutenberg-lab");
    if shared.is_dir() {
        shared
    } else {
        eprintln!("(../shared/corpus/gutenberg-lab is missing: using data/gutenberg)");
        root.join("data/gutenberg")
    }
}

struct Cluster {
    share: tempfile::TempDir,
    url: String,
    master: Child,
    client: gridmr::net::Client,
    rt: tokio::runtime::Runtime,
    /// Worker loops: each restarts its worker whenever it exits, until told
    /// to stop.
    stop: Arc<AtomicBool>,
    loops: Vec<std::thread::JoinHandle<u32>>,
}

fn first_line(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    line
}

impl Cluster {
    fn start(workers: usize, worker_env: &[(&str, &str)]) -> Cluster {
        let share = tempfile::tempdir().expect("temp dir");
        let exe = std::env::current_exe().expect("this binary");
        let mut master = Command::new(&exe)
            .arg("master")
            .env("MASTER_HOST", "127.0.0.1")
            .env("MASTER_PORT", "0")
            .env("SHARED_DIR", share.path())
            .env("WORKER_TIMEOUT_S", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the master");
        let line = first_line(&mut master);
        let url = line.trim().rsplit(' ').next().unwrap_or("").to_owned();
        assert!(url.starts_with("http://"), "master said {line:?}");
        let token = std::fs::read_to_string(share.path().join(".gridmr/cluster.token"))
            .expect("the cluster token");
        let token = gridmr::net::auth::Token::parse(token.trim()).expect("a token");
        let client = gridmr::net::Client::new(&url).with_token(Some(&token));
        let scratch = share.path().join("scratch");
        std::fs::create_dir_all(&scratch).expect("scratch");
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for i in 0..workers {
            let (exe, url, stop) = (exe.clone(), url.clone(), stop.clone());
            let share = share.path().to_path_buf();
            let env: Vec<(String, String)> = worker_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            loops.push(std::thread::spawn(move || {
                let mut starts = 0;
                while !stop.load(Ordering::Relaxed) {
                    starts += 1;
                    let child = Command::new(&exe)
                        .arg("worker")
                        .env("GRPC_HOST", "127.0.0.1")
                        .env("GRPC_PORT", "0")
                        .env("SHARED_DIR", &share)
                        .env("WORKER_ID", format!("w{i}"))
                        .env("MASTER_HTTP", &url)
                        .env("WORKER_SLOTS", "1")
                        .env("HEARTBEAT_INTERVAL_MS", "100")
                        .env("MIT_SCRATCH", share.join("scratch"))
                        // Tasks write their scratch files as the test's user.
                        .env("GRIDMR_TASK_USER", "root")
                        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn();
                    let Ok(mut child) = child else { break };
                    // Wait for it to end, or for the test to finish.
                    loop {
                        if let Ok(Some(_)) = child.try_wait() {
                            break;
                        }
                        if stop.load(Ordering::Relaxed) {
                            let _ = child.kill();
                            let _ = child.wait();
                            return starts;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                starts
            }));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Cluster {
            share,
            url,
            master,
            client,
            rt,
            stop,
            loops,
        }
    }

    fn scratch(&self) -> PathBuf {
        self.share.path().join("scratch")
    }

    /// Runs a job on the lab's inputs to the end; its result lines, sorted.
    fn run(&self, job: &str, reduces: u32) -> Result<Vec<String>, String> {
        self.run_job(job, reduces).map(|(_, lines)| lines)
    }

    /// The same, with the job's id.
    fn run_job(&self, job: &str, reduces: u32) -> Result<(String, Vec<String>), String> {
        let input = self.share.path().join("in");
        if !input.exists() {
            std::fs::create_dir_all(&input).map_err(|e| e.to_string())?;
            for e in std::fs::read_dir(corpus())
                .map_err(|e| e.to_string())?
                .flatten()
            {
                std::fs::copy(e.path(), input.join(e.file_name())).map_err(|e| e.to_string())?;
            }
        }
        let request = gridmr::net::rest::SubmitRequest {
            job: Some(job.into()),
            input_url: input.display().to_string(),
            reduce_partitions: Some(reduces),
            force_distributed: Some(true),
            ..Default::default()
        };
        self.rt.block_on(async {
            // Workers may still be registering: a typed job needs one live.
            let deadline = Instant::now() + Duration::from_secs(60);
            let submitted = loop {
                match self.client.submit(&request).await {
                    Ok(s) => break s,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            };
            let done = tokio::time::timeout(
                Duration::from_secs(600),
                self.client.wait(&submitted.job_id, |_| {}),
            )
            .await
            .map_err(|_| format!("{} did not end within 10 minutes", submitted.job_id))?
            .map_err(|e| e.to_string())?;
            if done.status != JobState::Succeeded {
                return Err(format!("{:?}: {:?}", done.status, done.error));
            }
            let mut out = Vec::new();
            self.client
                .result_to(&submitted.job_id, &mut out)
                .await
                .map_err(|e| e.to_string())?;
            let mut lines: Vec<String> = String::from_utf8_lossy(&out)
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            Ok((submitted.job_id, lines))
        })
    }

    /// Stops the worker loops; how many times workers were started.
    fn stop(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        let starts = self.loops.drain(..).map(|l| l.join().unwrap_or(0)).sum();
        let _ = self.master.kill();
        let _ = self.master.wait();
        let _ = &self.url;
        starts
    }
}

/// The result of `job` run by the embedded engine (the lab's `mrsequential`).
fn sequential(job: &str) -> Vec<String> {
    let work = tempfile::tempdir().expect("temp dir");
    let reg = registry();
    let def = reg.get(job).expect("a lab job");
    let config = gridmr::JobConfig::new(corpus().display().to_string());
    let outcome = gridmr::LocalEngine::new(work.path())
        .run(def.as_ref(), &config)
        .expect("the sequential run");
    let text =
        std::fs::read_to_string(outcome.result_file.expect("a small result")).expect("its result");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

// --------------------------------------------------------------- the tests

fn wc() -> Result<(), String> {
    let c = Cluster::start(3, &[]);
    let got = c.run("mit-wc", 10);
    c.stop();
    (got? == sequential("mit-wc"))
        .then_some(())
        .ok_or("wc output differs from the sequential run".into())
}

fn indexer() -> Result<(), String> {
    let c = Cluster::start(2, &[]);
    let got = c.run("mit-indexer", 10);
    c.stop();
    (got? == sequential("mit-indexer"))
        .then_some(())
        .ok_or("indexer output differs from the sequential run".into())
}

fn most_parallel(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .filter_map(|l| l.split('\t').next())
        .chain(lines.iter().filter_map(|l| l.split('\t').nth(1)))
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|n| n.parse().ok())
        .max()
        .unwrap_or(0)
}

fn map_parallelism() -> Result<(), String> {
    let c = Cluster::start(2, &[]);
    let got = c.run("mit-mtiming", 1);
    c.stop();
    let lines = got?;
    let workers = lines.iter().filter(|l| l.starts_with("times-")).count();
    let most = most_parallel(&lines, "parallel-");
    if workers == 2 && most >= 2 {
        Ok(())
    } else {
        Err(format!(
            "maps ran on {workers} workers, at most {most} at once"
        ))
    }
}

fn reduce_parallelism() -> Result<(), String> {
    let c = Cluster::start(2, &[]);
    let got = c.run("mit-rtiming", 10);
    c.stop();
    let most = most_parallel(&got?, "parallel-");
    (most >= 2)
        .then_some(())
        .ok_or(format!("at most {most} reduces at once"))
}

fn job_count() -> Result<(), String> {
    let c = Cluster::start(4, &[]);
    let got = c.run("mit-jobcount", 1);
    let marks = std::fs::read_dir(c.scratch())
        .map(|d| d.count())
        .unwrap_or(0);
    c.stop();
    let files = std::fs::read_dir(corpus()).map(|d| d.count()).unwrap_or(0);
    let lines = got?;
    if marks == files && lines == [format!("a\t{files}")] {
        Ok(())
    } else {
        Err(format!(
            "{marks} map calls for {files} files (the reduce saw {lines:?})"
        ))
    }
}

fn early_exit() -> Result<(), String> {
    let c = Cluster::start(3, &[]);
    let got = c.run("mit-early-exit", 4);
    c.stop();
    // The job reports success only once its slow reduce has committed too.
    (got? == sequential("mit-wc"))
        .then_some(())
        .ok_or("a job ended before all of its reduces".into())
}

fn crash() -> Result<(), String> {
    // The lab stalls for up to 10 s; 1 s keeps CI short (the bench script
    // sets the lab's figure). MIT_WORKER_SLOTS runs the workers wider.
    let sleep = std::env::var("MIT_CRASH_SLEEP_MS").unwrap_or_else(|_| "1000".into());
    let slots = std::env::var("MIT_WORKER_SLOTS").unwrap_or_else(|_| "1".into());
    let c = Cluster::start(
        3,
        &[
            ("MIT_CRASH", "1"),
            ("MIT_CRASH_SLEEP_MS", sleep.as_str()),
            ("WORKER_SLOTS", slots.as_str()),
        ],
    );
    let got = c.run("mit-crash", 10);
    let starts = c.stop();
    let want = sequential("mit-crash");
    let got = got?;
    eprintln!("    ({starts} worker starts)");
    (got == want)
        .then_some(())
        .ok_or("crash output differs from the sequential run".into())
}

/// GridMR's own, beyond the lab: with `TASK_ISOLATION=process`, user code
/// that aborts fails one attempt, and its worker lives.
fn isolation() -> Result<(), String> {
    let c = Cluster::start(2, &[("TASK_ISOLATION", "process")]);
    let got = c.run_job("abort-once", 3);
    let aborted = match &got {
        Ok((id, _)) => {
            c.rt.block_on(c.client.tasks(id))
                .map_err(|e| e.to_string())?
                .attempts
                .iter()
                .any(|a| {
                    a.task == "map-00000"
                        && a.outcome == gridmr::net::rest::AttemptOutcome::Failed
                        && a.error.as_deref().is_some_and(|e| e.contains("signal 6"))
                })
                // The aborted child's attempt left its own log, and what
                // the next one wrote through `tracing` is in its own.
                && {
                    let logs = c
                        .rt
                        .block_on(c.client.task_logs(id, "map-00000"))
                        .map_err(|e| e.to_string())?
                        .logs;
                    logs.iter().any(|l| l.attempt == 1)
                        && logs
                            .iter()
                            .any(|l| l.attempt == 2 && l.text.contains("user code: setup"))
                }
        }
        Err(_) => false,
    };
    let starts = c.stop();
    if !aborted {
        return Err("no attempt of map-00000 failed by SIGABRT".into());
    }
    let got = got.map(|(_, lines)| lines);
    if starts != 2 {
        return Err(format!("workers were started {starts} times: one died"));
    }
    (got? == sequential("mit-wc"))
        .then_some(())
        .ok_or("output differs from the sequential run".into())
}

/// GridMR's own: in the default thread mode, what a typed task writes
/// through `tracing` is kept in its attempt's log.
fn task_logs() -> Result<(), String> {
    let c = Cluster::start(1, &[]);
    let got = c.run_job("logging-wc", 2);
    let logs = match &got {
        Ok((id, _)) => {
            c.rt.block_on(c.client.task_logs(id, "map-00000"))
                .map_err(|e| e.to_string())?
                .logs
        }
        Err(_) => Vec::new(),
    };
    c.stop();
    got?;
    let text: String = logs.iter().map(|l| l.text.as_str()).collect();
    (text.contains("WARN") && text.contains("user code: mapping") && text.contains("file="))
        .then_some(())
        .ok_or(format!("map-00000's log lacks its events: {text:?}"))
}

type Test = (&'static str, fn() -> Result<(), String>);

const TESTS: &[Test] = &[
    ("wc", wc),
    ("indexer", indexer),
    ("map_parallelism", map_parallelism),
    ("reduce_parallelism", reduce_parallelism),
    ("job_count", job_count),
    ("early_exit", early_exit),
    ("crash", crash),
    ("isolation", isolation),
    ("task_logs", task_logs),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // Started by a test as the cluster's binary.
    if matches!(
        args.get(1).map(String::as_str),
        Some("master" | "worker" | "task-child")
    ) {
        return gridmr::runtime::main_with(registry());
    }
    // `mit_lab1 [NAME [RUNS]]`; cargo's own flags (--nocapture…) are ignored.
    let plain: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let only = plain.first().map(|s| s.as_str());
    let runs: u32 = plain.get(1).and_then(|r| r.parse().ok()).unwrap_or(1);
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in TESTS {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        for run in 1..=runs {
            let started = Instant::now();
            let result = test();
            let secs = started.elapsed().as_secs_f64();
            match result {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} (run {run}) ... ok ({secs:.1} s)");
                }
                Err(e) => {
                    failed += 1;
                    println!("test {name} (run {run}) ... FAILED ({secs:.1} s): {e}");
                }
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
