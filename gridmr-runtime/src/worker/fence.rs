//! The fence around a script or streaming task's processes.
//!
//! - **Limits**: `setrlimit` in the child before `exec` (address space, CPU
//!   seconds, file size, open files, processes), from [`FenceSettings`].
//! - **Environment**: cleared, then an allow-list copied from the worker's
//!   own (PATH, HOME, locale, TZ, Python's and the operator's
//!   `GRIDMR_TASK_ENV` names); never the cluster token.
//! - **The whole tree dies with the task**: each attempt gets a cgroup v2
//!   leaf when the worker may create one below its own cgroup, and
//!   `cgroup.kill` ends every process in it, detached ones included. Where
//!   there is no such cgroup, each attempt's processes carry a tag in their
//!   environment and the worker kills its process group and every process
//!   still showing the tag (a process that clears its own environment and
//!   leaves its session escapes this fallback; `docs/security.md` says so).
//! - **User**: the child drops to the task user's uid, gid and no
//!   supplementary groups before `exec`: `GRIDMR_TASK_USER`, or `nobody` on a
//!   worker started as root that names none (as Hadoop's container executor
//!   bans root). Tasks run as root only when `GRIDMR_TASK_USER=root` says so,
//!   and the worker warns at start.

use crate::error::{Error, Result};
use crate::settings::FenceSettings;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Environment variables a task inherits from the worker when set.
const ALLOWED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTHONPATH",
    "PYTHONHOME",
    "JAVA_HOME",
];

/// Variables no setting may hand to a task.
const NEVER_ENV: &[&str] = &["GRIDMR_TOKEN", "GRIDMR_TOKEN_FILE"];

/// The user tasks run as on a worker started as root that names none.
const DEFAULT_TASK_USER: &str = "nobody";

/// The name of the tag variable of the fallback tree kill.
const TAG_VAR: &str = "GRIDMR_TASK_TAG";

