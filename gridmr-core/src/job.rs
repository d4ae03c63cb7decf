//! The typed job API: [`Mapper`], [`Reducer`], [`Combiner`], and [`Job`] which ties them
//! together with a [`Partitioner`] and an [`InputFormat`].

use crate::codec::{Key, Value};
use crate::combine::ValueSource;
pub use crate::combine::{Combiner, SumCombiner};
use crate::control::CancelFlag;
use crate::counters::Counters;
use crate::error::{Result, UserError, UserResult};
use crate::input::{InputFile, InputFormat, Lines, Record};
use crate::output::TextWriter;
use crate::params::Params;
use crate::partition::{Partitioner, Sha1Partitioner};
use crate::shuffle::MapSink;
use serde::Serialize;
use std::borrow::Borrow;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::Arc;

/// Who and where a task attempt is: what `setup` and user counters need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TaskInfo {
    /// The job's id.
    pub job_id: crate::ids::JobId,
    /// The task's id, e.g. `map-00003` or `reduce-00001`.
    pub task_id: crate::ids::TaskId,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The worker running the attempt (`local` in the embedded engine).
    pub worker_id: crate::ids::WorkerId,
    /// The input file of a map task.
    pub input_file: Option<PathBuf>,
    /// Which of the job's inputs a map task's file was listed from (0 for
    /// the first): how a mapper tells the sides of a join apart.
    #[serde(default)]
    pub input: u32,
    /// The partition of a reduce task.
    pub partition: Option<u32>,
    /// The job's parameters.
    #[serde(default)]
    pub params: Params,
}

impl TaskInfo {
    /// The job's parameters (read them in `setup`).
    pub fn params(&self) -> &Params {
        &self.params
    }
}

/// Where a map task's records go: the shuffle, or, for a map-only job
/// (no reduce partitions, as Hadoop's `numReduceTasks = 0`), straight to the
/// task's part file, unsorted.
// One per map task, for the task's life: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum MapOut<K, V> {
    Shuffle(MapSink<K, V>),
    Direct(TextWriter<K, V>),
}

