//! Key order on encoded bytes: for the key types whose postcard encoding can
//! be compared without decoding (strings, byte strings, integers, bools),
//! the shuffle sorts, merges and groups records as bytes, with an 8-byte
//! prefix that settles most comparisons in one integer compare (Hadoop's
//! `RawComparator`, Spark's prefix sort).
//!
//! Which types qualify is decided by [`TypeId`], not by looking at the
//! serde shape: a user's own key type may order itself differently from its
//! fields (a reversed `Ord`, a case-insensitive one), and only its `Ord`
//! knows. Such keys keep the typed path: decoded, and compared with `Ord`.
//!
//! | type | encoding | compared as |
//! |---|---|---|
//! | `String`, `Vec<u8>` | varint length, bytes | the bytes, lexicographically |
//! | `u16`…`u128`, `usize` | LEB128 varint | the number |
//! | `i16`…`i128`, `isize` | zig-zag varint | the number |
//! | `u8`, `bool` | one byte | the byte |
//! | `i8` | one byte, two's complement | the number |
//!
//! For each, equal values have equal encodings (postcard writes minimal
//! varints), so grouping by bytes is grouping by key.

use std::any::TypeId;
use std::cmp::Ordering;

/// How the encoding of a key type compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawOrder {
    /// Varint length, then bytes compared lexicographically.
    Bytes,
    /// An unsigned varint.
    Unsigned,
    /// A zig-zag signed varint.
    Signed,
    /// One unsigned byte.
    Byte,
    /// One two's-complement byte.
    SignedByte,
}

impl RawOrder {
    /// The raw order of `K`, if its encoding has one.
    ///
    /// ```
    /// use gridmr_core::shuffle::RawOrder;
    /// assert_eq!(RawOrder::of::<String>(), Some(RawOrder::Bytes));
    /// assert_eq!(RawOrder::of::<u64>(), Some(RawOrder::Unsigned));
    /// assert_eq!(RawOrder::of::<(u32, String)>(), None); // decoded, compared with Ord
    /// ```
    pub fn of<K: 'static>() -> Option<RawOrder> {
        let t = TypeId::of::<K>();
        let is = |o: TypeId| t == o;
        if is(TypeId::of::<String>()) || is(TypeId::of::<Vec<u8>>()) {
            Some(RawOrder::Bytes)
        } else if [
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<u128>(),
            TypeId::of::<usize>(),
        ]
        .contains(&t)
        {
            Some(RawOrder::Unsigned)
        } else if [
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<i128>(),
            TypeId::of::<isize>(),
        ]
        .contains(&t)
        {
            Some(RawOrder::Signed)
        } else if is(TypeId::of::<u8>()) || is(TypeId::of::<bool>()) {
            Some(RawOrder::Byte)
        } else if is(TypeId::of::<i8>()) {
            Some(RawOrder::SignedByte)
        } else {
            None
        }
    }

    /// Compares two encoded keys.
    #[inline]
    pub fn compare(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            RawOrder::Bytes => body(a).cmp(body(b)),
            RawOrder::Unsigned => varint(a).cmp(&varint(b)),
            RawOrder::Signed => unzigzag(varint(a)).cmp(&unzigzag(varint(b))),
            RawOrder::Byte => a.first().cmp(&b.first()),
            RawOrder::SignedByte => a
                .first()
                .map(|&x| x as i8)
                .cmp(&b.first().map(|&x| x as i8)),
        }
    }

    /// Compares two encoded keys whose [`RawOrder::prefix`]es are equal, which for byte
    /// strings settles their first 7 bytes and that both are at least 8 long (else they are
    /// equal, [`RawOrder::prefix_is_whole`]), so only the rest is compared.
    #[inline]
    pub fn compare_tied(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            RawOrder::Bytes => {
                let (a, b) = (body(a), body(b));
                if a.len().min(b.len()) < 8 {
                    a.len().cmp(&b.len())
                } else {
                    a[7..].cmp(&b[7..])
                }
            }
            other => other.compare(a, b),
        }
    }

    /// Whether two keys with this `prefix` ([`RawOrder::prefix`]) are necessarily equal, so
    /// that a sort need not look at them: true for byte strings shorter than 8 bytes,
    /// unsigned integers below 2^63, signed ones strictly between `i64::MIN` and `i64::MAX`,
    /// and single bytes.
    ///
    /// ```
    /// use gridmr_core::shuffle::RawOrder;
    /// let short = RawOrder::Bytes.prefix(&[3, b'a', b'b', b'c']);
    /// assert!(RawOrder::Bytes.prefix_is_whole(short));
    /// let long = RawOrder::Bytes.prefix(b"\x0aabcdefghij");
    /// assert!(!RawOrder::Bytes.prefix_is_whole(long));
    /// ```
    #[inline]
    pub fn prefix_is_whole(self, prefix: u64) -> bool {
        match self {
            RawOrder::Bytes => prefix & 0xff < 8,
            RawOrder::Unsigned => prefix < 1 << 63,
            RawOrder::Signed => prefix != 0 && prefix != u64::MAX,
            RawOrder::Byte | RawOrder::SignedByte => true,
        }
    }

    /// An order-keeping 64-bit summary of an encoded key: `prefix(a) <
    /// prefix(b)` implies `a < b`; equal prefixes need [`RawOrder::compare`].
    #[inline]
    pub fn prefix(self, key: &[u8]) -> u64 {
        match self {
            RawOrder::Bytes => bytes_prefix(body(key)),
            RawOrder::Unsigned => {
                let v = varint(key);
                // Values below 2^63 are their own prefix (whole); the rest of u64's range
                // takes the next quarter (two values a prefix), larger ones (u128) the last
                // quarter, by their top 62 bits.
                const HALF: u64 = 1 << 63;
                const QUARTER: u64 = 1 << 62;
                match u64::try_from(v) {
                    Ok(small) if small < HALF => small,
                    Ok(large) => HALF + ((large - HALF) >> 1),
                    Err(_) => HALF + QUARTER + (v >> 66) as u64,
                }
            }
            RawOrder::Signed => {
                let v = unzigzag(varint(key));
                let clamped = v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
                (clamped as u64) ^ (1 << 63)
            }
            RawOrder::Byte => u64::from(key.first().copied().unwrap_or(0)),
            RawOrder::SignedByte => u64::from(key.first().copied().unwrap_or(0) ^ 0x80),
        }
    }
}

