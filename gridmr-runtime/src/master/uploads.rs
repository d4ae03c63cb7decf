//! Uploads: files a client sends to the shared folder for a job it is about
//! to submit (the CLI's local `--input`, `--script` and `--file`).
//!
//! - `POST /uploads` makes a fresh folder `$SHARED_DIR/uploads/up-<32 hex>/`.
//! - `PUT /uploads/{id}/{name}` streams a request body into a file of it
//!   (`name` may hold `/`: `input0/part-1.txt`), never buffered whole: at
//!   most `MAX_UPLOAD_BYTES` per file, written under a temporary name and
//!   linked into place complete, so a job never reads half a file, and never
//!   over an existing one.
//! - `DELETE /uploads/{id}` removes it.
//!
//! A job whose input, script or files lie in an upload takes it: at
//! submission the folder moves into the job's own (`<job>/uploads/`), so it
//! goes with the job (`DELETE /jobs/{id}?purge=true`). An upload no job took
//! is removed `UPLOAD_TTL_S` after it was last written.
//!
//! Names are checked component by component (no `..`, no leading `.`, no
//! empty part), folders are made one level at a time inside the upload, and
//! files are opened with `O_NOFOLLOW`: a client cannot write outside its
//! upload.

use axum::body::Body;
use futures_util::StreamExt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The folder of uploads in the shared folder.
pub(crate) const DIR: &str = "uploads";
/// Most folder levels in an upload's file names.
const MAX_DEPTH: usize = 16;
/// Longest file name accepted.
const MAX_NAME_BYTES: usize = 1024;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    /// The id or the name is not acceptable.
    #[error("{0}")]
    Bad(String),
    /// No such upload.
    #[error("no upload {0:?}")]
    Unknown(String),
    /// The file exists already.
    #[error("{0} was uploaded already")]
    Exists(String),
    /// The body ran past the cap.
    #[error("the file is larger than MAX_UPLOAD_BYTES ({0} bytes)")]
    TooLarge(u64),
    /// The body broke off.
    #[error("reading the upload: {0}")]
    Body(String),
    /// The shared folder refused it (disk full, permissions).
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> UploadError + 'a {
    move |source| UploadError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// `$SHARED_DIR/uploads`.
pub(crate) fn root(shared: &Path) -> PathBuf {
    shared.join(DIR)
}

/// An upload id: `up-` and 32 lower-case hex digits.
fn check_id(id: &str) -> Result<(), UploadError> {
    let ok = id.strip_prefix("up-").is_some_and(|h| {
        h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(())
    } else {
        Err(UploadError::Bad(format!(
            "{:?} is not an upload id",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// The parts of a file name inside an upload, each a plain name.
fn check_name(name: &str) -> Result<Vec<&str>, UploadError> {
    let bad = |why: &str| {
        UploadError::Bad(format!(
            "file name {:?}: {why}",
            name.chars().take(64).collect::<String>()
        ))
    };
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(bad("1 to 1024 bytes, please"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(bad("too many folders"));
    }
    for p in &parts {
        let plain = !p.is_empty()
            && !p.starts_with('.')
            && !p.contains('\0')
            && Path::new(p).components().count() == 1
            && matches!(Path::new(p).components().next(), Some(Component::Normal(_)));
        if !plain {
            return Err(bad(
                "each part must be a plain name (no `..`, no leading `.`)",
            ));
        }
    }
    Ok(parts)
}

/// An upload's folder, which must exist (and be a folder, not a link).
fn folder(shared: &Path, id: &str) -> Result<PathBuf, UploadError> {
    check_id(id)?;
    let dir = root(shared).join(id);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        _ => Err(UploadError::Unknown(id.to_owned())),
    }
}

/// A random upload id.
fn fresh_id() -> Result<String, UploadError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| UploadError::Io {
        op: "draw an id for",
        path: PathBuf::from(DIR),
        source: io::Error::other(e.to_string()),
    })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("up-{hex}"))
}

/// Makes a new, empty upload; returns its id and folder.
pub(crate) fn create(shared: &Path) -> Result<(String, PathBuf), UploadError> {
    let root = root(shared);
    match std::fs::create_dir(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", &root)(e)),
    }
    let id = fresh_id()?;
    let dir = root.join(&id);
    std::fs::create_dir(&dir).map_err(io_err("create", &dir))?;
    Ok((id, dir))
}

/// Streams `body` into file `name` of upload `id`, at most `cap` bytes.
/// Returns the file's path and size.
pub(crate) async fn write(
    shared: &Path,
    id: &str,
    name: &str,
    body: Body,
    cap: u64,
) -> Result<(PathBuf, u64), UploadError> {
    let dir = folder(shared, id)?;
    let parts = check_name(name)?;
    let (file_name, folders) = parts
        .split_last()
        .ok_or_else(|| UploadError::Bad("an empty file name".into()))?;
    let mut parent = dir;
    for f in folders {
        parent.push(f);
        match std::fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", &parent)(e)),
        }
        // Made here, or there already: it must be a real folder.
        if !std::fs::symlink_metadata(&parent).is_ok_and(|m| m.is_dir()) {
            return Err(UploadError::Bad(format!("{} is not a folder", f)));
        }
    }
    let dest = parent.join(file_name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        return Err(UploadError::Exists(name.to_owned()));
    }
    let tmp = parent.join(format!(".{file_name}.part-{}", &fresh_id()?[3..11]));
    let result = stream_to(&tmp, body, cap).await;
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // A link, unlike a rename, never replaces a file another request put
    // there meanwhile.
    let linked = std::fs::hard_link(&tmp, &dest);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((dest, size)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(UploadError::Exists(name.to_owned()))
        }
        Err(e) => Err(io_err("link", &dest)(e)),
    }
}

async fn stream_to(tmp: &Path, body: Body, cap: u64) -> Result<u64, UploadError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .await
        .map_err(io_err("create", tmp))?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
        size += chunk.len() as u64;
        if size > cap {
            return Err(UploadError::TooLarge(cap));
        }
        file.write_all(&chunk).await.map_err(io_err("write", tmp))?;
    }
    file.sync_all().await.map_err(io_err("sync", tmp))?;
    Ok(size)
}

