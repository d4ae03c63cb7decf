//! The master's web UI in a real browser: Debian's headless Chromium,
//! driven over WebDriver (chromedriver) by fantoccini, against a loopback
//! cluster running real jobs.
//!
//! It checks what the pages show against the REST API: the jobs with their
//! state and progress, updated live without a reload; a job's timeline (one
//! lane per worker, one bar per attempt), its attempts, counters, logs and
//! result; the workers; and that without signing in a browser sees nothing
//! but the sign-in page. With `GRIDMR_UI_SCREENSHOTS=<folder>` it saves a
//! PNG of each page there (the ones in `docs/ui/`).
//!
//! Ignored unless asked for (`cargo test -- --include-ignored`), and then it
//! fails where chromium or chromedriver is missing; `.ci/run` installs both.

mod common;

use common::{repo_data, Cluster};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts chromedriver on a free port; `None` (the test skips) where the
/// browser is not installed.
fn driver() -> Option<(Driver, String)> {
    if !(found("chromium") && found("chromedriver")) {
        panic!("this test needs chromium and chromedriver (apt-get install chromium chromium-driver; bash .ci/run installs them)");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Driver(child), url))
}

async fn browser(webdriver: &str) -> Client {
    // fantoccini's TLS stack and GridMR's enable two rustls backends: pick
    // GridMR's (the webdriver is plain http anyway).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1440,1000"],
        }),
    );
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a browser session")
}

/// Polls `check` in the browser until it gives a value, for up to 60 s.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap_or_default() {
        out.push(e.text().await.unwrap_or_default());
    }
    out
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.map_or(0, |v| v.len())
}

