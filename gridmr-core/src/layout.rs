//! Every file and task name of a job, in one place. The engine, the master,
//! the workers and the script executors name files only through this
//! module.
//!
//! ```text
//! <job>/shuffle/map-NNNNN-aA.index   a map attempt's output: its index,
//! <job>/shuffle/map-NNNNN-aA.data    and the data file the index names
//! <job>/out/_attempts/part-r-NNNNN-aA         a reduce attempt's part file
//! <job>/out/_attempts/part-m-NNNNN-aA         a map-only attempt's part file
//! <job>/out/_attempts/part-r-00000-aA         a script SINGLE attempt's output
//! <job>/out/_attempts/side-files-part-r-00000-aA   the files its process() wrote beside it
//! <job>/out/_attempts/single-aA/part-r-00000  a typed SINGLE attempt's output
//! <job>/single-aA/                            a SINGLE attempt's working folder
//! <job>/work/<attempt>/                        a script attempt's working folder
//! <job>/logs/<task>-aA.log                    an attempt's log (its stderr)
//! <job>/out/part-r-NNNNN | part-m-NNNNN, result.txt, _SUCCESS   committed
//! ```
//!
//! With the worker-served shuffle (`SHUFFLE=local`) map outputs live on the
//! worker that ran them, below its own folder (`WORKER_DIR`), not the share:
//!
//! ```text
//! <worker>/shuffle/<job>/map-NNNNN-aA.index|.data    a map attempt's output, served to reducers
//! <worker>/fetch/<job>/reduce-NNNNN-aA/map-NNNNN.*   segments a reduce attempt fetched
//! ```
//!
//! Task names: `map-NNNNN`, `reduce-NNNNN`, `single`; attempts are numbered
//! from 1, and every file an attempt writes carries its number, so two
//! attempts of one task never write the same file.

use std::path::{Path, PathBuf};

/// The folder of uncommitted attempt files inside an output folder.
pub const ATTEMPTS_DIR: &str = "_attempts";

/// The one task of a SINGLE-mode job.
pub const SINGLE_TASK: &str = "single";

/// A worker's folder of the map outputs it keeps for `job`
/// (`<worker>/shuffle/<job>`, `SHUFFLE=local`).
pub fn local_shuffle_dir(worker_dir: &Path, job: &crate::ids::JobId) -> PathBuf {
    worker_dir.join("shuffle").join(job.as_str())
}

/// A worker's folder of the segments one reduce attempt fetched
/// (`<worker>/fetch/<job>/reduce-NNNNN-aA`).
pub fn fetch_dir(
    worker_dir: &Path,
    job: &crate::ids::JobId,
    attempt: crate::ids::AttemptId,
) -> PathBuf {
    worker_dir
        .join("fetch")
        .join(job.as_str())
        .join(attempt.to_string())
}

/// `map-NNNNN`.
pub fn map_task(index: u32) -> String {
    crate::ids::TaskId::new(crate::ids::Phase::Map, index).to_string()
}

/// `reduce-NNNNN`.
pub fn reduce_task(partition: u32) -> String {
    crate::ids::TaskId::new(crate::ids::Phase::Reduce, partition).to_string()
}

/// `part-r-NNNNN`, Hadoop's name for reduce output `partition`.
///
/// ```
/// assert_eq!(gridmr_core::layout::part_r(3), "part-r-00003");
/// ```
pub fn part_r(partition: u32) -> String {
    format!("part-r-{partition:05}")
}

/// `part-m-NNNNN`, Hadoop's name for the output of map-only task `index`.
pub fn part_m(index: u32) -> String {
    format!("part-m-{index:05}")
}

