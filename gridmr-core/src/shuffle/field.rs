//! One key or value framed into a map buffer straight from the value, for the types most jobs
//! emit, with no serializer in between.
//!
//! A framed field is `varint(encoded length) encoding`, where the encoding is postcard's
//! (see [`format`](super::format)). For these types postcard's encoding is short and fixed,
//! so it is written here directly:
//!
//! | type | encoding |
//! |---|---|
//! | `String`, `Vec<u8>` | varint(length) bytes |
//! | `u16`…`u128`, `usize` | LEB128 varint |
//! | `i16`…`i128`, `isize` | zig-zag, then LEB128 varint |
//! | `u8`, `i8`, `bool` | one byte |
//!
//! Every other type is encoded by postcard into a scratch buffer first. A unit test holds the
//! two to the same bytes.

use crate::codec::encode_into;
use crate::error::Result;
use serde::Serialize;
use std::any::Any;

/// How one field is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// A length-prefixed byte string (a `String`'s UTF-8, a `Vec<u8>`).
    Bytes(&'a [u8]),
    /// An unsigned varint (a signed integer after zig-zag).
    Varint(u128),
    /// One byte.
    Byte(u8),
    /// Neither: postcard writes it into a scratch buffer, which is then framed as it is.
    Encoded,
}

impl<'a> Field<'a> {
    /// The field shape of `v`. The type tests are on [`TypeId`](std::any::TypeId)s known at
    /// compile time, so each instantiation keeps only its own arm.
    #[inline]
    pub(crate) fn of<T: 'static>(v: &'a T) -> Field<'a> {
        let any = v as &dyn Any;
        macro_rules! unsigned {
            ($($t:ty),*) => {$(
                if let Some(&x) = any.downcast_ref::<$t>() {
                    return Field::Varint(x as u128);
                }
            )*};
        }
        macro_rules! signed {
            ($($t:ty),*) => {$(
                if let Some(&x) = any.downcast_ref::<$t>() {
                    let x = x as i128;
                    return Field::Varint(((x << 1) ^ (x >> 127)) as u128);
                }
            )*};
        }
        if let Some(s) = any.downcast_ref::<String>() {
            return Field::Bytes(s.as_bytes());
        }
        if let Some(b) = any.downcast_ref::<Vec<u8>>() {
            return Field::Bytes(b);
        }
        unsigned!(u64, u32, usize, u16, u128);
        signed!(i64, i32, isize, i16, i128);
        if let Some(&x) = any.downcast_ref::<u8>() {
            return Field::Byte(x);
        }
        if let Some(&x) = any.downcast_ref::<i8>() {
            return Field::Byte(x as u8);
        }
        if let Some(&x) = any.downcast_ref::<bool>() {
            return Field::Byte(u8::from(x));
        }
        Field::Encoded
    }

    /// Encodes `v` into `scratch` (cleared first) when this field needs it; returns the most
    /// bytes [`Field::frame`] will write.
    #[inline]
    pub(crate) fn prepare<T: Serialize + ?Sized>(
        self,
        v: &T,
        scratch: &mut Vec<u8>,
    ) -> Result<usize> {
        Ok(match self {
            Field::Bytes(b) => b.len() + 10,
            Field::Varint(_) => 20,
            Field::Byte(_) => 2,
            Field::Encoded => {
                scratch.clear();
                encode_into(v, scratch)?;
                scratch.len() + 5
            }
        })
    }

    /// Appends the framed field; `scratch` is what [`Field::prepare`] left.
    #[inline]
    pub(crate) fn frame(self, scratch: &[u8], out: &mut Vec<u8>) {
        match self {
            Field::Bytes(b) => {
                put_varint(varint_size(b.len() as u128) as u128 + b.len() as u128, out);
                put_varint(b.len() as u128, out);
                out.extend_from_slice(b);
            }
            Field::Varint(x) => {
                out.push(varint_size(x) as u8);
                put_varint(x, out);
            }
            Field::Byte(x) => out.extend_from_slice(&[1, x]),
            Field::Encoded => {
                put_varint(scratch.len() as u128, out);
                out.extend_from_slice(scratch);
            }
        }
    }
}

/// How many bytes the LEB128 varint of `n` takes.
#[inline]
fn varint_size(n: u128) -> usize {
    (u128::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

/// Appends `v` as a LEB128 varint.
#[inline]
fn put_varint(mut v: u128, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shuffle::format::frame_record;
    use proptest::prelude::*;

    /// The field's framing of `v`, and postcard's encoding of `v` framed.
    fn both<T: Serialize + 'static>(v: &T) -> (Vec<u8>, Vec<u8>) {
        let mut scratch = Vec::new();
        let mut direct = Vec::new();
        let field = Field::of(v);
        let bound = field.prepare(v, &mut scratch).unwrap();
        field.frame(&scratch, &mut direct);
        assert!(
            direct.len() <= bound,
            "{} bytes over a bound of {bound}",
            direct.len()
        );
        let mut enc = Vec::new();
        encode_into(v, &mut enc).unwrap();
        let mut framed = Vec::new();
        frame_record(&enc, &[], &mut framed);
        framed.pop(); // the empty value's length
        (direct, framed)
    }

    fn same<T: Serialize + 'static>(v: T) {
        let (direct, postcard) = both(&v);
        assert_eq!(direct, postcard);
    }

    proptest! {
        #[test]
        fn every_direct_field_is_postcards_encoding(
            s in any::<String>(), b in any::<Vec<u8>>(), u in any::<u64>(), w in any::<u128>(),
            i in any::<i64>(), j in any::<i128>(), x in any::<u16>(), y in any::<i8>(),
            z in any::<u8>(), t in any::<bool>(), n in any::<i32>(), m in any::<u32>(),
            l in any::<usize>(), k in any::<isize>(), h in any::<i16>(),
            other in any::<(u32, String)>(),
        ) {
            same(s);
            same(b);
            same(u);
            same(w);
            same(i);
            same(j);
            same(x);
            same(y);
            same(z);
            same(t);
            same(n);
            same(m);
            same(l);
            same(k);
            same(h);
            same(other);
        }
    }

    #[test]
    fn edges() {
        same(String::new());
        same("x".repeat(200));
        same(u128::MAX);
        same(i128::MIN);
        same(i64::MIN);
        same(0u64);
        same(127u64);
        same(128u64);
        same(());
        same(Some(3u8));
        assert!(matches!(Field::of(&'c'), Field::Encoded));
    }
}
