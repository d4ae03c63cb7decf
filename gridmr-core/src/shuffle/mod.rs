//! The shuffle: map output buffered under a byte budget, spilled as sorted runs, merged into one
//! data file and one index per map task, and merged again, streaming, by each reduce task.
//!
//! See `docs/architecture.md` for the byte layout, and [`format`](mod@format) for the reference.

mod field;
pub(crate) mod format;
pub(crate) mod merge;
pub(crate) mod order;
mod sink;

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
