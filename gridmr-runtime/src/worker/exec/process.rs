//! Running a task's external process (a Python driver or a streaming
//! command): stdin fed from one thread, stdout read line by line on the
//! caller's thread, stderr kept (its tail, and Hadoop's `reporter:` lines) on
//! another, and a watchdog that kills the whole process group on timeout or
//! cancellation. Blocking code: it runs on tokio's blocking pool.

use super::super::failure::Failure;
use super::super::fence::{Fence, Tree};
use super::fork_server::ForkServer;
use gridmr_core::{AttemptId, Counters, JobId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How much of a process's stderr a failed task keeps.
const STDERR_TAIL: usize = 4 << 10;

use super::protocol::END_LINE;

/// Whose a task process is: its job and its attempt, so a cancel can stop
/// a whole job or one attempt of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) job: JobId,
    pub(crate) attempt: AttemptId,
}

impl Owner {
    /// The attempt `attempt` of `job`.
    pub(crate) fn new(job: &JobId, attempt: AttemptId) -> Self {
        Owner {
            job: job.clone(),
            attempt,
        }
    }
}

/// A running task process: its attempt, its pid (and process group) and its
/// tree.
type Running = (AttemptId, i32, Arc<Tree>);

/// Process trees of running tasks, by job, so a cancellation can kill them.
/// Only jobs with attempts on this worker are kept: the worker forgets a
/// job when its last attempt here ends ([`Processes::forget`]).
#[derive(Debug, Default)]
pub(crate) struct Processes {
    by_job: Mutex<HashMap<JobId, Vec<Running>>>,
    /// Cancelled jobs (`None`) and cancelled attempts.
    cancelled: Mutex<HashSet<(JobId, Option<AttemptId>)>>,
}

impl Processes {
    /// Records a started process. A cancel that came between the caller's
    /// last check and now finds it here, or is found by the check after the
    /// push (both sides mark first and look second), so the process never
    /// outlives a cancel.
    fn add(&self, owner: &Owner, pid: i32, tree: Arc<Tree>) {
        if let Ok(mut m) = self.by_job.lock() {
            m.entry(owner.job.clone())
                .or_default()
                .push((owner.attempt, pid, tree.clone()));
        }
        if self.is_cancelled(owner) {
            tree.kill(pid);
        }
    }

    fn remove(&self, job: &JobId, pid: i32) {
        if let Ok(mut m) = self.by_job.lock() {
            if let Some(v) = m.get_mut(job) {
                v.retain(|(_, p, _)| *p != pid);
                if v.is_empty() {
                    m.remove(job);
                }
            }
        }
    }

    /// Kills every process of `job` (or, with `attempt`, of that attempt
    /// only), and any it starts from now on (until [`Processes::forget`]).
    pub(crate) fn cancel(&self, job: &JobId, attempt: Option<AttemptId>) -> usize {
        if let Ok(mut c) = self.cancelled.lock() {
            c.insert((job.clone(), attempt));
        }
        let trees = self
            .by_job
            .lock()
            .map(|m| m.get(job).cloned().unwrap_or_default())
            .unwrap_or_default();
        let mut n = 0;
        for (a, pid, tree) in &trees {
            if attempt.is_none_or(|want| want == *a) {
                tree.kill(*pid);
                n += 1;
            }
        }
        n
    }

    /// Drops what is kept about `job` (its last attempt here ended).
    pub(crate) fn forget(&self, job: &JobId) {
        if let Ok(mut c) = self.cancelled.lock() {
            c.retain(|(j, _)| j != job);
        }
    }

    fn is_cancelled(&self, owner: &Owner) -> bool {
        self.cancelled
            .lock()
            .map(|c| {
                c.contains(&(owner.job.clone(), None))
                    || c.contains(&(owner.job.clone(), Some(owner.attempt)))
            })
            .unwrap_or(false)
    }
}

