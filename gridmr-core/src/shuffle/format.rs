//! The shuffle file format: one data file and one index per map output (or spill run).
//!
//! ```text
//! data file   = header block*
//! header      = "GMRD" version:u8 0 0 0                                  (8 bytes)
//! block       = codec:u8 0 0 0  stored_len:u32  raw_len:u32  crc:u32  payload[stored_len]
//!               crc = CRC-32 of the block header's first 12 bytes and of the payload
//!               payload = records, lz4-compressed when codec = 1
//! record      = varint(key_len) postcard(key) varint(value_len) postcard(value)
//!
//! index file  = "GMRI" version:u8 0 0 0  partitions:u32  name_len:u16 name[name_len]
//!               offsets:u64[partitions + 1]  records:u64[partitions]  crc:u32
//! ```
//!
//! All integers are little-endian. Partition `p` is the blocks in `offsets[p]..offsets[p+1]` of
//! the data file, whose file name (in the index's own folder) the index holds: an index names
//! the exact data file of its task attempt, so two attempts of one task can never be mixed.
//! Blocks never split a record. A record's lengths let a merge move it, and
//! compare keys, as bytes, without decoding its value (version 2; version 1
//! had no lengths). Varints are LEB128, at most 5 bytes.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub(crate) const DATA_MAGIC: &[u8; 4] = b"GMRD";
const INDEX_MAGIC: &[u8; 4] = b"GMRI";
pub(crate) const VERSION: u8 = 2;
/// Size of the data file header.
pub const DATA_HEADER_LEN: u64 = 8;
pub(crate) const BLOCK_HEADER_LEN: usize = 16;

/// Block compression of shuffle files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Compression {
    /// Blocks stored as they are.
    #[default]
    None,
    /// Blocks compressed with LZ4 (a block that does not shrink is stored as it is).
    Lz4,
}

pub(crate) const CODEC_RAW: u8 = 0;
pub(crate) const CODEC_LZ4: u8 = 1;

/// CRC-32 of a block: its header's first 12 bytes (codec, reserved, lengths) and its payload.
fn block_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..12]);
    h.update(payload);
    h.finalize()
}

/// Appends `v` as a LEB128 varint.
#[inline]
pub(crate) fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 varint of at most 5 bytes (a length below 4 GiB) and the bytes
/// it took; `None` when it is cut short or too long.
#[inline]
fn get_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(v).ok().map(|v| (v, i + 1));
        }
    }
    None
}

