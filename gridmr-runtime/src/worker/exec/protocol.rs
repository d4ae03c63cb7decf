//! The line protocol between the worker and a task process, in one place.
//!
//! Map side, the process's stdout, one line each:
//! - [`Encoding::Script`] (the Python driver, `driver.py`): `key<TAB>value`,
//!   or `key<TAB>value<TAB>count` for `count` equal pairs; the driver
//!   refuses keys and values holding a tab or a line break, so neither can
//!   be mistaken. The end of the output is the line [`END_LINE`]; output
//!   without it is a crashed script.
//! - [`Encoding::Streaming`] (Hadoop Streaming): `key<TAB>value`, the value
//!   being the rest of the line (tabs included); a line without a tab is a
//!   key with an empty value.
//!
//! Between map and reduce, [`Grouper`] keeps one shuffle record per distinct
//! key: the script's items joined by tabs (`value` or `value<CR>count`),
//! the streaming values joined by line feeds.
//!
//! Reduce side, the process's stdin, sorted by key: a script gets one
//! `key<TAB>items` line per record, which the driver expands; a streaming
//! command gets one `key<TAB>value` line per value ([`feed_pairs`]).

use gridmr_core::shuffle::{KWayMerge, MapSink};
use gridmr_core::task::{CancelFlag, Progress};
use hashbrown::hash_map::EntryRef;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The line the Python driver writes when its output is complete
/// (`END` in `driver.py`).
pub(crate) const END_LINE: &[u8] = b"\x00GRIDMR-END";

/// How a task process's lines are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// The Python driver's (original GridMR job scripts).
    Script,
    /// Hadoop Streaming's.
    Streaming,
}

fn io_err(e: gridmr_core::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A map task's output grouped by key, under a byte budget: one shuffle
/// record per distinct key instead of one per pair.
///
/// - A Python script's items are joined by tabs in arrival order, an item
///   being a value or `value<CR>count` (that many equal values); the driver
///   forbids tabs and line breaks inside keys and values, so neither can be
///   mistaken, and the reduce driver expands them.
/// - A streaming command's values are joined by line feeds (a value is the
///   rest of an output line, so it holds none); [`feed_pairs`] gives the
///   reducer one line per value again.
pub(crate) struct Grouper {
    table: hashbrown::HashMap<Vec<u8>, Vec<u8>, rustc_hash::FxBuildHasher>,
    bytes: u64,
    budget: u64,
}

/// A line of the Python driver's map output that is not `key<TAB>value`
/// or `key<TAB>value<TAB>count`: the driver (or a script writing to its
/// stdout) broke the protocol. Holds the line's first 200 bytes.
#[derive(Debug, thiserror::Error)]
#[error("unexpected map output line from the driver: {0:?}")]
pub(crate) struct BadLine(String);

impl Grouper {
    pub(crate) fn new(budget: u64) -> Self {
        Grouper {
            table: hashbrown::HashMap::default(),
            bytes: 0,
            budget: budget.max(1 << 16),
        }
    }

    /// The key's grouped values, `sep` already pushed after earlier ones.
    fn entry(&mut self, key: &[u8], sep: u8) -> &mut Vec<u8> {
        match self.table.entry_ref(key) {
            EntryRef::Occupied(e) => {
                self.bytes += 1;
                let values = e.into_mut();
                values.push(sep);
                values
            }
            EntryRef::Vacant(e) => {
                // Two allocations and a table slot.
                self.bytes += key.len() as u64 + 96;
                e.insert(Vec::new())
            }
        }
    }

    /// Adds one line of the Python driver, `key<TAB>value` or
    /// `key<TAB>value<TAB>count` (count ≥ 1); returns how many pairs it
    /// stands for.
    fn add_line(&mut self, line: &[u8]) -> Result<u64, BadLine> {
        let bad = || BadLine(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned());
        let tab = memchr_tab(line).ok_or_else(bad)?;
        let (key, item) = (&line[..tab], &line[tab + 1..]);
        let (value, count) = match memchr_tab(item) {
            None => (item, None),
            Some(j) => (&item[..j], Some(&item[j + 1..])),
        };
        let pairs = match count {
            None => 1,
            Some(c) => std::str::from_utf8(c)
                .ok()
                .and_then(|c| c.parse::<u64>().ok())
                .filter(|&n| n > 0)
                .ok_or_else(bad)?,
        };
        let entry = self.entry(key, b'\t');
        entry.extend_from_slice(value);
        let mut added = value.len();
        if let Some(c) = count.filter(|_| pairs > 1) {
            entry.push(b'\r');
            entry.extend_from_slice(c);
            added += 1 + c.len();
        }
        self.bytes += added as u64;
        Ok(pairs)
    }

    /// Adds one output line of a map process in `encoding`; returns how
    /// many pairs it stands for.
    pub(crate) fn add(&mut self, encoding: Encoding, line: &[u8]) -> Result<u64, BadLine> {
        match encoding {
            Encoding::Script => self.add_line(line),
            Encoding::Streaming => {
                self.add_streaming(line);
                Ok(1)
            }
        }
    }

    /// Adds one streaming output line.
    fn add_streaming(&mut self, line: &[u8]) {
        let (key, value) = split_at_tab(line);
        self.entry(key, b'\n').extend_from_slice(value);
        self.bytes += value.len() as u64;
    }

    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= self.budget
    }

    pub(crate) fn drain_into(
        &mut self,
        out: &mut MapSink<String, String>,
    ) -> gridmr_core::Result<()> {
        for (k, v) in self.table.drain() {
            out.emit(
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )?;
        }
        self.bytes = 0;
        Ok(())
    }
}