async fn shoot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("GRIDMR_UI_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

// One browser session walked through in order (sign in, watch a job run, open its
// attempts and the workers): the pages depend on what the steps before did.
#[test]
#[ignore = "needs Chromium and chromedriver: cargo test -- --include-ignored (bash .ci/run installs them)"]
fn the_web_ui_shows_jobs_attempts_and_workers_live() {
    let Some((_driver, webdriver)) = driver() else {
        return;
    };
    let cluster = Cluster::start(2, &[], &[("WORKER_SLOTS", "2")]);
    let input = cluster.put_input(&repo_data("gutenberg/being_ernest.txt"), "ernest.txt");
    let quick = cluster.submit(json!({
        "job": "wordcount", "input_url": input.display().to_string(),
        "map_splits": 4, "reduce_partitions": 2,
    }));
    assert_eq!(cluster.wait(&quick)["status"], "SUCCEEDED");
    // A job that takes several seconds, over more than a pipe holds per
    // task, to watch it move.
    let text = std::fs::read_to_string(&input).unwrap().repeat(10);
    let big = cluster.shared.path().join("in/ernest-10x.txt");
    std::fs::write(&big, text).unwrap();
    let slow_mapper = "python3 -c 'import sys, time\nfor i, l in enumerate(sys.stdin):\n    \
                       i % 100 or time.sleep(0.05)\n    sys.stdout.write(l)'";
    let slow = cluster.submit(json!({
        "mapper": slow_mapper, "reducer": "wc -l", "input_url": big.display().to_string(),
        "map_splits": 3, "reduce_partitions": 1,
    }));
    let (_, grant) = cluster.post_json("/ui/grant", &json!({}));
    let link = format!("{}{}", cluster.url, grant["path"].as_str().unwrap());
    let base = cluster.url.clone();
    let token = common::token(cluster.shared.path()).unwrap_or_default();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(browser(&webdriver));
    rt.block_on(async {
        // Without signing in: the sign-in page, and nothing of the cluster.
        c.goto(&format!("{base}/ui")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
        let page = c.source().await.unwrap();
        assert!(!page.contains(&quick) && page.contains("Sign in"), "{page}");
        shoot(&c, "login.png").await;
        // A wrong token is refused; the one-time link signs in.
        let form = c.form(Locator::Css("form")).await.unwrap();
        form.set_by_name("token", "not-the-token").await.unwrap();
        form.submit().await.unwrap();
        until("the refusal", || async {
            c.source()
                .await
                .ok()?
                .contains("not this cluster")
                .then_some(())
        })
        .await;
        c.goto(&link).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/ui");

        // The jobs: both listed; the slow one moves to SUCCEEDED on the page
        // itself (a marker set in the page survives: no reload).
        let rows = texts(&c, "table.jobs tbody tr").await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        c.execute("window.__stayed = 1;", vec![]).await.unwrap();
        let row = format!("tr[data-job='{slow}']");
        until("the slow job part-way through", || async {
            let text = texts(&c, &row).await.join(" ");
            let pct = c
                .find(Locator::Css(&format!("{row} svg.bar")))
                .await
                .ok()?
                .attr("aria-valuenow")
                .await
                .ok()??;
            let pct: f64 = pct.parse().ok()?;
            (text.contains("MAPPING") && pct > 0.0 && pct < 100.0).then_some(())
        })
        .await;
        shoot(&c, "jobs.png").await;
        // The slow job's page, while it runs.
        c.goto(&format!("{base}/ui/jobs/{slow}")).await.unwrap();
        until("running attempts on the timeline", || async {
            (count(&c, "svg.timeline rect.att.running").await > 0).then_some(())
        })
        .await;
        shoot(&c, "job-running.png").await;
        // The workers page names the attempts running on each.
        c.goto(&format!("{base}/ui/workers")).await.unwrap();
        until("the running attempts on the workers page", || async {
            let text = texts(&c, "table.workers tbody").await.join(" ");
            (text.contains(&slow) && text.contains("map-0000")).then_some(())
        })
        .await;
        shoot(&c, "workers.png").await;
        c.goto(&format!("{base}/ui")).await.unwrap();
        c.execute("window.__stayed = 1;", vec![]).await.unwrap();
        until("the slow job to succeed, live", || async {
            texts(&c, &row)
                .await
                .join(" ")
                .contains("SUCCEEDED")
                .then_some(())
        })
        .await;
        let stayed = c
            .execute("return window.__stayed === 1;", vec![])
            .await
            .unwrap();
        assert_eq!(stayed, Value::Bool(true), "the page was reloaded");
    });

    // One job's page against the API.
    let tasks = cluster.tasks(&quick);
    let mut workers: Vec<&str> = tasks
        .iter()
        .filter_map(|a| a["worker_id"].as_str())
        .collect();
    workers.sort_unstable();
    workers.dedup();
    let (_, status) = cluster.get(&format!("/jobs/{quick}"));
    let slow_attempts = cluster.tasks(&slow).len() as u64;
    rt.block_on(async {
        c.find(Locator::Css(&format!("a[href='/ui/jobs/{quick}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until("the job page", || async {
            (count(&c, "table.attempts").await == 1).then_some(())
        })
        .await;
        assert_eq!(count(&c, "svg.timeline g.lane").await, workers.len());
        assert_eq!(count(&c, "svg.timeline rect.att").await, tasks.len());
        assert_eq!(count(&c, "table.attempts tbody tr").await, tasks.len());
        let lanes: Vec<String> = texts(&c, "svg.timeline .wlabel").await;
        assert_eq!(lanes, workers, "one lane per worker");
        let counters = texts(&c, "table.counters").await.join(" ");
        let records = status["counters"]["gridmr"]["map_input_records"]
            .as_u64()
            .unwrap();
        // Numbers as people read them: 3,495, not 3495.
        let grouped = records
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        assert!(counters.contains(&grouped), "{counters}");
        // Per phase: pending, running and done tasks; the spread of the tasks' durations.
        let phases = texts(&c, "table.tasks tbody tr")
            .await
            .join(" | ")
            .to_lowercase();
        assert!(phases.contains("map 0 0 4 of 4"), "{phases}");
        let skew = texts(&c, "table.skew tbody tr").await;
        assert_eq!(skew.len(), 2, "map and reduce: {skew:?}");
        assert!(skew[0].to_lowercase().starts_with("map 4 "), "{skew:?}");
        // Every succeeded attempt shows all of its work done.
        for pct in c
            .find_all(Locator::Css(
                "table.attempts tr[data-outcome='succeeded'] svg.bar",
            ))
            .await
            .unwrap()
        {
            assert_eq!(
                pct.attr("aria-valuenow").await.unwrap().as_deref(),
                Some("100")
            );
        }
        assert!(texts(&c, "h1").await.join(" ").contains("SUCCEEDED"));
        shoot(&c, "job.png").await;
        // An attempt's log, and the result.
        c.find(Locator::Css("table.attempts a[href$='/logs']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until("the log page", || async {
            texts(&c, "h1")
                .await
                .join(" ")
                .contains("logs")
                .then_some(())
        })
        .await;
        c.goto(&format!("{base}/ui/jobs/{quick}/result"))
            .await
            .unwrap();
        let result = c.source().await.unwrap();
        assert!(result.contains("earnest"), "the result shows");

        // The streaming job's page names its commands.
        c.goto(&format!("{base}/ui/jobs/{slow}")).await.unwrap();
        let job = texts(&c, "section.card dl").await.join(" ");
        assert!(
            job.contains("mapper") && job.contains("python3 -c") && job.contains("wc -l"),
            "{job}"
        );

        // The jobs list filters: no job failed.
        c.goto(&format!("{base}/ui?state=failed")).await.unwrap();
        assert_eq!(count(&c, "table.jobs tbody tr").await, 0);
        assert!(texts(&c, "p.empty")
            .await
            .join(" ")
            .contains("No job matches"));
        c.goto(&format!("{base}/ui?state=succeeded")).await.unwrap();
        assert_eq!(count(&c, "table.jobs tbody tr").await, 2);

        // The workers, as the API lists them, with what each has done.
        c.goto(&format!("{base}/ui/workers")).await.unwrap();
        let rows = texts(&c, "table.workers tbody tr").await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows.iter().any(|r| r.contains("w1") && r.contains("alive")));
        let done: Vec<u64> = texts(&c, "table.workers td.done")
            .await
            .iter()
            .map(|t| t.replace(',', "").parse().unwrap())
            .collect();
        assert_eq!(
            done.iter().sum::<u64>(),
            tasks.len() as u64 + slow_attempts,
            "every attempt counted once: {done:?}"
        );
        // Each worker's host, from its heartbeats.
        let memory = texts(&c, "table.workers td.mem").await;
        assert_eq!(memory.len(), 2, "{memory:?}");
        assert!(
            memory.iter().all(|m| m.contains(" of ") && m.contains('B')),
            "{memory:?}"
        );

        // Signing out (a POST, from the header's button) ends the session; a GET does not.
        c.goto(&format!("{base}/ui/logout")).await.unwrap();
        c.goto(&format!("{base}/ui/workers")).await.unwrap();
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/workers"));
        c.find(Locator::Css("form.signout button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until("signed out", || async {
            c.current_url()
                .await
                .ok()?
                .path()
                .ends_with("/ui/login")
                .then_some(())
        })
        .await;
        c.goto(&format!("{base}/ui/workers")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
        // The form takes the real token.
        let form = c.form(Locator::Css("form")).await.unwrap();
        form.set_by_name("token", &token).await.unwrap();
        form.submit().await.unwrap();
        until("signed in by the form", || async {
            (c.current_url().await.ok()?.path() == "/ui").then_some(())
        })
        .await;
        assert!(c.source().await.unwrap().contains(&quick));
    });
    // The API cannot be driven with the browser's session: it only reads.
    let (_, workers_json) = cluster.get("/workers");
    let address = workers_json["workers"]["w1"]["address"].as_str().unwrap();
    rt.block_on(async {
        let rows = texts(&c, "table.jobs tbody tr").await;
        assert_eq!(rows.len(), 2);
        c.goto(&format!("{base}/ui/workers")).await.unwrap();
        let page = c.source().await.unwrap();
        assert!(page.contains(address), "{page}");
        c.close().await.unwrap();
    });
}
