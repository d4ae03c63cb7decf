//! Partitioners: which reduce partition a key goes to.
//!
//! Both built-in partitioners hash a key's *canonical bytes* ([`canonical_bytes`]): a string's
//! UTF-8 bytes, an integer's decimal digits (Python's `str(key)`), and for any other type its
//! postcard encoding. The result depends only on the key and the partition count: never on the
//! process, the machine, the platform or the GridMR release. That matters because map tasks on
//! different workers must agree, and because output files are often joined across runs.

use crate::codec::encode_into;
use crate::scalar::write_scalar;
use serde::Serialize;
use std::cell::RefCell;

/// Chooses the reduce partition of a key.
///
/// Implement it for custom placement (for example range partitioning for a total order); it
/// must be a pure function of `key` and `partitions`, returning a value below `partitions`.
pub trait Partitioner<K: ?Sized>: Send + Sync + 'static {
    /// The partition of `key`, in `0..partitions` (`partitions` is at least 1).
    fn partition(&self, key: &K, partitions: u32) -> u32;
}

/// Writes `key`'s canonical bytes into `out` (cleared first).
///
/// ```
/// let mut b = Vec::new();
/// gridmr_core::partition::canonical_bytes("hola", &mut b);
/// assert_eq!(b, b"hola");
/// gridmr_core::partition::canonical_bytes(&-7i32, &mut b);
/// assert_eq!(b, b"-7");
/// ```
pub fn canonical_bytes<K: Serialize + ?Sized>(key: &K, out: &mut Vec<u8>) {
    out.clear();
    if write_scalar(key, out).is_err() {
        out.clear();
        // A `Serialize` impl that fails leaves what it wrote; the partition is still a pure
        // function of the key, which is all a partitioner needs.
        let _ = encode_into(key, out);
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn with_canonical<K: Serialize + ?Sized, T>(key: &K, f: impl FnOnce(&[u8]) -> T) -> T {
    SCRATCH.with(|s| {
        // A fresh buffer when re-entered from inside a key's `Serialize` impl.
        let mut fresh = Vec::new();
        let mut shared = s.try_borrow_mut();
        let buf = match shared.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut fresh,
        };
        canonical_bytes(key, buf);
        f(buf)
    })
}

/// The original GridMR's partitioner: `int(sha1(key_bytes).hexdigest(), 16) % partitions`,
/// i.e. the 160-bit SHA-1 digest read as a big-endian integer, modulo the partition count.
///
/// For string keys it places every key exactly where the Python original did, so outputs of
/// the two systems can be compared part file by part file.
///
/// ```
/// use gridmr_core::{Partitioner, Sha1Partitioner};
/// assert_eq!(Sha1Partitioner.partition("mundo", 3), 2);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Sha1Partitioner;

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const SHA1_H0: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// SHA-1 of `bytes` as its five big-endian 32-bit words, most significant first.
///
/// The same digest as `Sha1::digest`, with the padding written here and the blocks handed
/// straight to the crate's compression function (hardware SHA where the CPU has it): for the
/// short keys a partitioner sees, the `Digest` wrapper's buffering and byte output were as costly
/// as the compression itself.
fn sha1_words(bytes: &[u8]) -> [u32; 5] {
    let mut state = SHA1_H0;
    let (blocks, tail) = bytes.as_chunks::<64>();
    if !blocks.is_empty() {
        sha1::block_api::compress(&mut state, blocks);
    }
    // The tail, 0x80, zeros, then the message length in bits: one block, or two when the tail
    // leaves fewer than 9 bytes for the marker and length.
    let mut last = [[0u8; 64]; 2];
    let flat = last.as_flattened_mut();
    flat[..tail.len()].copy_from_slice(tail);
    flat[tail.len()] = 0x80;
    let used = if tail.len() < 56 { 1 } else { 2 };
    let bits = (bytes.len() as u64).wrapping_mul(8);
    flat[used * 64 - 8..used * 64].copy_from_slice(&bits.to_be_bytes());
    sha1::block_api::compress(&mut state, &last[..used]);
    state
}

/// `words mod m`, reading `words` as one big-endian integer of 32-bit digits: a mask when `m`
/// is a power of two, else Horner's rule (the remainder stays below `m`, so each step fits in
/// 64 bits).
fn big_endian_mod(words: &[u32], m: u32) -> u32 {
    let m = m.max(1);
    if m.is_power_of_two() {
        return words.last().map_or(0, |w| w & (m - 1));
    }
    let m = u64::from(m);
    words
        .iter()
        .fold(0u64, |r, &w| ((r << 32) | u64::from(w)) % m) as u32
}

impl<K: Serialize + ?Sized> Partitioner<K> for Sha1Partitioner {
    fn partition(&self, key: &K, partitions: u32) -> u32 {
        with_canonical(key, |bytes| big_endian_mod(&sha1_words(bytes), partitions))
    }
}

/// The fixed seed of [`FastPartitioner`]. Part of GridMR's on-disk contract: never changes.
pub const FAST_PARTITIONER_SEED: u64 = 0x6772_6964_6d72_0001;

/// A fast partitioner: XXH3-64 (a published, platform-independent hash) with a fixed seed over
/// the canonical bytes, reduced to the partition range by multiply-shift.
///
/// Several times faster than [`Sha1Partitioner`] and just as stable across processes, machines
/// and releases (unlike `std`'s `DefaultHasher`, whose algorithm may change, or `ahash`/`foldhash`,
/// which are seeded per process).
#[derive(Debug, Clone, Copy, Default)]
pub struct FastPartitioner;

impl<K: Serialize + ?Sized> Partitioner<K> for FastPartitioner {
    fn partition(&self, key: &K, partitions: u32) -> u32 {
        with_canonical(key, |bytes| {
            let h = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, FAST_PARTITIONER_SEED);
            ((u128::from(h) * u128::from(partitions.max(1))) >> 64) as u32
        })
    }
}

