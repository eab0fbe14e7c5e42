//! The `traffic` command line: one binary for running dataflows, generating data and (later)
//! operating the cluster.

pub mod broker;
pub mod cluster;
pub mod control;
pub mod gen;
pub mod produce;
pub mod run;
pub mod units;
pub mod up;

use clap::{Parser, Subcommand};

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(name = "traffic", version, about = "City traffic data platform on Timely and Differential Dataflow")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start everything on embedded defaults: demo broker, sensors, cluster, stream and batch jobs, ./lake.
    Up(up::UpArgs),
    /// Run a dataflow by name on this host's processes or as one process of a cluster.
    Run(run::RunArgs),
    /// List the dataflows that can be run or submitted.
    Dataflows,
    /// Generate synthetic data.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Simulate sensors: send JSON readings to Kafka.
    Produce(produce::ProduceArgs),
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

#[derive(Subcommand, Debug)]
enum GenCommand {
    /// Hourly junction counts as CSV (DateTime,Junction,Vehicles,ID).
    Counts(gen::GenCountsArgs),
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::logging::init(&std::env::var("TRAFFIC_PROCESS_LABEL").unwrap_or_default());
    crate::cluster::install_panic_hook();
    let result = match cli.command {
        Command::Up(args) => up::up(args),
        Command::Run(args) => run::run(args),
        Command::Dataflows => {
            for registration in crate::dataflows::registry() {
                println!("{:<10} {}", registration.name, registration.about);
            }
            Ok(())
        }
        Command::Gen(GenCommand::Counts(args)) => gen::gen_counts(&args),
        Command::Produce(args) => produce::run(args),
        Command::Broker(args) => broker::run(args),
        Command::Cluster(ClusterCommand::Start(args)) => cluster::start(args),
        Command::Cluster(ClusterCommand::Status(args)) => control::status(args),
        Command::Cluster(ClusterCommand::Stop(args)) => control::shutdown(args),
        Command::Worker(args) => cluster::worker(args),
        Command::Submit(args) => control::submit(args),
        Command::List(args) => control::list(args),
        Command::Stop { control, id } => control::stop(control, id),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {}", crate::cluster::failstop::describe(&error));
            1
        }
    }
}
