//! The dataflows of traffic, their input formats, and what the `traffic` binary adds to the
//! platform's command line.
//!
//! Each dataflow is a folder (`batch/`, `stream/`) with a `registration()`; [`registry`] lists
//! them, and adding a dataflow is its folder plus one line there. The platform (crate `traffic`)
//! never names a dataflow: [`application`] hands it this registry and the commands below.

mod batch;
mod random;
pub mod stream;
mod up;

use anyhow::Result;
use clap::{FromArgMatches, Subcommand};
use traffic::cli::Application;
use traffic::registry::Registry;

/// Every dataflow of the binary, in the order `traffic dataflows` lists them.
pub fn registry() -> Registry {
    Registry::new(vec![batch::registration(), stream::registration()])
}

/// The platform's command line with this crate's dataflows and commands.
pub fn application() -> Application {
    Application { registry: registry(), augment: Commands::augment_subcommands, run: run_command }
}

/// The binary's own commands, beside the platform's.
#[derive(Subcommand, Debug)]
enum Commands {
    /// Start everything on embedded defaults: demo broker, sensors, cluster, stream and batch jobs, ./lake.
    Up(up::UpArgs),
    /// Generate synthetic data.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Simulate sensors: send JSON readings to Kafka.
    Produce(stream::produce::ProduceArgs),
}

#[derive(Subcommand, Debug)]
enum GenCommand {
    /// Hourly junction counts as CSV (DateTime,Junction,Vehicles,ID).
    Counts(batch::gen::GenCountsArgs),
}

/// Runs one of [`Commands`] if `matches` names one.
fn run_command(matches: &clap::ArgMatches) -> Option<Result<()>> {
    let (name, _) = matches.subcommand()?;
    if !Commands::has_subcommand(name) {
        return None;
    }
    let command = match Commands::from_arg_matches(matches) {
        Ok(command) => command,
        Err(error) => error.exit(),
    };
    Some(match command {
        Commands::Up(args) => up::up(args),
        Commands::Gen(GenCommand::Counts(args)) => batch::gen::gen_counts(&args),
        Commands::Produce(args) => stream::produce::run(args),
    })
}
