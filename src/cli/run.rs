//! `traffic run <dataflow> [args] [-n N] [-w W] [--hostfile F --process-index P]`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, FromArgMatches};

use crate::cluster::{launch_local, run_job, ClusterArgs};
use crate::registry::Registry;

/// Options of `traffic run`. Its own help flag is off, so that `--help` after the dataflow's name
/// reaches the dataflow's arguments (and prints their help).
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// The dataflow to run (see `traffic dataflows`).
    #[arg(allow_hyphen_values = true)]
    pub dataflow: String,
    /// The dataflow's arguments, plus -n/--processes, -w/--workers, --hostfile and --process-index.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Runs a dataflow: starts the local processes of a cluster, or is one process of it.
pub fn run(args: RunArgs, registry: Arc<Registry>) -> Result<()> {
    if super::is_help(&args.dataflow) {
        return super::print_help("run");
    }
    let registration = registry.find(&args.dataflow)?;
    let command = ClusterArgs::augment_args((registration.command)())
        .bin_name(format!("traffic run {}", registration.name))
        .about(registration.about);
    let matches = command
        .try_get_matches_from(std::iter::once(registration.name.to_string()).chain(args.args.iter().cloned()))
        .unwrap_or_else(|e| e.exit());
    let cluster = ClusterArgs::from_arg_matches(&matches)?;
    let dataflow = (registration.build)(&matches)?;
    if cluster.launches_locally() {
        // A clear error before any worker process starts.
        dataflow.check()?;
        let argv: Vec<String> = std::env::args().skip(1).collect();
        return launch_local(&argv, cluster.processes as usize);
    }
    let spec = cluster.spec()?;
    let started = Instant::now();
    let summary = run_job(dataflow, &spec)?;
    if let Some(summary) = summary {
        println!("{} finished in {:.2} s: {summary}", registration.name, started.elapsed().as_secs_f64());
    }
    Ok(())
}
