//! Streaming k-way merge of sorted segments, and grouping of equal keys:
//! typed ([`KWayMerge`], [`Groups`]: records decoded, keys compared with
//! `Ord`) and raw ([`RawMerge`], [`RawGroups`]: keys compared as bytes by
//! their [`RawOrder`], records moved without decoding, each key decoded once
//! per group and values only when the reducer asks).

use super::format::{decode_in_place, decode_whole, RunIndex, RunWriter, SegmentReader};
use super::order::RawOrder;
use crate::codec::{Key, Value};
use crate::combine::{Combiner, ValueSource};
use crate::counters::{builtin, Counters};
use crate::error::{Error, Result};
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

/// A merge read one key at a time, for a reduce loop: typed ([`Groups`]) or raw
/// ([`RawGroups`]).
pub(crate) trait KeyGroups<K, V> {
    /// The current key's values.
    type Values<'s>: ValueSource<V>
    where
        Self: 's,
        K: 's;

    /// Moves to the next key, into `key` (decoded in place when it holds one already);
    /// `false` at the end.
    fn next_key(&mut self, key: &mut Option<K>) -> Result<bool>;

    /// The values of `key`, the current one; a read error is parked in `error`.
    fn values<'s>(&'s mut self, key: &'s K, error: &'s mut Option<Error>) -> Self::Values<'s>;

    /// Distinct keys seen so far.
    fn groups(&self) -> u64;

    /// Records read so far.
    fn records(&self) -> u64;
}

impl<K: Key, V: Value> KeyGroups<K, V> for Groups<K, V> {
    type Values<'s>
        = GroupValues<'s, K, V>
    where
        Self: 's,
        K: 's;

    fn next_key(&mut self, key: &mut Option<K>) -> Result<bool> {
        let next = self.next_group(key.as_ref())?;
        *key = next;
        Ok(key.is_some())
    }

    fn values<'s>(&'s mut self, key: &'s K, error: &'s mut Option<Error>) -> GroupValues<'s, K, V> {
        GroupValues {
            groups: self,
            key,
            error,
        }
    }

    fn groups(&self) -> u64 {
        Groups::groups(self)
    }

    fn records(&self) -> u64 {
        Groups::records(self)
    }
}

/// One key's values from a [`Groups`], parking a read error for the caller to pick up.
pub(crate) struct GroupValues<'g, K, V> {
    groups: &'g mut Groups<K, V>,
    key: &'g K,
    error: &'g mut Option<Error>,
}

impl<K: Key, V: Value> ValueSource<V> for GroupValues<'_, K, V> {
    fn next_value(&mut self) -> Option<V> {
        if self.error.is_some() {
            return None;
        }
        self.groups.next_value(self.key).unwrap_or_else(|e| {
            *self.error = Some(e);
            None
        })
    }

    fn next_value_into(&mut self, slot: &mut V) -> bool {
        match self.next_value() {
            Some(v) => {
                *slot = v;
                true
            }
            None => false,
        }
    }
}

impl<K: Key, V: Value> KeyGroups<K, V> for RawGroups {
    type Values<'s>
        = RawValues<'s>
    where
        Self: 's,
        K: 's;

    fn next_key(&mut self, key: &mut Option<K>) -> Result<bool> {
        self.next_group(key)
    }

    fn values<'s>(&'s mut self, _key: &'s K, error: &'s mut Option<Error>) -> RawValues<'s> {
        RawValues {
            groups: self,
            error,
        }
    }

    fn groups(&self) -> u64 {
        RawGroups::groups(self)
    }

    fn records(&self) -> u64 {
        RawGroups::records(self)
    }
}

/// One key's values from a [`RawGroups`], decoded as asked for.
pub(crate) struct RawValues<'g> {
    groups: &'g mut RawGroups,
    error: &'g mut Option<Error>,
}

impl<V: Value> ValueSource<V> for RawValues<'_> {
    fn next_value(&mut self) -> Option<V> {
        if self.error.is_some() {
            return None;
        }
        self.groups.next_value().unwrap_or_else(|e| {
            *self.error = Some(e);
            None
        })
    }

    fn next_value_into(&mut self, slot: &mut V) -> bool {
        if self.error.is_some() {
            return false;
        }
        self.groups.next_value_into(slot).unwrap_or_else(|e| {
            *self.error = Some(e);
            false
        })
    }
}

