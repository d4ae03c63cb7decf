//! A warm Python for script tasks, as PySpark's daemon is one: a process
//! that has started the interpreter and imported the driver once
//! (`python3 driver.py serve`), and forks one child per task, which then
//! runs the driver's mode exactly as a fresh `python3 driver.py MODE …`
//! would. An attempt starts in about a millisecond instead of an
//! interpreter's start-up (tens of milliseconds, three times per SINGLE job:
//! probe, map, reduce).
//!
//! The fence is the same as a cold start's: the child runs as the task user
//! (the server does), with the attempt's environment and limits (set in the
//! child before it runs any user code), in the attempt's cgroup (the worker
//! moves it there and only then tells it to go), and in a session of its
//! own, so the timeout's and the cancel's tree kill reach it. The server
//! is not dumpable (`PR_SET_DUMPABLE`), so a task running as the same user
//! cannot ptrace it into starting processes outside its cgroup. The worker
//! uses the server only where attempts get cgroups: the fallback tree kill
//! finds processes by a tag in their environment at `exec`, which a forked
//! child never has.
//!
//! # Protocol (driver.py's `serve()` is the other end)
//!
//! The server's fd 3 is a Unix stream socket. Each request is one message:
//! a JSON object `{"argv", "cwd", "env", "limits"}` with four descriptors
//! attached (the task's own socket, then the task's stdin, stdout and
//! stderr). On the task socket the server answers `pid N\n` once it has
//! forked (or `error …\n`), the worker answers `go` once the child is in its
//! cgroup, and the server writes `exit STATUS\n` (the raw wait status) once
//! it has reaped the child. End of file on the task socket before `exit`
//! means the server died; the child is then killed with its tree.

use super::super::fence::{Fence, Tree};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest the server may take to fork a child and name it.
const FORK_WAIT: Duration = Duration::from_secs(30);

/// One worker's fork server, started on first use (or by
/// [`ForkServer::warm_up`]) and again whenever it is found dead.
#[derive(Debug)]
pub(crate) struct ForkServer {
    python: OsString,
    driver: PathBuf,
    fence: Arc<Fence>,
    /// Python's own variables, the same for every task: the server's
    /// interpreter reads them once, at its start.
    python_env: Vec<(String, String)>,
    /// The running server; one request is written at a time.
    server: Mutex<Option<Server>>,
}

#[derive(Debug)]
struct Server {
    child: Child,
    /// The worker's end of the control socket (a `SOCK_SEQPACKET` pair:
    /// each request stays one message, its descriptors with it).
    control: OwnedFd,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The server is the leader of its own process group; its children
        // have left it (each has its own session and tree).
        let pid = i32::try_from(self.child.id()).unwrap_or(i32::MAX);
        crate::sys::kill_group(pid);
        let _ = self.child.wait();
    }
}

/// A task process the server started, already in its tree and running.
pub(crate) struct Launched {
    /// The child's pid, which is also its process group.
    pub(crate) pid: i32,
    pub(crate) stdin: PipeWriter,
    pub(crate) stdout: PipeReader,
    pub(crate) stderr: PipeReader,
    /// Where the child's exit status comes.
    pub(crate) exit: Exit,
}

/// The task socket, read for the `exit` line.
pub(crate) struct Exit(BufReader<UnixStream>);

impl Exit {
    /// Waits for the child's end; an error if the server died first.
    pub(crate) fn wait(mut self) -> std::io::Result<ExitStatus> {
        let line = read_line(&mut self.0)?;
        match line.strip_prefix("exit ").map(str::parse::<i32>) {
            Some(Ok(raw)) => Ok(ExitStatus::from_raw(raw)),
            _ => Err(std::io::Error::other(
                "the Python fork server ended before the task",
            )),
        }
    }
}

fn read_line(r: &mut BufReader<UnixStream>) -> std::io::Result<String> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

