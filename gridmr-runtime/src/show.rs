//! What the CLI prints for a person: tables and short summaries (`gridmr jobs`, `workers`,
//! `status`, `cancel`, `delete`), as `kubectl get` and `gh` print them; `--json` prints the
//! REST answer instead, for scripts.

use gridmr_net::rest::{CancelAnswer, DeleteAnswer, JobList, JobStatus, WorkerList};

/// Longest message a table row shows (the rest is in `gridmr status`).
const MESSAGE_WIDTH: usize = 60;

/// Columns padded to their widest cell, two spaces apart, the last unpadded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// A cell of at most `width` characters, on one line.
fn cut(text: &str, width: usize) -> String {
    let one_line = text.lines().next().unwrap_or_default();
    let mut out: String = one_line.chars().take(width).collect();
    if one_line.chars().count() > width || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// `gridmr jobs`: one row per job.
pub(crate) fn jobs(list: &JobList) -> String {
    let rows: Vec<Vec<String>> = list
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.job_id.clone(),
                j.status.as_str().to_owned(),
                j.mode.as_str().to_owned(),
                if j.job.is_empty() {
                    "-".into()
                } else {
                    j.job.clone()
                },
                cut(&j.message, MESSAGE_WIDTH),
            ]
        })
        .collect();
    let mut out = table(&["JOB", "STATUS", "MODE", "NAME", "MESSAGE"], &rows);
    if let (Some(total), Some(next)) = (list.total, list.next_offset) {
        out.push_str(&format!(
            "\n({} of {total} jobs; the next page starts at offset {next})",
            list.jobs.len()
        ));
    }
    out
}

/// `gridmr workers`: one row per worker, `now` the Unix time in seconds.
pub(crate) fn workers(list: &WorkerList, now: f64) -> String {
    let rows: Vec<Vec<String>> = list
        .workers
        .iter()
        .map(|(id, w)| {
            let ago = (now - w.last_seen).max(0.0);
            vec![
                id.clone(),
                w.address.clone(),
                if w.alive { "yes" } else { "no" }.into(),
                w.slots.to_string(),
                w.running.to_string(),
                format!("{} ago", duration(ago)),
            ]
        })
        .collect();
    table(
        &[
            "WORKER",
            "ADDRESS",
            "ALIVE",
            "SLOTS",
            "RUNNING",
            "LAST SEEN",
        ],
        &rows,
    )
}

/// `3.2 s`, `4 min 10 s`, `2 h 5 min`.
pub(crate) fn duration(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3600.0 => format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        ),
    }
}

/// `gridmr status`: the job in a few labelled lines.
pub(crate) fn status(s: &JobStatus) -> String {
    let name = if s.job.is_empty() {
        s.script_path.clone()
    } else {
        s.job.clone()
    };
    let mut lines = vec![format!(
        "{}  {}  {}  {}",
        s.job_id,
        s.status.as_str(),
        s.mode.as_str(),
        name
    )];
    let mut field = |label: &str, value: String| {
        if !value.is_empty() {
            lines.push(format!("{label:<9} {value}"));
        }
    };
    field(
        "progress",
        format!(
            "{} ({:.0} %)",
            crate::cli::progress_line(s),
            crate::cli::job_fraction(s) * 100.0
        ),
    );
    field("message", s.message.clone());
    field("error", s.error.clone().unwrap_or_default());
    field("input", s.input_path.clone());
    let t = &s.times;
    field(
        "time",
        format!(
            "{} (prepare {:.2} s, map {:.2} s, reduce {:.2} s)",
            duration(t.t_total_s),
            t.t_prepare_s,
            t.t_map_s + t.t_single_s,
            t.t_reduce_s
        ),
    );
    let outputs = match s.outputs.len() {
        0 => String::new(),
        1 => s.outputs[0].clone(),
        n => format!("{} ({n} files)", s.output_dir),
    };
    field("output", outputs);
    lines.join("\n")
}

/// `gridmr cancel`.
pub(crate) fn cancelled(a: &CancelAnswer) -> String {
    match a.cancelled {
        true => format!("cancelled {}", a.job_id),
        false => format!(
            "{} had already ended: {} (nothing to cancel)",
            a.job_id,
            a.status.as_str()
        ),
    }
}

/// `gridmr delete`.
pub(crate) fn deleted(a: &DeleteAnswer) -> String {
    let mut what = vec![];
    if a.cancelled {
        what.push("cancelled first");
    }
    if a.purged {
        what.push("its files removed");
    }
    match what.is_empty() {
        true => format!("deleted {}", a.job_id),
        false => format!("deleted {} ({})", a.job_id, what.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_long_messages_are_cut() {
        let rows = vec![
            vec!["job-000001".into(), "SUCCEEDED".into(), "done".into()],
            vec![
                "job-000002".into(),
                "FAILED".into(),
                cut(&"x".repeat(100), 10),
            ],
        ];
        let t = table(&["JOB", "STATUS", "MESSAGE"], &rows);
        assert_eq!(
            t,
            "JOB         STATUS     MESSAGE\n\
             job-000001  SUCCEEDED  done\n\
             job-000002  FAILED     xxxxxxxxxx…"
        );
        assert_eq!(cut("first\nsecond", 60), "first…");
        assert_eq!(duration(3.25), "3.2 s");
        assert_eq!(duration(250.0), "4 min 10 s");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }
}
