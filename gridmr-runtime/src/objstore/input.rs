//! Object inputs: listing what an input URL names, and reading one split.
//!
//! An input URL names one object (`s3://b/books/a.txt`), a prefix's objects
//! (`s3://b/books/`, or `s3://b/books` when no object has that key) or those whose last segment
//! matches a glob (`s3://b/books/*.txt`). Listing is not recursive, and names starting with `_`
//! or `.` are skipped, as for folders. Inputs must not change while a job reads them (as
//! files must not).
//!
//! A split is read as a file's is ([`gridmr_core::input`]): it owns the lines that begin in
//! `[start, end)`. The worker GETs `[start - 1, end)` (the byte before tells whether `start`
//! begins a line) and then, in small ranged GETs, the rest of the line that crosses `end`, into
//! a local file of its own; the map then reads that file as a split of the same lines.

use super::{ObjectError, ObjectStores};
use futures_util::StreamExt;
use gridmr_core::input::{InputFile, InputSplit};
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How much past a split's end one GET asks for while looking for the end of its last line.
const TAIL_STEP: u64 = 64 << 10;

/// Whether an object's name (its last segment) is hidden, as `_SUCCESS` and `.part` are.
fn hidden(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.starts_with('_') || name.starts_with('.') || name.is_empty()
}

/// Lists the objects `spec` names, sorted by key, each marked as read for `input`.
pub async fn list_input(
    stores: &ObjectStores,
    spec: &str,
    input: u32,
) -> Result<Vec<InputFile>, ObjectError> {
    let url = stores.check(spec)?;
    let client = stores.client(&url)?;
    let none = |reason: &str| ObjectError::Input {
        spec: url.to_string(),
        reason: reason.to_owned(),
    };
    let (dir, name) = match url.key().rsplit_once('/') {
        Some((d, n)) => (d.to_owned(), n.to_owned()),
        None => (String::new(), url.key().to_owned()),
    };
    let glob = name.contains(['*', '?', '[']);
    if dir.contains(['*', '?', '[']) {
        return Err(none("a glob may only be in the last segment"));
    }
    let mut found = Vec::new();
    if !glob && !name.is_empty() {
        match client.head(&url.path()).await {
            Ok(meta) => found.push((meta.location.to_string(), meta.size)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(ObjectError::store("head", &url, e)),
        }
    }
    if found.is_empty() {
        let (prefix, pattern) = match glob {
            true => {
                let p = glob::Pattern::new(&name)
                    .map_err(|e| none(&format!("bad glob pattern: {e}")))?;
                (url.with_key(&dir), Some(p))
            }
            false => (url.clone(), None),
        };
        let listed = client
            .list_with_delimiter(Some(&prefix.path()))
            .await
            .map_err(|e| ObjectError::store("list", &prefix, e))?;
        for meta in listed.objects {
            let key = meta.location.to_string();
            let last = key.rsplit('/').next().unwrap_or(&key);
            if hidden(&key) || pattern.as_ref().is_some_and(|p| !p.matches(last)) {
                continue;
            }
            found.push((key, meta.size));
        }
    }
    if found.is_empty() {
        return Err(none("names no object"));
    }
    found.sort();
    Ok(found
        .into_iter()
        .map(|(key, len)| InputFile {
            path: PathBuf::from(url.with_key(&key).to_string()),
            len,
            input,
        })
        .collect())
}

/// Lists every input, local ones through [`gridmr_core::input::list_input`] (on the blocking
/// pool) and object ones through [`list_input`], in the order given.
pub async fn list_inputs(
    stores: &ObjectStores,
    specs: &[String],
) -> Result<Vec<InputFile>, ObjectError> {
    let mut all = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let input = u32::try_from(i).map_err(|_| ObjectError::Input {
            spec: spec.clone(),
            reason: "too many inputs".into(),
        })?;
        if super::is_object_url(spec) {
            all.extend(list_input(stores, spec, input).await?);
        } else {
            let s = spec.clone();
            let listed = tokio::task::spawn_blocking(move || gridmr_core::input::list_input(&s))
                .await
                .map_err(|e| ObjectError::Input {
                    spec: spec.clone(),
                    reason: e.to_string(),
                })?
                .map_err(|e| ObjectError::Input {
                    spec: spec.clone(),
                    reason: e.to_string(),
                })?;
            all.extend(listed.into_iter().map(|f| InputFile { input, ..f }));
        }
    }
    Ok(all)
}

