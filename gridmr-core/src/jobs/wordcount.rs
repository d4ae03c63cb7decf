//! Word count, tokenised exactly as the original GridMR's `wordcount.py`:
//! `line.lower().split()` (Unicode lower-case, split on Unicode white space).

use crate::error::UserResult;
use crate::input::Record;
use crate::job::{Job, MapContext, Mapper, ReduceContext, Reducer, SumCombiner, Values};

/// Python's `str.isspace()` restricted to ASCII: `\t \n \v \f \r`, U+001C..U+001F and space.
const ASCII_WS: [bool; 256] = {
    let mut t = [false; 256];
    let ws: [u8; 10] = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20];
    let mut i = 0;
    while i < ws.len() {
        t[ws[i] as usize] = true;
        i += 1;
    }
    t
};

/// Python's `str.isspace()`: Unicode White_Space plus U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Calls `f` with each word of `text` as Python's `text.lower().split()` gives them.
///
/// ASCII lines (the common case) take a fast path that allocates nothing: words are borrowed
/// from the line, and only those with upper-case letters are lower-cased, in `scratch`.
///
/// ```
/// let mut words = Vec::new();
/// let mut scratch = String::new();
/// gridmr_core::jobs::wordcount::python_words(b"Hola  MUNDO\r", &mut scratch, |w| words.push(w.to_string()));
/// gridmr_core::jobs::wordcount::python_words("ÉTÉ\u{2003}ΣΑΣ".as_bytes(), &mut scratch, |w| words.push(w.to_string()));
/// assert_eq!(words, ["hola", "mundo", "été", "σας"]);
/// ```
pub fn python_words(text: &[u8], scratch: &mut String, mut f: impl FnMut(&str)) {
    match std::str::from_utf8(text) {
        Ok(line) if line.is_ascii() => {
            let bytes = line.as_bytes();
            let n = bytes.len();
            let mut i = 0;
            while i < n {
                while i < n && ASCII_WS[bytes[i] as usize] {
                    i += 1;
                }
                let start = i;
                let mut upper = false;
                while i < n && !ASCII_WS[bytes[i] as usize] {
                    upper |= bytes[i].is_ascii_uppercase();
                    i += 1;
                }
                if i == start {
                    continue;
                }
                let word = &line[start..i];
                if upper {
                    scratch.clear();
                    scratch.push_str(word);
                    scratch.make_ascii_lowercase();
                    f(scratch);
                } else {
                    f(word);
                }
            }
        }
        _ => {
            let record = Record {
                file: std::path::Path::new(""),
                offset: 0,
                bytes: text,
            };
            let lower = record.text().to_lowercase();
            for word in lower.split(is_py_space).filter(|w| !w.is_empty()) {
                f(word);
            }
        }
    }
}

/// Emits `(word, 1)` for every word of every line.
#[derive(Debug, Clone, Default)]
pub struct WordCountMapper {
    scratch: String,
}

impl Mapper for WordCountMapper {
    type Key = String;
    type Value = u64;

    fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let mut result = Ok(());
        python_words(record.bytes, &mut self.scratch, |word| {
            if result.is_ok() {
                result = ctx.emit_ref(word, 1);
            }
        });
        Ok(result?)
    }
}

/// Sums the values of each key.
#[derive(Debug, Clone, Default)]
pub struct SumReducer;

impl Reducer for SumReducer {
    type Key = String;
    type Value = u64;
    type OutKey = String;
    type OutValue = u64;

    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, u64>,
        ctx: &mut ReduceContext<'_, String, u64>,
    ) -> UserResult {
        let total: u64 = values.sum();
        ctx.emit(key, &total)?;
        Ok(())
    }
}

/// The word-count job, named `wordcount`: [`WordCountMapper`], [`SumReducer`], a summing
/// combiner and the original's SHA-1 partitioner.
pub fn job() -> Job<WordCountMapper, SumReducer> {
    Job::new("wordcount", WordCountMapper::default(), SumReducer).with_combiner(SumCombiner)
}