impl<K: Key, V: Value> MapOut<K, V> {
    /// Ends a successful attempt's output: its index file (shuffle) or its
    /// part file (map-only), with their counters added to `counters`. A
    /// part file that cannot be finished is removed.
    pub(crate) fn finish(self, counters: &mut Counters) -> Result<std::path::PathBuf> {
        match self {
            MapOut::Shuffle(sink) => {
                let index = sink.finish(counters)?;
                counters.add_builtin(
                    crate::counters::builtin::MAP_OUTPUT_BYTES,
                    index.offsets.last().copied().unwrap_or(0),
                );
                Ok(index.index_path)
            }
            MapOut::Direct(writer) => {
                let path = writer.path().to_path_buf();
                let mut written = Counters::default();
                if let Err(e) = writer.finish(&mut written) {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                // A map-only task's records are its output: count them as both.
                counters.add_builtin(
                    crate::counters::builtin::MAP_OUTPUT_RECORDS,
                    written.builtin(crate::counters::builtin::OUTPUT_RECORDS),
                );
                counters.merge(&written);
                Ok(path)
            }
        }
    }

    /// Drops a failed attempt's output: nothing of it stays.
    pub(crate) fn discard(self) {
        match self {
            MapOut::Shuffle(sink) => sink.discard(),
            MapOut::Direct(writer) => {
                let path = writer.path().to_path_buf();
                drop(writer);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    #[inline]
    fn emit(&mut self, key: K, value: V) -> Result<()> {
        match self {
            MapOut::Shuffle(sink) => sink.emit(key, value),
            MapOut::Direct(out) => out.write(&key, &value),
        }
    }

    /// Inlined into the mapper's loop, so that a key its combiner already holds costs a
    /// hash-table lookup and no call (see [`MapSink::emit_ref`]).
    #[inline(always)]
    fn emit_ref<Q>(&mut self, key: &Q, value: V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        match self {
            MapOut::Shuffle(sink) => sink.emit_ref(key, value),
            MapOut::Direct(out) => Self::write_direct(out, key.to_owned(), value),
        }
    }

    #[inline(never)]
    fn write_direct(out: &mut TextWriter<K, V>, key: K, value: V) -> Result<()> {
        out.write(&key, &value)
    }

    #[inline]
    fn emit_borrowed(&mut self, key: &K, value: &V) -> Result<()>
    where
        V: Clone,
    {
        match self {
            MapOut::Shuffle(sink) => sink.emit_borrowed(key, value),
            MapOut::Direct(out) => out.write(key, value),
        }
    }
}

/// What a mapper sees besides its records: task info, counters, and where to emit.
pub struct MapContext<'a, K: Key, V: Value> {
    pub(crate) info: &'a TaskInfo,
    pub(crate) counters: &'a mut Counters,
    pub(crate) out: &'a mut MapOut<K, V>,
    /// The attempt's flag, for [`MapContext::is_cancelled`].
    pub(crate) cancel: &'a CancelFlag,
}

impl<K: Key, V: Value> MapContext<'_, K, V> {
    /// Whether the attempt has been asked to stop (its job cancelled, a speculative twin done,
    /// its worker told to kill it). The engine looks on its own between runs of lines and every
    /// [`CancelFlag::CHECK_EVERY`] lines of a run; a mapper that works long on one record can
    /// look too and return early: whatever error it returns then, the attempt ends as
    /// cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Emits one `(key, value)` pair.
    ///
    /// It fails only when a spill to disk fails; return the error (`?`) to fail the attempt.
    #[inline]
    pub fn emit(&mut self, key: K, value: V) -> Result<()> {
        self.out.emit(key, value)
    }

    /// Emits a pair from a borrowed key (`&str` for a `String` key), which is copied only when
    /// it must be stored: with a combiner, a key already buffered costs no allocation at all;
    /// without one, the key is copied into one owned key reused from record to record.
    #[inline(always)]
    pub fn emit_ref<Q>(&mut self, key: &Q, value: V) -> Result<()>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        self.out.emit_ref(key, value)
    }

    /// Emits a pair from references: without a combiner, for a key with a raw order
    /// (strings, integers; see [`RawOrder`](crate::shuffle::RawOrder)), it is encoded straight
    /// into the map buffer, so a mapper that keeps its key and value in reused buffers
    /// allocates nothing per record. Otherwise the pair is cloned.
    #[inline]
    pub fn emit_borrowed(&mut self, key: &K, value: &V) -> Result<()>
    where
        V: Clone,
    {
        self.out.emit_borrowed(key, value)
    }

    /// The job's parameters.
    pub fn params(&self) -> &Params {
        &self.info.params
    }

    /// The attempt's task info.
    pub fn info(&self) -> &TaskInfo {
        self.info
    }

    /// Adds `amount` to the user counter `group`/`name`.
    pub fn increment(&mut self, group: &str, name: &str, amount: u64) {
        self.counters.add(group, name, amount);
    }
}

/// What a reducer sees besides its groups: task info, counters, and the output.
pub struct ReduceContext<'a, K, V> {
    pub(crate) info: &'a TaskInfo,
    pub(crate) counters: &'a mut Counters,
    pub(crate) out: &'a mut TextWriter<K, V>,
}

impl<K: Serialize, V: Serialize> ReduceContext<'_, K, V> {
    /// Writes one output record as a `key<TAB>value` line (just `key` when
    /// the value type has no data, `()`: Hadoop's `NullWritable`).
    pub fn emit(&mut self, key: &K, value: &V) -> Result<()> {
        self.out.write(key, value)
    }

    /// The job's parameters.
    pub fn params(&self) -> &Params {
        &self.info.params
    }

    /// The attempt's task info.
    pub fn info(&self) -> &TaskInfo {
        self.info
    }

    /// Adds `amount` to the user counter `group`/`name`.
    pub fn increment(&mut self, group: &str, name: &str, amount: u64) {
        self.counters.add(group, name, amount);
    }
}

