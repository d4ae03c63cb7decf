//! Several hosts, really: the master and each worker in a network namespace
//! of its own (a veth pair each, joined by a bridge), the shared folder seen
//! by all. One worker's link is cut in the middle of a job, then restored.
//! Needs root (`ip netns`); without it the test says so and does nothing.

mod common;

use common::{embedded_wordcount, repo_data, Cluster, Host};
use serde_json::json;
use std::process::Command;

/// Runs `ip …`; `false` if it fails (its error goes to the test's output).
fn ip(args: &[&str]) -> bool {
    let out = Command::new("ip").args(args).output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("ip {}: {e}", args.join(" "));
            false
        }
    }
}

/// Hosts on 10.<net>.0.0/24: one namespace each, joined by a bridge in a
/// hub namespace of their own (whose firewall is empty, whatever the
/// machine's is), and the test's own namespace on the bridge too, as
/// 10.<net>.0.254. Removed when dropped.
struct Net {
    tag: String,
    net: u32,
    hosts: Vec<String>,
}

impl Net {
    /// Makes `n` hosts, or `None` where namespaces cannot be made.
    fn new(n: usize) -> Option<Net> {
        let tag = format!("g{}", std::process::id() % 100_000);
        let net = 100 + std::process::id() % 100;
        let hub = format!("{tag}hub");
        let mut made = Net {
            tag: tag.clone(),
            net,
            hosts: Vec::new(),
        };
        if !ip(&["netns", "add", &hub]) {
            return None;
        }
        let (root, root_peer) = (format!("{tag}r"), format!("{tag}rh"));
        let ok = ip(&["-n", &hub, "link", "add", "hubbr", "type", "bridge"])
            && ip(&["-n", &hub, "link", "set", "hubbr", "up"])
            && ip(&[
                "link", "add", &root, "type", "veth", "peer", "name", &root_peer,
            ])
            && ip(&["link", "set", &root_peer, "netns", &hub])
            && ip(&["-n", &hub, "link", "set", &root_peer, "master", "hubbr"])
            && ip(&["-n", &hub, "link", "set", &root_peer, "up"])
            && ip(&["addr", "add", &format!("10.{net}.0.254/24"), "dev", &root])
            && ip(&["link", "set", &root, "up"]);
        if !ok {
            return Some(made).and(None);
        }
        for k in 1..=n {
            let ns = format!("{tag}h{k}");
            let (outer, inner) = (format!("{tag}v{k}"), format!("{tag}p{k}"));
            made.hosts.push(ns.clone());
            let ok = ip(&["netns", "add", &ns])
                && ip(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ])
                && ip(&["link", "set", &inner, "netns", &ns])
                && ip(&["link", "set", &outer, "netns", &hub])
                && ip(&["-n", &hub, "link", "set", &outer, "master", "hubbr"])
                && ip(&["-n", &hub, "link", "set", &outer, "up"])
                && ip(&[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("10.{net}.0.{k}/24"),
                    "dev",
                    &inner,
                ])
                && ip(&["-n", &ns, "link", "set", &inner, "up"])
                && ip(&["-n", &ns, "link", "set", "lo", "up"]);
            if !ok {
                return None;
            }
        }
        Some(made)
    }

    fn host(&self, k: usize) -> Host {
        Host {
            netns: Some(self.hosts[k - 1].clone()),
            ip: format!("10.{}.0.{k}", self.net),
        }
    }

    /// Takes host `k`'s link down or up (at the bridge).
    fn link(&self, k: usize, up: bool) {
        let hub = format!("{}hub", self.tag);
        let dev = format!("{}v{k}", self.tag);
        let state = if up { "up" } else { "down" };
        assert!(ip(&["-n", &hub, "link", "set", &dev, state]));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // A namespace's end of a veth pair goes with it, and the pair too.
        for ns in &self.hosts {
            ip(&["netns", "del", ns]);
        }
        ip(&["netns", "del", &format!("{}hub", self.tag)]);
        ip(&["link", "del", &format!("{}r", self.tag)]);
    }
}

/// The lab tests take the machine's namespaces and the root namespace's
/// routes one at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_lab_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
#[ignore = "heavy, needs root, iproute2, sshd and sshfs: cargo test -- --include-ignored (bash .ci/run installs them)"]
fn a_worker_cut_off_mid_job_is_replaced_and_comes_back() {
    let _lab = one_lab_at_a_time();
    cut_off_mid_job("shared");
}