/// One external process.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) what: String,
    pub(crate) argv: Vec<OsString>,
    pub(crate) cwd: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    /// Whether the output must end with [`END_LINE`] (the Python driver).
    pub(crate) expect_end: bool,
    /// Limits, environment and tree kill of the process.
    pub(crate) fence: Arc<Fence>,
    /// The attempt's log, which the process's stderr is appended to (at
    /// most [`LOG_CAP`] bytes).
    pub(crate) log: Option<PathBuf>,
    /// The worker's warm Python, for a driver run (`argv` is `python
    /// driver.py MODE …`); a fresh interpreter otherwise, or if it fails.
    pub(crate) fork: Option<Arc<ForkServer>>,
}

impl Spec {
    /// The same spec, its stderr appended to `log`.
    pub(crate) fn logging_to(mut self, log: PathBuf) -> Self {
        self.log = Some(log);
        self
    }
}

/// Most bytes of an attempt's log.
pub(crate) const LOG_CAP: u64 = 1 << 20;

/// Appends lines to an attempt's log, up to [`LOG_CAP`].
pub(crate) struct LogFile {
    out: Option<std::io::BufWriter<std::fs::File>>,
    written: u64,
}

impl LogFile {
    pub(crate) fn open(path: Option<&PathBuf>) -> Self {
        let file = path.and_then(|p| {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir(dir);
            }
            // Never through a link planted in the job's folder.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
                .ok()
        });
        let written = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        LogFile {
            out: file.map(std::io::BufWriter::new),
            written,
        }
    }

    pub(crate) fn line(&mut self, line: &[u8]) {
        let Some(out) = &mut self.out else { return };
        if self.written + line.len() as u64 > LOG_CAP {
            let _ = writeln!(out, "...(log cut at {LOG_CAP} bytes)");
            let _ = out.flush();
            self.out = None;
            return;
        }
        self.written += line.len() as u64;
        let _ = out.write_all(line);
    }
}

/// What a finished process left besides its output.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    pub(crate) counters: Counters,
    pub(crate) status: Option<String>,
}

#[derive(Default)]
struct StderrState {
    tail: VecDeque<u8>,
    counters: Counters,
    status: Option<String>,
}

impl StderrState {
    fn line(&mut self, line: &[u8]) {
        if let Some(rest) = line.strip_prefix(b"reporter:counter:") {
            let text = String::from_utf8_lossy(rest);
            let mut parts = text.trim_end().splitn(3, ',');
            if let (Some(g), Some(n), Some(a)) = (parts.next(), parts.next(), parts.next()) {
                if let Ok(a) = a.trim().parse::<u64>() {
                    self.counters.add(g, n, a);
                    return;
                }
            }
        } else if let Some(rest) = line.strip_prefix(b"reporter:status:") {
            self.status = Some(String::from_utf8_lossy(rest).trim_end().to_owned());
            return;
        }
        self.tail.extend(line);
        while self.tail.len() > STDERR_TAIL {
            self.tail.pop_front();
        }
    }