/// What every task process of this worker is fenced with.
#[derive(Debug)]
pub(crate) struct Fence {
    /// Each limit: its resource, its name (as Python's `resource` module
    /// spells it, for the fork server) and its value.
    limits: Vec<(libc::__rlimit_resource_t, &'static str, u64)>,
    user: Option<(libc::uid_t, libc::gid_t)>,
    env: Vec<(String, String)>,
    /// This worker's cgroup v2 folder for task leaves, when it could make
    /// one.
    cgroups: Option<PathBuf>,
}

/// Numbers trees process-wide: tags (and leaf names) must differ between
/// the fences of several workers embedded in one process, or one worker's
/// fallback kill would reach another's task.
static NEXT_TREE: AtomicU64 = AtomicU64::new(1);

/// One attempt's processes, killed together.
#[derive(Debug)]
pub(crate) struct Tree {
    tag: String,
    cgroup: Option<PathBuf>,
    /// `cgroup.procs` of the leaf, opened before the fork so the child only
    /// writes its pid (no allocation after `fork`).
    procs_file: Option<std::fs::File>,
}

fn mib(n: u64) -> u64 {
    n.saturating_mul(1 << 20)
}

/// The cgroup v2 mount and this process's cgroup in it.
fn own_cgroup() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split(' ').next()? == "cgroup2")
            .then(|| left.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// A folder for this worker's task cgroups, if the kernel lets it make one
/// and kill through it.
fn task_cgroups() -> Option<PathBuf> {
    // One folder per fence: a fence removes its folder when dropped.
    static NEXT_FENCE: AtomicU64 = AtomicU64::new(1);
    let n = NEXT_FENCE.fetch_add(1, Ordering::Relaxed);
    let own = own_cgroup()?;
    sweep_dead_workers(&own);
    let base = own.join(format!("gridmr-worker-{}-{n}", std::process::id()));
    match std::fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    if base.join("cgroup.kill").exists() && base.join("cgroup.procs").exists() {
        Some(base)
    } else {
        let _ = std::fs::remove_dir(&base);
        None
    }
}

/// Kills the tasks a worker killed with SIGKILL left behind, and removes
/// its task cgroups: every `gridmr-worker-PID-N` folder next to ours whose
/// PID is no longer running. (A live PID is left alone, whoever has it.)
fn sweep_dead_workers(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("gridmr-worker-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let base = e.path();
        let leaves: Vec<PathBuf> = std::fs::read_dir(&base)
            .map(|d| {
                d.flatten()
                    .filter(|l| l.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|l| l.path())
                    .collect()
            })
            .unwrap_or_default();
        for leaf in &leaves {
            let _ = std::fs::write(leaf.join("cgroup.kill"), "1");
        }
        let end = Instant::now() + Duration::from_secs(2);
        for leaf in &leaves {
            while std::fs::remove_dir(leaf).is_err() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if std::fs::remove_dir(&base).is_ok() {
            tracing::warn!(folder = %base.display(), tasks = leaves.len(),
                "killed the tasks of a worker that died without stopping them");
        }
    }
}

fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t)> {
    let bad = |reason: String| Error::setting("GRIDMR_TASK_USER", reason);
    let cname = std::ffi::CString::new(name).map_err(|_| bad("holds a NUL byte".into()))?;
    if let Some(ids) = crate::sys::lookup_user(&cname) {
        return Ok(ids);
    }
    match name.parse::<libc::uid_t>() {
        Ok(uid) => Ok((uid, uid)),
        Err(_) => Err(bad(format!("no user {name:?}"))),
    }
}

impl Fence {
    /// The fence the settings describe; checks the task user exists and can
    /// be switched to.
    pub(crate) fn new(s: &FenceSettings) -> Result<Fence> {
        let mut limits = Vec::new();
        for (res, name, value) in [
            (libc::RLIMIT_AS, "RLIMIT_AS", mib(s.memory_mb)),
            (libc::RLIMIT_CPU, "RLIMIT_CPU", s.cpu_s),
            (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE", mib(s.file_mb)),
            (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE", s.open_files),
            (libc::RLIMIT_NPROC, "RLIMIT_NPROC", s.processes),
        ] {
            if value > 0 {
                limits.push((res, name, value));
            }
        }
        let root = crate::sys::is_root();
        let user = match s
            .task_user
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None if root => {
                let (uid, gid) = lookup_user(DEFAULT_TASK_USER).unwrap_or((65534, 65534));
                tracing::info!(
                    uid,
                    "the worker runs as root: tasks run as {DEFAULT_TASK_USER} \
                    (GRIDMR_TASK_USER names another user; root only if it says root)"
                );
                Some((uid, gid))
            }
            None => None,
            Some("root" | "0") => {
                tracing::warn!(
                    "GRIDMR_TASK_USER=root: job scripts and commands run as root, \
                    unfenced by file permissions: anyone who can submit a job owns every worker"
                );
                None
            }
            Some(name) => {
                let (uid, gid) = lookup_user(name)?;
                if !root {
                    return Err(Error::setting(
                        "GRIDMR_TASK_USER",
                        "switching users needs a worker started as root",
                    ));
                }
                if uid == 0 {
                    return Err(Error::setting(
                        "GRIDMR_TASK_USER",
                        "names a user with uid 0; pick an unprivileged user \
                         (GRIDMR_TASK_USER=root runs tasks as root, explicitly)",
                    ));
                }
                Some((uid, gid))
            }
        };
        if let Some(v) = s.pass_env.iter().find(|v| NEVER_ENV.contains(&v.as_str())) {
            return Err(Error::setting(
                "GRIDMR_TASK_ENV",
                format!("{v} is never handed to tasks"),
            ));
        }
        let env = std::env::vars()
            .filter(|(k, _)| {
                !NEVER_ENV.contains(&k.as_str())
                    && (ALLOWED_ENV.contains(&k.as_str())
                        || k.starts_with("LC_")
                        || s.pass_env.iter().any(|p| p == k))
            })
            .collect();
        let cgroups = if s.cgroups { task_cgroups() } else { None };
        tracing::debug!(cgroups = ?cgroups, "task fence");
        Ok(Fence {
            limits,
            user,
            env,
            cgroups,
        })
    }

    /// Whether attempts get their own cgroup.
    pub(crate) fn uses_cgroups(&self) -> bool {
        self.cgroups.is_some()
    }

    /// A new tree for one process (its cgroup leaf made now).
    pub(crate) fn tree(&self) -> Tree {
        let n = NEXT_TREE.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let cgroup = self.cgroups.as_ref().and_then(|base| {
            let leaf = base.join(format!("task-{n}"));
            std::fs::create_dir(&leaf).ok().map(|()| leaf)
        });
        let procs_file = cgroup.as_ref().and_then(|leaf| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(leaf.join("cgroup.procs"))
                .ok()
        });
        Tree {
            tag,
            cgroup,
            procs_file,
        }
    }

    /// A task process's whole environment: the scrubbed one, `extra`, and
    /// its tree's tag (later names win).
    pub(crate) fn task_env(
        &self,
        tree: &Tree,
        extra: &[(String, String)],
    ) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(extra.iter().cloned());
        env.push((TAG_VAR.to_owned(), tree.tag.clone()));
        env
    }

    /// The limits, by their names in Python's `resource` module.
    pub(crate) fn limit_names(&self) -> Vec<(&'static str, u64)> {
        self.limits.iter().map(|(_, name, v)| (*name, *v)).collect()
    }

    /// Fences a process that starts task processes but runs no user code
    /// itself (the fork server): the scrubbed environment plus `extra`, and
    /// the task user, but no limits and no tree (each task it forks takes
    /// its own).
    pub(crate) fn apply_launcher(&self, cmd: &mut Command, extra: &[(String, String)]) {
        cmd.env_clear();
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some((uid, gid)) = self.user {
            crate::sys::exec_as(cmd, uid, gid);
        }
    }

    /// Fences `cmd`: the scrubbed environment plus `extra`, and, in the
    /// child before `exec`, its cgroup, the limits and the user.
    pub(crate) fn apply(&self, cmd: &mut Command, tree: &Tree, extra: &[(String, String)]) {
        cmd.env_clear();
        cmd.envs(self.task_env(tree, extra));
        let limits: Vec<(libc::__rlimit_resource_t, u64)> =
            self.limits.iter().map(|(r, _, v)| (*r, *v)).collect();
        let user = self.user;
        let procs_fd = tree.procs_file.as_ref().map(|f| f.as_raw_fd());
        crate::sys::exec_fenced(cmd, procs_fd, limits, user);
    }

    /// Hands `path` to the task user, if there is one (its working folder).
    pub(crate) fn give(&self, path: &Path) -> std::io::Result<()> {
        match self.user {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        if let Some(base) = &self.cgroups {
            let _ = std::fs::remove_dir(base);
        }
    }
}

impl Tree {
    /// Moves a process that is already running (a fork server's child,
    /// before it runs any user code) into the tree's cgroup. Without a
    /// cgroup there is nothing to move into: the caller must not rely on
    /// the tag for such a process.
    pub(crate) fn adopt(&self, pid: i32) -> std::io::Result<()> {
        use std::io::Write;
        match &self.procs_file {
            Some(f) => {
                let mut f: &std::fs::File = f;
                f.write_all(pid.to_string().as_bytes())
            }
            None if self.cgroup.is_some() => Err(std::io::Error::other(
                "the attempt's cgroup could not be opened",
            )),
            None => Ok(()),
        }
    }

    /// Kills every process of the tree: the process group led by `pgid`,
    /// and the cgroup (or every process carrying the tag).
    pub(crate) fn kill(&self, pgid: i32) {
        crate::sys::kill_group(pgid);
        match &self.cgroup {
            Some(leaf) => {
                let _ = std::fs::write(leaf.join("cgroup.kill"), "1");
            }
            None => kill_tagged(&format!("{TAG_VAR}={}", self.tag)),
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let Some(leaf) = &self.cgroup else {
            return;
        };
        let _ = std::fs::write(leaf.join("cgroup.kill"), "1");
        // The leaf can go once the kernel has reaped its processes.
        let end = Instant::now() + Duration::from_secs(2);
        while std::fs::remove_dir(leaf).is_err() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// SIGKILLs every process whose environment holds `needle` (`VAR=value`).
fn kill_tagged(needle: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let needle = needle.as_bytes();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == needle) {
            crate::sys::kill_process(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_environment_is_an_allow_list() {
        let fence = Fence::new(&FenceSettings::default()).unwrap();
        assert!(fence
            .env
            .iter()
            .all(|(k, _)| !NEVER_ENV.contains(&k.as_str())));
        assert!(fence.env.iter().any(|(k, _)| k == "PATH"));
        let refused = Fence::new(&FenceSettings {
            pass_env: vec!["GRIDMR_TOKEN".into()],
            ..FenceSettings::default()
        });
        assert!(refused.is_err());
    }

    #[test]
    fn limits_apply_in_the_child() {
        let fence = Fence::new(&FenceSettings {
            open_files: 77,
            ..FenceSettings::default()
        })
        .unwrap();
        let tree = fence.tree();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ulimit -n; echo \"$GRIDMR_TOKEN\""]);
        fence.apply(&mut cmd, &tree, &[]);
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().next(), Some("77"), "{text}");
        assert_eq!(text.lines().nth(1), Some(""), "{text}");
    }

    /// Processes running exactly `sleep <marker>` (not `setsid sleep
    /// <marker>` on its way to becoming one).
    fn processes_with(marker: &str) -> usize {
        let cmdline = format!("sleep\0{marker}\0");
        std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        std::fs::read(e.path().join("cmdline"))
                            .is_ok_and(|c| c == cmdline.as_bytes())
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// Starts a task whose child leaves the process group and the session,
    /// kills the tree, and tells whether the child died too.
    fn kill_reaches_a_detached_child(fence: &Fence, marker: &str) -> bool {
        use std::io::BufRead;
        let tree = fence.tree();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("setsid sleep {marker} & echo started; wait")])
            .stdout(std::process::Stdio::piped())
            .process_group(0);
        fence.apply(&mut cmd, &tree, &[]);
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "started");
        let deadline = Instant::now() + Duration::from_secs(30);
        while processes_with(marker) != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(processes_with(marker), 1, "the detached child never ran");
        tree.kill(child.id() as i32);
        child.wait().unwrap();
        while processes_with(marker) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        processes_with(marker) == 0
    }

    /// Why a test that needs cgroups fails where it cannot run (it is ignored by default).
    const NO_LEAF: &str = "this host gives the worker no cgroup v2 leaf: the test cannot run here";

    #[test]
    fn the_tag_fallback_kills_a_detached_child() {
        let fence = Fence::new(&FenceSettings {
            cgroups: false,
            ..FenceSettings::default()
        })
        .unwrap();
        assert!(!fence.uses_cgroups());
        assert!(kill_reaches_a_detached_child(&fence, "331.125"));
    }

    #[test]
    #[ignore = "needs a cgroup v2 leaf for the worker (root on a cgroup v2 host, as on CI): cargo test -- --include-ignored"]
    fn the_cgroup_kills_a_detached_child() {
        let fence = Fence::new(&FenceSettings::default()).unwrap();
        assert!(fence.uses_cgroups(), "{NO_LEAF}");
        assert!(kill_reaches_a_detached_child(&fence, "332.125"));
    }

    #[test]
    #[ignore = "needs a cgroup v2 leaf for the worker (root on a cgroup v2 host, as on CI): cargo test -- --include-ignored"]
    fn a_dead_workers_left_over_tasks_are_killed_by_the_sweep() {
        let fence = Fence::new(&FenceSettings::default()).unwrap();
        let base = fence.cgroups.clone().expect(NO_LEAF);
        // A parent of our own: fences made by other tests at the same time
        // sweep the real parent, and would remove this test's folder under it.
        let parent = base
            .parent()
            .unwrap()
            .join(format!("gridmr-sweep-test-{}", std::process::id()));
        // A leaf as a worker that died (its PID unused) would have left it.
        let dead = parent.join(format!("gridmr-worker-{}-1", i32::MAX - 7));
        let leaf = dead.join("task-1");
        std::fs::create_dir_all(&leaf).unwrap();
        let mut child = Command::new("sleep").arg("333.125").spawn().unwrap();
        std::fs::write(leaf.join("cgroup.procs"), child.id().to_string()).unwrap();
        // A live worker's folder beside it is left alone.
        let live = parent.join(format!("gridmr-worker-{}-1", std::process::id()));
        std::fs::create_dir(&live).unwrap();
        sweep_dead_workers(&parent);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(!dead.exists());
        assert!(live.exists());
        std::fs::remove_dir(&live).unwrap();
        std::fs::remove_dir(&parent).unwrap();
    }
}
