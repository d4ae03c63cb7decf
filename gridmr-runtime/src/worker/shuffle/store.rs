//! The map outputs a worker keeps on its own disk (`SHUFFLE=local`), and
//! the segments its reduces fetch: one owner for both folders.
//!
//! ```text
//! <WORKER_DIR>/shuffle/<job>/map-NNNNN-aA.index|.data   kept, served to reducers
//! <WORKER_DIR>/fetch/<job>/reduce-NNNNN-aA/map-NNNNN.*  fetched by a reduce attempt
//! ```
//!
//! A job's folders go when its master says the job ended (`DropShuffle`);
//! a job dropped here never gets its folder back (a late map attempt fails
//! at its first file, as on the share). Folders of jobs no master ever
//! ended are removed once untouched for `SHUFFLE_RETAIN_S`.

use gridmr_core::layout;
use gridmr_core::{AttemptId, JobId};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Most dropped job ids remembered (the oldest are forgotten first).
const DROPPED_KEPT: usize = 4096;

/// Why a job's folder cannot be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The job's outputs were dropped: it has ended.
    #[error("job {0} has ended: its map outputs were dropped on this worker")]
    Dropped(JobId),
    /// The folder cannot be made.
    #[error("cannot create {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Job ids dropped, oldest first, bounded.
#[derive(Default)]
struct Dropped {
    order: VecDeque<JobId>,
    set: HashSet<JobId>,
}

