//! The shuffle: map output buffered under a byte budget, spilled as sorted runs, merged into one
//! data file and one index per map task, and merged again, streaming, by each reduce task.
//!
//! See `docs/architecture.md` for the byte layout, and [`format`](mod@format) for the reference.

mod fetched;
mod field;
pub(crate) mod format;
pub(crate) mod merge;
pub(crate) mod order;
mod sink;

pub use fetched::{BlockCheck, FetchedRun};
pub use format::{Compression, RunIndex, RunWriter, SegmentReader};
pub use merge::{Groups, KWayMerge, RawGroups, RawMerge};
pub use order::RawOrder;
pub use sink::{MapSink, SinkTarget};

use serde::{Deserialize, Serialize};

/// How a job's shuffle behaves. Every field has a sensible default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuffleSettings {
    /// The map buffer's byte budget per task (Hadoop's `mapreduce.task.io.sort.mb`): over it the
    /// buffer is sorted and spilled. Default 64 MiB.
    pub sort_buffer_bytes: u64,
    /// The most runs merged at once (Hadoop's `io.sort.factor`). Default 64.
    pub merge_factor: usize,
    /// Block compression. Default none.
    pub compression: Compression,
    /// Target uncompressed block size. Default 128 KiB.
    pub block_bytes: usize,
}

impl Default for ShuffleSettings {
    fn default() -> Self {
        ShuffleSettings {
            sort_buffer_bytes: 64 << 20,
            merge_factor: 64,
            compression: Compression::None,
            block_bytes: 128 << 10,
        }
    }
}

/// Where a cluster job's map outputs are kept between its map and reduce
/// phases.
///
/// ```
/// use gridmr_core::shuffle::ShuffleMode;
/// assert_eq!("local".parse::<ShuffleMode>(), Ok(ShuffleMode::Local));
/// assert_eq!(ShuffleMode::default().to_string(), "shared");
/// assert!("nfs".parse::<ShuffleMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShuffleMode {
    /// In the shared folder, written by maps and read by reduces (the
    /// original's layout; the default).
    #[default]
    Shared,
    /// On the disk of the worker that ran the map, served by it to the
    /// reduces, which fetch their segments worker to worker.
    Local,
}

impl std::fmt::Display for ShuffleMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShuffleMode::Shared => "shared",
            ShuffleMode::Local => "local",
        })
    }
}

/// A shuffle mode that is neither `shared` nor `local`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown shuffle mode {0:?}: `shared` or `local`")]
pub struct UnknownShuffleMode(pub String);

impl std::str::FromStr for ShuffleMode {
    type Err = UnknownShuffleMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "shared" => Ok(ShuffleMode::Shared),
            "local" => Ok(ShuffleMode::Local),
            _ => Err(UnknownShuffleMode(s.to_owned())),
        }
    }
}