/// Whether `name` is a committed part's name: `part-r-NNNNN` or `part-m-NNNNN`.
///
/// ```
/// use gridmr_core::layout::is_part_name;
/// assert!(is_part_name("part-r-00001") && is_part_name("part-m-12345"));
/// assert!(!is_part_name("part-r-1") && !is_part_name("../part-r-00001") && !is_part_name("part-r-0000a"));
/// ```
pub fn is_part_name(name: &str) -> bool {
    let digits = name
        .strip_prefix("part-r-")
        .or_else(|| name.strip_prefix("part-m-"));
    digits.is_some_and(|d| d.len() == 5 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` is one an output folder keeps for itself (`part-*`, `result.txt`,
/// `_SUCCESS`, `_attempts` and any other `_*` or `.*`): a job's side files never take it.
///
/// ```
/// use gridmr_core::layout::is_reserved_output_name;
/// assert!(is_reserved_output_name("result.txt") && is_reserved_output_name("_SUCCESS"));
/// assert!(is_reserved_output_name("part-r-00000") && is_reserved_output_name(".hidden"));
/// assert!(!is_reserved_output_name("stats.json"));
/// ```
pub fn is_reserved_output_name(name: &str) -> bool {
    name.starts_with('_')
        || name.starts_with('.')
        || name.starts_with("part-")
        || name == crate::commit::RESULT_FILE
}

/// The folder of the side files an attempt wrote beside its part file `attempt_file`
/// (`_attempts/part-r-00000-aA` → `_attempts/side-files-part-r-00000-aA`): what a script
/// SINGLE job's `process()` left beside its result, moved into the output folder when the
/// commit picks that attempt, and removed with `_attempts` when it does not.
pub fn side_files_dir(attempt_file: &Path) -> PathBuf {
    let name = attempt_file
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    attempt_file.with_file_name(format!("side-files-{name}"))
}

/// `<name>-aA`: the name of attempt `attempt`'s copy of `name`.
/// ([`AttemptId`](crate::ids::AttemptId)'s string form, for a task's name.)
pub fn attempt_name(name: &str, attempt: u32) -> String {
    format!("{name}-a{attempt}")
}

/// The attempt folder of an output folder.
pub fn attempts_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(ATTEMPTS_DIR)
}

/// A reduce attempt's part file: `<out>/_attempts/part-r-NNNNN-aA`.
pub fn reduce_attempt_file(out_dir: &Path, partition: u32, attempt: u32) -> PathBuf {
    attempts_dir(out_dir).join(attempt_name(&part_r(partition), attempt))
}

/// A map-only attempt's part file: `<out>/_attempts/part-m-NNNNN-aA`.
pub fn map_only_attempt_file(out_dir: &Path, index: u32, attempt: u32) -> PathBuf {
    attempts_dir(out_dir).join(attempt_name(&part_m(index), attempt))
}

/// A typed SINGLE attempt's engine output folder:
/// `<out>/_attempts/single-aA`.
pub fn single_attempt_dir(out_dir: &Path, attempt: u32) -> PathBuf {
    attempts_dir(out_dir).join(attempt_name(SINGLE_TASK, attempt))
}

/// Whether `dir` is a typed SINGLE attempt's output folder.
pub fn is_single_attempt_dir(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("single-a"))
}

/// A SINGLE attempt's working folder: `<job>/single-aA`.
pub fn single_work_dir(job_dir: &Path, attempt: u32) -> PathBuf {
    job_dir.join(attempt_name(SINGLE_TASK, attempt))
}

/// The folder of a job's map outputs: `<job>/shuffle`.
pub fn shuffle_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("shuffle")
}

/// The folder of a job's output: `<job>/out`.
pub fn out_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("out")
}

/// The parent of script attempts' working folders: `<job>/work`.
pub fn work_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("work")
}

/// The folder of a job's attempt logs: `<job>/logs`.
pub fn logs_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("logs")
}

/// An attempt's own log (the stderr of its processes):
/// `<job>/logs/<task>-aA.log`.
pub fn attempt_log(job_dir: &Path, attempt: crate::ids::AttemptId) -> PathBuf {
    logs_dir(job_dir).join(format!("{attempt}.log"))
}