    fn tail(&self) -> String {
        let bytes: Vec<u8> = self.tail.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

/// Runs `spec`, writing its stdin with `feed` (on a thread of its own) and
/// giving each stdout line, without its line end, to `on_line`. Fails with
/// the process's stderr tail if it exits non-zero, is killed, times out, or
/// (for the driver) ends without its end line.
pub(crate) fn run(
    spec: &Spec,
    procs: &Processes,
    owner: &Owner,
    feed: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
    mut on_line: impl FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<Finished, Failure> {
    if procs.is_cancelled(owner) {
        return Err(Failure::cancelled(&owner.job));
    }
    let tree = Arc::new(spec.fence.tree());
    let started = start(spec, &tree)?;
    let pid = started.pid;
    procs.add(owner, pid, tree.clone());
    let _unregister = Guard(|| procs.remove(&owner.job, pid));

    let feeder = spawn_feeder(started.stdin, feed);
    let stdout = started.stdout;
    let reaper = spawn_reaper(started.wait, tree.clone(), pid);
    let err_state = Arc::new(Mutex::new(StderrState::default()));
    let err_reader = spawn_stderr_reader(started.stderr, spec.log.as_ref(), err_state.clone());
    let timed_out = Arc::new(AtomicBool::new(false));
    let (stop_watch, watch) = mpsc::channel::<()>();
    let watchdog = spec
        .timeout
        .map(|limit| spawn_watchdog(watch, limit, timed_out.clone(), tree.clone(), pid));

    let (failure, saw_end) = match stdout {
        Some(stdout) => read_stdout(stdout, spec, &mut on_line),
        None => (None, false),
    };
    if failure.is_some() {
        // Drain nothing more: the process goes.
        tree.kill(pid);
    }
    let status = reaper
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the reaper thread panicked")));
    let _ = stop_watch.send(());
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    let fed = feeder.join();
    let _ = err_reader.join();
    let state = std::mem::take(
        &mut *err_state
            .lock()
            .map_err(|_| Failure::engine("the stderr reader panicked"))?,
    );
    let tail = state.tail();
    let with_tail = |msg: String| {
        if tail.is_empty() {
            msg
        } else {
            format!("{msg}\n{tail}")
        }
    };
    if procs.is_cancelled(owner) {
        return Err(Failure::cancelled(&owner.job));
    }
    if timed_out.load(Ordering::Relaxed) {
        let secs = spec.timeout.map_or(0, |t| t.as_secs());
        return Err(Failure::timeout(with_tail(format!(
            "{} timed out after {secs} s and was killed",
            spec.what
        ))));
    }
    if let Some(f) = failure {
        return Err(f.with_message(with_tail));
    }
    let status = status.map_err(|e| Failure::engine(format!("waiting for {}: {e}", spec.what)))?;
    if let Some(how) = how_it_failed(status) {
        return Err(Failure::task(with_tail(format!("{} {how}", spec.what))));
    }
    match fed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let message = with_tail(format!("feeding {}: {e}", spec.what));
            return Err(Failure::engine(message));
        }
        Err(_) => {
            let message = format!("feeding {}: the feeder panicked", spec.what);
            return Err(Failure::engine(message));
        }
    }
    if spec.expect_end && !saw_end {
        return Err(Failure::task(with_tail(format!(
            "{} stopped before finishing its output (os._exit or a crash?)",
            spec.what
        ))));
    }
    Ok(Finished {
        counters: state.counters,
        status: state.status,
    })
}

/// How a process that did not exit with 0 ended, in words; `None` when it succeeded.
fn how_it_failed(status: ExitStatus) -> Option<String> {
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(libc::SIGXCPU)) => "used up its CPU time (TASK_CPU_S) and was killed".into(),
        (None, Some(libc::SIGXFSZ)) => {
            "wrote a file larger than TASK_FILE_MB and was killed".into()
        }
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "failed".into(),
    })
}

/// Gives each stdout line (its `\r\n` or `\n` cut) to `on_line` until the stream ends or a
/// line fails; the driver's end line is taken, not passed on. Returns the failure, if any,
/// and whether the end line came.
fn read_stdout(
    stdout: Box<dyn Read + Send>,
    spec: &Spec,
    on_line: &mut impl FnMut(&[u8]) -> Result<(), Failure>,
) -> (Option<Failure>, bool) {
    let mut saw_end = false;
    let mut lines = Lines::new(stdout);
    loop {
        let got = lines.next_with(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if spec.expect_end && l == END_LINE {
                saw_end = true;
                return Ok(());
            }
            if saw_end {
                return Err(Failure::task(format!(
                    "{} wrote after its end line",
                    spec.what
                )));
            }
            on_line(l)
        });
        match got {
            Ok(true) => {}
            Ok(false) => return (None, saw_end),
            Err(e) => return (Some(e), saw_end),
        }
    }
}

/// Writes the process's stdin with `feed` on a thread of its own. A closed pipe means the
/// process stopped reading: its exit status says why.
fn spawn_feeder(
    stdin: Option<Box<dyn Write + Send>>,
    feed: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        if let Some(stdin) = stdin {
            let mut w = std::io::BufWriter::with_capacity(256 << 10, stdin);
            let fed = feed(&mut w).and_then(|()| w.flush());
            return match fed {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            };
        }
        Ok(())
    })
}

