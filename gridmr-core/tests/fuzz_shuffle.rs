//! Property-based fuzzing of the shuffle block reader: a run whose index or
//! data file has been corrupted, truncated or replaced by random bytes must
//! give an error (or records), never a panic or an unbounded allocation.

use gridmr_core::codec::encode_into;
use gridmr_core::shuffle::{
    Compression, RawGroups, RawMerge, RawOrder, RunIndex, RunWriter, SegmentReader,
};
use proptest::prelude::*;
use std::path::Path;

fn write_run(dir: &Path, compression: Compression) {
    let mut w = RunWriter::create(
        &dir.join("r.data"),
        &dir.join("r.index"),
        2,
        compression,
        128,
    )
    .unwrap();
    let (mut k, mut v) = (Vec::new(), Vec::new());
    for p in 0..2u32 {
        for i in 0..50u64 {
            k.clear();
            v.clear();
            encode_into(&format!("key-{p}-{i:03}"), &mut k).unwrap();
            encode_into(&i, &mut v).unwrap();
            w.push(p, &k, &v).unwrap();
        }
    }
    w.finish().unwrap();
}

/// Reads every partition to the end or to the first error.
fn read_all(dir: &Path) -> usize {
    let Ok(index) = RunIndex::read(&dir.join("r.index")) else {
        return 0;
    };
    let mut n = 0;
    for p in 0..index.partitions().min(16) {
        let Ok(mut r) = SegmentReader::open(&index, p) else {
            continue;
        };
        while let Ok(Some((_k, _v))) = r.next_record::<String, u64>() {
            n += 1;
            if n > 1_000 {
                break;
            }
        }
        // The byte-level merge and grouping reach the same bytes.
        let Ok(r) = SegmentReader::open(&index, p) else {
            continue;
        };
        if let Ok(merge) = RawMerge::new(RawOrder::Bytes, vec![r]) {
            let mut groups = RawGroups::new(merge);
            let mut key: Option<String> = None;
            let mut seen = 0;
            while let Ok(true) = groups.next_group(&mut key) {
                while let Ok(Some(_)) = groups.next_value::<u64>() {}
                seen += 1;
                if seen > 1_000 {
                    break;
                }
            }
        }
    }
    n
}

fn mutate(path: &Path, edits: &[(usize, u8)], cut: Option<usize>) {
    let mut bytes = std::fs::read(path).unwrap();
    for (at, b) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] ^= b | 1;
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c % (bytes.len() + 1));
    }
    std::fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn corrupted_runs_never_panic(
        lz4 in any::<bool>(),
        in_index in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in prop::option::of(any::<usize>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        write_run(dir.path(), compression);
        let target = dir.path().join(if in_index { "r.index" } else { "r.data" });
        mutate(&target, &edits, cut);
        let n = read_all(dir.path());
        prop_assert!(n <= 100);
    }

    #[test]
    fn random_files_never_panic(
        index in prop::collection::vec(any::<u8>(), 0..512),
        data in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.index"), &index).unwrap();
        std::fs::write(dir.path().join("r.data"), &data).unwrap();
        read_all(dir.path());
    }
}
