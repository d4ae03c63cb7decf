//! Conversions between protocol messages and `gridmr-core`'s task types.
//!
//! The master builds [`proto::MapTask`] / [`proto::ReduceTask`] from core
//! tasks; the worker turns them back into core tasks with the checks a
//! message from the network needs (no zero partitions, no empty paths).

use crate::error::{Error, Result};
use crate::proto;
use gridmr_core::input::InputSplit;
use gridmr_core::shuffle::{Compression, ShuffleSettings};
use gridmr_core::task::{MapTarget, MapTask, ReduceTask};
use gridmr_core::{Counters, JobId, Params, WorkerId};
use std::path::PathBuf;

/// Counters as protocol messages.
pub fn counters_to_wire(counters: &Counters) -> Vec<proto::Counter> {
    counters
        .iter()
        .map(|(group, name, value)| proto::Counter {
            group: group.to_owned(),
            name: name.to_owned(),
            value,
        })
        .collect()
}

/// Counters from protocol messages (repeated names are summed).
///
/// ```
/// use gridmr_core::Counters;
/// use gridmr_net::wire::{counters_from_wire, counters_to_wire};
/// let mut c = Counters::default();
/// c.add("app", "lines", 7);
/// assert_eq!(counters_from_wire(&counters_to_wire(&c)), c);
/// ```
pub fn counters_from_wire(counters: &[proto::Counter]) -> Counters {
    let mut out = Counters::default();
    for c in counters {
        out.add(&c.group, &c.name, c.value);
    }
    out
}

/// Shuffle settings as a protocol message.
pub fn shuffle_to_wire(s: &ShuffleSettings) -> proto::ShuffleOptions {
    proto::ShuffleOptions {
        sort_buffer_bytes: s.sort_buffer_bytes,
        merge_factor: u32::try_from(s.merge_factor).unwrap_or(u32::MAX),
        compress: s.compression == Compression::Lz4,
        block_bytes: u32::try_from(s.block_bytes).unwrap_or(u32::MAX),
    }
}

/// Shuffle settings from a protocol message; zero fields take the defaults.
pub fn shuffle_from_wire(o: Option<&proto::ShuffleOptions>) -> ShuffleSettings {
    let mut s = ShuffleSettings::default();
    if let Some(o) = o {
        // Clamped to what a submission may ask for: a message must not make
        // a worker allocate without bound.
        if o.sort_buffer_bytes > 0 {
            s.sort_buffer_bytes = o.sort_buffer_bytes.clamp(64 << 10, 16 << 30);
        }
        if o.merge_factor >= 2 {
            s.merge_factor = (o.merge_factor as usize).min(1024);
        }
        if o.block_bytes > 0 {
            s.block_bytes = (o.block_bytes as usize).clamp(4 << 10, 64 << 20);
        }
        if o.compress {
            s.compression = Compression::Lz4;
        }
    }
    s
}

/// A map task as a protocol message. `chunk_id` is the task id
/// (`map-NNNNN`), as the original named chunks. A map-only task
/// ([`MapTarget::Direct`]) is sent with `map_only_output` set, one partition
/// and no shuffle folder.
pub fn map_task_to_wire(task: &MapTask, job_name: &str, script_path: &str) -> proto::MapTask {
    let (shuffle_dir, partitions, map_only_output) = match &task.target {
        MapTarget::Shuffle {
            dir, partitions, ..
        } => (dir.display().to_string(), *partitions, None),
        MapTarget::Direct { out } => (String::new(), 1, Some(out.display().to_string())),
    };
    let job_dir = match &task.target {
        MapTarget::Shuffle {
            job_dir: Some(j), ..
        } => j.display().to_string(),
        _ => String::new(),
    };
    proto::MapTask {
        job_id: task.job_id.to_string(),
        script_path: script_path.to_owned(),
        input_chunk: task.split.path.display().to_string(),
        shuffle_dir,
        reduce_partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
        chunk_id: task.task_id().to_string(),
        attempt: task.attempt,
        job_name: job_name.to_owned(),
        split_start: task.split.start,
        split_end: task.split.end,
        index: task.index,
        shuffle: Some(shuffle_to_wire(&task.shuffle)),
        streaming: None,
        timeout_s: 0,
        map_only_output: map_only_output.unwrap_or_default(),
        input_index: task.split.input,
        params: task.params.clone().into(),
        local_shuffle: false,
        job_dir,
        output_url: String::new(),
    }
}

