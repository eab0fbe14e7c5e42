//! `traffic cluster start` and `traffic worker`: the processes of a long-running cluster.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::control::ControlArgs;
use crate::cluster::control::ControlOptions;
use crate::cluster::processes::ProcessGroup;
use crate::cluster::runtime::{run_worker, WorkerOptions};
use crate::cluster::supervisor::supervise;
use crate::cluster::{signals, ClusterSpec};
use crate::registry::Registry;

/// Where a cluster keeps its catalog and which storage its jobs may write.
#[derive(Args, Debug, Clone)]
pub struct PlacementArgs {
    /// Catalog of submitted jobs (a directory or storage URL), kept across restarts.
    #[arg(long, default_value = ".traffic/state")]
    pub state: String,
    /// Storage that submitted jobs may write to (`s3://` for any bucket).
    #[arg(long, default_value = "lake")]
    pub lake: String,
}

/// What every worker process of a cluster is given.
#[derive(Args, Debug, Clone)]
pub struct ProcessArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Where the control API listens, and its token.
    #[command(flatten)]
    pub control: ControlArgs,
    /// Where the catalog lives and what jobs may write.
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// Options of `traffic cluster start`.
#[derive(Args, Debug, Clone)]
pub struct ClusterStartArgs {
    /// Worker processes to start on this host.
    #[arg(short = 'n', long = "processes", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub processes: u32,
    /// Workers, control API and placement.
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Return once the cluster answers, leaving it running in the background (log in <state>/cluster.log).
    #[arg(long)]
    pub detach: bool,
}

/// Options of `traffic worker`.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// File listing every process's host:port, one per line, in process-index order.
    #[arg(long)]
    pub hostfile: PathBuf,
    /// This process's index in the hostfile.
    #[arg(long = "process-index")]
    pub process_index: u32,
    /// Workers, control API and placement.
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Run the worker in this process, without restarting it on failure (supervisors use this).
    #[arg(long, hide = true)]
    pub foreground: bool,
}

fn control_options(control: &ControlArgs) -> Result<ControlOptions> {
    let address = control
        .control
        .to_socket_addrs()
        .with_context(|| format!("bad control address '{}'", control.control))?
        .next()
        .context("the control address resolves to nothing")?;
    let options = ControlOptions { address, token: control.token.clone() };
    options.validate()?;
    Ok(options)
}

/// The arguments every worker process of a cluster shares (the token travels in the environment).
pub fn worker_args(workers: u32, control: &ControlArgs, placement: &PlacementArgs) -> Vec<String> {
    vec![
        "worker".into(),
        "--foreground".into(),
        "-w".into(),
        workers.to_string(),
        "--control".into(),
        control.control.clone(),
        "--state".into(),
        placement.state.clone(),
        "--lake".into(),
        placement.lake.clone(),
    ]
}

/// `traffic cluster start`.
pub fn start(args: ClusterStartArgs) -> Result<()> {
    control_options(&args.process.control)?;
    if let Some(token) = &args.process.control.token {
        std::env::set_var("TRAFFIC_TOKEN", token);
    }
    if args.detach {
        return detach(&args);
    }
    signals::install_stop_handlers();
    let worker = worker_args(args.process.workers, &args.process.control, &args.process.placement);
    let processes = args.processes as usize;
    log::info!(
        target: "traffic",
        "cluster: {processes} processes x {} workers, control API on http://{}, state {}, lake {}",
        args.process.workers,
        args.process.control.control,
        args.process.placement.state,
        args.process.placement.lake
    );
    supervise(&|| ProcessGroup::start(&worker, processes), &signals::stop_requested)
}

/// Starts the cluster again in a new session, in the background, and waits until it answers.
fn detach(args: &ClusterStartArgs) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log_dir = std::path::Path::new(&args.process.placement.state);
    std::fs::create_dir_all(log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log = std::fs::File::create(log_dir.join("cluster.log"))?;
    let argv: Vec<String> = std::env::args().skip(1).filter(|a| a != "--detach").collect();
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(argv).stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: Between fork and exec the hook only calls setsid, which is async-signal-safe and
    // neither allocates nor takes locks.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = command.spawn().context("cannot start the cluster in the background")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if args.process.control.call("GET", "/v1/cluster", None).is_ok() {
            println!(
                "cluster started (supervisor pid {}); control API on http://{}; log {}",
                child.id(),
                args.process.control.control,
                log_dir.join("cluster.log").display()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the cluster did not answer within 60 s; see {}", log_dir.join("cluster.log").display())
}

/// `traffic worker`: one process of a (possibly multi-host) cluster, restarted on failure.
pub fn worker(args: WorkerArgs, registry: Arc<Registry>) -> Result<()> {
    if args.foreground {
        let spec = ClusterSpec {
            workers: args.process.workers as usize,
            process: args.process_index as usize,
            addresses: crate::cluster::hostfile::read_hostfile(&args.hostfile)?,
        };
        if spec.process >= spec.addresses.len() {
            bail!("--process-index {} but the hostfile lists {} processes", spec.process, spec.addresses.len());
        }
        let control = if spec.process == 0 { Some(control_options(&args.process.control)?) } else { None };
        let options = WorkerOptions {
            spec,
            state: args.process.placement.state.clone(),
            lake: args.process.placement.lake.clone(),
            control,
        };
        return run_worker(options, registry);
    }
    signals::install_stop_handlers();
    let mut own = worker_args(args.process.workers, &args.process.control, &args.process.placement);
    own.extend(["--process-index".to_string(), args.process_index.to_string(), "--hostfile".to_string()]);
    own.push(args.hostfile.display().to_string());
    supervise(&|| ProcessGroup::spawn(vec![own.clone()], None), &signals::stop_requested)
}
