//! A job's folders from start to end, and the master's side of the output commit.
//!
//! The commit protocol (docs/architecture.md, "The commit protocol"), in the order its files
//! are written:
//!
//! 1. `commit.json` in the job's folder: the parts chosen (names only, relative to `out/`) and
//!    the job as it stands (counters, attempts). From here on the set of attempts is fixed.
//! 2. [`JobCommit::run`]: parts renamed, `result.txt`, `_attempts` removed, **`_SUCCESS`**
//!    last (the commit point).
//! 3. The job's working folders are swept (`shuffle/`, `work/`, `single-aN/`).
//! 4. `job.json` (the ended job), then `commit.json` is removed.
//!
//! A master that starts finds each job in one of these states and acts on it
//! ([`Recovered`]): `job.json` means ended; `commit.json` without `job.json` means a commit
//! began, and the master runs it again (every step is idempotent, and `_SUCCESS` already there
//! means it is done) and adopts the job as SUCCEEDED with the counters it recorded; neither
//! means no commit began, and the output folder, which then never holds a `_SUCCESS` the master
//! wrote, is emptied (`_SUCCESS` first) before the job runs again. Nothing is ever removed from
//! an output beside a `_SUCCESS` of its commit.

use super::faults::CrashPoints;
use super::store;
use crate::error::{Error, Result};
use crate::objstore::{ObjectError, ObjectStores};
use gridmr_core::commit::{
    is_complete, CommitStep, Committed, JobCommit, PartCommit, SUCCESS_FILE,
};
use gridmr_core::layout;
use gridmr_scheduler::{CommitError, CommitPlan, Job, JobDirs};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// What `commit.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CommitRecord {
    /// `(part name, attempt file relative to out/)`, in output order.
    parts: Vec<(String, PathBuf)>,
    result_max_bytes: u64,
    /// The job when its commit began (the counters and attempts it is adopted with).
    job: Box<Job>,
}

impl CommitRecord {
    fn new(plan: &CommitPlan, commit: &JobCommit) -> Self {
        CommitRecord {
            parts: commit
                .parts
                .iter()
                .map(|p| {
                    let rel = p.attempt.strip_prefix(&commit.out).unwrap_or(&p.attempt);
                    (p.name.clone(), rel.to_path_buf())
                })
                .collect(),
            result_max_bytes: commit.result_max_bytes,
            job: plan.job.clone(),
        }
    }

    /// The commit this record describes, for the job whose folders are `dirs`: every path is
    /// derived from `dirs`, and a record naming anything but part files and attempt files
    /// inside `out/_attempts` (the share is written by tasks too) is refused.
    fn commit_for(&self, dirs: &JobDirs) -> Option<JobCommit> {
        let mut parts = Vec::with_capacity(self.parts.len());
        for (name, rel) in &self.parts {
            let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
            let under_attempts = rel.starts_with(layout::ATTEMPTS_DIR);
            let depth = rel.components().count();
            if !layout::is_part_name(name) || !plain || !under_attempts || !(2..=3).contains(&depth)
            {
                return None;
            }
            parts.push(PartCommit {
                attempt: dirs.out.join(rel),
                name: name.clone(),
            });
        }
        Some(JobCommit {
            out: dirs.out.clone(),
            parts,
            result_max_bytes: self.result_max_bytes,
        })
    }
}

/// Makes a job's working folders: `shuffle/`, `out/`, `out/_attempts/`, `work/`. Attempts
/// write only into folders that exist and never create them (`task::existing_dir`), so once
/// [`sweep`] has removed them no attempt of the job can write there again.
///
/// A name in their place that is not a folder (a link planted there) is removed first, so
/// nothing is made through it.
pub(crate) fn make_dirs(dirs: &JobDirs) -> Result<()> {
    for d in [
        dirs.shuffle.clone(),
        dirs.out.clone(),
        layout::attempts_dir(&dirs.out),
        layout::work_dir(&dirs.base),
    ] {
        if d.symlink_metadata().is_ok() && !is_real_dir(&d) {
            std::fs::remove_file(&d).map_err(|e| Error::io("remove", &d, e))?;
        }
        std::fs::create_dir_all(&d).map_err(|e| Error::io("create", &d, e))?;
    }
    Ok(())
}

