//! Inputs and outputs in an object store, against a real S3-protocol server (moto, started
//! on loopback; `.ci/run` installs it): splits read with ranged GETs, parts uploaded by the
//! reduces and made visible only by the job's commit, `_SUCCESS` a manifest written last, and
//! a master killed mid-commit finishing the commit when it comes back.

mod common;

use common::{embedded_wordcount, repo_data, sorted_lines, Cluster};
use gridmr_runtime::objstore::output::{read_manifest, read_output, Manifest};
use gridmr_runtime::objstore::ObjectStores;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const SECRET: &str = "gridmr-test-secret-4f7e2a";

/// A moto S3 server on an ephemeral loopback port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Starts one, or says why it cannot (the test then fails: it was asked for).
    fn start() -> Option<Moto> {
        let script = "from moto.server import ThreadedMotoServer\n\
                      import sys, time\n\
                      s = ThreadedMotoServer(ip_address='127.0.0.1', port=0)\n\
                      s.start()\n\
                      print('port=%d' % s.get_host_and_port()[1], flush=True)\n\
                      sys.stdin.read()\n";
        let child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return skip(&format!("python3: {e}")),
        };
        // moto prints a line of its own first; the port is the line that is a number.
        let stdout = child.stdout.take().expect("stdout");
        let port = BufReader::new(stdout)
            .lines()
            .take(20)
            .map_while(Result::ok)
            .find_map(|line| line.trim().strip_prefix("port=")?.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return skip("moto is not installed (pip install 'moto[server]')");
        };
        Some(Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    fn http() -> reqwest::blocking::Client {
        reqwest::blocking::Client::new()
    }

    fn create_bucket(&self, bucket: &str) {
        let r = Self::http()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .expect("create bucket");
        assert!(r.status().is_success(), "create {bucket}: {}", r.status());
    }

    fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let r = Self::http()
            .put(format!("{}/{bucket}/{key}", self.endpoint))
            .body(body)
            .send()
            .expect("put");
        assert!(r.status().is_success(), "put {key}: {}", r.status());
    }

    /// Clients of both buckets, signed with the test's credentials.
    fn stores(&self) -> ObjectStores {
        let stores = ObjectStores::new(&["s3://gridmr-in", "s3://gridmr-out"]).expect("stores");
        for bucket in ["gridmr-in", "gridmr-out"] {
            let s3 = object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key(SECRET)
                .with_bucket_name(bucket)
                .build()
                .expect("client");
            let url = format!("s3://{bucket}").parse().expect("url");
            stores.insert(&url, std::sync::Arc::new(s3));
        }
        stores
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// The manifest of the output at `prefix`, if it is committed.
    fn manifest(&self, prefix: &str) -> Option<Manifest> {
        let out = format!("s3://gridmr-out/{prefix}").parse().expect("url");
        Self::runtime()
            .block_on(read_manifest(&self.stores(), &out))
            .ok()
    }

    /// The keys below `prefix` in the output bucket.
    fn keys(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        let stores = self.stores();
        let client = stores
            .client(&"s3://gridmr-out".parse().expect("url"))
            .expect("client");
        let path = object_store::path::Path::from(prefix);
        let listed: Vec<_> = Self::runtime()
            .block_on(client.list(Some(&path)).try_collect())
            .expect("list");
        let mut keys: Vec<String> = listed.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        keys
    }

    /// The environment master and workers get: the buckets they may use and the server's
    /// address and credentials.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OBJECT_BUCKETS", "s3://gridmr-in,s3://gridmr-out".into()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) -> Option<Moto> {
    panic!("this test needs an S3-protocol server, moto (pip install 'moto[server]'; bash .ci/run installs it): {why}");
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Puts `source` into the input bucket as two objects cut at a line boundary, plus a hidden
/// one that must not be read, and the same again with the first object gzipped; returns where
/// the text was cut.
fn put_books(moto: &Moto, source: &Path) -> usize {
    let text = std::fs::read(source).expect("source");
    let cut = text[..text.len() / 2]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    moto.create_bucket("gridmr-in");
    moto.create_bucket("gridmr-out");
    moto.put("gridmr-in", "books/a.txt", text[..cut].to_vec());
    moto.put("gridmr-in", "books/b.txt", text[cut..].to_vec());
    moto.put(
        "gridmr-in",
        "books/_hidden.txt",
        b"hidden hidden hidden\n".to_vec(),
    );
    // The same text again, its first half gzipped: read whole and decompressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &text[..cut]).expect("gzip");
    moto.put("gridmr-in", "zipped/a.txt.gz", gz.finish().expect("gzip"));
    moto.put("gridmr-in", "zipped/b.txt", text[cut..].to_vec());
    cut
}

/// The manifest's part names and their sizes' sum.
fn manifest(moto: &Moto, prefix: &str) -> (Vec<String>, u64) {
    let m = moto.manifest(prefix).expect("a committed output");
    (m.parts.iter().map(|p| p.name.clone()).collect(), m.size())
}

#[test]
#[ignore = "needs moto[server], an S3-protocol server: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn typed_and_script_jobs_read_from_and_commit_to_s3() {
    let Some(moto) = Moto::start() else { return };
    let env = moto.env();
    let cluster = Cluster::start(2, &pairs(&env), &pairs(&env));
    let source = repo_data("gutenberg/being_ernest.txt");
    let cut = put_books(&moto, &source);
    let expected = embedded_wordcount(&source);
    let script = cluster.put_input(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wordcount.py"),
        "wordcount.py",
    );
    let jobs = [
        (
            "typed",
            json!({"job": "wordcount", "shuffle_mode": "shared"}),
            "books/*.txt",
        ),
        (
            "script",
            json!({"script_url": script, "shuffle_mode": "local"}),
            "books/*.txt",
        ),
        (
            "gzip",
            json!({"script_url": script, "shuffle_mode": "shared"}),
            "zipped/",
        ),
    ];
    for (name, mut body, input) in jobs {
        body["input_url"] = json!(format!("s3://gridmr-in/{input}"));
        body["output_url"] = json!(format!("s3://gridmr-out/{name}"));
        body["map_splits"] = json!(6);
        body["reduce_partitions"] = json!(3);
        let id = cluster.submit(body);
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{name}: {done}");
        assert_eq!(done["mode"], "DISTRIBUTED", "{name}");
        assert_eq!(done["output_dir"], format!("s3://gridmr-out/{name}"));
        let (code, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
        assert_eq!(code, 200, "{name}: {text}");
        assert_eq!(sorted_lines(&text), expected, "{name}");
        assert!(!text.contains("hidden"), "{name}: a hidden object was read");
        // The parts are exactly what the manifest names, and nothing else is there.
        let (parts, size) = manifest(&moto, name);
        assert_eq!(
            parts,
            ["part-r-00000", "part-r-00001", "part-r-00002"],
            "{name}"
        );
        assert_eq!(size, text.len() as u64, "{name}");
        let mut want: Vec<String> = parts.iter().map(|p| format!("{name}/{p}")).collect();
        want.push(format!("{name}/_SUCCESS"));
        want.sort();
        assert_eq!(moto.keys(name), want, "{name}");
        // The library reads the same records.
        let out = format!("s3://gridmr-out/{name}").parse().expect("url");
        let records: Vec<(String, u64)> = Moto::runtime()
            .block_on(read_output(&moto.stores(), &out))
            .expect("read_output");
        assert_eq!(records.len(), expected.len(), "{name}");
        // The JSON form of the result is the same bytes.
        let (code, v) = cluster.get(&format!("/jobs/{id}/result"));
        assert_eq!(code, 200);
        assert_eq!(
            v["result"].as_str().map(sorted_lines),
            Some(expected.clone())
        );
    }
    // TeraSort: its planning hook samples the objects (ranged GETs from the master), and the
    // parts, in manifest order, are one total order of the input's rows. Over the half that is
    // gzipped, its sample is the text it decompresses to: every split point is a row's key.
    let source_text = std::fs::read_to_string(&source).expect("source");
    let row_keys: std::collections::HashSet<String> = source_text
        .lines()
        .map(|l| String::from_utf8_lossy(&l.as_bytes()[..l.len().min(10)]).into_owned())
        .collect();
    for (name, input, read) in [
        ("sorted", "books/", &source_text[..]),
        ("sorted-gz", "zipped/a.txt.gz", &source_text[..cut]),
    ] {
        let id = cluster.submit(json!({
            "job": "terasort", "input_url": format!("s3://gridmr-in/{input}"),
            "reduce_partitions": 3, "output_url": format!("s3://gridmr-out/{name}")
        }));
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{name}: {done}");
        let (_, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
        let keys: Vec<&[u8]> = text
            .lines()
            .map(|l| &l.as_bytes()[..l.len().min(10)])
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "{name}: not one total order"
        );
        let mut rows: Vec<&str> = text.lines().collect();
        let mut want: Vec<&str> = read.lines().collect();
        rows.sort_unstable();
        want.sort_unstable();
        assert_eq!(rows, want, "{name}: the rows changed");
        let points: Vec<String> = done["params"]["terasort.splits"]
            .as_str()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_else(|| panic!("{name}: no split points in {done}"));
        assert_eq!(points.len(), 2, "{name}: {points:?}");
        assert!(
            points.iter().all(|p| row_keys.contains(p)),
            "{name}: split points that are no row's key: {points:?}"
        );
    }
    // A map-only streaming job: its maps upload their parts (part-m-NNNNN).
    let id = cluster.submit(json!({
        "mapper": "awk 'tolower($0) ~ /earnest/'", "input_url": "s3://gridmr-in/books/", "map_splits": 4,
        "output_url": "s3://gridmr-out/grep"
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "map-only: {done}");
    let (parts, size) = manifest(&moto, "grep");
    assert!(
        parts.len() >= 2 && parts.iter().all(|p| p.starts_with("part-m-")),
        "{parts:?}"
    );
    let (_, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
    let want = std::fs::read_to_string(&source)
        .expect("source")
        .lines()
        .filter(|l| l.to_lowercase().contains("earnest"))
        .count();
    assert_eq!((text.lines().count(), text.len() as u64), (want, size));
    // The credentials are in no record and no log.
    let mut seen = Vec::new();
    for entry in walk(cluster.shared.path()) {
        if std::fs::read(&entry).is_ok_and(|b| String::from_utf8_lossy(&b).contains(SECRET)) {
            seen.push(entry.display().to_string());
        }
    }
    assert!(seen.is_empty(), "the secret key is in {seen:?}");
    assert!(!cluster.master_log().contains(SECRET));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files.extend(walk(&p)),
            Ok(t) if t.is_file() => files.push(p),
            _ => {}
        }
    }
    files
}

#[test]
#[ignore = "needs moto[server], an S3-protocol server: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn object_urls_outside_the_rules_are_refused() {
    let Some(moto) = Moto::start() else { return };
    let env = moto.env();
    let cluster = Cluster::start(1, &pairs(&env), &pairs(&env));
    put_books(&moto, &repo_data("gutenberg/being_ernest.txt"));
    moto.put("gridmr-out", "taken/part-r-00000", b"old\t1\n".to_vec());
    let base = json!({"job": "wordcount", "input_url": "s3://gridmr-in/books/"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, code, says) in [
        (
            with("input_url", json!("s3://other-bucket/books/")),
            400,
            "may not use",
        ),
        (
            with("input_url", json!("s3://gridmr-in/../etc")),
            400,
            "not a usable object URL",
        ),
        (
            with("output_url", json!("s3://other-bucket/out")),
            400,
            "may not use",
        ),
        (
            with("output_url", json!("/tmp/out")),
            400,
            "not an object-store URL",
        ),
        (
            with("output_url", json!("s3://gridmr-out/taken")),
            409,
            "already holds objects",
        ),
    ] {
        let (status, v) = cluster.post_json("/jobs", &body);
        assert_eq!(status, code, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(says)),
            "{body}: {v}"
        );
    }
    // An input that names nothing fails the job, with the reason.
    let id = cluster.submit(with("input_url", json!("s3://gridmr-in/none/*.txt")));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error"]
            .as_str()
            .is_some_and(|e| e.contains("names no object")),
        "{done}"
    );
    // The old object was left alone.
    assert_eq!(moto.keys("taken"), ["taken/part-r-00000"]);
}

