//! The operating-system calls the runtime makes without a safe wrapper in `std` or `rustix`:
//! the only module of the crate with `unsafe` (the crate denies it everywhere else). Each
//! function here is safe to call; its `SAFETY` notes say why.
//!
//! Several run in a child between `fork` and `exec` (through `Command::pre_exec`), where only
//! async-signal-safe calls are allowed: they allocate nothing and touch only memory they own.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// A resource limit: `setrlimit`'s resource and the value set as both soft and hard limit.
pub(crate) type Limit = (libc::__rlimit_resource_t, u64);

/// Whether this process runs as root (effective uid 0).
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The uid and gid of the user `name`, from the password database.
pub(crate) fn lookup_user(name: &std::ffi::CStr) -> Option<(libc::uid_t, libc::gid_t)> {
    // SAFETY: an all-zero `passwd` is a valid value of a plain C struct.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live, correctly sized memory owned here; getpwnam_r writes
    // only within `pwd` and `buf`.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    (rc == 0 && !out.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// Sends SIGKILL to the process group `pgid` (a gone group, or no group
/// at all for a pid of 0 or less, is no error).
pub(crate) fn kill_group(pgid: i32) {
    if let Some(pgid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Sends SIGKILL to the process `pid` (a gone process, or a pid of 0 or
/// less, is no error).
pub(crate) fn kill_process(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Drops to `uid` and `gid` with no supplementary groups. Async-signal-safe.
fn become_user(uid: libc::uid_t, gid: libc::gid_t) -> std::io::Result<()> {
    // SAFETY: setgroups with a null list and a zero count, setgid and setuid take no memory
    // of ours.
    let failed = unsafe {
        libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
    };
    if failed {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Writes this process's pid, in decimal, to `fd` (a cgroup's `cgroup.procs`), in one
/// `write`. Async-signal-safe: the digits go through a buffer on the stack.
fn join_cgroup(fd: i32) -> std::io::Result<()> {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let mut pid = rustix::process::getpid().as_raw_nonzero().get() as u64;
    loop {
        i -= 1;
        buf[i] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    let n = buf.len() - i;
    // SAFETY: the pointer and length are those of a live slice of `buf`.
    if unsafe { libc::write(fd, buf[i..].as_ptr().cast(), n) } != n as isize {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets each limit as both soft and hard limit. Async-signal-safe.
fn set_limits(limits: &[Limit]) -> std::io::Result<()> {
    for (res, value) in limits {
        let lim = libc::rlimit {
            rlim_cur: *value,
            rlim_max: *value,
        };
        // SAFETY: `lim` is a live rlimit owned here.
        if unsafe { libc::setrlimit(*res, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Has `cmd`'s child, before `exec`, drop to `uid` and `gid` (no supplementary groups).
pub(crate) fn exec_as(cmd: &mut Command, uid: libc::uid_t, gid: libc::gid_t) {
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || become_user(uid, gid));
    }
}

/// Has `cmd`'s child, before `exec`: join the cgroup whose `cgroup.procs` is open as
/// `procs_fd`, set `limits`, then drop to `user`. Every step is async-signal-safe.
pub(crate) fn exec_fenced(
    cmd: &mut Command,
    procs_fd: Option<i32>,
    limits: Vec<Limit>,
    user: Option<(libc::uid_t, libc::gid_t)>,
) {
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (getpid, write, setrlimit, setgroups, setgid, setuid) on memory it owns; it
    // allocates nothing (`limits` was moved in before the fork).
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = procs_fd {
                join_cgroup(fd)?;
            }
            set_limits(&limits)?;
            match user {
                Some((uid, gid)) => become_user(uid, gid),
                None => Ok(()),
            }
        });
    }
}

/// Has `cmd`'s child see the descriptor `fd` as its fd 3 (not closed on `exec`).
pub(crate) fn exec_with_fd3(cmd: &mut Command, fd: i32) {
    // SAFETY: between fork and exec; dup2 and fcntl are async-signal-safe, and the copy on
    // fd 3 is not close-on-exec (the original is).
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it instead.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, 3) == 3
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// This host's load, memory, and the file system holding `dir`, from `/proc` and `statvfs`
/// (`None` where `/proc` cannot be read).
pub(crate) fn host_stats(dir: &std::path::Path) -> Option<gridmr_net::rest::HostStats> {
    let load = std::fs::read_to_string("/proc/loadavg").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let mut stats = parse_host(&load, &meminfo)?;
    stats.cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    if let Ok(fs) = rustix::fs::statvfs(dir) {
        stats.disk_total_bytes = fs.f_blocks.saturating_mul(fs.f_frsize);
        stats.disk_free_bytes = fs.f_bavail.saturating_mul(fs.f_frsize);
    }
    Some(stats)
}

/// The load and memory figures of `/proc/loadavg` and `/proc/meminfo`.
fn parse_host(loadavg: &str, meminfo: &str) -> Option<gridmr_net::rest::HostStats> {
    let load_1m = loadavg.split_whitespace().next()?.parse().ok()?;
    let kib = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|k| k * 1024)
    };
    Some(gridmr_net::rest::HostStats {
        load_1m,
        mem_total_bytes: kib("MemTotal:")?,
        mem_available_bytes: kib("MemAvailable:").unwrap_or(0),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hosts_figures_are_read_from_proc() {
        let got = super::parse_host(
            "0.52 0.40 0.33 1/234 5678\n",
            "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   12288000 kB\n",
        )
        .unwrap();
        assert_eq!(got.load_1m, 0.52);
        assert_eq!(got.mem_total_bytes, 24_576_000 * 1024);
        assert_eq!(got.mem_available_bytes, 12_288_000 * 1024);
        assert!(super::parse_host("", "").is_none());
        let here = super::host_stats(std::path::Path::new("/")).unwrap();
        assert!(here.cpus >= 1 && here.mem_total_bytes > 0 && here.disk_total_bytes > 0);
    }
}