/// Merges sorted segments as bytes: a binary heap of sources ordered by
/// their current record's key ([`RawOrder::compare`], prefix first), ties to
/// the lower source, so a merge is stable. Nothing is decoded.
pub struct RawMerge {
    order: RawOrder,
    sources: Vec<SegmentReader>,
    /// Sources with a current record, as a min-heap; each entry carries its
    /// key's prefix, so most comparisons touch the heap alone.
    heap: Vec<HeapEntry>,
    records: u64,
}

/// A source in the heap, with its current key's prefix.
#[derive(Debug, Clone, Copy)]
struct HeapEntry {
    prefix: u64,
    source: usize,
}

impl RawMerge {
    /// Starts merging `sources`, each sorted by `order`.
    pub fn new(order: RawOrder, mut sources: Vec<SegmentReader>) -> Result<Self> {
        let mut heap = Vec::with_capacity(sources.len());
        for (source, s) in sources.iter_mut().enumerate() {
            if s.advance()? {
                heap.push(HeapEntry {
                    prefix: order.prefix(s.key()),
                    source,
                });
            }
        }
        let mut m = RawMerge {
            order,
            sources,
            heap,
            records: 0,
        };
        for i in (0..m.heap.len() / 2).rev() {
            m.sift_down(i);
        }
        Ok(m)
    }

