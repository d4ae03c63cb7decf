//! The web UI's pages, server-rendered with maud (escaped by default).
//!
//! Each page is a layout around a *fragment* (`jobs_table`, `job_detail`,
//! `workers_table`); the page's `data-live` element names the URL of its
//! fragment, which `app.js` fetches again every second and swaps in, so a
//! page stays current without a reload and without any client-side
//! rendering. A fragment marked `data-final` (an ended job) stops the
//! polling.

use gridmr_net::rest::{
    JobState, JobStatus, Mode, PhaseProgress, TaskAttempt, TaskLogs, WorkerInfo,
};
use maud::{html, Markup, DOCTYPE};

/// A worker as the workers page shows it.
pub(crate) struct WorkerRow {
    pub(crate) id: String,
    pub(crate) info: WorkerInfo,
    /// Seconds since its last heartbeat (or probe).
    pub(crate) seen_s: f64,
    /// The jobs it is excluded from now.
    pub(crate) excluded_from: Vec<String>,
    /// The attempts running on it: (job, task).
    pub(crate) running: Vec<(String, String)>,
    /// Its attempts of the jobs the master keeps: succeeded, failed, lost or killed.
    pub(crate) history: (u64, u64, u64),
}

/// Which tab is lit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    Jobs,
    Workers,
    None,
}

pub(crate) fn layout(title: &str, tab: Tab, body: Markup) -> Markup {
    let lit = |t: Tab| if t == tab { "on" } else { "" };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · GridMR" }
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui" { "GridMR" }
                    nav {
                        a class=(lit(Tab::Jobs)) href="/ui" { "Jobs" }
                        a class=(lit(Tab::Workers)) href="/ui/workers" { "Workers" }
                        form.signout method="post" action="/ui/logout" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// `1.2 MB` (decimal units).
pub(crate) fn bytes(n: u64) -> String {
    let f = n as f64;
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} GB", f / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", f / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", f / 1e3),
        n => format!("{n} B"),
    }
}

/// `10,025,601,011`: digits in groups of three.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `0.42 s`, `12.3 s`, `4 min 05 s`.
pub(crate) fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// The UTC time of day of a Unix time in milliseconds, `21:29:24`.
pub(crate) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

fn state_class(s: JobState) -> &'static str {
    match s {
        JobState::Succeeded => "ok",
        JobState::Failed => "bad",
        JobState::Cancelled => "off",
        JobState::Queued | JobState::Preparing | JobState::Prepared => "wait",
        _ => "run",
    }
}

fn outcome_class(o: &str) -> &'static str {
    match o {
        "succeeded" => "ok",
        "failed" => "bad",
        "running" => "run",
        "lost" | "killed" | "superseded" | "unknown" => "off",
        _ => "",
    }
}

