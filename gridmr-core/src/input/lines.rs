//! Reading the records of one split: line-aligned text ranges and whole files.

use super::codec::{Codec, Counted};
use super::InputSplit;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One input record as a mapper sees it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The file the record comes from.
    pub file: &'a Path,
    /// Byte offset of the record in its file.
    pub offset: u64,
    /// The raw bytes: a line without its `\n` / `\r\n`, or a whole file's contents.
    pub bytes: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record as text. Bytes that are not valid UTF-8 are dropped, as Python's
    /// `decode("utf-8", errors="ignore")` does; valid text is borrowed, not copied.
    ///
    /// ```
    /// use gridmr_core::input::Record;
    /// use std::path::Path;
    /// let r = Record { file: Path::new("x"), offset: 0, bytes: b"caf\xc3\xa9 \xff!" };
    /// assert_eq!(r.text(), "café !");
    /// ```
    pub fn text(&self) -> Cow<'a, str> {
        decode_ignoring_invalid(self.bytes)
    }
}

/// A run of whole lines of one file, as [`Mapper::map_lines`](crate::Mapper::map_lines) sees
/// them: every line keeps its `\n` terminator (and `\r` before it), except a file's last line
/// when the file does not end in one.
///
/// ```
/// use gridmr_core::input::Lines;
/// use std::path::Path;
/// let lines = Lines { file: Path::new("x"), offset: 100, bytes: b"one\r\ntwo\n\nthree" };
/// let got: Vec<(u64, &[u8])> = lines.records().map(|r| (r.offset, r.bytes)).collect();
/// assert_eq!(got, [(100, &b"one"[..]), (105, b"two"), (109, b""), (110, b"three")]);
/// assert_eq!(lines.count(), 4);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Lines<'a> {
    /// The file the lines come from.
    pub file: &'a Path,
    /// Byte offset of the first line in its file.
    pub offset: u64,
    /// The lines, terminators included.
    pub bytes: &'a [u8],
}

impl<'a> Lines<'a> {
    /// The lines one by one, each as the [`Record`] [`Mapper::map`](crate::Mapper::map) would
    /// get: without its `\n` / `\r\n`, with its own offset.
    pub fn records(&self) -> LineRecords<'a> {
        LineRecords {
            file: self.file,
            offset: self.offset,
            rest: self.bytes,
        }
    }

    /// How many lines the run holds.
    pub fn count(&self) -> u64 {
        let terminated = memchr::memchr_iter(b'\n', self.bytes).count() as u64;
        let unterminated = self.bytes.last().is_some_and(|&b| b != b'\n');
        terminated + u64::from(unterminated)
    }
}

/// The iterator [`Lines::records`] returns.
#[derive(Debug, Clone)]
pub struct LineRecords<'a> {
    file: &'a Path,
    offset: u64,
    rest: &'a [u8],
}

impl<'a> Iterator for LineRecords<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, taken) = match memchr::memchr(b'\n', self.rest) {
            Some(nl) => {
                let line = &self.rest[..nl];
                (line.strip_suffix(b"\r").unwrap_or(line), nl + 1)
            }
            None => (self.rest, self.rest.len()),
        };
        let record = Record {
            file: self.file,
            offset: self.offset,
            bytes: line,
        };
        self.rest = &self.rest[taken..];
        self.offset += taken as u64;
        Some(record)
    }
}

/// `bytes` as text with the bytes that are not valid UTF-8 dropped (Python's
/// `decode("utf-8", errors="ignore")`); valid text is borrowed, not copied.
pub fn decode_ignoring_invalid(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.utf8_chunks().map(|c| c.valid()).collect()),
    }
}

/// Streams the lines of one [`InputSplit`]: every line whose first byte lies in
/// `[start, end)`, read through a fixed buffer (it grows only for a line longer than itself).
///
/// A compressed file ([`Codec::of`] its name) is read whole, decompressed, by the split
/// that starts at 0 (a split starting further in has none of its lines); its lines' offsets
/// count the bytes it decompresses to.
pub struct LineReader {
    file: Box<dyn Read + Send>,
    split: InputSplit,
    buf: Vec<u8>,
    /// `buf[pos..len]` is unread data; `buf_offset` is the file offset of `buf[0]`.
    pos: usize,
    len: usize,
    buf_offset: u64,
    eof: bool,
    bytes_read: u64,
    /// The split's bytes that the file holds.
    span: u64,
    /// Whether the last line returned ended the file without a terminator.
    unterminated: bool,
    /// A compressed file's bytes read so far (its decoder's input), for [`LineReader::consumed`].
    compressed: Option<Arc<AtomicU64>>,
    /// The longest line it reads ([`LineReader::MAX_LINE_BYTES`]).
    max_line: usize,
}

