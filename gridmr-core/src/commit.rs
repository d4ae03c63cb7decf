//! The output committer: turns successful task attempts into a job's final output.
//!
//! A reduce attempt's file is renamed to `part-r-NNNNN` (an atomic rename within one folder, also
//! on NFS). When every partition is committed, `result.txt` (the parts joined in name order, the
//! original GridMR's result) is written under a temporary name and renamed, the attempts folder
//! is removed, and `_SUCCESS` is written **last**: its presence means the output is complete.
//!
//! `result.txt` is a copy of the whole output, made for the original's small results; past a
//! size ([`DEFAULT_RESULT_MAX_BYTES`] unless set) it is not written, and the part files, as in
//! Hadoop and Spark, are the output (the master streams them, joined, as the result).

use crate::error::{Error, Result};
use crate::task::{part_file_name, ATTEMPTS_DIR};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The marker file of a complete output.
pub const SUCCESS_FILE: &str = "_SUCCESS";
/// The joined result file.
pub const RESULT_FILE: &str = "result.txt";

/// The largest output joined into `result.txt` unless a job says otherwise: 256 MiB.
pub const DEFAULT_RESULT_MAX_BYTES: u64 = 256 << 20;

/// Commits a reduce attempt's file as partition `partition` of `output_dir`.
pub fn commit_reduce(attempt_file: &Path, output_dir: &Path, partition: u32) -> Result<PathBuf> {
    let dest = output_dir.join(part_file_name(partition));
    std::fs::rename(attempt_file, &dest).map_err(|e| Error::io("rename", attempt_file, e))?;
    Ok(dest)
}

/// Completes `output_dir` once all `partitions` parts are committed: writes `result.txt` if
/// the parts hold at most `result_max_bytes`, removes uncommitted attempts, and writes
/// `_SUCCESS` last. Returns the result file's path, if it wrote one.
pub fn finalize_output(
    output_dir: &Path,
    partitions: u32,
    result_max_bytes: u64,
) -> Result<Option<PathBuf>> {
    let names: Vec<String> = (0..partitions).map(part_file_name).collect();
    finalize_parts(output_dir, &names, result_max_bytes)
}

/// Like [`finalize_output`] for parts with other names (a map-only job's
/// `part-m-NNNNN`): joins `names` in the order given into `result.txt` (when they hold at most
/// `result_max_bytes`), removes the attempts folder, and writes `_SUCCESS` last.
pub fn finalize_parts(
    output_dir: &Path,
    names: &[String],
    result_max_bytes: u64,
) -> Result<Option<PathBuf>> {
    let mut size = 0u64;
    for name in names {
        let part = output_dir.join(name);
        size += std::fs::metadata(&part)
            .map_err(|e| Error::io("stat", &part, e))?
            .len();
    }
    let result = (size <= result_max_bytes)
        .then(|| join_parts(output_dir, names))
        .transpose()?;
    let attempts = output_dir.join(ATTEMPTS_DIR);
    if attempts.exists() {
        std::fs::remove_dir_all(&attempts).map_err(|e| Error::io("remove", &attempts, e))?;
    }
    let success = output_dir.join(SUCCESS_FILE);
    File::create(&success).map_err(|e| Error::io("create", &success, e))?;
    Ok(result)
}

/// Writes `result.txt`: the parts `names`, joined in order, under a temporary name first.
fn join_parts(output_dir: &Path, names: &[String]) -> Result<PathBuf> {
    let result = output_dir.join(RESULT_FILE);
    let tmp = output_dir.join(format!(".{RESULT_FILE}.tmp"));
    let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for name in names {
        let part = output_dir.join(name);
        let mut input = File::open(&part).map_err(|e| Error::io("open", &part, e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| Error::io("copy", &part, e))?;
    }
    out.flush().map_err(|e| Error::io("write", &tmp, e))?;
    drop(out);
    std::fs::rename(&tmp, &result).map_err(|e| Error::io("rename", &tmp, e))?;
    Ok(result)
}

/// True when `output_dir` holds a complete output.
pub fn is_complete(output_dir: &Path) -> bool {
    output_dir.join(SUCCESS_FILE).is_file()
}