/// Removes upload `id`.
pub(crate) fn delete(shared: &Path, id: &str) -> Result<(), UploadError> {
    let dir = folder(shared, id)?;
    std::fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
}

/// The upload a path of the shared folder lies in, if any: its id.
fn upload_of(shared: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root(shared)).ok()?;
    let id = rest.components().next()?.as_os_str().to_str()?;
    check_id(id).ok().map(|()| id.to_owned())
}

/// Moves every upload that one of `paths` lies in into `job_dir/uploads/`,
/// and points the paths there.
pub(crate) fn claim(
    shared: &Path,
    job_dir: &Path,
    paths: &mut [&mut PathBuf],
) -> Result<(), UploadError> {
    let taken = job_dir.join(DIR);
    for path in paths.iter_mut() {
        let Some(id) = upload_of(shared, path) else {
            continue;
        };
        let from = root(shared).join(&id);
        let to = taken.join(&id);
        if !to.exists() {
            match std::fs::create_dir(&taken) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create", &taken)(e)),
            }
            std::fs::rename(&from, &to).map_err(io_err("move", &from))?;
        }
        if let Ok(rest) = path.strip_prefix(&from) {
            **path = to.join(rest);
        }
    }
    Ok(())
}

/// The newest modification time in a folder, its files one level down and
/// their folders included (a file being written keeps it fresh).
fn last_written(dir: &Path, depth: usize) -> Option<SystemTime> {
    let mut newest = std::fs::symlink_metadata(dir).ok()?.modified().ok()?;
    if depth == 0 {
        return Some(newest);
    }
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        let t = if meta.is_dir() {
            last_written(&e.path(), depth - 1)
        } else {
            meta.modified().ok()
        };
        if let Some(t) = t {
            newest = newest.max(t);
        }
    }
    Some(newest)
}

/// Removes the uploads no job took that nobody wrote to for `ttl`.
/// Returns how many.
pub(crate) fn expire(shared: &Path, ttl: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(root(shared)) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let Some(id) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if check_id(&id).is_err() {
            continue;
        }
        let stale = last_written(&e.path(), MAX_DEPTH)
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= ttl);
        if stale && std::fs::remove_dir_all(e.path()).is_ok() {
            tracing::info!(upload = %id, "removed an upload no job took");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_are_checked() {
        for ok in ["a.txt", "input0/part-1.txt", "x/y/z"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/../b",
            "/etc/passwd",
            ".hidden",
            "a//b",
            "a/./b",
            "a\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a/".repeat(20)).is_err());
        assert!(check_id("up-0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["up-XYZ", "../up", "up-0123456789abcdef0123456789abcdeF", ""] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_file_streams_in_once_and_a_job_takes_its_upload() {
        let shared = tempfile::tempdir().unwrap();
        let (id, dir) = create(shared.path()).unwrap();
        let (path, size) = write(shared.path(), &id, "in/a.txt", Body::from("hello\n"), 100)
            .await
            .unwrap();
        assert_eq!((path.clone(), size), (dir.join("in/a.txt"), 6));
        // Not twice, not past the cap, not outside.
        let again = write(shared.path(), &id, "in/a.txt", Body::from("x"), 100).await;
        assert!(matches!(again, Err(UploadError::Exists(_))), "{again:?}");
        let big = write(shared.path(), &id, "big", Body::from(vec![0u8; 101]), 100).await;
        assert!(matches!(big, Err(UploadError::TooLarge(100))), "{big:?}");
        assert!(!dir.join("big").exists());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        // A planted link is not followed.
        std::os::unix::fs::symlink("/tmp", dir.join("link")).unwrap();
        let through = write(shared.path(), &id, "link/x", Body::from("x"), 100).await;
        assert!(matches!(through, Err(UploadError::Bad(_))), "{through:?}");

        let job = shared.path().join("jobs/job-000001");
        std::fs::create_dir_all(&job).unwrap();
        let mut input = path.clone();
        let mut elsewhere = shared.path().join("in/b.txt");
        claim(shared.path(), &job, &mut [&mut input, &mut elsewhere]).unwrap();
        assert_eq!(input, job.join("uploads").join(&id).join("in/a.txt"));
        assert_eq!(std::fs::read_to_string(&input).unwrap(), "hello\n");
        assert_eq!(elsewhere, shared.path().join("in/b.txt"));
        assert!(!dir.exists());
        assert!(matches!(
            delete(shared.path(), &id),
            Err(UploadError::Unknown(_))
        ));
    }

    #[test]
    fn untaken_uploads_expire() {
        let shared = tempfile::tempdir().unwrap();
        let (_, dir) = create(shared.path()).unwrap();
        assert_eq!(expire(shared.path(), Duration::from_secs(3600)), 0);
        assert_eq!(expire(shared.path(), Duration::ZERO), 1);
        assert!(!dir.exists());
    }
}