impl LineReader {
    /// The default read buffer: 1 MiB.
    pub const DEFAULT_BUFFER: usize = 1 << 20;

    /// The longest line a reader reads, 256 MiB: a longer one fails its task (an input
    /// error) rather than the process's memory. Hadoop's `LineRecordReader` has no bound by
    /// default; a record that large belongs in a whole-file input.
    pub const MAX_LINE_BYTES: usize = 256 << 20;

    /// Opens `split` and positions the reader at its first line.
    pub fn open(split: &InputSplit, buffer_bytes: usize) -> Result<Self> {
        let mut file = File::open(&split.path).map_err(|e| Error::io("open", &split.path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("stat", &split.path, e))?
            .len();
        let span = split.end.min(file_len).saturating_sub(split.start);
        if let Some(codec) = Codec::of(&split.path) {
            // The whole file, to the split that starts at 0; its end is past any offset.
            let (counted, compressed) = Counted::new(file);
            let span = if split.start == 0 { file_len } else { 0 };
            let split = InputSplit {
                end: if split.start == 0 { u64::MAX } else { 0 },
                start: 0,
                ..split.clone()
            };
            return Ok(LineReader {
                compressed: Some(compressed),
                ..LineReader::over(codec.decoder(counted), split, 0, span, buffer_bytes)
            });
        }
        // Start one byte early: if that byte is '\n', `start` itself begins a line.
        let from = split.start.saturating_sub(1);
        file.seek(SeekFrom::Start(from))
            .map_err(|e| Error::io("seek", &split.path, e))?;
        let mut reader = LineReader::over(Box::new(file), split.clone(), from, span, buffer_bytes);
        if split.start > 0 {
            reader.skip_partial_line()?;
        }
        Ok(reader)
    }

    fn over(
        file: Box<dyn Read + Send>,
        split: InputSplit,
        buf_offset: u64,
        span: u64,
        buffer_bytes: usize,
    ) -> Self {
        LineReader {
            file,
            split,
            buf: vec![0; buffer_bytes.max(64)],
            pos: 0,
            len: 0,
            buf_offset,
            eof: false,
            bytes_read: 0,
            span,
            unterminated: false,
            compressed: None,
            max_line: LineReader::MAX_LINE_BYTES.max(buffer_bytes),
        }
    }

    /// How far into its file the reader is, in the file's own bytes: the bytes of the lines
    /// returned so far, or of a compressed file the bytes its decoder has taken. Against
    /// [`LineReader::len`], a task's progress.
    pub fn consumed(&self) -> u64 {
        match &self.compressed {
            Some(read) => read.load(Ordering::Relaxed).min(self.span),
            None => self.bytes_read,
        }
    }

    /// Whether the line [`LineReader::next_line`] returned last was the file's
    /// last and had no line feed after it (as a text editor may leave it).
    pub fn last_line_unterminated(&self) -> bool {
        self.unterminated
    }

    /// Bytes of the lines returned so far, terminators included (of a compressed file, the
    /// bytes they decompress to).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// About how many bytes the split's lines hold: its range, cut to the
    /// file's size when opened (a split's last line may run past it); of a
    /// compressed file, its size.
    pub fn len(&self) -> u64 {
        self.span
    }

    /// Whether the split holds no byte of the file.
    pub fn is_empty(&self) -> bool {
        self.span == 0
    }

    fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.buf_offset += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            // One line fills the buffer: it doubles, up to `max_line` (a gzip file of a few
            // MiB can hold a line of GiBs).
            let grown = self.buf.len() * 2;
            if grown > self.max_line {
                return Err(Error::Input {
                    spec: self.split.path.display().to_string(),
                    reason: format!(
                        "a line longer than {} MiB (read such records as whole files)",
                        self.max_line >> 20
                    ),
                });
            }
            self.buf.resize(grown, 0);
        }
        let n = self
            .file
            .read(&mut self.buf[self.len..])
            .map_err(|e| Error::io("read", &self.split.path, e))?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.len += n;
        Ok(true)
    }

    fn skip_partial_line(&mut self) -> Result<()> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.len]) {
                self.pos += i + 1;
                return Ok(());
            }
            self.pos = self.len;
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    /// The next run of whole lines, terminators included, as `(offset of its first byte,
    /// bytes)`, or `None` past the split's end. A run holds at most `max_bytes`, or is one
    /// longer line alone, and never holds a line of the next split. Calls of this and of
    /// [`LineReader::next_line`] may be mixed.
    pub fn next_lines(&mut self, max_bytes: usize) -> Result<Option<(u64, &[u8])>> {
        let max_bytes = max_bytes.max(1);
        loop {
            let offset = self.buf_offset + self.pos as u64;
            if offset >= self.split.end {
                return Ok(None);
            }
            let avail = &self.buf[self.pos..self.len];
            // The split's last byte, as an index into `avail`: the line holding it is the
            // split's last line, however far it runs.
            let last = usize::try_from(self.split.end - 1 - offset).unwrap_or(usize::MAX);
            let window = avail.len().min(max_bytes);
            let split_ends = avail
                .get(last..)
                .and_then(|after| memchr::memchr(b'\n', after))
                .map(|i| last + i + 1);
            let cut = match split_ends {
                Some(cut) if cut <= window => Some(cut),
                // Whole lines that fit and start before the split's last line, else the first
                // line alone, however long.
                _ => memchr::memrchr(b'\n', &avail[..window.min(last)])
                    .or_else(|| memchr::memchr(b'\n', avail))
                    .map(|i| i + 1),
            };
            let cut = match cut {
                Some(cut) => cut,
                None if self.fill()? => continue,
                // The end of the file: its last line has no terminator.
                None if self.pos < self.len => self.len - self.pos,
                None => return Ok(None),
            };
            let start = self.pos;
            self.pos += cut;
            self.bytes_read += cut as u64;
            return Ok(Some((offset, &self.buf[start..start + cut])));
        }
    }

    /// The next line as `(offset, bytes without terminator)`, or `None` past the split's end.
    pub fn next_line(&mut self) -> Result<Option<(u64, &[u8])>> {
        let offset = self.buf_offset + self.pos as u64;
        if offset >= self.split.end {
            return Ok(None);
        }
        let mut searched = self.pos;
        let (line_end, next) = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[searched..self.len]) {
                let nl = searched + i;
                break (nl, nl + 1);
            }
            searched = self.len;
            let before = self.pos;
            if !self.fill()? {
                if self.pos == self.len {
                    return Ok(None);
                }
                self.unterminated = true;
                break (self.len, self.len);
            }
            searched -= before - self.pos;
        };
        let start = self.pos;
        self.pos = next;
        self.bytes_read += (next - start) as u64;
        let mut end = line_end;
        if end > start && end < next && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        Ok(Some((offset, &self.buf[start..end])))
    }
}