/// A total-order partitioner: keys below the first split point go to
/// partition 0, keys from split point `i - 1` up to split point `i` to
/// partition `i`, and so on, so the part files, concatenated in order, are
/// one sorted sequence (Hadoop's `TotalOrderPartitioner`).
///
/// The split points come from a sample of the keys
/// ([`RangePartitioner::split_points`]), usually taken by a job's planning
/// hook and handed to every task as a parameter
/// ([`RangePartitioner::to_param`], [`RangePartitioner::from_params`]).
///
/// ```
/// use gridmr_core::partition::{Partitioner, RangePartitioner};
/// let sample: Vec<String> = ["d", "a", "c", "b", "f", "e"].map(String::from).to_vec();
/// let splits = RangePartitioner::split_points(sample, 3);
/// assert_eq!(splits, ["c", "e"]);
/// let p = RangePartitioner::new(splits);
/// assert_eq!(["a", "c", "d", "e", "z"].map(|k| p.partition(&k.to_string(), 3)), [0, 1, 1, 2, 2]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePartitioner<K> {
    splits: Vec<K>,
}

impl<K: Ord> RangePartitioner<K> {
    /// A partitioner over `splits` (sorted here if they are not).
    pub fn new(mut splits: Vec<K>) -> Self {
        splits.sort();
        RangePartitioner { splits }
    }

    /// The `partitions - 1` split points that cut `sample` into `partitions`
    /// runs of (about) equal size. Fewer when the sample is smaller than
    /// that; repeated keys give repeated points (and empty partitions).
    pub fn split_points(mut sample: Vec<K>, partitions: u32) -> Vec<K>
    where
        K: Clone,
    {
        sample.sort_unstable();
        let n = sample.len();
        let parts = partitions.max(1) as usize;
        if n == 0 {
            return Vec::new();
        }
        (1..parts)
            .filter_map(|i| sample.get(i * n / parts).cloned())
            .collect()
    }

    /// The split points.
    pub fn splits(&self) -> &[K] {
        &self.splits
    }
}

impl<K: Ord + Serialize + serde::de::DeserializeOwned> RangePartitioner<K> {
    /// `splits` as a parameter value (a JSON array).
    pub fn to_param(splits: &[K]) -> String {
        serde_json::to_string(splits).unwrap_or_else(|_| "[]".into())
    }

    /// The partitioner whose split points are the parameter `name` (as
    /// [`RangePartitioner::to_param`] wrote them).
    pub fn from_params(
        params: &crate::Params,
        name: &str,
    ) -> Result<Self, crate::error::UserError> {
        let text = params.require(name)?;
        let splits: Vec<K> = serde_json::from_str(text).map_err(|e| {
            crate::error::UserError::msg(format!("parameter {name}: not a list of keys: {e}"))
        })?;
        Ok(Self::new(splits))
    }
}

