//! Inputs and outputs in object stores: `s3://`, `gs://` and `az://` URLs, read and written
//! through the [`object_store`] crate (the one DataFusion and Ballista use).
//!
//! - **Which buckets**: only those `OBJECT_BUCKETS` names (`s3://input-data,gs://results`), on the master
//!   and on every worker; with none named, object URLs are refused. A URL is checked as it is
//!   parsed ([`ObjectUrl`]) and again by every process that acts on it.
//! - **Credentials** come from each cloud's usual environment (`AWS_*`, `GOOGLE_*`,
//!   `AZURE_*`, as `object_store`'s `from_env` builders read them, instance and workload
//!   identities included). They are never logged, never stored in a job's records, and never
//!   handed to a task's processes (the fence's environment allow-list has none of them).
//! - **Inputs** ([`input`]): an object, a prefix (its objects, not recursive, skipping names
//!   that start with `_` or `.`) or a glob in the last segment. Splits are line-aligned byte
//!   ranges as for files; a worker reads its split with ranged GETs into its own folder.
//! - **Outputs** ([`output`]): a reduce attempt uploads its part as a multipart upload that it
//!   does not complete, and leaves a *pending* record where its file would have been; the
//!   master's commit completes the chosen uploads and writes `_SUCCESS` (a manifest) last, as
//!   Hadoop's S3A magic committer does. Nothing is renamed.

pub mod input;
pub mod output;
mod url;

pub use url::{is_object_url, Cloud, ObjectUrl};

use object_store::multipart::MultipartStore;
use object_store::ObjectStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A store GridMR can read from and commit to: objects plus multipart uploads that a job's
/// commit completes.
pub trait Bucket: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Bucket for T {}

/// Why an object-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A URL that is not a plain object URL.
    #[error("{url:?} is not a usable object URL: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A bucket `OBJECT_BUCKETS` does not name.
    #[error("{url} is in a bucket this cluster may not use (OBJECT_BUCKETS: {allowed})")]
    NotAllowed {
        /// The URL.
        url: String,
        /// The allowed buckets, as configured.
        allowed: String,
    },
    /// An input that names no object.
    #[error("input {spec}: {reason}")]
    Input {
        /// The input as given.
        spec: String,
        /// Why.
        reason: String,
    },
    /// The store answered with an error.
    #[error("{op} {url}: {source}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// On what.
        url: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A local file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pending-upload record or a manifest that is not what it must be.
    #[error("{what}: {reason}")]
    Record {
        /// Which record.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

impl ObjectError {
    /// Whether the caller asked for something it may not or that does not exist (a 400),
    /// rather than the store or this machine failing.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            ObjectError::BadUrl { .. } | ObjectError::NotAllowed { .. } | ObjectError::Input { .. }
        )
    }

    /// Whether the store said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ObjectError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }

    pub(crate) fn store(op: &'static str, url: &ObjectUrl, source: object_store::Error) -> Self {
        ObjectError::Store {
            op,
            url: url.to_string(),
            source,
        }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ObjectError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// The buckets a process may use and one client per bucket, made on first use from the
/// environment.
#[derive(Clone, Default)]
pub struct ObjectStores {
    allowed: Vec<ObjectUrl>,
    clients: Arc<Mutex<Clients>>,
}

/// One client per bucket, by cloud and name.
type Clients = HashMap<(Cloud, String), Arc<dyn Bucket>>;

impl std::fmt::Debug for ObjectStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStores")
            .field("allowed", &self.allowed_list())
            .finish_non_exhaustive()
    }
}

