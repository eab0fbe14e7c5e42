//! The `traffic` command line: the platform's commands (run, cluster, worker, submit, list,
//! stop, broker) plus those the binary adds, over the dataflows of the binary's registry.

mod broker;
pub mod cluster;
pub mod control;
mod run;

use std::sync::Arc;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::registry::Registry;

/// What a binary brings to the platform's command line: its dataflows and its own commands.
pub struct Application {
    /// The dataflows `run` and `submit` know by name.
    pub registry: Registry,
    /// Adds the binary's own subcommands to the platform's.
    pub augment: fn(clap::Command) -> clap::Command,
    /// Runs one of the binary's subcommands if `matches` names one; `None` when it is the
    /// platform's.
    pub run: fn(&clap::ArgMatches) -> Option<Result<()>>,
}

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(name = "traffic", version, about = "City traffic data platform on Timely and Differential Dataflow")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a dataflow by name on this host's processes or as one process of a cluster.
    Run(run::RunArgs),
    /// List the dataflows that can be run or submitted.
    Dataflows,
    /// Run the embedded demo Kafka broker (librdkafka's mock cluster).
    Broker(broker::BrokerArgs),
    /// Start, inspect or stop a long-running cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// One process of a cluster (one per host, with the same hostfile); restarted on failure.
    Worker(cluster::WorkerArgs),
    /// Submit a dataflow by name to a running cluster; prints the job id.
    Submit(control::SubmitArgs),
    /// List a cluster's jobs with live figures.
    List(control::ControlArgs),
    /// Stop a job (a stream writes its final checkpoint first).
    Stop {
        #[command(flatten)]
        control: control::ControlArgs,
        /// The job id.
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Start N worker processes of W workers on this host and supervise them.
    Start(cluster::ClusterStartArgs),
    /// Show the cluster's shape and job counts.
    Status(control::ControlArgs),
    /// Stop every job (streams checkpoint) and the cluster; running jobs resume at the next start.
    Stop(control::ControlArgs),
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main(application: Application) -> i32 {
    let matches = (application.augment)(Cli::command()).get_matches();
    crate::logging::init(&std::env::var("TRAFFIC_PROCESS_LABEL").unwrap_or_default());
    crate::cluster::install_panic_hook();
    let registry = Arc::new(application.registry);
    let result = match (application.run)(&matches) {
        Some(result) => result,
        None => match Cli::from_arg_matches(&matches) {
            Ok(cli) => run_platform_command(cli.command, registry),
            Err(error) => error.exit(),
        },
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {}", crate::cluster::failstop::describe(&error));
            1
        }
    }
}

/// Whether `arg` asks for help.
fn is_help(arg: &str) -> bool {
    arg == "--help" || arg == "-h"
}

/// Prints the help of the platform's subcommand `name` (one whose own help flag is off, so that
/// the flag can reach a dataflow's arguments).
fn print_help(name: &str) -> Result<()> {
    let mut command = Cli::command();
    command.build();
    let subcommand = command.find_subcommand_mut(name).expect("a platform subcommand");
    Ok(subcommand.print_help()?)
}

fn run_platform_command(command: Command, registry: Arc<Registry>) -> Result<()> {
    match command {
        Command::Run(args) => run::run(args, registry),
        Command::Dataflows => {
            for registration in registry.iter() {
                println!("{:<10} {}", registration.name, registration.about);
            }
            Ok(())
        }
        Command::Broker(args) => broker::run(args),
        Command::Cluster(ClusterCommand::Start(args)) => cluster::start(args),
        Command::Cluster(ClusterCommand::Status(args)) => control::status(args),
        Command::Cluster(ClusterCommand::Stop(args)) => control::shutdown(args),
        Command::Worker(args) => cluster::worker(args, registry),
        Command::Submit(args) => control::submit(args, &registry),
        Command::List(args) => control::list(args),
        Command::Stop { control, id } => control::stop(control, id),
    }
}
