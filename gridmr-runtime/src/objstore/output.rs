//! Object outputs, committed without a rename (S3A's *magic* committer, in GridMR's terms).
//!
//! Object stores cannot rename, and a copy costs a second write of the whole output, so the
//! part files are written once, at their final names, by uploads that only the job's commit
//! makes visible:
//!
//! 1. **A task attempt** writes its part to the worker's own disk, starts a multipart upload to
//!    the part's final URL (`<output_url>/part-r-NNNNN`), uploads it in [`PART_BYTES`] pieces
//!    and does **not** complete it: nothing is visible yet. It then writes a [`Pending`] record
//!    (the upload's id and its pieces' ids, JSON) where its file would have been on the share,
//!    `out/_attempts/part-r-NNNNN-aA`, and reports success as any attempt does.
//! 2. **The job's commit** (the master, after `commit.json` names the chosen attempts)
//!    completes the chosen attempts' uploads, sixteen at a time (each a round trip the store
//!    may take seconds over), reported in part order, aborts every other attempt's
//!    upload, and writes **`_SUCCESS` last**: a [`Manifest`] naming every part with its size.
//!    A copy goes to the job's `out/` folder on the share.
//!
//! Guarantees:
//! - Before `_SUCCESS` exists under the output URL the output is not committed, whatever is
//!   there; once it does, the parts it names are the whole output and nothing changes them.
//!   Readers ([`read_manifest`], [`read_output`], `GET /jobs/{id}/result`) read the parts the
//!   manifest names, never a listing.
//! - A commit that stopped at any step runs again from `commit.json` (a restarted master does
//!   so): completing an upload twice is taken as done when the object is there with the
//!   recorded size.
//! - An attempt that failed, was cancelled, or lost the race aborts its upload; an upload of a
//!   worker that died is left to the bucket's lifecycle rule (`AbortIncompleteMultipartUpload`,
//!   as for Hadoop's and Spark's committers; docs/operations.md gives one).
//! - A job refuses an output URL that already holds objects (Hadoop's
//!   `FileAlreadyExistsException`), so a manifest never sits beside another job's parts.

use super::{ObjectError, ObjectStores, ObjectUrl};
use futures_util::StreamExt;
use gridmr_core::commit::{CommitStep, Committed, JobCommit, SUCCESS_FILE};
use gridmr_core::layout;
use object_store::multipart::PartId;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The size of each uploaded piece but the last: 16 MiB (S3 asks at least 5 MiB and at most
/// 10,000 pieces, so a part may reach 160 GB).
pub const PART_BYTES: usize = 16 << 20;

/// The largest pending record or manifest read (10,000 pieces' ids fit many times over).
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// What [`Pending::format`] holds.
const PENDING_FORMAT: &str = "gridmr-pending-upload/1";
/// What [`Manifest::format`] holds.
const MANIFEST_FORMAT: &str = "gridmr-manifest/1";

/// An upload a task attempt made and did not complete: the record it leaves on the share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// `gridmr-pending-upload/1`.
    pub format: String,
    /// The part's final URL.
    pub url: String,
    /// The store's id of the upload.
    pub upload_id: String,
    /// Each uploaded piece's id (its ETag), in order.
    pub pieces: Vec<String>,
    /// The part's size in bytes.
    pub size: u64,
}

/// One part a manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPart {
    /// Its name below the output URL (`part-r-00000`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What `_SUCCESS` holds: the committed output, part by part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `gridmr-manifest/1`.
    pub format: String,
    /// The job that wrote it.
    pub job_id: String,
    /// The output URL.
    pub output: String,
    /// The parts, in output order.
    pub parts: Vec<ManifestPart>,
}