impl ObjectStores {
    /// The stores of the buckets `allowed` names (`OBJECT_BUCKETS`: bucket URLs such as
    /// `s3://data`; a key after the bucket is refused, so an entry always means the whole
    /// bucket).
    pub fn new<S: AsRef<str>>(allowed: &[S]) -> Result<Self, ObjectError> {
        let allowed = allowed
            .iter()
            .map(|s| {
                let url: ObjectUrl = s.as_ref().trim_end_matches('/').parse()?;
                match url.key().is_empty() {
                    true => Ok(url),
                    false => Err(ObjectError::BadUrl {
                        url: s.as_ref().to_owned(),
                        reason: "OBJECT_BUCKETS names buckets (s3://bucket), not keys".into(),
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ObjectStores {
            allowed,
            clients: Arc::default(),
        })
    }

    /// The same buckets with clients of their own, for work done on a runtime of its own
    /// (a client's pooled connections belong to the runtime that made them).
    pub fn fresh(&self) -> Self {
        ObjectStores {
            allowed: self.allowed.clone(),
            clients: Arc::default(),
        }
    }

    /// Runs `work` with clients of its own on a runtime of its own, on a thread of its own:
    /// callable from synchronous code anywhere, inside an asynchronous runtime or not (a
    /// commit on the blocking pool, a master recovering as it starts).
    pub fn block_on<T: Send, F: std::future::Future<Output = T>>(
        &self,
        work: impl FnOnce(ObjectStores) -> F + Send,
    ) -> std::io::Result<T> {
        let stores = self.fresh();
        std::thread::scope(|s| {
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(rt.block_on(work(stores)))
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("an object-store call panicked")))
        })
    }

    /// Whether any bucket is allowed.
    pub fn enabled(&self) -> bool {
        !self.allowed.is_empty()
    }

    fn allowed_list(&self) -> String {
        match self.allowed.is_empty() {
            true => "none".into(),
            false => {
                let names: Vec<String> = self.allowed.iter().map(|u| u.to_string()).collect();
                names.join(",")
            }
        }
    }

    /// Parses `url` and checks that its bucket is allowed.
    pub fn check(&self, url: &str) -> Result<ObjectUrl, ObjectError> {
        let parsed: ObjectUrl = url.parse()?;
        if self.allowed.contains(&parsed.root()) {
            Ok(parsed)
        } else {
            Err(ObjectError::NotAllowed {
                url: parsed.to_string(),
                allowed: self.allowed_list(),
            })
        }
    }

    /// Uses `client` for `bucket` (an allowed one) instead of one made from the environment:
    /// tests hand in an in-memory store.
    pub fn insert(&self, bucket: &ObjectUrl, client: Arc<dyn Bucket>) {
        let key = (bucket.cloud(), bucket.bucket().to_owned());
        self.lock().insert(key, client);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client of `url`'s bucket, which must be allowed.
    pub fn client(&self, url: &ObjectUrl) -> Result<Arc<dyn Bucket>, ObjectError> {
        self.check(&url.to_string())?;
        let key = (url.cloud(), url.bucket().to_owned());
        if let Some(c) = self.lock().get(&key) {
            return Ok(c.clone());
        }
        let client = build(url)?;
        Ok(self.lock().entry(key).or_insert(client).clone())
    }
}

/// A client for `url`'s bucket configured from the environment.
fn build(url: &ObjectUrl) -> Result<Arc<dyn Bucket>, ObjectError> {
    use object_store::{aws, azure, gcp};
    let bucket = url.bucket();
    let fail = |source| ObjectError::store("connect to", &url.root(), source);
    Ok(match url.cloud() {
        Cloud::S3 => Arc::new(
            aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(fail)?,
        ),
        Cloud::Gcs => Arc::new(
            gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(fail)?,
        ),
        Cloud::Azure => Arc::new(
            azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(bucket)
                .build()
                .map_err(fail)?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_buckets_are_used() {
        let stores = ObjectStores::new(&["s3://input", "gs://output/"]).unwrap();
        assert!(stores.check("s3://input/a.txt").is_ok());
        assert!(stores.check("gs://output/x/").is_ok());
        for url in [
            "s3://output/a",
            "gs://input/a",
            "az://input/a",
            "s3://input2/a",
        ] {
            let e = stores.check(url).unwrap_err();
            assert!(
                matches!(e, ObjectError::NotAllowed { .. }) && e.is_request(),
                "{url}"
            );
        }
        assert!(ObjectStores::new(&["s3://input/key"]).is_err());
        let none = ObjectStores::new::<&str>(&[]).unwrap();
        assert!(!none.enabled());
        assert!(none
            .check("s3://input/a")
            .unwrap_err()
            .to_string()
            .contains("none"));
    }
}
