//! The cluster model: the scheduler simulation with its data plane
//! (`gridmr_runtime::master::sim` with a `DataConfig`), checked against the lab and used to
//! predict clusters the lab cannot hold.
//!
//! ```text
//! cargo bench --bench cluster_model -- calibrate RESULTS RATE_MBIT [objects]
//!     # RESULTS: benches/scaling.sh's results.txt (target/bench-data/scaling/results.txt;
//!     # `objects` for a DATA=objects run);
//!     # the CPU cost per byte comes from its uncapped N = 1 run, every capped TeraSort run is
//!     # simulated and set beside its measured makespan.
//! cargo bench --bench cluster_model -- predict MAP_CPU_NS_PER_BYTE REDUCE_CPU_NS_PER_BYTE
//!     # a 1 TB sort on 50 and 500 workers, both shuffles, the assumptions printed beside it.
//! ```

use gridmr::runtime::master::sim::{simulate, DataConfig, Shuffle, SimConfig};

/// One TeraSort run of the lab.
struct Run {
    n: u32,
    mode: Shuffle,
    capped: bool,
    makespan: f64,
    input: f64,
    shuffle: f64,
    output: f64,
    t_map: f64,
    t_reduce: f64,
    maps: u32,
}

fn parse(path: &str) -> Vec<Run> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter_map(|line| {
            let head = line.split('|').next()?;
            let f: Vec<&str> = head.split_whitespace().collect();
            if f.len() < 11 || f[1] != "terasort" {
                return None;
            }
            let num = |i: usize| f[i].parse::<f64>().ok();
            Some(Run {
                n: f[0].parse().ok()?,
                mode: if f[2] == "local" {
                    Shuffle::Local
                } else {
                    Shuffle::Shared
                },
                capped: f[3] == "capped",
                makespan: num(4)?,
                input: num(5)?,
                shuffle: num(6)?,
                output: num(7)?,
                t_map: num(8)?,
                t_reduce: num(9)?,
                maps: f[10].parse().ok()?,
            })
        })
        .collect()
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default()
}

/// The lab's machine: hosts of one machine's 2 cores, 1 slot each, the share on a storage host
/// behind a link like the workers' (benches/netlab.sh), disks in the page cache.
fn lab(run: &Run, rate: f64, map_cpu: f64, reduce_cpu: f64, objects: bool) -> SimConfig {
    SimConfig {
        workers: run.n,
        slots: 1,
        maps: run.maps,
        reduces: run.n * 2,
        losses: 0,
        data: Some(DataConfig {
            input_bytes: run.input,
            shuffle_ratio: run.shuffle / run.input,
            output_ratio: run.output / run.shuffle,
            shuffle: run.mode,
            link_bps: rate,
            storage_bps: rate,
            // DATA=objects: moto on a link of its own, not capped.
            objects_bps: objects.then_some(f64::INFINITY),
            disk_bps: 2e9,
            map_cpu_s_per_byte: map_cpu,
            reduce_cpu_s_per_byte: reduce_cpu,
            shared_cores: Some(2.0),
        }),
        ..SimConfig::default()
    }
}

fn calibrate(results: &str, rate_mbit: f64, objects: bool) {
    let runs = parse(results);
    let rate = rate_mbit * 1e6 / 8.0;
    let base = runs
        .iter()
        .find(|r| r.n == 1 && !r.capped)
        .expect("an uncapped TeraSort run at N = 1 (benches/scaling.sh makes one)");
    // One worker with one slot runs its tasks one at a time: a phase's time is its CPU.
    let map_cpu = base.t_map / base.input;
    let reduce_cpu = base.t_reduce / base.shuffle;
    println!("CPU: {}", cpu_name());
    println!(
        "from the uncapped N = 1 run: map {:.1} ns/byte, reduce {:.1} ns/byte; links {rate_mbit} Mbit/s",
        map_cpu * 1e9,
        reduce_cpu * 1e9
    );
    println!("| N | shuffle | input MB | measured | model | model / measured |");
    println!("|---|---|---|---|---|---|");
    for run in runs.iter().filter(|r| r.capped) {
        let r = simulate(&lab(run, rate, map_cpu, reduce_cpu, objects));
        assert!(r.succeeded);
        println!(
            "| {} | {} | {:.0} | {:.1} s | {:.1} s | {:.2} |",
            run.n,
            if run.mode == Shuffle::Local {
                "local"
            } else {
                "shared"
            },
            run.input / 1e6,
            run.makespan,
            r.makespan_s,
            r.makespan_s / run.makespan
        );
    }
}

