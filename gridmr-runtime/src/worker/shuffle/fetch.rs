//! Fetching a reduce's segments from the workers that keep them
//! (`SHUFFLE=local`), before the reduce runs.
//!
//! Every map output of the reduce's message is one segment: read in place
//! when this worker keeps it, linked from its holder's folder when the
//! holder runs on this host ([`host`](super::host)), else fetched from its holder with
//! `FetchShuffle` into the attempt's fetch folder as a run of its own
//! ([`FetchedRun`]: every block's checksum checked as it arrives). At most
//! `SHUFFLE_FETCH_PARALLEL` fetches run at once, each with a bounded
//! HTTP/2 window, so the bytes in flight are bounded whatever the number of
//! maps; what has arrived is on disk, never held in memory.
//!
//! Failures follow Hadoop's and Spark's fetch failures: a holder that
//! answers that it has no such output (or a damaged one), or whose stream
//! is damaged, loses that output; a holder that cannot be reached (after
//! [`RETRIES`] tries) loses every output it keeps. The reduce then fails
//! with `MAP_OUTPUT_LOST` naming all of them, the master runs those maps
//! again, and the reduce is retried without being charged.

use super::store::{FetchDir, LocalStore, StoreError};
use crate::worker::failure::Failure;
use futures_util::StreamExt;
use gridmr_core::control::CancelFlag;
use gridmr_core::shuffle::FetchedRun;
use gridmr_core::{AttemptId, JobId, WorkerId};
use gridmr_net::auth::{Auth, WorkerRpc};
use gridmr_net::proto::{FetchChunk, FetchReq};
use gridmr_net::wire::RemoteInput;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;

/// Tries of a fetch whose holder could not be reached.
const RETRIES: u32 = 3;

/// Longest a fetch may wait for its next chunk.
const IDLE: Duration = Duration::from_secs(60);

/// Per-stream and per-connection HTTP/2 windows: what one fetch, and all
/// fetches from one holder, may have in flight.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;

/// The largest HTTP/2 frame a holder may send this reducer.
const MAX_FRAME: u32 = 1 << 20;

/// Fetches reduce inputs from other workers.
pub(crate) struct Fetcher {
    me: WorkerId,
    store: Arc<LocalStore>,
    auth: Auth,
    tls: Option<tonic::transport::ClientTlsConfig>,
    parallel: usize,
    /// The share's path, which names the host-local sockets of this
    /// cluster's workers (`None`: host-local reads are off).
    host_local: Option<PathBuf>,
    /// One channel per holder address, shared by every fetch.
    clients: Mutex<HashMap<String, WorkerRpc>>,
}

/// The inputs of a reduce, all readable here.
pub(crate) struct Fetched {
    /// Each map output's index here, in map order.
    pub(crate) paths: Vec<PathBuf>,
    /// What the master calls each (the names it sent), in the same order.
    pub(crate) names: Vec<PathBuf>,
    /// Segment bytes fetched over the network.
    pub(crate) remote_bytes: u64,
    /// Segment bytes linked from workers of this host.
    pub(crate) host_local_bytes: u64,
    /// The fetch folder, removed when this is dropped.
    _dir: FetchDir,
}

/// Where an input's segment came from.
enum Source {
    /// This worker kept it.
    Here,
    /// Linked from a worker of this host.
    Host,
    /// Fetched over the network.
    Remote,
}

/// One input, readable here.
struct Got {
    index: PathBuf,
    source: Source,
    bytes: u64,
}

/// Why one input could not be had.
enum Miss {
    /// The holder has no such output, or a damaged one: that map is lost.
    Output(String),
    /// The holder cannot be reached: everything it keeps is lost.
    Holder(String),
    /// This worker failed (its disk, a refused token): the reduce's failure.
    Here(String),
    /// The job was cancelled meanwhile.
    Cancelled,
}