/// Appends one framed record: `varint(key.len()) key varint(value.len()) value`.
#[inline]
pub(crate) fn frame_record(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    put_varint(key.len() as u64, out);
    out.extend_from_slice(key);
    put_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// The first framed record of `bytes`: where its key and value lie, and
/// its length. `None` when the bytes do not frame a record.
#[inline]
pub(crate) fn unframe(bytes: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (klen, a) = get_varint(bytes)?;
    let key = a..a.checked_add(klen)?;
    let (vlen, b) = get_varint(bytes.get(key.end..)?)?;
    let start = key.end + b;
    let value = start..start.checked_add(vlen)?;
    (value.end <= bytes.len()).then_some((key, value))
}

/// Writes a data file partition by partition, then its index.
///
/// Files are written under temporary names and renamed into place by [`RunWriter::finish`]:
/// data first, index last, so an index that exists always describes a complete data file.
pub struct RunWriter {
    data_path: PathBuf,
    index_path: PathBuf,
    /// The data file under its temporary name, removed if the run is dropped unfinished (an
    /// error on any path, a cancel): no error leaves a `.tmp` behind.
    data_tmp: TempPath,
    /// Written a whole block at a time, with no buffer of its own: a block
    /// is its header's space and its records, so it goes out in one write.
    out: File,
    compression: Compression,
    block_target: usize,
    /// `BLOCK_HEADER_LEN` bytes for the header, then the records.
    block: Vec<u8>,
    compressed: Vec<u8>,
    partitions: u32,
    current: u32,
    offsets: Vec<u64>,
    records: Vec<u64>,
    position: u64,
    /// Scratch for encoding a typed record's key and value.
    scratch: (Vec<u8>, Vec<u8>),
}

/// A file under a temporary name that is removed when dropped, unless [`TempPath::keep`] said
/// it was renamed into place (as DataFusion's spill files are owned and deleted on drop).
pub(crate) struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    pub(crate) fn new(path: PathBuf) -> Self {
        TempPath { path, armed: true }
    }

    /// The file now lives under another name: nothing to remove.
    pub(crate) fn keep(&mut self) {
        self.armed = false;
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates a data file under its temporary name (removed unless kept) and
/// writes its header.
pub(crate) fn create_data_file(data_path: &Path) -> Result<(TempPath, File)> {
    let data_tmp = TempPath::new(tmp_name(data_path));
    let mut out = File::create(&data_tmp).map_err(|e| Error::io("create", &data_tmp, e))?;
    let mut header = [0u8; DATA_HEADER_LEN as usize];
    header[..4].copy_from_slice(DATA_MAGIC);
    header[4] = VERSION;
    out.write_all(&header)
        .map_err(|e| Error::io("write", &data_tmp, e))?;
    Ok((data_tmp, out))
}

pub(crate) fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

impl RunWriter {
    /// Starts a run whose index will be `index_path` and data `data_path` (same folder).
    pub fn create(
        data_path: &Path,
        index_path: &Path,
        partitions: u32,
        compression: Compression,
        block_target: usize,
    ) -> Result<Self> {
        let (data_tmp, out) = create_data_file(data_path)?;
        Ok(RunWriter {
            data_path: data_path.to_path_buf(),
            index_path: index_path.to_path_buf(),
            data_tmp,
            out,
            compression,
            block_target: block_target.max(64),
            block: {
                let mut b = Vec::with_capacity(BLOCK_HEADER_LEN + block_target.max(64) + 1024);
                b.resize(BLOCK_HEADER_LEN, 0);
                b
            },
            compressed: Vec::new(),
            partitions,
            current: 0,
            offsets: vec![DATA_HEADER_LEN],
            records: vec![0; partitions as usize],
            position: DATA_HEADER_LEN,
            scratch: (Vec::new(), Vec::new()),
        })
    }

    /// Moves to partition `p`: partitions must come in ascending order, each below the count.
    fn enter(&mut self, p: u32) -> Result<()> {
        if p < self.current || p >= self.partitions {
            return Err(Error::Codec(format!(
                "record for partition {p} after partition {} (of {})",
                self.current, self.partitions
            )));
        }
        while self.current < p {
            self.flush_block()?;
            self.offsets.push(self.position);
            self.current += 1;
        }
        Ok(())
    }

    /// Appends one record, its key and value already encoded, to partition
    /// `p`.
    pub fn push(&mut self, p: u32, key: &[u8], value: &[u8]) -> Result<()> {
        self.open_block(p)?;
        frame_record(key, value, &mut self.block);
        self.record_done()
    }

    /// Appends one record as it is framed in another run or a map buffer
    /// (as `frame_record` makes them): a copy, no decoding.
    pub fn push_framed(&mut self, p: u32, framed: &[u8]) -> Result<()> {
        self.open_block(p)?;
        self.block.extend_from_slice(framed);
        self.record_done()
    }

    /// Encodes and appends one typed record.
    pub fn push_typed<K: serde::Serialize, V: serde::Serialize>(
        &mut self,
        p: u32,
        key: &K,
        value: &V,
    ) -> Result<()> {
        let (mut k, mut v) = std::mem::take(&mut self.scratch);
        k.clear();
        v.clear();
        let encoded = crate::codec::encode_into(key, &mut k)
            .and_then(|()| crate::codec::encode_into(value, &mut v));
        let pushed = encoded.and_then(|()| self.push(p, &k, &v));
        self.scratch = (k, v);
        pushed
    }

    fn open_block(&mut self, p: u32) -> Result<()> {
        if p != self.current {
            self.enter(p)?;
        }
        Ok(())
    }

    /// Counts a record and flushes a full block.
    fn record_done(&mut self) -> Result<()> {
        self.records[self.current as usize] += 1;
        if self.block.len() - BLOCK_HEADER_LEN >= self.block_target {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        let raw_len = self.block.len() - BLOCK_HEADER_LEN;
        if raw_len == 0 {
            return Ok(());
        }
        let raw_len32 = u32::try_from(raw_len)
            .map_err(|_| Error::Codec("a single record larger than 4 GiB".into()))?;
        // The block goes out from `self.block`, or from `self.compressed`
        // when LZ4 shrinks it; either has the header's space in front.
        let compressed = match self.compression {
            Compression::None => None,
            Compression::Lz4 => {
                let bound = lz4_flex::block::get_maximum_output_size(raw_len);
                self.compressed.resize(BLOCK_HEADER_LEN + bound, 0);
                let (raw, out) = (&self.block[BLOCK_HEADER_LEN..], &mut self.compressed);
                match lz4_flex::block::compress_into(raw, &mut out[BLOCK_HEADER_LEN..]) {
                    Ok(n) if n < raw_len => Some(n),
                    _ => None,
                }
            }
        };
        let (codec, buf) = match compressed {
            Some(n) => (CODEC_LZ4, &mut self.compressed[..BLOCK_HEADER_LEN + n]),
            None => (CODEC_RAW, &mut self.block[..]),
        };
        let stored_len = (buf.len() - BLOCK_HEADER_LEN) as u32;
        let (header, payload) = buf.split_at_mut(BLOCK_HEADER_LEN);
        header.fill(0);
        header[0] = codec;
        header[4..8].copy_from_slice(&stored_len.to_le_bytes());
        header[8..12].copy_from_slice(&raw_len32.to_le_bytes());
        let crc = block_crc(header, payload);
        header[12..16].copy_from_slice(&crc.to_le_bytes());
        self.out
            .write_all(buf)
            .map_err(|e| Error::io("write", &self.data_tmp, e))?;
        self.position += buf.len() as u64;
        self.block.truncate(BLOCK_HEADER_LEN);
        Ok(())
    }

    /// Completes the run: flushes, writes the index, renames both into place.
    pub fn finish(mut self) -> Result<RunIndex> {
        self.flush_block()?;
        while self.offsets.len() < self.partitions as usize + 1 {
            self.offsets.push(self.position);
        }
        drop(self.out);
        std::fs::rename(&self.data_tmp, &self.data_path)
            .map_err(|e| Error::io("rename", &self.data_tmp, e))?;
        self.data_tmp.keep();
        let index = RunIndex {
            index_path: self.index_path.clone(),
            data_path: self.data_path.clone(),
            offsets: self.offsets,
            records: self.records,
        };
        index.write_index()?;
        Ok(index)
    }

    /// Abandons the run, removing its temporary data file (as dropping it does).
    pub fn abort(self) {
        drop(self);
    }
}

/// A parsed index: where each partition lies in a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIndex {
    /// The index file.
    pub index_path: PathBuf,
    /// The data file it describes.
    pub data_path: PathBuf,
    /// `partitions + 1` byte offsets.
    pub offsets: Vec<u64>,
    /// Records per partition.
    pub records: Vec<u64>,
}

impl RunIndex {
    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.records.len() as u32
    }

    /// Total records over all partitions.
    pub fn total_records(&self) -> u64 {
        self.records.iter().sum()
    }

    /// Bytes of data (blocks) of partition `p`.
    pub fn segment_len(&self, p: u32) -> u64 {
        self.offsets[p as usize + 1] - self.offsets[p as usize]
    }

    /// Reads a whole run back as a reduce would, without decoding records:
    /// the index (checksum, data length), the data header and every block's
    /// checksum. `Ok` means every partition of the run can be read; the
    /// error names the damaged file and byte otherwise.
    ///
    /// A reduce that failed calls it on its inputs to tell a lost map output
    /// (the map must run again) from a failure of its own.
    pub fn verify(index_path: &Path) -> Result<()> {
        let index = RunIndex::read(index_path)?;
        for p in 0..index.partitions() {
            // Partition 0 is always opened: that checks the data header.
            if p > 0 && index.segment_len(p) == 0 {
                continue;
            }
            let mut reader = SegmentReader::open(&index, p)?;
            while reader.advance()? {}
        }
        Ok(())
    }

    pub(crate) fn write_index(&self) -> Result<()> {
        let name = self
            .data_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Codec(format!("bad data file name {:?}", self.data_path)))?;
        let mut buf = Vec::with_capacity(16 + name.len() + self.offsets.len() * 16);
        buf.extend_from_slice(INDEX_MAGIC);
        buf.extend_from_slice(&[VERSION, 0, 0, 0]);
        buf.extend_from_slice(&self.partitions().to_le_bytes());
        buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buf.extend_from_slice(name.as_bytes());
        for o in &self.offsets {
            buf.extend_from_slice(&o.to_le_bytes());
        }
        for r in &self.records {
            buf.extend_from_slice(&r.to_le_bytes());
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let mut tmp = TempPath::new(tmp_name(&self.index_path));
        std::fs::write(&tmp, &buf).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &self.index_path).map_err(|e| Error::io("rename", &tmp, e))?;
        tmp.keep();
        Ok(())
    }

    /// Reads and checks an index, and checks that its data file is long enough.
    pub fn read(index_path: &Path) -> Result<Self> {
        let buf = std::fs::read(index_path).map_err(|e| Error::io("read", index_path, e))?;
        let bad = |offset: usize, reason: &str| Error::corrupt(index_path, offset as u64, reason);
        if buf.len() < 18 + 4 {
            return Err(bad(0, "truncated index"));
        }
        if &buf[..4] != INDEX_MAGIC {
            return Err(bad(0, "not a GridMR shuffle index"));
        }
        if buf[4] != VERSION {
            return Err(bad(4, "unsupported index version"));
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(bad(
                buf.len() - 4,
                "index checksum mismatch (truncated or damaged)",
            ));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let partitions = u32_at(8) as usize;
        let name_len = u16::from_le_bytes([body[12], body[13]]) as usize;
        let expected = 14 + name_len + (partitions + 1) * 8 + partitions * 8;
        if body.len() != expected {
            return Err(bad(12, "index length does not match its partition count"));
        }
        let name = std::str::from_utf8(&body[14..14 + name_len])
            .map_err(|_| bad(14, "data file name is not UTF-8"))?;
        if name.contains(['/', '\\']) || name == ".." || name.is_empty() {
            return Err(bad(14, "data file name is not a plain file name"));
        }
        let u64s = |from: usize, n: usize| -> Vec<u64> {
            (0..n)
                .map(|i| {
                    let at = from + i * 8;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&body[at..at + 8]);
                    u64::from_le_bytes(b)
                })
                .collect()
        };
        let offsets = u64s(14 + name_len, partitions + 1);
        let records = u64s(14 + name_len + (partitions + 1) * 8, partitions);
        if offsets.windows(2).any(|w| w[0] > w[1]) || offsets[0] != DATA_HEADER_LEN {
            return Err(bad(14 + name_len, "offsets are not ascending"));
        }
        let data_path = index_path.with_file_name(name);
        let data_len = std::fs::metadata(&data_path)
            .map_err(|e| Error::io("stat", &data_path, e))?
            .len();
        let last = offsets[partitions];
        if data_len < last {
            return Err(Error::corrupt(
                &data_path,
                data_len,
                format!("truncated: the index says {last} bytes"),
            ));
        }
        Ok(RunIndex {
            index_path: index_path.to_path_buf(),
            data_path,
            offsets,
            records,
        })
    }
}

