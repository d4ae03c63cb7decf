//! The output committer: turns the chosen task attempts into a job's final output.
//!
//! A [`JobCommit`] names, for every part of the output, the attempt file chosen for it and the
//! part's final name. [`JobCommit::run`] carries it out in a fixed order, each step idempotent,
//! so that a committer that died at any step can run the same commit again and finish it:
//!
//! 1. each attempt file is renamed to its part name (`part-r-NNNNN` or `part-m-NNNNN`; an
//!    atomic rename within one folder, also on NFS); a part already renamed is left as it is.
//!    The side files the chosen attempt left beside its file ([`layout::side_files_dir`]: what
//!    a script's `process()` wrote beside its result) are moved into the output folder first;
//!    those of attempts not chosen go with `_attempts` in step 4;
//! 2. the output folder is synced, so the renames are on disk before anything says they are;
//! 3. `result.txt` (the parts joined in order, the original GridMR's result) is written under a
//!    temporary name, synced and renamed, when the parts hold at most `result_max_bytes`; an
//!    output of one part gets it as a second name of that part (a hard link), whatever its size;
//! 4. the attempts folder (`_attempts`) is removed;
//! 5. **`_SUCCESS`** is written under a temporary name, synced, renamed, and the folder synced:
//!    the commit point. Before it exists the output is incomplete whatever else is there; once it
//!    exists the output is whole and nothing changes it.
//!
//! Steps are reported to a callback as they complete ([`CommitStep`]), which a master uses to
//! inject a crash at each of them in tests.
//!
//! `result.txt` is the whole output, made for the original's small results: the one part
//! itself when there is one, else a copy of the parts joined. So that no large output is written
//! twice, past a size ([`DEFAULT_RESULT_MAX_BYTES`] unless set) several parts are not joined, and
//! the part files, as in Hadoop and Spark, are the output (the master streams them, joined, as
//! the result).

use crate::error::{Error, Result};
use crate::layout;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The marker file of a complete output.
pub const SUCCESS_FILE: &str = "_SUCCESS";
/// The joined result file.
pub const RESULT_FILE: &str = "result.txt";

/// The largest output of several parts joined into `result.txt` (a copy) unless a job says
/// otherwise: 16 MiB, well past the original's results (its SINGLE threshold was 5 MB of input).
pub const DEFAULT_RESULT_MAX_BYTES: u64 = 16 << 20;

/// One part of an output: the attempt file chosen for it and the part's final name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartCommit {
    /// The chosen attempt's file (inside the output folder's `_attempts`).
    pub attempt: PathBuf,
    /// The part's name in the output folder (`part-r-NNNNN`, `part-m-NNNNN`).
    pub name: String,
}

/// A step of [`JobCommit::run`], reported once it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStep {
    /// Part `n` (from 0) is in place under its final name.
    PartRenamed(usize),
    /// Every part is in place and the folder synced.
    PartsRenamed,
    /// `result.txt` is written (or was not needed).
    ResultWritten,
    /// The attempts folder is gone.
    AttemptsRemoved,
    /// `_SUCCESS` exists: the output is committed.
    SuccessWritten,
}

impl CommitStep {
    /// The step's name in logs and fault rules (`part-renamed`, `parts-renamed`,
    /// `result-written`, `attempts-removed`, `success-written`).
    pub fn name(self) -> &'static str {
        match self {
            CommitStep::PartRenamed(_) => "part-renamed",
            CommitStep::PartsRenamed => "parts-renamed",
            CommitStep::ResultWritten => "result-written",
            CommitStep::AttemptsRemoved => "attempts-removed",
            CommitStep::SuccessWritten => "success-written",
        }
    }
}

/// What a commit produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// `result.txt`, when the output was small enough for one.
    pub result: Option<PathBuf>,
    /// The part files, in order.
    pub parts: Vec<PathBuf>,
}

/// The commit of one job's output (see the [module docs](self) for its steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCommit {
    /// The output folder.
    pub out: PathBuf,
    /// Every part, in output order.
    pub parts: Vec<PartCommit>,
    /// The largest output joined into `result.txt`.
    pub result_max_bytes: u64,
}