/// Most parameters a task message may carry, and their largest name and
/// value (a REST submission is held to less).
pub const MAX_WIRE_PARAMS: usize = 1024;
const MAX_WIRE_PARAM_NAME: usize = 1024;
const MAX_WIRE_PARAM_VALUE: usize = 1 << 20;

/// A job's parameters from a protocol message, bounded.
pub fn params_from_wire(
    message: &'static str,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<Params> {
    if params.len() > MAX_WIRE_PARAMS {
        return Err(invalid(
            message,
            format!("more than {MAX_WIRE_PARAMS} params"),
        ));
    }
    if let Some((k, _)) = params
        .iter()
        .find(|(k, v)| k.len() > MAX_WIRE_PARAM_NAME || v.len() > MAX_WIRE_PARAM_VALUE)
    {
        return Err(invalid(
            message,
            format!("param {:?} is too long", truncate(k, 64)),
        ));
    }
    Ok(Params::from(params.clone()))
}

fn invalid(message: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidMessage {
        message,
        reason: reason.into(),
    }
}

fn non_empty(message: &'static str, field: &str, value: &str) -> Result<PathBuf> {
    if value.is_empty() {
        return Err(invalid(message, format!("{field} is empty")));
    }
    Ok(PathBuf::from(value))
}

/// Most reduce partitions a task message may name (a REST submission is
/// held to `MAX_PARTITIONS`, 10,000 by default).
pub const MAX_WIRE_PARTITIONS: u32 = 100_000;

/// Checks that a job id is a plain name: it becomes part of file names.
pub fn check_job_id(message: &'static str, id: &str) -> Result<()> {
    job_id(message, id).map(drop)
}

