//! Inverted index: for every word, the documents (input file names) it
//! occurs in.
//!
//! A word is a run of letters and digits, lower-cased. Output:
//! `word<TAB>N doc1,doc2,…`, N documents in name order (the format of the
//! MIT 6.5840 indexer). A combiner merges each map task's document sets, so
//! a task ships one set per distinct word.
//!
//! ```
//! use gridmr_core::{JobConfig, LocalEngine};
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("docs"))?;
//! std::fs::write(dir.path().join("docs/a.txt"), "The cat.\n")?;
//! std::fs::write(dir.path().join("docs/b.txt"), "the dog, the CAT\n")?;
//! let config = JobConfig::new(dir.path().join("docs").to_str().unwrap());
//! let out = LocalEngine::new(dir.path().join("work"))
//!     .run(&gridmr_core::bundled::index::job(), &config)?;
//! let mut index: Vec<(String, String)> = gridmr_core::output::read_output(&out.output_dir)?;
//! index.sort();
//! assert_eq!(index[0], ("cat".to_string(), "2 a.txt,b.txt".to_string()));
//! assert_eq!(index[1], ("dog".to_string(), "1 b.txt".to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::UserResult;
use crate::input::Record;
use crate::job::{Combiner, Job, MapContext, Mapper, ReduceContext, Reducer, Values};
use std::collections::BTreeSet;
use std::path::Path;

/// The words of `text` as the index cuts them: runs of alphanumeric
/// characters, lower-cased.
pub fn index_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A document's name: its file's name.
fn doc_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// Emits `(word, {document})` for every word.
#[derive(Debug, Clone, Default)]
pub struct IndexMapper {
    /// The document of the task's split, named once.
    doc: Option<String>,
}

impl Mapper for IndexMapper {
    type Key = String;
    type Value = BTreeSet<String>;

    fn map(
        &mut self,
        record: &Record<'_>,
        ctx: &mut MapContext<'_, String, BTreeSet<String>>,
    ) -> UserResult {
        let doc = self.doc.get_or_insert_with(|| doc_name(record.file));
        for word in index_words(&record.text()) {
            ctx.emit(word, BTreeSet::from([doc.clone()]))?;
        }
        Ok(())
    }
}

/// Merges document sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnionCombiner;

impl Combiner<String, BTreeSet<String>> for UnionCombiner {
    fn combine(&self, _key: &String, acc: &mut BTreeSet<String>, value: BTreeSet<String>) {
        acc.extend(value);
    }
}

/// Writes each word's documents: `N doc1,doc2,…`.
#[derive(Debug, Clone, Default)]
pub struct IndexReducer;

impl Reducer for IndexReducer {
    type Key = String;
    type Value = BTreeSet<String>;
    type OutKey = String;
    type OutValue = String;

    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, BTreeSet<String>>,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        let mut docs = BTreeSet::new();
        for v in values {
            docs.extend(v);
        }
        let list: Vec<&str> = docs.iter().map(String::as_str).collect();
        ctx.emit(key, &format!("{} {}", list.len(), list.join(",")))?;
        Ok(())
    }
}

/// The job, named `invertedindex`.
pub fn job() -> Job<IndexMapper, IndexReducer> {
    Job::new("invertedindex", IndexMapper::default(), IndexReducer).with_combiner(UnionCombiner)
}
