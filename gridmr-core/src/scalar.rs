//! A serde probe that writes a value as plain text when it is a scalar (a string, a character,
//! a number, a bool, or a newtype around one) and reports `NotScalar` for anything else.
//!
//! It gives keys a *canonical byte form* for partitioning (a `String` key hashes as its UTF-8
//! bytes and an integer as its decimal digits, exactly as the Python original's `str(key)`) and
//! gives output records their plain `key<TAB>value` text.

use serde::ser::{self, Impossible, Serialize};
use std::fmt;
use std::io::Write;

/// The probe's only error: the value is not a scalar (or its `Serialize` impl failed).
#[derive(Debug)]
pub(crate) struct NotScalar;

impl fmt::Display for NotScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a scalar")
    }
}

impl std::error::Error for NotScalar {}

impl ser::Error for NotScalar {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NotScalar
    }
}

/// Writes `value` as text into `out` if it is a scalar; otherwise leaves `out` possibly
/// partially written and returns `Err(NotScalar)` (callers truncate and fall back).
pub(crate) fn write_scalar<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), NotScalar> {
    value.serialize(Probe(out))
}

struct Probe<'a>(&'a mut Vec<u8>);

/// Integers as decimal digits, the same text as `Display` gives, by `itoa`.
macro_rules! integer {
    ($($method:ident : $ty:ty),*) => {
        $(fn $method(self, v: $ty) -> Result<(), NotScalar> {
            self.0.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        })*
    };
}

macro_rules! not_scalar {
    ($($method:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty),* $(,)?) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<$ret, NotScalar> {
            $(let _ = $arg;)*
            Err(NotScalar)
        })*
    };
}

impl<'a> ser::Serializer for Probe<'a> {
    type Ok = ();
    type Error = NotScalar;
    type SerializeSeq = Impossible<(), NotScalar>;
    type SerializeTuple = Impossible<(), NotScalar>;
    type SerializeTupleStruct = Impossible<(), NotScalar>;
    type SerializeTupleVariant = Impossible<(), NotScalar>;
    type SerializeMap = Impossible<(), NotScalar>;
    type SerializeStruct = Impossible<(), NotScalar>;
    type SerializeStructVariant = Impossible<(), NotScalar>;

    integer!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128);

    fn serialize_bool(self, v: bool) -> Result<(), NotScalar> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), NotScalar> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), NotScalar> {
        if !v.is_finite() {
            return Err(NotScalar);
        }
        write!(self.0, "{v:?}").map_err(|_| NotScalar)
    }

    fn serialize_char(self, v: char) -> Result<(), NotScalar> {
        let mut b = [0u8; 4];
        self.0.extend_from_slice(v.encode_utf8(&mut b).as_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), NotScalar> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), NotScalar> {
        value.serialize(self)
    }

    not_scalar!(
        serialize_bytes(v: &[u8]) -> (),
        serialize_none() -> (),
        serialize_unit() -> (),
        serialize_unit_struct(name: &'static str) -> (),
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str) -> (),
        serialize_seq(len: Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(len: usize) -> Self::SerializeTuple,
        serialize_tuple_struct(name: &'static str, len: usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> Self::SerializeTupleVariant,
        serialize_map(len: Option<usize>) -> Self::SerializeMap,
        serialize_struct(name: &'static str, len: usize) -> Self::SerializeStruct,
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> Self::SerializeStructVariant,
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), NotScalar> {
        Err(NotScalar)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), NotScalar> {
        Err(NotScalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T: Serialize + ?Sized>(v: &T) -> Option<String> {
        let mut out = Vec::new();
        write_scalar(v, &mut out).ok()?;
        Some(String::from_utf8(out).unwrap())
    }

    #[derive(serde::Serialize)]
    struct Word(String);

    #[test]
    fn scalars_are_plain_text() {
        assert_eq!(text("héllo").as_deref(), Some("héllo"));
        assert_eq!(text(&-42i64).as_deref(), Some("-42"));
        assert_eq!(text(&1.5f64).as_deref(), Some("1.5"));
        assert_eq!(text(&'x').as_deref(), Some("x"));
        assert_eq!(text(&Word("w".into())).as_deref(), Some("w"));
    }

    #[test]
    fn integers_and_bools_read_as_display_writes_them() {
        for v in [0i64, 7, -1, i64::MIN, i64::MAX] {
            assert_eq!(text(&v), Some(v.to_string()));
        }
        for v in [0u128, u128::MAX] {
            assert_eq!(text(&v), Some(v.to_string()));
        }
        assert_eq!(text(&i128::MIN), Some(i128::MIN.to_string()));
        assert_eq!(text(&u8::MAX).as_deref(), Some("255"));
        assert_eq!(text(&true).as_deref(), Some("true"));
        assert_eq!(text(&false).as_deref(), Some("false"));
    }

    proptest::proptest! {
        #[test]
        fn any_integer_is_its_display(v: i64, w: u64, x: i32) {
            proptest::prop_assert_eq!(text(&v), Some(v.to_string()));
            proptest::prop_assert_eq!(text(&w), Some(w.to_string()));
            proptest::prop_assert_eq!(text(&x), Some(x.to_string()));
        }
    }

    #[test]
    fn compounds_are_not_scalars() {
        assert_eq!(text(&(1, 2)), None);
        assert_eq!(text(&Some(1)), None);
        assert_eq!(text(&vec![1u8]), None);
        assert_eq!(text(&f64::NAN), None);
    }
}