/// Waits for the process on a thread of its own: once it exits, its whole tree is killed,
/// so a descendant still holding the output pipe cannot keep the attempt (and its timeout)
/// open.
fn spawn_reaper(
    wait: Box<dyn FnOnce() -> std::io::Result<ExitStatus> + Send>,
    tree: Arc<Tree>,
    pid: i32,
) -> std::thread::JoinHandle<std::io::Result<ExitStatus>> {
    std::thread::spawn(move || {
        let status = wait();
        tree.kill(pid);
        status
    })
}

/// Reads the process's stderr into its log file and `state` (the tail, counters, status).
fn spawn_stderr_reader(
    stderr: Option<Box<dyn Read + Send>>,
    log: Option<&PathBuf>,
    state: Arc<Mutex<StderrState>>,
) -> std::thread::JoinHandle<()> {
    let mut log = LogFile::open(log);
    std::thread::spawn(move || {
        if let Some(stderr) = stderr {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                log.line(&line);
                if let Ok(mut s) = state.lock() {
                    s.line(&line);
                }
                line.clear();
            }
        }
        if let Some(out) = &mut log.out {
            let _ = out.flush();
        }
    })
}

/// Kills the process tree when `limit` passes before `watch` is told the process ended.
fn spawn_watchdog(
    watch: mpsc::Receiver<()>,
    limit: Duration,
    timed_out: Arc<AtomicBool>,
    tree: Arc<Tree>,
    pid: i32,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(limit) {
            timed_out.store(true, Ordering::Relaxed);
            tree.kill(pid);
        }
    })
}

/// A started task process, however it was started.
struct Started {
    /// Its pid, which is also its process group.
    pid: i32,
    stdin: Option<Box<dyn Write + Send>>,
    stdout: Option<Box<dyn Read + Send>>,
    stderr: Option<Box<dyn Read + Send>>,
    wait: Box<dyn FnOnce() -> std::io::Result<ExitStatus> + Send>,
}

/// Starts `spec` in `tree`: forked by the warm Python where the spec allows
/// it, else as a fresh process.
fn start(spec: &Spec, tree: &Tree) -> Result<Started, Failure> {
    if let Some(fork) = spec.fork.as_ref().filter(|f| f.serves(&spec.argv)) {
        match fork.launch(&spec.argv, &spec.cwd, &spec.env, tree) {
            Ok(l) => {
                let exit = l.exit;
                return Ok(Started {
                    pid: l.pid,
                    stdin: Some(Box::new(l.stdin)),
                    stdout: Some(Box::new(l.stdout)),
                    stderr: Some(Box::new(l.stderr)),
                    wait: Box::new(move || exit.wait()),
                });
            }
            Err(e) => tracing::warn!(error = %e,
                "the Python fork server could not start a task; starting a fresh interpreter"),
        }
    }
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(Failure::engine("no command"));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    spec.fence.apply(&mut cmd, tree, &spec.env);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::engine(format!("cannot start {}: {e}", spec.what)))?;
    Ok(Started {
        pid: i32::try_from(child.id()).unwrap_or(i32::MAX),
        stdin: child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn Write + Send>),
        stdout: child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        stderr: child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        wait: Box::new(move || child.wait()),
    })
}

/// Lines of a pipe, handed out as slices of the read buffer (no copy per
/// line; a line longer than the buffer is assembled in `carry`).
struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    carry: Vec<u8>,
}

impl<R: Read> Lines<R> {
    fn new(inner: R) -> Self {
        Lines {
            inner,
            buf: vec![0; 256 << 10],
            start: 0,
            end: 0,
            carry: Vec::new(),
        }
    }

