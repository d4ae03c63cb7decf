//! Script jobs on a loopback cluster: the original's Python job scripts and
//! Hadoop-Streaming commands, their results, and their failures.

mod common;

use common::{embedded_wordcount, repo_data, sorted_lines, Cluster};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel)
}

fn write(cluster: &Cluster, name: &str, text: &str) -> PathBuf {
    let path = cluster.shared.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn counts(pairs: &[(&str, u32)]) -> Vec<String> {
    let mut v: Vec<String> = pairs.iter().map(|(k, n)| format!("{k}\t{n}")).collect();
    v.sort();
    v
}

#[test]
fn the_original_samples_with_a_python_job_script() {
    original_samples(&[]);
}

/// The same jobs with a fresh interpreter per task instead of the workers'
/// fork server (the default where attempts get cgroups): the same results.
#[test]
fn the_original_samples_with_a_fresh_python_per_task() {
    original_samples(&[("PYTHON_FORK_SERVER", "off")]);
}

fn original_samples(worker_env: &[(&str, &str)]) {
    let cluster = Cluster::start(2, &[], worker_env);
    let script = cluster.put_input(&example("wordcount.py"), "wordcount.py");
    let expected = [
        (
            "input.txt",
            counts(&[("hola", 3), ("mundo", 2), ("grid", 2), ("mr", 1)]),
        ),
        (
            "data1.txt",
            counts(&[
                ("el", 2),
                ("mundo", 2),
                ("hola", 1),
                ("cruel", 1),
                ("como", 1),
                ("esta", 1),
                ("arriba", 1),
                ("nacional", 1),
            ]),
        ),
        (
            "data2.txt",
            counts(&[
                ("el", 2),
                ("mundo", 2),
                ("esta", 1),
                ("patas", 1),
                ("arriba", 1),
                ("es", 1),
                ("muy", 1),
                ("bacano", 1),
            ]),
        ),
    ];
    let mut jobs = Vec::new();
    for (name, want) in &expected {
        let input = cluster.put_input(&repo_data(&format!("samples/{name}")), name);
        for body in [
            json!({"script_url": format!("nfs://{}", script.display()), "input_url": input}),
            json!({"script_url": format!("file://{}", script.display()), "input_url": input, "partitions": 3, "force_distributed": true}),
        ] {
            jobs.push((cluster.submit(body), want.clone()));
        }
    }
    for (id, want) in jobs {
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert!(done["script_path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{id}/script.py")));
        assert_eq!(cluster.result_lines(&id), want, "{id}");
        if done["mode"] == "DISTRIBUTED" && want.iter().any(|l| l.starts_with("grid")) {
            // Keys sit in the original's SHA-1 partitions (R = 3): hola 0,
            // grid 0, mr 1, mundo 2.
            let out = Path::new(done["output_dir"].as_str().unwrap());
            let part = |p: u32| {
                sorted_lines(&std::fs::read_to_string(out.join(format!("part-r-{p:05}"))).unwrap())
            };
            assert_eq!(part(0), ["grid\t2", "hola\t3"]);
            assert_eq!(part(1), ["mr\t1"]);
            assert_eq!(part(2), ["mundo\t2"]);
        }
    }
}