/// Reads the blocks of one partition of a data file and yields its encoded records.
pub struct SegmentReader {
    path: PathBuf,
    file: File,
    position: u64,
    end: u64,
    /// The segment's records, as its index counts them.
    records: u64,
    raw: Vec<u8>,
    stored: Vec<u8>,
    /// Where the next record starts in `raw`.
    cursor: usize,
    /// The current record (after [`SegmentReader::advance`]): where it
    /// starts, and where its key and value lie, in `raw`.
    start: usize,
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl SegmentReader {
    /// Opens partition `p` of the run described by `index`.
    pub fn open(index: &RunIndex, p: u32) -> Result<Self> {
        let path = index.data_path.clone();
        let mut file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let start = index.offsets[p as usize];
        let end = index.offsets[p as usize + 1];
        if p == 0 {
            let mut header = [0u8; DATA_HEADER_LEN as usize];
            file.read_exact(&mut header)
                .map_err(|_| Error::corrupt(&path, 0, "truncated header"))?;
            if &header[..4] != DATA_MAGIC || header[4] != VERSION || header[5..] != [0, 0, 0] {
                return Err(Error::corrupt(&path, 0, "not a GridMR shuffle data file"));
            }
        }
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io("seek", &path, e))?;
        Ok(SegmentReader {
            path,
            file,
            position: start,
            end,
            records: index.records[p as usize],
            raw: Vec::new(),
            stored: Vec::new(),
            cursor: 0,
            start: 0,
            key: 0..0,
            value: 0..0,
        })
    }