/// Reads `split` of an object into `dest` (a new file) and returns the split of the same lines in
/// that file.
pub async fn fetch_split(
    stores: &ObjectStores,
    split: &InputSplit,
    dest: &Path,
) -> Result<InputSplit, ObjectError> {
    let url = stores.check(&split.path.to_string_lossy())?;
    let client = stores.client(&url)?;
    let path = url.path();
    let size = client
        .head(&path)
        .await
        .map_err(|e| ObjectError::store("head", &url, e))?
        .size;
    let from = split.start.saturating_sub(1).min(size);
    let end = split.end.min(size);
    // A new file, never one already there or a link planted in its place: the master samples
    // into the shared temporary folder under a name others could guess.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| ObjectError::io("create", dest, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let write = |out: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| {
        out.write_all(b)
            .map_err(|e| ObjectError::io("write", dest, e))
    };
    if end > from {
        let options = GetOptions {
            range: Some(GetRange::Bounded(from..end)),
            ..Default::default()
        };
        let got = client
            .get_opts(&path, options)
            .await
            .map_err(|e| ObjectError::store("get", &url, e))?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            write(
                &mut out,
                &chunk.map_err(|e| ObjectError::store("read", &url, e))?,
            )?;
        }
    }
    // The rest of the line that crosses `end` (none when `end` follows a newline).
    let mut pos = end;
    let ends_line = end == 0 || end <= from || last_byte_is_newline(dest, &mut out)?;
    if !ends_line {
        while pos < size {
            let upto = (pos + TAIL_STEP).min(size);
            let bytes = client
                .get_range(&path, pos..upto)
                .await
                .map_err(|e| ObjectError::store("get", &url, e))?;
            match memchr::memchr(b'\n', &bytes) {
                Some(i) => {
                    write(&mut out, &bytes[..=i])?;
                    break;
                }
                None => write(&mut out, &bytes)?,
            }
            pos = upto;
        }
    }
    out.flush().map_err(|e| ObjectError::io("write", dest, e))?;
    Ok(InputSplit {
        path: dest.to_path_buf(),
        start: split.start.min(size) - from,
        end: end - from,
        input: split.input,
    })
}

/// Samples for a typed job's planning hook (`gridmr_core::PlanContext::first_lines`) where the
/// input may lie in an object store: an object's window is read with ranged GETs into a file of
/// its own (removed after), a file's is read in place.
#[derive(Debug)]
pub struct Samples {
    stores: ObjectStores,
}

impl Samples {
    /// Samples read through `stores` (its allow-list holds).
    pub fn new(stores: ObjectStores) -> Self {
        Samples { stores }
    }
}

impl gridmr_core::input::SampleSource for Samples {
    /// Reads a window of 256 KiB first and, while it holds fewer than `max_lines` lines, one
    /// sized from the lines read so far (a quarter more), up to `max_bytes`: a planner that
    /// wants a few thousand short lines fetches a few hundred KiB through the master's link,
    /// not `max_bytes` of it at every place it samples.
    fn first_lines(
        &self,
        split: &InputSplit,
        max_lines: usize,
        max_bytes: u64,
    ) -> gridmr_core::Result<Vec<Vec<u8>>> {
        use gridmr_core::input::FileSamples;
        if !super::is_object_url(&split.path.to_string_lossy()) {
            return FileSamples.first_lines(split, max_lines, max_bytes);
        }
        if let Some(codec) = gridmr_core::input::Codec::of(&split.path) {
            // A compressed object's lines all belong to its start; a window from there is
            // decompressed as far as it goes.
            if split.start > 0 {
                return Ok(Vec::new());
            }
            return growing_windows(split, max_lines, max_bytes, |w| {
                let prefix = self.window_bytes(w)?;
                codec
                    .first_lines(&prefix, max_lines, w.end >= split.end)
                    .map_err(|e| sample_error(w, format!("cannot decompress: {e}")))
            });
        }
        growing_windows(split, max_lines, max_bytes, |w| {
            self.window_lines(w, max_lines)
        })
    }
}

