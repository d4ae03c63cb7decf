//! A segment fetched from the worker that keeps it (`SHUFFLE=local`),
//! written down as a run of its own so that a reduce reads it exactly as it
//! reads a map output on the share.
//!
//! A fetched segment is partition `p`'s blocks of a map output, byte for
//! byte. [`FetchedRun`] writes them after a data header into a file of
//! their own, checking every block's header and checksum as the bytes
//! arrive ([`BlockCheck`]), and then writes an index with `R` partitions
//! in which only `p` is not empty. A damaged or cut segment is an error
//! before the reduce starts, never a wrong answer.

use super::format::{
    create_data_file, RunIndex, TempPath, BLOCK_HEADER_LEN, CODEC_LZ4, CODEC_RAW, DATA_HEADER_LEN,
};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Checks a stream of blocks as it arrives: each block's header (a known
/// codec, zero padding) and its CRC-32, and that the stream ends at a block
/// boundary.
#[derive(Debug)]
pub struct BlockCheck {
    header: [u8; BLOCK_HEADER_LEN],
    /// Header bytes held so far (`BLOCK_HEADER_LEN` once it is whole).
    have: usize,
    /// Payload bytes of the current block still to come.
    remaining: u64,
    crc: crc32fast::Hasher,
    /// Bytes seen, for the error's offset.
    position: u64,
    /// Where the current block started.
    block_start: u64,
}

impl Default for BlockCheck {
    fn default() -> Self {
        BlockCheck {
            header: [0; BLOCK_HEADER_LEN],
            have: 0,
            remaining: 0,
            crc: crc32fast::Hasher::new(),
            position: 0,
            block_start: 0,
        }
    }
}

impl BlockCheck {
    /// Takes the next bytes of the stream; `path` names it in an error.
    pub fn feed(&mut self, mut bytes: &[u8], path: &Path) -> Result<()> {
        while !bytes.is_empty() {
            if self.have < BLOCK_HEADER_LEN {
                if self.have == 0 {
                    self.block_start = self.position;
                }
                let n = (BLOCK_HEADER_LEN - self.have).min(bytes.len());
                self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                self.position += n as u64;
                bytes = &bytes[n..];
                if self.have == BLOCK_HEADER_LEN {
                    self.start_block(path)?;
                }
                continue;
            }
            let n = (self.remaining.min(bytes.len() as u64)) as usize;
            self.crc.update(&bytes[..n]);
            self.remaining -= n as u64;
            self.position += n as u64;
            bytes = &bytes[n..];
            if self.remaining == 0 {
                self.end_block(path)?;
            }
        }
        Ok(())
    }

    fn start_block(&mut self, path: &Path) -> Result<()> {
        let h = &self.header;
        if !(h[0] == CODEC_RAW || h[0] == CODEC_LZ4) || h[1..4] != [0, 0, 0] {
            return Err(Error::corrupt(path, self.block_start, "not a block header"));
        }
        self.remaining = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        self.crc = crc32fast::Hasher::new();
        self.crc.update(&h[..12]);
        if self.remaining == 0 {
            self.end_block(path)?;
        }
        Ok(())
    }

    fn end_block(&mut self, path: &Path) -> Result<()> {
        let h = &self.header;
        let expected = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        if crc != expected {
            return Err(Error::corrupt(
                path,
                self.block_start,
                "block checksum mismatch",
            ));
        }
        self.have = 0;
        Ok(())
    }

    /// Bytes taken so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The stream ended: it must end where a block does.
    pub fn finish(&self, path: &Path) -> Result<()> {
        if self.have != 0 {
            return Err(Error::corrupt(
                path,
                self.block_start,
                "the segment ends inside a block",
            ));
        }
        Ok(())
    }
}

/// Writes one fetched segment as a run: a data file holding the header and
/// the segment, then an index whose partition `partition` (of
/// `partitions`) is the segment and every other partition empty.
///
/// Both files are written under temporary names and renamed by
/// [`FetchedRun::finish`], the index last; a run dropped unfinished leaves
/// nothing behind.
pub struct FetchedRun {
    data_path: PathBuf,
    index_path: PathBuf,
    data_tmp: TempPath,
    out: BufWriter<File>,
    partitions: u32,
    partition: u32,
    segment_len: u64,
    check: BlockCheck,
}

impl FetchedRun {
    /// Starts the run of a `segment_len`-byte segment of partition
    /// `partition` (of `partitions`).
    pub fn create(
        data_path: &Path,
        index_path: &Path,
        partitions: u32,
        partition: u32,
        segment_len: u64,
    ) -> Result<Self> {
        if partition >= partitions {
            return Err(Error::Codec(format!(
                "partition {partition} of a job with {partitions}"
            )));
        }
        let (data_tmp, file) = create_data_file(data_path)?;
        let out = BufWriter::with_capacity(256 << 10, file);
        Ok(FetchedRun {
            data_path: data_path.to_path_buf(),
            index_path: index_path.to_path_buf(),
            data_tmp,
            out,
            partitions,
            partition,
            segment_len,
            check: BlockCheck::default(),
        })
    }

