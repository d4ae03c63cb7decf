//! The worker-served shuffle (`SHUFFLE=local`): map outputs kept on the
//! worker that ran them ([`store`]), served to reducers ([`serve`]) and
//! fetched by them ([`fetch`]), worker to worker over the workers' own gRPC
//! service, with the cluster token and TLS of every other call.

pub(crate) mod fetch;
pub(crate) mod host;
pub(crate) mod serve;
pub(crate) mod store;

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// A worker's side of the shuffle: its folder, the fetcher its reduces
/// use, and the bound on segments it sends at once.
pub(crate) struct WorkerShuffle {
    pub(crate) store: Arc<store::LocalStore>,
    pub(crate) fetcher: Arc<fetch::Fetcher>,
    pub(crate) streams: Arc<Semaphore>,
    /// How long the outputs of a job no master ended are kept.
    pub(crate) retain: Duration,
}

impl WorkerShuffle {
    /// Sweeps the folders of jobs no master ended, now and then every hour
    /// (or every `retain`, when shorter), until `stop`.
    pub(crate) async fn sweep_until(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let every = self
            .retain
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        loop {
            let (store, retain) = (self.store.clone(), self.retain);
            if let Ok(n @ 1..) = tokio::task::spawn_blocking(move || store.sweep(retain)).await {
                tracing::info!(
                    folders = n,
                    retain_s = retain.as_secs(),
                    "removed map outputs of jobs no master ended (SHUFFLE_RETAIN_S)"
                );
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fetch::Fetcher;
    use super::store::LocalStore;
    use crate::settings::WorkerSettings;
    use crate::worker::failure::Failure;
    use gridmr_core::control::CancelFlag;
    use gridmr_core::shuffle::{Compression, RunIndex, RunWriter, SegmentReader};
    use gridmr_core::{AttemptId, JobId, Phase, Registry, TaskId, WorkerId};
    use gridmr_net::auth::{Auth, Token};
    use gridmr_net::proto::Failure as Kind;
    use gridmr_net::wire::RemoteInput;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn settings(shared: &Path, local: &Path, id: &str, token: &Token) -> WorkerSettings {
        let mut s = WorkerSettings::local(shared, None);
        s.worker_id = Some(id.into());
        s.work_dir = Some(local.join(id));
        s.security.token = Some(token.clone());
        s
    }

    /// Map `map`'s output for `job`, kept by the worker whose folder is
    /// `dir`: two partitions, `n` records in partition 1.
    fn keep_output(dir: &Path, job: &JobId, map: u32, n: u32) -> String {
        let folder = gridmr_core::layout::local_shuffle_dir(dir, job);
        std::fs::create_dir_all(&folder).unwrap();
        let out = gridmr_core::layout::MapOutput::of_attempt(&folder, map, 1);
        let mut w = RunWriter::create(&out.data(), out.index(), 2, Compression::Lz4, 4096).unwrap();
        w.push(0, b"\x01a", b"\x01x").unwrap();
        for i in 0..n {
            let key = format!("k{i:06}");
            let mut k = vec![key.len() as u8];
            k.extend_from_slice(key.as_bytes());
            w.push(1, &k, b"\x01v").unwrap();
        }
        w.finish().unwrap();
        out.index()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn input(map: u32, holder: &str, address: &str, name: &str) -> RemoteInput {
        RemoteInput {
            map,
            worker_id: holder.parse().unwrap(),
            address: address.into(),
            index_name: name.into(),
        }
    }

    fn records(index: &Path) -> u64 {
        let index = RunIndex::read(index).unwrap();
        let mut r = SegmentReader::open(&index, 1).unwrap();
        let mut n = 0;
        while r.advance().unwrap() {
            n += 1;
        }
        n
    }

    fn lost(f: &Failure) -> Vec<PathBuf> {
        assert_eq!(f.kind, Kind::MapOutputLost, "{}", f.message);
        f.also_lost.clone()
    }

    /// Links of the data file beside `index`: 2 when it is the holder's own
    /// file (a host-local read), 1 when it was fetched.
    fn data_links(index: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let data = RunIndex::read(index).unwrap().data_path;
        std::fs::metadata(data).unwrap().nlink()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_outputs_are_fetched_checked_served_again_and_dropped() {
        story(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holder_on_this_host_hands_its_files_over_with_the_same_checks() {
        story(true).await;
    }

    // One story, in order: a fetch, its refusals, a restart, a drop, a holder gone; with the
    // holder's files linked (host-local) or fetched over gRPC.
    async fn story(host_local: bool) {
        let (shared, local) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let token = Token::generate().unwrap();
        let job: JobId = "job-000007".parse().unwrap();
        let holder_dir = local.path().join("h");
        let name = keep_output(&holder_dir, &job, 0, 50_000);
        let holder = crate::worker::start(
            settings(shared.path(), local.path(), "h", &token),
            Registry::new(),
        )
        .await
        .unwrap();
        let store = Arc::new(LocalStore::open(&local.path().join("r")).unwrap());
        let me: WorkerId = "r".parse().unwrap();
        let fetcher = Fetcher::new(
            me.clone(),
            store.clone(),
            Auth::token(token.clone()),
            None,
            4,
            host_local.then(|| shared.path().to_path_buf()),
        );
        let attempt = AttemptId::new(TaskId::new(Phase::Reduce, 1), 1);
        let cancel = CancelFlag::default();
        let addr = holder.addr().to_string();

        let got = fetcher
            .fetch_all(&job, attempt, 1, vec![input(0, "h", &addr, &name)], &cancel)
            .await
            .unwrap();
        assert_eq!(records(&got.paths[0]), 50_000);
        assert_eq!(got.names, vec![PathBuf::from(&name)]);
        assert_eq!(data_links(&got.paths[0]), if host_local { 2 } else { 1 });
        let fetched_dir = got.paths[0].parent().unwrap().to_path_buf();
        drop(got);
        assert!(
            !fetched_dir.exists(),
            "a reduce's fetched segments go with it"
        );

        // A caller without the cluster's token is refused (this worker's
        // failure, not the map's); an output the holder does not keep is lost.
        let stranger = Fetcher::new(
            me.clone(),
            store.clone(),
            Auth::token(Token::generate().unwrap()),
            None,
            4,
            host_local.then(|| shared.path().to_path_buf()),
        );
        let e = stranger
            .fetch_all(&job, attempt, 1, vec![input(0, "h", &addr, &name)], &cancel)
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind, Kind::Engine, "{}", e.message);
        let e = fetcher
            .fetch_all(
                &job,
                attempt,
                1,
                vec![input(0, "h", &addr, "map-00009-a1.index")],
                &cancel,
            )
            .await
            .err()
            .unwrap();
        assert_eq!(lost(&e), vec![PathBuf::from("map-00009-a1.index")]);

        // Restarted with the same folder, the holder serves what it kept.
        holder.stop().await.unwrap();
        let holder = crate::worker::start(
            settings(shared.path(), local.path(), "h", &token),
            Registry::new(),
        )
        .await
        .unwrap();
        let addr = holder.addr().to_string();
        let got = fetcher
            .fetch_all(&job, attempt, 1, vec![input(0, "h", &addr, &name)], &cancel)
            .await
            .unwrap();
        assert_eq!(records(&got.paths[0]), 50_000);
        drop(got);

        // Told the job ended, it keeps nothing of it.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let mut rpc = gridmr_net::auth::worker_rpc(channel, &Auth::token(token.clone()));
        let dropped = rpc
            .drop_shuffle(gridmr_net::proto::DropShuffleReq {
                job_id: job.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(dropped.removed_bytes > 100_000, "{dropped:?}");
        assert!(!gridmr_core::layout::local_shuffle_dir(&holder_dir, &job).exists());

        // A holder gone loses every output it kept, and only those: an
        // output kept here is read in place.
        let mine = keep_output(store.root(), &job, 2, 10);
        holder.stop().await.unwrap();
        let e = fetcher
            .fetch_all(
                &job,
                attempt,
                1,
                vec![
                    input(0, "h", &addr, &name),
                    input(1, "h", &addr, "map-00001-a1.index"),
                    input(2, "r", "", &mine),
                ],
                &cancel,
            )
            .await
            .err()
            .unwrap();
        let mut names = lost(&e);
        names.sort();
        assert_eq!(
            names,
            vec![PathBuf::from(&name), PathBuf::from("map-00001-a1.index")]
        );
    }
}
