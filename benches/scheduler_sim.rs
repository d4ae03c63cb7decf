//! The master's scheduler at scale, simulated (`gridmr_runtime::master::sim`):
//! 1,000 workers × 2 slots heartbeating every second, one job of 100,000
//! maps and 10,000 reduces of 5–15 s, 10 workers lost (and back 30 s later).
//! Prints decisions and heartbeats per second of scheduler CPU, memory per
//! task and per worker (from a counting allocator: the peak of live bytes
//! during the run, so an upper bound), and the makespan against the ideal.
//!
//! `cargo bench --bench scheduler_sim [-- WORKERS MAPS REDUCES]`

use gridmr::runtime::master::sim::{simulate, SimConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak live bytes above what was live before `f`.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let mut cfg = SimConfig::default();
    if let [w, m, r, ..] = args[..] {
        (cfg.workers, cfg.maps, cfg.reduces) = (w, m, r);
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    // Memory per worker: the same cluster with a one-task job, over workers.
    let (_, small) = peak_of(|| {
        simulate(&SimConfig {
            maps: 1,
            reduces: 1,
            losses: 0,
            ..cfg.clone()
        })
    });
    let (r, peak) = peak_of(|| simulate(&cfg));
    let tasks = u64::from(cfg.maps + cfg.reduces);
    println!("CPU: {cpu}");
    println!(
        "{} workers x {} slots, {} maps + {} reduces, {} losses: {}",
        cfg.workers,
        cfg.slots,
        cfg.maps,
        cfg.reduces,
        cfg.losses,
        if r.succeeded { "SUCCEEDED" } else { "FAILED" }
    );
    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| scheduling decisions / s of scheduler CPU | {:.0} ({} in {:.2} s) | ≥ 100,000 |",
        r.decisions_per_s(),
        r.decisions,
        r.schedule_time.as_secs_f64()
    );
    println!(
        "| heartbeats handled / s | {:.0} ({} in {:.3} s) | |",
        r.heartbeats_per_s(),
        r.heartbeats,
        r.heartbeat_time.as_secs_f64()
    );
    println!(
        "| outcomes handled / s | {:.0} ({} in {:.2} s) | |",
        r.completions as f64 / r.complete_time.as_secs_f64().max(1e-9),
        r.completions,
        r.complete_time.as_secs_f64()
    );
    println!(
        "| peak memory per task | {:.0} B ({:.1} MiB in all) | ≤ 1 KiB |",
        peak.saturating_sub(small) as f64 / tasks as f64,
        peak as f64 / f64::from(1 << 20)
    );
    println!(
        "| memory per worker | {:.0} B | |",
        small as f64 / f64::from(cfg.workers.max(1))
    );
    println!(
        "| makespan / ideal | {:.1} s / {:.1} s = {:.3} | ≤ 1.10 |",
        r.makespan_s,
        r.ideal_s,
        r.makespan_ratio()
    );
    println!(
        "| attempts lost with their worker | {} | |",
        r.lost_attempts
    );
    println!(
        "| wall time of the simulation | {:.1} s | |",
        r.wall.as_secs_f64()
    );
}
