//! The `traffic` command line: one binary for running dataflows, generating data and (later)
//! operating the cluster.

pub mod broker;
pub mod gen;
pub mod produce;
pub mod run;
pub mod units;

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
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {}", crate::cluster::failstop::describe(&error));
            1
        }
    }
}