    /// The data file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records of the segment, as its index counts them.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn next_block(&mut self) -> Result<bool> {
        if self.position >= self.end {
            return Ok(false);
        }
        let at = self.position;
        let truncated = |_| Error::corrupt(&self.path, at, "truncated block");
        let mut header = [0u8; BLOCK_HEADER_LEN];
        self.file.read_exact(&mut header).map_err(truncated)?;
        let codec = header[0];
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (stored_len, raw_len, crc) = (word(4), word(8), word(12));
        let block_end = at + (BLOCK_HEADER_LEN as u64) + u64::from(stored_len);
        if block_end > self.end {
            return Err(Error::corrupt(
                &self.path,
                at,
                "block runs past its partition",
            ));
        }
        self.stored.resize(stored_len as usize, 0);
        self.file
            .read_exact(&mut self.stored)
            .map_err(|_| Error::corrupt(&self.path, at, "truncated block"))?;
        if block_crc(&header, &self.stored) != crc {
            return Err(Error::corrupt(&self.path, at, "block checksum mismatch"));
        }
        match codec {
            CODEC_RAW => std::mem::swap(&mut self.raw, &mut self.stored),
            CODEC_LZ4 => {
                self.raw.resize(raw_len as usize, 0);
                let n = lz4_flex::block::decompress_into(&self.stored, &mut self.raw)
                    .map_err(|e| Error::corrupt(&self.path, at, format!("lz4: {e}")))?;
                if n != raw_len as usize {
                    return Err(Error::corrupt(
                        &self.path,
                        at,
                        "lz4 block has the wrong length",
                    ));
                }
            }
            other => {
                return Err(Error::corrupt(
                    &self.path,
                    at,
                    format!("unknown codec {other}"),
                ));
            }
        }
        self.position = block_end;
        self.cursor = 0;
        Ok(true)
    }

    /// Moves to the next record, loading the next block when the current
    /// one is used up: `false` at the end of the partition. The record is
    /// then [`SegmentReader::key`] and [`SegmentReader::value`].
    pub fn advance(&mut self) -> Result<bool> {
        while self.cursor >= self.raw.len() {
            if !self.next_block()? {
                self.raw.clear();
                self.cursor = 0;
                return Ok(false);
            }
        }
        let rest = &self.raw[self.cursor..];
        let Some((key, value)) = unframe(rest) else {
            return Err(Error::corrupt(
                &self.path,
                self.position,
                "a record's lengths run past its block",
            ));
        };
        self.start = self.cursor;
        self.key = self.cursor + key.start..self.cursor + key.end;
        self.value = self.cursor + value.start..self.cursor + value.end;
        self.cursor += value.end;
        Ok(true)
    }

    /// The current record's encoded key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.raw[self.key.clone()]
    }

    /// The current record's encoded value.
    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.raw[self.value.clone()]
    }

    /// The current record, framed (for [`RunWriter::push_framed`]).
    #[inline]
    pub fn framed(&self) -> &[u8] {
        &self.raw[self.start..self.value.end]
    }

    /// A decode error of the current record, as the file's corruption.
    pub(crate) fn undecodable(&self, e: Error) -> Error {
        Error::corrupt(
            &self.path,
            self.position,
            format!("undecodable record: {e}"),
        )
    }

    /// Decodes the next `(key, value)` record.
    pub fn next_record<K, V>(&mut self) -> Result<Option<(K, V)>>
    where
        K: serde::de::DeserializeOwned,
        V: serde::de::DeserializeOwned,
    {
        if !self.advance()? {
            return Ok(None);
        }
        let k = decode_whole::<K>(self.key()).map_err(|e| self.undecodable(e))?;
        let v = decode_whole::<V>(self.value()).map_err(|e| self.undecodable(e))?;
        Ok(Some((k, v)))
    }
}

