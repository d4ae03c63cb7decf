//! The command line every GridMR binary gets from [`main_with`].
//!
//! Exit codes: 0 success; 1 the job failed, or the master refused the
//! request; 2 bad usage; 3 the master could not be reached; 4 the process
//! could not start (a port in use, a missing shared folder).

use crate::error::{Error, Result};
use crate::settings::{MasterSettings, WorkerSettings};
use clap::{Args, Parser, Subcommand};
use gridmr_core::engine::{JobConfig, LocalEngine};
use gridmr_core::Registry;
use gridmr_net::rest::{JobStatus, SubmitRequest, TaskCounts};
use gridmr_net::Client;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "gridmr",
    version,
    about = "GridMR: MapReduce jobs, embedded or on a cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct MasterAddr {
    /// The master's REST address (`https://…` when it serves TLS).
    #[arg(long, env = "GRIDMR_MASTER", default_value = "http://127.0.0.1:8080")]
    master: String,
    /// The shared folder, where the master keeps the cluster token
    /// (`.gridmr/cluster.token`) unless GRIDMR_TOKEN or GRIDMR_TOKEN_FILE
    /// names one.
    #[arg(long, env = "SHARED_DIR")]
    shared_dir: Option<PathBuf>,
    /// Authentication and TLS.
    #[command(flatten)]
    security: crate::security::Security,
}

