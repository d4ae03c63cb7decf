//! Jobs on disk, so that a master restart loses none.
//!
//! Each job folder holds `request.json` from its submission on (what was
//! asked, checked and staged, and how many times a master restart has made
//! it run again) and, once it has ended, `job.json` (the whole job as the
//! store held it: state, counters, tasks, attempts, times). At start the
//! master reads them back: ended jobs are served as they ended, the others
//! run again from their request. Both files are replaced atomically (a
//! temporary file, synced, then renamed), so a crash leaves the old version
//! or the new one, never half of one.

use crate::error::{Error, Result};
use gridmr_core::JobId;
use gridmr_scheduler::{HistoryLine, Job, JobDirs, JobRequest, Plan};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A job's request, written at submission.
pub(crate) const REQUEST_FILE: &str = "request.json";
/// An ended job, written once it has ended.
pub(crate) const JOB_FILE: &str = "job.json";
/// A commit that has begun (see `master::commit`), removed once `job.json` is written.
pub(crate) const COMMIT_FILE: &str = "commit.json";
/// The journal of a job that has not ended: its attempts as they started and ended
/// (`HistoryLine`s, one JSON object a line), removed once `job.json` holds them.
pub(crate) const HISTORY_FILE: &str = "history.jsonl";
/// A DISTRIBUTED job's plan (its splits and partitions), written when it is
/// prepared: a job resumed after a master restart keeps its tasks.
pub(crate) const PLAN_FILE: &str = "plan.json";

/// What `request.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Submitted {
    pub(crate) request: JobRequest,
    /// How many times a master restart has found the job unfinished.
    #[serde(default)]
    pub(crate) restarts: u32,
}

/// A job read back from its folder.
#[derive(Debug)]
pub(crate) enum Stored {
    /// It had ended: served as it ended.
    Ended(Box<Job>),
    /// It had not: to run again.
    Unfinished {
        id: JobId,
        dirs: JobDirs,
        submitted: Box<Submitted>,
    },
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))
}

