//! Compressed inputs: which files are compressed, and reading them.
//!
//! As Hadoop's `CompressionCodecFactory` does, the codec is chosen by the file's name: a file
//! whose name ends in `.gz` is gzip (its members, however many, read one after the other as
//! `gzip -d` and Hadoop do). A gzip stream cannot be entered in the middle, so such a file is
//! one split whatever its size, and its records' offsets count the bytes it decompresses to.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How an input file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// gzip (RFC 1952), one member or several.
    Gzip,
}

impl Codec {
    /// The compression of `path`, from its name; `None` for a file read as it is.
    ///
    /// ```
    /// use gridmr_core::input::Codec;
    /// use std::path::Path;
    /// assert_eq!(Codec::of(Path::new("logs/day-1.txt.gz")), Some(Codec::Gzip));
    /// assert_eq!(Codec::of(Path::new("s3://b/k.GZ")), Some(Codec::Gzip));
    /// assert_eq!(Codec::of(Path::new("logs/day-1.txt")), None);
    /// ```
    pub fn of(path: &Path) -> Option<Codec> {
        let ext = path.extension()?;
        ext.eq_ignore_ascii_case("gz").then_some(Codec::Gzip)
    }

    /// The file name ending that marks it (`.gz`): a copy of an input made under another
    /// name (an object fetched to a worker's disk) keeps it, to be read the same way.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
        }
    }

    /// Up to `max_lines` lines (terminators removed) of what `prefix`, the first bytes of a
    /// compressed file, decompresses to: the lines it holds whole. `whole` says that `prefix`
    /// is the entire file, so that its last line counts without a line feed after it and a
    /// stream cut short is an error; otherwise the prefix ends wherever it was cut.
    ///
    /// A sample's reader: a planner reads a window of a compressed object, not all of it. It
    /// decompresses at most [`SAMPLE_TEXT_MAX`] of text (a window of a MiB can hold a GiB of
    /// it), and ends there as at a cut.
    pub fn first_lines(
        self,
        prefix: &[u8],
        max_lines: usize,
        whole: bool,
    ) -> std::io::Result<Vec<Vec<u8>>> {
        use std::io::BufRead;
        let decoded = self.decoder(std::io::Cursor::new(prefix.to_vec()));
        let mut text = std::io::BufReader::new(decoded.take(SAMPLE_TEXT_MAX));
        let mut lines = Vec::new();
        while lines.len() < max_lines {
            let mut line = Vec::new();
            match text.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) if line.last() == Some(&b'\n') => {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    lines.push(line);
                }
                // The end of the stream: a last line without a line feed (not the bound).
                Ok(_) if whole && text.get_ref().limit() > 0 => lines.push(line),
                Ok(_) => break,
                // A prefix cut where the cut falls: the lines before it stand.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !whole => break,
                Err(e) => return Err(e),
            }
        }
        Ok(lines)
    }

    /// A reader of what `source` decompresses to.
    pub fn decoder<R: Read + Send + 'static>(self, source: R) -> Box<dyn Read + Send> {
        match self {
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(256 << 10, source),
            )),
        }
    }
}

/// The most text [`Codec::first_lines`] decompresses from one window: 64 MiB.
pub const SAMPLE_TEXT_MAX: u64 = 64 << 20;

/// A reader that counts the bytes read through it, for the progress of a compressed split
/// (how far into the file, not how much it decompressed to).
pub(crate) struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    /// `inner`, its bytes counted into the returned counter.
    pub(crate) fn new(inner: R) -> (Self, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            Counted {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_member_of_a_gzip_file_is_read() {
        let mut two = gzip(b"one\ntwo\n");
        two.extend(gzip(b"three\n"));
        let (counted, read) = Counted::new(std::io::Cursor::new(two.clone()));
        let mut out = String::new();
        Codec::Gzip
            .decoder(counted)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "one\ntwo\nthree\n");
        assert_eq!(read.load(Ordering::Relaxed), two.len() as u64);
    }

    #[test]
    fn a_prefix_gives_the_lines_it_holds_whole() {
        let text: String = (0..20_000).map(|i| format!("line {i}\r\n")).collect();
        let gz = gzip(text.as_bytes());
        let all = Codec::Gzip.first_lines(&gz, usize::MAX, true).unwrap();
        assert_eq!(all.len(), 20_000);
        assert_eq!(all[19_999], b"line 19999");
        let cut = Codec::Gzip
            .first_lines(&gz[..gz.len() / 3], usize::MAX, false)
            .unwrap();
        assert!(!cut.is_empty() && cut.len() < 20_000, "{}", cut.len());
        assert_eq!(cut[..], all[..cut.len()]);
        assert!(Codec::Gzip
            .first_lines(&gz[..gz.len() / 3], 10, true)
            .is_ok());
        assert!(Codec::Gzip
            .first_lines(&gz[..gz.len() / 3], usize::MAX, true)
            .is_err());
        let last = gzip(b"a\nb");
        assert_eq!(
            Codec::Gzip.first_lines(&last, 5, true).unwrap(),
            [b"a".to_vec(), b"b".to_vec()]
        );
    }

    /// A small window that decompresses to more text than the bound, none of it a whole line:
    /// no line, not a line as large as the text.
    #[test]
    fn a_sample_decompresses_no_more_than_its_bound() {
        let bomb = gzip(&vec![b'x'; SAMPLE_TEXT_MAX as usize + (1 << 20)]);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        assert!(Codec::Gzip.first_lines(&bomb, 10, true).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_gzip_file_is_an_error_not_a_short_read() {
        let mut bad = gzip(b"one\ntwo\nthree\n");
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        let mut out = Vec::new();
        let got = Codec::Gzip
            .decoder(std::io::Cursor::new(bad))
            .read_to_end(&mut out);
        assert!(got.is_err(), "read {out:?}");
    }
}
