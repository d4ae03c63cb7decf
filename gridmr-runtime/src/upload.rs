//! What `gridmr submit` sends ahead of a job: the local files it names that
//! the master cannot read where they are.
//!
//! A path the master can read as it is (it lies in the master's shared
//! folder or one of its `INPUT_ROOTS`, at the same place here) is passed
//! through. A local file,
//! folder or glob elsewhere goes up into one upload folder
//! (`POST /uploads`, then a streamed `PUT` per file), and the job names its
//! copy there: an input as `input<N>/…`, a script as `script/<name>`, a
//! streaming file as `files/<name>`. A folder's visible files go up (not its
//! subfolders, as a folder input is read); a glob's matches go up side by
//! side. Anything that is not a local file (a URL, a path that only the
//! master has) is passed through for the master to judge.

use crate::error::{Error, Result};
use gridmr_net::rest::UploadAnswer;
use gridmr_net::Client;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Stages a submission's local paths.
pub struct Stager<'a> {
    client: &'a Client,
    /// The folders the master reads inputs from (its share and
    /// `INPUT_ROOTS`) that exist here too (resolved): a path in one is
    /// taken to be the same file there, as on a cluster with one mount.
    readable: Vec<PathBuf>,
    upload: Option<UploadAnswer>,
    files: u64,
    bytes: u64,
}

/// Whether a name is one a folder input skips (as `list_input` does).
fn hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.') || n.starts_with('_'))
}

impl<'a> Stager<'a> {
    /// A stager for submissions to `client`'s master (it asks the master
    /// where its shared folder is).
    pub async fn new(client: &'a Client) -> Result<Self> {
        let health = client.health().await?;
        // The master tells its folders only to a caller it accepts: without them every local
        // path would look like one to upload, and the upload would be refused anyway.
        if health.auth && health.shared_dir.is_none() {
            let why = if client.has_token() {
                "does not accept the cluster token this command has (a token of another \
                 cluster?)"
            } else {
                "requires the cluster token and this command has none"
            };
            return Err(Error::setting(
                "cluster token",
                format!(
                    "the master {why}: run `gridmr login --master URL`, or set SHARED_DIR to \
                     the share (its .gridmr/cluster.token), GRIDMR_TOKEN_FILE or GRIDMR_TOKEN"
                ),
            ));
        }
        let readable = health
            .shared_dir
            .iter()
            .chain(&health.input_roots)
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .collect();
        Ok(Stager {
            client,
            readable,
            upload: None,
            files: 0,
            bytes: 0,
        })
    }

    /// Whether the master reads `path` where it is.
    fn master_reads(&self, path: &Path) -> bool {
        std::fs::canonicalize(path)
            .is_ok_and(|p| self.readable.iter().any(|root| p.starts_with(root)))
    }

    /// The local files `spec` names: itself, a folder's visible files, or
    /// a glob's matches. Empty when it names nothing here.
    fn local_files(spec: &Path) -> Vec<PathBuf> {
        if spec.is_file() {
            return vec![spec.to_path_buf()];
        }
        if spec.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(spec)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_file() && !hidden(p))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            return files;
        }
        let text = spec.to_string_lossy();
        if text.contains(['*', '?', '[']) {
            if let Ok(paths) = glob::glob(&text) {
                let mut files: Vec<PathBuf> = paths
                    .flatten()
                    .filter(|p| p.is_file() && !hidden(p))
                    .collect();
                files.sort();
                return files;
            }
        }
        Vec::new()
    }

    async fn upload(&mut self) -> Result<UploadAnswer> {
        if let Some(u) = &self.upload {
            return Ok(u.clone());
        }
        let u = self.client.create_upload().await?;
        self.upload = Some(u.clone());
        Ok(u)
    }

    async fn put(&mut self, name: &str, local: &Path) -> Result<String> {
        let upload = self.upload().await?;
        let done = self
            .client
            .upload_file(&upload.upload_id, name, local)
            .await?;
        self.files += 1;
        self.bytes += done.bytes;
        Ok(done.path)
    }

    /// The path the job names for input `spec` (the `slot`-th input).
    pub async fn input(&mut self, spec: &str, slot: usize) -> Result<String> {
        if spec.contains("://") {
            return Ok(spec.to_owned());
        }
        let path = absolute(spec);
        let files = Self::local_files(&path);
        if files.is_empty() || files.iter().all(|f| self.master_reads(f)) {
            return Ok(path.display().to_string());
        }
        // What goes up is what is here: a link would upload a file from elsewhere, which a
        // job on the share could not name (links are refused there too).
        if let Some(link) = files.iter().find(|f| {
            f.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
        }) {
            return Err(Error::setting(
                "input",
                format!(
                    "{} is a symbolic link; an upload takes regular files only (name the file \
                     it points to)",
                    link.display()
                ),
            ));
        }
        if path.is_dir() {
            let skipped = std::fs::read_dir(&path)
                .map(|d| d.flatten().filter(|e| hidden(&e.path())).count())
                .unwrap_or(0);
            if skipped > 0 {
                eprintln!(
                    "note: {skipped} name(s) in {} starting with '.' or '_' not uploaded \
                     (a folder input skips them, as Hadoop's does)",
                    path.display()
                );
            }
        }
        let folder = format!("input{slot}");
        if path.is_file() {
            let name = format!("{folder}/{}", file_name(&path)?);
            return self.put(&name, &path).await;
        }
        // A folder or a glob: its files side by side in one folder, which
        // the job reads as its input.
        let mut names = BTreeSet::new();
        for (i, f) in files.iter().enumerate() {
            let mut name = file_name(f)?;
            if !names.insert(name.clone()) {
                name = format!("{i}-{name}");
                names.insert(name.clone());
            }
            self.put(&format!("{folder}/{name}"), f).await?;
        }
        let upload = self.upload().await?;
        Ok(format!("{}/{folder}", upload.path))
    }

    /// The path the job names for a single file (a script, a streaming
    /// `--file`), uploaded into `folder` when the master cannot read it.
    pub async fn file(&mut self, spec: &str, folder: &str) -> Result<String> {
        if spec.contains("://") {
            return Ok(spec.to_owned());
        }
        let path = absolute(spec);
        if !path.is_file() || self.master_reads(&path) {
            return Ok(path.display().to_string());
        }
        let name = format!("{folder}/{}", file_name(&path)?);
        self.put(&name, &path).await
    }

    /// Says on stderr what went up, if anything did.
    pub fn report(&self) {
        if let Some(u) = &self.upload {
            eprintln!(
                "uploaded {} file(s), {} bytes, to {}",
                self.files, self.bytes, u.path
            );
        }
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::setting("input", format!("{} has no usable name", path.display())))
}

/// A relative path (or glob) resolved against the current folder, as a
/// shell user means it.
pub fn absolute(path: &str) -> PathBuf {
    let p = Path::new(path);
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