impl Fetcher {
    pub(crate) fn new(
        me: WorkerId,
        store: Arc<LocalStore>,
        auth: Auth,
        tls: Option<tonic::transport::ClientTlsConfig>,
        parallel: u32,
        host_local: Option<PathBuf>,
    ) -> Self {
        Fetcher {
            me,
            store,
            auth,
            tls,
            parallel: parallel.max(1) as usize,
            host_local,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, address: &str) -> Result<WorkerRpc, Miss> {
        if address.is_empty() {
            return Err(Miss::Holder(
                "the master knows no address for its worker".into(),
            ));
        }
        if let Some(c) = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(address).cloned())
        {
            return Ok(c);
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let bad = |e: tonic::transport::Error| Miss::Holder(format!("address {address}: {e}"));
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(bad)?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            // Whole chunks in few frames: fewer wake-ups per byte.
            .max_frame_size(MAX_FRAME)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20));
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(bad)?;
        }
        let client = gridmr_net::auth::worker_rpc(endpoint.connect_lazy(), &self.auth)
            .max_decoding_message_size(4 * super::serve::CHUNK);
        if let Ok(mut c) = self.clients.lock() {
            c.insert(address.to_owned(), client.clone());
        }
        Ok(client)
    }

    /// Makes every input of reduce attempt `attempt` (partition
    /// `partition`) readable here.
    pub(crate) async fn fetch_all(
        &self,
        job: &JobId,
        attempt: AttemptId,
        partition: u32,
        inputs: Vec<RemoteInput>,
        cancel: &CancelFlag,
    ) -> Result<Fetched, Failure> {
        let dir = self.store.fetch_dir(job, attempt).map_err(|e| match e {
            StoreError::Dropped(_) => Failure::cancelled(job),
            other => Failure::engine(other.to_string()),
        })?;
        let unreachable = Mutex::new(HashSet::<WorkerId>::new());
        let names: Vec<PathBuf> = inputs
            .iter()
            .map(|i| PathBuf::from(&i.index_name))
            .collect();
        let mut paths = vec![PathBuf::new(); inputs.len()];
        let (mut remote_bytes, mut host_local_bytes) = (0, 0);
        let mut misses = Vec::new();
        let mut fetches = futures_util::stream::iter(inputs.iter())
            .map(|input| {
                let to = dir.path().join(gridmr_core::layout::map_task(input.map));
                let unreachable = &unreachable;
                async move {
                    (
                        input,
                        self.one(job, partition, input, to, unreachable, cancel)
                            .await,
                    )
                }
            })
            .buffer_unordered(self.parallel);
        while let Some((input, got)) = fetches.next().await {
            match got {
                Ok(got) => {
                    match got.source {
                        Source::Here => {}
                        Source::Host => host_local_bytes += got.bytes,
                        Source::Remote => remote_bytes += got.bytes,
                    }
                    paths[input.map as usize] = got.index;
                }
                Err(miss) => misses.push((input, miss)),
            }
        }
        drop(fetches);
        if misses.is_empty() {
            return Ok(Fetched {
                paths,
                names,
                remote_bytes,
                host_local_bytes,
                _dir: dir,
            });
        }
        Err(self.failure(job, misses))
    }

    /// One input: read in place when kept here, else fetched (tried again
    /// while its holder cannot be reached).
    async fn one(
        &self,
        job: &JobId,
        partition: u32,
        input: &RemoteInput,
        to: PathBuf,
        unreachable: &Mutex<HashSet<WorkerId>>,
        cancel: &CancelFlag,
    ) -> Result<Got, Miss> {
        if input.worker_id == self.me {
            return self
                .store
                .index_path(job, &input.index_name)
                .map(|index| Got {
                    index,
                    source: Source::Here,
                    bytes: 0,
                })
                .ok_or_else(|| Miss::Output("not a map output's name".into()));
        }
        if let Some(got) = self.host_local(job, partition, input, &to).await {
            return Ok(got);
        }
        let is_unreachable = |w: &WorkerId| unreachable.lock().is_ok_and(|u| u.contains(w));
        let mut last = String::new();
        for try_ in 0..RETRIES {
            if is_unreachable(&input.worker_id) {
                return Err(Miss::Holder(format!(
                    "worker {} cannot be reached",
                    input.worker_id
                )));
            }
            if try_ > 0 {
                tokio::time::sleep(Duration::from_millis(250 << try_)).await;
            }
            match self.fetch(job, partition, input, &to, cancel).await {
                Err(Miss::Holder(why)) => last = why,
                other => return other,
            }
        }
        if let Ok(mut u) = unreachable.lock() {
            u.insert(input.worker_id.clone());
        }
        Err(Miss::Holder(last))
    }

    /// `input`'s segment linked from its holder's folder, when the holder
    /// runs on this host and hands it over; `None`: fetch it.
    async fn host_local(
        &self,
        job: &JobId,
        partition: u32,
        input: &RemoteInput,
        to: &std::path::Path,
    ) -> Option<Got> {
        let share = self.host_local.as_ref()?;
        let dir = to.parent()?.to_path_buf();
        let name = super::host::socket_name(&input.worker_id, share);
        let (auth, job, index_name) = (self.auth.clone(), job.clone(), input.index_name.clone());
        let read =
            move || super::host::read_local(&name, &auth, &job, &index_name, partition, &dir);
        match tokio::task::spawn_blocking(read).await {
            Ok(Ok(got)) => Some(Got {
                index: got.index_path,
                source: Source::Host,
                bytes: got.bytes,
            }),
            Ok(Err(super::host::HostError::Elsewhere)) | Err(_) => None,
            Ok(Err(e)) => {
                tracing::debug!(holder = %input.worker_id, error = %e, "fetching instead of a host-local read");
                None
            }
        }
    }

    /// One try at fetching `input`'s segment into `to`.
    async fn fetch(
        &self,
        job: &JobId,
        partition: u32,
        input: &RemoteInput,
        to: &std::path::Path,
        cancel: &CancelFlag,
    ) -> Result<Got, Miss> {
        let mut client = self.client(&input.address)?;
        let req = FetchReq {
            job_id: job.to_string(),
            index_name: input.index_name.clone(),
            partition,
            partitions: 0,
        };
        let mut stream = client.fetch_shuffle(req).await.map_err(miss)?.into_inner();
        let first = next(&mut stream)
            .await?
            .ok_or_else(|| Miss::Holder("the stream ended before its first chunk".into()))?;
        let (data, index) = (to.with_extension("data"), to.with_extension("index"));
        let (len, records) = (first.segment_len, first.records);
        let mut run =
            blocking(move || FetchedRun::create(&data, &index, partition + 1, partition, len))
                .await?;
        let mut chunk = Some(first);
        while let Some(c) = chunk.take() {
            if cancel.is_cancelled() {
                return Err(Miss::Cancelled);
            }
            run = blocking(move || run.write(&c.data).map(|()| run)).await?;
            chunk = next(&mut stream).await?;
        }
        let index = blocking(move || run.finish(records)).await?;
        Ok(Got {
            index: index.index_path,
            source: Source::Remote,
            bytes: len,
        })
    }

    /// The reduce's failure for the inputs it could not have.
    fn failure(&self, job: &JobId, misses: Vec<(&RemoteInput, Miss)>) -> Failure {
        let mut lost = Vec::new();
        let mut words = Vec::new();
        for (input, miss) in &misses {
            match miss {
                Miss::Cancelled => return Failure::cancelled(job),
                Miss::Here(why) => {
                    return Failure::engine(format!("fetching {}: {why}", input.index_name))
                }
                Miss::Output(why) | Miss::Holder(why) => {
                    lost.push(PathBuf::from(&input.index_name));
                    if words.len() < 4 {
                        words.push(format!(
                            "{} from worker {}: {why}",
                            input.index_name, input.worker_id
                        ));
                    }
                }
            }
        }
        let message = format!(
            "cannot fetch {} map output(s): {}{}",
            lost.len(),
            words.join("; "),
            if lost.len() > words.len() {
                "; …"
            } else {
                ""
            }
        );
        Failure::map_outputs_lost(lost, message)
    }
}

/// The next chunk, within [`IDLE`].
async fn next(stream: &mut tonic::Streaming<FetchChunk>) -> Result<Option<FetchChunk>, Miss> {
    match tokio::time::timeout(IDLE, stream.message()).await {
        Ok(got) => got.map_err(miss),
        Err(_) => Err(Miss::Holder(format!("no data for {} s", IDLE.as_secs()))),
    }
}

/// File work on the blocking pool; a damaged segment is the output's loss,
/// any other error this worker's.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> gridmr_core::Result<T> + Send + 'static,
) -> Result<T, Miss> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.is_corrupt() => Err(Miss::Output(e.to_string())),
        Ok(Err(e)) => Err(Miss::Here(e.to_string())),
        Err(e) => Err(Miss::Here(format!("file thread: {e}"))),
    }
}

/// A holder's answer (or its absence) as a miss.
fn miss(status: tonic::Status) -> Miss {
    let why = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::NotFound
        | Code::DataLoss
        | Code::FailedPrecondition
        | Code::InvalidArgument
        | Code::OutOfRange => Miss::Output(why),
        Code::Unauthenticated | Code::PermissionDenied => Miss::Here(why),
        _ => Miss::Holder(why),
    }
}
