//! Combiners, and where a reducer's values come from: a leaf below the job API and the
//! shuffle, so the shuffle's merge and map buffer use them without depending on the job API.

/// Where [`Values`](crate::job::Values) come from: a merge, decoding as it goes.
pub(crate) trait ValueSource<V> {
    /// The next value, decoded.
    fn next_value(&mut self) -> Option<V>;
    /// The next value, decoded into `slot` (reusing what it holds);
    /// `false` at the end.
    fn next_value_into(&mut self, slot: &mut V) -> bool;
}

/// A map-side combiner: an **associative merge** of a value into an accumulated value of the
/// same key.
///
/// GridMR's map buffer is a hash table when a combiner is set: each emitted value is merged
/// into its key's accumulator at once, so a task holds one value per distinct key and not one
/// per record, and the combiner also runs when spill runs are merged. This is the shape of
/// Spark's `reduceByKey`; it needs no iterator and allocates nothing per record. A
/// Hadoop-style combiner (a reducer over a key's values, run on a sorted buffer) buffers every
/// record before combining and is strictly weaker for the jobs combiners are sound for, which
/// are exactly the associative and commutative ones: the order and grouping of merges is not
/// specified, and the combiner may run zero, one or many times on a value.
///
/// ```
/// use gridmr_core::Combiner;
/// struct Max;
/// impl Combiner<String, u64> for Max {
///     fn combine(&self, _key: &String, acc: &mut u64, value: u64) {
///         *acc = (*acc).max(value);
///     }
/// }
/// ```
pub trait Combiner<K, V>: Send + Sync + 'static {
    /// Merges `value` into `acc`.
    fn combine(&self, key: &K, acc: &mut V, value: V);
}

/// The combiner that adds values: word count's.
#[derive(Debug, Clone, Copy, Default)]
pub struct SumCombiner;

impl<K, V: std::ops::AddAssign + Send + Sync + 'static> Combiner<K, V> for SumCombiner {
    fn combine(&self, _key: &K, acc: &mut V, value: V) {
        *acc += value;
    }
}
