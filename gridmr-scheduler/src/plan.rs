//! Planning a job: the request as the master checked it, and the mode,
//! splits and partitions decided from it (the original's rule).

use crate::job::JobKind;
use crate::lifecycle::Mode;
use gridmr_core::input::{plan_splits, InputFile, InputFormat, InputSplit, SplitPolicy};
use gridmr_core::shuffle::{ShuffleMode, ShuffleSettings};
use gridmr_core::Params;
use std::path::PathBuf;

/// What `POST /jobs` asked for, checked.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobRequest {
    /// What it runs.
    pub kind: JobKind,
    /// Its first input (a file, folder or glob).
    pub input_path: PathBuf,
    /// Inputs read after `input_path`.
    #[serde(default)]
    pub more_inputs: Vec<PathBuf>,
    /// The job's parameters, as submitted.
    #[serde(default)]
    pub params: Params,
    /// The original's `partitions` (maps and reduces alike).
    pub partitions: Option<u32>,
    /// Map splits asked for.
    pub map_splits: Option<u32>,
    /// Reduce partitions asked for.
    pub reduce_partitions: Option<u32>,
    /// DISTRIBUTED whatever the input's size.
    pub force_distributed: bool,
    /// The map side's buffer, spill and compression settings.
    pub shuffle: ShuffleSettings,
    /// Longest a script task may run, seconds (0: the worker's default).
    pub timeout_s: u32,
    /// A job without reducers: map output is the job's output.
    pub map_only: bool,
    /// Where its map outputs are kept: the share, or the workers' disks.
    #[serde(default)]
    pub shuffle_mode: ShuffleMode,
    /// Where its output goes when not to the job's folder: an object-store prefix
    /// (`s3://bucket/prefix`), checked by the master.
    #[serde(default)]
    pub output_url: Option<String>,
}

impl JobRequest {
    /// A request for `kind` over `input_path` with everything else left to
    /// the defaults.
    pub fn new(kind: JobKind, input_path: PathBuf) -> Self {
        JobRequest {
            kind,
            input_path,
            more_inputs: Vec::new(),
            params: Params::new(),
            partitions: None,
            map_splits: None,
            reduce_partitions: None,
            force_distributed: false,
            shuffle: ShuffleSettings::default(),
            timeout_s: 0,
            map_only: false,
            shuffle_mode: ShuffleMode::Shared,
            output_url: None,
        }
    }

    /// Every input, `input_path` first, as specifications to list.
    pub fn input_specs(&self) -> Vec<String> {
        std::iter::once(&self.input_path)
            .chain(&self.more_inputs)
            .map(|p| p.display().to_string())
            .collect()
    }

    /// Whether the job's width (splits, partitions, and so its mode) comes
    /// from the live workers' slots because the request left it open.
    pub fn width_from_cluster(&self) -> bool {
        self.partitions.is_none() && (self.map_splits.is_none() || self.reduce_partitions.is_none())
    }
}

/// What preparing a job decided. Kept in the job's folder (`plan.json`)
/// so that a job can resume after a master restart with the same tasks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// SINGLE or DISTRIBUTED.
    pub mode: Mode,
    /// The inputs' bytes, together.
    pub input_size: u64,
    /// The map tasks' splits (none for SINGLE).
    pub splits: Vec<InputSplit>,
    /// Reduce tasks (1 for SINGLE, 0 for map-only).
    pub reduce_partitions: u32,
    /// Parameters the job's planning hook added (a typed DISTRIBUTED job's
    /// sampled split points, say).
    #[serde(default)]
    pub params: Params,
}

/// The reduce tasks a job asks for (`reduce_partitions`, else `partitions`), else `default`.
fn reduces(request: &JobRequest, default: u32) -> u32 {
    request
        .reduce_partitions
        .or(request.partitions)
        .unwrap_or(default)
        .max(1)
}

/// The mode of a job whose input holds `input_size` bytes (`None`: not
/// known yet, so only what the request says for itself counts): the
/// original's rule, as [`plan`] applies it.
pub fn foresee(
    request: &JobRequest,
    input_size: Option<u64>,
    live_slots: u32,
    threshold: u64,
) -> Mode {
    let default = live_slots.max(1);
    let wide = reduces(request, default) > 1
        || request.map_splits.or(request.partitions).unwrap_or(default) > 1;
    // A map-only job always runs DISTRIBUTED: its output is its map tasks'.
    // So does a job that names its own width in the new fields
    // (`reduce_partitions`, `map_splits` above 1): an explicit count is
    // never dropped. The original's `partitions` keeps the original's rule.
    let explicit = request.reduce_partitions.is_some_and(|r| r > 1)
        || request.map_splits.is_some_and(|m| m > 1);
    let large = input_size.is_some_and(|size| size >= threshold);
    match request.map_only || request.force_distributed || explicit || (large && wide) {
        true => Mode::Distributed,
        false => Mode::Single,
    }
}

/// Decides a job's mode, splits and partitions (the original's rule, with
/// defaults from the cluster's size where it left them open).
pub fn plan(
    files: &[InputFile],
    format: InputFormat,
    combined: bool,
    request: &JobRequest,
    live_slots: u32,
    threshold: u64,
) -> Plan {
    let input_size: u64 = files.iter().map(|f| f.len).sum();
    let default = live_slots.max(1);
    let reduce = reduces(request, default);
    let maps = request.map_splits.or(request.partitions);
    if foresee(request, Some(input_size), live_slots, threshold) == Mode::Single {
        return Plan {
            mode: Mode::Single,
            input_size,
            splits: Vec::new(),
            reduce_partitions: 1,
            params: Params::new(),
        };
    }
    let policy = SplitPolicy {
        splits: maps,
        min_splits: default,
        ..SplitPolicy::default()
    };
    // Fitted to the map buffer only where map output is about the input's size (see
    // `SplitPolicy::fitting`); combined output is about the distinct keys'.
    let policy = if combined {
        policy
    } else {
        policy.fitting(&request.shuffle)
    };
    Plan {
        mode: Mode::Distributed,
        input_size,
        splits: plan_splits(files, &policy, format),
        reduce_partitions: if request.map_only { 0 } else { reduce },
        params: Params::new(),
    }
}