/// A message's job id, read as a [`JobId`] (a plain name: it becomes part
/// of file names).
pub fn job_id(message: &'static str, id: &str) -> Result<JobId> {
    JobId::new(id).map_err(|_| {
        invalid(
            message,
            format!("job_id {:?} is not a plain name", truncate(id, 64)),
        )
    })
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A core map task from a protocol message, run by `worker_id`, whose own
/// folder (`WORKER_DIR`) is `worker_dir`.
///
/// A split of `0..0` means the whole file, as the original's chunk files.
/// A message with `map_only_output` set is a map-only task: its partitions
/// and shuffle folder are not read. One with `local_shuffle` writes to the
/// worker's own shuffle folder for the job
/// ([`layout::local_shuffle_dir`](gridmr_core::layout::local_shuffle_dir)).
pub fn map_task_from_wire(
    msg: &proto::MapTask,
    worker_id: &WorkerId,
    worker_dir: &std::path::Path,
) -> Result<MapTask> {
    const M: &str = "MapTask";
    let job_id = job_id(M, &msg.job_id)?;
    let target = if msg.map_only_output.is_empty() {
        let partitions = u32::try_from(msg.reduce_partitions)
            .ok()
            .filter(|p| *p > 0 && *p <= MAX_WIRE_PARTITIONS)
            .ok_or_else(|| invalid(M, format!("reduce_partitions is {}", msg.reduce_partitions)))?;
        let shuffle_dir = non_empty(M, "shuffle_dir", &msg.shuffle_dir)?;
        let (dir, job_dir) = if msg.local_shuffle {
            let local = gridmr_core::layout::local_shuffle_dir(worker_dir, &job_id);
            (local, shuffle_dir.parent().map(PathBuf::from))
        } else if msg.job_dir.is_empty() {
            (shuffle_dir, None)
        } else {
            (shuffle_dir, Some(PathBuf::from(&msg.job_dir)))
        };
        MapTarget::Shuffle {
            dir,
            partitions,
            job_dir,
        }
    } else {
        MapTarget::Direct {
            out: PathBuf::from(&msg.map_only_output),
        }
    };
    let (start, end) = match (msg.split_start, msg.split_end) {
        (0, 0) => (0, u64::MAX),
        (s, e) if s <= e => (s, e),
        (s, e) => return Err(invalid(M, format!("split {s}..{e} is backwards"))),
    };
    Ok(MapTask {
        job_id,
        index: map_index(msg),
        attempt: msg.attempt.max(1),
        worker_id: worker_id.clone(),
        split: InputSplit {
            path: non_empty(M, "input_chunk", &msg.input_chunk)?,
            start,
            end,
            input: msg.input_index,
        },
        target,
        shuffle: shuffle_from_wire(msg.shuffle.as_ref()),
        params: params_from_wire(M, &msg.params)?,
    })
}

/// A map message's task index: `index`, or for the original's master (which sends no
/// attempt and no index) the number its `chunk_id` ends with (`chunk-0003` is 3), so that
/// two chunks of one job never write the same files; a `chunk_id` without digits is
/// numbered by its hash.
fn map_index(msg: &proto::MapTask) -> u32 {
    if msg.attempt != 0 || msg.index != 0 || msg.chunk_id.is_empty() {
        return msg.index;
    }
    let digits: String = msg
        .chunk_id
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match digits.parse::<u32>() {
        Ok(n) if !digits.is_empty() && n < 100_000_000 => n,
        // FNV-1a: stable across builds, which is all a file name needs.
        _ => {
            let hash = msg.chunk_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (hash % 100_000_000) as u32
        }
    }
}

/// A reduce task as a protocol message.
pub fn reduce_task_to_wire(
    task: &ReduceTask,
    job_name: &str,
    script_path: &str,
) -> proto::ReduceTask {
    proto::ReduceTask {
        job_id: task.job_id.to_string(),
        script_path: script_path.to_owned(),
        partition_id: i32::try_from(task.partition).unwrap_or(i32::MAX),
        shuffle_inputs: task
            .map_outputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        output_path: task.output_dir.display().to_string(),
        attempt: task.attempt,
        job_name: job_name.to_owned(),
        streaming: None,
        timeout_s: 0,
        params: task.params.clone().into(),
        remote_inputs: Vec::new(),
        output_url: String::new(),
    }
}

/// A committed map output a reduce fetches from the worker that keeps it
/// (`SHUFFLE=local`), checked: a worker id, an address, and an index file's
/// plain name (`map-NNNNN-aA.index`, nothing that could leave a folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInput {
    /// The map it came from (its position in the message).
    pub map: u32,
    /// The worker that keeps it.
    pub worker_id: WorkerId,
    /// Where that worker's gRPC service listens (`host:port`).
    pub address: String,
    /// The index file's plain name there.
    pub index_name: String,
}

/// The remote inputs of a reduce message (`SHUFFLE=local`), in map order.
/// A source whose holder the master did not know has an empty address: it
/// is kept, and its fetch fails as a lost output.
pub fn remote_inputs_from_wire(msg: &proto::ReduceTask) -> Result<Vec<RemoteInput>> {
    const M: &str = "ReduceTask";
    if msg.remote_inputs.len() > 1_000_000 {
        return Err(invalid(M, "more than 1,000,000 remote_inputs"));
    }
    let mut inputs = Vec::with_capacity(msg.remote_inputs.len());
    for (map, s) in msg.remote_inputs.iter().enumerate() {
        let worker_id: WorkerId = s
            .worker_id
            .parse()
            .map_err(|e| invalid(M, format!("remote_inputs[{map}].worker_id: {e}")))?;
        if gridmr_core::layout::MapOutput::parse_index_name(&s.index_name).is_none() {
            return Err(invalid(
                M,
                format!(
                    "remote_inputs[{map}].index_name {:?} is not a map output's index name",
                    truncate(&s.index_name, 64)
                ),
            ));
        }
        if s.address.len() > 1024 || s.address.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid(
                M,
                format!("remote_inputs[{map}].address is not host:port"),
            ));
        }
        inputs.push(RemoteInput {
            map: map as u32,
            worker_id,
            address: s.address.clone(),
            index_name: s.index_name.clone(),
        });
    }
    Ok(inputs)
}