/// A master killed after each step of an object commit: before `_SUCCESS` the output is not
/// committed (no manifest); after a restart the job succeeds with the whole output.
#[test]
#[ignore = "needs moto[server], an S3-protocol server: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn a_master_killed_mid_commit_finishes_the_object_commit() {
    let Some(moto) = Moto::start() else { return };
    let env = moto.env();
    let source = repo_data("gutenberg/being_ernest.txt");
    put_books(&moto, &source);
    let expected = embedded_wordcount(&source);
    for (i, step) in [
        "commit:recorded",
        "commit:part-renamed",
        "commit:attempts-removed",
    ]
    .iter()
    .enumerate()
    {
        let mut master_env = pairs(&env);
        master_env.push(("GRIDMR_INJECT_CRASH", step));
        let mut cluster = Cluster::start(2, &master_env, &pairs(&env));
        let prefix = format!("crash{i}");
        let id = cluster.submit(json!({
            "job": "wordcount", "input_url": "s3://gridmr-in/books/",
            "output_url": format!("s3://gridmr-out/{prefix}"), "reduce_partitions": 3
        }));
        let status = cluster.wait_master_exit();
        assert!(!status.success(), "{step}: the master should have crashed");
        assert!(
            moto.manifest(&prefix).is_none(),
            "{step}: committed before the commit ended"
        );
        cluster.restart_master(&pairs(&env));
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{step}: {done}");
        assert_eq!(cluster.result_lines(&id), expected, "{step}");
        let (parts, _) = manifest(&moto, &prefix);
        assert_eq!(parts.len(), 3, "{step}");
    }
}

