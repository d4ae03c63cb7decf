//! Submit-to-done latency of jobs on a loopback cluster (a master and two
//! workers in this process, talking REST and gRPC over 127.0.0.1): an empty
//! job (SINGLE), and a tiny DISTRIBUTED job (2 maps, 2 reduces). This is the
//! scheduler's and the protocol's overhead: the jobs do almost no work.
//!
//! `cargo bench --bench cluster_latency`

use criterion::{criterion_group, criterion_main, Criterion};
use gridmr::bundled::wordcount;
use gridmr::net::rest::{JobState, SubmitRequest};
use gridmr::runtime::{master, worker, MasterSettings, Registry, WorkerSettings};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let shared = tempfile::tempdir().expect("temp dir");
    let empty = shared.path().join("empty.txt");
    std::fs::write(&empty, b"").expect("input");
    let small = shared.path().join("small.txt");
    std::fs::write(&small, "hola mundo\nhola grid\nmr mundo hola\n").expect("input");
    let mut jobs = Registry::new();
    jobs.register(wordcount::job());

    let (client, _master, _workers) = rt.block_on(async {
        let master = master::start(MasterSettings::local(shared.path()), jobs.clone())
            .await
            .expect("master");
        let mut workers = Vec::new();
        for i in 0..2 {
            let mut ws = WorkerSettings::local(shared.path(), Some(master.url()));
            ws.worker_id = Some(format!("w{i}"));
            ws.slots = Some(1);
            workers.push(worker::start(ws, jobs.clone()).await.expect("worker"));
        }
        let client = master.client();
        while client.health().await.expect("health").workers < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (client, master, workers)
    });

    let run = |req: SubmitRequest| {
        rt.block_on(async {
            let job = client.submit(&req).await.expect("submit");
            let done = client.wait(&job.job_id, |_| {}).await.expect("wait");
            assert_eq!(done.status, JobState::Succeeded, "{:?}", done.error);
        })
    };
    let mut group = c.benchmark_group("cluster_latency");
    group.sample_size(50);
    group.bench_function("empty_job_single", |b| {
        b.iter(|| {
            run(SubmitRequest {
                job: Some("wordcount".into()),
                input_url: empty.display().to_string(),
                ..SubmitRequest::default()
            })
        })
    });
    group.bench_function("tiny_job_distributed_2x2", |b| {
        b.iter(|| {
            run(SubmitRequest {
                job: Some("wordcount".into()),
                input_url: small.display().to_string(),
                partitions: Some(2),
                force_distributed: Some(true),
                ..SubmitRequest::default()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
