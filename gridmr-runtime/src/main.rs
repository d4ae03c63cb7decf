//! The `gridmr` binary: every role (master, worker, client, embedded engine)
//! for the built-in jobs.

fn main() -> std::process::ExitCode {
    let mut jobs = gridmr_runtime::Registry::new();
    jobs.register(gridmr_core::jobs::wordcount::job());
    gridmr_runtime::main_with(jobs)
}