fn badge(text: &str, class: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

/// A progress bar for a fraction, labelled with its percentage: a small
/// SVG, whose sizes are attributes (the pages' content security policy
/// allows no inline styles).
fn bar(fraction: f64, class: &str) -> Markup {
    let pct = (fraction.clamp(0.0, 1.0) * 100.0).floor();
    html! {
        svg.bar viewBox="0 0 100 14" preserveAspectRatio="none" role="progressbar"
            aria-valuenow=(pct) aria-valuemin="0" aria-valuemax="100" {
            rect.track width="100" height="14" rx="7" {}
            rect class={ "fill " (class) } width=(pct) height="14" rx="7" {}
        }
        span.pct { (pct) "%" }
    }
}

/// The share of a job done (as the CLI's `--wait` shows it).
pub(crate) fn job_fraction(s: &JobStatus) -> f64 {
    let p = &s.progress;
    match s.mode {
        Mode::Single => p.single.fraction,
        Mode::Distributed if s.reduce_partitions == 0 => p.map.fraction,
        Mode::Distributed => (p.map.fraction + p.reduce.fraction) / 2.0,
    }
}

fn output_bytes(s: &JobStatus) -> u64 {
    s.counters
        .builtin(gridmr_core::counters::builtin::OUTPUT_BYTES)
}

fn kind(s: &JobStatus) -> String {
    if !s.job.is_empty() {
        s.job.clone()
    } else if !s.script_path.is_empty() {
        // The script's own name: `script.py` is the job folder's copy, its source is the input's
        // neighbour; the folder name tells jobs apart less than the file name would, so both.
        let name = std::path::Path::new(&s.script_path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("script {name}")
    } else {
        "streaming".into()
    }
}

/// What the job page knows besides the job's status: what runs (a script's path, a streaming
/// job's commands) and whether the job has a combiner (its `combine_*` counters mean nothing
/// otherwise).
#[derive(Default)]
pub(crate) struct JobExtras {
    pub(crate) program: Vec<(String, String)>,
    pub(crate) combiner: bool,
}

/// Which jobs the jobs page lists: a state filter and a page.
#[derive(Default, Clone)]
pub(crate) struct JobFilter {
    /// `running`, `succeeded`, `failed` (failed or cancelled), or all.
    pub(crate) state: Option<String>,
    /// 0-based.
    pub(crate) page: usize,
}

/// Jobs per page of the jobs list.
pub(crate) const JOBS_PER_PAGE: usize = 50;

impl JobFilter {
    fn keeps(&self, j: &JobStatus) -> bool {
        match self.state.as_deref() {
            Some("running") => !j.status.is_terminal(),
            Some("succeeded") => j.status == JobState::Succeeded,
            Some("failed") => matches!(j.status, JobState::Failed | JobState::Cancelled),
            _ => true,
        }
    }

    fn query(&self, page: usize) -> String {
        let mut q = vec![];
        if let Some(s) = &self.state {
            q.push(format!("state={s}"));
        }
        if page > 0 {
            q.push(format!("page={page}"));
        }
        match q.is_empty() {
            true => String::new(),
            false => format!("?{}", q.join("&")),
        }
    }
}

/// The jobs page.
pub(crate) fn jobs_page(jobs: &[JobStatus], filter: &JobFilter) -> Markup {
    let on = |s: Option<&str>| {
        if filter.state.as_deref() == s {
            "on"
        } else {
            ""
        }
    };
    let link = |s: Option<&str>| {
        JobFilter {
            state: s.map(str::to_owned),
            page: 0,
        }
        .query(0)
    };
    layout(
        "Jobs",
        Tab::Jobs,
        html! {
            h1 { "Jobs" }
            p.filters {
                a class=(on(None)) href={ "/ui" (link(None)) } { "All" }
                a class=(on(Some("running"))) href={ "/ui" (link(Some("running"))) } { "Running" }
                a class=(on(Some("succeeded"))) href={ "/ui" (link(Some("succeeded"))) } { "Succeeded" }
                a class=(on(Some("failed"))) href={ "/ui" (link(Some("failed"))) } { "Failed or cancelled" }
            }
            div data-live={ "/ui/fragments/jobs" (filter.query(filter.page)) } { (jobs_table(jobs, filter)) }
        },
    )
}

/// The jobs table, newest first: the filter's jobs, one page of them.
pub(crate) fn jobs_table(all: &[JobStatus], filter: &JobFilter) -> Markup {
    let kept: Vec<&JobStatus> = all.iter().rev().filter(|j| filter.keeps(j)).collect();
    let pages = kept.len().div_ceil(JOBS_PER_PAGE).max(1);
    let page = filter.page.min(pages - 1);
    let jobs: Vec<&JobStatus> = kept
        .iter()
        .skip(page * JOBS_PER_PAGE)
        .take(JOBS_PER_PAGE)
        .copied()
        .collect();
    html! {
        @if jobs.is_empty() && all.is_empty() {
            p.empty { "No jobs yet. Submit one: " code { "gridmr submit --job wordcount --input books/ --wait" } }
        } @else {
            table.jobs {
                thead { tr {
                    th { "Job" } th { "Name" } th { "State" } th { "Progress" } th { "Tasks" }
                    th { "Prepare" } th { "Map" } th { "Reduce" } th { "Total" }
                    th { "Input" } th { "Output" } th { "Submitted (UTC)" }
                } }
                tbody {
                    @for j in &jobs {
                        @let t = &j.tasks;
                        tr data-job=(j.job_id) {
                            td { a href={ "/ui/jobs/" (j.job_id) } { (j.job_id) } }
                            td { (kind(j)) }
                            td { (badge(j.status.as_str(), state_class(j.status))) }
                            td { (bar(job_fraction(j), state_class(j.status))) }
                            td.tasks {
                                @if t.single.total > 0 { "single " (t.single.succeeded) "/" (t.single.total) }
                                @if t.map.total > 0 { "map " (t.map.succeeded) "/" (t.map.total) }
                                @if t.reduce.total > 0 { " · reduce " (t.reduce.succeeded) "/" (t.reduce.total) }
                            }
                            td.num { (secs(j.times.t_prepare_s)) }
                            td.num { (secs(j.times.t_map_s + j.times.t_single_s)) }
                            td.num { (secs(j.times.t_reduce_s)) }
                            td.num { (secs(j.times.t_total_s)) }
                            td.num { (bytes(j.input_size_bytes)) }
                            td.num { (bytes(output_bytes(j))) }
                            td.num { (clock(j.submitted_at_ms)) }
                        }
                    }
                }
            }
            @if jobs.is_empty() { p.empty { "No job matches." } }
            p.pager {
                (kept.len()) " job(s)"
                @if pages > 1 {
                    " · page " (page + 1) " of " (pages) " "
                    @if page > 0 { a href={ "/ui" (filter.query(page - 1)) } { "newer" } " " }
                    @if page + 1 < pages { a href={ "/ui" (filter.query(page + 1)) } { "older" } }
                }
            }
        }
    }
}

/// One job's page.
pub(crate) fn job_page(
    s: &JobStatus,
    attempts: &[TaskAttempt],
    extras: &JobExtras,
    now_ms: u64,
) -> Markup {
    layout(
        &s.job_id,
        Tab::Jobs,
        html! {
            p.crumbs { a href="/ui" { "Jobs" } " / " (s.job_id) }
            div data-live={ "/ui/fragments/jobs/" (s.job_id) } { (job_detail(s, attempts, extras, now_ms)) }
        },
    )
}

fn phase_row(name: &str, p: &PhaseProgress, unit: &str, class: &str) -> Markup {
    html! {
        tr {
            th { (name) }
            td { (bar(p.fraction, class)) }
            td.num {
                @if unit == "bytes" { (bytes(p.done)) " of " (bytes(p.total)) }
                @else if p.total > 0 { (p.done) " of " (p.total) " records" }
            }
        }
    }
}

/// Everything that changes on a job's page.
// Long because the page is: each card is a few lines of markup, read top to bottom as it shows.
pub(crate) fn job_detail(
    s: &JobStatus,
    attempts: &[TaskAttempt],
    extras: &JobExtras,
    now_ms: u64,
) -> Markup {
    let done = s.status.is_terminal();
    let class = state_class(s.status);
    // A failed job's message repeats its error: said once.
    let message_is_error = s.error.as_deref().is_some_and(|e| {
        let first = e.lines().next().unwrap_or_default();
        s.message.contains(first) || e.contains(&s.message)
    });
    html! {
        div.detail data-final=[done.then_some("1")] {
            h1 { (s.job_id) " " (badge(s.status.as_str(), class)) }
            @if !message_is_error { p.message { (s.message) } }
            @if let Some(e) = &s.error { pre.error { (e) } }
            div.cards {
                section.card {
                    h2 { "Job" }
                    dl {
                        dt { "name" } dd { (kind(s)) }
                        @for (what, text) in &extras.program {
                            dt { (what) } dd { code { (truncate(text, 300)) } }
                        }
                        dt { "mode" } dd { (format!("{:?}", s.mode).to_uppercase()) }
                        dt { "input" } dd { code { (s.input_path) } @for i in &s.inputs { br; code { (i) } } }
                        dt { "input size" } dd { (bytes(s.input_size_bytes)) }
                        dt { "output" } dd {
                            (bytes(output_bytes(s)))
                            @if s.status == JobState::Succeeded {
                                " · " a href={ "/ui/jobs/" (s.job_id) "/result" } { "result.txt" }
                            }
                        }
                        dt { "tasks" } dd { (s.map_splits) " map · " (s.reduce_partitions) " reduce" }
                        @for (k, v) in &s.params {
                            dt { "param " (k) } dd { code { (truncate(v, 120)) } }
                        }
                        @if !s.excluded_workers.is_empty() {
                            dt { "excluded" } dd { (s.excluded_workers.join(", ")) }
                        }
                    }
                }
                section.card {
                    h2 { "Progress" }
                    table.phases {
                        @if s.mode == Mode::Single { (phase_row("single", &s.progress.single, "bytes", class)) }
                        @else {
                            (phase_row("map", &s.progress.map, "bytes", class))
                            @if s.reduce_partitions > 0 { (phase_row("reduce", &s.progress.reduce, "records", class)) }
                        }
                    }
                    table.tasks {
                        thead { tr { th { "tasks" } th { "pending" } th { "running" } th { "done" } th { "failed attempts" } } }
                        tbody {
                            @for (name, t) in [("single", &s.tasks.single), ("map", &s.tasks.map), ("reduce", &s.tasks.reduce)] {
                                @if t.total > 0 {
                                    tr data-phase=(name) {
                                        th { (name) }
                                        td.num.pending { (t.pending) }
                                        td.num { (t.running) }
                                        td.num { (t.succeeded) " of " (t.total) }
                                        td.num { (t.failed_attempts) }
                                    }
                                }
                            }
                        }
                    }
                    h2 { "Phase times" }
                    table.times { tr {
                        th { "prepare" } td.num { (secs(s.times.t_prepare_s)) }
                        th { "single" } td.num { (secs(s.times.t_single_s)) }
                        th { "map" } td.num { (secs(s.times.t_map_s)) }
                        th { "reduce" } td.num { (secs(s.times.t_reduce_s)) }
                        th { "total" } td.num { (secs(s.times.t_total_s)) }
                    } }
                }
            }
            section {
                h2 { "Timeline" }
                (timeline(attempts, now_ms))
            }
            section {
                h2 { "Task skew" }
                (skew(attempts))
            }
            section {
                h2 { "Attempts" }
                (attempts_table(&s.job_id, attempts, now_ms))
            }
            section {
                h2 { "Counters" }
                table.counters {
                    thead { tr { th { "group" } th { "counter" } th { "value" } } }
                    tbody {
                        @for (group, name, value) in s.counters.iter() {
                            @if extras.combiner || !name.starts_with("combine_") {
                                tr { td { (group) } td { (name) } td.num { (count(value)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// min, median and max of `values` (sorted here).
fn spread(mut values: Vec<u64>) -> Option<(u64, u64, u64)> {
    values.sort_unstable();
    let (first, last) = (values.first()?, values.last()?);
    Some((*first, values[values.len() / 2], *last))
}

/// Per phase, over its succeeded attempts: duration, records and input bytes, min / median /
/// max, as Spark's stage page shows them, so that one slow or large task stands out.
fn skew(attempts: &[TaskAttempt]) -> Markup {
    /// A phase, its succeeded tasks, and their durations (ms), records and work.
    type Row<'a> = (&'a str, usize, Vec<u64>, Vec<u64>, Vec<u64>);
    let phases = ["single", "map", "reduce"];
    let rows: Vec<Row<'_>> = phases
        .iter()
        .map(|p| {
            let done: Vec<&TaskAttempt> = attempts
                .iter()
                .filter(|a| phase_of(&a.task) == *p && a.outcome.as_str() == "succeeded")
                .collect();
            let ms = done
                .iter()
                .map(|a| {
                    a.finished_ms
                        .unwrap_or(a.started_ms)
                        .saturating_sub(a.started_ms)
                })
                .collect();
            let records = done
                .iter()
                .filter_map(|a| a.progress.map(|w| w.records))
                .collect();
            let work = done
                .iter()
                .filter_map(|a| a.progress.map(|w| w.total))
                .collect();
            (*p, done.len(), ms, records, work)
        })
        .filter(|r| r.1 > 0)
        .collect();
    let three = |v: &[u64], f: &dyn Fn(u64) -> String| match spread(v.to_vec()) {
        Some((lo, mid, hi)) => format!("{} / {} / {}", f(lo), f(mid), f(hi)),
        None => "—".into(),
    };
    html! {
        @if rows.is_empty() { p.empty { "No task has succeeded yet." } }
        @else {
            table.skew {
                thead { tr {
                    th { "phase" } th { "tasks done" } th { "duration min / median / max" }
                    th { "records min / median / max" } th { "work min / median / max" }
                } }
                tbody {
                    @for (phase, n, ms, records, work) in &rows {
                        tr data-phase=(phase) {
                            th { (phase) }
                            td.num { (n) }
                            td.num { (three(ms, &|m| secs(m as f64 / 1000.0))) }
                            td.num { (three(records, &|r| count(r))) }
                            td.num {
                                @if *phase == "reduce" { (three(work, &|r| format!("{} rec", count(r)))) }
                                @else { (three(work, &|b| bytes(b))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

fn phase_of(task: &str) -> &'static str {
    if task.starts_with("map") {
        "map"
    } else if task.starts_with("reduce") {
        "reduce"
    } else {
        "single"
    }
}

fn attempts_table(job: &str, attempts: &[TaskAttempt], now_ms: u64) -> Markup {
    html! {
        table.attempts {
            thead { tr {
                th { "Task" } th { "Attempt" } th { "Worker" } th { "State" } th { "Started (UTC)" }
                th { "Duration" } th { "Progress" } th { "Error" } th { "Log" }
            } }
            tbody {
                @for a in attempts {
                    @let end = a.finished_ms.unwrap_or(now_ms);
                    tr data-task=(a.task) data-outcome=(a.outcome) {
                        td { (a.task) }
                        td.num { (a.attempt) }
                        td { (a.worker_id) }
                        td { (badge(a.outcome.as_str(), outcome_class(a.outcome.as_str())))
                             @if let Some(k) = &a.kind { " " small { (k) } } }
                        td.num { (clock(a.started_ms)) }
                        td.num { (secs(end.saturating_sub(a.started_ms) as f64 / 1000.0)) }
                        td { @if let Some(p) = &a.progress { (bar(p.fraction(), outcome_class(a.outcome.as_str()))) } }
                        td.err { @if let Some(e) = &a.error { (truncate(e, 300)) } }
                        td { a href={ "/ui/jobs/" (job) "/tasks/" (a.task) "/logs" } { "log" } }
                    }
                }
            }
        }
    }
}

/// Packs one worker's attempts into rows so that attempts running at the
/// same time (several slots) sit one above the other: each goes to the
/// first row free when it starts. Returns each attempt's row and the rows.
fn pack(attempts: &[&TaskAttempt], now_ms: u64) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..attempts.len()).collect();
    order.sort_by_key(|&i| attempts[i].started_ms);
    let mut ends: Vec<u64> = Vec::new();
    let mut rows = vec![0; attempts.len()];
    for i in order {
        let a = attempts[i];
        let end = a.finished_ms.unwrap_or(now_ms).max(a.started_ms + 1);
        let row = match ends.iter().position(|&e| e <= a.started_ms) {
            Some(r) => r,
            None => {
                ends.push(0);
                ends.len() - 1
            }
        };
        ends[row] = end;
        rows[i] = row;
    }
    (rows, ends.len().max(1))
}

/// The attempts as bars on one lane per worker over the job's time, the
/// attempts a worker ran at once one above the other.
pub(crate) fn timeline(attempts: &[TaskAttempt], now_ms: u64) -> Markup {
    if attempts.is_empty() {
        return html! { p.empty { "No attempt has started yet." } };
    }
    let t0 = attempts
        .iter()
        .map(|a| a.started_ms)
        .min()
        .unwrap_or(now_ms);
    let t1 = attempts
        .iter()
        .map(|a| a.finished_ms.unwrap_or(now_ms))
        .max()
        .unwrap_or(now_ms)
        .max(t0 + 1);
    let mut workers: Vec<&str> = attempts.iter().map(|a| a.worker_id.as_str()).collect();
    workers.sort_unstable();
    workers.dedup();
    let (label, width, row_h, gap) = (110.0, 1000.0, 18.0, 8.0);
    let span = (t1 - t0) as f64;
    let x = |ms: u64| label + (ms.saturating_sub(t0)) as f64 / span * (width - label);
    /// One worker's lane: its attempts, the row of each, its rows, its top.
    struct Lane<'a> {
        worker: &'a str,
        attempts: Vec<&'a TaskAttempt>,
        rows: Vec<usize>,
        n: usize,
        y: f64,
    }
    let mut top = 0.0;
    let lanes: Vec<Lane<'_>> = workers
        .iter()
        .map(|w| {
            let mine: Vec<&TaskAttempt> = attempts.iter().filter(|a| a.worker_id == *w).collect();
            let (rows, n) = pack(&mine, now_ms);
            let y = top;
            top += n as f64 * row_h + gap;
            Lane {
                worker: w,
                attempts: mine,
                rows,
                n,
                y,
            }
        })
        .collect();
    let height = top + 20.0;
    html! {
        svg.timeline viewBox={ "0 0 " (width) " " (height) } role="img"
            aria-label="attempts per worker over time" {
            @for Lane { worker: w, attempts: mine, rows, n, y } in &lanes {
                @let y = *y;
                g.lane data-worker=(w) {
                    text.wlabel x="4" y=(y + 14.0) { (w) }
                    line x1=(label) x2=(width) y1=(y + *n as f64 * row_h + gap / 2.0)
                        y2=(y + *n as f64 * row_h + gap / 2.0) {}
                    @for (a, row) in mine.iter().zip(rows) {
                        @let (x0, x1) = (x(a.started_ms), x(a.finished_ms.unwrap_or(now_ms)));
                        rect class={ "att " (phase_of(&a.task)) " " (a.outcome) }
                            x=(format!("{x0:.1}")) y=(format!("{:.1}", y + *row as f64 * row_h + 2.0))
                            width=(format!("{:.1}", (x1 - x0 - 1.0).max(2.0)))
                            height=(row_h - 4.0) rx="3" {
                            title { (a.task) " attempt " (a.attempt) ": " (a.outcome) }
                        }
                    }
                }
            }
            text.axis x=(label) y=(height - 4.0) { "0 s" }
            text.axis x=(width - 4.0) y=(height - 4.0) text-anchor="end" { (secs(span / 1000.0)) }
        }
        p.legend {
            span.key.map {} "map " span.key.reduce {} "reduce " span.key.single {} "single "
            span.key.failed {} "failed " span.key.lost {} "lost or killed"
        }
    }
}

/// The workers page.
pub(crate) fn workers_page(rows: &[WorkerRow]) -> Markup {
    layout(
        "Workers",
        Tab::Workers,
        html! {
            h1 { "Workers" }
            div data-live="/ui/fragments/workers" { (workers_table(rows)) }
        },
    )
}

/// The workers table.
pub(crate) fn workers_table(rows: &[WorkerRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No worker has registered. Start one: " code { "gridmr worker" } }
        } @else {
            table.workers {
                thead { tr {
                    th { "Worker" } th { "Address" } th { "State" } th { "Slots" } th { "Running" }
                    th { "Last heartbeat" } th { "Load (CPUs)" } th { "Memory free" } th { "Disk free" }
                    th { "Attempts done" } th { "Failed" } th { "Lost or killed" }
                    th { "Excluded from" } th { "Build" }
                } }
                tbody {
                    @for w in rows {
                        tr data-worker=(w.id) {
                            td { (w.id) }
                            td { code { (w.info.address) } }
                            td { @if w.info.alive { (badge("alive", "ok")) } @else { (badge("lost", "bad")) } }
                            td.num { (w.info.slots) }
                            td {
                                (w.info.running)
                                @for (job, task) in w.running.iter().take(6) {
                                    br; small { a href={ "/ui/jobs/" (job) } { (job) } " " (task) }
                                }
                                @if w.running.len() > 6 { br; small { "…" } }
                            }
                            td.num { (secs(w.seen_s)) " ago" }
                            @match &w.info.host {
                                Some(h) => {
                                    td.num.load { (format!("{:.2}", h.load_1m)) " (" (h.cpus) ")" }
                                    td.num.mem { (bytes(h.mem_available_bytes)) " of " (bytes(h.mem_total_bytes)) }
                                    td.num.disk { (bytes(h.disk_free_bytes)) " of " (bytes(h.disk_total_bytes)) }
                                }
                                None => { td { "—" } td { "—" } td { "—" } }
                            }
                            td.num.done { (count(w.history.0)) }
                            td.num.failed { (count(w.history.1)) }
                            td.num { (count(w.history.2)) }
                            td { @if w.excluded_from.is_empty() { "—" } @else { (w.excluded_from.join(", ")) } }
                            td { small { (w.info.build) } }
                        }
                    }
                }
            }
        }
    }
}

/// A task's attempt logs.
pub(crate) fn logs_page(logs: &TaskLogs) -> Markup {
    layout(
        &format!("{} {}", logs.job_id, logs.task),
        Tab::Jobs,
        html! {
            p.crumbs {
                a href="/ui" { "Jobs" } " / "
                a href={ "/ui/jobs/" (logs.job_id) } { (logs.job_id) } " / " (logs.task)
            }
            h1 { (logs.task) " logs" }
            @if logs.logs.is_empty() { p.empty { "No attempt of this task left a log." } }
            @for l in &logs.logs {
                h2 { "attempt " (l.attempt) }
                pre.log { (l.text) }
            }
        },
    )
}

/// The sign-in page.
pub(crate) fn login_page(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Sign in · GridMR" }
                link rel="stylesheet" href="/ui/app.css";
            }
            body.login {
                main {
                    h1 { "GridMR" }
                    p { "Run " code { "gridmr ui" } " for a sign-in link, or paste the cluster token ("
                        code { "$SHARED_DIR/.gridmr/cluster.token" } ")." }
                    @if let Some(e) = error { p.error { (e) } }
                    form method="post" action="/ui/login" {
                        input type="password" name="token" placeholder="cluster token" autocomplete="off" required;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// A page that says a job is unknown (or another short message).
pub(crate) fn message_page(title: &str, text: &str) -> Markup {
    layout(
        title,
        Tab::None,
        html! { h1 { (title) } p { (text) } p { a href="/ui" { "All jobs" } } },
    )
}