/// The map side of a job.
///
/// Each map task works on its own clone of the mapper, so fields are per-task state (as in
/// Hadoop, where each task has its own `Mapper` instance): `setup` runs before the task's first
/// record, `cleanup` after its last, and both may emit.
///
/// ```
/// use gridmr_core::{Mapper, MapContext, Record, UserResult};
///
/// #[derive(Clone)]
/// struct LineLengths;
///
/// impl Mapper for LineLengths {
///     type Key = u64;
///     type Value = u64;
///     fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, u64, u64>) -> UserResult {
///         ctx.emit(record.bytes.len() as u64, 1)?;
///         Ok(())
///     }
/// }
/// ```
pub trait Mapper: Clone + Send + Sync + 'static {
    /// The map output key.
    type Key: Key;
    /// The map output value.
    type Value: Value;

    /// Called once per task, before the first record.
    fn setup(&mut self, ctx: &mut MapContext<'_, Self::Key, Self::Value>) -> UserResult {
        let _ = ctx;
        Ok(())
    }

    /// Called once per input record.
    fn map(
        &mut self,
        record: &Record<'_>,
        ctx: &mut MapContext<'_, Self::Key, Self::Value>,
    ) -> UserResult;

    /// Called with each run of whole lines of a [`InputFormat::Lines`] input, in order, about
    /// [`Mapper::LINES_PER_CALL`] bytes at a time; the default calls [`Mapper::map`] once per
    /// line. Override it (as Hadoop's `Mapper.run` or Spark's `mapPartitions` allow) when a
    /// whole run is cheaper to handle than its lines one by one: word count tokenises an ASCII
    /// run in one pass, since `\n` is white space to it anyway. A job with
    /// [`InputFormat::WholeFiles`] input calls only [`Mapper::map`].
    ///
    /// ```
    /// use gridmr_core::input::Lines;
    /// use gridmr_core::{MapContext, Mapper, Record, UserResult};
    ///
    /// /// Counts the bytes of its input, not line by line.
    /// #[derive(Clone)]
    /// struct Bytes;
    ///
    /// impl Mapper for Bytes {
    ///     type Key = String;
    ///     type Value = u64;
    ///     fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
    ///         ctx.emit_ref("bytes", record.bytes.len() as u64 + 1)?; // a line and its `\n`
    ///         Ok(())
    ///     }
    ///     fn map_lines(&mut self, lines: &Lines<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
    ///         ctx.emit_ref("bytes", lines.bytes.len() as u64)?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn map_lines(
        &mut self,
        lines: &Lines<'_>,
        ctx: &mut MapContext<'_, Self::Key, Self::Value>,
    ) -> UserResult {
        map_each_line(self, lines, ctx)
    }

    /// About how many bytes of lines each [`Mapper::map_lines`] call gets (a longer line comes
    /// alone). Between two calls the task looks at its cancel flag and reports its progress;
    /// an override of [`Mapper::map_lines`] that takes long over a run looks at
    /// [`MapContext::is_cancelled`] itself, or lowers this.
    const LINES_PER_CALL: usize = 64 << 10;

    /// Called once per task, after the last record.
    fn cleanup(&mut self, ctx: &mut MapContext<'_, Self::Key, Self::Value>) -> UserResult {
        let _ = ctx;
        Ok(())
    }
}

/// What the default [`Mapper::map_lines`] does: [`Mapper::map`] once per line of `lines`,
/// looking at the attempt's cancel flag every [`CancelFlag::CHECK_EVERY`] lines. For an
/// override that handles some runs whole and hands the others back line by line.
pub fn map_each_line<M: Mapper>(
    mapper: &mut M,
    lines: &Lines<'_>,
    ctx: &mut MapContext<'_, M::Key, M::Value>,
) -> UserResult {
    for (i, record) in lines.records().enumerate() {
        if i > 0 && (i as u64).is_multiple_of(CancelFlag::CHECK_EVERY) && ctx.is_cancelled() {
            return Err(UserError::msg("cancelled"));
        }
        mapper.map(&record, ctx)?;
    }
    Ok(())
}

/// The values of one key, streamed from the merge: never collected into a `Vec` by GridMR.
///
/// Values a reducer does not read are skipped for it. Iterate them, or, to reuse one value's
/// memory from record to record (a `String`'s buffer), call [`Values::next_into`]:
///
/// ```
/// use gridmr_core::{ReduceContext, Reducer, UserResult, Values};
/// #[derive(Clone, Default)]
/// struct Longest { value: String }
/// impl Reducer for Longest {
///     type Key = String;
///     type Value = String;
///     type OutKey = String;
///     type OutValue = usize;
///     fn reduce(&mut self, key: &String, values: &mut Values<'_, String>,
///               ctx: &mut ReduceContext<'_, String, usize>) -> UserResult {
///         let mut longest = 0;
///         while values.next_into(&mut self.value) {
///             longest = longest.max(self.value.len());
///         }
///         ctx.emit(key, &longest)?;
///         Ok(())
///     }
/// }
/// ```
pub struct Values<'a, V> {
    pub(crate) inner: &'a mut dyn ValueSource<V>,
}

