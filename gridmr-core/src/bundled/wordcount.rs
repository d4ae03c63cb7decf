//! Word count, tokenised exactly as the original GridMR's `wordcount.py`:
//! `line.lower().split()` (Unicode lower-case, split on Unicode white space).

use crate::error::UserResult;
use crate::input::{decode_ignoring_invalid, Lines, Record};
use crate::job::{
    map_each_line, Job, MapContext, Mapper, ReduceContext, Reducer, SumCombiner, Values,
};

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

/// The first position at or after `i` whose byte is at most `0x20` (every ASCII white space
/// character is), or `bytes.len()`. Eight bytes at a time: for each byte of a little-endian
/// word, `b - 0x21` borrows into the top bit exactly when `b < 0x21` and `b` has no top bit of
/// its own; a borrow only moves up, into later bytes, so the lowest flagged byte is exact.
#[inline]
fn next_control_or_space(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    while let Some(chunk) = bytes.get(i..).and_then(|b| b.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk);
        let low = x.wrapping_sub(ONES * 0x21) & !x & (ONES * 0x80);
        if low != 0 {
            return i + (low.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] > 0x20 {
        i += 1;
    }
    i
}

/// `bytes`, which the caller has checked are all ASCII, as text, without checking again that
/// they are UTF-8: the check costs as much as the ASCII test itself, once per line.
#[inline(always)]
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: every ASCII byte sequence is valid UTF-8, and the caller passes only ASCII
    // (`python_words` tests `is_ascii` first).
    #[allow(unsafe_code)]
    unsafe {
        std::str::from_utf8_unchecked(bytes)
    }
}

/// Python's `str.isspace()`: Unicode White_Space plus U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The words of `text` as Python's `text.lower().split()` gives them.
///
/// The text is lower-cased into `scratch` (reused between calls, so a line allocates nothing
/// once `scratch` is large enough) and the words are slices of it. Bytes that are not UTF-8 are
/// dropped first, as Python's `errors="ignore"`. ASCII text (the common case) is lower-cased and
/// split with byte tables; other text with Unicode's full lower-casing and white space.
///
/// ```
/// use gridmr_core::bundled::wordcount::python_words;
/// let mut scratch = String::new();
/// let words: Vec<String> = python_words(b"Hola  MUNDO\r", &mut scratch).map(String::from).collect();
/// assert_eq!(words, ["hola", "mundo"]);
/// let words: Vec<String> = python_words("ÉTÉ\u{2003}ΣΑΣ".as_bytes(), &mut scratch).map(String::from).collect();
/// assert_eq!(words, ["été", "σας"]);
/// ```
pub fn python_words<'a>(text: &[u8], scratch: &'a mut String) -> Words<'a> {
    scratch.clear();
    let ascii = text.is_ascii();
    if ascii {
        scratch.push_str(ascii_str(text));
        scratch.make_ascii_lowercase();
    } else {
        scratch.push_str(&decode_ignoring_invalid(text).to_lowercase());
    }
    Words {
        text: scratch,
        pos: 0,
        ascii,
    }
}

/// The iterator [`python_words`] returns.
#[derive(Debug, Clone)]
pub struct Words<'a> {
    text: &'a str,
    pos: usize,
    ascii: bool,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    /// The ASCII scan is small enough to inline into a mapper's loop; other text takes a call.
    #[inline(always)]
    fn next(&mut self) -> Option<&'a str> {
        if !self.ascii {
            return self.next_unicode();
        }
        let (text, bytes) = (self.text, self.text.as_bytes());
        let n = bytes.len();
        let mut i = self.pos;
        while i < n && ASCII_WS[bytes[i] as usize] {
            i += 1;
        }
        let start = i;
        loop {
            i = next_control_or_space(bytes, i);
            if i >= n || ASCII_WS[bytes[i] as usize] {
                break;
            }
            i += 1; // a control character that is not white space: part of the word
        }
        self.pos = i;
        // Both ends are ASCII positions, hence character boundaries.
        (i > start).then(|| &text[start..i])
    }
}

impl<'a> Words<'a> {
    #[inline(never)]
    fn next_unicode(&mut self) -> Option<&'a str> {
        let text = self.text;
        let rest = &text[self.pos..];
        let skipped = rest.len() - rest.trim_start_matches(is_py_space).len();
        let word_start = self.pos + skipped;
        let word = &text[word_start..];
        let len = word.find(is_py_space).unwrap_or(word.len());
        self.pos = word_start + len;
        (len > 0).then(|| &word[..len])
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
        for word in python_words(record.bytes, &mut self.scratch) {
            ctx.emit_ref(word, 1)?;
        }
        Ok(())
    }

    /// An ASCII run is tokenised whole: its `\n` and `\r` are white space, so its words are
    /// its lines' words, without a call, an `is_ascii` test and a copy per line. Other runs
    /// go line by line, as Python decodes each line on its own.
    fn map_lines(
        &mut self,
        lines: &Lines<'_>,
        ctx: &mut MapContext<'_, String, u64>,
    ) -> UserResult {
        if !lines.bytes.is_ascii() {
            return map_each_line(self, lines, ctx);
        }
        for word in python_words(lines.bytes, &mut self.scratch) {
            ctx.emit_ref(word, 1)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Python's `text.lower().split()` for ASCII text, byte by byte.
    fn reference(text: &[u8]) -> Vec<String> {
        text.to_ascii_lowercase()
            .split(|&b| ASCII_WS[b as usize])
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }

    proptest! {
        #[test]
        fn ascii_words_are_pythons(text in proptest::collection::vec(0u8..0x80, 0..80)) {
            let mut scratch = String::new();
            let words: Vec<String> = python_words(&text, &mut scratch).map(String::from).collect();
            prop_assert_eq!(words, reference(&text));
        }

        #[test]
        fn words_of_mostly_letters(text in "[a-zA-Z\\x01\\x08\\x1b\\x1c\\x1f \\t]{0,64}") {
            let mut scratch = String::new();
            let words: Vec<String> =
                python_words(text.as_bytes(), &mut scratch).map(String::from).collect();
            prop_assert_eq!(words, reference(text.as_bytes()));
        }
    }

    #[test]
    fn control_characters_that_are_not_space_stay_in_words() {
        let mut scratch = String::new();
        let words: Vec<&str> = python_words(b"abcdefgh\x01ijklmnop\x1fQ", &mut scratch).collect();
        assert_eq!(words, ["abcdefgh\u{1}ijklmnop", "q"]);
    }
}
