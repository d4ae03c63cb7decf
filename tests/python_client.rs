//! The Python client (`clients/python`, standard library only) against a live master: every call,
//! its errors as the REST API gives them, token discovery, and the notebook-style example run
//! as a script.

mod common;

use common::{repo_data, Cluster};
use std::path::Path;
use std::process::Command;

fn python(cluster: &Cluster, script: &str, args: &[&str]) -> (bool, String) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/src");
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", src)
        .env("GRIDMR_MASTER", &cluster.url)
        .env("SHARED_DIR", cluster.shared.path())
        .env_remove("GRIDMR_TOKEN")
        .env_remove("GRIDMR_TOKEN_FILE")
        .env(
            "GRIDMR_CREDENTIALS",
            cluster.shared.path().join("no-credentials.json"),
        )
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const CALLS: &str = r#"
import sys
from gridmr_client import Client, GridMRError, JobFailed

script, text, slow, broken = sys.argv[1:5]
gm = Client()  # the master from GRIDMR_MASTER, the token from SHARED_DIR's file
assert gm.health()["ok"] is True
assert len(gm.workers()) == 2

# submit, wait, result, result_pairs, tasks, logs
job = gm.submit(script_url=script, input_url=text, partitions=2, force_distributed=True)
assert job["status"] == "QUEUED" and job["mode"] == "DISTRIBUTED", job
seen = []
done = gm.wait(job["job_id"], timeout=120, on_progress=lambda s: seen.append(s["status"]))
assert done["status"] == "SUCCEEDED" and seen[-1] == "SUCCEEDED", (done, seen)
lines = sorted(gm.result(job["job_id"]))
assert lines == ["grid\t2", "hola\t3", "mr\t1", "mundo\t2"], lines
assert dict(gm.result_pairs(job["job_id"]))["hola"] == 3
assert any(a["task"].startswith("map-") for a in gm.tasks(job["job_id"])["attempts"])
assert isinstance(gm.logs(job["job_id"], "map-00000"), list)
assert job["job_id"] in [j["job_id"] for j in gm.jobs()]

# errors as the REST API gives them
try:
    gm.status("job-999999")
    raise SystemExit("an unknown job answered")
except GridMRError as e:
    assert e.status == 404 and e.job_state == "UNKNOWN", (e.status, e.body)
try:
    gm.submit(script_url=script, input_url="/nowhere/at/all")
    raise SystemExit("a bad input was accepted")
except GridMRError as e:
    assert e.status == 400 and "input" in e.error, e.body
try:
    Client(token="w" * 43).jobs()
    raise SystemExit("a wrong token was accepted")
except GridMRError as e:
    assert e.status == 401, e.status

# a failing job raises JobFailed from wait, with the job's error
bad = gm.submit(script_url=broken, input_url=text)
try:
    gm.wait(bad["job_id"], timeout=120)
    raise SystemExit("a failing job succeeded")
except JobFailed as e:
    assert e.job["status"] == "FAILED" and "boom" in e.error, e.job

# cancel a running job; delete, twice
running = gm.submit(script_url=slow, input_url=text)
answer = gm.cancel(running["job_id"])
assert answer["cancelled"] is True and answer["status"] == "CANCELLED", answer
try:
    gm.wait(running["job_id"], timeout=60)
    raise SystemExit("a cancelled job succeeded")
except JobFailed as e:
    assert e.job["status"] == "CANCELLED"
assert gm.delete(job["job_id"])["deleted"] is True
try:
    gm.delete(job["job_id"])
    raise SystemExit("deleted twice")
except GridMRError as e:
    assert e.status == 404 and e.body.get("deleted") is False, e.body
print("all calls ok")
"#;

#[test]
fn the_python_client_speaks_the_whole_rest_api() {
    let cluster = Cluster::start(2, &[], &[]);
    let share = cluster.shared.path();
    let script = share.join("wordcount.py");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wordcount.py"),
        &script,
    )
    .unwrap();
    let slow = share.join("slow.py");
    std::fs::write(
        &slow,
        "import time\ndef map_func(line):\n    time.sleep(60)\n    return []\ndef reduce_func(k, v):\n    return k, len(v)\n",
    )
    .unwrap();
    let broken = share.join("broken.py");
    std::fs::write(
        &broken,
        "def map_func(line):\n    raise ValueError('boom')\ndef reduce_func(k, v):\n    return k, 1\n",
    )
    .unwrap();
    let text = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let (ok, said) = python(
        &cluster,
        CALLS,
        &[
            script.to_str().unwrap(),
            text.to_str().unwrap(),
            slow.to_str().unwrap(),
            broken.to_str().unwrap(),
        ],
    );
    assert!(ok && said.contains("all calls ok"), "{said}");

    // The notebook-style example, run as a script.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/examples/quickstart.py"),
    )
    .unwrap();
    let (ok, said) = python(
        &cluster,
        &example,
        &[script.to_str().unwrap(), text.to_str().unwrap()],
    );
    assert!(ok, "{said}");
    assert!(said.contains("       3 hola"), "{said}");
    assert!(said.contains("404 UNKNOWN"), "{said}");
}