impl JobCommit {
    /// The commit of reduce outputs: `(partition, attempt file)`, each partition once, in order.
    pub fn reduce(
        out: &Path,
        outputs: impl IntoIterator<Item = (u32, PathBuf)>,
        result_max_bytes: u64,
    ) -> Self {
        Self::named(out, outputs, layout::part_r, result_max_bytes)
    }

    /// The commit of a map-only job's outputs: `(map index, attempt file)`, in order.
    pub fn map_only(
        out: &Path,
        outputs: impl IntoIterator<Item = (u32, PathBuf)>,
        result_max_bytes: u64,
    ) -> Self {
        Self::named(out, outputs, layout::part_m, result_max_bytes)
    }

    fn named(
        out: &Path,
        outputs: impl IntoIterator<Item = (u32, PathBuf)>,
        name: fn(u32) -> String,
        result_max_bytes: u64,
    ) -> Self {
        JobCommit {
            out: out.to_path_buf(),
            parts: outputs
                .into_iter()
                .map(|(i, attempt)| PartCommit {
                    attempt,
                    name: name(i),
                })
                .collect(),
            result_max_bytes,
        }
    }

    /// Carries the commit out, calling `on_step` after each step. Running it again after it
    /// stopped at any step (a crash, an I/O error) finishes it; running it on a committed output
    /// changes nothing. A part whose attempt file and final file are both missing is an error:
    /// that commit cannot be finished, and the output (still without `_SUCCESS`) must be made
    /// again.
    pub fn run(&self, on_step: &mut dyn FnMut(CommitStep)) -> Result<Committed> {
        let success = self.out.join(SUCCESS_FILE);
        let parts: Vec<PathBuf> = self.parts.iter().map(|p| self.out.join(&p.name)).collect();
        if is_complete(&self.out) {
            let result = self.out.join(RESULT_FILE);
            return Ok(Committed {
                result: is_regular_file(&result).then_some(result),
                parts,
            });
        }
        for (n, (part, dest)) in self.parts.iter().zip(&parts).enumerate() {
            move_side_files(&part.attempt, &self.out)?;
            let renamed = !part.attempt.exists() && is_regular_file(dest);
            if !renamed {
                std::fs::rename(&part.attempt, dest)
                    .map_err(|e| Error::io("rename", &part.attempt, e))?;
            }
            on_step(CommitStep::PartRenamed(n));
        }
        sync_dir(&self.out)?;
        on_step(CommitStep::PartsRenamed);
        let mut size = 0u64;
        for part in &parts {
            size += std::fs::metadata(part)
                .map_err(|e| Error::io("stat", part, e))?
                .len();
        }
        let result = match parts.as_slice() {
            [one] => Some(link_part(&self.out, one)?),
            many => (size <= self.result_max_bytes)
                .then(|| join_parts(&self.out, many))
                .transpose()?,
        };
        on_step(CommitStep::ResultWritten);
        let attempts = layout::attempts_dir(&self.out);
        match std::fs::remove_dir_all(&attempts) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &attempts, e)),
        }
        on_step(CommitStep::AttemptsRemoved);
        sync_dir(&self.out)?;
        write_synced(&self.out, SUCCESS_FILE, &[])?;
        debug_assert!(success.is_file());
        on_step(CommitStep::SuccessWritten);
        Ok(Committed { result, parts })
    }
}

/// Moves the side files attempt file `attempt_file` has beside it (the regular files and
/// folders of [`layout::side_files_dir`]) into the output folder `out`, each replacing what is
/// there under its name, then removes their folder; nothing when there is none. Links and the
/// output's own names ([`layout::is_reserved_output_name`]) are left, to go with `_attempts`:
/// what an attempt left never names the output's files. Run again after it stopped, it moves
/// what is left. [`JobCommit::run`] calls it for every part; an object store's committer, whose
/// parts are not in `out`, calls it too, so side files stay in the job's output folder.
pub fn move_side_files(attempt_file: &Path, out: &Path) -> Result<()> {
    let side = &layout::side_files_dir(attempt_file);
    if !side.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let entries = std::fs::read_dir(side).map_err(|e| Error::io("list", side, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", side, e))?;
        let name = entry.file_name();
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("stat", entry.path(), e))?;
        let movable = kind.is_file() || kind.is_dir();
        if !movable || layout::is_reserved_output_name(&name.to_string_lossy()) {
            continue;
        }
        let dest = out.join(&name);
        let replaced = match dest.symlink_metadata() {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dest),
            Ok(_) => std::fs::remove_file(&dest),
            Err(_) => Ok(()),
        };
        replaced.map_err(|e| Error::io("remove", &dest, e))?;
        std::fs::rename(entry.path(), &dest).map_err(|e| Error::io("rename", entry.path(), e))?;
    }
    std::fs::remove_dir_all(side).map_err(|e| Error::io("remove", side, e))
}

