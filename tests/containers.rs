//! The cluster in containers, as `deploy/docker` ships it: the image (a
//! base debootstrapped and imported locally, no registry, and this build's
//! binary) and the compose file, one master and two workers on a shared
//! volume. A job runs through the master's published port (its input
//! uploaded by the CLI); a worker container is killed mid-job; the job still
//! succeeds, the dead worker's attempts lost and run again on the other.
//!
//! Heavy, so ignored unless asked for (`cargo test -- --include-ignored`);
//! then it fails where Docker or Compose is missing (`.ci/run` leaves it out
//! by name, and says so, where no Docker Engine answers).

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ok(out: &Output) -> bool {
    out.status.success()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run a command")
}

/// `docker-compose`, or `docker compose`, whichever this machine has.
fn compose() -> Option<Vec<String>> {
    for c in [vec!["docker-compose"], vec!["docker", "compose"]] {
        let out = Command::new(c[0]).args(&c[1..]).arg("version").output();
        if out.is_ok_and(|o| o.status.success()) {
            return Some(c.into_iter().map(String::from).collect());
        }
    }
    None
}

fn docker_here() -> Option<Vec<String>> {
    let engine = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    let compose = compose();
    match (engine, compose) {
        (true, Some(c)) => Some(c),
        _ => {
            panic!("this test needs Docker Engine and Compose");
        }
    }
}

/// A compose project, taken down (volume included) when dropped.
struct Project {
    compose: Vec<String>,
    name: String,
    env: Vec<(String, String)>,
}

impl Project {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.compose[0]);
        c.args(&self.compose[1..])
            .arg("-f")
            .arg(repo().join("deploy/docker/compose.yaml"))
            .args(["-p", &self.name])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let out = run(self
            .cmd()
            .args(["down", "-v", "--remove-orphans", "-t", "2"]));
        if !ok(&out) {
            eprintln!("compose down: {}", text(&out));
        }
    }
}

fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// One compose cluster's life in order (build, start, run a job, kill a worker's container
// mid-attempt, check the job still succeeds): its steps share the cluster, which costs too
// much to start per step.
#[test]
#[ignore = "heavy, needs Docker Engine and Compose (builds images): cargo test -- --include-ignored"]
fn a_compose_cluster_runs_a_job_and_survives_a_killed_worker() {
    let Some(compose) = docker_here() else { return };
    let image = format!("gridmr:test-{}", std::process::id());
    let out = run(Command::new("bash")
        .arg(repo().join("deploy/docker/build-image.sh"))
        .arg(env!("CARGO_BIN_EXE_gridmr"))
        .arg(&image));
    assert!(ok(&out), "building the image: {}", text(&out));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let project = Project {
        compose,
        name: format!("gridmr-test-{}", std::process::id()),
        env: vec![
            ("GRIDMR_IMAGE".into(), image.clone()),
            ("GRIDMR_PORT".into(), port.to_string()),
            ("GRIDMR_WORKER_SLOTS".into(), "2".into()),
        ],
    };
    let up = run(project.cmd().args(["up", "-d", "--scale", "worker=2"]));
    assert!(ok(&up), "compose up: {}", text(&up));
    let url = format!("http://127.0.0.1:{port}");
    // The master makes the token on the volume; read it from there.
    let token = poll("the cluster token", || {
        let out = run(project.cmd().args([
            "exec",
            "-T",
            "master",
            "cat",
            "/shared/.gridmr/cluster.token",
        ]));
        ok(&out).then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| -> Option<Value> {
        http.get(format!("{url}{path}"))
            .bearer_auth(&token)
            .send()
            .ok()?
            .json()
            .ok()
    };
    poll("two live workers", || {
        let w = get("/workers")?;
        let live = w["workers"]
            .as_object()?
            .values()
            .filter(|w| w["alive"] == true)
            .count();
        (live == 2).then_some(())
    });

    // A job that takes a while, its input local to this host (uploaded).
    let local = tempfile::tempdir().unwrap();
    let input: PathBuf = local.path().join("lines.txt");
    let lines: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &lines).unwrap();
    let mapper = "python3 -c 'import sys, time\nfor i, l in enumerate(sys.stdin):\n    \
                  i % 500 or time.sleep(0.25)\n    sys.stdout.write(l)'";
    let out = run(Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args([
            "submit",
            "--master",
            &url,
            "--mapper",
            mapper,
            "--reducer",
            "wc -l",
        ])
        .args(["--input", input.to_str().unwrap(), "--map-splits", "4"])
        .args(["--reduce-partitions", "1"])
        .env("GRIDMR_TOKEN", &token));
    assert!(ok(&out), "submit: {}", text(&out));
    // Without --wait, submit prints the job's id alone.
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(id.starts_with("job-"), "submit: {}", text(&out));

    // Kill the container of a worker that is running an attempt.
    let victim = poll("an attempt running", || {
        let tasks = get(&format!("/jobs/{id}/tasks"))?;
        tasks["attempts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["outcome"] == "running"
                    && a["task"].as_str().is_some_and(|t| t.starts_with("map"))
            })
            .and_then(|a| a["worker_id"].as_str().map(str::to_owned))
    });
    // A worker's id is `<hostname>-<port>`, and its hostname its container's id.
    let container = victim.split('-').next().unwrap().to_owned();
    let kill = run(Command::new("docker").args(["kill", &container]));
    assert!(ok(&kill), "docker kill {container}: {}", text(&kill));

    let done = poll("the job to end", || {
        let s = get(&format!("/jobs/{id}"))?;
        s["status"]
            .as_str()
            .filter(|s| matches!(*s, "SUCCEEDED" | "FAILED" | "CANCELLED"))
            .map(|_| s.clone())
    });
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let result = http
        .get(format!("{url}/jobs/{id}/result?format=text"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        result.trim(),
        "40000",
        "every line reached the reducer once"
    );
    let tasks = get(&format!("/jobs/{id}/tasks")).unwrap();
    let attempts = tasks["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a["worker_id"] == victim.as_str() && a["outcome"] == "lost"),
        "the killed worker's attempt is lost: {tasks}"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a["worker_id"] != victim.as_str() && a["outcome"] == "succeeded"),
        "{tasks}"
    );
    drop(project);
    let _ = run(Command::new("docker").args(["image", "rm", "-f", &image]));
}