impl Manifest {
    /// The output's size in bytes.
    pub fn size(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

fn record_error(what: impl std::fmt::Display, reason: impl Into<String>) -> ObjectError {
    ObjectError::Record {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// Uploads `file` to `dest` as a multipart upload it does not complete (an upload that fails
/// is aborted).
pub async fn upload_pending(
    stores: &ObjectStores,
    dest: &ObjectUrl,
    file: &Path,
) -> Result<Pending, ObjectError> {
    let client = stores.client(dest)?;
    let path = dest.path();
    let id = client
        .create_multipart(&path)
        .await
        .map_err(|e| ObjectError::store("start an upload to", dest, e))?;
    let uploaded = async {
        let mut f = std::fs::File::open(file).map_err(|e| ObjectError::io("open", file, e))?;
        let (mut pieces, mut size) = (Vec::new(), 0u64);
        loop {
            let mut buf = Vec::with_capacity(PART_BYTES);
            (&mut f)
                .take(PART_BYTES as u64)
                .read_to_end(&mut buf)
                .map_err(|e| ObjectError::io("read", file, e))?;
            // The first piece is sent even when empty: an upload needs one.
            if buf.is_empty() && !pieces.is_empty() {
                break;
            }
            let n = buf.len();
            size += n as u64;
            let part = client
                .put_part(&path, &id, pieces.len(), PutPayload::from(buf))
                .await
                .map_err(|e| ObjectError::store("upload to", dest, e))?;
            pieces.push(part.content_id);
            if n < PART_BYTES {
                break;
            }
        }
        Ok::<_, ObjectError>((pieces, size))
    }
    .await;
    match uploaded {
        Ok((pieces, size)) => Ok(Pending {
            format: PENDING_FORMAT.into(),
            url: dest.to_string(),
            upload_id: id,
            pieces,
            size,
        }),
        Err(e) => {
            let _ = client.abort_multipart(&path, &id).await;
            Err(e)
        }
    }
}

/// Writes `pending` to `path` (the attempt's file on the share), synced.
pub fn write_pending(path: &Path, pending: &Pending) -> Result<(), ObjectError> {
    use std::io::Write;
    let json =
        serde_json::to_vec(pending).map_err(|e| record_error(path.display(), e.to_string()))?;
    let mut f = std::fs::File::create(path).map_err(|e| ObjectError::io("create", path, e))?;
    f.write_all(&json)
        .and_then(|_| f.sync_all())
        .map_err(|e| ObjectError::io("write", path, e))
}

/// Reads a record from the share: a regular file reached through no link, at most
/// [`MAX_RECORD_BYTES`].
fn read_record(path: &Path) -> Result<Vec<u8>, ObjectError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ObjectError::io("open", path, e))?;
    let meta = f.metadata().map_err(|e| ObjectError::io("stat", path, e))?;
    if !meta.is_file() || meta.len() > MAX_RECORD_BYTES {
        return Err(record_error(
            path.display(),
            "not a regular file of a record's size",
        ));
    }
    let mut bytes = Vec::new();
    f.take(MAX_RECORD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| ObjectError::io("read", path, e))?;
    Ok(bytes)
}

/// Reads the pending record at `path` (found on the share: trusted for nothing) and checks
/// that it is an upload to `expected`.
pub fn read_pending(path: &Path, expected: &ObjectUrl) -> Result<Pending, ObjectError> {
    let bytes = read_record(path)?;
    let p: Pending = serde_json::from_slice(&bytes)
        .map_err(|e| record_error(path.display(), format!("not a pending upload: {e}")))?;
    if p.format != PENDING_FORMAT || p.url != expected.to_string() || p.pieces.is_empty() {
        return Err(record_error(
            path.display(),
            format!("not a pending upload to {expected}"),
        ));
    }
    Ok(p)
}

/// Completes `pending`'s upload to `url`; an upload completed before (a commit run again) is
/// taken as done when the object is there with the recorded size.
pub async fn complete(
    stores: &ObjectStores,
    url: &ObjectUrl,
    pending: &Pending,
) -> Result<(), ObjectError> {
    let client = stores.client(url)?;
    let path = url.path();
    let pieces = pending
        .pieces
        .iter()
        .map(|id| PartId {
            content_id: id.clone(),
        })
        .collect();
    match client
        .complete_multipart(&path, &pending.upload_id, pieces)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match client.head(&path).await {
            Ok(meta) if meta.size == pending.size => Ok(()),
            _ => Err(ObjectError::store("complete the upload to", url, e)),
        },
    }
}

/// Aborts `pending`'s upload to `url` (best effort: an upload already gone is no error).
pub async fn abort(stores: &ObjectStores, url: &ObjectUrl, pending: &Pending) {
    if let Ok(client) = stores.client(url) {
        if let Err(e) = client
            .abort_multipart(&url.path(), &pending.upload_id)
            .await
        {
            tracing::debug!(url = %url, error = %e, "cannot abort an upload");
        }
    }
}

/// Aborts the uploads of every attempt file in `attempts` (`out/_attempts`) but those in
/// `keep`. A file that is not a pending upload to a part below `out` is left alone.
pub async fn abort_attempts(
    stores: &ObjectStores,
    out: &ObjectUrl,
    attempts: &Path,
    keep: &[PathBuf],
) -> usize {
    let Ok(entries) = std::fs::read_dir(attempts) else {
        return 0;
    };
    let mut aborted = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((part, _)) = name.rsplit_once("-a") else {
            continue;
        };
        if keep.contains(&path) || !layout::is_part_name(part) {
            continue;
        }
        let url = out.join(part);
        if let Ok(pending) = read_pending(&path, &url) {
            abort(stores, &url, &pending).await;
            aborted += 1;
        }
    }
    aborted
}