/// The first window a sample reads of an object: enough for a few thousand short lines in one
/// ranged read (each read is a request, and a request to a store costs tens of milliseconds).
const FIRST_SAMPLE_BYTES: u64 = 256 << 10;

/// Up to `max_lines` lines of `split` by `read` (the lines of one window of it): a window of
/// [`FIRST_SAMPLE_BYTES`] first, then, while too few lines came, one sized from them (a
/// quarter more, at least twice as large), until the split or `max_bytes` ends.
fn growing_windows(
    split: &InputSplit,
    max_lines: usize,
    max_bytes: u64,
    mut read: impl FnMut(&InputSplit) -> gridmr_core::Result<Vec<Vec<u8>>>,
) -> gridmr_core::Result<Vec<Vec<u8>>> {
    let mut want = FIRST_SAMPLE_BYTES.min(max_bytes);
    loop {
        let window = InputSplit {
            end: split.end.min(split.start.saturating_add(want)),
            ..split.clone()
        };
        let lines = read(&window)?;
        if lines.len() >= max_lines || window.end >= split.end || want >= max_bytes {
            return Ok(lines);
        }
        let per_line = want / lines.len().max(1) as u64;
        want = (per_line.saturating_mul(max_lines as u64) / 4 * 5)
            .max(want.saturating_mul(2))
            .min(max_bytes);
    }
}

impl Samples {
    /// The bytes of `window`, an object's range (a sample's window: at most a few MiB).
    fn window_bytes(&self, window: &InputSplit) -> gridmr_core::Result<Vec<u8>> {
        let w = window.clone();
        let got = self.stores.block_on(move |stores| async move {
            let url = stores.check(&w.path.to_string_lossy())?;
            let bytes = stores
                .client(&url)?
                .get_range(&url.path(), w.start..w.end)
                .await
                .map_err(|e| ObjectError::store("get", &url, e))?;
            Ok::<_, ObjectError>(bytes.to_vec())
        });
        match got {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(sample_error(window, e.to_string())),
            Err(e) => Err(sample_error(window, e.to_string())),
        }
    }

    /// Up to `max_lines` lines of `window`, an object's range, read through a temporary file.
    fn window_lines(
        &self,
        window: &InputSplit,
        max_lines: usize,
    ) -> gridmr_core::Result<Vec<Vec<u8>>> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dest = std::env::temp_dir().join(format!("gridmr-sample-{}-{n}", std::process::id()));
        let (w, d) = (window.clone(), dest.clone());
        let fetched = self
            .stores
            .block_on(move |stores| async move { fetch_split(&stores, &w, &d).await });
        let lines = match fetched {
            Ok(Ok(local)) => gridmr_core::input::read_first_lines(&local, max_lines),
            Ok(Err(e)) => Err(sample_error(window, e.to_string())),
            Err(e) => Err(sample_error(window, e.to_string())),
        };
        let _ = std::fs::remove_file(&dest);
        lines
    }
}

fn sample_error(split: &InputSplit, reason: String) -> gridmr_core::Error {
    gridmr_core::Error::Input {
        spec: split.path.display().to_string(),
        reason,
    }
}