/// Removes an ended job's working folders: its map outputs (`shuffle/`), uncommitted attempt
/// files (`out/_attempts/`), script working folders (`work/`, `single-aN/`) and a finished
/// commit's record. Files an attempt adds while they are being removed are removed too
/// ([`store::purge`] tries again). What stays: `out/` and the job's records and logs.
pub(crate) fn sweep(dirs: &JobDirs) {
    if !is_real_dir(&dirs.base) {
        return;
    }
    let mut doomed = vec![
        dirs.shuffle.clone(),
        layout::attempts_dir(&dirs.out),
        layout::work_dir(&dirs.base),
    ];
    if let Ok(entries) = std::fs::read_dir(&dirs.base) {
        doomed.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| layout::is_single_attempt_dir(p)),
        );
    }
    for d in doomed {
        // Never through a link: a link planted in the job's folder is removed, not followed.
        let removed = match d.symlink_metadata() {
            Ok(m) if m.is_dir() => store::purge(&d),
            Ok(_) => std::fs::remove_file(&d),
            Err(_) => Ok(()),
        };
        if let Err(e) = removed {
            tracing::warn!(path = %d.display(), error = %e, "cannot remove an ended job's folder");
        }
    }
}

/// Removes what a failed or cancelled job left (map outputs, attempt files, any part of a
/// commit that did not finish), `_SUCCESS` first should one be there, then [`sweep`]s.
pub(crate) fn clean(dirs: &JobDirs) {
    empty_output(dirs);
    sweep(dirs);
}

/// Aborts the uploads every attempt of a failed or cancelled job left for its object output
/// `url` (their pending records in `out/_attempts`); best effort, before [`clean`] removes the
/// records. An upload whose record is lost is left to the bucket's lifecycle rule.
pub(crate) fn abort_uploads(objects: &ObjectStores, url: &str, dirs: &JobDirs) {
    let Ok(out) = objects.check(url) else {
        return;
    };
    let attempts = layout::attempts_dir(&dirs.out);
    if !is_real_dir(&dirs.out) || !is_real_dir(&attempts) {
        return;
    }
    let aborted = objects.block_on(move |stores| async move {
        crate::objstore::output::abort_attempts(&stores, &out, &attempts, &[]).await
    });
    if let Some(n) = aborted.ok().filter(|n| *n > 0) {
        tracing::info!(job_dir = %dirs.base.display(), uploads = n, "aborted the uploads of an ended job's attempts");
    }
}

/// Aborts the upload of the one attempt whose pending record is `record`
/// (`<job>/out/_attempts/part-r-NNNNN-aA`, killed or superseded) to the object output `url`;
/// best effort, before the record is removed.
pub(crate) fn abort_upload_of(objects: &ObjectStores, url: &str, record: &Path) {
    let (Ok(out), Some(attempts)) = (objects.check(url), record.parent()) else {
        return;
    };
    let (attempts, record) = (attempts.to_path_buf(), record.to_path_buf());
    let _ = objects.block_on(move |stores| async move {
        let keep: Vec<PathBuf> = std::fs::read_dir(&attempts)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| *p != record)
            .collect();
        crate::objstore::output::abort_attempts(&stores, &out, &attempts, &keep).await
    });
}

/// Whether `path` is a folder itself, not a link to one: the master empties and removes only
/// folders it reaches without following a link (a job folder, `out/` or `shuffle/` that a task
/// replaced by a link to `/etc` is left as it is, never emptied through the link).
pub(crate) fn is_real_dir(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir())
}

/// Empties an output folder, `_SUCCESS` first: a reader never sees it beside a partial output.
fn empty_output(dirs: &JobDirs) {
    let out = &dirs.out;
    if !is_real_dir(&dirs.base) || !is_real_dir(out) {
        return;
    }
    let _ = std::fs::remove_file(out.join(SUCCESS_FILE));
    if let Ok(entries) = std::fs::read_dir(out) {
        for e in entries.flatten() {
            let path = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
        }
    }
}