/// Splits a streaming output line at its first tab (no tab: the whole line
/// is the key, the value empty).
fn split_at_tab(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr_tab(line) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, b""),
    }
}

/// [`split_at_tab`], as strings.
pub(crate) fn split_line(line: &[u8]) -> (String, String) {
    let (k, v) = split_at_tab(line);
    (
        String::from_utf8_lossy(k).into_owned(),
        String::from_utf8_lossy(v).into_owned(),
    )
}

fn memchr_tab(line: &[u8]) -> Option<usize> {
    memchr::memchr(b'\t', line)
}

/// Feeds merged records to a process, sorted by key: for a Python script,
/// one `key<TAB>items` line per record (the driver expands the items); for a
/// streaming command, one `key<TAB>value` line per value of the record's
/// line-feed-joined values (see [`Grouper`]), an empty value as the bare
/// key, as `mapper | sort | reducer` would show a mapper line without a tab.
/// The shuffle records read are added to `progress` as they go.
pub(crate) fn feed_pairs(
    mut merge: KWayMerge<String, String>,
    records: Option<Arc<AtomicU64>>,
    encoding: Encoding,
    progress: Progress,
) -> impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static {
    move |w: &mut dyn Write| {
        let mut n = 0u64;
        let mut reported = 0u64;
        loop {
            let read = merge.records();
            if read - reported >= CancelFlag::CHECK_EVERY {
                progress.add(read - reported, read - reported);
                reported = read;
            }
            let Some((k, v)) = merge.next().map_err(io_err)? else {
                progress.add(merge.records() - reported, merge.records() - reported);
                break;
            };
            if encoding == Encoding::Script {
                for part in [k.as_bytes(), b"\t", v.as_bytes(), b"\n"] {
                    w.write_all(part)?;
                }
                n += 1;
                continue;
            }
            for value in v.split('\n') {
                w.write_all(k.as_bytes())?;
                if !value.is_empty() {
                    w.write_all(b"\t")?;
                    w.write_all(value.as_bytes())?;
                }
                w.write_all(b"\n")?;
                n += 1;
            }
        }
        if let Some(r) = records {
            r.store(n, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(g: &Grouper, key: &str) -> String {
        String::from_utf8(g.table[key.as_bytes()].clone()).unwrap()
    }

    #[test]
    fn the_grouper_keeps_counted_items_in_arrival_order() {
        let mut g = Grouper::new(1 << 20);
        let mut pairs = 0;
        for line in [
            "the\t1\t523",
            "a\tx",
            "the\t1",
            "the\tone\t2",
            "a\t\t7",
            "the\tz\t1",
        ] {
            pairs += g.add_line(line.as_bytes()).unwrap();
        }
        assert_eq!(pairs, 523 + 1 + 1 + 2 + 7 + 1);
        assert_eq!(items(&g, "the"), "1\r523\t1\tone\r2\tz");
        assert_eq!(items(&g, "a"), "x\t\r7");
        assert!(!g.is_full());
    }

    #[test]
    fn the_grouper_refuses_lines_the_driver_never_writes() {
        let mut g = Grouper::new(1 << 20);
        for line in ["no tab", "k\tv\tmany", "k\tv\t0", "k\tv\t-3", "k\tv\t2\t2"] {
            let e = g.add_line(line.as_bytes()).unwrap_err();
            assert!(
                e.to_string().contains("unexpected map output line"),
                "{line}: {e}"
            );
        }
        assert!(g.table.is_empty());
    }

    #[test]
    fn the_grouper_joins_streaming_values_by_line_feeds() {
        let mut g = Grouper::new(1 << 20);
        for line in ["k\tv1", "bare", "k\tv\twith tab", "k\t", "bare"] {
            g.add_streaming(line.as_bytes());
        }
        assert_eq!(items(&g, "k"), "v1\nv\twith tab\n");
        assert_eq!(items(&g, "bare"), "\n");
    }

    #[test]
    fn the_grouper_reports_full_at_its_budget() {
        let mut g = Grouper::new(1 << 16);
        let mut n = 0;
        while !g.is_full() {
            g.add_line(format!("key{n}\tvalue").as_bytes()).unwrap();
            n += 1;
        }
        assert!((400..1000).contains(&n), "{n} keys");
    }

    /// The contract with `driver.py`, end to end: a script's map output
    /// through the real driver, grouped as the worker groups it, fed back
    /// as the worker feeds a reduce, reduced by the driver: counted pairs
    /// expand again, numbers stay numbers, other values arrive as their
    /// `str()` (the original's contract), non-ASCII keys survive.
    #[test]
    fn map_and_reduce_lines_round_trip_through_the_driver() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let driver = dir.path().join("driver.py");
        std::fs::write(&driver, crate::worker::DRIVER).unwrap();
        let script = dir.path().join("job.py");
        std::fs::write(
            &script,
            "def map_func(line):\n    for w in line.split():\n        yield (w, 1)\n    yield ('len', len(line))\n    yield ('pair', (line[:1], 2))\n\n\
             def reduce_func(key, values):\n    return key, repr(sorted(values, key=repr))\n",
        )
        .unwrap();
        let python = std::env::var("GRIDMR_PYTHON").unwrap_or_else(|_| "python3".into());
        let run = |mode: &str, input: &[u8]| -> Vec<u8> {
            let mut child = match Command::new(&python)
                .args([driver.as_os_str(), mode.as_ref(), script.as_os_str()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!("{python}: {e} (the contract test needs Python 3)"),
            };
            child.stdin.take().unwrap().write_all(input).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "driver {mode} failed");
            out.stdout
        };
        let mapped = run("map", "the cat\nthe dog ñu\nthe cat\n".as_bytes());
        let mut g = Grouper::new(1 << 20);
        let mut pairs = 0;
        let mut ended = false;
        for line in mapped.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if line == END_LINE {
                ended = true;
                continue;
            }
            pairs += g.add(Encoding::Script, line).unwrap();
        }
        assert!(ended, "the driver ends its output with END_LINE");
        assert_eq!(pairs, 7 + 3 + 3);
        // As the reduce is fed: records sorted by key, `key<TAB>items`.
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = g.table.drain().collect();
        records.sort();
        let mut fed = Vec::new();
        for (k, v) in records {
            fed.extend_from_slice(&k);
            fed.push(b'\t');
            fed.extend_from_slice(&v);
            fed.push(b'\n');
        }
        let reduced = String::from_utf8(run("reduce", &fed)).unwrap();
        let lines: Vec<&str> = reduced
            .lines()
            .filter(|l| l.as_bytes() != END_LINE)
            .collect();
        assert_eq!(
            lines,
            [
                "cat\t[1, 1]",
                "dog\t[1]",
                // The original's lines keep their line feed.
                "len\t[11, 8, 8]",
                // Values cross as text: numbers come back as numbers,
                // anything else as its str(), as in the original.
                "pair\t[\"('t', 2)\", \"('t', 2)\", \"('t', 2)\"]",
                "the\t[1, 1, 1]",
                "ñu\t[1]",
            ]
        );
    }
}