/// Whether `out` holds no object (a new job's output must not mix with an old one's).
pub async fn is_empty(stores: &ObjectStores, out: &ObjectUrl) -> Result<bool, ObjectError> {
    let client = stores.client(out)?;
    let prefix = out.path();
    let mut listed = client.list(Some(&prefix));
    match listed.next().await {
        None => Ok(true),
        Some(Ok(_)) => Ok(false),
        Some(Err(e)) => Err(ObjectError::store("list", out, e)),
    }
}

/// How many uploads a commit completes at once.
const COMPLETE_PARALLEL: usize = 16;

/// Commits `commit` (its attempt files are pending records) to `out`, reporting each step as
/// the local committer does; `job_id` goes into the manifest. See the [module docs](self).
pub async fn commit(
    stores: &ObjectStores,
    out: &ObjectUrl,
    job_id: &str,
    commit: &JobCommit,
    on_step: &mut (dyn FnMut(CommitStep) + Send),
) -> Result<Committed, ObjectError> {
    let local_success = commit.out.join(SUCCESS_FILE);
    let urls = |m: &Manifest| {
        m.parts
            .iter()
            .map(|p| PathBuf::from(out.join(&p.name).to_string()))
            .collect()
    };
    // Done before: the local copy of `_SUCCESS` is written last of all.
    if let Ok(bytes) = read_record(&local_success) {
        if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
            return Ok(Committed {
                result: None,
                parts: urls(&m),
            });
        }
    }
    // The records are read and the side files moved first (local, quick); the uploads are then
    // completed `COMPLETE_PARALLEL` at a time, as S3A's committers do (each is a round trip
    // that the store may take seconds over: it joins the pieces), and reported in order.
    let mut pending = Vec::with_capacity(commit.parts.len());
    for part in &commit.parts {
        let url = out.join(&part.name);
        // Side files are kept in the job's output folder on the share, as without an object
        // output (the parts alone go to the store).
        gridmr_core::commit::move_side_files(&part.attempt, &commit.out).map_err(|e| {
            ObjectError::io(
                "keep the side files of",
                &part.attempt,
                std::io::Error::other(e),
            )
        })?;
        let record = read_pending(&part.attempt, &url)?;
        pending.push((url, record));
    }
    let mut completed = futures_util::stream::iter(pending.iter())
        .map(|(url, record)| complete(stores, url, record))
        .buffered(COMPLETE_PARALLEL);
    let mut parts = Vec::with_capacity(commit.parts.len());
    for (i, (part, (_, record))) in commit.parts.iter().zip(&pending).enumerate() {
        match completed.next().await {
            Some(done) => done?,
            None => break,
        }
        parts.push(ManifestPart {
            name: part.name.clone(),
            size: record.size,
        });
        on_step(CommitStep::PartRenamed(i));
    }
    drop(completed);
    on_step(CommitStep::PartsRenamed);
    on_step(CommitStep::ResultWritten);
    let chosen: Vec<PathBuf> = commit.parts.iter().map(|p| p.attempt.clone()).collect();
    abort_attempts(stores, out, &layout::attempts_dir(&commit.out), &chosen).await;
    on_step(CommitStep::AttemptsRemoved);
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        job_id: job_id.to_owned(),
        output: out.to_string(),
        parts,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| record_error("the manifest", e.to_string()))?;
    let success = out.join(SUCCESS_FILE);
    stores
        .client(&success)?
        .put(&success.path(), PutPayload::from(json.clone()))
        .await
        .map_err(|e| ObjectError::store("write", &success, e))?;
    write_local(&local_success, &json)?;
    on_step(CommitStep::SuccessWritten);
    Ok(Committed {
        result: None,
        parts: urls(&manifest),
    })
}

/// Writes `bytes` to `path` under a temporary name, synced, then renamed into place.
fn write_local(path: &Path, bytes: &[u8]) -> Result<(), ObjectError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| ObjectError::io("create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| ObjectError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ObjectError::io("rename", path, e))
}

