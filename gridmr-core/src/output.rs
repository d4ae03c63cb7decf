//! Job output: `key<TAB>value` text lines, written by reduce tasks and readable back as typed
//! records.
//!
//! A key or value that is a string (or a char, or a newtype around one) is written raw; a
//! number or bool plainly (`42`, `1.5`, `true`); anything else as JSON. Reading back splits a
//! line at its **first** tab, so keys must not contain tabs, and neither keys nor values may
//! contain newlines: the same rule as Hadoop's `TextOutputFormat`. A value type that holds
//! no data (`()`, Hadoop's `NullWritable`) writes the key alone, without a tab.

use crate::counters::{builtin, Counters};
use crate::error::{Error, Result};
use crate::scalar::write_scalar;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Appends `value` as output text to `out`.
pub fn write_text<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    if write_scalar(value, out).is_err() {
        out.truncate(start);
        serde_json::to_writer(&mut *out, value).map_err(|e| Error::Codec(e.to_string()))?;
    }
    Ok(())
}

/// Formats one output line, `key<TAB>value\n` (`key\n` for a value type
/// of size zero, such as `()`).
///
/// ```
/// let mut line = Vec::new();
/// gridmr_core::output::format_line(&"hola", &3u64, &mut line).unwrap();
/// gridmr_core::output::format_line(&(1, 2), &vec!["a"], &mut line).unwrap();
/// gridmr_core::output::format_line(&"alone", &(), &mut line).unwrap();
/// assert_eq!(line, b"hola\t3\n[1,2]\t[\"a\"]\nalone\n");
/// ```
pub fn format_line<K: Serialize + ?Sized, V: Serialize>(
    key: &K,
    value: &V,
    out: &mut Vec<u8>,
) -> Result<()> {
    write_text(key, out)?;
    if std::mem::size_of::<V>() != 0 {
        out.push(b'\t');
        write_text(value, out)?;
    }
    out.push(b'\n');
    Ok(())
}

/// How much of a part file is gathered before it goes to the file.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes a reduce task's output file: lines are formatted straight into
/// one buffer, which goes to the file in chunks of `WRITE_CHUNK` bytes.
pub struct TextWriter<K, V> {
    path: PathBuf,
    out: File,
    buf: Vec<u8>,
    separator: &'static str,
    records: u64,
    bytes: u64,
    _types: PhantomData<fn(&K, &V)>,
}

impl<K: Serialize, V: Serialize> TextWriter<K, V> {
    /// Creates (truncates) `path`, for `key<TAB>value` lines.
    pub fn create(path: &Path) -> Result<Self> {
        Self::with_separator(path, "\t")
    }