impl<V> Values<'_, V> {
    /// Decodes the next value into `slot`, reusing its memory; `false` when the key has no
    /// more values (`slot` is then left as it was).
    pub fn next_into(&mut self, slot: &mut V) -> bool {
        self.inner.next_value_into(slot)
    }
}

impl<V> Iterator for Values<'_, V> {
    type Item = V;
    fn next(&mut self) -> Option<V> {
        self.inner.next_value()
    }
}

/// The reduce side of a job: called once per key, in key order, with a stream of its values.
///
/// As with [`Mapper`], each reduce task works on its own clone.
pub trait Reducer: Clone + Send + Sync + 'static {
    /// The input key (the mapper's output key).
    type Key: Key;
    /// The input value (the mapper's output value).
    type Value: Value;
    /// The output key, written as text (strings raw, numbers plain, other types as JSON).
    type OutKey: Serialize;
    /// The output value, written like the key.
    type OutValue: Serialize;

    /// Called once per task, before the first key.
    fn setup(&mut self, ctx: &mut ReduceContext<'_, Self::OutKey, Self::OutValue>) -> UserResult {
        let _ = ctx;
        Ok(())
    }

    /// Called once per distinct key.
    fn reduce(
        &mut self,
        key: &Self::Key,
        values: &mut Values<'_, Self::Value>,
        ctx: &mut ReduceContext<'_, Self::OutKey, Self::OutValue>,
    ) -> UserResult;

    /// Called once per task, after the last key.
    fn cleanup(&mut self, ctx: &mut ReduceContext<'_, Self::OutKey, Self::OutValue>) -> UserResult {
        let _ = ctx;
        Ok(())
    }
}

/// A complete typed job: a name, a mapper, a reducer, and optionally a combiner, a partitioner
/// and an input format.
///
/// ```
/// use gridmr_core::bundled::wordcount::{WordCountMapper, SumReducer};
/// use gridmr_core::{Job, SumCombiner, FastPartitioner};
/// let job = Job::new("wordcount", WordCountMapper::default(), SumReducer::default())
///     .with_combiner(SumCombiner)
///     .with_partitioner(FastPartitioner);
/// assert_eq!(job.name(), "wordcount");
/// ```
pub struct Job<M: Mapper, R> {
    pub(crate) name: String,
    pub(crate) mapper: M,
    pub(crate) reducer: R,
    pub(crate) combiner: Option<Arc<dyn Combiner<M::Key, M::Value>>>,
    pub(crate) partitioner: PartitionerSource<M::Key>,
    pub(crate) input_format: InputFormat,
    pub(crate) planner: Option<Planner>,
    pub(crate) separator: &'static str,
}

/// Makes a job's partitioner from its parameters.
type PartitionerFactory<K> =
    Arc<dyn Fn(&Params) -> Result<Arc<dyn Partitioner<K>>, UserError> + Send + Sync>;

/// A job's partitioner: one for every run, or one made per task from the
/// job's parameters (split points a planner sampled, say).
pub(crate) enum PartitionerSource<K> {
    Fixed(Arc<dyn Partitioner<K>>),
    FromParams(PartitionerFactory<K>),
}

impl<K> PartitionerSource<K> {
    /// The partitioner for a task of a job with `params`.
    pub(crate) fn make(&self, params: &Params) -> Result<Arc<dyn Partitioner<K>>, UserError> {
        match self {
            PartitionerSource::Fixed(p) => Ok(p.clone()),
            PartitionerSource::FromParams(f) => f(params),
        }
    }
}

/// What a job's planning hook sees: the job's input files, its reduce
/// partition count and the parameters it was submitted with.
#[derive(Debug)]
pub struct PlanContext<'a> {
    /// Every input file, with its size and the input that named it.
    pub files: &'a [InputFile],
    /// The reduce partitions the job will have (0 for a map-only job).
    pub partitions: u32,
    /// The parameters the job was submitted with.
    pub params: &'a Params,
    /// Where [`PlanContext::first_lines`] reads: the files, or on a cluster whichever store
    /// holds them.
    pub samples: &'a dyn crate::input::SampleSource,
}

impl PlanContext<'_> {
    /// Up to `max_lines` lines of `split` (the lines that begin in it, terminators removed),
    /// from wherever the input lies (a file, an object store): what a sampling hook reads. At
    /// most about 1 MiB past the split's start is read.
    pub fn first_lines(
        &self,
        split: &crate::input::InputSplit,
        max_lines: usize,
    ) -> crate::error::Result<Vec<Vec<u8>>> {
        self.samples.first_lines(split, max_lines, 1 << 20)
    }
}