    #[inline]
    fn less(&self, a: HeapEntry, b: HeapEntry) -> bool {
        if a.prefix != b.prefix {
            return a.prefix < b.prefix;
        }
        if self.order.prefix_is_whole(a.prefix) {
            return a.source < b.source;
        }
        match self
            .order
            .compare_tied(self.sources[a.source].key(), self.sources[b.source].key())
        {
            std::cmp::Ordering::Equal => a.source < b.source,
            o => o.is_lt(),
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.less(self.heap[l], self.heap[m]) {
                m = l;
            }
            if r < n && self.less(self.heap[r], self.heap[m]) {
                m = r;
            }
            if m == i {
                return;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }

    /// The source holding the smallest current record.
    #[inline]
    fn head(&self) -> Option<&SegmentReader> {
        self.heap.first().map(|e| &self.sources[e.source])
    }

    /// The smallest current record's key and value.
    #[inline]
    pub fn peek(&self) -> Option<(&[u8], &[u8])> {
        self.head().map(|s| (s.key(), s.value()))
    }

    /// The smallest current record as framed bytes.
    #[inline]
    pub fn peek_framed(&self) -> Option<&[u8]> {
        self.head().map(SegmentReader::framed)
    }

    /// The prefix of the smallest current record's key.
    #[inline]
    fn peek_prefix(&self) -> Option<u64> {
        self.heap.first().map(|e| e.prefix)
    }

    /// Moves past the smallest current record.
    pub fn advance(&mut self) -> Result<()> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        self.records += 1;
        let s = &mut self.sources[top.source];
        if s.advance()? {
            self.heap[0].prefix = self.order.prefix(s.key());
        } else {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        self.sift_down(0);
        Ok(())
    }

    /// Records moved past so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// Where a [`RawGroups`] stands with its merge's smallest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// A value of the current group, not given out yet.
    Unread,
    /// A value of the current group, given out.
    Read,
    /// The first record of the next group (or the end).
    NextGroup,
}

/// A [`RawMerge`] read one key at a time: each key is decoded once, into a
/// key the caller keeps (a `String`'s buffer reused from group to group),
/// and values are decoded only as they are asked for.
pub struct RawGroups {
    merge: RawMerge,
    /// The current key, encoded, and its prefix.
    key: Vec<u8>,
    prefix: u64,
    head: Head,
    groups: u64,
}

impl RawGroups {
    /// Groups the records of `merge` by key.
    pub fn new(merge: RawMerge) -> Self {
        RawGroups {
            merge,
            key: Vec::new(),
            prefix: 0,
            head: Head::NextGroup,
            groups: 0,
        }
    }

    /// Whether the merge's smallest record has the current key (its prefix
    /// settles most cases without comparing the keys).
    #[inline]
    fn in_group(&self) -> bool {
        self.merge.peek_prefix() == Some(self.prefix)
            && (self.merge.order.prefix_is_whole(self.prefix)
                || self.merge.peek().is_some_and(|(k, _)| k == self.key))
    }

    /// Moves to the next key, skipping what is left of the current one's
    /// values, and decodes it into `key` (in place, reusing its memory, when
    /// it holds a key already). `false` at the end.
    pub fn next_group<K: Key>(&mut self, key: &mut Option<K>) -> Result<bool> {
        if self.groups > 0 && self.head != Head::NextGroup {
            if self.head == Head::Read {
                self.merge.advance()?;
            }
            while self.in_group() {
                self.merge.advance()?;
            }
        }
        let Some((k, _)) = self.merge.peek() else {
            self.head = Head::NextGroup;
            return Ok(false);
        };
        self.key.clear();
        self.key.extend_from_slice(k);
        self.prefix = self.merge.peek_prefix().unwrap_or(0);
        let decoded = match key {
            Some(slot) => decode_in_place(&self.key, slot),
            None => decode_whole(&self.key).map(|k| *key = Some(k)),
        };
        if let Err(e) = decoded {
            let source = self.merge.head().map(|s| s.undecodable(e));
            return Err(source.unwrap_or(Error::Codec("no record".into())));
        }
        self.head = Head::Unread;
        self.groups += 1;
        Ok(true)
    }

    /// The next value of the current key, encoded.
    pub fn next_raw_value(&mut self) -> Result<Option<&[u8]>> {
        match self.head {
            Head::NextGroup => return Ok(None),
            Head::Unread => self.head = Head::Read,
            Head::Read => {
                self.merge.advance()?;
                if !self.in_group() {
                    self.head = Head::NextGroup;
                    return Ok(None);
                }
            }
        }
        Ok(self.merge.peek().map(|(_, v)| v))
    }

    /// Decodes the next value of the current key.
    pub fn next_value<V: Value>(&mut self) -> Result<Option<V>> {
        self.next_raw_value()?.map(decode_whole).transpose()
    }

    /// Decodes the next value of the current key into `slot`, reusing it;
    /// `false` when the key has no more values.
    pub fn next_value_into<V: Value>(&mut self, slot: &mut V) -> Result<bool> {
        match self.next_raw_value()? {
            Some(bytes) => decode_in_place(bytes, slot).map(|()| true),
            None => Ok(false),
        }
    }

    /// Distinct keys seen so far.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// Records read so far (those of the current group included).
    pub fn records(&self) -> u64 {
        self.merge.records() + u64::from(self.head == Head::Read)
    }
}

/// Merges whole runs (every partition) into `out`, combining equal keys when a combiner is
/// given. Returns the new run's index. Without a combiner, keys with a raw order are merged
/// as bytes.
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
        match (combiner, RawOrder::of::<K>()) {
            (Some(c), _) => {
                let mut groups = Groups::new(KWayMerge::<K, V>::new(readers)?);
                let mut key = groups.next_group(None)?;
                while let Some(k) = key {
                    // A group always opens with a value.
                    if let Some(mut acc) = groups.next_value(&k)? {
                        while let Some(v) = groups.next_value(&k)? {
                            c.combine(&k, &mut acc, v);
                        }
                        out.push_typed(p, &k, &acc)?;
                    }
                    key = groups.next_group(Some(&k))?;
                }
                counters.add_builtin(builtin::COMBINE_INPUT_RECORDS, groups.records());
                counters.add_builtin(builtin::COMBINE_OUTPUT_RECORDS, groups.groups());
            }
            (None, Some(order)) => {
                let mut merge = RawMerge::new(order, readers)?;
                while let Some(framed) = merge.peek_framed() {
                    out.push_framed(p, framed)?;
                    merge.advance()?;
                }
            }
            (None, None) => {
                let mut merge = KWayMerge::<K, V>::new(readers)?;
                while let Some((k, v)) = merge.next()? {
                    out.push_typed(p, &k, &v)?;
                }
            }
        }
    }
    out.finish()
}
