//! Testing hook: a master that dies on purpose at a named point
//! (`GRIDMR_INJECT_CRASH=commit:success-written,…`), as a `kill -9` there would, so that
//! recovery from every step of the commit protocol is tested on real processes without sleeps.
//!
//! The points: `commit:recorded`, `commit:part-renamed` (after the first part),
//! `commit:parts-renamed`, `commit:result-written`, `commit:attempts-removed`,
//! `commit:success-written`, `commit:swept`, `commit:job-recorded`.

/// The variable naming the points to crash at.
pub(crate) const CRASH_VAR: &str = "GRIDMR_INJECT_CRASH";

/// The points at which this master crashes.
#[derive(Debug, Clone, Default)]
pub(crate) struct CrashPoints(Vec<String>);

impl CrashPoints {
    /// The points named by [`CRASH_VAR`] (none when it is unset). Logged, since a master that
    /// crashes on purpose must say so.
    pub(crate) fn from_env() -> Self {
        let points: Vec<String> = std::env::var(CRASH_VAR)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if !points.is_empty() {
            tracing::warn!(points = ?points, "{CRASH_VAR}: this master will crash on purpose");
        }
        CrashPoints(points)
    }

    /// Ends the process at once, without any clean-up, if `point` is one of ours.
    pub(crate) fn reach(&self, point: &str) {
        if self.0.iter().any(|p| p == point) {
            eprintln!("{CRASH_VAR}: crashing at {point}");
            std::process::abort();
        }
    }
}