/// A job's planning hook.
pub(crate) type Planner = Arc<dyn Fn(&PlanContext<'_>) -> Result<Params, UserError> + Send + Sync>;

impl<M, R> Job<M, R>
where
    M: Mapper,
    R: Reducer<Key = M::Key, Value = M::Value>,
{
    /// A job with the [`Sha1Partitioner`], no combiner, and line records.
    pub fn new(name: impl Into<String>, mapper: M, reducer: R) -> Self {
        Job {
            name: name.into(),
            mapper,
            reducer,
            combiner: None,
            partitioner: PartitionerSource::Fixed(Arc::new(Sha1Partitioner)),
            input_format: InputFormat::Lines,
            planner: None,
            separator: "\t",
        }
    }

    /// Sets the map-side combiner.
    pub fn with_combiner(mut self, combiner: impl Combiner<M::Key, M::Value>) -> Self {
        self.combiner = Some(Arc::new(combiner));
        self
    }

    /// Sets the partitioner.
    pub fn with_partitioner(mut self, partitioner: impl Partitioner<M::Key>) -> Self {
        self.partitioner = PartitionerSource::Fixed(Arc::new(partitioner));
        self
    }

    /// Sets a partitioner made from the job's parameters, once per map
    /// task: a range partitioner whose split points a planner (see
    /// [`Job::with_planner`]) sampled from the input, say. An error fails the
    /// attempt with its message.
    ///
    /// ```
    /// use gridmr_core::bundled::wordcount::{SumReducer, WordCountMapper};
    /// use gridmr_core::partition::RangePartitioner;
    /// use gridmr_core::Job;
    /// let job = Job::new("ranged", WordCountMapper::default(), SumReducer)
    ///     .with_partitioner_from(|params| RangePartitioner::<String>::from_params(params, "splits"));
    /// # let _ = job;
    /// ```
    pub fn with_partitioner_from<P, F>(mut self, make: F) -> Self
    where
        P: Partitioner<M::Key>,
        F: Fn(&Params) -> Result<P, UserError> + Send + Sync + 'static,
    {
        self.partitioner = PartitionerSource::FromParams(Arc::new(move |params: &Params| {
            make(params).map(|p| Arc::new(p) as Arc<dyn Partitioner<M::Key>>)
        }));
        self
    }

    /// Sets a planning hook: run once where the job is planned (by the
    /// embedded engine, or by the master before its first task), with the
    /// input listed, it returns parameters to add to the job's. Hadoop's
    /// TeraSort samples its input this way (`InputSampler`) to write the
    /// split points of its total-order partitioner; GridMR's does the same
    /// through [`PlanContext`].
    ///
    /// ```
    /// use gridmr_core::bundled::wordcount::{SumReducer, WordCountMapper};
    /// use gridmr_core::{Job, Params};
    /// let job = Job::new("sized", WordCountMapper::default(), SumReducer).with_planner(|plan| {
    ///     let bytes: u64 = plan.files.iter().map(|f| f.len).sum();
    ///     Ok(Params::new().with("input_bytes", bytes.to_string()))
    /// });
    /// # let _ = job;
    /// ```
    pub fn with_planner<F>(mut self, plan: F) -> Self
    where
        F: Fn(&PlanContext<'_>) -> Result<Params, UserError> + Send + Sync + 'static,
    {
        self.planner = Some(Arc::new(plan));
        self
    }

    /// Sets what goes between the key and the value of an output line (a tab by default;
    /// Hadoop's `mapreduce.output.textoutputformat.separator`). Output read back with
    /// [`read_output`](crate::output::read_output) must use the tab.
    ///
    /// ```
    /// use gridmr_core::bundled::wordcount::{SumReducer, WordCountMapper};
    /// let job = gridmr_core::Job::new("csv", WordCountMapper::default(), SumReducer)
    ///     .with_output_separator(",");
    /// # let _ = job;
    /// ```
    pub fn with_output_separator(mut self, separator: &'static str) -> Self {
        self.separator = separator;
        self
    }

    /// Sets the input format (lines by default).
    pub fn with_input_format(mut self, format: InputFormat) -> Self {
        self.input_format = format;
        self
    }

    /// The job's name, under which a [`Registry`](crate::Registry) knows it.
    pub fn name(&self) -> &str {
        &self.name
    }
}