/// Reads a whole file (for [`InputFormat::WholeFiles`](super::InputFormat::WholeFiles)).
pub fn read_whole(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{plan_splits, InputFile, InputFormat, SplitPolicy};

    fn lines_of(path: &Path, start: u64, end: u64, buffer: usize) -> Vec<(u64, String)> {
        let split = InputSplit {
            path: path.to_path_buf(),
            start,
            end,
            input: 0,
        };
        let mut r = LineReader::open(&split, buffer).unwrap();
        let mut out = Vec::new();
        while let Some((off, l)) = r.next_line().unwrap() {
            out.push((off, String::from_utf8_lossy(l).into_owned()));
        }
        out
    }

    /// A gzip file reads as the text it holds, whole, by the split that starts at 0; its
    /// progress counts its own bytes.
    #[test]
    fn a_gzip_file_is_read_decompressed_by_its_first_split() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..5_000).map(|i| format!("line {i}\r\n")).collect();
        let mut gz = crate::input::codec::tests::gzip(&text.as_bytes()[..20_000]);
        gz.extend(crate::input::codec::tests::gzip(&text.as_bytes()[20_000..]));
        let path = dir.path().join("f.txt.gz");
        std::fs::write(&path, &gz).unwrap();
        let plain = dir.path().join("f.txt");
        std::fs::write(&plain, &text).unwrap();
        let len = gz.len() as u64;
        for buffer in [64, 1 << 20] {
            assert_eq!(
                lines_of(&path, 0, len, buffer),
                lines_of(&plain, 0, text.len() as u64, buffer)
            );
            assert!(lines_of(&path, 1, len, buffer).is_empty());
        }
        let split = InputSplit {
            path: path.clone(),
            start: 0,
            end: len,
            input: 0,
        };
        let mut r = LineReader::open(&split, 1 << 10).unwrap();
        assert_eq!(r.len(), len);
        let mut lines = 0;
        while let Some((_, bytes)) = r.next_lines(4 << 10).unwrap() {
            lines += Lines {
                file: &path,
                offset: 0,
                bytes,
            }
            .count();
            assert!(r.consumed() <= len);
        }
        assert_eq!(
            (lines, r.consumed(), r.bytes_read()),
            (5_000, len, text.len() as u64)
        );
        // A gzip file is one split, whatever its size.
        let files = [
            InputFile {
                path: path.clone(),
                len,
                input: 0,
            },
            InputFile {
                path: plain,
                len: text.len() as u64,
                input: 0,
            },
        ];
        let policy = SplitPolicy {
            min_splits: 4,
            max_split_bytes: 1 << 10,
            splits: None,
        };
        let splits = plan_splits(&files, &policy, InputFormat::Lines);
        let of_gz: Vec<_> = splits.iter().filter(|s| s.path == path).collect();
        assert_eq!(of_gz.len(), 1);
        assert_eq!((of_gz[0].start, of_gz[0].end), (0, len));
        assert!(
            splits.len() > 40 && splits.len().is_multiple_of(4),
            "{}",
            splits.len()
        );
    }

    /// A line past the bound fails the read with the file named, whatever the buffer.
    #[test]
    fn a_line_longer_than_the_bound_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.txt.gz");
        let mut line = vec![b'x'; 5_000];
        line.push(b'\n');
        std::fs::write(&path, crate::input::codec::tests::gzip(&line)).unwrap();
        let split = InputSplit {
            path: path.clone(),
            start: 0,
            end: 100,
            input: 0,
        };
        for (max_line, ok) in [(4_096, false), (8_192, true)] {
            let mut r = LineReader::open(&split, 64).unwrap();
            r.max_line = max_line;
            match r.next_line() {
                Ok(Some((_, got))) => assert!(ok && got.len() == 5_000, "{max_line}"),
                Ok(None) => panic!("no line"),
                Err(e) => {
                    assert!(!ok, "{max_line}: {e}");
                    assert!(e.to_string().contains("long.txt.gz"), "{e}");
                }
            }
        }
    }

    /// A damaged gzip file fails its task, not shortens its input.
    #[test]
    fn a_damaged_gzip_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..5_000).map(|i| format!("line {i}\n")).collect();
        let mut gz = crate::input::codec::tests::gzip(text.as_bytes());
        gz.truncate(gz.len() / 2);
        let path = dir.path().join("cut.gz");
        std::fs::write(&path, &gz).unwrap();
        let split = InputSplit {
            path: path.clone(),
            start: 0,
            end: gz.len() as u64,
            input: 0,
        };
        let mut r = LineReader::open(&split, 1 << 10).unwrap();
        let got = loop {
            match r.next_line() {
                Ok(Some(_)) => continue,
                other => break other.map(|l| l.map(|(o, _)| o)),
            }
        };
        let e = got.unwrap_err();
        assert!(e.to_string().contains("cut.gz"), "{e}");
    }

    /// Which lines end the file without a line feed, for every split and buffer size.
    #[test]
    fn only_a_last_line_without_a_line_feed_is_unterminated() {
        let dir = tempfile::tempdir().unwrap();
        for (content, last_open) in [
            (&b"a\nbb\nlast"[..], true),
            (b"a\nbb\nlast\n", false),
            (b"a\r\nlast", true),
            (b"", false),
        ] {
            let path = dir.path().join("f.txt");
            std::fs::write(&path, content).unwrap();
            for buffer in [64, 1 << 10] {
                for cut in 0..=content.len() as u64 {
                    let mut open = Vec::new();
                    for (start, end) in [(0, cut), (cut, content.len() as u64)] {
                        let split = InputSplit {
                            path: path.clone(),
                            start,
                            end,
                            input: 0,
                        };
                        let mut r = LineReader::open(&split, buffer).unwrap();
                        while let Some((_, line)) = r.next_line().unwrap() {
                            let line = String::from_utf8_lossy(line).into_owned();
                            open.push((line, r.last_line_unterminated()));
                        }
                    }
                    let flagged: Vec<_> = open.iter().filter(|(_, o)| *o).collect();
                    if last_open {
                        assert_eq!(flagged.len(), 1, "{content:?} cut at {cut}");
                        assert_eq!(flagged[0].0, "last");
                        assert_eq!(open.last(), Some(flagged[0]));
                    } else {
                        assert!(flagged.is_empty(), "{content:?} cut at {cut}");
                    }
                }
            }
        }
    }

    /// Every line exactly once, for every way of cutting the file.
    fn check_all_cuts(content: &[u8], buffer: usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, content).unwrap();
        let whole = lines_of(&path, 0, content.len() as u64, buffer);
        for n in 1..=content.len().max(1) as u32 + 2 {
            let files = [InputFile {
                path: path.clone(),
                len: content.len() as u64,
                input: 0,
            }];
            let policy = SplitPolicy {
                splits: Some(n),
                ..SplitPolicy::default()
            };
            let mut got = Vec::new();
            for s in plan_splits(&files, &policy, InputFormat::Lines) {
                got.extend(lines_of(&path, s.start, s.end, buffer));
            }
            assert_eq!(got, whole, "{n} splits of {content:?}");
        }
    }

    /// The lines of a split read as runs of at most `max` bytes, then cut back into records.
    fn runs_of(path: &Path, start: u64, end: u64, buffer: usize, max: usize) -> Vec<(u64, String)> {
        let split = InputSplit {
            path: path.to_path_buf(),
            start,
            end,
            input: 0,
        };
        let mut r = LineReader::open(&split, buffer).unwrap();
        let mut out = Vec::new();
        let mut read = 0;
        while let Some((offset, bytes)) = r.next_lines(max).unwrap() {
            assert!(!bytes.is_empty());
            read += bytes.len() as u64;
            let lines = Lines {
                file: path,
                offset,
                bytes,
            };
            let before = out.len();
            out.extend(
                lines
                    .records()
                    .map(|rec| (rec.offset, String::from_utf8_lossy(rec.bytes).into_owned())),
            );
            assert_eq!(lines.count(), (out.len() - before) as u64);
            // Only a line longer than `max` makes a run longer than `max`.
            assert!(
                bytes.len() <= max || out.len() - before == 1,
                "{bytes:?} > {max}"
            );
        }
        assert_eq!(read, r.bytes_read());
        out
    }

    /// Runs give the same lines as `next_line`, for every cut, buffer and run size.
    #[test]
    fn runs_of_lines_are_the_lines() {
        let long = format!("short\n{}\ntail\n", "y".repeat(300));
        let contents: [&[u8]; 6] = [
            b"alpha\nbeta\ngamma\n",
            b"alpha\r\nbeta\r\ngamma",
            b"\n\n\n",
            b"x",
            b"",
            long.as_bytes(),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        for content in contents {
            std::fs::write(&path, content).unwrap();
            let len = content.len() as u64;
            for start in 0..=len {
                for end in start..=len + 1 {
                    let want = lines_of(&path, start, end, 64);
                    for (buffer, max) in [(64, 1), (64, 7), (64, 64), (1 << 10, 1 << 10)] {
                        let got = runs_of(&path, start, end, buffer, max);
                        assert_eq!(got, want, "[{start}, {end}) of {content:?}, {buffer}/{max}");
                    }
                }
            }
        }
    }

    #[test]
    fn lines_crlf_and_missing_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"one\r\ntwo\n\nthree").unwrap();
        let got = lines_of(&path, 0, 16, 1 << 10);
        let want = [(0, "one"), (5, "two"), (9, ""), (10, "three")];
        let want: Vec<_> = want.iter().map(|(o, s)| (*o, s.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn split_boundaries() {
        check_all_cuts(b"alpha\nbeta\ngamma\n", 64);
        check_all_cuts(b"alpha\r\nbeta\r\ngamma", 64);
        check_all_cuts(b"\n\n\n", 64);
        check_all_cuts(b"x", 64);
        check_all_cuts(b"", 64);
        // A line longer than the buffer and than any split.
        let long = format!("short\n{}\ntail\n", "y".repeat(1000));
        check_all_cuts(long.as_bytes(), 64);
    }

    #[test]
    fn split_starting_on_a_line_start_keeps_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"ab\ncd\nef\n").unwrap();
        // Byte 3 is the start of "cd": the split [3, 4) owns it, [0, 3) does not.
        assert_eq!(lines_of(&path, 3, 4, 64), vec![(3, "cd".to_string())]);
        assert_eq!(lines_of(&path, 0, 3, 64), vec![(0, "ab".to_string())]);
        // Mid-line start skips to the next line.
        assert_eq!(lines_of(&path, 4, 9, 64), vec![(6, "ef".to_string())]);
    }

    #[test]
    fn undecodable_bytes_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, b"\xff\xfe\n\xc3(\nok\n").unwrap();
        let split = InputSplit {
            path: path.clone(),
            start: 0,
            end: 9,
            input: 0,
        };
        let mut r = LineReader::open(&split, 64).unwrap();
        let mut texts = Vec::new();
        while let Some((offset, bytes)) = r.next_line().unwrap() {
            let rec = Record {
                file: &path,
                offset,
                bytes,
            };
            texts.push(rec.text().into_owned());
        }
        assert_eq!(texts, ["", "(", "ok"]);
        assert_eq!(r.bytes_read(), 9);
    }
}