impl ForkServer {
    /// A fork server for `python` running `driver`, fenced by `fence`; not
    /// started yet.
    pub(crate) fn new(python: OsString, driver: PathBuf, fence: Arc<Fence>) -> Self {
        ForkServer {
            python,
            driver,
            fence,
            python_env: vec![
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
                ("PYTHONIOENCODING".into(), "utf-8".into()),
            ],
            server: Mutex::new(None),
        }
    }

    /// Whether `argv` is a driver run this server can start: the same
    /// Python and driver, and text arguments (the request is JSON).
    pub(crate) fn serves(&self, argv: &[OsString]) -> bool {
        argv.len() > 2
            && argv[0] == self.python
            && Path::new(&argv[1]) == self.driver
            && argv.iter().all(|a| a.to_str().is_some())
    }

    /// Starts the server now, so the first task does not wait for it.
    pub(crate) fn warm_up(&self) -> std::io::Result<()> {
        let mut server = self.server.lock().map_err(|_| poisoned())?;
        self.running(&mut server).map(drop)
    }

    /// The live server, started or restarted as needed.
    fn running<'a>(&self, slot: &'a mut Option<Server>) -> std::io::Result<&'a mut Server> {
        let dead = match slot {
            Some(s) => !matches!(s.child.try_wait(), Ok(None)),
            None => true,
        };
        if dead {
            *slot = None;
            *slot = Some(self.start()?);
        }
        slot.as_mut()
            .ok_or_else(|| std::io::Error::other("no fork server"))
    }

    fn start(&self) -> std::io::Result<Server> {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (ours, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.driver)
            .arg("serve")
            // Any folder the task user may enter; each child takes its own.
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        self.fence.apply_launcher(&mut cmd, &self.python_env);
        let fd = theirs.as_raw_fd();
        crate::sys::exec_with_fd3(&mut cmd, fd);
        let child = cmd.spawn()?;
        drop(theirs);
        tracing::debug!(pid = child.id(), "Python fork server started");
        Ok(Server {
            child,
            control: ours,
        })
    }

    /// Starts one task process: `argv` (`python driver.py MODE …`, as
    /// [`ForkServer::serves`] checked), in `cwd`, with the fence's
    /// environment plus `env`, moved into `tree` before it runs. A server
    /// found dead is restarted once.
    pub(crate) fn launch(
        &self,
        argv: &[OsString],
        cwd: &Path,
        env: &[(String, String)],
        tree: &Tree,
    ) -> std::io::Result<Launched> {
        if !self.serves(argv) {
            return Err(std::io::Error::other("not a driver run"));
        }
        let mut all_env = self.python_env.clone();
        all_env.extend(self.fence.task_env(tree, env));
        let request = serde_json::json!({
            "argv": argv[1..].iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
            "cwd": cwd.to_string_lossy(),
            "env": all_env.into_iter().collect::<std::collections::HashMap<_, _>>(),
            "limits": self.fence.limit_names(),
        })
        .to_string();
        match self.launch_once(&request, tree)? {
            Some(l) => Ok(l),
            // The server died under the request (its death not seen yet
            // when it was sent): once more, on a new one.
            None => self.launch_once(&request, tree)?.ok_or_else(|| {
                std::io::Error::other("the Python fork server ended twice in a row")
            }),
        }
    }

    /// One request; `None` if the server was found dead after it.
    fn launch_once(&self, request: &str, tree: &Tree) -> std::io::Result<Option<Launched>> {
        let (stdin_r, stdin_w) = std::io::pipe()?;
        let (stdout_r, stdout_w) = std::io::pipe()?;
        let (stderr_r, stderr_w) = std::io::pipe()?;
        let (ours, theirs) = UnixStream::pair()?;
        let server_pid = {
            let mut slot = self.server.lock().map_err(|_| poisoned())?;
            let fds = [
                theirs.as_fd(),
                stdin_r.as_fd(),
                stdout_w.as_fd(),
                stderr_w.as_fd(),
            ];
            let server = self.running(&mut slot)?;
            if send(&server.control, request.as_bytes(), &fds).is_err() {
                *slot = None;
                return Ok(None);
            }
            server.child.id()
        };
        drop((theirs, stdin_r, stdout_w, stderr_w));
        ours.set_read_timeout(Some(FORK_WAIT))?;
        let mut reader = BufReader::new(ours);
        let line = read_line(&mut reader)?;
        let pid = match line.strip_prefix("pid ").map(str::parse::<i32>) {
            Some(Ok(pid)) if pid > 0 => pid,
            _ if line.is_empty() && self.forget_dead(server_pid)? => return Ok(None),
            _ => {
                return Err(std::io::Error::other(format!(
                    "the Python fork server did not start the task ({})",
                    if line.is_empty() { "no answer" } else { &line }
                )))
            }
        };
        let ours = reader.get_mut();
        if let Err(e) = tree.adopt(pid) {
            tree.kill(pid);
            return Err(std::io::Error::other(format!(
                "moving the task into its cgroup: {e}"
            )));
        }
        ours.set_read_timeout(None)?;
        ours.write_all(b"go")?;
        Ok(Some(Launched {
            pid,
            stdin: stdin_w,
            stdout: stdout_r,
            stderr: stderr_r,
            exit: Exit(reader),
        }))
    }

    /// After a request went unanswered: whether server `pid` has ended
    /// (it is then dropped, so the next request starts a new one). Its end
    /// closed the task socket, so its exit is a moment away at most.
    fn forget_dead(&self, pid: u32) -> std::io::Result<bool> {
        let mut slot = self.server.lock().map_err(|_| poisoned())?;
        let Some(server) = slot.as_mut().filter(|s| s.child.id() == pid) else {
            return Ok(true); // already replaced
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            if !matches!(server.child.try_wait(), Ok(None)) {
                *slot = None;
                return Ok(true);
            }
            if std::time::Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn poisoned() -> std::io::Error {
    std::io::Error::other("the fork server's lock is poisoned")
}

/// Writes one message with `fds` attached.
fn send(control: &OwnedFd, msg: &[u8], fds: &[BorrowedFd<'_>; 4]) -> std::io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    if !ancillary.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("descriptors do not fit the message"));
    }
    let sent = sendmsg(
        control,
        &[std::io::IoSlice::new(msg)],
        &mut ancillary,
        SendFlags::NOSIGNAL,
    )?;
    if sent != msg.len() {
        return Err(std::io::Error::other("the request was cut"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::FenceSettings;
    use std::io::Read;

    /// A fork server fenced by cgroups; the tests that use it are ignored
    /// by default and fail loudly where the host gives no cgroup v2 leaf.
    fn server(settings: &FenceSettings) -> (ForkServer, tempfile::TempDir) {
        let fence = Arc::new(Fence::new(settings).unwrap());
        assert!(
            fence.uses_cgroups(),
            "this host gives the worker no cgroup v2 leaf: the test cannot run here"
        );
        let dir = tempfile::tempdir().unwrap();
        let driver = dir.path().join("driver.py");
        std::fs::write(&driver, crate::worker::DRIVER).unwrap();
        let python: OsString = "python3".into();
        (ForkServer::new(python, driver, fence), dir)
    }

    fn argv(fs: &ForkServer, rest: &[&str]) -> Vec<OsString> {
        let mut v = vec![fs.python.clone(), fs.driver.clone().into_os_string()];
        v.extend(rest.iter().map(OsString::from));
        v
    }

    /// Runs one driver mode over `input`: (exit status, stdout, stderr).
    fn run(
        fs: &ForkServer,
        tree: &Tree,
        rest: &[&str],
        input: &str,
    ) -> (ExitStatus, String, String) {
        let argv = argv(fs, rest);
        assert!(fs.serves(&argv));
        let cwd = fs.driver.parent().unwrap().to_path_buf();
        let mut l = fs.launch(&argv, &cwd, &[], tree).unwrap();
        l.stdin.write_all(input.as_bytes()).unwrap();
        drop(l.stdin);
        let mut out = String::new();
        l.stdout.read_to_string(&mut out).unwrap();
        let mut err = String::new();
        l.stderr.read_to_string(&mut err).unwrap();
        (l.exit.wait().unwrap(), out, err)
    }

    #[test]
    #[ignore = "needs a cgroup v2 leaf for the worker (root on a cgroup v2 host, as on CI): cargo test -- --include-ignored"]
    fn a_forked_task_runs_the_driver_as_a_fresh_interpreter_would() {
        let (fs, dir) = server(&FenceSettings::default());
        let script = dir.path().join("wc.py");
        std::fs::write(
            &script,
            "import atexit, ctypes, os, resource, sys, threading\n\
             atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n\
             threading.Thread(target=lambda: (__import__('time').sleep(0.2),\n\
             \x20   sys.stderr.write('thread joined\\n'))).start()\n\
             def map_func(line):\n\
             \x20   print('to the log')\n\
             \x20   yield 'nofile', resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n\
             \x20   yield 'tag', 'GRIDMR_TASK_TAG' in os.environ\n\
             \x20   yield 'dumpable', ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)\n\
             \x20   yield 'cgroup', open('/proc/self/cgroup').read().strip().split('/')[-1]\n\
             \x20   for w in line.split():\n\
             \x20       yield w, 1\n",
        )
        .unwrap();
        let script = script.to_str().unwrap();
        let tree = fs.fence.tree();
        let (status, out, err) = run(&fs, &tree, &["map", script], "a b a\n");
        assert!(status.success(), "{status:?} {err}");
        let mut lines: Vec<&str> = out.lines().collect();
        // The child ran in the attempt's cgroup leaf.
        let cgroup = lines.remove(3);
        assert!(cgroup.starts_with("cgroup\ttask-"), "{cgroup}");
        assert_eq!(
            lines,
            // The driver's map output: key, value and how often the pair came.
            [
                "nofile\t1024\t1",
                "tag\tTrue\t1",
                // Dumpable again (the server is not), as a fresh process.
                "dumpable\t1\t1",
                "a\t1\t2",
                "b\t1\t1",
                "\u{0}GRIDMR-END"
            ],
            "{err}"
        );
        assert!(err.contains("to the log"), "{err}");
        // It ends as an interpreter does: threads joined, atexit handlers run.
        assert!(err.contains("thread joined\natexit ran"), "{err}");
        // The same server serves the next task, and a failing one fails.
        let tree = fs.fence.tree();
        let (status, _, err) = run(&fs, &tree, &["map", "/no/such/script.py"], "");
        assert!(!status.success());
        assert!(err.contains("script"), "{err}");
    }

    #[test]
    #[ignore = "needs a cgroup v2 leaf for the worker (root on a cgroup v2 host, as on CI): cargo test -- --include-ignored"]
    fn a_killed_tree_ends_the_task_and_a_dead_server_is_restarted() {
        let (fs, dir) = server(&FenceSettings::default());
        let script = dir.path().join("slow.py");
        std::fs::write(
            &script,
            "import time\ndef map_func(line):\n    time.sleep(300)\n    return []\n",
        )
        .unwrap();
        let tree = fs.fence.tree();
        let argv = argv(&fs, &["map", script.to_str().unwrap()]);
        let mut l = fs.launch(&argv, dir.path(), &[], &tree).unwrap();
        l.stdin.write_all(b"x\n").unwrap();
        tree.kill(l.pid);
        let status = l.exit.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // The server itself dies: the next task starts a new one.
        let old = fs.server.lock().unwrap().as_ref().unwrap().child.id();
        crate::sys::kill_process(old as i32);
        let tree = fs.fence.tree();
        let (status, out, err) = run(&fs, &tree, &["probe", script.to_str().unwrap()], "");
        assert!(status.success(), "{err}");
        assert!(out.contains("map_func"), "{out}");
        assert_ne!(fs.server.lock().unwrap().as_ref().unwrap().child.id(), old);
    }
}