/// The same with the worker-served shuffle: what the cut-off worker kept
/// cannot be fetched, and its maps run again.
#[test]
#[ignore = "heavy, needs root, iproute2, sshd and sshfs: cargo test -- --include-ignored (bash .ci/run installs them)"]
fn a_worker_cut_off_mid_job_is_replaced_and_comes_back_with_local_shuffle() {
    let _lab = one_lab_at_a_time();
    cut_off_mid_job("local");
}

fn cut_off_mid_job(shuffle_mode: &str) {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test needs root (network namespaces)"
    );
    let Some(net) = Net::new(3) else {
        panic!("this machine cannot make network namespaces and veth pairs (above: the command that failed)");
    };
    let master_env = [("WORKER_TIMEOUT_S", "1.5"), ("SPECULATION", "off")];
    let mut cluster = Cluster::start_master_on(&net.host(1), &master_env);
    let slow = [("GRIDMR_INJECT_DELAY_MS", "500")];
    cluster.add_worker_on(&net.host(2), "w1", &slow);
    cluster.add_worker_on(&net.host(3), "w2", &slow);
    cluster.wait_live_workers(2);
    let addresses = cluster.worker_addresses();
    assert!(
        addresses.iter().all(|(_, a)| a.starts_with("10.")),
        "each worker has its own address: {addresses:?}"
    );
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let id = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 6, "reduce_partitions": 2,
        "force_distributed": true, "shuffle_mode": shuffle_mode
    }));
    cluster.wait_running_on(&id, "w2");
    net.link(3, false);
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&id), expected);
    cluster.assert_lost_and_rerun(&id, "w2", "w1");
    // Restored, w2 heartbeats again and takes work again.
    net.link(3, true);
    cluster.wait_live_workers(2);
    let next = cluster.submit(json!({
        "job": "wordcount", "input_url": input, "map_splits": 4, "reduce_partitions": 2,
        "force_distributed": true, "shuffle_mode": shuffle_mode
    }));
    assert_eq!(cluster.wait(&next)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&next), expected);
    assert!(cluster
        .tasks(&next)
        .iter()
        .any(|a| a["worker_id"] == "w2" && a["outcome"] == "succeeded"));
    drop(cluster);
}

/// Whether this machine can run the multi-host lab (root, ip, tc, sshd,
/// sshfs); a test that asks for it fails where it cannot.
fn lab_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["ip", "tc", "sshfs", "/usr/sbin/sshd"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        root && tools,
        "this test needs root, ip, tc, sshd and sshfs (bash .ci/run installs them): root = {root}, tools = {tools}"
    );
    true
}

/// `benches/scaling.sh --smoke`: a master, three workers and a storage host
/// serving the share over sshfs, every link capped at 20 Mbit/s; a sort and a
/// word count in both shuffle modes, each output checked against the embedded
/// engine's by the script. The shared shuffle's bytes cross the storage link,
/// the local shuffle's do not.
#[test]
#[ignore = "heavy, needs root, iproute2, sshd and sshfs: cargo test -- --include-ignored (bash .ci/run installs them)"]
fn the_smallest_scaling_case_runs_across_capped_links_in_both_modes() {
    if !lab_available() {
        return;
    }
    let _lab = one_lab_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scaling.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--smoke")
        .env("BIN", env!("CARGO_BIN_EXE_gridmr"))
        .env("GRIDMR_BENCH_DIR", data.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
    // Bytes the storage host received (writes to the share) per job and mode.
    let results = std::fs::read_to_string(data.path().join("scaling/results.txt")).unwrap();
    let received = |job: &str, mode: &str| -> u64 {
        let line = results
            .lines()
            .find(|l| l.contains(&format!(" {job} {mode} capped ")))
            .unwrap_or_else(|| panic!("no {job} {mode} run: {results}"));
        let links = line.rsplit('|').next().unwrap();
        links
            .split(';')
            .map(str::split_whitespace)
            .find_map(|mut f| (f.next() == Some("s")).then(|| f.nth(1).unwrap().parse().unwrap()))
            .unwrap()
    };
    let (shared, local) = (
        received("terasort", "shared"),
        received("terasort", "local"),
    );
    assert!(
        (local as f64) < 0.75 * shared as f64,
        "the storage host took {local} bytes with the local shuffle, {shared} with the shared one"
    );
}