/// Whether the last byte written so far is `\n`.
fn last_byte_is_newline(
    dest: &Path,
    out: &mut std::io::BufWriter<std::fs::File>,
) -> Result<bool, ObjectError> {
    use std::io::{Read, Seek, SeekFrom};
    out.flush().map_err(|e| ObjectError::io("write", dest, e))?;
    let mut f = std::fs::File::open(dest).map_err(|e| ObjectError::io("open", dest, e))?;
    let len = f
        .metadata()
        .map_err(|e| ObjectError::io("stat", dest, e))?
        .len();
    if len == 0 {
        return Ok(true);
    }
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))
        .and_then(|_| f.read_exact(&mut b))
        .map_err(|e| ObjectError::io("read", dest, e))?;
    Ok(b[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_core::input::{plan_splits, InputFormat, LineReader, SplitPolicy};
    use object_store::memory::InMemory;
    use std::sync::Arc;

    async fn stores_with(objects: &[(&str, &[u8])]) -> ObjectStores {
        let stores = ObjectStores::new(&["s3://data"]).unwrap();
        let mem = Arc::new(InMemory::new());
        for (key, body) in objects {
            let path = object_store::path::Path::from(*key);
            mem.put(&path, body.to_vec().into()).await.unwrap();
        }
        stores.insert(&"s3://data".parse().unwrap(), mem);
        stores
    }

    fn lines_of(split: &InputSplit) -> Vec<String> {
        let mut r = LineReader::open(split, 64).unwrap();
        let mut v = Vec::new();
        while let Some((_, line)) = r.next_line().unwrap() {
            v.push(String::from_utf8_lossy(line).into_owned());
        }
        v
    }

    #[tokio::test]
    async fn listing_follows_the_rules_for_folders_and_globs() {
        let stores = stores_with(&[
            ("in/a.txt", b"a\n"),
            ("in/b.txt", b"bb\n"),
            ("in/c.csv", b"c\n"),
            ("in/_SUCCESS", b""),
            ("in/.hidden", b""),
            ("in/sub/d.txt", b"d\n"),
            ("inside.txt", b"x\n"),
        ])
        .await;
        let keys = |files: Vec<InputFile>| -> Vec<String> {
            files.iter().map(|f| f.path.display().to_string()).collect()
        };
        let dir = keys(list_input(&stores, "s3://data/in/", 0).await.unwrap());
        assert_eq!(
            dir,
            [
                "s3://data/in/a.txt",
                "s3://data/in/b.txt",
                "s3://data/in/c.csv"
            ]
        );
        assert_eq!(
            dir,
            keys(list_input(&stores, "s3://data/in", 0).await.unwrap())
        );
        let glob = list_input(&stores, "s3://data/in/*.txt", 3).await.unwrap();
        assert_eq!(
            glob.iter().map(|f| (f.len, f.input)).collect::<Vec<_>>(),
            [(2, 3), (3, 3)]
        );
        let one = keys(list_input(&stores, "s3://data/in/b.txt", 0).await.unwrap());
        assert_eq!(one, ["s3://data/in/b.txt"]);
        for spec in ["s3://data/none", "s3://data/in/*.json", "s3://data/*/a.txt"] {
            let e = list_input(&stores, spec, 0).await.unwrap_err();
            assert!(e.is_request(), "{spec}: {e}");
        }
        assert!(list_input(&stores, "s3://other/in/", 0)
            .await
            .unwrap_err()
            .is_request());
    }

    /// A sample reads a small window first and grows it only as its lines need, and gets the
    /// lines that reading the whole `max_bytes` at once gets.
    #[test]
    fn samples_read_windows_as_large_as_their_lines_need() {
        use gridmr_core::input::{FileSamples, SampleSource};
        let dir = tempfile::tempdir().unwrap();
        for (line_len, max_lines, max_bytes, reads) in [
            // TeraSort's rows: 1,600 of them fit in the first window.
            (100usize, 1_600usize, 1u64 << 20, 1usize),
            // More rows than fit: then about as many as are wanted, and a quarter more.
            (100, 5_000, 1 << 20, 2),
            // Long lines: the second window is sized from the first.
            (5_000, 100, 1 << 20, 2),
            // Lines that need more than max_bytes: it stops there.
            (5_000, 1_000, 1 << 20, 2),
            // Few lines: the first window holds them.
            (100, 10, 1 << 20, 1),
        ] {
            let path = dir.path().join(format!("rows-{line_len}-{max_lines}"));
            let row = |i: usize| format!("{i:0w$}\n", w = line_len - 1);
            let text: String = (0..3_000).map(row).collect();
            std::fs::write(&path, &text).unwrap();
            // A split that starts inside a line and ends before the file does.
            let split = InputSplit {
                path: path.clone(),
                start: 12_345,
                end: text.len() as u64 - 1_000,
                input: 0,
            };
            let mut windows = Vec::new();
            let got = growing_windows(&split, max_lines, max_bytes, |w| {
                windows.push(w.end - w.start);
                FileSamples.first_lines(w, max_lines, u64::MAX)
            })
            .unwrap();
            let want = FileSamples
                .first_lines(&split, max_lines, max_bytes)
                .unwrap();
            assert_eq!(got, want, "lines of {line_len} bytes, {max_lines} wanted");
            assert_eq!(windows.len(), reads, "{windows:?}");
            assert_eq!(windows[0], FIRST_SAMPLE_BYTES);
            assert!(windows.iter().all(|w| *w <= max_bytes), "{windows:?}");
            let needed = (line_len * max_lines) as u64;
            assert!(
                windows.iter().sum::<u64>() <= (2 * needed).max(FIRST_SAMPLE_BYTES) + max_bytes / 4,
                "read {windows:?} for {needed} bytes of lines"
            );
        }
        // A split shorter than the first window: one read, to its end.
        let path = dir.path().join("rows-100-1600");
        let split = InputSplit {
            path,
            start: 0,
            end: 5_000,
            input: 0,
        };
        let mut windows = Vec::new();
        let got = growing_windows(&split, 1_600, 1 << 20, |w| {
            windows.push(w.end - w.start);
            FileSamples.first_lines(w, 1_600, u64::MAX)
        })
        .unwrap();
        assert_eq!((got.len(), windows), (50, vec![5_000]));
    }

    /// Every way of cutting an object gives the lines that cutting the same bytes as a file
    /// gives, each line once.
    #[tokio::test]
    async fn fetched_splits_hold_the_same_lines_as_file_splits() {
        let mut text = Vec::new();
        for i in 0..300 {
            let line = "word ".repeat(i % 37) + &i.to_string();
            text.extend_from_slice(line.as_bytes());
            text.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
        }
        text.extend_from_slice(b"no final newline");
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("whole.txt");
        std::fs::write(&local, &text).unwrap();
        let stores = stores_with(&[("t.txt", &text)]).await;
        for max in [7u64, 100, 1000, 4096, 1 << 20] {
            let policy = SplitPolicy {
                max_split_bytes: max,
                ..SplitPolicy::default()
            };
            let file = |path: PathBuf| InputFile {
                path,
                len: text.len() as u64,
                input: 0,
            };
            let object = plan_splits(
                &[file("s3://data/t.txt".into())],
                &policy,
                InputFormat::Lines,
            );
            let files = plan_splits(&[file(local.clone())], &policy, InputFormat::Lines);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for (i, (o, f)) in object.iter().zip(&files).enumerate() {
                let dest = dir.path().join(format!("s{max}-{i}"));
                let fetched = fetch_split(&stores, o, &dest).await.unwrap();
                got.extend(lines_of(&fetched));
                want.extend(lines_of(f));
            }
            assert_eq!(got, want, "max_split_bytes {max}");
            assert_eq!(got.len(), 301);
        }
    }
}
