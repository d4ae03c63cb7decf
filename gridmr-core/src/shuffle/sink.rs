//! The map-side buffer: collects a map task's output under a byte budget, spills sorted runs
//! when over it, and merges the runs into the task's one data file and index.
//!
//! The buffer takes one of three shapes, chosen when the task starts:
//!
//! - **with a combiner**, a hash table from key to accumulated value (one entry per distinct
//!   key);
//! - **without one, for keys with a [`RawOrder`]** (strings, byte strings, integers, bools),
//!   a *serialized* buffer, as Hadoop's `MapOutputBuffer` and Spark's `UnsafeShuffleWriter`:
//!   each record is encoded once, framed, into an arena, and a compact index of
//!   `(partition, key prefix, offset)` entries (16 bytes each) is what gets sorted. A spill
//!   writes the arena's records in index order as bytes; merges compare keys as bytes;
//!   nothing is decoded on the map side;
//! - **without one, for other keys**, typed `(partition, key, value)` records sorted with the
//!   key's `Ord`, which only the type knows.

use super::field::Field;
use super::format::{unframe, RunIndex, RunWriter};
use super::merge::merge_runs;
use super::order::{bytes_prefix, RawOrder};
use super::ShuffleSettings;
use crate::codec::{encoded_len, Key, Value};
use crate::combine::Combiner;
use crate::counters::{builtin, Counters};
use crate::error::Result;
use crate::partition::Partitioner;
use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;
use std::borrow::Borrow;
use std::hash::Hash;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Hash-table slots cost their entry plus one control byte (hashbrown's layout).
const TABLE_SLOT_OVERHEAD: usize = 1;

/// Where a sink writes: a folder and a file-name stem unique to the task attempt.
#[derive(Debug, Clone)]
pub struct SinkTarget {
    /// The shuffle folder.
    pub dir: PathBuf,
    /// The stem, e.g. `map-00003-a1`: outputs are `<stem>.data` and `<stem>.index`, spill runs
    /// `<stem>-spill-NNNN.*`.
    pub stem: String,
    /// Reduce partitions.
    pub partitions: u32,
}

impl SinkTarget {
    fn paths(&self, suffix: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{}{suffix}", self.stem);
        (
            self.dir.join(format!("{stem}.data")),
            self.dir.join(format!("{stem}.index")),
        )
    }
}

/// One record of the serialized buffer (or of a combiner's typed records): its partition, its
/// key's prefix ([`RawOrder::prefix`], [`key_prefix`]) and where it lies (arena offset, or
/// position), packed high to low into one integer, so that sorting the integers sorts by
/// partition, then prefix, then arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry(u128);

impl Entry {
    #[inline]
    fn new(partition: u32, prefix: u64, offset: u32) -> Self {
        Entry((u128::from(partition) << 96) | (u128::from(prefix) << 32) | u128::from(offset))
    }

    #[inline]
    fn partition(self) -> u32 {
        (self.0 >> 96) as u32
    }

    /// The partition and the prefix: what a sort by integer settles.
    #[inline]
    fn head(self) -> u128 {
        self.0 >> 32
    }

    /// The key's prefix.
    #[inline]
    fn prefix(self) -> u64 {
        (self.0 >> 32) as u64
    }

    /// Where the record lies: its arena offset, or its position in a list of typed records.
    #[inline]
    fn offset(self) -> u32 {
        self.0 as u32
    }

    /// Sorts `index` as integers, then hands each run of two or more entries whose partition
    /// and prefix tie to `settle`, which orders it by whole keys.
    fn sort(index: &mut [Entry], mut settle: impl FnMut(&mut [Entry])) {
        index.sort_unstable();
        let mut i = 0;
        while i < index.len() {
            let head = index[i].head();
            let run = index[i..].iter().take_while(|e| e.head() == head).count();
            if run > 1 {
                settle(&mut index[i..i + run]);
            }
            i += run;
        }
    }
}

thread_local! {
    /// The arena and index of the last serialized buffer this thread was done with, kept for
    /// its next map task: fresh memory would have every page zeroed again by the kernel (a
    /// tenth of a sort's time). At most one buffer's worth, and never more than the budget of
    /// the task that takes it.
    static SPARE: std::cell::RefCell<Option<(Vec<u8>, Vec<Entry>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The serialized buffer: framed records in an arena, and their index.
struct RawBuffer {
    order: RawOrder,
    arena: Vec<u8>,
    index: Vec<Entry>,
    /// The arena's and the index's capacities, set aside at the first
    /// record (untouched pages cost no memory): three quarters and a quarter
    /// of the budget.
    arena_cap: usize,
    index_cap: usize,
    /// Where a record's key and value are encoded before they are framed.
    key: Vec<u8>,
    value: Vec<u8>,
}

impl RawBuffer {
    fn new(order: RawOrder, budget: u64) -> Self {
        let budget = usize::try_from(budget).unwrap_or(usize::MAX);
        // Offsets are u32: an arena holds at most 4 GiB.
        let arena_cap = (budget / 4 * 3).clamp(4 << 10, u32::MAX as usize);
        let index_cap = (budget / 4 / size_of::<Entry>()).max(64);
        RawBuffer {
            order,
            arena: Vec::new(),
            index: Vec::new(),
            arena_cap,
            index_cap,
            key: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Whether a record of `len` framed bytes fits.
    fn fits(&self, len: usize) -> bool {
        self.index.len() < self.index_cap && self.arena.len() + len <= self.arena_cap
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sets aside the arena and the index: this thread's spare ones when they are within
    /// this buffer's caps, else new.
    fn reserve(&mut self) {
        let spare = SPARE.with(|s| s.borrow_mut().take());
        if let Some((arena, index)) = spare {
            if arena.capacity() <= self.arena_cap && index.capacity() <= self.index_cap {
                (self.arena, self.index) = (arena, index);
            }
        }
        self.arena
            .reserve_exact(self.arena_cap - self.arena.capacity());
        self.index
            .reserve_exact(self.index_cap - self.index.capacity());
    }

    /// Frames a record into the arena: each field straight from its value, or from the
    /// scratch [`Field::prepare`] filled.
    fn append(&mut self, partition: u32, key: Field<'_>, value: Field<'_>) {
        if self.index.capacity() == 0 {
            self.reserve();
        }
        let offset = self.arena.len() as u32;
        key.frame(&self.key, &mut self.arena);
        value.frame(&self.value, &mut self.arena);
        let (_, encoded_key) = Self::record(&self.arena, offset);
        let prefix = self.order.prefix(encoded_key);
        self.index.push(Entry::new(partition, prefix, offset));
    }

    /// The record at `offset`: its framed bytes and its key.
    #[inline]
    fn record(arena: &[u8], offset: u32) -> (&[u8], &[u8]) {
        let rest = &arena[offset as usize..];
        match unframe(rest) {
            Some((k, v)) => (&rest[..v.end], &rest[k]),
            None => (&[], &[]),
        }
    }

    /// Sorts the index by partition, then key, then arrival (so that equal
    /// keys keep their emit order). Partition, prefix and arrival make one
    /// 128-bit integer, which places most records alone; only runs whose
    /// partition and prefix tie have their whole keys compared, and only where the prefix is
    /// not the whole key ([`RawOrder::prefix_is_whole`]: a word, a small integer), so a run
    /// of one short key said many times is not read at all.
    fn sort(&mut self) {
        let (arena, order) = (&self.arena, self.order);
        Entry::sort(&mut self.index, |entries| {
            if order.prefix_is_whole(entries[0].prefix()) {
                return;
            }
            let (_, first) = Self::record(arena, entries[0].offset());
            // Mostly a run of one key said many times, already in arrival order.
            let mixed = entries[1..]
                .iter()
                .any(|e| Self::record(arena, e.offset()).1 != first);
            if mixed {
                entries.sort_unstable_by(|a, b| {
                    let (_, ka) = Self::record(arena, a.offset());
                    let (_, kb) = Self::record(arena, b.offset());
                    order.compare_tied(ka, kb).then(a.offset().cmp(&b.offset()))
                });
            }
        });
    }

    /// Writes every record in index order, and empties the buffer (its
    /// memory is kept for the next run).
    fn write(&mut self, out: &mut RunWriter) -> Result<u64> {
        self.sort();
        for (i, e) in self.index.iter().enumerate() {
            // The sorted index visits the arena in random order: without asking for a record
            // ahead, each one's first read waits for memory. Three cache lines: a TeraSort row
            // (104 framed bytes) spans two or three; longer records' copies read on
            // sequentially, which the CPU's own prefetcher follows.
            if let Some(ahead) = self.index.get(i + PREFETCH_AHEAD) {
                let at = ahead.offset() as usize;
                for line in [at, at + 64, at + 128] {
                    prefetch(&self.arena, line);
                }
            }
            let (framed, _) = Self::record(&self.arena, e.offset());
            out.push_framed(e.partition(), framed)?;
        }
        let n = self.index.len() as u64;
        self.index.clear();
        self.arena.clear();
        Ok(n)
    }

    /// Bytes in use (the caps keep the reservation under the budget).
    fn bytes(&self) -> usize {
        self.arena.len() + self.index.len() * size_of::<Entry>()
    }
}

/// How many records ahead of the one being written [`RawBuffer::write`] asks for: enough to
/// cover a memory access's latency at a few nanoseconds a record (8, 16 and 32 measured
/// alike on the Intel machine in docs/performance.md; asking for a record's header first and
/// the rest once the header is in measured slower on small records, and no faster on
/// TeraSort's, than asking for three lines at once).
const PREFETCH_AHEAD: usize = 16;

/// Asks the CPU to bring `arena[offset]`'s cache line in, without waiting for it.
#[inline(always)]
fn prefetch(arena: &[u8], offset: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = arena.get(offset) {
        // SAFETY: a prefetch is a hint, not an access: it cannot fault, reads nothing the
        // program sees, and the address is of a live byte of `arena` besides.
        #[allow(unsafe_code)]
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(byte).cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (arena, offset);
}

impl Drop for RawBuffer {
    /// Leaves the arena and the index to this thread's next map task.
    fn drop(&mut self) {
        if self.arena.capacity() > 0 {
            self.arena.clear();
            self.index.clear();
            let kept = (
                std::mem::take(&mut self.arena),
                std::mem::take(&mut self.index),
            );
            SPARE.with(|s| *s.borrow_mut() = Some(kept));
        }
    }
}

/// The partition of `key`: with one partition there is nothing to choose, and the
/// partitioner (a SHA-1 digest, by default) is not asked (as Hadoop does with one reducer).
#[inline]
fn partition_of<K: ?Sized + 'static>(
    partitioner: &dyn Partitioner<K>,
    key: &K,
    partitions: u32,
) -> u32 {
    if partitions <= 1 {
        0
    } else {
        partitioner.partition(key, partitions)
    }
}

/// A typed record being sorted: its partition, its key's [`key_prefix`], the key, the value.
type Sorted<K, V> = (u32, u64, K, V);

/// An order-keeping summary of a typed key, taken once per record before a sort: a string's
/// or a byte string's `bytes_prefix` (its first 7 bytes and its length up to 8, as an integer:
/// `key_prefix(a) < key_prefix(b)` implies `a < b`), so most comparisons of distinct words
/// compare integers; 0 for other types, which their `Ord` sorts.
#[inline]
fn key_prefix<K: 'static>(key: &K) -> u64 {
    match Field::of(key) {
        Field::Bytes(b) => bytes_prefix(b),
        _ => 0,
    }
}

/// The buffer's shape (see the module's documentation).
enum Buffer<K, V> {
    Table(HashMap<K, V, FxBuildHasher>),
    Raw(RawBuffer),
    List(Vec<Sorted<K, V>>),
}

/// A map task's output buffer.
///
/// Its estimated size (entries, table slots, the arena, the keys' and values' encoded sizes,
/// and the scratch a sort at spill time needs) stays under
/// [`ShuffleSettings::sort_buffer_bytes`]: past it the buffer is sorted by (partition, key)
/// and spilled as a run. Peak memory therefore does not grow with the input.
///
/// The estimate is an approximation: with a combiner, a value's size is taken when its key is
/// first buffered, so a combiner whose accumulated values grow (a list, a set) can take more
/// than the budget.
pub struct MapSink<K, V> {
    target: SinkTarget,
    settings: ShuffleSettings,
    partitioner: Arc<dyn Partitioner<K>>,
    combiner: Option<Arc<dyn Combiner<K, V>>>,
    buffer: Buffer<K, V>,
    /// Encoded sizes of the buffered typed keys and values: a stand-in for their heap use.
    heap_bytes: usize,
    runs: SpillRuns,
    merges: usize,
    /// Hot-path counts, kept as plain integers and added to the task's counters at the end.
    output_records: u64,
    /// Counters of spills and merges.
    counters: Counters,
    /// The last key [`MapSink::emit_ref`] copied into the serialized buffer, kept so that the
    /// next copy reuses its allocation instead of making and freeing one per record.
    spare_key: Option<K>,
}

impl<K: Key, V: Value> MapSink<K, V> {
    /// A sink writing under `target`.
    pub fn new(
        target: SinkTarget,
        settings: ShuffleSettings,
        partitioner: Arc<dyn Partitioner<K>>,
        combiner: Option<Arc<dyn Combiner<K, V>>>,
    ) -> Self {
        let buffer = match (&combiner, RawOrder::of::<K>()) {
            (Some(_), _) => Buffer::Table(HashMap::default()),
            (None, Some(order)) => Buffer::Raw(RawBuffer::new(order, settings.sort_buffer_bytes)),
            (None, None) => Buffer::List(Vec::new()),
        };
        MapSink {
            target,
            settings,
            partitioner,
            combiner,
            buffer,
            heap_bytes: 0,
            runs: SpillRuns::default(),
            merges: 0,
            output_records: 0,
            counters: Counters::default(),
            spare_key: None,
        }
    }

    /// The buffer's estimated size in bytes.
    pub fn estimated_bytes(&self) -> usize {
        let sorted_entry = size_of::<Sorted<K, V>>();
        match &self.buffer {
            // At spill time the table's entries are moved into a vector, and an index of
            // them is sorted.
            Buffer::Table(t) => {
                t.capacity() * (size_of::<(K, V)>() + TABLE_SLOT_OVERHEAD)
                    + t.len() * (sorted_entry + size_of::<Entry>())
                    + self.heap_bytes
            }
            Buffer::Raw(r) => r.bytes(),
            // A stable sort needs scratch for half the list.
            Buffer::List(l) => {
                l.capacity() * sorted_entry + l.len() * sorted_entry / 2 + self.heap_bytes
            }
        }
    }

    fn over_budget(&self) -> bool {
        self.estimated_bytes() as u64 > self.settings.sort_buffer_bytes
    }

    /// Buffers one record.
    #[inline]
    pub fn emit(&mut self, key: K, value: V) -> Result<()> {
        match &mut self.buffer {
            Buffer::Table(t) => {
                if let (Some(c), Some(acc)) = (&self.combiner, t.get_mut(&key)) {
                    self.output_records += 1;
                    c.combine(&key, acc, value);
                    return Ok(());
                }
                self.insert(key, value)
            }
            Buffer::Raw(_) => self.emit_raw(&key, &value),
            Buffer::List(_) => self.insert(key, value),
        }
    }

    /// Buffers one record from borrowed parts: without a combiner, for a key with a raw
    /// order, it is encoded straight from the references, so a mapper that reuses its key and
    /// value buffers allocates nothing per record. Otherwise they are cloned.
    #[inline]
    pub fn emit_borrowed(&mut self, key: &K, value: &V) -> Result<()>
    where
        V: Clone,
    {
        match &self.buffer {
            Buffer::Raw(_) => self.emit_raw(key, value),
            _ => self.emit(key.clone(), value.clone()),
        }
    }

    /// Buffers one record from a borrowed key, copying the key only when it is stored.
    ///
    /// The common case of a combined job, a key already in the table, is small enough to be
    /// inlined into the mapper's loop (a hash, a probe, the combiner); every other case takes
    /// a call.
    #[inline(always)]
    pub fn emit_ref<Q>(&mut self, key: &Q, value: V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        if let (Buffer::Table(t), Some(c)) = (&mut self.buffer, &self.combiner) {
            if let Some((k, acc)) = t.get_key_value_mut(key) {
                self.output_records += 1;
                c.combine(k, acc, value);
                return Ok(());
            }
        }
        self.emit_ref_stored(key, value)
    }

    /// [`MapSink::emit_ref`] for a key that must be stored (or encoded).
    #[inline(never)]
    fn emit_ref_stored<Q>(&mut self, key: &Q, value: V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        if !matches!(self.buffer, Buffer::Raw(_)) {
            return self.emit(key.to_owned(), value);
        }
        // Encoded at once, the key is needed only for as long as that takes: one owned copy
        // is kept and overwritten (`clone_into` reuses its allocation).
        let k = match self.spare_key.take() {
            Some(mut k) => {
                key.clone_into(&mut k);
                k
            }
            None => key.to_owned(),
        };
        let emitted = self.encode(&k, &value);
        self.spare_key = Some(k);
        emitted
    }

    /// Encodes a record into the serialized buffer, spilling first when it does not fit.
    #[inline(never)]
    fn emit_raw(&mut self, key: &K, value: &V) -> Result<()> {
        self.encode(key, value)
    }

    /// [`MapSink::emit_raw`]'s body, inlined where the caller is already out of line.
    #[inline(always)]
    fn encode(&mut self, key: &K, value: &V) -> Result<()> {
        let partition = partition_of(&*self.partitioner, key, self.target.partitions);
        let Buffer::Raw(raw) = &mut self.buffer else {
            return Ok(());
        };
        self.output_records += 1;
        let (k, v) = (Field::of(key), Field::of(value));
        let len = k.prepare(key, &mut raw.key)? + v.prepare(value, &mut raw.value)?;
        if !raw.fits(len) && !raw.is_empty() {
            self.spill()?;
        }
        if let Buffer::Raw(raw) = &mut self.buffer {
            // A record larger than the whole arena gets a run of its own.
            let alone = !raw.fits(len);
            raw.append(partition, k, v);
            if alone {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Stores a typed record whose key is not buffered yet (or every record, without a
    /// combiner), and spills when over budget. Kept out of line so that the hot path above
    /// stays small.
    #[inline(never)]
    fn insert(&mut self, key: K, value: V) -> Result<()> {
        self.output_records += 1;
        self.heap_bytes += encoded_len(&key) + encoded_len(&value);
        match &mut self.buffer {
            Buffer::Table(t) => {
                t.insert(key, value);
            }
            Buffer::List(l) => {
                let p = partition_of(&*self.partitioner, &key, self.target.partitions);
                l.push((p, key_prefix(&key), key, value));
            }
            Buffer::Raw(_) => {}
        }
        if self.over_budget() {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the buffer and writes it as run `runs.len()`.
    fn spill(&mut self) -> Result<()> {
        let (data, index) = self.target.paths(&format!("-spill-{:04}", self.runs.len()));
        let run = self.write_buffer(&data, &index)?;
        self.runs.push(run);
        self.counters.add_builtin(builtin::SPILLS, 1);
        if self.runs.len() >= self.settings.merge_factor.max(2) {
            // Keep the number of open runs bounded: fold them into one (Hadoop's io.sort.factor).
            let (data, index) = self.target.paths(&format!("-merge-{:04}", self.merges));
            self.merges += 1;
            let merged = self.merge_into(&data, &index)?;
            self.runs.push(merged);
        }
        Ok(())
    }

    /// The typed buffer's records, each with its key's [`key_prefix`], and the order to write
    /// them in, by (partition, key); stable, so that equal keys keep their emit order.
    ///
    /// The combiner's table has distinct keys: what is sorted is one packed integer per
    /// record, (partition, prefix, position), as in the serialized buffer, so the records are
    /// not moved and most are placed by an integer compare; only runs whose partition and
    /// prefix tie compare their keys. A list (no raw order), or a table too large for 32-bit
    /// positions, is sorted in place and comes with no order.
    fn sorted_records(&mut self) -> (Vec<Sorted<K, V>>, Option<Vec<Entry>>) {
        let partitioner = &self.partitioner;
        let n = self.target.partitions;
        let order = |a: &Sorted<K, V>, b: &Sorted<K, V>| {
            (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| a.2.cmp(&b.2))
        };
        match &mut self.buffer {
            Buffer::Table(t) => {
                let mut records: Vec<Sorted<K, V>> = t
                    .drain()
                    .map(|(k, v)| (partition_of(&**partitioner, &k, n), key_prefix(&k), k, v))
                    .collect();
                if u32::try_from(records.len()).is_err() {
                    records.sort_unstable_by(order);
                    return (records, None);
                }
                let mut index: Vec<Entry> = records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Entry::new(r.0, r.1, i as u32))
                    .collect();
                Entry::sort(&mut index, |run| {
                    run.sort_unstable_by(|a, b| {
                        let key = |e: &Entry| &records[e.offset() as usize].2;
                        key(a).cmp(key(b))
                    })
                });
                (records, Some(index))
            }
            Buffer::List(l) => {
                let mut records = std::mem::take(l);
                records.sort_by(order);
                (records, None)
            }
            Buffer::Raw(_) => (Vec::new(), None),
        }
    }

    fn write_buffer(&mut self, data: &Path, index: &Path) -> Result<RunIndex> {
        let mut out = RunWriter::create(
            data,
            index,
            self.target.partitions,
            self.settings.compression,
            self.settings.block_bytes,
        )?;
        let written = match &mut self.buffer {
            Buffer::Raw(raw) => raw.write(&mut out),
            _ => {
                let (records, index) = self.sorted_records();
                self.heap_bytes = 0;
                if self.combiner.is_some() {
                    self.counters
                        .add_builtin(builtin::COMBINE_OUTPUT_RECORDS, records.len() as u64);
                }
                let mut push = |(p, _, k, v): &Sorted<K, V>| out.push_typed(*p, k, v);
                match index {
                    Some(index) => index
                        .iter()
                        .try_for_each(|e| push(&records[e.offset() as usize])),
                    None => records.iter().try_for_each(&mut push),
                }
                .map(|()| records.len() as u64)
            }
        };
        match written {
            Ok(n) => {
                self.counters.add_builtin(builtin::SPILLED_RECORDS, n);
                out.finish()
            }
            Err(e) => {
                out.abort();
                Err(e)
            }
        }
    }

    fn is_empty(&self) -> bool {
        match &self.buffer {
            Buffer::Table(t) => t.is_empty(),
            Buffer::Raw(r) => r.is_empty(),
            Buffer::List(l) => l.is_empty(),
        }
    }

    fn merge_into(&mut self, data: &Path, index: &Path) -> Result<RunIndex> {
        let out = RunWriter::create(
            data,
            index,
            self.target.partitions,
            self.settings.compression,
            self.settings.block_bytes,
        )?;
        let merged = merge_runs(
            self.runs.as_slice(),
            out,
            self.target.partitions,
            self.combiner.as_deref(),
            &mut self.counters,
        )?;
        self.counters
            .add_builtin(builtin::SPILLED_RECORDS, merged.total_records());
        self.runs.clear();
        Ok(merged)
    }

    /// Writes the task's final output `<stem>.data` / `<stem>.index`: the buffer directly when
    /// nothing was spilled, otherwise the last spill merged with the earlier runs.
    pub fn finish(mut self, counters: &mut Counters) -> Result<RunIndex> {
        let result = self.write_final();
        self.add_counters_to(counters);
        // Whatever runs are left (after an error) go with the sink.
        result
    }

    fn write_final(&mut self) -> Result<RunIndex> {
        let (data, index) = self.target.paths("");
        if self.runs.is_empty() {
            return self.write_buffer(&data, &index);
        }
        if !self.is_empty() {
            let (d, i) = self.target.paths(&format!("-spill-{:04}", self.runs.len()));
            let run = self.write_buffer(&d, &i)?;
            self.runs.push(run);
            self.counters.add_builtin(builtin::SPILLS, 1);
        }
        if let Some(run) = self.runs.take_only() {
            // One run is already the merged output: rename it into place, index last.
            let renamed = rename_run(&run, &data, &index);
            if renamed.is_err() {
                remove_run(&run);
            }
            return renamed;
        }
        self.merge_into(&data, &index)
    }

    fn add_counters_to(&self, counters: &mut Counters) {
        counters.add_builtin(builtin::MAP_OUTPUT_RECORDS, self.output_records);
        if self.combiner.is_some() {
            // Every emitted record goes through the combiner.
            counters.add_builtin(builtin::COMBINE_INPUT_RECORDS, self.output_records);
        }
        counters.merge(&self.counters);
    }

    /// Removes every spill and merge file this sink wrote (after a failure;
    /// dropping the sink does the same).
    pub fn discard(self) {
        drop(self);
    }
}

/// The spill and merge runs a sink has written and not yet merged into its
/// output: one owner for them, which removes every run it still holds when
/// it is dropped, so a failed, cancelled or panicked attempt leaves none
/// behind (as DataFusion's spill manager owns its temporary files).
#[derive(Default)]
struct SpillRuns(Vec<RunIndex>);

impl SpillRuns {
    fn push(&mut self, run: RunIndex) {
        self.0.push(run);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn as_slice(&self) -> &[RunIndex] {
        &self.0
    }

    /// Removes every run held (they were merged into another).
    fn clear(&mut self) {
        for run in self.0.drain(..) {
            remove_run(&run);
        }
    }

    /// The run, when there is exactly one: handed over, no longer owned.
    fn take_only(&mut self) -> Option<RunIndex> {
        (self.0.len() == 1).then(|| self.0.remove(0))
    }
}

impl Drop for SpillRuns {
    fn drop(&mut self) {
        self.clear();
    }
}

fn remove_run(run: &RunIndex) {
    let _ = std::fs::remove_file(&run.index_path);
    let _ = std::fs::remove_file(&run.data_path);
}

/// Renames a complete run to new names; the index is rewritten since it names its data file.
fn rename_run(run: &RunIndex, data: &Path, index: &Path) -> Result<RunIndex> {
    std::fs::rename(&run.data_path, data)
        .map_err(|e| crate::Error::io("rename", &run.data_path, e))?;
    let moved = RunIndex {
        index_path: index.to_path_buf(),
        data_path: data.to_path_buf(),
        offsets: run.offsets.clone(),
        records: run.records.clone(),
    };
    moved.write_index()?;
    let _ = std::fs::remove_file(&run.index_path);
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Sha1Partitioner;
    use crate::shuffle::SegmentReader;

    fn sink(dir: &std::path::Path, stem: &str) -> MapSink<String, u64> {
        sink_with(dir, stem, None)
    }

    fn sink_with(
        dir: &std::path::Path,
        stem: &str,
        combiner: Option<Arc<dyn Combiner<String, u64>>>,
    ) -> MapSink<String, u64> {
        let target = SinkTarget {
            dir: dir.to_path_buf(),
            stem: stem.into(),
            partitions: 3,
        };
        // A small budget, so that the buffer spills and the runs are merged.
        let settings = ShuffleSettings {
            sort_buffer_bytes: 4 << 10,
            ..ShuffleSettings::default()
        };
        MapSink::new(target, settings, Arc::new(Sha1Partitioner), combiner)
    }

    fn records(index: &RunIndex) -> Vec<Vec<(String, u64)>> {
        (0..index.partitions())
            .map(|p| {
                let mut r = SegmentReader::open(index, p).expect("open");
                let mut out = Vec::new();
                while let Some(rec) = r.next_record().expect("record") {
                    out.push(rec);
                }
                out
            })
            .collect()
    }

    #[test]
    fn borrowed_keys_reusing_one_copy_give_the_records_owned_keys_give() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Long keys then short ones: the reused copy must shrink as well as grow.
        let keys: Vec<String> = (0..3_000u64)
            .map(|i| match i % 3 {
                0 => "x".repeat((i % 97) as usize),
                1 => format!("k{}", i % 41),
                _ => String::new(),
            })
            .collect();
        let (mut by_ref, mut owned) = (sink(dir.path(), "ref"), sink(dir.path(), "own"));
        for (i, k) in keys.iter().enumerate() {
            by_ref.emit_ref(k.as_str(), i as u64).expect("emit_ref");
            owned.emit(k.clone(), i as u64).expect("emit");
        }
        let mut counters = Counters::default();
        let a = records(&by_ref.finish(&mut counters).expect("finish"));
        let b = records(&owned.finish(&mut counters).expect("finish"));
        assert_eq!(a.iter().map(Vec::len).sum::<usize>(), keys.len());
        assert_eq!(a, b);
        assert!(a.iter().all(|p| p.windows(2).all(|w| w[0] <= w[1])));
    }

    proptest::proptest! {
        /// Short keys (whose prefix is the whole key), keys tying on 7 or 8 bytes, keys
        /// differing only by trailing zeros: each partition comes out as a stable sort by key
        /// of what was emitted, spilled and merged or not.
        #[test]
        fn raw_buffer_sorts_as_a_stable_sort_by_key(
            keys in proptest::collection::vec("[ab\\x00]{0,3}|abcdefg[ab\\x00]{0,3}", 1..400),
            spill in proptest::bool::ANY,
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let target = SinkTarget { dir: dir.path().to_path_buf(), stem: "p".into(), partitions: 3 };
            let settings = ShuffleSettings {
                sort_buffer_bytes: if spill { 4 << 10 } else { 1 << 20 },
                ..ShuffleSettings::default()
            };
            let partitioner = Arc::new(Sha1Partitioner);
            let mut sink = MapSink::new(target, settings, partitioner.clone(), None);
            let mut want = vec![Vec::new(); 3];
            for (i, k) in keys.iter().enumerate() {
                sink.emit_ref(k.as_str(), i as u64).expect("emit");
                want[partitioner.partition(k, 3) as usize].push((k.clone(), i as u64));
            }
            for p in &mut want {
                p.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let got = records(&sink.finish(&mut Counters::default()).expect("finish"));
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn combined_keys_come_out_sorted_past_a_shared_prefix_and_summed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Keys that tie on their first 8 bytes (and on all of them, with the empty key and
        // short ones) must still be ordered by their whole bytes.
        let keys: Vec<String> = (0..2_000u64)
            .map(|i| match i % 4 {
                0 => format!("prefix__{}", i % 37),
                1 => format!("pre{}", i % 5),
                2 => "prefix__".to_string(),
                _ => String::new(),
            })
            .collect();
        let combiner: Arc<dyn Combiner<String, u64>> = Arc::new(crate::combine::SumCombiner);
        let mut sink = sink_with(dir.path(), "comb", Some(combiner));
        let mut want = std::collections::BTreeMap::<String, u64>::new();
        for k in &keys {
            sink.emit_ref(k.as_str(), 1).expect("emit");
            *want.entry(k.clone()).or_default() += 1;
        }
        let mut counters = Counters::default();
        let parts = records(&sink.finish(&mut counters).expect("finish"));
        let mut got = std::collections::BTreeMap::new();
        for p in &parts {
            assert!(
                p.windows(2).all(|w| w[0].0 < w[1].0),
                "sorted, distinct: {p:?}"
            );
            for (k, n) in p {
                *got.entry(k.clone()).or_default() += n;
            }
        }
        assert_eq!(got, want);
    }
}