fn to_json(value: &impl Serialize, path: &Path) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| {
        Error::io(
            "encode",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// Writes a job's `request.json`.
pub(crate) fn save_request(base: &Path, submitted: &Submitted) -> Result<()> {
    let path = base.join(REQUEST_FILE);
    write_atomic(&path, &to_json(submitted, &path)?)
}

/// Writes a job's `commit.json`.
pub(crate) fn save_commit(base: &Path, record: &super::commit::CommitRecord) -> Result<()> {
    let path = base.join(COMMIT_FILE);
    write_atomic(&path, &to_json(record, &path)?)
}

/// The job's commit record, if a commit had begun.
pub(crate) fn read_commit(base: &Path) -> Result<Option<super::commit::CommitRecord>> {
    read(&base.join(COMMIT_FILE))
}

/// Removes a job's commit record (its `job.json` now says how it ended).
pub(crate) fn forget_commit(base: &Path) {
    let _ = std::fs::remove_file(base.join(COMMIT_FILE));
}

/// Appends lines to a job's `history.jsonl`, in one write (never through a link).
pub(crate) fn append_history(base: &Path, lines: &[HistoryLine]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = base.join(HISTORY_FILE);
    let mut text = Vec::new();
    for line in lines {
        text.extend(to_line(line, &path)?);
        text.push(b'\n');
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut f| f.write_all(&text))
        .map_err(|e| Error::io("append", &path, e))
}

fn to_line(value: &impl Serialize, path: &Path) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| {
        Error::io(
            "encode",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// A job's journal: one line per attempt, its end when it had one (a line a crash cut short
/// is skipped), in the order the attempts started.
pub(crate) fn read_history(base: &Path) -> Vec<HistoryLine> {
    let Ok(text) = std::fs::read(base.join(HISTORY_FILE)) else {
        return Vec::new();
    };
    let mut order: Vec<(String, u32)> = Vec::new();
    let mut last: std::collections::HashMap<(String, u32), HistoryLine> = Default::default();
    for line in text.split(|b| *b == b'\n') {
        let Ok(line) = serde_json::from_slice::<HistoryLine>(line) else {
            continue;
        };
        let key = (line.attempt.task.name(), line.attempt.number);
        match last.get(&key) {
            // An end (it has a finish time) outranks a start, whichever was written first. A
            // start reads back as `unknown`: nobody heard how it ended.
            Some(seen) if seen.attempt.finished_ms.is_some() => {}
            Some(_) => {
                last.insert(key, line);
            }
            None => {
                order.push(key.clone());
                last.insert(key, line);
            }
        }
    }
    order.into_iter().filter_map(|k| last.remove(&k)).collect()
}

/// Removes a job's journal (its `job.json` now holds every attempt).
pub(crate) fn forget_history(base: &Path) {
    let _ = std::fs::remove_file(base.join(HISTORY_FILE));
}

/// Writes a job's `plan.json`.
pub(crate) fn save_plan(base: &Path, plan: &Plan) -> Result<()> {
    let path = base.join(PLAN_FILE);
    write_atomic(&path, &to_json(plan, &path)?)
}

/// The job's plan, if it was prepared and the file reads back.
pub(crate) fn read_plan(base: &Path) -> Option<Plan> {
    read::<Plan>(&base.join(PLAN_FILE)).ok().flatten()
}

/// Writes an ended job's `job.json`.
pub(crate) fn save_ended(job: &Job) -> Result<()> {
    let path = job.dirs.base.join(JOB_FILE);
    write_atomic(&path, &to_json(job, &path)?)
}

/// Removes a job's records (a deleted job must not come back).
pub(crate) fn forget(base: &Path) {
    for name in [JOB_FILE, REQUEST_FILE, PLAN_FILE, COMMIT_FILE, HISTORY_FILE] {
        let _ = std::fs::remove_file(base.join(name));
    }
}

/// Removes a deleted job's whole folder. Others may still be writing in it
/// for a moment (the saver's last record of the job, a worker clearing its
/// attempt folder), so a removal that finds entries come or go under it is
/// tried again, a bounded number of times; a folder already gone is
/// removed.
pub(crate) fn purge(base: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(base) {
            Ok(()) => return Ok(()),
            Err(_) if !base.exists() => return Ok(()),
            Err(e)
                if tries < 50
                    && matches!(e.kind(), ErrorKind::DirectoryNotEmpty | ErrorKind::NotFound) =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Removes everything in a job's folder but `keep` (its output), never through a link.
pub(crate) fn remove_all_but(base: &Path, keep: &Path) -> std::io::Result<()> {
    if !super::commit::is_real_dir(base) {
        return Ok(());
    }
    for e in std::fs::read_dir(base)?.flatten() {
        let path = e.path();
        if path == keep {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => purge(&path)?,
            _ => std::fs::remove_file(&path)?,
        }
    }
    Ok(())
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::io(
                "decode",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Reads one job folder: `None` for a folder without records (a job of a
/// master without a store, or one deleted).
fn load_one(base: &Path, id: &JobId) -> Result<Option<Stored>> {
    if let Some(mut job) = read::<Job>(&base.join(JOB_FILE))? {
        // Every path of a job comes from its id and the share, never from its record (the
        // share is written by tasks too).
        job.id = id.clone();
        job.dirs = JobDirs::under(base.to_path_buf());
        job.rebase_output();
        return Ok(Some(Stored::Ended(Box::new(job))));
    }
    Ok(
        read::<Submitted>(&base.join(REQUEST_FILE))?.map(|submitted| Stored::Unfinished {
            id: id.clone(),
            dirs: JobDirs::under(base.to_path_buf()),
            submitted: Box::new(submitted),
        }),
    )
}

/// Every job with records under `jobs_dir`, in id order. A folder whose
/// records cannot be read is reported and left alone.
pub(crate) fn load(jobs_dir: &Path) -> Vec<Stored> {
    let mut folders: Vec<(JobId, PathBuf)> = match std::fs::read_dir(jobs_dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                // A folder whose name is no job id is none of the master's.
                let name = e.file_name().to_str()?.parse::<JobId>().ok()?;
                name.starts_with("job-").then(|| (name, e.path()))
            })
            .collect(),
        Err(_) => return Vec::new(),
    };
    folders.sort();
    folders
        .into_iter()
        .filter_map(|(id, base)| match load_one(&base, &id) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot read the job's records; left alone");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_core::shuffle::ShuffleSettings;
    use gridmr_scheduler::JobKind;

    fn submitted() -> Submitted {
        Submitted {
            request: JobRequest {
                kind: JobKind::Script("/s/jobs/job-000002/script.py".into()),
                input_path: "/s/in.txt".into(),
                more_inputs: vec!["/s/more".into()],
                params: gridmr_core::Params::new().with("a", "b"),
                partitions: Some(2),
                map_splits: None,
                reduce_partitions: Some(3),
                force_distributed: true,
                shuffle: ShuffleSettings::default(),
                timeout_s: 30,
                map_only: false,
                shuffle_mode: gridmr_core::shuffle::ShuffleMode::Local,
                output_url: Some("s3://results/job-2".into()),
            },
            restarts: 1,
        }
    }

    #[test]
    fn the_journal_keeps_each_attempts_end_over_its_start_and_skips_a_torn_line() {
        use gridmr_scheduler::{Attempt, AttemptState, Phase, TaskId};
        let dir = tempfile::tempdir().unwrap();
        let attempt = |index, number, state| Attempt {
            task: TaskId {
                phase: Phase::Map,
                index,
            },
            number,
            worker: "w1".parse().unwrap(),
            started_ms: 1,
            finished_ms: (state != AttemptState::Running).then_some(2),
            state,
            progress: None,
            late: None,
        };
        let line = |a: Attempt, c: Option<gridmr_core::Counters>| HistoryLine {
            attempt: a,
            counters: c,
        };
        let mut counters = gridmr_core::Counters::default();
        counters.add("gridmr", "map_input_bytes", 7);
        // The end of map 0 lands before its start; map 1 never ended.
        append_history(
            dir.path(),
            &[line(
                attempt(0, 1, AttemptState::Succeeded),
                Some(counters.clone()),
            )],
        )
        .unwrap();
        append_history(
            dir.path(),
            &[
                line(attempt(0, 1, AttemptState::Running), None),
                line(attempt(1, 1, AttemptState::Running), None),
            ],
        )
        .unwrap();
        let path = dir.path().join(HISTORY_FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"attempt\":{\"task\":\"map-0"); // a crash mid-line
        std::fs::write(&path, text).unwrap();
        let read = read_history(dir.path());
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].attempt.state, AttemptState::Succeeded);
        assert_eq!(read[0].counters.as_ref(), Some(&counters));
        assert_eq!(read[1].attempt.state, AttemptState::Unknown);
    }

    #[test]
    fn a_purge_outlasts_a_writer_still_adding_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("job-000009");
        std::fs::create_dir_all(base.join("out")).unwrap();
        let writer = {
            let base = base.clone();
            std::thread::spawn(move || {
                // As the saver's temporary record would: files appearing
                // while the folder is being removed (until it is gone).
                for i in 0..2000 {
                    let _ = std::fs::write(base.join(format!("rec-{i}.tmp")), b"x");
                }
            })
        };
        purge(&base).unwrap();
        writer.join().unwrap();
        // The writer may have ended before the purge did: either way the
        // folder is gone, or holds only what came after (then purge again).
        purge(&base).unwrap();
        assert!(!base.exists());
    }

    #[test]
    fn requests_read_back_and_unreadable_or_forgotten_folders_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path();
        for id in ["job-000002", "job-000001", "job-000003", "job-000004"] {
            std::fs::create_dir(jobs.join(id)).unwrap();
        }
        save_request(&jobs.join("job-000002"), &submitted()).unwrap();
        // Purging a folder that is already gone is not an error.
        purge(&jobs.join("job-000077")).unwrap();
        save_request(&jobs.join("job-000001"), &submitted()).unwrap();
        std::fs::write(jobs.join("job-000003").join(REQUEST_FILE), "{not json").unwrap();
        save_request(&jobs.join("job-000004"), &submitted()).unwrap();
        forget(&jobs.join("job-000004"));
        let ids: Vec<JobId> = load(jobs)
            .into_iter()
            .map(|s| match s {
                Stored::Unfinished {
                    id,
                    submitted,
                    dirs,
                } => {
                    assert_eq!(submitted.restarts, 1);
                    assert_eq!(submitted.request.reduce_partitions, Some(3));
                    assert_eq!(dirs.shuffle, jobs.join(&id).join("shuffle"));
                    id
                }
                Stored::Ended(j) => panic!("{} has not ended", j.id),
            })
            .collect();
        assert_eq!(ids, ["job-000001", "job-000002"]);
        let leftovers: Vec<_> = std::fs::read_dir(jobs.join("job-000001"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, [REQUEST_FILE], "no temporary file left");
    }
}