/// Commits a job's output by the protocol above, crashing on purpose where `crash` says.
pub(crate) fn commit(
    plan: &CommitPlan,
    result_max: u64,
    crash: &CrashPoints,
    objects: &ObjectStores,
) -> Result<Committed, CommitError> {
    let outputs = plan.parts.iter().cloned();
    let commit = if plan.map_only {
        JobCommit::map_only(&plan.dirs.out, outputs, result_max)
    } else {
        JobCommit::reduce(&plan.dirs.out, outputs, result_max)
    };
    store::save_commit(&plan.dirs.base, &CommitRecord::new(plan, &commit))
        .map_err(|e| CommitError::Io(format!("commit.json: {e}")))?;
    crash.reach("commit:recorded");
    let done = run_commit(&plan.job, &commit, objects, crash)?;
    sweep(&plan.dirs);
    crash.reach("commit:swept");
    Ok(done)
}

/// Carries out `commit`: renames in the job's output folder, or, for a job whose output is an
/// object prefix, the object committer's steps (`crate::objstore::output`), each step reported
/// to `crash`.
fn run_commit(
    job: &Job,
    commit: &JobCommit,
    objects: &ObjectStores,
    crash: &CrashPoints,
) -> Result<Committed, CommitError> {
    let mut on_step = |s: CommitStep| crash.reach(&format!("commit:{}", s.name()));
    let Some(url) = &job.output_url else {
        return commit.run(&mut on_step).map_err(failed);
    };
    let out = objects
        .check(url)
        .map_err(|e| CommitError::Output(e.to_string()))?;
    let id = job.id.to_string();
    let ran = objects.block_on(move |stores| async move {
        crate::objstore::output::commit(&stores, &out, &id, commit, &mut on_step).await
    });
    match ran {
        Err(e) => Err(CommitError::Io(e.to_string())),
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e @ (ObjectError::Io { .. } | ObjectError::Store { .. }))) => {
            Err(CommitError::Io(e.to_string()))
        }
        Ok(Err(e)) => Err(CommitError::Output(e.to_string())),
    }
}

/// A commit's error, kept by kind for the scheduler: the file system's, or
/// the outputs'.
pub(crate) fn failed(e: gridmr_core::Error) -> gridmr_scheduler::CommitError {
    if e.is_io() {
        gridmr_scheduler::CommitError::Io(e.to_string())
    } else {
        gridmr_scheduler::CommitError::Output(e.to_string())
    }
}

/// What a starting master found of a job that had not ended.
pub(crate) enum Recovered {
    /// Its commit had begun: now finished, the job is to be adopted as SUCCEEDED.
    Committed(Box<Job>, Committed),
    /// No commit had begun (or one that cannot be finished): the job runs again, its output
    /// emptied.
    Again,
}

/// Looks at an unfinished job's commit state and finishes a commit that had begun.
pub(crate) fn recover(dirs: &JobDirs, crash: &CrashPoints, objects: &ObjectStores) -> Recovered {
    let record = match store::read_commit(&dirs.base) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(job_dir = %dirs.base.display(), error = %e,
                "an unreadable commit record; the job runs again");
            None
        }
    };
    if let Some(record) = record {
        match record.commit_for(dirs) {
            Some(commit) => match run_commit(&record.job, &commit, objects, crash) {
                Ok(done) => {
                    sweep(dirs);
                    let mut job = record.job;
                    job.dirs = dirs.clone();
                    return Recovered::Committed(job, done);
                }
                Err(e) => tracing::warn!(job_dir = %dirs.base.display(), error = %e,
                    "the commit that had begun cannot be finished; the job runs again"),
            },
            None => tracing::warn!(job_dir = %dirs.base.display(),
                "a commit record names files outside the job's output; ignored"),
        }
        store::forget_commit(&dirs.base);
    } else if is_complete(&dirs.out) {
        // The protocol never leaves `_SUCCESS` without its record: not the master's.
        tracing::warn!(job_dir = %dirs.base.display(),
            "an output marked _SUCCESS that no commit of this master wrote; the job runs again");
    }
    Recovered::Again
}