/// Whether `path` is a regular file (a symbolic link is not followed).
fn is_regular_file(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_file())
}

/// Syncs a folder, so that the names created and renamed in it are on disk.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))
}

/// Writes `dir/name` whole or not at all: a temporary file, synced, renamed, the folder synced.
fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io("rename", &tmp, e))?;
    sync_dir(dir)?;
    Ok(dest)
}

/// Makes `result.txt` a second name of the output's one `part` (no byte written twice), under
/// a temporary name first; where the file system has no hard links, a copy.
fn link_part(output_dir: &Path, part: &Path) -> Result<PathBuf> {
    let result = output_dir.join(RESULT_FILE);
    let tmp = output_dir.join(format!(".{RESULT_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    match std::fs::hard_link(part, &tmp) {
        Ok(()) => {
            std::fs::rename(&tmp, &result).map_err(|e| Error::io("rename", &tmp, e))?;
            Ok(result)
        }
        Err(_) => join_parts(output_dir, std::slice::from_ref(&part.to_path_buf())),
    }
}

/// Writes `result.txt`: the `parts`, joined in order, under a temporary name first.
fn join_parts(output_dir: &Path, parts: &[PathBuf]) -> Result<PathBuf> {
    let result = output_dir.join(RESULT_FILE);
    let tmp = output_dir.join(format!(".{RESULT_FILE}.tmp"));
    let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for part in parts {
        let mut input = File::open(part).map_err(|e| Error::io("open", part, e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| Error::io("copy", part, e))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, &result).map_err(|e| Error::io("rename", &tmp, e))?;
    Ok(result)
}

/// True when `output_dir` holds a complete output: its `_SUCCESS` is a regular file (a
/// symbolic link planted in its place does not count).
pub fn is_complete(output_dir: &Path) -> bool {
    is_regular_file(&output_dir.join(SUCCESS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output folder with `n` reduce attempt files holding `part<i>\n`.
    fn attempts(n: u32) -> (tempfile::TempDir, JobCommit) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(layout::attempts_dir(&out)).unwrap();
        let files: Vec<(u32, PathBuf)> = (0..n)
            .map(|p| {
                let f = layout::reduce_attempt_file(&out, p, 1);
                std::fs::write(&f, format!("part{p}\n")).unwrap();
                (p, f)
            })
            .collect();
        let commit = JobCommit::reduce(&out, files, DEFAULT_RESULT_MAX_BYTES);
        (dir, commit)
    }

    fn listing(out: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_commit_stopped_at_any_step_finishes_when_run_again() {
        let steps = 3 + 4; // three parts renamed, then four more steps
        for stop_after in 0..steps {
            let (_dir, commit) = attempts(3);
            let mut seen = 0;
            // A crash after `stop_after` steps: the callback unwinds, as a process would die.
            let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                commit.run(&mut |step| {
                    seen += 1;
                    if seen > stop_after {
                        panic!("crash after {}", step.name());
                    }
                })
            }));
            assert!(crashed.is_err(), "stopped after {stop_after}");
            let complete = is_complete(&commit.out);
            if complete {
                for p in &commit.parts {
                    assert!(
                        commit.out.join(&p.name).is_file(),
                        "_SUCCESS beside a missing part"
                    );
                }
            }
            let done = commit.run(&mut |_| {}).unwrap();
            assert!(is_complete(&commit.out));
            let text = std::fs::read_to_string(done.result.unwrap()).unwrap();
            assert_eq!(text, "part0\npart1\npart2\n", "stopped after {stop_after}");
            assert_eq!(
                listing(&commit.out),
                [
                    "_SUCCESS",
                    "part-r-00000",
                    "part-r-00001",
                    "part-r-00002",
                    "result.txt"
                ]
            );
        }
    }

    #[test]
    fn only_the_chosen_attempts_side_files_reach_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let attempts = layout::attempts_dir(&out);
        std::fs::create_dir_all(&attempts).unwrap();
        // Two SINGLE attempts (a speculative pair), each with its result and side files.
        for a in [1, 2] {
            let file = layout::reduce_attempt_file(&out, 0, a);
            std::fs::write(&file, format!("result of {a}\n")).unwrap();
            let side = layout::side_files_dir(&file);
            std::fs::create_dir_all(side.join("plots")).unwrap();
            std::fs::write(side.join("stats.json"), format!("{{\"attempt\": {a}}}")).unwrap();
            std::fs::write(side.join("plots").join("a.txt"), format!("{a}")).unwrap();
            std::fs::write(side.join("result.txt"), "forged").unwrap();
            std::fs::write(side.join("_SUCCESS"), "").unwrap();
            std::os::unix::fs::symlink("/etc/passwd", side.join("link")).unwrap();
        }
        // What an earlier job run left under a side file's name is replaced.
        std::fs::create_dir(out.join("stats.json")).unwrap();
        let chosen = layout::reduce_attempt_file(&out, 0, 2);
        let commit = JobCommit::reduce(&out, [(0, chosen)], DEFAULT_RESULT_MAX_BYTES);
        // Stopped after its first step, then run again: the same output.
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit.run(&mut |_| panic!("crash"))
        }));
        assert!(crashed.is_err());
        commit.run(&mut |_| {}).unwrap();
        assert_eq!(
            listing(&out),
            [
                "_SUCCESS",
                "part-r-00000",
                "plots",
                "result.txt",
                "stats.json"
            ]
        );
        let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
        assert_eq!(read("stats.json"), r#"{"attempt": 2}"#);
        assert_eq!(read("plots/a.txt"), "2");
        assert_eq!(
            read("result.txt"),
            "result of 2\n",
            "a side file named result.txt is not taken"
        );
        assert_eq!(std::fs::metadata(out.join("_SUCCESS")).unwrap().len(), 0);
    }

    #[test]
    fn success_is_written_last_and_a_lost_attempt_cannot_be_committed() {
        let (_dir, commit) = attempts(2);
        let mut order = Vec::new();
        commit
            .run(&mut |s| {
                order.push(s);
                if s != CommitStep::SuccessWritten {
                    assert!(!is_complete(&commit.out), "_SUCCESS before {s:?}");
                }
            })
            .unwrap();
        assert_eq!(order.last(), Some(&CommitStep::SuccessWritten));
        assert_eq!(order.len(), 6);

        let (_dir, commit) = attempts(2);
        std::fs::remove_file(&commit.parts[1].attempt).unwrap();
        assert!(commit.run(&mut |_| {}).is_err());
        assert!(!is_complete(&commit.out));
    }

    #[test]
    fn one_part_is_its_own_result_file_whatever_its_size() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, mut commit) = attempts(1);
        commit.result_max_bytes = 1;
        let done = commit.run(&mut |_| {}).unwrap();
        let result = done.result.expect("result.txt");
        assert_eq!(std::fs::read_to_string(&result).unwrap(), "part0\n");
        let (a, b) = (
            std::fs::metadata(&result).unwrap(),
            std::fs::metadata(&done.parts[0]).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one file, two names");
        // Committing again (a master that crashed after) changes nothing.
        let again = commit.run(&mut |_| {}).unwrap();
        assert_eq!(again.result, Some(result));
    }

    #[test]
    fn a_large_output_gets_no_result_file_and_a_linked_success_is_not_complete() {
        let (_dir, mut commit) = attempts(2);
        commit.result_max_bytes = 5;
        let done = commit.run(&mut |_| {}).unwrap();
        assert_eq!(done.result, None);
        assert_eq!(done.parts.len(), 2);
        assert!(!commit.out.join(RESULT_FILE).exists());

        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join(SUCCESS_FILE)).unwrap();
        assert!(!is_complete(dir.path()));
    }
}
