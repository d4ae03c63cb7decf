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

use super::jobs::{Job, JobDirs};
use super::state::{JobRequest, Plan};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A job's request, written at submission.
pub(crate) const REQUEST_FILE: &str = "request.json";
/// An ended job, written once it has ended.
pub(crate) const JOB_FILE: &str = "job.json";
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
        id: String,
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

/// Writes an ended job's `job.json`.
pub(crate) fn save_plan(base: &Path, plan: &Plan) -> Result<()> {
    let path = base.join(PLAN_FILE);
    write_atomic(&path, &to_json(plan, &path)?)
}

/// The job's plan, if it was prepared and the file reads back.
pub(crate) fn read_plan(base: &Path) -> Option<Plan> {
    read::<Plan>(&base.join(PLAN_FILE)).ok().flatten()
}

pub(crate) fn save_ended(job: &Job) -> Result<()> {
    let path = job.dirs.base.join(JOB_FILE);
    write_atomic(&path, &to_json(job, &path)?)
}

/// Removes a job's records (a deleted job must not come back).
pub(crate) fn forget(base: &Path) {
    for name in [JOB_FILE, REQUEST_FILE, PLAN_FILE] {
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
fn load_one(base: &Path, id: &str) -> Result<Option<Stored>> {
    if let Some(job) = read::<Job>(&base.join(JOB_FILE))? {
        return Ok(Some(Stored::Ended(Box::new(job))));
    }
    Ok(
        read::<Submitted>(&base.join(REQUEST_FILE))?.map(|submitted| Stored::Unfinished {
            id: id.to_owned(),
            dirs: JobDirs::under(base.to_path_buf()),
            submitted: Box::new(submitted),
        }),
    )
}

/// Every job with records under `jobs_dir`, in id order. A folder whose
/// records cannot be read is reported and left alone.
pub(crate) fn load(jobs_dir: &Path) -> Vec<Stored> {
    let mut folders: Vec<(String, PathBuf)> = match std::fs::read_dir(jobs_dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
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
    use crate::master::jobs::JobKind;
    use gridmr_core::shuffle::ShuffleSettings;

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
            },
            restarts: 1,
        }
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
        let ids: Vec<String> = load(jobs)
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