fn predict(map_ns: f64, reduce_ns: f64) {
    const TB: f64 = 1e12;
    let gbit = 1e9 / 8.0;
    let split = f64::from(128u32 << 20);
    let maps = (TB / split).ceil() as u32;
    println!("1 TB sort (no combiner, shuffle = input = output), 128 MiB splits ({maps} maps), one reduce per slot.");
    println!(
        "Assumptions: 8 slots per worker, a core each; CPU {map_ns:.1} ns/byte map, {reduce_ns:.1} ns/byte reduce \
         (measured in the lab on {}); worker links 10 Gbit/s each way; worker disks 1 GB/s; the shared folder's \
         file server 10 Gbit/s each way; an object store of 100 Gbit/s each way in all; heartbeats 1 s.",
        cpu_name()
    );
    println!("| workers | input and output | shuffle | predicted makespan | the storage's floor |");
    println!("|---|---|---|---|---|");
    let server = 10.0 * gbit;
    for workers in [50u32, 500] {
        for objects in [false, true] {
            for mode in [Shuffle::Shared, Shuffle::Local] {
                let cfg = SimConfig {
                    workers,
                    slots: 8,
                    maps,
                    reduces: workers * 8,
                    losses: 0,
                    data: Some(DataConfig {
                        input_bytes: TB,
                        shuffle_ratio: 1.0,
                        output_ratio: 1.0,
                        shuffle: mode,
                        link_bps: 10.0 * gbit,
                        storage_bps: server,
                        objects_bps: objects.then_some(100.0 * gbit),
                        disk_bps: 1e9,
                        map_cpu_s_per_byte: map_ns * 1e-9,
                        reduce_cpu_s_per_byte: reduce_ns * 1e-9,
                        shared_cores: None,
                    }),
                    ..SimConfig::default()
                };
                let r = simulate(&cfg);
                assert!(r.succeeded);
                // What the storage must carry, phase by phase (reduces start after the maps):
                // the input, then the output, through the file server or the object store, and
                // with the shared shuffle the map output in, then out, through the file server.
                let data = if objects { 100.0 * gbit } else { server };
                let shuffle = if mode == Shuffle::Shared {
                    TB / server
                } else {
                    0.0
                };
                let floor = (TB / data).max(shuffle) + (TB / data).max(shuffle);
                println!(
                    "| {workers} | {} | {} | {:.0} s ({:.1} min) | {floor:.0} s |",
                    if objects {
                        "object store"
                    } else {
                        "file server"
                    },
                    if mode == Shuffle::Local {
                        "local"
                    } else {
                        "shared"
                    },
                    r.makespan_s,
                    r.makespan_s / 60.0,
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["calibrate", results, rate] => calibrate(results, rate.parse().expect("RATE_MBIT"), false),
        ["calibrate", results, rate, "objects"] => {
            calibrate(results, rate.parse().expect("RATE_MBIT"), true)
        }
        ["predict", map, reduce] => predict(map.parse().expect("ns"), reduce.parse().expect("ns")),
        _ => eprintln!(
            "usage: cluster_model calibrate RESULTS RATE_MBIT [objects] | predict MAP_NS REDUCE_NS"
        ),
    }
}
