//! Streaming k-way merge of sorted segments, and grouping of equal keys.

use super::format::{RunIndex, RunWriter, SegmentReader};
use crate::codec::{encode_into, Key, Value};
use crate::counters::{builtin, Counters};
use crate::error::Result;
use crate::job::Combiner;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Merges sorted segments into one sorted stream of `(key, value)` records.
///
/// Equal keys come out in source order (source 0 first), so a merge is stable. Memory is one
/// block buffer per source, whatever the segments' sizes.
pub struct KWayMerge<K, V> {
    sources: Vec<SegmentReader>,
    heads: Vec<Option<V>>,
    heap: BinaryHeap<Reverse<(K, usize)>>,
    records: u64,
}

impl<K: Key, V: Value> KWayMerge<K, V> {
    /// Starts merging `sources`, each sorted by key.
    pub fn new(mut sources: Vec<SegmentReader>) -> Result<Self> {
        let mut heads = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            match s.next_record::<K, V>()? {
                Some((k, v)) => {
                    heads.push(Some(v));
                    heap.push(Reverse((k, i)));
                }
                None => heads.push(None),
            }
        }
        Ok(KWayMerge {
            sources,
            heads,
            heap,
            records: 0,
        })
    }

    /// The next record in key order.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<(K, V)>> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let value = self.heads[i].take();
        if let Some((k, v)) = self.sources[i].next_record::<K, V>()? {
            self.heads[i] = Some(v);
            self.heap.push(Reverse((k, i)));
        }
        self.records += 1;
        // `heads[i]` is always set while `(_, i)` is in the heap.
        Ok(value.map(|v| (key, v)))
    }

    /// Records returned so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// A [`KWayMerge`] read one key at a time: the reduce side's view of its input.
pub struct Groups<K, V> {
    merge: KWayMerge<K, V>,
    first: Option<V>,
    lookahead: Option<(K, V)>,
    groups: u64,
}

impl<K: Key, V: Value> Groups<K, V> {
    /// Groups the records of `merge` by key.
    pub fn new(merge: KWayMerge<K, V>) -> Self {
        Groups {
            merge,
            first: None,
            lookahead: None,
            groups: 0,
        }
    }

    /// Moves to the next key, skipping what is left of `current`'s values.
    pub fn next_group(&mut self, current: Option<&K>) -> Result<Option<K>> {
        if let Some(cur) = current {
            while self.next_value(cur)?.is_some() {}
        }
        let next = match self.lookahead.take() {
            Some(kv) => Some(kv),
            None => self.merge.next()?,
        };
        Ok(next.map(|(k, v)| {
            self.first = Some(v);
            self.groups += 1;
            k
        }))
    }

    /// The next value of the key `current` (the last one [`Groups::next_group`] returned).
    pub fn next_value(&mut self, current: &K) -> Result<Option<V>> {
        if let Some(v) = self.first.take() {
            return Ok(Some(v));
        }
        if self.lookahead.is_some() {
            return Ok(None);
        }
        match self.merge.next()? {
            Some((k, v)) if &k == current => Ok(Some(v)),
            Some(kv) => {
                self.lookahead = Some(kv);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Distinct keys seen so far.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.merge.records()
    }
}

/// An iterator over one key's values that parks a read error for the caller to pick up.
pub(crate) struct GroupValues<'g, K, V> {
    pub(crate) groups: &'g mut Groups<K, V>,
    pub(crate) key: &'g K,
    pub(crate) error: &'g mut Option<crate::error::Error>,
}

impl<K: Key, V: Value> Iterator for GroupValues<'_, K, V> {
    type Item = V;
    fn next(&mut self) -> Option<V> {
        if self.error.is_some() {
            return None;
        }
        match self.groups.next_value(self.key) {
            Ok(v) => v,
            Err(e) => {
                *self.error = Some(e);
                None
            }
        }
    }
}

/// Merges whole runs (every partition) into `out`, combining equal keys when a combiner is
/// given. Returns the new run's index.
pub(crate) fn merge_runs<K: Key, V: Value>(
    runs: &[RunIndex],
    mut out: RunWriter,
    partitions: u32,
    combiner: Option<&dyn Combiner<K, V>>,
    counters: &mut Counters,
) -> Result<RunIndex> {
    for p in 0..partitions {
        let readers = runs
            .iter()
            .filter(|r| r.records[p as usize] > 0)
            .map(|r| SegmentReader::open(r, p))
            .collect::<Result<Vec<_>>>()?;
        if readers.is_empty() {
            continue;
        }
        let merge = KWayMerge::<K, V>::new(readers)?;
        match combiner {
            Some(c) => {
                let mut groups = Groups::new(merge);
                let mut key = groups.next_group(None)?;
                while let Some(k) = key {
                    // A group always opens with a value.
                    if let Some(mut acc) = groups.next_value(&k)? {
                        while let Some(v) = groups.next_value(&k)? {
                            c.combine(&k, &mut acc, v);
                        }
                        write_record(&mut out, p, &k, &acc)?;
                    }
                    key = groups.next_group(Some(&k))?;
                }
                counters.add_builtin(builtin::COMBINE_INPUT_RECORDS, groups.records());
                counters.add_builtin(builtin::COMBINE_OUTPUT_RECORDS, groups.groups());
            }
            None => {
                let mut merge = merge;
                while let Some((k, v)) = merge.next()? {
                    write_record(&mut out, p, &k, &v)?;
                }
            }
        }
    }
    out.finish()
}

/// Encodes `(key, value)` straight into `out`'s open block of partition `p`.
pub(crate) fn write_record<K: Key, V: Value>(
    out: &mut RunWriter,
    p: u32,
    key: &K,
    value: &V,
) -> Result<()> {
    let block = out.block_for(p)?;
    encode_into(key, block)?;
    encode_into(value, block)?;
    out.record_done()
}
