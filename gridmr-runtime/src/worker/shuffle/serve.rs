//! Serving a kept map output's segment to a reducer (`FetchShuffle`).
//!
//! The request names a job, an index file's plain name and a partition;
//! nothing else. The index is read and checked (its checksum, its data
//! file's length) before the answer starts, so a missing or damaged output
//! is a status (`NOT_FOUND`, `DATA_LOSS`), never a short stream. The
//! segment's bytes then go out as they lie in the data file, in chunks of
//! [`CHUNK`] read on the blocking pool into buffers handed to the wire
//! uncopied, at most [`QUEUED`] chunks ahead of the connection: a stream's
//! memory is bounded whatever the segment's size, and the worker sends at
//! most `SHUFFLE_SERVE_STREAMS` segments at once (later requests wait).

use super::store::LocalStore;
use gridmr_core::shuffle::RunIndex;
use gridmr_core::JobId;
use gridmr_net::proto::{FetchChunk, FetchReq};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// Bytes per chunk of a segment.
pub(crate) const CHUNK: usize = 512 << 10;

/// Chunks read ahead of the connection, per stream.
const QUEUED: usize = 2;

/// A segment's chunks, as the gRPC answer streams them.
pub(crate) type ChunkStream = tonic::codegen::BoxStream<FetchChunk>;

/// What to send: the checked index, and the partition.
struct Segment {
    index: RunIndex,
    partition: u32,
}

/// Finds and checks the segment `req` asks for.
fn locate(store: &LocalStore, job: &JobId, req: &FetchReq) -> Result<Segment, Status> {
    let path = store.index_path(job, &req.index_name).ok_or_else(|| {
        Status::invalid_argument(format!(
            "FetchReq.index_name {:?} is not a map output's index name",
            req.index_name.chars().take(64).collect::<String>()
        ))
    })?;
    let index = RunIndex::read(&path).map_err(|e| {
        if e.is_not_found() {
            Status::not_found(format!(
                "no map output {} of job {job} here",
                req.index_name
            ))
        } else {
            Status::data_loss(format!("map output {} of job {job}: {e}", req.index_name))
        }
    })?;
    if req.partitions != 0 && req.partitions != index.partitions() {
        return Err(Status::failed_precondition(format!(
            "map output {} has {} partitions, not {}",
            req.index_name,
            index.partitions(),
            req.partitions
        )));
    }
    if req.partition >= index.partitions() {
        return Err(Status::invalid_argument(format!(
            "partition {} of a map output with {}",
            req.partition,
            index.partitions()
        )));
    }
    Ok(Segment {
        index,
        partition: req.partition,
    })
}

/// Reads the segment into `tx`, chunk by chunk (on the blocking pool). A
/// reader that went away ends it.
fn pump(
    segment: Segment,
    tx: mpsc::Sender<Result<FetchChunk, Status>>,
    _permit: OwnedSemaphorePermit,
) {
    let p = segment.partition as usize;
    let (start, end) = (segment.index.offsets[p], segment.index.offsets[p + 1]);
    let records = segment.index.records[p];
    let path = &segment.index.data_path;
    let failed = |e: std::io::Error| Status::data_loss(format!("{}: {e}", path.display()));
    let opened =
        std::fs::File::open(path).and_then(|mut f| f.seek(SeekFrom::Start(start)).map(|_| f));
    let mut file = match opened {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(Err(failed(e)));
            return;
        }
    };
    let mut left = end - start;
    let mut first = true;
    loop {
        let n = (left.min(CHUNK as u64)) as usize;
        // Read into fresh, unzeroed room: the chunk goes to the wire as it is.
        let mut buf = Vec::with_capacity(n);
        match (&mut file).take(n as u64).read_to_end(&mut buf) {
            Ok(got) if got == n => {}
            Ok(got) => {
                let short = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{got} of {n} bytes at the end of the file"),
                );
                let _ = tx.blocking_send(Err(failed(short)));
                return;
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(failed(e)));
                return;
            }
        }
        let chunk = FetchChunk {
            segment_len: if first { end - start } else { 0 },
            records: if first { records } else { 0 },
            data: buf.into(),
        };
        first = false;
        left -= n as u64;
        if tx.blocking_send(Ok(chunk)).is_err() || left == 0 {
            return;
        }
    }
}

/// Answers one `FetchShuffle`: the segment checked, then streamed.
pub(crate) async fn fetch(
    store: Arc<LocalStore>,
    streams: Arc<Semaphore>,
    req: FetchReq,
) -> Result<ChunkStream, Status> {
    let job = gridmr_net::wire::job_id("FetchReq", &req.job_id)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let permit = streams
        .acquire_owned()
        .await
        .map_err(|_| Status::unavailable("the worker is shutting down"))?;
    let segment = tokio::task::spawn_blocking(move || locate(&store, &job, &req))
        .await
        .map_err(|e| Status::internal(format!("finding the segment: {e}")))??;
    let (tx, rx) = mpsc::channel(QUEUED);
    tokio::task::spawn_blocking(move || pump(segment, tx, permit));
    Ok(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
    )))
}