impl<K: Ord + Send + Sync + 'static> Partitioner<K> for RangePartitioner<K> {
    fn partition(&self, key: &K, partitions: u32) -> u32 {
        let below = self.splits.partition_point(|s| s <= key);
        (below as u32).min(partitions.max(1) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn sha1_matches_the_reference_table() {
        // ../shared/reference: partitions of keys for R = 2 / 3 / 4.
        let table = [
            ("hola", [0, 0, 0]),
            ("mundo", [1, 2, 1]),
            ("grid", [0, 0, 0]),
            ("mr", [0, 1, 0]),
            ("el", [1, 0, 3]),
            ("cruel", [1, 0, 1]),
        ];
        for (key, want) in table {
            let got: Vec<u32> = (2..=4).map(|r| Sha1Partitioner.partition(key, r)).collect();
            assert_eq!(got, want, "key {key}");
            let owned = key.to_string();
            assert_eq!(Sha1Partitioner.partition(&owned, 4), want[2]);
        }
    }

    proptest::proptest! {
        #[test]
        fn the_digest_modulus_is_the_big_integers(
            words in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..6),
            m in proptest::prop_oneof![1u32.., (0u32..32).prop_map(|s| 1u32 << s)],
        ) {
            let wordwise = words
                .iter()
                .fold(0u128, |r, &w| ((r << 32) | u128::from(w)) % u128::from(m));
            proptest::prop_assert_eq!(u128::from(big_endian_mod(&words, m)), wordwise);
        }

        #[test]
        fn sha1_words_are_the_crates_digest(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            use sha1::{Digest, Sha1};
            let digest = Sha1::digest(&bytes);
            let words: Vec<u32> = digest
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            proptest::prop_assert_eq!(sha1_words(&bytes).to_vec(), words);
        }
    }

    #[test]
    fn sha1_words_at_every_padding_boundary() {
        use sha1::{Digest, Sha1};
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let bytes = vec![b'a'; len];
            let mut want = [0u32; 5];
            for (w, c) in want.iter_mut().zip(Sha1::digest(&bytes).chunks_exact(4)) {
                *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            }
            assert_eq!(sha1_words(&bytes), want, "length {len}");
        }
    }

    #[test]
    fn sha1_of_integers_hashes_their_decimal_text() {
        for r in 1..20 {
            assert_eq!(
                Sha1Partitioner.partition(&12345u64, r),
                Sha1Partitioner.partition("12345", r)
            );
        }
    }

    #[test]
    fn fast_partitioner_is_pinned() {
        // Part of the on-disk contract. The same numbers come from the Python `xxhash` package:
        // (xxh3_64_intdigest(key, FAST_PARTITIONER_SEED) * 1000) >> 64.
        let got: Vec<u32> = ["hola", "mundo", "grid", "", "el"]
            .iter()
            .map(|k| FastPartitioner.partition(*k, 1000))
            .collect();
        assert_eq!(got, PINNED_FAST);
    }

    const PINNED_FAST: [u32; 5] = [966, 800, 49, 38, 125];

    #[test]
    fn partitions_are_in_range_and_spread() {
        let mut seen = [0u32; 7];
        for i in 0..7000u32 {
            let k = format!("key-{i}");
            let a = FastPartitioner.partition(&k, 7);
            let b = Sha1Partitioner.partition(&k, 7);
            assert!(a < 7 && b < 7);
            seen[a as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn range_partitions_are_ordered_and_in_range() {
        let sample: Vec<u32> = (0..1000).rev().collect();
        let splits = RangePartitioner::split_points(sample, 4);
        assert_eq!(splits, [250, 500, 750]);
        let p = RangePartitioner::new(splits.clone());
        let parts: Vec<u32> = (0..1000).map(|k| p.partition(&k, 4)).collect();
        assert!(parts.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(parts.iter().filter(|&&x| x == 1).count(), 250);
        // Fewer partitions than the points were made for: still in range.
        assert_eq!(p.partition(&999, 2), 1);
        let params = crate::Params::new().with("s", RangePartitioner::to_param(&splits));
        assert_eq!(
            RangePartitioner::<u32>::from_params(&params, "s").unwrap(),
            p
        );
        assert!(RangePartitioner::<u32>::from_params(&params.with("s", "[\"x\"]"), "s").is_err());
        assert!(RangePartitioner::<u32>::split_points(Vec::new(), 4).is_empty());
    }

    #[test]
    fn compound_keys_use_their_encoding() {
        let a = FastPartitioner.partition(&(1u32, "x".to_string()), 1 << 20);
        let b = FastPartitioner.partition(&(1u32, "y".to_string()), 1 << 20);
        assert_ne!(a, b);
    }
}
