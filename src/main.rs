//! The `gridmr` binary: every role (master, worker, client, embedded engine)
//! for the built-in jobs: word count and Hadoop's examples
//! (`gridmr_core::jobs`).

fn main() -> std::process::ExitCode {
    let mut jobs = gridmr::runtime::Registry::new();
    gridmr::bundled::register_all(&mut jobs);
    gridmr::runtime::main_with(jobs)
}