/// A map attempt's output: its index file and the data file beside it.
///
/// ```
/// use gridmr_core::layout::MapOutput;
/// let out = MapOutput::of_attempt("/j/shuffle".as_ref(), 3, 2);
/// assert_eq!(out.index(), std::path::Path::new("/j/shuffle/map-00003-a2.index"));
/// assert_eq!(out.data(), std::path::PathBuf::from("/j/shuffle/map-00003-a2.data"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOutput {
    index: PathBuf,
}

impl MapOutput {
    /// The output whose index file is `index`.
    pub fn new(index: impl Into<PathBuf>) -> Self {
        MapOutput {
            index: index.into(),
        }
    }

    /// Attempt `attempt` of map `index` in `shuffle_dir`.
    pub fn of_attempt(shuffle_dir: &Path, index: u32, attempt: u32) -> Self {
        Self::new(shuffle_dir.join(format!("{}.index", attempt_name(&map_task(index), attempt))))
    }

    /// The file-name stem of attempt `attempt` of map `index`
    /// (`map-NNNNN-aA`), which the map's sink completes with `.index` and
    /// `.data`.
    pub fn stem(index: u32, attempt: u32) -> String {
        attempt_name(&map_task(index), attempt)
    }

    /// The map index a file name `map-NNNNN-aA.index` belongs to.
    pub fn map_index_of(name: &str) -> Option<u32> {
        name.strip_prefix("map-")
            .filter(|n| n.ends_with(".index"))
            .and_then(|n| n.split('-').next())
            .and_then(|n| n.parse().ok())
    }

    /// The map and attempt of an index file's plain name, only when `name`
    /// is exactly what [`MapOutput::stem`] makes plus `.index` (so a name
    /// read from a message can be joined to a folder safely).
    ///
    /// ```
    /// use gridmr_core::layout::MapOutput;
    /// assert_eq!(MapOutput::parse_index_name("map-00003-a2.index"), Some((3, 2)));
    /// assert_eq!(MapOutput::parse_index_name("map-3-a2.index"), None);
    /// assert_eq!(MapOutput::parse_index_name("../map-00003-a2.index"), None);
    /// ```
    pub fn parse_index_name(name: &str) -> Option<(u32, u32)> {
        let map = Self::map_index_of(name)?;
        let attempt = Self::attempt_of(name)?;
        (format!("{}.index", Self::stem(map, attempt)) == name).then_some((map, attempt))
    }

    /// The attempt a file name `map-NNNNN-aA.index` belongs to.
    ///
    /// ```
    /// use gridmr_core::layout::MapOutput;
    /// assert_eq!(MapOutput::attempt_of("map-00003-a1002.index"), Some(1002));
    /// assert_eq!(MapOutput::attempt_of("map-00003-a2.data"), None);
    /// ```
    pub fn attempt_of(name: &str) -> Option<u32> {
        name.strip_prefix("map-")?
            .strip_suffix(".index")?
            .split_once("-a")?
            .1
            .parse()
            .ok()
    }

    /// The index file.
    pub fn index(&self) -> &Path {
        &self.index
    }

    /// The data file (the sink writes it beside the index, same stem).
    pub fn data(&self) -> PathBuf {
        self.index.with_extension("data")
    }

    /// Removes both files (missing ones are no error).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(self.data());
        let _ = std::fs::remove_file(&self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        let out = MapOutput::of_attempt(Path::new("/s"), 12, 3);
        let name = out.index().file_name().unwrap().to_str().unwrap();
        assert_eq!(MapOutput::map_index_of(name), Some(12));
        assert_eq!(MapOutput::map_index_of("map-00012-a3.data"), None);
        assert_eq!(
            reduce_attempt_file(Path::new("/o"), 1, 2),
            PathBuf::from("/o/_attempts/part-r-00001-a2")
        );
        assert!(is_single_attempt_dir(&single_attempt_dir(
            Path::new("/o"),
            4
        )));
        assert_eq!(
            single_work_dir(Path::new("/j"), 4),
            PathBuf::from("/j/single-a4")
        );
    }
}