/// The bytes of a varint-length-prefixed encoding that must take exactly
/// `bytes` (postcard's strings and byte strings).
fn length_prefixed(bytes: &[u8]) -> Result<&[u8]> {
    let (len, n) =
        get_varint(bytes).ok_or_else(|| Error::Codec("a string's length is cut".into()))?;
    match bytes.get(n..) {
        Some(body) if body.len() == len => Ok(body),
        _ => Err(Error::Codec(
            "a string's length does not match its record".into(),
        )),
    }
}

/// Decodes a value that must take exactly `bytes`.
pub(crate) fn decode_whole<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (v, rest) = crate::codec::decode_from::<T>(bytes)?;
    if rest.is_empty() {
        Ok(v)
    } else {
        Err(Error::Codec(format!(
            "{} bytes after the record",
            rest.len()
        )))
    }
}

/// Decodes `bytes`, which must be one whole value, into `slot`, reusing what
/// `slot` holds (a `String`'s buffer, say).
pub(crate) fn decode_in_place<'de, T: serde::Deserialize<'de> + 'static>(
    bytes: &'de [u8],
    slot: &mut T,
) -> Result<()> {
    // Strings and byte strings, the common keys and values: their length
    // and bytes, copied into the slot's buffer.
    if let Some(s) = (slot as &mut dyn std::any::Any).downcast_mut::<String>() {
        let body = length_prefixed(bytes)?;
        // (std's check is the faster one for short strings.)
        let text = std::str::from_utf8(body)
            .map_err(|_| Error::Codec("a string that is not UTF-8".into()))?;
        s.clear();
        s.push_str(text);
        return Ok(());
    }
    if let Some(v) = (slot as &mut dyn std::any::Any).downcast_mut::<Vec<u8>>() {
        let body = length_prefixed(bytes)?;
        v.clear();
        v.extend_from_slice(body);
        return Ok(());
    }
    let mut de = postcard::Deserializer::from_bytes(bytes);
    T::deserialize_in_place(&mut de, slot).map_err(|e| Error::Codec(e.to_string()))?;
    match de.finalize() {
        Ok([]) => Ok(()),
        Ok(rest) => Err(Error::Codec(format!(
            "{} bytes after the record",
            rest.len()
        ))),
        Err(e) => Err(Error::Codec(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_into;

    fn write_run(dir: &Path, compression: Compression, n: u64) -> RunIndex {
        let mut w = RunWriter::create(
            &dir.join("r.data"),
            &dir.join("r.index"),
            3,
            compression,
            256,
        )
        .unwrap();
        let (mut k, mut v) = (Vec::new(), Vec::new());
        for p in [0u32, 2] {
            for i in 0..n {
                k.clear();
                v.clear();
                encode_into(&format!("key-{p}-{i:05}"), &mut k).unwrap();
                encode_into(&i, &mut v).unwrap();
                w.push(p, &k, &v).unwrap();
            }
        }
        w.finish().unwrap()
    }

    fn read_all(index: &RunIndex, p: u32) -> Result<Vec<(String, u64)>> {
        let mut r = SegmentReader::open(index, p)?;
        let mut out = Vec::new();
        while let Some(kv) = r.next_record::<String, u64>()? {
            out.push(kv);
        }
        Ok(out)
    }

    #[test]
    fn round_trip_with_and_without_lz4() {
        for c in [Compression::None, Compression::Lz4] {
            let dir = tempfile::tempdir().unwrap();
            let written = write_run(dir.path(), c, 500);
            let index = RunIndex::read(&dir.path().join("r.index")).unwrap();
            assert_eq!(index, written);
            assert_eq!(index.records, vec![500, 0, 500]);
            assert_eq!(read_all(&index, 1).unwrap(), vec![]);
            let p2 = read_all(&index, 2).unwrap();
            assert_eq!(p2.len(), 500);
            assert_eq!(p2[499], ("key-2-00499".to_string(), 499));
        }
        // lz4 shrinks these repetitive keys.
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let plain = write_run(a.path(), Compression::None, 500);
        let lz4 = write_run(b.path(), Compression::Lz4, 500);
        assert!(lz4.offsets[3] < plain.offsets[3] / 2);
    }

    #[test]
    fn flipped_byte_is_detected_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), Compression::Lz4, 200);
        let data = dir.path().join("r.data");
        let original = std::fs::read(&data).unwrap();
        for at in (8..original.len()).step_by(37) {
            let mut bad = original.clone();
            bad[at] ^= 0x10;
            std::fs::write(&data, &bad).unwrap();
            let index = RunIndex::read(&dir.path().join("r.index")).unwrap();
            let err = (0..3).map(|p| read_all(&index, p)).find_map(Result::err);
            assert!(
                RunIndex::verify(&dir.path().join("r.index")).is_err(),
                "byte {at}: verify missed the damage"
            );
            match err {
                Some(Error::Corrupt { path, .. }) => assert_eq!(path, data),
                other => panic!("byte {at}: expected corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn verify_passes_a_whole_run_and_fails_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), Compression::Lz4, 300);
        let index = dir.path().join("r.index");
        RunIndex::verify(&index).unwrap();
        std::fs::remove_file(dir.path().join("r.data")).unwrap();
        assert!(RunIndex::verify(&index).is_err());
        std::fs::remove_file(&index).unwrap();
        assert!(RunIndex::verify(&index).is_err());
    }

    #[test]
    fn partitions_out_of_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RunWriter::create(
            &dir.path().join("r.data"),
            &dir.path().join("r.index"),
            2,
            Compression::None,
            256,
        )
        .unwrap();
        w.push(1, b"\x01a", b"\x01").unwrap();
        assert!(w.push(0, b"\x01b", b"\x01").is_err());
        assert!(w.push(2, b"\x01c", b"\x01").is_err());
        // Dropped after the error, unfinished: it leaves no file, temporary or not.
        assert!(dir.path().join("r.data.tmp").exists());
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), Compression::None, 200);
        let data = dir.path().join("r.data");
        let len = std::fs::metadata(&data).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        f.set_len(len - 10).unwrap();
        let err = RunIndex::read(&dir.path().join("r.index")).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { path, .. } if *path == data),
            "{err}"
        );

        let index_path = dir.path().join("r.index");
        let idx = std::fs::read(&index_path).unwrap();
        std::fs::write(&index_path, &idx[..idx.len() - 3]).unwrap();
        let err = RunIndex::read(&index_path).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { path, .. } if *path == index_path),
            "{err}"
        );
    }
}
