//! The original's master driving GridMR workers through the seed protocol: its
//! messages carry none of the new fields (no attempt, no working folder, no map
//! index), and a worker that implements the seed's service does what it asks.

mod common;

use common::{repo_data, Cluster};
use gridmr_net::proto::{self, worker_client::WorkerClient};
use tonic::Request;

fn authorized<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

fn sorted_file_lines(path: &str) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_master_runs_single_and_distributed_jobs_on_gridmr_workers() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(1, &[], &[]))
        .await
        .unwrap();
    let (_, address) = tokio::task::block_in_place(|| cluster.worker_addresses())
        .into_iter()
        .next()
        .unwrap();
    let token = common::token(cluster.shared.path()).unwrap();
    let share = cluster.shared.path().to_path_buf();
    let script = share.join("wordcount.py");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wordcount.py"),
        &script,
    )
    .unwrap();
    let input = share.join("input.txt");
    std::fs::copy(repo_data("samples/input.txt"), &input).unwrap();
    let want = ["grid\t2", "hola\t3", "mr\t1", "mundo\t2"];
    let mut client = WorkerClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    // SINGLE: ExecuteJob with the seed's four fields; the original's out/result.txt.
    let job_dir = share.join("jobs").join("job-1");
    std::fs::create_dir_all(&job_dir).unwrap();
    let out = job_dir.join("out");
    let single = client
        .execute_job(authorized(
            proto::JobTask {
                job_id: "job-1".into(),
                script_path: script.display().to_string(),
                input_path: input.display().to_string(),
                output_dir: out.display().to_string(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(single.success, "{}", single.error);
    assert_eq!(
        single.output_path,
        out.join("result.txt").display().to_string()
    );
    assert_eq!(sorted_file_lines(&single.output_path), want);
    assert!(out.join("_SUCCESS").is_file());

    // DISTRIBUTED: two chunks of one job, each its own files; then one reduce over both.
    let job_dir = share.join("jobs").join("job-2");
    let shuffle = job_dir.join("shuffle");
    let chunks = job_dir.join("chunks");
    std::fs::create_dir_all(&shuffle).unwrap();
    std::fs::create_dir_all(&chunks).unwrap();
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut partition_files = Vec::new();
    for c in 0..2 {
        let chunk = chunks.join(format!("chunk-{c:04}"));
        let mine: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == c)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        std::fs::write(&chunk, mine).unwrap();
        let mapped = client
            .execute_map(authorized(
                proto::MapTask {
                    job_id: "job-2".into(),
                    script_path: script.display().to_string(),
                    input_chunk: chunk.display().to_string(),
                    shuffle_dir: shuffle.display().to_string(),
                    reduce_partitions: 2,
                    chunk_id: format!("chunk-{c:04}"),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(mapped.success, "{}", mapped.error);
        // One name per partition, as that master files them.
        assert_eq!(
            mapped.partition_files.len(),
            2,
            "{:?}",
            mapped.partition_files
        );
        partition_files.push(mapped.partition_files);
    }
    assert_ne!(
        partition_files[0][0], partition_files[1][0],
        "two chunks, two outputs"
    );
    let out = job_dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut lines = Vec::new();
    for p in 0..2 {
        let reduced = client
            .execute_reduce(authorized(
                proto::ReduceTask {
                    job_id: "job-2".into(),
                    script_path: script.display().to_string(),
                    partition_id: p as i32,
                    shuffle_inputs: partition_files.iter().map(|f| f[p].clone()).collect(),
                    output_path: out.join(format!("part-{p:04}")).display().to_string(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(reduced.success, "{}", reduced.error);
        assert_eq!(
            reduced.output_path,
            out.join(format!("part-{p:04}")).display().to_string()
        );
        lines.extend(sorted_file_lines(&reduced.output_path));
    }
    lines.sort();
    assert_eq!(lines, want);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
