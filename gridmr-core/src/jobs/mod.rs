//! Ready-made jobs: the examples GridMR ships with, usable as they are or as models.

pub mod wordcount;