#[test]
fn process_environment_and_values_as_the_original() {
    let cluster = Cluster::start(2, &[], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    // process() in SINGLE mode; map_func/reduce_func otherwise. Values that
    // parse as ints arrive as ints, others as str; the task's environment.
    let script = write(
        &cluster,
        "job.py",
        r#"
import os

def map_func(line):
    yield ("task", os.environ["GRIDMR_TASK_ID"][:4])
    yield ("file", os.path.basename(os.environ["map_input_file"]))
    yield ("same", os.environ["mapreduce_map_input_file"] == os.environ["map_input_file"])
    yield ("n", 2)
    yield ("word", line.split()[0])

def reduce_func(key, values):
    kinds = sorted({type(v).__name__ for v in values})
    if key == "n":
        return key, sum(values)
    return key, "/".join(sorted({str(v) for v in values})) + ":" + ",".join(kinds)

def process(input_path, output_path):
    # The original's layout: input/input.data in, out/result.txt out, side files beside it.
    with open(input_path) as f, open(output_path, "w") as out:
        out.write("lines\t%d\n" % sum(1 for _ in f))
        out.write("paths\t%s %s\n" % ("/".join(input_path.split("/")[-2:]),
                                        "/".join(output_path.split("/")[-2:])))
    with open(os.path.join(os.path.dirname(output_path), "stats.json"), "w") as side:
        side.write('{"ok": true}')
"#,
    );
    let single = cluster.submit(json!({"script_url": script, "input_url": input}));
    let dist = cluster.submit(json!({"script_url": script, "input_url": input, "partitions": 2, "force_distributed": true}));
    let done = cluster.wait(&single);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        cluster.result_lines(&single),
        ["lines\t3", "paths\tinput/input.data out/result.txt"]
    );
    let out = std::path::Path::new(done["output_dir"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(out.join("stats.json")).unwrap(),
        r#"{"ok": true}"#,
        "a file process() wrote beside its output is kept in out/"
    );
    let done = cluster.wait(&dist);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        cluster.result_lines(&dist),
        [
            "file\tinput.txt:str",
            "n\t6",
            "same\tTrue:str",
            "task\tmap-:str",
            "word\tHola/hola/mundo:str",
        ]
    );
}

/// The original's script contract where it differs between modes: in SINGLE
/// mode `reduce_func` gets the objects `map_func` returned (floats, None,
/// lists, tuples, dicts, booleans); in DISTRIBUTED mode their text. In both, a
/// value may hold a tab (a key may not), and a file's last line without a
/// line feed reaches `map_func` without one.
#[test]
fn single_mode_values_are_objects_tabs_travel_in_values_and_the_last_line_is_exact() {
    let cluster = Cluster::start(2, &[], &[]);
    let input = write(&cluster, "words.txt", "ab abc\nabcd a\tb\nlast");
    let script = write(
        &cluster,
        "objects.py",
        r#"
def map_func(line):
    for w in line.split():
        yield (w[0], float(len(w)))
    yield ("ends", "newline" if line.endswith("\n") else repr(line))
    yield ("objects", None)
    yield ("objects", [1, "x"])
    yield ("objects", (2, 3.5))
    yield ("objects", {"k": [True]})
    yield ("tab", "x\ty")
    yield ("esc", "\x1bR[1]")

def reduce_func(key, values):
    if key == "a" and all(type(v) is float for v in values):
        return key, sum(values) / len(values)
    if key == "ends":
        return key, ",".join(sorted(str(v) for v in values))
    return key, ",".join(sorted({type(v).__name__ + "=" + repr(v) for v in values}))
"#,
    );
    let single = cluster.submit(json!({"script_url": script, "input_url": input}));
    let dist = cluster.submit(json!({
        "script_url": script, "input_url": input, "partitions": 2, "force_distributed": true
    }));
    let done = cluster.wait(&single);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["mode"], "SINGLE");
    assert_eq!(
        cluster.result_lines(&single),
        [
            "a\t2.5",
            "b\tfloat=1.0",
            "ends\t'last',newline,newline",
            "esc\tstr='\\x1bR[1]'",
            "l\tfloat=4.0",
            "objects\tNoneType=None,dict={'k': [True]},list=[1, 'x'],tuple=(2, 3.5)",
            "tab\tstr='x\\ty'",
        ]
    );
    let done = cluster.wait(&dist);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    // DISTRIBUTED mode keeps the text contract: each value arrives as the text it became.
    let lines = cluster.result_lines(&dist);
    assert!(
        lines.contains(&"a\tstr='1.0',str='2.0',str='3.0',str='4.0'".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"l\tstr='4.0'".to_owned()), "{lines:?}");
    assert!(
        lines.contains(
            &"objects\tstr=\"[1, 'x']\",str=\"{'k': [True]}\",str='(2, 3.5)',str='None'".to_owned()
        ),
        "{lines:?}"
    );
    assert!(lines.contains(&"tab\tstr='x\\ty'".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"esc\tstr='\\x1bR[1]'".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"ends\t'last',newline,newline".to_owned()),
        "{lines:?}"
    );
}

