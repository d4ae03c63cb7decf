//! Typed attempts' own logs: what a job's Rust code writes through
//! `tracing` while a worker runs it lands in that attempt's log file
//! (`<job>/logs/<task>-aA.log`, the file a script attempt's stderr goes to),
//! as Hadoop keeps each task attempt's syslog.
//!
//! The worker runs each typed attempt inside a span named [`SPAN`] whose
//! `log` field is the file; [`AttemptLogLayer`], installed in the
//! subscriber, writes every event inside such a span there, at most
//! `LOG_CAP` bytes, opened as script logs are
//! (never through a link). `gridmr worker` installs it; a program that
//! embeds a worker adds it to its own subscriber:
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! let subscriber = tracing_subscriber::registry()
//!     .with(gridmr_runtime::worker::AttemptLogLayer::default());
//! # let _ = subscriber;
//! ```

use super::exec::process::LogFile;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The name of the span a typed attempt runs in.
pub const SPAN: &str = "gridmr_attempt";

/// Writes the events of attempt spans to the attempts' log files.
#[derive(Debug, Default, Clone, Copy)]
pub struct AttemptLogLayer;

/// An attempt span's log, kept in the span's extensions.
struct SpanLog(Mutex<LogFile>);

/// Finds the `log` field of a span.
#[derive(Default)]
struct LogField(Option<PathBuf>);

impl Visit for LogField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log" {
            self.0 = Some(PathBuf::from(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "log" {
            // `log = %path` records through Display, which lands here.
            self.0 = Some(PathBuf::from(format!("{value:?}")));
        }
    }
}

/// Formats an event's fields: its message, then `name=value` for the rest.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S> Layer<S> for AttemptLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN {
            return;
        }
        let mut field = LogField::default();
        attrs.record(&mut field);
        let (Some(path), Some(span)) = (field.0, ctx.span(id)) else {
            return;
        };
        span.extensions_mut()
            .insert(SpanLog(Mutex::new(LogFile::open(Some(&path)))));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            let extensions = span.extensions();
            let Some(SpanLog(log)) = extensions.get::<SpanLog>() else {
                continue;
            };
            let meta = event.metadata();
            let mut line = Line(format!(
                "{} {:>5} {}:",
                now_rfc3339(),
                meta.level(),
                meta.target()
            ));
            event.record(&mut line);
            line.0.push('\n');
            if let Ok(mut log) = log.lock() {
                log.line(line.0.as_bytes());
            }
            return;
        }
    }
}

/// The time as `2026-12-01T21:29:24.123Z` (UTC), without a date crate.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn events_in_an_attempt_span_go_to_its_log_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/map-00001-a2.log");
        let subscriber = tracing_subscriber::registry().with(AttemptLogLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any attempt");
            let span = tracing::info_span!(SPAN, log = %log.display(), task = "map-00001");
            span.in_scope(|| {
                tracing::warn!(records = 42, "user code says {}", "hello");
                tracing::info_span!("inner").in_scope(|| tracing::info!("from a nested span"));
            });
            drop(span);
        });
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains(" WARN ") && lines[0].ends_with("user code says hello records=42"),
            "{text}"
        );
        assert!(lines[1].ends_with("from a nested span"), "{text}");
        assert!(!text.contains("outside"));
        assert!(
            lines[0].starts_with("20") && lines[0].as_bytes()[10] == b'T',
            "{text}"
        );
    }

    #[test]
    fn the_clock_formats_as_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.starts_with("20"), "{t}");
    }
}