    /// Appends the next bytes of the segment, checked.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.check.position() + bytes.len() as u64 > self.segment_len {
            return Err(Error::corrupt(
                &self.data_path,
                DATA_HEADER_LEN + self.segment_len,
                "more bytes than the segment's length",
            ));
        }
        self.check.feed(bytes, &self.data_path)?;
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("write", &self.data_tmp, e))
    }

    /// Completes the run, whose segment holds `records` records: checks
    /// that the whole segment came, then renames the data file and writes
    /// the index.
    pub fn finish(mut self, records: u64) -> Result<RunIndex> {
        if self.check.position() != self.segment_len {
            return Err(Error::corrupt(
                &self.data_path,
                DATA_HEADER_LEN + self.check.position(),
                format!(
                    "the segment was cut: {} of {} bytes",
                    self.check.position(),
                    self.segment_len
                ),
            ));
        }
        self.check.finish(&self.data_path)?;
        self.out
            .flush()
            .map_err(|e| Error::io("write", &self.data_tmp, e))?;
        std::fs::rename(&self.data_tmp, &self.data_path)
            .map_err(|e| Error::io("rename", &self.data_tmp, e))?;
        self.data_tmp.keep();
        let p = self.partition as usize;
        let end = DATA_HEADER_LEN + self.segment_len;
        let offsets = (0..=self.partitions as usize)
            .map(|i| if i <= p { DATA_HEADER_LEN } else { end })
            .collect();
        let mut counts = vec![0; self.partitions as usize];
        counts[p] = records;
        let index = RunIndex {
            index_path: self.index_path.clone(),
            data_path: self.data_path.clone(),
            offsets,
            records: counts,
        };
        index.write_index()?;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shuffle::{Compression, RunWriter, SegmentReader};

    /// A map output of three partitions, partition 1 holding `n` records
    /// over several blocks.
    fn map_output(dir: &Path, n: u32) -> RunIndex {
        let (data, index) = (dir.join("m.data"), dir.join("m.index"));
        let mut w = RunWriter::create(&data, &index, 3, Compression::Lz4, 256).unwrap();
        w.push(0, b"\x01a", b"\x01x").unwrap();
        for i in 0..n {
            let key = format!("key{i:05}");
            let mut k = vec![key.len() as u8];
            k.extend_from_slice(key.as_bytes());
            w.push(1, &k, b"\x01v").unwrap();
        }
        w.push(2, b"\x01z", b"\x01y").unwrap();
        w.finish().unwrap()
    }

    fn segment(index: &RunIndex, p: u32) -> Vec<u8> {
        let all = std::fs::read(&index.data_path).unwrap();
        all[index.offsets[p as usize] as usize..index.offsets[p as usize + 1] as usize].to_vec()
    }

    fn fetch(dir: &Path, bytes: &[u8], len: u64, records: u64, piece: usize) -> Result<RunIndex> {
        let (data, index) = (dir.join("f.data"), dir.join("f.index"));
        let mut run = FetchedRun::create(&data, &index, 3, 1, len)?;
        for chunk in bytes.chunks(piece) {
            run.write(chunk)?;
        }
        run.finish(records)
    }

    #[test]
    fn a_fetched_segment_reads_back_as_the_map_output_did() {
        let dir = tempfile::tempdir().unwrap();
        let source = map_output(dir.path(), 2000);
        let seg = segment(&source, 1);
        // Pieces that cut block headers and payloads anywhere.
        for piece in [1, 7, 16, 1000, seg.len()] {
            let fetched = fetch(dir.path(), &seg, seg.len() as u64, 2000, piece).unwrap();
            let again = RunIndex::read(&fetched.index_path).unwrap();
            assert_eq!(again.records, vec![0, 2000, 0]);
            let (mut a, mut b) = (
                SegmentReader::open(&source, 1).unwrap(),
                SegmentReader::open(&again, 1).unwrap(),
            );
            let mut n = 0;
            while a.advance().unwrap() {
                assert!(b.advance().unwrap());
                assert_eq!(a.framed(), b.framed());
                n += 1;
            }
            assert!(!b.advance().unwrap());
            assert_eq!(n, 2000);
            RunIndex::verify(&fetched.index_path).unwrap();
        }
    }

    #[test]
    fn a_damaged_or_cut_segment_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let source = map_output(dir.path(), 500);
        let seg = segment(&source, 1);
        let len = seg.len() as u64;
        let mut flipped = seg.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let e = fetch(dir.path(), &flipped, len, 500, 333).unwrap_err();
        assert!(
            e.to_string().contains("checksum") || e.to_string().contains("block"),
            "{e}"
        );
        // Cut short, and cut inside a block while the length says so.
        let e = fetch(dir.path(), &seg[..seg.len() - 5], len, 500, 100).unwrap_err();
        assert!(e.to_string().contains("cut"), "{e}");
        let e = fetch(dir.path(), &seg[..seg.len() - 5], len - 5, 500, 100).unwrap_err();
        assert!(e.to_string().contains("inside a block"), "{e}");
        // More than announced.
        let e = fetch(dir.path(), &seg, len - 1, 500, 100).unwrap_err();
        assert!(e.to_string().contains("more bytes"), "{e}");
        // An empty segment is a run with no records.
        let empty = fetch(dir.path(), &[], 0, 0, 1).unwrap();
        assert_eq!(
            RunIndex::read(&empty.index_path).unwrap().total_records(),
            0
        );
        std::fs::remove_file(dir.path().join("f.index")).unwrap();
        std::fs::remove_file(dir.path().join("f.data")).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('f'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