/// A core reduce task from a protocol message, run by `worker_id`.
pub fn reduce_task_from_wire(msg: &proto::ReduceTask, worker_id: &WorkerId) -> Result<ReduceTask> {
    const M: &str = "ReduceTask";
    let job_id = job_id(M, &msg.job_id)?;
    let partition = u32::try_from(msg.partition_id)
        .ok()
        .filter(|p| *p < MAX_WIRE_PARTITIONS)
        .ok_or_else(|| invalid(M, format!("partition_id is {}", msg.partition_id)))?;
    if msg.shuffle_inputs.len() > 1_000_000 {
        return Err(invalid(M, "more than 1,000,000 shuffle_inputs"));
    }
    let mut map_outputs = Vec::with_capacity(msg.shuffle_inputs.len());
    for p in &msg.shuffle_inputs {
        let path = non_empty(M, "shuffle_inputs", p)?;
        // The original's master passes on a map's `partition_files`, which name the data
        // file: its index lies beside it.
        let seed_data = msg.attempt == 0 && path.extension().is_some_and(|e| e == "data");
        map_outputs.push(match seed_data {
            true => path.with_extension("index"),
            false => path,
        });
    }
    Ok(ReduceTask {
        job_id,
        partition,
        attempt: msg.attempt.max(1),
        worker_id: worker_id.clone(),
        map_outputs,
        output_dir: non_empty(M, "output_path", &msg.output_path)?,
        params: params_from_wire(M, &msg.params)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_local_map_writes_below_its_worker_and_remote_inputs_are_checked() {
        let wire = proto::MapTask {
            local_shuffle: true,
            ..map_task_to_wire(&map_task(), "wc", "")
        };
        let t = map_task_from_wire(&wire, &w(), Path::new("/w")).unwrap();
        assert_eq!(t.target.dir(), Path::new("/w/shuffle/j1"));
        // Its logs and working folders stay in the job's folder on the share,
        // also through a child process's message.
        assert_eq!(t.target.job_dir(), Path::new("/data/jobs/j1"));
        let again = map_task_from_wire(&map_task_to_wire(&t, "wc", ""), &w(), Path::new("/x"));
        assert_eq!(again.unwrap(), t);
        let source = |name: &str, address: &str| proto::ShuffleSource {
            worker_id: "w2".into(),
            address: address.into(),
            index_name: name.into(),
        };
        let msg = proto::ReduceTask {
            remote_inputs: vec![
                source("map-00000-a1.index", "h:1"),
                source("map-00001-a3.index", ""),
            ],
            ..Default::default()
        };
        let inputs = remote_inputs_from_wire(&msg).unwrap();
        assert_eq!(inputs[1].map, 1);
        assert_eq!(inputs[1].index_name, "map-00001-a3.index");
        for (name, address) in [
            ("../map-00000-a1.index", "h:1"),
            ("map-00000-a1.data", "h:1"),
            ("/etc/passwd", "h:1"),
            ("map-00000-a1.index", "h:1/x"),
        ] {
            let bad = proto::ReduceTask {
                remote_inputs: vec![source(name, address)],
                ..Default::default()
            };
            assert!(remote_inputs_from_wire(&bad).is_err(), "{name} {address}");
        }
    }

    fn w() -> WorkerId {
        "w".parse().unwrap()
    }

    fn map_task() -> MapTask {
        MapTask {
            job_id: "j1".parse().unwrap(),
            index: 3,
            attempt: 2,
            worker_id: w(),
            split: InputSplit {
                path: "/data/in.txt".into(),
                start: 10,
                end: 99,
                input: 1,
            },
            target: MapTarget::Shuffle {
                dir: "/data/jobs/j1/shuffle".into(),
                partitions: 4,
                job_dir: None,
            },
            shuffle: ShuffleSettings {
                compression: Compression::Lz4,
                ..ShuffleSettings::default()
            },
            params: Params::new().with("pattern", "a+"),
        }
    }

    #[test]
    fn map_task_round_trips() {
        let t = map_task();
        let wire = map_task_to_wire(&t, "wordcount", "");
        assert_eq!(wire.chunk_id, "map-00003");
        assert_eq!(map_task_from_wire(&wire, &w(), Path::new("/w")).unwrap(), t);
        // A map-only task: no partitions or shuffle folder on the wire.
        let direct = MapTask {
            target: MapTarget::Direct {
                out: "/data/jobs/j1/out".into(),
            },
            ..map_task()
        };
        let wire = map_task_to_wire(&direct, "wordcount", "");
        assert_eq!((wire.reduce_partitions, wire.shuffle_dir.as_str()), (1, ""));
        assert_eq!(
            map_task_from_wire(&wire, &w(), Path::new("/w")).unwrap(),
            direct
        );
    }

    #[test]
    fn original_map_message_means_whole_chunk() {
        let wire = proto::MapTask {
            job_id: "j".parse().unwrap(),
            script_path: "/s.py".into(),
            input_chunk: "/data/chunk-0001".into(),
            shuffle_dir: "/data/shuffle".into(),
            reduce_partitions: 2,
            chunk_id: "1".into(),
            ..Default::default()
        };
        let t = map_task_from_wire(&wire, &w(), Path::new("/w")).unwrap();
        assert_eq!((t.split.start, t.split.end), (0, u64::MAX));
        assert_eq!(t.attempt, 1);
        assert_eq!(t.shuffle, ShuffleSettings::default());
    }

    #[test]
    fn bad_map_messages_are_refused() {
        let good = map_task_to_wire(&map_task(), "wc", "");
        for (bad, what) in [
            (
                proto::MapTask {
                    reduce_partitions: 0,
                    ..good.clone()
                },
                "reduce_partitions",
            ),
            (
                proto::MapTask {
                    reduce_partitions: -3,
                    ..good.clone()
                },
                "reduce_partitions",
            ),
            (
                proto::MapTask {
                    input_chunk: String::new(),
                    ..good.clone()
                },
                "input_chunk",
            ),
            (
                proto::MapTask {
                    split_start: 9,
                    split_end: 2,
                    ..good.clone()
                },
                "backwards",
            ),
        ] {
            let err = map_task_from_wire(&bad, &w(), Path::new("/w"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{err}");
        }
    }

    #[test]
    fn reduce_task_round_trips_and_checks() {
        let t = ReduceTask {
            job_id: "j".parse().unwrap(),
            partition: 5,
            attempt: 1,
            worker_id: w(),
            map_outputs: vec!["/a.index".into(), "/b.index".into()],
            output_dir: "/out".into(),
            params: Params::new().with("join", "left"),
        };
        let wire = reduce_task_to_wire(&t, "wc", "");
        assert_eq!(reduce_task_from_wire(&wire, &w()).unwrap(), t);
        let bad = proto::ReduceTask {
            partition_id: -1,
            ..wire
        };
        assert!(reduce_task_from_wire(&bad, &w()).is_err());
    }

    #[test]
    fn original_messages_decode_with_new_fields_defaulted() {
        use prost::Message;
        // Encode a message with only the original's fields set, as the
        // original's Python stubs would, and decode it with ours.
        let original = proto::ReduceResult {
            job_id: "j".parse().unwrap(),
            worker_id: "w".into(),
            partition_id: 1,
            output_path: "/o".into(),
            success: true,
            error: String::new(),
            ..Default::default()
        };
        let bytes = original.encode_to_vec();
        let back = proto::ReduceResult::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, original);
        assert_eq!(back.attempt, 0);
    }
}
