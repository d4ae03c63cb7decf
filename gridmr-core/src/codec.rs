//! Record codec: how keys and values become bytes in shuffle files, and back.
//!
//! Records are encoded with [postcard](https://docs.rs/postcard): compact, deterministic for a
//! given value (so equal keys give equal bytes) and self-delimiting, which lets a shuffle block
//! hold records back to back with no length framing of our own.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

/// What a map output key must be: serialisable, totally ordered (the shuffle sorts by it),
/// hashable (map-side combining groups by it) and cloneable.
///
/// Implemented for every type with those traits: `String`, integers, tuples, your own
/// `#[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash, Clone)]` structs,
/// derived with the `serde` GridMR re-exports (no dependency of your own):
///
/// ```
/// use gridmr_core::serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Debug)]
/// #[serde(crate = "gridmr_core::serde")]
/// struct Bigram(String, String);
///
/// fn key<K: gridmr_core::Key>(k: K) -> K { k }
/// let k = key(Bigram("a".into(), "b".into()));
/// let mut buf = Vec::new();
/// gridmr_core::codec::encode_into(&k, &mut buf).unwrap();
/// let (back, rest) = gridmr_core::codec::decode_from::<Bigram>(&buf).unwrap();
/// assert_eq!((back, rest.len()), (k, 0));
/// ```
pub trait Key: Serialize + DeserializeOwned + Ord + Hash + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Ord + Hash + Clone + Send + Sync + 'static> Key for T {}

/// What a map output value must be: serialisable and sendable.
pub trait Value: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Value for T {}

/// Appends the postcard encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let buf = std::mem::take(out);
    *out = postcard::to_extend(value, buf).map_err(|e| Error::Codec(e.to_string()))?;
    Ok(())
}

/// The length of `value`'s postcard encoding, computed without writing it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// Decodes one value from the front of `bytes`, returning it and the rest.
pub fn decode_from<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8])> {
    postcard::take_from_bytes(bytes).map_err(|e| Error::Codec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_back_to_back() {
        let mut buf = Vec::new();
        encode_into(&"hola".to_string(), &mut buf).unwrap();
        encode_into(&42u64, &mut buf).unwrap();
        assert_eq!(encoded_len("hola"), 5);
        let (k, rest): (String, _) = decode_from(&buf).unwrap();
        let (v, rest): (u64, _) = decode_from(rest).unwrap();
        assert_eq!((k.as_str(), v, rest.len()), ("hola", 42, 0));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut buf = Vec::new();
        encode_into(&"a longer key".to_string(), &mut buf).unwrap();
        assert!(decode_from::<String>(&buf[..4]).is_err());
    }
}
