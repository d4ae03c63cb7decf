//! The CLI uploads what it submits: local scripts, streaming files and
//! inputs outside the shared folder go up through `/uploads`, streamed, and
//! the README's commands work as printed from a checkout. The endpoint
//! refuses what it must (no token, names that leave the upload, files over
//! the cap), and uploads go with their job or expire.

mod common;

use common::{bare_client, repo_data, Cluster};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn gridmr(cluster: &Cluster, cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args(args)
        .current_dir(cwd)
        .env("GRIDMR_MASTER", &cluster.url)
        .env("SHARED_DIR", cluster.shared.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn job_id_in(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("submitted "))
        .unwrap_or_else(|| panic!("no job id in {stderr}"))
        .trim()
        .to_owned()
}

#[test]
fn the_readmes_commands_work_as_printed_from_a_checkout() {
    let cluster = Cluster::start(2, &[], &[]);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `gridmr submit --script examples/wordcount.py --input … --wait`, with
    // the script and the input in the checkout, outside the share.
    let (ok, _, err) = gridmr(
        &cluster,
        repo,
        &[
            "submit",
            "--script",
            "examples/wordcount.py",
            "--input",
            "data/samples",
            "--partitions",
            "2",
            "--wait",
        ],
    );
    assert!(ok, "{err}");
    assert!(err.contains("uploaded 4 file(s)"), "{err}");
    let id = job_id_in(&err);
    assert_eq!(
        cluster.result_lines(&id),
        common::embedded_wordcount(&repo_data("samples"))
    );
    // The job took its upload: it lives in the job's folder now.
    let (_, status) = cluster.get(&format!("/jobs/{id}"));
    let input = status["input_path"].as_str().unwrap().to_owned();
    assert!(
        input.contains(&format!("jobs/{id}/uploads/up-")),
        "{status}"
    );
    let left = std::fs::read_dir(cluster.shared.path().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "the upload was moved into the job");

    // The streaming example, files and input from the checkout.
    let (ok, _, err) = gridmr(
        &cluster,
        repo,
        &[
            "submit",
            "--mapper",
            "python3 mapper.py",
            "--reducer",
            "python3 reducer.py",
            "--file",
            "examples/streaming/mapper.py",
            "--file",
            "examples/streaming/reducer.py",
            "--input",
            "data/gutenberg/being_ernest.txt",
            "--wait",
        ],
    );
    assert!(ok, "{err}");
    let id = job_id_in(&err);
    assert_eq!(
        cluster.result_lines(&id),
        common::embedded_wordcount(&repo_data("gutenberg/being_ernest.txt"))
    );

    // A glob of local files, and a file already on the share (passed as is).
    let shared_input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let (ok, _, err) = gridmr(
        &cluster,
        repo,
        &[
            "submit",
            "--job",
            "wordcount",
            "--input",
            "data/samples/data*.txt",
            "--input",
            shared_input.to_str().unwrap(),
            "--wait",
        ],
    );
    assert!(ok, "{err}");
    let id = job_id_in(&err);
    assert!(err.contains("uploaded 2 file(s)"), "{err}");
    let (_, status) = cluster.get(&format!("/jobs/{id}"));
    assert_eq!(
        status["inputs"][0],
        shared_input.display().to_string(),
        "{status}"
    );
    // Purging the job removes its upload too.
    let job_dir = cluster.shared.path().join("jobs").join(&id);
    assert!(job_dir.join("uploads").is_dir());
    let (code, _) = cluster.delete(&format!("/jobs/{id}?purge=true"));
    assert_eq!(code, 200);
    assert!(!job_dir.exists());
}

#[test]
fn an_input_in_the_masters_input_roots_is_read_in_place() {
    let roots = tempfile::tempdir().unwrap();
    let root = roots.path().canonicalize().unwrap();
    std::fs::copy(repo_data("samples/input.txt"), root.join("input.txt")).unwrap();
    let env = [("INPUT_ROOTS", root.to_str().unwrap())];
    let cluster = Cluster::start(1, &env, &env);
    let (_, health) = cluster.get("/health");
    assert_eq!(health["input_roots"], json!([root.display().to_string()]));
    let input = root.join("input.txt");
    let (ok, _, err) = gridmr(
        &cluster,
        &root,
        &[
            "submit",
            "--job",
            "wordcount",
            "--input",
            input.to_str().unwrap(),
            "--wait",
        ],
    );
    assert!(ok, "{err}");
    assert!(!err.contains("uploaded"), "{err}");
    let id = job_id_in(&err);
    let (_, status) = cluster.get(&format!("/jobs/{id}"));
    assert_eq!(
        status["input_path"],
        input.display().to_string(),
        "{status}"
    );
    assert_eq!(
        cluster.result_lines(&id),
        common::embedded_wordcount(&repo_data("samples/input.txt"))
    );
}

#[test]
fn uploads_refuse_strangers_bad_names_and_oversized_files() {
    let cluster = Cluster::start(0, &[("MAX_UPLOAD_BYTES", "1000")], &[]);
    let url = |p: &str| format!("{}{p}", cluster.url);
    // No token: 401, and nothing is made.
    let resp = bare_client().post(url("/uploads")).send().unwrap();
    assert_eq!(resp.status(), 401);
    assert!(!cluster.shared.path().join("uploads").exists());
    let (code, up) = cluster.post_json("/uploads", &json!({}));
    assert_eq!(code, 200, "{up}");
    let id = up["upload_id"].as_str().unwrap().to_owned();
    let http = common::authed_client(cluster.shared.path());
    let put = |name: &str, body: Vec<u8>| {
        let resp = http
            .put(url(&format!("/uploads/{id}/{name}")))
            .body(body)
            .send()
            .unwrap();
        let code = resp.status().as_u16();
        (code, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let (code, ok) = put("in/a.txt", b"hello\n".to_vec());
    assert_eq!(code, 200, "{ok}");
    assert_eq!(ok["bytes"], 6);
    for (name, want) in [
        ("..%2F..%2Fetc%2Fx", 400),
        ("in/..%2F..%2Fx", 400),
        (".hidden", 400),
        ("in/a.txt", 409),
    ] {
        let (code, body) = put(name, b"x".to_vec());
        assert_eq!(code, want, "{name}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (code, body) = put("big.bin", vec![7u8; 1001]);
    assert_eq!(code, 413, "{body}");
    let (code, _) = put("a.txt", b"x".to_vec());
    assert_eq!(code, 200);
    // Another upload's id, a made-up one, a path outside.
    let (code, _) = cluster.delete("/uploads/up-00000000000000000000000000000000");
    assert_eq!(code, 404);
    // Raw bytes: an HTTP client resolves a `..` itself (even `%2E%2E`, as
    // the URL standard says); an attacker need not.
    let token = common::token(cluster.shared.path()).unwrap_or_default();
    let answer = raw_request(
        &cluster.url,
        &format!("DELETE /uploads/.. HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let dir = cluster.shared.path().join("uploads").join(&id);
    let mut names: Vec<String> = walk(&dir);
    names.sort();
    assert_eq!(names, ["a.txt", "in/a.txt"]);
    let (code, _) = cluster.delete(&format!("/uploads/{id}"));
    assert_eq!(code, 200);
    assert!(!dir.exists());
}

/// Sends `request` as it is to the master and returns its answer.
fn raw_request(url: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let addr = url
        .trim_start_matches("http://")
        .replace("0.0.0.0", "127.0.0.1");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
        } else {
            out.push(name);
        }
    }
    out
}

#[test]
fn a_large_upload_streams_through_and_untaken_uploads_expire() {
    let cluster = Cluster::start(1, &[("UPLOAD_TTL_S", "2")], &[]);
    // 96 MiB of lines, local to the CLI.
    let local = tempfile::tempdir().unwrap();
    let big = local.path().join("big.txt");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let line = b"alpha beta gamma delta epsilon zeta eta theta iota kappa\n";
        for _ in 0..(96 << 20) / line.len() {
            f.write_all(line).unwrap();
        }
    }
    let before = cluster.master_peak_rss_kib();
    let (ok, _, err) = gridmr(
        &cluster,
        local.path(),
        &[
            "submit",
            "--job",
            "wordcount",
            "--input",
            "big.txt",
            "--wait",
        ],
    );
    assert!(ok, "{err}");
    let grew_mib = (cluster.master_peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grew_mib < 48,
        "the master grew {grew_mib} MiB taking a 96 MiB upload"
    );
    let id = job_id_in(&err);
    assert!(cluster
        .result_lines(&id)
        .contains(&format!("kappa\t{}", (96 << 20) / 57)));
    // An upload no job takes is removed after UPLOAD_TTL_S.
    let (_, up) = cluster.post_json("/uploads", &json!({}));
    let dir = Path::new(up["path"].as_str().unwrap()).to_path_buf();
    assert!(dir.is_dir());
    cluster.poll("the untaken upload to expire", || {
        (!dir.exists()).then_some(())
    });
}

/// A local folder goes up as a folder input reads it: its hidden names are skipped and the
/// submitter is told so; a symbolic link in it is refused, not followed.
#[test]
fn a_folder_upload_says_what_it_skips_and_refuses_links() {
    let cluster = Cluster::start(1, &[], &[]);
    let local = tempfile::tempdir().unwrap();
    let books = local.path().join("books");
    std::fs::create_dir(&books).unwrap();
    std::fs::write(books.join("a.txt"), "x y x\n").unwrap();
    std::fs::write(books.join(".secret"), "s\n").unwrap();
    let books_arg = books.to_str().unwrap().to_owned();
    let (ok, _, err) = gridmr(
        &cluster,
        local.path(),
        &[
            "submit",
            "--job",
            "wordcount",
            "--input",
            &books_arg,
            "--wait",
        ],
    );
    assert!(ok, "{err}");
    assert!(err.contains("not uploaded") && err.contains("'.'"), "{err}");
    std::os::unix::fs::symlink("/etc/hostname", books.join("b.txt")).unwrap();
    let (ok, _, err) = gridmr(
        &cluster,
        local.path(),
        &["submit", "--job", "wordcount", "--input", &books_arg],
    );
    assert!(!ok && err.contains("symbolic link"), "{err}");
}