impl MasterAddr {
    /// A REST client with the cluster token and the CA, as configured.
    fn client(&self) -> Result<Client> {
        let token = self
            .security
            .client_token(Some(&self.master), self.shared_dir.as_deref())?;
        self.security.rest_client(&self.master, token.as_ref())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print a completion script for a shell (`gridmr completions bash >
    /// /etc/bash_completion.d/gridmr`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run the master (REST API + scheduler).
    Master(MasterSettings),
    /// Save the cluster token for a master (0600, in ~/.config/gridmr/credentials.json), as
    /// `docker login` does: every command for that master then finds it. The token comes from
    /// standard input with --token-stdin, else from GRIDMR_TOKEN, GRIDMR_TOKEN_FILE or the
    /// share's file (SHARED_DIR); the master must accept it.
    Login {
        #[command(flatten)]
        master: MasterAddr,
        /// Read the token from standard input (one line).
        #[arg(long)]
        token_stdin: bool,
    },
    /// Forget the saved cluster token of a master.
    Logout {
        #[command(flatten)]
        master: MasterAddr,
    },
    /// Print a one-time sign-in link to the master's web UI.
    Ui {
        #[command(flatten)]
        master: MasterAddr,
    },
    /// Run a worker.
    Worker(WorkerSettings),
    /// Submit a job; with --wait, follow it to the end.
    Submit(SubmitArgs),
    /// The logs of a task's attempts (what its processes wrote on stderr).
    Logs {
        #[command(flatten)]
        master: MasterAddr,
        /// The job's id.
        job_id: String,
        /// The task: `single`, `map-00003`, `reduce-00001`.
        task: String,
    },
    /// A job's status: a summary, or with --json the REST answer.
    Status {
        #[command(flatten)]
        master: MasterAddr,
        /// The job's id.
        job_id: String,
        /// Wait until the job finishes.
        #[arg(long)]
        wait: bool,
        /// Print the REST answer (JSON), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A finished job's result, streamed to stdout or a file.
    Result {
        #[command(flatten)]
        master: MasterAddr,
        /// The job's id.
        job_id: String,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The files of a job's folder (JSON).
    Ls {
        #[command(flatten)]
        master: MasterAddr,
        /// The job's id.
        job_id: String,
    },
    /// Every job, as a table (--json: the REST answer).
    Jobs {
        #[command(flatten)]
        master: MasterAddr,
        /// Print the REST answer (JSON), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Registered workers, as a table (--json: the REST answer).
    Workers {
        #[command(flatten)]
        master: MasterAddr,
        /// Print the REST answer (JSON), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a running job; it keeps its record and files.
    Cancel {
        #[command(flatten)]
        master: MasterAddr,
        /// The job's id.
        job_id: String,
        /// Print the REST answer (JSON), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Cancel and forget a job; --purge also removes its files.
    Delete {
        #[command(flatten)]
        master: MasterAddr,
        /// The job's id.
        job_id: String,
        /// Remove the job's folder.
        #[arg(long)]
        purge: bool,
        /// Print the REST answer (JSON), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Run a job in this process (the embedded engine), no cluster.
    Local(LocalArgs),
}

/// `gridmr submit`.
#[derive(clap::Args)]
struct SubmitArgs {
    #[command(flatten)]
    master: MasterAddr,
    /// A typed job registered in this binary.
    #[arg(long, group = "what")]
    job: Option<String>,
    /// A Python job script (map_func, reduce_func, optional process): a
    /// local file (uploaded), one on the shared folder, or an http(s) URL.
    #[arg(long, group = "what")]
    script: Option<String>,
    /// A Hadoop-Streaming mapper command (without --reducer: a map-only job).
    #[arg(long, group = "what")]
    mapper: Option<String>,
    /// The streaming reducer command.
    #[arg(long, requires = "mapper")]
    reducer: Option<String>,
    /// The streaming combiner command.
    #[arg(long, requires = "mapper")]
    combiner: Option<String>,
    /// A file copied into every streaming task's working folder, local
    /// (uploaded) or on the shared folder (repeat).
    #[arg(long = "file", requires = "mapper")]
    files: Vec<String>,
    /// Longest a script or streaming task may run, in seconds.
    #[arg(long)]
    timeout_s: Option<u32>,
    /// Input: a file, a folder or a glob, on the shared folder or local
    /// (then uploaded to the master first). Repeat it for a job of
    /// several inputs (a join's sides, in order).
    #[arg(long, required_unless_present_any = ["points", "rows"])]
    input: Vec<String>,
    /// `--job pi` without --input: points per map task; the control files are made here
    /// (with --map-splits maps, default 4) and uploaded, as Hadoop's `pi MAPS SAMPLES` does.
    #[arg(long, requires = "job")]
    points: Option<u64>,
    /// `--job teragen` without --input: rows to generate; the control files are made here
    /// (with --map-splits maps, default 4) and uploaded, as Hadoop's `teragen ROWS` does.
    #[arg(long, requires = "job")]
    rows: Option<u64>,
    /// A job parameter, `NAME=VALUE` (repeat it): `--param pattern='fo+'`.
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Map splits and reduce partitions, unless given apart.
    #[arg(long)]
    partitions: Option<u32>,
    /// Map tasks.
    #[arg(long)]
    map_splits: Option<u32>,
    /// Reduce tasks (part files).
    #[arg(long)]
    reduce_partitions: Option<u32>,
    /// DISTRIBUTED whatever the input's size.
    #[arg(long)]
    force_distributed: bool,
    /// LZ4-compress the shuffle.
    #[arg(long)]
    compress_shuffle: bool,
    /// Where map outputs are kept: `shared` (the shared folder) or `local`
    /// (the workers that ran the maps); default: the master's `SHUFFLE`.
    #[arg(long)]
    shuffle_mode: Option<gridmr_core::shuffle::ShuffleMode>,
    /// Write the output to this object-store prefix (`s3://bucket/prefix`, `gs://…`, `az://…`)
    /// instead of the job's folder; it must hold no object yet.
    #[arg(long)]
    output_url: Option<String>,
    /// Follow the job with a progress bar; exit 0 only if it succeeds.
    #[arg(long)]
    wait: bool,
    /// Without --wait: print the submission's REST answer (JSON) instead of the job id.
    #[arg(long)]
    json: bool,
}

/// `gridmr local`.
#[derive(clap::Args)]
struct LocalArgs {
    /// A typed job registered in this binary.
    #[arg(long)]
    job: String,
    /// A file, a folder or a glob (repeat it for several inputs).
    #[arg(long, required = true)]
    input: Vec<String>,
    /// A job parameter, `NAME=VALUE` (repeat it).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// The output folder (must not exist or be empty).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Work folder for intermediate files.
    #[arg(long, default_value = ".gridmr-work")]
    work_dir: PathBuf,
    /// Threads (default: cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Reduce partitions (default: threads); 0 makes the job map-only.
    #[arg(long, visible_alias = "reduce-partitions")]
    partitions: Option<u32>,
    /// Map tasks (default: by size, at least one per thread).
    #[arg(long)]
    map_splits: Option<u32>,
}

/// `NAME=VALUE` as a job parameter.
fn parse_param(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// Logs to stderr at `level`: text, coloured only when stderr is a
/// terminal, or one JSON object per line with `LOG_FORMAT=json`. Typed task
/// attempts' own events also go to their attempt logs, at `TASK_LOG_LEVEL`
/// (default `info`), whatever the process's level.
fn init_logs(level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let task_level = std::env::var("TASK_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let task_filter = EnvFilter::try_new(&task_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = json_logs();
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let stderr = if json {
        stderr.json().with_filter(filter).boxed()
    } else {
        stderr
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter)
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(crate::worker::AttemptLogLayer.with_filter(task_filter))
        .try_init();
}

/// Parses the command line and runs it with `registry`'s jobs. This is the
/// whole `main` of a GridMR binary.
pub fn main_with(registry: Registry) -> ExitCode {
    // A worker with TASK_ISOLATION=process starts this binary for each
    // typed attempt; the child never parses the command line.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(crate::worker::exec::child::CHILD_COMMAND) {
        return crate::worker::exec::child::child_main(&registry, &args[1..]);
    }
    let cli = Cli::parse();
    let log_level = match &cli.command {
        Command::Master(s) => s.log_level.clone(),
        Command::Worker(s) => s.log_level.clone(),
        _ => "warn".into(),
    };
    init_logs(&log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gridmr: cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(run(cli.command, registry)) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridmr: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Net(gridmr_net::Error::Transport { .. }) => 3,
        Error::Bind { .. } | Error::Io { .. } | Error::Setting { .. } => 4,
        _ => 1,
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints a REST answer: as JSON with `--json` (for scripts), else as `show` puts it for a
/// person.
fn print_answer<T: serde::Serialize>(
    json: bool,
    value: &T,
    show: impl Fn(&T) -> String,
) -> Result<()> {
    match json {
        true => print_json(value),
        false => {
            crate::outln!("{}", show(value));
            Ok(())
        }
    }
}

/// Whether `LOG_FORMAT=json` asks for logs (and the start line) as JSON objects.
fn json_logs() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Error::setting("output", e.to_string()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write", "standard output", e))
}

/// Writes one line to standard output; when its reader has gone (`… | head`), the process
/// ends quietly with status 0, as `cat` does, instead of panicking as `println!` would. For
/// programs that print results: [`outln!`](crate::outln).
pub fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        // Another failure to print (a full disk) is worth a word, not a panic.
        Err(e) => eprintln!("cannot write to standard output: {e}"),
        Ok(()) => {}
    }
}

/// `println!` for programs whose output may go into a pipe that closes early (`| head`): the
/// process then ends quietly ([`cli::write_line`](crate::cli::write_line)).
///
/// ```
/// gridmr_runtime::outln!("{} words", 42);
/// ```
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::write_line(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_line(::std::format_args!($($arg)*))
    };
}

/// Whether `e` is the reader of our output going away (`… | head`), which
/// ends a command quietly, as `cat` does.
fn is_broken_pipe(e: &Error) -> bool {
    let io = match e {
        Error::Io { source, .. } => Some(source),
        Error::Net(gridmr_net::Error::Write(source)) => Some(source),
        _ => None,
    };
    io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `gridmr master`: serves until a signal (or its stopper) stops it, then waits for it.
async fn serve_master(settings: MasterSettings, registry: Registry) -> Result<()> {
    let handle = crate::master::start(settings, registry).await?;
    announce(
        &format!("gridmr master listening on {}", handle.url()),
        &handle.url(),
    );
    let stop = handle.stopper();
    tokio::select! {
        _ = shutdown_signal() => stop.cancel(),
        _ = stop.cancelled() => {}
    }
    handle.join().await?;
    tracing::info!("master stopped");
    Ok(())
}

/// `gridmr worker`: serves until a signal (or its stopper) stops it, then waits for it.
async fn serve_worker(settings: WorkerSettings, registry: Registry) -> Result<()> {
    let handle = crate::worker::start(settings, registry).await?;
    announce(
        &format!(
            "gridmr worker {} listening on {}",
            handle.id(),
            handle.addr()
        ),
        &handle.addr().to_string(),
    );
    let stop = handle.stopper();
    tokio::select! {
        _ = shutdown_signal() => stop.cancel(),
        _ = stop.cancelled() => {}
    }
    handle.join().await?;
    tracing::info!("worker stopped");
    Ok(())
}

/// `gridmr submit`: stages local files the master cannot read, submits, and with `--wait`
/// follows the job to its end.
async fn submit(args: SubmitArgs) -> Result<ExitCode> {
    let SubmitArgs {
        master,
        job,
        script,
        mapper,
        reducer,
        combiner,
        files,
        timeout_s,
        input,
        params,
        partitions,
        map_splits,
        reduce_partitions,
        force_distributed,
        compress_shuffle,
        shuffle_mode,
        output_url,
        wait,
        json,
        points,
        rows,
    } = args;
    // pi and teragen read control files: made here from the flags, then uploaded.
    let generated = generated_input(job.as_deref(), points, rows, map_splits)?;
    let input = match &generated {
        Some(dir) => vec![dir.path().join("control").display().to_string()],
        None => input,
    };
    if job.is_none() && script.is_none() && mapper.is_none() {
        return Err(Error::setting(
            "submit",
            "give --job NAME, --script FILE or --mapper CMD --reducer CMD",
        ));
    }
    let client = master.client()?;
    // Local paths the master cannot read go up first.
    let mut stage = crate::upload::Stager::new(&client).await?;
    let mut inputs = Vec::with_capacity(input.len());
    for (i, spec) in input.iter().enumerate() {
        inputs.push(stage.input(spec, i).await?);
    }
    let script_url = match script {
        Some(s) => Some(stage.file(&s, "script").await?),
        None => None,
    };
    let mut staged_files = Vec::with_capacity(files.len());
    for f in &files {
        staged_files.push(stage.file(f, "files").await?);
    }
    stage.report();
    let status = client
        .submit(&SubmitRequest {
            job,
            script_url,
            mapper,
            reducer,
            combiner,
            files: (!staged_files.is_empty()).then_some(staged_files),
            timeout_s,
            input_url: inputs[0].clone(),
            inputs: (inputs.len() > 1).then(|| inputs[1..].to_vec()),
            params: (!params.is_empty()).then(|| params.into_iter().collect()),
            partitions,
            map_splits,
            reduce_partitions,
            force_distributed: force_distributed.then_some(true),
            compress_shuffle: compress_shuffle.then_some(true),
            shuffle_mode: shuffle_mode.map(|m| m.to_string()),
            output_url,
            ..SubmitRequest::default()
        })
        .await?;
    if !wait {
        // The id alone on stdout (`id=$(gridmr submit …)`), one line for a person on stderr;
        // --json: the whole submission answer.
        match json {
            true => print_json(&status)?,
            false => {
                crate::outln!("{}", status.job_id);
                eprintln!(
                    "submitted {} ({}); follow it with: gridmr status --wait {}",
                    status.job_id,
                    status.mode.as_str(),
                    status.job_id
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("submitted {}", status.job_id);
    let done = follow(&client, &status.job_id).await?;
    finish(done)
}

/// The control files `pi` (`--points`) or `teragen` (`--rows`) read, written into a fresh
/// temporary folder's `control/` (`None`: the job reads the --input it was given).
fn generated_input(
    job: Option<&str>,
    points: Option<u64>,
    rows: Option<u64>,
    maps: Option<u32>,
) -> Result<Option<tempfile::TempDir>> {
    let maps = maps.unwrap_or(4).max(1);
    let (what, pi) = match (job, points, rows) {
        (_, None, None) => return Ok(None),
        (Some("pi"), Some(_), None) => ("--points", true),
        (Some("teragen"), None, Some(_)) => ("--rows", false),
        _ => {
            return Err(Error::setting(
                "submit",
                "--points goes with --job pi, --rows with --job teragen",
            ))
        }
    };
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "a temporary folder", e))?;
    let control = dir.path().join("control");
    let written = match pi {
        true => gridmr_core::bundled::pi::write_input(&control, maps, points.unwrap_or(0)),
        false => gridmr_core::bundled::terasort::write_gen_input(&control, maps, rows.unwrap_or(0)),
    };
    written.map_err(|e| Error::setting(what, e.to_string()))?;
    Ok(Some(dir))
}

/// `gridmr local`: a registered job in this process, by the embedded engine.
async fn local(args: LocalArgs, registry: Registry) -> Result<()> {
    let LocalArgs {
        job,
        input,
        params,
        output,
        work_dir,
        threads,
        partitions,
        map_splits,
    } = args;
    let def = registry.get(&job)?;
    let mut engine = LocalEngine::new(work_dir).with_max_attempts(2);
    if let Some(t) = threads {
        engine = engine.with_threads(t);
    }
    let mut config = JobConfig {
        inputs: input,
        output,
        reduce_partitions: partitions,
        params: params.into_iter().collect(),
        ..JobConfig::new("")
    };
    config.splits.splits = map_splits;
    let outcome = tokio::task::spawn_blocking(move || engine.run(def.as_ref(), &config))
        .await
        .map_err(|e| Error::setting("local", e.to_string()))??;
    eprintln!(
        "{} done in {:.2} s: {} map and {} reduce tasks",
        outcome.job_id,
        outcome.times.total.as_secs_f64(),
        outcome.map_tasks,
        outcome.reduce_tasks
    );
    match &outcome.result_file {
        Some(file) => println!("{}", file.display()),
        // Too large for result.txt: the part files are the output.
        None => println!("{}", outcome.output_dir.display()),
    }
    Ok(())
}

async fn run(command: Command, registry: Registry) -> Result<ExitCode> {
    match command {
        Command::Master(settings) => serve_master(settings, registry).await?,
        Command::Worker(settings) => serve_worker(settings, registry).await?,
        Command::Submit(args) => return submit(args).await,
        Command::Status {
            master,
            job_id,
            wait,
            json,
        } => {
            let client = master.client()?;
            let status = if wait {
                client.wait(&job_id, |_| {}).await?
            } else {
                client.status(&job_id).await?
            };
            print_answer(json, &status, crate::show::status)?;
        }
        Command::Result {
            master,
            job_id,
            output,
        } => {
            let client = master.client()?;
            match output {
                Some(path) => {
                    let file =
                        std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
                    let mut out = std::io::BufWriter::new(file);
                    client.result_to(&job_id, &mut out).await?;
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    client.result_to(&job_id, &mut out).await?;
                }
            }
        }
        Command::Login {
            master,
            token_stdin,
        } => login(&master, token_stdin).await?,
        Command::Logout { master } => {
            if crate::credentials::forget(&master.master)? {
                eprintln!("forgot the token of {}", master.master);
            } else {
                eprintln!("no token was saved for {}", master.master);
            }
        }
        Command::Ls { master, job_id } => print_json(&master.client()?.ls(&job_id).await?)?,
        Command::Logs {
            master,
            job_id,
            task,
        } => {
            let logs = master.client()?.task_logs(&job_id, &task).await?;
            let mut out = std::io::stdout().lock();
            for log in &logs.logs {
                writeln!(out, "== {} attempt {} ==", logs.task, log.attempt)
                    .and_then(|()| out.write_all(printable(&log.text).as_bytes()))
                    .map_err(|e| Error::io("write", "standard output", e))?;
            }
            if logs.logs.is_empty() {
                eprintln!("{job_id} {task}: no attempt left a log");
            }
        }
        Command::Jobs { master, json } => {
            let list = master.client()?.list().await?;
            print_answer(json, &list, crate::show::jobs)?;
        }
        Command::Ui { master } => {
            let link = master.client()?.ui_link().await?;
            println!("{link}");
            eprintln!("open it within 2 minutes; it signs in one browser, once");
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "gridmr", &mut out);
        }
        Command::Workers { master, json } => {
            let list = master.client()?.workers().await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            print_answer(json, &list, |l| crate::show::workers(l, now))?;
        }
        Command::Cancel {
            master,
            job_id,
            json,
        } => {
            let answer = master.client()?.cancel(&job_id).await?;
            print_answer(json, &answer, crate::show::cancelled)?;
        }
        Command::Delete {
            master,
            job_id,
            purge,
            json,
        } => {
            let answer = master.client()?.delete(&job_id, purge).await?;
            print_answer(json, &answer, crate::show::deleted)?;
        }
        Command::Local(args) => local(args, registry).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a line to stdout and flushes it (scripts and tests wait for it).
/// `gridmr login`: the token from standard input or the usual places, checked against the
/// master, then saved for it.
async fn login(master: &MasterAddr, token_stdin: bool) -> Result<()> {
    let token = if token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Error::io("read", "standard input", e))?;
        gridmr_net::auth::Token::parse(&line).map_err(Error::Net)?
    } else {
        let found = master
            .security
            .client_token(None, master.shared_dir.as_deref())?;
        found.ok_or_else(|| {
            Error::setting(
                "login",
                "no token to save: pipe it in with --token-stdin (cat cluster.token | gridmr \
                 login --token-stdin), or name it with GRIDMR_TOKEN_FILE or SHARED_DIR",
            )
        })?
    };
    let client = master.security.rest_client(&master.master, Some(&token))?;
    let health = client.health().await?;
    if health.auth && health.shared_dir.is_none() {
        return Err(Error::setting(
            "login",
            format!("{} does not accept this token", master.master),
        ));
    }
    let path = crate::credentials::save(&master.master, &token)?;
    eprintln!("saved the token of {} in {}", master.master, path.display());
    Ok(())
}

/// `text` safe for a terminal: control characters other than line feeds and tabs (escape
/// sequences a task wrote into its log, say) written as `\u{1b}`, as `status` shows them
/// through JSON.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The one line a starting master or worker prints on stdout, where scripts read its address;
/// with `LOG_FORMAT=json` it is a JSON object too (`{"message": …, "url": …}`), so that no plain
/// line falls among the JSON ones when both streams are collected.
fn announce(line: &str, url: &str) {
    let json = json_logs();
    let mut out = std::io::stdout().lock();
    let _ = match json {
        true => writeln!(out, "{}", serde_json::json!({"message": line, "url": url})),
        false => writeln!(out, "{line}"),
    };
    let _ = out.flush();
}

fn phase_line(name: &str, c: &TaskCounts) -> Option<String> {
    (c.total > 0).then(|| format!("{name} {}/{}", c.succeeded, c.total))
}

/// `map 3/8 · reduce 0/4` (or `single 0/1`).
pub fn progress_line(status: &JobStatus) -> String {
    let t = &status.tasks;
    let parts: Vec<String> = [
        phase_line("single", &t.single),
        phase_line("map", &t.map),
        phase_line("reduce", &t.reduce),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        status.status.as_str().to_owned()
    } else {
        format!("{} {}", status.status.as_str(), parts.join(" · "))
    }
}

/// How often `--wait` prints a progress line when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The job's share done, 0 to 1: its SINGLE task, or its map and reduce
/// phases weighed alike (a map-only job: its maps).
pub fn job_fraction(status: &JobStatus) -> f64 {
    let p = &status.progress;
    match status.mode {
        gridmr_net::rest::Mode::Single => p.single.fraction,
        gridmr_net::rest::Mode::Distributed if status.reduce_partitions == 0 => p.map.fraction,
        gridmr_net::rest::Mode::Distributed => (p.map.fraction + p.reduce.fraction) / 2.0,
    }
}

/// `1.2 GB` (decimal units, as `du --si`).
fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// What `--wait` shows of a job: its tasks, the input read, how fast, and
/// when it should end.
struct Watch {
    started: Instant,
    /// The highest fraction seen, so the bar never goes back (a lost
    /// attempt's work is done again).
    best: f64,
}

impl Watch {
    fn line(&mut self, s: &JobStatus) -> (f64, String) {
        self.best = self.best.max(job_fraction(s));
        let p = &s.progress;
        let input = if s.mode == gridmr_net::rest::Mode::Single {
            p.single
        } else {
            p.map
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut parts = vec![progress_line(s), format!("{:.0}%", self.best * 100.0)];
        if input.total > 0 {
            parts.push(format!(
                "{} of {} read",
                bytes(input.done),
                bytes(input.total)
            ));
            if elapsed > 0.5 && input.done > 0 {
                parts.push(format!("{}/s", bytes((input.done as f64 / elapsed) as u64)));
            }
        }
        if self.best > 0.02 && self.best < 1.0 && elapsed > 1.0 {
            let left = elapsed * (1.0 - self.best) / self.best;
            parts.push(format!("ETA {left:.0} s"));
        }
        (self.best, parts.join(" · "))
    }
}

/// Follows a job with a progress bar: the share of the job done, the input
/// read, the rate and an ETA (a plain line every few seconds when stderr is
/// not a terminal).
pub async fn follow(client: &Client, job_id: &str) -> Result<JobStatus> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Piped, the bar draws nothing: a plain line every few seconds instead.
    let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line: Option<Instant> = None;
    let mut watch = Watch {
        started: Instant::now(),
        best: 0.0,
    };
    let done = client
        .wait(job_id, |s| {
            let (fraction, line) = watch.line(s);
            bar.set_position((fraction * 1000.0) as u64);
            bar.set_message(line.clone());
            if plain && last_line.is_none_or(|at| at.elapsed() >= PLAIN_PROGRESS_EVERY) {
                last_line = Some(Instant::now());
                eprintln!("{} {line}", s.job_id);
            }
        })
        .await;
    bar.finish_and_clear();
    Ok(done?)
}

/// Exit code for a finished job, with its summary on stderr.
pub fn finish(done: JobStatus) -> Result<ExitCode> {
    eprintln!(
        "{} {} in {:.2} s ({})",
        done.job_id,
        done.status.as_str(),
        done.times.t_total_s,
        progress_line(&done)
    );
    if done.status == gridmr_net::rest::JobState::Succeeded {
        for o in &done.outputs {
            println!("{o}");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Error::JobNotSucceeded {
            job_id: done.job_id.clone(),
            status: done.status.as_str(),
            message: done.error.unwrap_or(done.message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_printed_without_terminal_escapes() {
        assert_eq!(super::printable("a\tb\nc"), "a\tb\nc");
        assert_eq!(
            super::printable("red \u{1b}[31mX\u{7}\r"),
            "red \\u{1b}[31mX\\u{7}\\u{d}"
        );
    }

    #[test]
    fn a_closed_pipe_ends_quietly_and_other_errors_do_not() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&Error::Net(
            gridmr_net::Error::Write(pipe())
        )));
        assert!(is_broken_pipe(&Error::io(
            "write",
            "standard output",
            pipe()
        )));
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(!is_broken_pipe(&Error::io("write", "out.txt", full)));
    }
}