/// Empties an unfinished job's output (`_SUCCESS` first) and its shuffle folder but for the
/// map outputs in `keep` (their index and data files), and makes its folders again.
pub(crate) fn reset(dirs: &JobDirs, keep: &[Option<PathBuf>]) -> Result<()> {
    if !is_real_dir(&dirs.base) {
        return Err(Error::io(
            "open",
            &dirs.base,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a folder"),
        ));
    }
    empty_output(dirs);
    let keep_files: Vec<PathBuf> = keep
        .iter()
        .flatten()
        .flat_map(|index| [index.clone(), layout::MapOutput::new(index).data()])
        .collect();
    let shuffle = is_real_dir(&dirs.shuffle).then(|| std::fs::read_dir(&dirs.shuffle));
    if let Some(Ok(entries)) = shuffle {
        for e in entries.flatten() {
            let path = e.path();
            if keep_files.contains(&path) {
                continue;
            }
            let removed = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            if let Err(e) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::io("remove", &path, e));
                }
            }
        }
    }
    make_dirs(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_replaced_by_links_are_never_emptied_through_them() {
        let share = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        std::fs::write(victim.path().join("keep.txt"), "precious").unwrap();
        let dirs = JobDirs::under(share.path().join("job-000001"));
        std::fs::create_dir_all(&dirs.base).unwrap();
        std::os::unix::fs::symlink(victim.path(), &dirs.out).unwrap();
        std::os::unix::fs::symlink(victim.path(), &dirs.shuffle).unwrap();
        clean(&dirs);
        assert!(
            victim.path().join("keep.txt").exists(),
            "emptied through a link"
        );
        // A reset replaces the links by folders of its own, making nothing through them.
        reset(&dirs, &[]).unwrap();
        assert!(is_real_dir(&dirs.out) && is_real_dir(&dirs.shuffle));
        assert_eq!(
            std::fs::read_dir(victim.path()).unwrap().count(),
            1,
            "only keep.txt"
        );
        // A whole job folder that is a link is left alone too.
        let linked = JobDirs::under(share.path().join("job-000002"));
        std::os::unix::fs::symlink(victim.path(), &linked.base).unwrap();
        std::fs::create_dir_all(victim.path().join("shuffle")).unwrap();
        clean(&linked);
        sweep(&linked);
        assert!(store::remove_all_but(&linked.base, &linked.out).is_ok());
        assert!(victim.path().join("keep.txt").exists());
        assert!(victim.path().join("shuffle").exists());
    }

    #[test]
    fn a_record_naming_files_outside_the_attempts_folder_is_refused() {
        use gridmr_scheduler::{Event, JobKind, JobRequest, Scheduler, SchedulerConfig};
        let dirs = JobDirs::under("/s/jobs/job-000001".into());
        let mut state = Scheduler::new(SchedulerConfig::default(), 1);
        let request = JobRequest::new(JobKind::Typed("wordcount".into()), "/in.txt".into());
        let submitted = Event::Submitted {
            id: "job-000001".parse().unwrap(),
            request: Box::new(request),
            dirs: dirs.clone(),
            foreseen: None,
        };
        state.handle(submitted, 0);
        let job = state.job("job-000001").unwrap().clone();
        let record = |name: &str, rel: &str| CommitRecord {
            parts: vec![(name.into(), rel.into())],
            result_max_bytes: 1,
            job: Box::new(job.clone()),
        };
        let ok = record("part-r-00000", "_attempts/part-r-00000-a1")
            .commit_for(&dirs)
            .unwrap();
        assert_eq!(
            ok.parts[0].attempt,
            Path::new("/s/jobs/job-000001/out/_attempts/part-r-00000-a1")
        );
        assert!(record("part-r-00000", "_attempts/single-a2/part-r-00000")
            .commit_for(&dirs)
            .is_some());
        for (name, rel) in [
            ("part-r-00000", "/etc/shadow"),
            ("part-r-00000", "_attempts/../../../etc/shadow"),
            ("part-r-00000", "../request.json"),
            ("part-r-00000", "_attempts"),
            ("../x", "_attempts/part-r-00000-a1"),
            ("result.txt", "_attempts/part-r-00000-a1"),
        ] {
            assert!(
                record(name, rel).commit_for(&dirs).is_none(),
                "{name} {rel}"
            );
        }
    }
}