#[test]
#[ignore = "needs moto[server], an S3-protocol server: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn reduces_of_an_object_output_are_sent_ahead_to_a_busy_worker() {
    let Some(moto) = Moto::start() else { return };
    let env = moto.env();
    let source = repo_data("gutenberg/being_ernest.txt");
    put_books(&moto, &source);
    let expected = embedded_wordcount(&source);
    // One worker with one slot, four reduces: with read-ahead two reduce attempts are on it at
    // once (one waiting for the slot the other gives up to upload); without, never.
    for (readahead, overlap) in [("1", true), ("0", false)] {
        let mut master_env = pairs(&env);
        master_env.push(("REDUCE_READAHEAD", readahead));
        let cluster = Cluster::start(1, &master_env, &pairs(&env));
        let prefix = format!("ahead-{readahead}");
        let id = cluster.submit(json!({
            "job": "wordcount", "input_url": "s3://gridmr-in/books/*.txt",
            "output_url": format!("s3://gridmr-out/{prefix}"), "shuffle_mode": "local",
            "map_splits": 2, "reduce_partitions": 4
        }));
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "readahead {readahead}: {done}");
        let (_, text) = cluster.get_text(&format!("/jobs/{id}/result?format=text"));
        assert_eq!(sorted_lines(&text), expected, "readahead {readahead}");
        let (code, tasks) = cluster.get(&format!("/jobs/{id}/tasks"));
        assert_eq!(code, 200);
        let reduces: Vec<(u64, u64)> = tasks["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .filter(|a| a["task"].as_str().is_some_and(|t| t.starts_with("reduce")))
            .map(|a| {
                assert_eq!(a["outcome"], "succeeded", "{a}");
                let at = |k: &str| a[k].as_u64().expect("a time");
                (at("started_ms"), at("finished_ms"))
            })
            .collect();
        assert_eq!(reduces.len(), 4, "one attempt each: {tasks}");
        let most = reduces
            .iter()
            .map(|&(start, _)| {
                reduces
                    .iter()
                    .filter(|&&(s, f)| s <= start && start < f)
                    .count()
            })
            .max();
        let want = if overlap { 2 } else { 1 };
        assert_eq!(most, Some(want), "readahead {readahead}: {reduces:?}");
        assert_eq!(manifest(&moto, &prefix).0.len(), 4);
    }
}