    /// Creates (truncates) `path`, for lines of a key, `separator` and a
    /// value (Hadoop's `mapreduce.output.textoutputformat.separator`).
    pub fn with_separator(path: &Path, separator: &'static str) -> Result<Self> {
        let out = File::create(path).map_err(|e| Error::io("create", path, e))?;
        Ok(TextWriter {
            path: path.to_path_buf(),
            out,
            buf: Vec::with_capacity(WRITE_CHUNK + 4096),
            separator,
            records: 0,
            bytes: 0,
            _types: PhantomData,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record.
    pub fn write(&mut self, key: &K, value: &V) -> Result<()> {
        let before = self.buf.len();
        write_text(key, &mut self.buf)?;
        if std::mem::size_of::<V>() != 0 {
            self.buf.extend_from_slice(self.separator.as_bytes());
            write_text(value, &mut self.buf)?;
        }
        self.buf.push(b'\n');
        self.records += 1;
        self.bytes += (self.buf.len() - before) as u64;
        if self.buf.len() >= WRITE_CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.buf.clear();
        Ok(())
    }

    /// Flushes and closes the file, adding the output counters to `counters`.
    pub fn finish(mut self, counters: &mut Counters) -> Result<()> {
        counters.add_builtin(builtin::OUTPUT_RECORDS, self.records);
        counters.add_builtin(builtin::OUTPUT_BYTES, self.bytes);
        self.drain()?;
        self.out
            .sync_data()
            .map_err(|e| Error::io("sync", &self.path, e))
    }
}

/// Parses one output line (without its newline) into a typed record.
///
/// ```
/// let (k, v): (String, u64) = gridmr_core::output::parse_line("hola\t3").unwrap();
/// assert_eq!((k.as_str(), v), ("hola", 3));
/// let (k, v): ((u32, u32), Vec<String>) = gridmr_core::output::parse_line("[1,2]\t[\"a\"]").unwrap();
/// assert_eq!((k, v), ((1, 2), vec!["a".to_string()]));
/// ```
pub fn parse_line<K: DeserializeOwned, V: DeserializeOwned>(line: &str) -> Result<(K, V)> {
    if std::mem::size_of::<V>() == 0 {
        // A key-only line (see `format_line`).
        let key =
            K::deserialize(TextDe(line)).map_err(|e| Error::Codec(format!("key {line:?}: {e}")))?;
        let value = V::deserialize(TextDe("null"))
            .map_err(|e| Error::Codec(format!("value of a key-only line: {e}")))?;
        return Ok((key, value));
    }
    let (k, v) = line
        .split_once('\t')
        .ok_or_else(|| Error::Codec(format!("output line without a tab: {line:?}")))?;
    let key = K::deserialize(TextDe(k)).map_err(|e| Error::Codec(format!("key {k:?}: {e}")))?;
    let value = V::deserialize(TextDe(v)).map_err(|e| Error::Codec(format!("value {v:?}: {e}")))?;
    Ok((key, value))
}

/// Reads the typed records of a job's output folder (`part-r-*` files, in name order) or of a
/// single output file.
pub fn read_output<K: DeserializeOwned, V: DeserializeOwned>(path: &Path) -> Result<Vec<(K, V)>> {
    let mut records = Vec::new();
    for file in output_files(path)? {
        let reader = BufReader::new(File::open(&file).map_err(|e| Error::io("open", &file, e))?);
        for line in reader.lines() {
            let line = line.map_err(|e| Error::io("read", &file, e))?;
            records.push(parse_line(&line)?);
        }
    }
    Ok(records)
}

/// The part files of an output folder, in name order (or `path` itself when it is a file).
pub fn output_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io("list", path, e))? {
        let entry = entry.map_err(|e| Error::io("list", path, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("part-") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

#[derive(Debug)]
struct TextError(String);

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TextError {}

impl de::Error for TextError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TextError(msg.to_string())
    }
}

impl TextError {
    fn json(e: serde_json::Error) -> Self {
        TextError(e.to_string())
    }
}

/// Reads a field written by [`write_text`]: raw for strings, plain for numbers, JSON otherwise.
struct TextDe<'de>(&'de str);

macro_rules! parse_number {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            let n: $ty = self.0.trim().parse().map_err(|e| TextError(format!("{e}")))?;
            visitor.$visit(n)
        })*
    };
}

macro_rules! via_json {
    ($($method:ident ( $($arg:ident : $ty:ty),* )),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, TextError> {
            let mut de = serde_json::Deserializer::from_str(self.0);
            let value = de::Deserializer::$method(&mut de, $($arg,)* visitor).map_err(TextError::json)?;
            de.end().map_err(TextError::json)?;
            Ok(value)
        })*
    };
}

impl<'de> de::Deserializer<'de> for TextDe<'de> {
    type Error = TextError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        if serde_json::from_str::<de::IgnoredAny>(self.0).is_ok() {
            let mut de = serde_json::Deserializer::from_str(self.0);
            de::Deserializer::deserialize_any(&mut de, visitor).map_err(TextError::json)
        } else {
            visitor.visit_borrowed_str(self.0)
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        let mut chars = self.0.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(TextError(format!(
                "expected one character, got {:?}",
                self.0
            ))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TextError> {
        visitor.visit_newtype_struct(self)
    }

    parse_number!(
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32, deserialize_f64 => visit_f64: f64,
    );

    via_json!(
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_option(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_seq(),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_ignored_any(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Stats {
        n: u32,
        mean: f64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Word(String);

    fn round_trip<K, V>(k: K, v: V)
    where
        K: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
        V: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let mut line = Vec::new();
        format_line(&k, &v, &mut line).unwrap();
        let text = std::str::from_utf8(&line).unwrap().trim_end_matches('\n');
        let (k2, v2): (K, V) = parse_line(text).unwrap();
        assert_eq!((k2, v2), (k, v), "line {text:?}");
    }

    #[test]
    fn typed_round_trips() {
        round_trip("héllo wörld".to_string(), 7u64);
        round_trip(-5i32, "x".to_string());
        round_trip(Word("w".into()), 2.5f64);
        round_trip((1u8, "a".to_string()), Stats { n: 3, mean: 0.5 });
        round_trip('c', Some(vec![1, 2]));
        round_trip("k".to_string(), BTreeMap::from([("a".to_string(), 1)]));
        round_trip("k".to_string(), true);
        round_trip("{not json".to_string(), "[1,".to_string());
        round_trip("a key\twith a tab".to_string(), ());
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(parse_line::<String, u64>("no tab").is_err());
        assert!(parse_line::<String, u64>("k\tnot a number").is_err());
        assert!(parse_line::<String, Stats>("k\t{\"n\":1}").is_err());
    }
}