impl Dropped {
    fn insert(&mut self, job: &JobId) {
        if self.set.insert(job.clone()) {
            self.order.push_back(job.clone());
            if self.order.len() > DROPPED_KEPT {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// A worker's own shuffle folders.
pub(crate) struct LocalStore {
    root: PathBuf,
    dropped: Mutex<Dropped>,
    /// `<root>/lock`, locked for as long as this worker runs: two workers
    /// never share a folder (one would remove what the other serves).
    lock: Mutex<Option<std::fs::File>>,
}

impl LocalStore {
    /// Opens (creating, mode 0700) the worker's folder `root`, and locks
    /// it: a folder another running worker holds is refused.
    pub(crate) fn open(root: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        for dir in [root.to_path_buf(), root.join("shuffle"), root.join("fetch")] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| {
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!("another worker uses this folder ({e}); give each worker its own WORKER_DIR"),
                )
            },
        )?;
        Ok(LocalStore {
            root: root.canonicalize()?,
            dropped: Mutex::new(Dropped::default()),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Lets another worker have the folder (this one has stopped).
    pub(crate) fn unlock(&self) {
        if let Ok(mut lock) = self.lock.lock() {
            lock.take();
        }
    }

    /// The worker's folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the folder a map attempt of `job` writes its output into.
    pub(crate) fn prepare(&self, job: &JobId) -> Result<PathBuf, StoreError> {
        // Held while the folder is made, so that a drop cannot come between
        // the check and the folder (and leave it behind).
        let dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        if dropped.set.contains(job) {
            return Err(StoreError::Dropped(job.clone()));
        }
        let dir = layout::local_shuffle_dir(&self.root, job);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// A kept map output's index: `name` must be an index file's plain name
    /// (`map-NNNNN-aA.index`), so nothing a message names can leave the
    /// job's folder.
    pub(crate) fn index_path(&self, job: &JobId, name: &str) -> Option<PathBuf> {
        layout::MapOutput::parse_index_name(name)?;
        Some(layout::local_shuffle_dir(&self.root, job).join(name))
    }

    /// A fresh folder for the segments reduce attempt `attempt` fetches.
    pub(crate) fn fetch_dir(
        &self,
        job: &JobId,
        attempt: AttemptId,
    ) -> Result<FetchDir, StoreError> {
        self.attempt_folder(job, layout::fetch_dir(&self.root, job, attempt))
    }

    /// A fresh folder of its own for one attempt of `job` reading an input from or writing an
    /// output for an object store (`<fetch>/<job>/<attempt>-staged`), removed with the job's
    /// as [`LocalStore::fetch_dir`]'s are, and on drop.
    pub(crate) fn staging_dir(
        &self,
        job: &JobId,
        attempt: AttemptId,
    ) -> Result<FetchDir, StoreError> {
        let dir = layout::fetch_dir(&self.root, job, attempt);
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push("-staged");
        self.attempt_folder(job, dir.with_file_name(name))
    }

    fn attempt_folder(&self, job: &JobId, dir: PathBuf) -> Result<FetchDir, StoreError> {
        let dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        if dropped.set.contains(job) {
            return Err(StoreError::Dropped(job.clone()));
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(FetchDir { dir })
    }

    /// Removes everything kept for `job` (it ended), and remembers that it
    /// did. Returns the bytes removed.
    pub(crate) fn drop_job(&self, job: &JobId) -> u64 {
        // Held while the folders go: no folder of the job is made meanwhile.
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        dropped.insert(job);
        let mut bytes = 0;
        for dir in [
            layout::local_shuffle_dir(&self.root, job),
            self.root.join("fetch").join(job.as_str()),
        ] {
            bytes += size_of(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
        bytes
    }

    /// Removes the folders of jobs untouched for `retain` (their master
    /// never said they ended). Returns how many went.
    pub(crate) fn sweep(&self, retain: Duration) -> usize {
        let now = SystemTime::now();
        let mut removed = 0;
        for area in ["shuffle", "fetch"] {
            let Ok(entries) = std::fs::read_dir(self.root.join(area)) else {
                continue;
            };
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age >= retain);
                if old && std::fs::remove_dir_all(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Bytes of the files in `dir` (one level: a job's folder holds files).
fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// One reduce attempt's folder of fetched segments, removed when dropped:
/// whatever way the attempt ends, nothing it fetched stays.
pub(crate) struct FetchDir {
    dir: PathBuf,
}

impl FetchDir {
    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for FetchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_core::{Phase, TaskId};

    #[test]
    fn a_dropped_job_loses_its_outputs_and_never_gets_its_folder_back() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&root.path().join("w")).unwrap();
        let e = LocalStore::open(&root.path().join("w")).err().unwrap();
        assert!(e.to_string().contains("another worker"), "{e}");
        let e = LocalStore::open(&root.path().join("w")).err().unwrap();
        assert!(e.to_string().contains("another worker"), "{e}");
        let job: JobId = "job-000001".parse().unwrap();
        let dir = store.prepare(&job).unwrap();
        std::fs::write(dir.join("map-00000-a1.data"), vec![0u8; 100]).unwrap();
        assert_eq!(
            store.index_path(&job, "map-00000-a1.index"),
            Some(dir.join("map-00000-a1.index"))
        );
        assert_eq!(store.index_path(&job, "../../etc/passwd"), None);
        assert_eq!(store.index_path(&job, "map-00000-a1.data"), None);
        let attempt = gridmr_core::AttemptId::new(TaskId::new(Phase::Reduce, 0), 1);
        let fetched = store.fetch_dir(&job, attempt).unwrap();
        assert!(fetched.path().is_dir());
        drop(fetched);
        assert!(
            !layout::fetch_dir(store.root(), &job, attempt).exists(),
            "removed on drop"
        );
        assert_eq!(store.drop_job(&job), 100);
        assert!(!dir.exists());
        assert!(matches!(store.prepare(&job), Err(StoreError::Dropped(_))));
        assert!(store.fetch_dir(&job, attempt).is_err());
        // Another job is untouched; the sweep takes only what is old.
        let other: JobId = "job-000002".parse().unwrap();
        let kept = store.prepare(&other).unwrap();
        assert_eq!(store.sweep(Duration::from_secs(3600)), 0);
        assert!(kept.exists());
        assert_eq!(store.sweep(Duration::ZERO), 1);
        assert!(!kept.exists());
        // Once it has stopped, another worker may take the folder over.
        store.unlock();
        assert!(LocalStore::open(&root.path().join("w")).is_ok());
    }
}
