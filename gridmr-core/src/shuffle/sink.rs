//! The map-side buffer: collects a map task's output under a byte budget, spills sorted runs
//! when over it, and merges the runs into the task's one data file and index.

use super::format::{RunIndex, RunWriter};
use super::merge::{merge_runs, write_record};
use super::ShuffleSettings;
use crate::codec::{encoded_len, Key, Value};
use crate::counters::{builtin, Counters};
use crate::error::Result;
use crate::job::Combiner;
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

/// A map task's output buffer.
///
/// With a combiner it is a hash table from key to accumulated value; without one, a list of
/// `(partition, key, value)` records. Either way its estimated size (entries, table slots, the
/// keys' and values' encoded sizes, and the scratch a sort at spill time needs) stays under
/// [`ShuffleSettings::sort_buffer_bytes`]: past it the buffer is sorted by (partition, key)
/// and spilled as a run. Peak memory therefore does not grow with the input.
///
/// The estimate is an approximation: a value's size is taken when its key is first buffered, so
/// a combiner whose accumulated values grow (a list, a set) can take more than the budget.
pub struct MapSink<K, V> {
    target: SinkTarget,
    settings: ShuffleSettings,
    partitioner: Arc<dyn Partitioner<K>>,
    combiner: Option<Arc<dyn Combiner<K, V>>>,
    table: HashMap<K, V, FxBuildHasher>,
    list: Vec<(u32, K, V)>,
    /// Encoded sizes of the buffered keys and values: a stand-in for their heap use.
    heap_bytes: usize,
    runs: Vec<RunIndex>,
    merges: usize,
    /// Hot-path counts, kept as plain integers and added to the task's counters at the end.
    output_records: u64,
    /// Counters of spills and merges.
    counters: Counters,
}

impl<K: Key, V: Value> MapSink<K, V> {
    /// A sink writing under `target`.
    pub fn new(
        target: SinkTarget,
        settings: ShuffleSettings,
        partitioner: Arc<dyn Partitioner<K>>,
        combiner: Option<Arc<dyn Combiner<K, V>>>,
    ) -> Self {
        MapSink {
            target,
            settings,
            partitioner,
            combiner,
            table: HashMap::default(),
            list: Vec::new(),
            heap_bytes: 0,
            runs: Vec::new(),
            merges: 0,
            output_records: 0,
            counters: Counters::default(),
        }
    }

    /// The buffer's estimated size in bytes.
    pub fn estimated_bytes(&self) -> usize {
        let sorted_entry = size_of::<(u32, K, V)>();
        if self.combiner.is_some() {
            // At spill time the table's entries are moved into a vector and sorted.
            self.table.capacity() * (size_of::<(K, V)>() + TABLE_SLOT_OVERHEAD)
                + self.table.len() * sorted_entry
                + self.heap_bytes
        } else {
            // A stable sort needs scratch for half the list.
            self.list.capacity() * sorted_entry
                + self.list.len() * sorted_entry / 2
                + self.heap_bytes
        }
    }

    fn over_budget(&self) -> bool {
        self.estimated_bytes() as u64 > self.settings.sort_buffer_bytes
    }

    /// Buffers one record.
    #[inline]
    pub fn emit(&mut self, key: K, value: V) -> Result<()> {
        if let Some(c) = &self.combiner {
            if let Some(acc) = self.table.get_mut(&key) {
                self.output_records += 1;
                c.combine(&key, acc, value);
                return Ok(());
            }
        }
        self.insert(key, value)
    }

    /// Buffers one record from a borrowed key, copying the key only when it is stored.
    #[inline]
    pub fn emit_ref<Q>(&mut self, key: &Q, value: V) -> Result<()>
    where
        K: Borrow<Q> + for<'q> From<&'q Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(c) = &self.combiner {
            if let Some((k, acc)) = self.table.get_key_value_mut(key) {
                self.output_records += 1;
                c.combine(k, acc, value);
                return Ok(());
            }
        }
        self.insert(K::from(key), value)
    }

    /// Stores a record whose key is not buffered yet (or every record, without a combiner), and
    /// spills when over budget. Kept out of line so that the hot path above stays small.
    #[inline(never)]
    fn insert(&mut self, key: K, value: V) -> Result<()> {
        self.output_records += 1;
        self.heap_bytes += encoded_len(&key) + encoded_len(&value);
        if self.combiner.is_some() {
            self.table.insert(key, value);
        } else {
            let p = self.partitioner.partition(&key, self.target.partitions);
            self.list.push((p, key, value));
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
            self.runs = vec![merged];
        }
        Ok(())
    }

    fn sorted_records(&mut self) -> Vec<(u32, K, V)> {
        if self.combiner.is_some() {
            let partitioner = &self.partitioner;
            let n = self.target.partitions;
            let mut records: Vec<(u32, K, V)> = self
                .table
                .drain()
                .map(|(k, v)| (partitioner.partition(&k, n), k, v))
                .collect();
            records.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            records
        } else {
            let mut records = std::mem::take(&mut self.list);
            records.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            records
        }
    }

    fn write_buffer(&mut self, data: &Path, index: &Path) -> Result<RunIndex> {
        let records = self.sorted_records();
        self.heap_bytes = 0;
        if self.combiner.is_some() {
            self.counters
                .add_builtin(builtin::COMBINE_OUTPUT_RECORDS, records.len() as u64);
        }
        self.counters
            .add_builtin(builtin::SPILLED_RECORDS, records.len() as u64);
        let mut out = RunWriter::create(
            data,
            index,
            self.target.partitions,
            self.settings.compression,
            self.settings.block_bytes,
        )?;
        for (p, k, v) in &records {
            if let Err(e) = write_record(&mut out, *p, k, v) {
                out.abort();
                return Err(e);
            }
        }
        out.finish()
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
            &self.runs,
            out,
            self.target.partitions,
            self.combiner.as_deref(),
            &mut self.counters,
        )?;
        self.counters
            .add_builtin(builtin::SPILLED_RECORDS, merged.total_records());
        for run in self.runs.drain(..) {
            remove_run(&run);
        }
        Ok(merged)
    }

    /// Writes the task's final output `<stem>.data` / `<stem>.index`: the buffer directly when
    /// nothing was spilled, otherwise the last spill merged with the earlier runs.
    pub fn finish(mut self, counters: &mut Counters) -> Result<RunIndex> {
        let result = self.write_final();
        self.add_counters_to(counters);
        if result.is_err() {
            for run in self.runs.drain(..) {
                remove_run(&run);
            }
        }
        result
    }

    fn write_final(&mut self) -> Result<RunIndex> {
        let (data, index) = self.target.paths("");
        if self.runs.is_empty() {
            return self.write_buffer(&data, &index);
        }
        if !self.table.is_empty() || !self.list.is_empty() {
            let (d, i) = self.target.paths(&format!("-spill-{:04}", self.runs.len()));
            let run = self.write_buffer(&d, &i)?;
            self.runs.push(run);
            self.counters.add_builtin(builtin::SPILLS, 1);
        }
        if self.runs.len() == 1 {
            // One run is already the merged output: rename it into place, index last.
            let run = self.runs.remove(0);
            return rename_run(&run, &data, &index);
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

    /// Removes every spill and merge file this sink wrote (after a failure).
    pub fn discard(self) {
        for run in &self.runs {
            remove_run(run);
        }
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
