//! Ready-made jobs: the examples GridMR ships with (those of Hadoop's
//! examples jar), usable as they are or as models. `docs/writing-jobs.md`
//! walks through them.
//!
//! | job | what it does | parameters |
//! |---|---|---|
//! | [`wordcount`] | counts words, tokenised as the original's `wordcount.py` | |
//! | [`grep`] | counts each distinct match of a regular expression | `pattern`, `group` |
//! | [`index`] | an inverted index: word → documents | |
//! | [`wordmean`] | the mean length of words | |
//! | [`pi`] | π by quasi-Monte Carlo over generated input | |
//! | [`join`] | a reduce-side join of two inputs | `join` |
//! | [`terasort`] | teragen, terasort (sampled total order), teravalidate | `terasort.samples` |

pub mod grep;
pub mod index;
pub mod join;
pub mod pi;
pub mod terasort;
pub mod wordcount;
pub mod wordmean;

use crate::registry::Registry;

/// Registers every job of this module under its name: `wordcount`, `grep`,
/// `invertedindex`, `wordmean`, `pi`, `join`, `teragen`, `terasort` and
/// `teravalidate`.
///
/// ```
/// let mut jobs = gridmr_core::Registry::new();
/// gridmr_core::bundled::register_all(&mut jobs);
/// assert!(jobs.get("terasort").is_ok());
/// ```
pub fn register_all(registry: &mut Registry) {
    registry
        .register(wordcount::job())
        .register(grep::job())
        .register(index::job())
        .register(wordmean::job())
        .register(pi::job())
        .register(join::job())
        .register(terasort::teragen())
        .register(terasort::terasort())
        .register(terasort::teravalidate());
}
