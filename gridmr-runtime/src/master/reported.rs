//! What a worker reports is checked before the scheduler believes it: an
//! attempt's output must be one the master planned for that attempt, a
//! regular file, and resolve inside the job's folder. Nothing a message
//! names is trusted further.

use gridmr_core::layout;
use std::path::{Path, PathBuf};

/// Why a reported output was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadOutput {
    /// The worker named a file the master did not plan for the attempt.
    #[error("the worker reported output {:?}, which is not this attempt's ({})",
        .reported.display().to_string(), alternatives(.expected))]
    NotPlanned {
        reported: PathBuf,
        expected: Vec<PathBuf>,
    },
    /// The file (or the job's folder) cannot be looked at.
    #[error("reported output {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is a link, a folder or a device.
    #[error("reported output {} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// The file resolves outside the job's folder.
    #[error("reported output {} resolves outside the job's folder", .0.display())]
    Outside(PathBuf),
    /// The check itself broke (its thread panicked).
    #[error("checking the reported output: {0}")]
    Internal(String),
}

fn alternatives(expected: &[PathBuf]) -> String {
    expected
        .iter()
        .map(|e| e.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> BadOutput + '_ {
    move |source| BadOutput::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks an output a worker reported: one of `expected`, a regular file
/// (no symbolic link; a map's data file too), inside `job_dir`.
pub(crate) fn verify_output(
    output: &Path,
    expected: &[PathBuf],
    job_dir: &Path,
) -> Result<(), BadOutput> {
    if !expected.iter().any(|e| e == output) {
        return Err(BadOutput::NotPlanned {
            reported: output.to_path_buf(),
            expected: expected.to_vec(),
        });
    }
    // A map output its worker keeps (`SHUFFLE=local`) is a plain name there,
    // and the master has nothing to look at: a reduce that cannot fetch it
    // reports it lost, and the map runs again.
    if output.is_relative() {
        return Ok(());
    }
    let mut files = vec![output.to_path_buf()];
    if output.extension().is_some_and(|e| e == "index") {
        files.push(layout::MapOutput::new(output).data());
    }
    let base = job_dir.canonicalize().map_err(unreadable(job_dir))?;
    for f in files {
        let meta = f.symlink_metadata().map_err(unreadable(&f))?;
        if !meta.file_type().is_file() {
            return Err(BadOutput::NotAFile(f));
        }
        let resolved = f.canonicalize().map_err(unreadable(&f))?;
        if !resolved.starts_with(&base) {
            return Err(BadOutput::Outside(f));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_planned_regular_file_inside_the_job_is_believed() {
        let job = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let part = job.path().join("part-r-00000-a1");
        std::fs::write(&part, "x").unwrap();
        let planned = vec![part.clone()];
        assert!(verify_output(&part, &planned, job.path()).is_ok());
        // A file the master did not plan.
        let stray = job.path().join("part-r-00001-a1");
        std::fs::write(&stray, "x").unwrap();
        let e = verify_output(&stray, &planned, job.path()).unwrap_err();
        assert!(matches!(e, BadOutput::NotPlanned { .. }), "{e}");
        // A planned name that is a link to a file outside.
        let secret = other.path().join("secret");
        std::fs::write(&secret, "s").unwrap();
        let link = job.path().join("part-r-00002-a1");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = verify_output(&link, std::slice::from_ref(&link), job.path()).unwrap_err();
        assert!(matches!(e, BadOutput::NotAFile(_)), "{e}");
        // A planned name that does not exist.
        let missing = job.path().join("part-r-00003-a1");
        let e = verify_output(&missing, std::slice::from_ref(&missing), job.path()).unwrap_err();
        assert!(matches!(e, BadOutput::Unreadable { .. }), "{e}");
        // A map's index whose data file is missing.
        let index = job.path().join("map-00000-a1.index");
        std::fs::write(&index, "i").unwrap();
        let e = verify_output(&index, std::slice::from_ref(&index), job.path()).unwrap_err();
        assert!(matches!(e, BadOutput::Unreadable { .. }), "{e}");
    }
}