/// Reads the manifest of the output at `out`: an error when the output is not committed.
pub async fn read_manifest(
    stores: &ObjectStores,
    out: &ObjectUrl,
) -> Result<Manifest, ObjectError> {
    let success = out.join(SUCCESS_FILE);
    let client = stores.client(&success)?;
    let got = client
        .get(&success.path())
        .await
        .map_err(|e| ObjectError::store("read", &success, e))?;
    if got.meta.size > MAX_RECORD_BYTES {
        return Err(record_error(&success, "too large for a manifest"));
    }
    let bytes = got
        .bytes()
        .await
        .map_err(|e| ObjectError::store("read", &success, e))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| record_error(&success, format!("not a GridMR manifest: {e}")))?;
    if m.format != MANIFEST_FORMAT || m.parts.iter().any(|p| !layout::is_part_name(&p.name)) {
        return Err(record_error(&success, "not a GridMR manifest"));
    }
    Ok(m)
}

/// Reads a committed output's records, as [`gridmr_core::output::read_output`] reads a
/// folder's: the parts its manifest names, in order, each line `key<TAB>value` as JSON.
pub async fn read_output<K, V>(
    stores: &ObjectStores,
    out: &ObjectUrl,
) -> Result<Vec<(K, V)>, ObjectError>
where
    K: serde::de::DeserializeOwned,
    V: serde::de::DeserializeOwned,
{
    let manifest = read_manifest(stores, out).await?;
    let mut records = Vec::new();
    for part in &manifest.parts {
        let url = out.join(&part.name);
        let bytes = stores
            .client(&url)?
            .get(&url.path())
            .await
            .map_err(|e| ObjectError::store("read", &url, e))?
            .bytes()
            .await
            .map_err(|e| ObjectError::store("read", &url, e))?;
        for line in String::from_utf8_lossy(&bytes).lines() {
            records.push(
                gridmr_core::output::parse_line(line)
                    .map_err(|e| record_error(&url, e.to_string()))?,
            );
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_core::commit::PartCommit;
    use object_store::memory::InMemory;
    use object_store::multipart::MultipartStore;
    use object_store::ObjectStore;
    use std::sync::Arc;

    fn setup() -> (ObjectStores, Arc<InMemory>, ObjectUrl) {
        let stores = ObjectStores::new(&["s3://out"]).unwrap();
        let mem = Arc::new(InMemory::new());
        stores.insert(&"s3://out".parse().unwrap(), mem.clone());
        (stores, mem, "s3://out/wc".parse().unwrap())
    }

    async fn exists(mem: &InMemory, key: &str) -> bool {
        mem.head(&object_store::path::Path::from(key)).await.is_ok()
    }

    /// Two reduces, the first run twice: only the chosen attempts appear, and only once the
    /// commit runs; running it again changes nothing.
    #[tokio::test]
    async fn uploads_appear_only_when_committed_and_a_commit_runs_twice() {
        let (stores, mem, out) = setup();
        let share = tempfile::tempdir().unwrap();
        let out_dir = share.path().join("out");
        let attempts = layout::attempts_dir(&out_dir);
        std::fs::create_dir_all(&attempts).unwrap();
        let local = share.path().join("local");
        let mut parts = Vec::new();
        for (partition, attempt, body) in [(0, 1, "a\t1\n"), (0, 2, "a\t1\n"), (1, 1, "")] {
            std::fs::write(&local, body).unwrap();
            let name = layout::part_r(partition);
            let p = upload_pending(&stores, &out.join(&name), &local)
                .await
                .unwrap();
            assert_eq!(p.size, body.len() as u64);
            let file = layout::reduce_attempt_file(&out_dir, partition, attempt);
            write_pending(&file, &p).unwrap();
            if attempt == 1 {
                parts.push(PartCommit {
                    attempt: file,
                    name,
                });
            }
        }
        assert!(
            !exists(&mem, "wc/part-r-00000").await,
            "visible before the commit"
        );
        let job = JobCommit {
            out: out_dir.clone(),
            parts,
            result_max_bytes: 0,
        };
        let mut steps = Vec::new();
        let done = commit(&stores, &out, "job-000001", &job, &mut |s| {
            steps.push(s.name())
        })
        .await
        .unwrap();
        assert_eq!(steps.last(), Some(&"success-written"));
        assert_eq!(done.parts.len(), 2);
        let m = read_manifest(&stores, &out).await.unwrap();
        assert_eq!((m.parts.len(), m.size()), (2, 4));
        let records: Vec<(String, u64)> = read_output(&stores, &out).await.unwrap();
        assert_eq!(records, [("a".to_string(), 1)]);
        // Again, as a restarted master would: nothing changes.
        let again = commit(&stores, &out, "job-000001", &job, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(again.parts, done.parts);
        // And again without the local copy: the uploads are found completed.
        std::fs::remove_file(out_dir.join(SUCCESS_FILE)).unwrap();
        commit(&stores, &out, "job-000001", &job, &mut |_| {})
            .await
            .unwrap();
        assert!(!is_empty(&stores, &out).await.unwrap());
    }

    /// An in-memory bucket whose first upload completed waits (up to a deadline) for a second
    /// completion in flight: a commit that completes one after another never has two.
    #[derive(Debug)]
    struct Gated {
        inner: InMemory,
        now: std::sync::atomic::AtomicUsize,
        peak: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for Gated {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Gated({})", self.inner)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Gated {
        async fn put_opts(
            &self,
            location: &object_store::path::Path,
            payload: PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &object_store::path::Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &object_store::path::Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: futures_util::stream::BoxStream<
                'static,
                object_store::Result<object_store::path::Path>,
            >,
        ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>
        {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &object_store::path::Path,
            to: &object_store::path::Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[async_trait::async_trait]
    impl MultipartStore for Gated {
        async fn create_multipart(
            &self,
            path: &object_store::path::Path,
        ) -> object_store::Result<object_store::MultipartId> {
            self.inner.create_multipart(path).await
        }
        async fn put_part(
            &self,
            path: &object_store::path::Path,
            id: &object_store::MultipartId,
            part_idx: usize,
            data: PutPayload,
        ) -> object_store::Result<PartId> {
            self.inner.put_part(path, id, part_idx, data).await
        }
        async fn complete_multipart(
            &self,
            path: &object_store::path::Path,
            id: &object_store::MultipartId,
            parts: Vec<PartId>,
        ) -> object_store::Result<object_store::PutResult> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.now.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(now, SeqCst);
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            while self.peak.load(SeqCst) < 2 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let done = self.inner.complete_multipart(path, id, parts).await;
            self.now.fetch_sub(1, SeqCst);
            done
        }
        async fn abort_multipart(
            &self,
            path: &object_store::path::Path,
            id: &object_store::MultipartId,
        ) -> object_store::Result<()> {
            self.inner.abort_multipart(path, id).await
        }
    }

    /// Four parts: their uploads are completed at once, and the steps still come in part
    /// order, so a crash injected after part `i` has every part up to `i` completed.
    #[tokio::test]
    async fn a_commit_completes_its_uploads_at_once_and_reports_them_in_order() {
        let stores = ObjectStores::new(&["s3://out"]).unwrap();
        let gated = Arc::new(Gated {
            inner: InMemory::new(),
            now: Default::default(),
            peak: Default::default(),
        });
        stores.insert(&"s3://out".parse().unwrap(), gated.clone());
        let out: ObjectUrl = "s3://out/sorted".parse().unwrap();
        let share = tempfile::tempdir().unwrap();
        let out_dir = share.path().join("out");
        std::fs::create_dir_all(layout::attempts_dir(&out_dir)).unwrap();
        let local = share.path().join("local");
        let mut parts = Vec::new();
        for partition in 0..4 {
            std::fs::write(&local, format!("k{partition}\t{partition}\n")).unwrap();
            let name = layout::part_r(partition);
            let p = upload_pending(&stores, &out.join(&name), &local)
                .await
                .unwrap();
            let file = layout::reduce_attempt_file(&out_dir, partition, 1);
            write_pending(&file, &p).unwrap();
            parts.push(PartCommit {
                attempt: file,
                name,
            });
        }
        let job = JobCommit {
            out: out_dir,
            parts,
            result_max_bytes: 0,
        };
        let mut steps = Vec::new();
        commit(&stores, &out, "job-000002", &job, &mut |s| {
            if let CommitStep::PartRenamed(i) = s {
                steps.push(i);
            }
        })
        .await
        .unwrap();
        assert_eq!(steps, [0, 1, 2, 3]);
        let peak = gated.peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak >= 2, "the uploads were completed one at a time");
        let records: Vec<(String, u64)> = read_output(&stores, &out).await.unwrap();
        assert_eq!(records.len(), 4);
    }

    #[tokio::test]
    async fn a_pending_record_for_another_object_is_refused() {
        let (stores, _mem, out) = setup();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("x");
        std::fs::write(&local, "x\n").unwrap();
        let p = upload_pending(&stores, &out.join("part-r-00001"), &local)
            .await
            .unwrap();
        let file = dir.path().join("part-r-00000-a1");
        write_pending(&file, &p).unwrap();
        let e = read_pending(&file, &out.join("part-r-00000")).unwrap_err();
        assert!(e.to_string().contains("not a pending upload"), "{e}");
        std::fs::write(&file, "{not json").unwrap();
        assert!(read_pending(&file, &out.join("part-r-00001")).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&local, &link).unwrap();
        assert!(read_pending(&link, &out.join("part-r-00001")).is_err());
    }
}