/// The first 7 bytes of `b` as a big-endian integer (zeros standing in for bytes past its
/// end), then one byte of `min(len, 8)`: `bytes_prefix(a) < bytes_prefix(b)` implies
/// `a < b` (where the 7 bytes tie, the shorter is a prefix of the longer), and equal prefixes
/// below 8 in the low byte mean equal strings.
#[inline]
pub(crate) fn bytes_prefix(b: &[u8]) -> u64 {
    let len = b.len().min(8) as u64;
    match b.first_chunk::<8>() {
        Some(head) => (u64::from_be_bytes(*head) & !0xff) | len,
        None => b
            .iter()
            .enumerate()
            .take(7)
            .fold(len, |p, (i, &x)| p | u64::from(x) << (56 - 8 * i)),
    }
}

/// A LEB128 varint's value (at most 19 bytes: a u128), and how many bytes
/// it took. Garbage gives some value: the shuffle file's checksum, not the
/// comparator, stands between a damaged file and a wrong answer.
#[inline]
fn varint_len(bytes: &[u8]) -> (u128, usize) {
    // Most lengths and many integers take one byte.
    if let Some(&b) = bytes.first().filter(|&&b| b < 0x80) {
        return (u128::from(b), 1);
    }
    let mut v = 0u128;
    for (i, &b) in bytes.iter().enumerate().take(19) {
        v |= u128::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, bytes.len().min(19))
}

#[inline]
fn varint(bytes: &[u8]) -> u128 {
    varint_len(bytes).0
}