/// The original's users: counts as strings or floats, and a folder input
/// to `process()` whose files keep their line boundaries.
#[test]
fn original_style_counts_and_multi_file_process_input() {
    let cluster = Cluster::start(1, &[], &[]);
    let dir = cluster.shared.path().join("in/parts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "alpha\ngamma").unwrap();
    std::fs::write(dir.join("b.txt"), "delta\n").unwrap();
    let script = write(
        &cluster,
        "lines.py",
        "def map_func(line):\n    yield (line.strip(), 1)\n\n\
         def reduce_func(key, values):\n    return key, sum(values)\n\n\
         def process(input_path, output_path):\n    with open(input_path) as f, open(output_path, 'w') as out:\n        for line in f:\n            out.write(line.strip() + '\\t1\\n')\n",
    );
    let single = cluster.submit(json!({"script_url": script, "input_url": dir, "partitions": "1"}));
    let done = cluster.wait(&single);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["mode"], "SINGLE");
    assert_eq!(
        cluster.result_lines(&single),
        ["alpha\t1", "delta\t1", "gamma\t1"]
    );
    for (given, want) in [(json!("2"), 2), (json!(2.0), 2), (json!(1e1), 10)] {
        let id = cluster.submit(
            json!({"script_url": script, "input_url": dir, "partitions": given, "force_distributed": true}),
        );
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(done["reduce_partitions"], want, "{given}");
    }
    let (code, body) = cluster.post_json(
        "/jobs",
        &json!({"script_url": script, "input_url": dir, "partitions": 2.5}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("whole number"),
        "{body}"
    );
}

#[test]
fn every_value_reaches_reduce_func_once_whatever_the_pairs_look_like() {
    let cluster = Cluster::start(2, &[], &[]);
    // 60,000 lines give 312,006 pairs: several of the driver's counted
    // batches, so a key's values arrive as many counted items.
    let n = 60_000u32;
    let text: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let input = cluster.shared.path().join("numbers.txt");
    std::fs::write(&input, text).unwrap();
    let script = write(
        &cluster,
        "shapes.py",
        r#"
def map_func(line):
    n = int(line)
    print("debug output of map_func", n)   # goes to the task's log, not the data
    pairs = [(n % 3, "x"), ["list", n % 2], (n % 2 == 0, 1), ("one", 1), ("one", "1")]
    if n % 5 == 0:
        pairs.append(("1", "s"))           # str(key): groups with the int key 1
    if n % 10000 == 0:
        pairs.append(((n, "t"), 2.5))
    return iter(pairs) if n % 2 else pairs

def reduce_func(key, values):
    print("debug output of reduce_func", key)
    seen = {}
    for v in values:
        seen[repr(v)] = seen.get(repr(v), 0) + 1
    return key, " ".join(f"{v}*{c}" for v, c in sorted(seen.items()))
"#,
    );
    let want = vec![
        format!("0\t'x'*{}", n / 3),
        format!("1\t's'*{} 'x'*{}", n / 5, n.div_ceil(3)),
        format!("2\t'x'*{}", n / 3),
        format!("False\t1*{}", n / 2),
        format!("True\t1*{}", n / 2),
        format!("list\t0*{} 1*{}", n / 2, n / 2),
        format!("one\t1*{}", 2 * n),
    ];
    let pairs = 5 * n + n / 5 + n / 10000;
    // The float 2.5 reaches reduce_func as itself in SINGLE mode, as its text otherwise.
    let jobs = [
        (
            cluster.submit(json!({"script_url": script, "input_url": input})),
            "2.5",
        ),
        (
            cluster.submit(json!({"script_url": script, "input_url": input, "partitions": 3, "force_distributed": true})),
            "'2.5'",
        ),
    ];
    for (id, float) in jobs {
        let mut want = want.clone();
        want.extend((1..=n / 10000).map(|i| format!("({}, 't')\t{float}*1", i * 10000)));
        want.sort();
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(cluster.result_lines(&id), want, "{id}");
        assert_eq!(
            done["counters"]["gridmr"]["map_output_records"], pairs,
            "{done}"
        );
    }
}

#[test]
fn mostly_distinct_pairs_reach_reduce_func_too() {
    let cluster = Cluster::start(2, &[], &[]);
    // Half of each batch distinct: the driver stops counting after the
    // first batch and writes the rest as they come.
    let n = 300_000u64;
    let text: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let input = cluster.shared.path().join("numbers.txt");
    std::fs::write(&input, text).unwrap();
    let script = write(
        &cluster,
        "distinct.py",
        r#"
def map_func(line):
    n = int(line)
    return [(n % 7, n), ("c", 1)]

def reduce_func(key, values):
    return key, "%d %d" % (len(values), sum(values))
"#,
    );
    let mut want: Vec<String> = (0..7u64)
        .map(|k| {
            let ns: Vec<u64> = (1..=n).filter(|i| i % 7 == k).collect();
            format!("{k}\t{} {}", ns.len(), ns.iter().sum::<u64>())
        })
        .collect();
    want.push(format!("c\t{n} {n}"));
    want.sort();
    let jobs = [
        cluster.submit(json!({"script_url": script, "input_url": input})),
        cluster.submit(json!({"script_url": script, "input_url": input, "partitions": 2, "force_distributed": true})),
    ];
    for id in jobs {
        let done = cluster.wait(&id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(cluster.result_lines(&id), want, "{id}");
        let c = &done["counters"]["gridmr"];
        assert_eq!(c["map_output_records"], 2 * n, "{done}");
    }
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn madoop_available() -> bool {
    let found = Command::new("madoop")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs madoop (pip install madoop; bash .ci/run installs it)"
    );
    found
}

// Each streaming case is run three ways and compared in place; the cases share one
// cluster, so they stay in one test.
#[test]
fn streaming_jobs_equal_the_serial_pipeline() {
    let cluster = Cluster::start(2, &[], &[]);
    let text = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let crlf = cluster.put_input(
        &repo_data("gutenberg/lincoln_first_inaugural_crlf.txt"),
        "lincoln.txt",
    );
    // The scripts sit beside the input folder, not in it; executable, as
    // madoop runs them directly.
    let script = |name: &str| {
        let dest = cluster.shared.path().join(name);
        std::fs::copy(example(&format!("streaming/{name}")), &dest).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        dest
    };
    let (mapper, reducer) = (script("mapper.py"), script("reducer.py"));
    let in_dir = cluster.shared.path().join("in");
    let serial = sorted_lines(&sh(&format!(
        "cat {0}/ernest.txt {0}/lincoln.txt | python3 {1} | sort | python3 {2}",
        in_dir.display(),
        mapper.display(),
        reducer.display()
    )));
    assert!(serial.len() > 1000);

    let python = json!({
        "mapper": "python3 mapper.py", "reducer": "python3 reducer.py",
        "files": [mapper, reducer], "input_url": in_dir, "partitions": 3, "force_distributed": true
    });
    let mut with_combiner = python.clone();
    with_combiner["combiner"] = json!("python3 reducer.py");
    // Shell pipelines and compiled tools, unmodified: awk as the mapper,
    // `uniq -c` (a C program) over sorted input as the reducer.
    let tools = json!({
        "mapper": "awk '{ for (i = 1; i <= NF; i++) print $i }'",
        "reducer": "uniq -c | awk '{ print $2 \"\\t\" $1 }'",
        "input_url": in_dir, "partitions": 2, "force_distributed": true
    });
    // Input lines reach the mapper with their CR LF or LF stripped and one
    // LF added, as Hadoop's TextInputFormat gives them.
    let tools_serial = sorted_lines(&sh(&format!(
        "cat {0}/ernest.txt {0}/lincoln.txt | sed 's/\\r$//' | awk '{{ for (i = 1; i <= NF; i++) print $i }}' | sort | uniq -c | awk '{{ print $2 \"\\t\" $1 }}'",
        in_dir.display()
    )));
    let single = json!({
        "mapper": "python3 mapper.py", "reducer": "python3 reducer.py",
        "files": [mapper, reducer], "input_url": in_dir
    });
    let ids: Vec<(String, &Vec<String>)> = vec![
        (cluster.submit(python), &serial),
        (cluster.submit(with_combiner), &serial),
        (cluster.submit(tools), &tools_serial),
        (cluster.submit(single), &serial),
    ];
    for (id, want) in &ids {
        let done = cluster.wait(id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(&cluster.result_lines(id), *want, "{id}");
    }
    // The typed word count agrees on each file's own words.
    for f in [&text, &crlf] {
        let alone = sorted_lines(&sh(&format!(
            "python3 {} < {} | sort | python3 {}",
            mapper.display(),
            f.display(),
            reducer.display()
        )));
        assert_eq!(embedded_wordcount(f), alone);
    }
}

/// The serial pipeline the streaming test holds GridMR to is Hadoop Streaming's answer too:
/// madoop (a reference Hadoop-Streaming runner) gives the same lines.
#[test]
#[ignore = "needs madoop: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn the_serial_pipeline_is_what_madoop_gives() {
    assert!(madoop_available());
    let dir = tempfile::tempdir().unwrap();
    let in_dir = dir.path().join("in");
    std::fs::create_dir(&in_dir).unwrap();
    std::fs::copy(
        repo_data("gutenberg/being_ernest.txt"),
        in_dir.join("ernest.txt"),
    )
    .unwrap();
    std::fs::copy(
        repo_data("gutenberg/lincoln_first_inaugural_crlf.txt"),
        in_dir.join("lincoln.txt"),
    )
    .unwrap();
    let script = |name: &str| {
        let dest = dir.path().join(name);
        std::fs::copy(example(&format!("streaming/{name}")), &dest).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        dest
    };
    let (mapper, reducer) = (script("mapper.py"), script("reducer.py"));
    let serial = sorted_lines(&sh(&format!(
        "cat {0}/ernest.txt {0}/lincoln.txt | python3 {1} | sort | python3 {2}",
        in_dir.display(),
        mapper.display(),
        reducer.display()
    )));
    let out = dir.path().join("madoop-out");
    let ran = Command::new("madoop")
        .args([
            "-input",
            &in_dir.display().to_string(),
            "-output",
            &out.display().to_string(),
        ])
        .args([
            "-mapper",
            &mapper.display().to_string(),
            "-reducer",
            &reducer.display().to_string(),
        ])
        .args(["-numReduceTasks", "3"])
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "madoop: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let mut lines = Vec::new();
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("part-") {
            lines.extend(sorted_lines(&std::fs::read_to_string(e.path()).unwrap()));
        }
    }
    lines.sort();
    assert_eq!(serial, lines, "the serial pipeline vs madoop");
}

#[test]
fn a_map_only_streaming_job_keeps_the_mappers_output_in_input_order() {
    let cluster = Cluster::start(2, &[], &[]);
    let text = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let mapper = "awk 'NF { print NR \"\\t\" $1 }'";
    // No reducer, and (the same) zero reduce tasks.
    let a = cluster.submit(json!({"mapper": mapper, "input_url": text, "map_splits": 3}));
    let b = cluster.submit(json!({"mapper": mapper, "reducer": "cat", "reduce_partitions": 0, "input_url": text, "map_splits": 1}));
    for (id, parts) in [(&a, 3), (&b, 1)] {
        let done = cluster.wait(id);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(done["tasks"]["reduce"]["total"], 0);
        let (_, ls) = cluster.get(&format!("/jobs/{id}/ls"));
        let out: Vec<&str> = ls["out"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            out.iter().filter(|n| n.starts_with("part-m-")).count(),
            parts,
            "{ls}"
        );
    }
    // One split: exactly the mapper over the whole input, line for line.
    let serial = sh(&format!("sed 's/\\r$//' {} | {mapper}", text.display()));
    let (_, whole) = cluster.get_text(&format!("/jobs/{b}/result?format=text"));
    assert_eq!(whole, serial);
    // Three splits: each split's lines numbered from 1 again, in input order.
    let (_, split) = cluster.get_text(&format!("/jobs/{a}/result?format=text"));
    let words = |t: &str| {
        t.lines()
            .map(|l| l.split('\t').nth(1).unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(words(&split), words(&serial));
}

#[test]
fn streaming_reporter_lines_update_counters_and_status() {
    let cluster = Cluster::start(1, &[], &[]);
    let input = cluster.put_input(&repo_data("samples/data1.txt"), "data1.txt");
    let id = cluster.submit(json!({
        "mapper": "awk '{ print $1; print \"reporter:counter:app,lines,1\" > \"/dev/stderr\" }'",
        "reducer": "sort -u; echo 'reporter:status:reduced' >&2",
        "input_url": input, "partitions": 2, "force_distributed": true
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["counters"]["app"]["lines"], 3);
    assert_eq!(done["task_status"], "reduced");
    assert_eq!(cluster.result_lines(&id), ["arriba", "como", "hola"]);
}

#[test]
fn broken_scripts_fail_their_job_clearly_and_nothing_else() {
    let cluster = Cluster::start(2, &[("MAX_TASK_ATTEMPTS", "2")], &[("WORKER_SLOTS", "2")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let expected = embedded_wordcount(&input);
    let typed = cluster.submit(
        json!({"job": "wordcount", "input_url": input, "partitions": 2, "force_distributed": true}),
    );

    let script = |name: &str, body: &str| write(&cluster, name, body);
    let reduce = "\ndef reduce_func(k, v):\n    return k, len(v)\n";
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"script_url": script("raises.py", &format!("def map_func(line):\n    raise ValueError('boom in map')\n{reduce}"))}),
            "map-",
            "ValueError: boom in map",
        ),
        (
            json!({"script_url": script("exits.py", &format!("import sys\ndef map_func(line):\n    sys.exit(3)\n{reduce}"))}),
            "map-",
            "called sys.exit(3)",
        ),
        (
            json!({"script_url": script("os_exit.py", &format!("import os\ndef map_func(line):\n    os._exit(0)\n{reduce}"))}),
            "map-",
            "stopped before finishing",
        ),
        (
            json!({"script_url": script("garbage.py", &format!("def map_func(line):\n    return 5\n{reduce}"))}),
            "map-",
            "iterable of (key, value) pairs",
        ),
        (
            json!({"script_url": script("tab.py", &format!("def map_func(line):\n    return [('a\\tb', 1)]\n{reduce}"))}),
            "map-",
            "contains a tab",
        ),
        (
            json!({"script_url": script("hangs.py", &format!("import time\ndef map_func(line):\n    time.sleep(600)\n{reduce}")), "timeout_s": 2}),
            "map-",
            "timed out after 2 s",
        ),
        (
            json!({"script_url": script("no_reduce.py", "def map_func(line):\n    return [(line.strip(), 1)]\n")}),
            "reduce-",
            "does not define reduce_func(key, values)",
        ),
        (
            json!({"script_url": script("syntax.py", "def map_func(line) return 5\n")}),
            "map-",
            "SyntaxError",
        ),
        (
            json!({"script_url": script("segfault.py", &format!("import ctypes\ndef map_func(line):\n    ctypes.string_at(0)\n{reduce}"))}),
            "map-",
            "killed by signal 11",
        ),
        (
            json!({"mapper": "echo oops >&2; exit 7", "reducer": "cat"}),
            "map-",
            "exited with code 7\noops",
        ),
    ];
    let ids: Vec<(String, &str, &str)> = cases
        .into_iter()
        .map(|(mut body, task, needle)| {
            body["input_url"] = json!(input);
            body["partitions"] = json!(2);
            body["force_distributed"] = json!(true);
            (cluster.submit(body), task, needle)
        })
        .collect();
    for (id, task, needle) in &ids {
        let done = cluster.wait(id);
        assert_eq!(done["status"], "FAILED", "{done}");
        let error = done["error"].as_str().unwrap();
        assert!(error.contains(needle), "{id}: {needle:?} not in {error:?}");
        assert!(error.contains("2 time(s)"), "{error}");
        // The failing task was tried MAX_TASK_ATTEMPTS times.
        let attempts = cluster.tasks(id);
        let failed = attempts
            .iter()
            .filter(|a| a["outcome"] == "failed" && a["task"].as_str().unwrap().starts_with(task))
            .count();
        assert!(failed >= 2, "{id}: {attempts:?}");
    }
    // The typed job running beside them is unaffected; the cluster is healthy.
    let done = cluster.wait(&typed);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(cluster.result_lines(&typed), expected);
    let (code, health) = cluster.get("/health");
    assert_eq!((code, &health["workers"]), (200, &json!(2)));
    let good = cluster.submit(json!({"script_url": cluster.put_input(&example("wordcount.py"), "wc.py"), "input_url": input, "partitions": 2, "force_distributed": true}));
    assert_eq!(cluster.wait(&good)["status"], "SUCCEEDED");
    assert_eq!(cluster.result_lines(&good), expected);
    // One line per event in the master's log: a traceback is an escaped field, not lines of
    // its own.
    let log = cluster.master_log();
    assert!(log.contains("Traceback"), "the errors are logged");
    assert!(
        log.lines()
            .all(|l| l.starts_with(|c: char| c.is_ascii_digit())),
        "every line starts with its timestamp:\n{log}"
    );
}

#[test]
fn bad_script_submissions_are_refused() {
    let cluster = Cluster::start(1, &[], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let outside = tempfile::NamedTempFile::new().unwrap();
    for (body, needle) in [
        (
            json!({"script_url": outside.path(), "input_url": input}),
            "outside the shared folder",
        ),
        (
            json!({"script_url": "/nope/x.py", "input_url": input}),
            "/nope",
        ),
        (
            json!({"script_url": "http://127.0.0.1:1/x.py", "input_url": input}),
            "script_url",
        ),
        (
            json!({"reducer": "cat", "input_url": input}),
            "need a `mapper`",
        ),
        (
            json!({"mapper": "cat", "reducer": "cat", "files": [outside.path()], "input_url": input}),
            "outside",
        ),
        (
            json!({"job": "wordcount", "mapper": "cat", "reducer": "cat", "input_url": input}),
            "not both",
        ),
    ] {
        let (code, answer) = cluster.post_json("/jobs", &body);
        assert_eq!(code, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
}

fn mrjob_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import mrjob"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs mrjob (pip install mrjob; bash .ci/run installs it)"
    );
    found
}

#[test]
#[ignore = "needs mrjob: cargo test -- --include-ignored (bash .ci/run installs it)"]
fn an_mrjob_script_runs_as_hadoop_runs_it() {
    assert!(mrjob_available());
    let cluster = Cluster::start(2, &[], &[]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let job = write(
        &cluster,
        "mr_word_count.py",
        r#"from mrjob.job import MRJob


class MRWordCount(MRJob):
    def mapper(self, _, line):
        for word in line.lower().split():
            yield word, 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


if __name__ == "__main__":
    MRWordCount.run()
"#,
    );
    // As Hadoop Streaming invokes an mrjob step.
    let id = cluster.submit(json!({
        "mapper": "python3 mr_word_count.py --step-num=0 --mapper",
        "combiner": "python3 mr_word_count.py --step-num=0 --combiner",
        "reducer": "python3 mr_word_count.py --step-num=0 --reducer",
        "files": [job], "input_url": input, "partitions": 3, "force_distributed": true
    }));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    // mrjob's own local runner on the same script and input.
    let inline = sorted_lines(&sh(&format!(
        "python3 {} -r inline --no-conf {} 2>/dev/null",
        job.display(),
        input.display()
    )));
    assert!(inline.len() > 1000);
    assert_eq!(cluster.result_lines(&id), inline);
}

/// Serves one file over HTTP on 127.0.0.1, to every request, until dropped.
fn serve_file(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    format!("http://{addr}/wordcount.py")
}

#[test]
fn a_script_url_over_http_is_downloaded_into_the_job_folder() {
    let url = serve_file(std::fs::read_to_string(example("wordcount.py")).unwrap());
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let cluster = Cluster::start(1, &[("GRIDMR_SCRIPT_HOSTS", host.as_str())], &[]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let id = cluster.submit(json!({"script_url": url, "input_url": input}));
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        std::fs::read_to_string(done["script_path"].as_str().unwrap()).unwrap(),
        std::fs::read_to_string(example("wordcount.py")).unwrap()
    );
    assert_eq!(
        cluster.result_lines(&id),
        counts(&[("hola", 3), ("mundo", 2), ("grid", 2), ("mr", 1)])
    );
}

/// The original downloaded an http(s) `input_url`: here too, from the hosts
/// GRIDMR_SCRIPT_HOSTS allows (the same list as for scripts), into the job's
/// folder; any other host is refused. The submission says the mode it runs in,
/// and `ls` names the script.
#[test]
fn an_input_url_over_http_is_downloaded_from_an_allowed_host() {
    let text = std::fs::read_to_string(repo_data("samples/input.txt")).unwrap();
    let url = serve_file(text);
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let cluster = Cluster::start(
        1,
        &[
            ("GRIDMR_SCRIPT_HOSTS", host.as_str()),
            ("DEFAULT_PARTITIONS", "2"),
        ],
        &[],
    );
    let script = cluster.put_input(&example("wordcount.py"), "wordcount.py");
    let (code, submitted) = cluster.post_json(
        "/jobs",
        &json!({"script_url": script, "input_url": url, "partitions": 3}),
    );
    assert_eq!(code, 200, "{submitted}");
    // A small input asked for 3 partitions runs SINGLE, as one partition: said at once.
    assert_eq!(
        (&submitted["mode"], &submitted["partitions"]),
        (&json!("SINGLE"), &json!(1))
    );
    let id = submitted["job_id"].as_str().unwrap().to_owned();
    let done = cluster.wait(&id);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        (&done["mode"], &done["partitions"]),
        (&json!("SINGLE"), &json!(1))
    );
    assert!(
        done["input_path"].as_str().unwrap().starts_with(
            cluster
                .shared
                .path()
                .join("jobs")
                .join(&id)
                .to_str()
                .unwrap()
        ),
        "{done}"
    );
    assert_eq!(
        cluster.result_lines(&id),
        counts(&[("hola", 3), ("mundo", 2), ("grid", 2), ("mr", 1)])
    );
    let (_, ls) = cluster.get(&format!("/jobs/{id}/ls"));
    assert!(
        ls["script"].as_str().unwrap().ends_with("script.py"),
        "{ls}"
    );
    // A forced DISTRIBUTED job says so when submitted.
    let (_, forced) = cluster.post_json(
        "/jobs",
        &json!({"script_url": script, "input_url": url, "partitions": 2, "force_distributed": true}),
    );
    assert_eq!(
        (&forced["mode"], &forced["partitions"]),
        (&json!("DISTRIBUTED"), &json!(2))
    );
    cluster.wait(forced["job_id"].as_str().unwrap());
    // No width named: the original's DEFAULT_PARTITIONS.
    let (_, defaulted) = cluster.post_json(
        "/jobs",
        &json!({"script_url": script, "input_url": url, "force_distributed": true}),
    );
    let done = cluster.wait(defaulted["job_id"].as_str().unwrap());
    assert_eq!(
        (&done["partitions"], &done["reduce_partitions"]),
        (&json!(2), &json!(2)),
        "{done}"
    );
    // Another host: refused, nothing fetched.
    let (code, refused) = cluster.post_json(
        "/jobs",
        &json!({"script_url": script, "input_url": "http://192.0.2.1/data.txt"}),
    );
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("GRIDMR_SCRIPT_HOSTS"),
        "{refused}"
    );
}

/// Every attempt keeps its own log (its processes' stderr), served by
/// `GET /jobs/{id}/tasks/{task}/logs` and `gridmr logs`.
#[test]
fn attempt_logs_are_kept_and_served() {
    let cluster = Cluster::start(1, &[], &[("GRIDMR_INJECT_FAIL", "")]);
    let input = cluster.put_input(&repo_data("samples/input.txt"), "input.txt");
    let id = cluster.submit(json!({
        "mapper": "echo mapper says hi >&2; cat",
        "reducer": "echo reducer was here >&2; cat",
        "input_url": input, "partitions": 1, "force_distributed": true
    }));
    assert_eq!(cluster.wait(&id)["status"], "SUCCEEDED");
    let (code, logs) = cluster.get(&format!("/jobs/{id}/tasks/map-00000/logs"));
    assert_eq!(code, 200, "{logs}");
    assert_eq!(logs["logs"][0]["attempt"], 1, "{logs}");
    assert!(
        logs["logs"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mapper says hi"),
        "{logs}"
    );
    let (_, logs) = cluster.get(&format!("/jobs/{id}/tasks/reduce-00000/logs"));
    assert!(
        logs["logs"][0]["text"]
            .as_str()
            .unwrap()
            .contains("reducer was here"),
        "{logs}"
    );
    let (code, body) = cluster.get(&format!("/jobs/{id}/tasks/..%2F..%2Fetc/logs"));
    assert_eq!(code, 400, "{body}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridmr"))
        .args(["logs", &id, "map-00000"])
        .env("GRIDMR_MASTER", &cluster.url)
        .env("SHARED_DIR", cluster.shared.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("== map-00000 attempt 1 ==") && text.contains("mapper says hi"),
        "{text}"
    );
}
