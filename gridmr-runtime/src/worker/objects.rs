//! A task attempt's side of object inputs and outputs (`crate::objstore`).
//!
//! - A map whose split lies in an object store reads it first, with ranged GETs, into a file
//!   in the attempt's own folder on the worker (`WORKER_DIR`), and runs over that file.
//! - A reduce (or a map-only map) of a job whose output is an object prefix writes its part
//!   into the attempt's folder, uploads it without completing the upload, and leaves the
//!   upload's pending record where its file would have been on the share; the job's commit
//!   completes it.
//!
//! The attempt's folder is removed however the attempt ends ([`FetchDir`] on drop).

use super::failure::Failure;
use super::shuffle::store::{FetchDir, LocalStore};
use crate::objstore::output::{abort, upload_pending, write_pending};
use crate::objstore::{input::fetch_split, ObjectStores, ObjectUrl};
use gridmr_core::ids::AttemptId;
use gridmr_core::input::InputSplit;
use gridmr_core::{layout, JobId};
use std::path::{Path, PathBuf};
use tokio::runtime::Handle;

/// The attempt's folder on this worker, for an input read from or an output bound for an
/// object store.
pub(crate) fn attempt_dir(
    store: &LocalStore,
    job: &JobId,
    attempt: AttemptId,
) -> Result<FetchDir, Failure> {
    store
        .staging_dir(job, attempt)
        .map_err(|e| Failure::engine(e.to_string()))
}

/// Reads `split` (an object's byte range) into `dir` and returns the split of the same lines
/// there.
pub(crate) fn fetch_input(
    runtime: &Handle,
    objects: &ObjectStores,
    dir: &FetchDir,
    split: &InputSplit,
) -> Result<InputSplit, Failure> {
    // A compressed object keeps its name's ending, to be read decompressed.
    let suffix = gridmr_core::input::Codec::of(&split.path).map_or("", |c| c.suffix());
    let dest = dir.path().join(format!("input{suffix}"));
    runtime
        .block_on(fetch_split(objects, split, &dest))
        .map_err(|e| Failure::engine(format!("reading the input: {e}")))
}

/// Where an attempt bound for an object store writes its output folder's files: `out/` in its
/// folder, with the `_attempts` folder attempts write into.
pub(crate) fn staging_out(dir: &FetchDir) -> Result<PathBuf, Failure> {
    let out = dir.path().join("out");
    let staged = dir.path();
    for d in [
        layout::attempts_dir(&out),
        layout::logs_dir(staged),
        layout::work_dir(staged),
    ] {
        std::fs::create_dir_all(&d)
            .map_err(|e| Failure::engine(format!("cannot create {}: {e}", d.display())))?;
    }
    Ok(out)
}

/// Uploads the attempt's part `local` (`…/_attempts/part-r-NNNNN-aA`) to its final name below
/// `output_url`, leaving the upload incomplete, and writes the upload's pending record to the
/// same name in `share_out`'s attempts folder; returns that record's path, the attempt's
/// output as the master knows it.
pub(crate) fn publish(
    runtime: &Handle,
    objects: &ObjectStores,
    output_url: &ObjectUrl,
    local: &Path,
    share_out: &Path,
) -> Result<PathBuf, Failure> {
    let name = local
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::engine(format!("{} has no name", local.display())))?;
    let part = name
        .rsplit_once("-a")
        .map(|(p, _)| p)
        .filter(|p| layout::is_part_name(p))
        .ok_or_else(|| Failure::engine(format!("{name} is not an attempt's part")))?;
    let url = output_url.join(part);
    let pending = runtime
        .block_on(upload_pending(objects, &url, local))
        .map_err(|e| Failure::engine(format!("uploading the output: {e}")))?;
    let record = layout::attempts_dir(share_out).join(name);
    if let Err(e) = write_pending(&record, &pending) {
        runtime.block_on(abort(objects, &url, &pending));
        return Err(Failure::engine(format!("recording the upload: {e}")));
    }
    let _ = std::fs::remove_file(local);
    Ok(record)
}

/// Appends what a script attempt staged in `dir` logged (its standard error, written below
/// the staging folder's parent as to a job folder's `logs/`) to the attempt's log on the
/// share, so that it outlives the folder.
pub(crate) fn keep_log(dir: &FetchDir, attempt: AttemptId, share_log: &Path) {
    let staged = layout::attempt_log(dir.path(), attempt);
    let Ok(bytes) = std::fs::read(&staged) else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(share_log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes));
    if let Err(e) = appended {
        tracing::debug!(log = %share_log.display(), error = %e, "cannot keep a staged attempt's log");
    }
}