    /// Calls `f` with every complete line of the next chunk read (without its
    /// `\n`); `Ok(false)` at the end of the stream.
    fn next_with(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), Failure>,
    ) -> Result<bool, Failure> {
        if self.start == self.end {
            self.start = 0;
            self.end = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Failure::engine(format!("reading the output: {e}"))),
                }
            };
            if self.end == 0 {
                if !self.carry.is_empty() {
                    let last = std::mem::take(&mut self.carry);
                    f(&last)?;
                }
                return Ok(false);
            }
        }
        let chunk = &self.buf[self.start..self.end];
        let mut pos = 0;
        while let Some(i) = memchr::memchr(b'\n', &chunk[pos..]) {
            if self.carry.is_empty() {
                f(&chunk[pos..pos + i])?;
            } else {
                self.carry.extend_from_slice(&chunk[pos..pos + i]);
                let line = std::mem::take(&mut self.carry);
                f(&line)?;
            }
            pos += i + 1;
        }
        self.carry.extend_from_slice(&chunk[pos..]);
        self.start = self.end;
        Ok(true)
    }
}

struct Guard<F: FnMut()>(F);

impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Copies everything from `r` into `w` (for feeding a whole file).
pub(crate) fn pump(mut r: impl Read, w: &mut dyn Write) -> std::io::Result<()> {
    std::io::copy(&mut r, w).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_started_after_its_jobs_cancel_is_killed() {
        let fence = Fence::new(&crate::settings::FenceSettings::default()).unwrap();
        let procs = Processes::default();
        let spawn = || {
            let tree = Arc::new(fence.tree());
            let mut cmd = Command::new("sleep");
            cmd.arg("30").process_group(0);
            fence.apply(&mut cmd, &tree, &[]);
            (cmd.spawn().unwrap(), tree)
        };
        let job: JobId = "job-1".parse().unwrap();
        let attempt = |i| AttemptId::new(gridmr_core::TaskId::new(gridmr_core::Phase::Map, i), 1);
        let (first, second) = (Owner::new(&job, attempt(0)), Owner::new(&job, attempt(1)));
        // One attempt cancelled: its process dies, the other's lives on.
        procs.cancel(&job, Some(first.attempt));
        let (mut a, tree_a) = spawn();
        procs.add(&first, a.id() as i32, tree_a);
        assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
        let (mut b, tree_b) = spawn();
        procs.add(&second, b.id() as i32, tree_b);
        assert!(b.try_wait().unwrap().is_none());
        // The whole job cancelled: the rest dies.
        assert_eq!(procs.cancel(&job, None), 2);
        assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGKILL));
        procs.forget(&job);
        assert!(!procs.is_cancelled(&first) && !procs.is_cancelled(&second));
    }

    fn all_lines(data: &[u8], buf: usize) -> Vec<Vec<u8>> {
        let mut lines = Lines::new(data);
        lines.buf = vec![0; buf];
        let mut out = Vec::new();
        while lines
            .next_with(|l| {
                out.push(l.to_vec());
                Ok(())
            })
            .unwrap()
        {}
        out
    }

    #[test]
    fn lines_across_buffer_edges_and_without_a_last_newline() {
        let data = b"alpha\nbe\n\nvery long line here\nlast";
        let want: Vec<Vec<u8>> = vec![
            b"alpha".to_vec(),
            b"be".to_vec(),
            b"".to_vec(),
            b"very long line here".to_vec(),
            b"last".to_vec(),
        ];
        for buf in [1, 2, 3, 5, 7, 64] {
            assert_eq!(all_lines(data, buf), want, "buffer {buf}");
        }
        assert!(all_lines(b"", 4).is_empty());
    }

    #[test]
    fn reporter_lines_become_counters_and_status() {
        let mut s = StderrState::default();
        s.line(b"reporter:counter:app,rows,3\n");
        s.line(b"reporter:counter:app,rows,4\n");
        s.line(b"reporter:status:half way\n");
        s.line(b"reporter:counter:bad line\n");
        s.line(b"Traceback: boom\n");
        assert_eq!(s.counters.get("app", "rows"), 7);
        assert_eq!(s.status.as_deref(), Some("half way"));
        assert!(s.tail().contains("boom") && s.tail().contains("bad line"));
    }
}