#[inline]
fn unzigzag(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

/// The bytes of a length-prefixed encoding (a string's UTF-8, a byte
/// string's bytes).
#[inline]
fn body(bytes: &[u8]) -> &[u8] {
    let (len, n) = varint_len(bytes);
    let rest = &bytes[n.min(bytes.len())..];
    &rest[..(len.min(rest.len() as u128) as usize)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_into;
    use proptest::prelude::*;

    fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
        let mut b = Vec::new();
        encode_into(v, &mut b).unwrap();
        b
    }

    fn agrees<T: serde::Serialize + Ord + 'static>(a: T, b: T) {
        let order = RawOrder::of::<T>().unwrap();
        let (ea, eb) = (enc(&a), enc(&b));
        assert_eq!(order.compare(&ea, &eb), a.cmp(&b));
        let (pa, pb) = (order.prefix(&ea), order.prefix(&eb));
        if pa != pb {
            assert_eq!(pa.cmp(&pb), a.cmp(&b), "prefixes disagree");
        } else {
            assert_eq!(order.compare_tied(&ea, &eb), a.cmp(&b), "tied prefixes");
            if order.prefix_is_whole(pa) {
                assert_eq!(ea, eb, "a whole prefix is the key");
            }
        }
        assert_eq!(ea == eb, a == b, "equal keys, equal bytes");
    }

    proptest! {
        #[test]
        fn byte_order_is_the_types_order(
            s in any::<(String, String)>(), v in any::<(Vec<u8>, Vec<u8>)>(),
            u in any::<(u64, u64)>(), w in any::<(u128, u128)>(), i in any::<(i64, i64)>(),
            j in any::<(i128, i128)>(), x in any::<(u16, u16)>(), y in any::<(i8, i8)>(),
            z in any::<(u8, u8)>(), b in any::<(bool, bool)>(), n in any::<(i32, i32)>(),
        ) {
            agrees(s.0, s.1);
            agrees(v.0, v.1);
            agrees(u.0, u.1);
            agrees(w.0, w.1);
            agrees(i.0, i.1);
            agrees(j.0, j.1);
            agrees(x.0, x.1);
            agrees(y.0, y.1);
            agrees(z.0, z.1);
            agrees(b.0, b.1);
            agrees(n.0, n.1);
        }

        #[test]
        fn prefixes_of_near_strings(a in "[a-c]{0,12}", b in "[a-c]{0,12}") {
            agrees(a, b);
        }

        #[test]
        fn prefixes_of_strings_with_zeros(a in "[a\\x00]{0,12}", b in "[a\\x00]{0,12}") {
            agrees(a, b);
        }
    }

    #[test]
    fn edges() {
        agrees(String::new(), "\0".to_string());
        agrees("a".to_string(), "a\0".to_string());
        agrees(u128::MAX, u128::from(u64::MAX));
        agrees(1u64 << 63, (1u64 << 63) - 1);
        agrees(1u64 << 63, (1u64 << 63) + 1);
        agrees(1u64 << 63, (1u64 << 63) + 2);
        agrees(u64::MAX, u64::MAX - 1);
        agrees(u128::from(u64::MAX) + 1, u128::from(u64::MAX) - 1);
        agrees(u128::MAX, u128::MAX - 1);
        // The top half of u64 is spread over prefixes, not one tie.
        let top = |v: u64| RawOrder::Unsigned.prefix(&enc(&v));
        assert_ne!(top(1 << 63), top(u64::MAX));
        agrees(u128::from(u64::MAX) + 1, u128::from(u64::MAX));
        agrees(i64::MIN + 1, i64::MIN);
        agrees("abcdefg".to_string(), "abcdefgh".to_string());
        agrees("abcdefgh".to_string(), "abcdefgh\0".to_string());
        agrees("abcdefg\0".to_string(), "abcdefg".to_string());
        agrees(i128::MIN, i128::from(i64::MIN));
        agrees(i64::MIN, i64::MAX);
        assert_eq!(RawOrder::of::<(String, u32)>(), None);
        assert_eq!(RawOrder::of::<char>(), None);
    }
}
