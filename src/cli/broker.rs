//! `traffic broker`: the embedded demo broker (librdkafka's mock cluster), until Ctrl-C.

use anyhow::Result;
use clap::Args;

use crate::kafka::mock::EmbeddedBroker;

/// Options of `traffic broker`.
#[derive(Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Port on 127.0.0.1 to listen on (default: a free one, printed at start).
    #[arg(long)]
    pub port: Option<u16>,
    /// Topic to create.
    #[arg(long, default_value = "traffic-stream")]
    pub topic: String,
    /// Its number of partitions.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(args: BrokerArgs) -> Result<()> {
    crate::cluster::signals::install_stop_handlers();
    let broker = EmbeddedBroker::start(args.port)?;
    broker.create_topic(&args.topic, args.partitions)?;
    println!("{}", broker.bootstrap_servers());
    log::info!(
        target: "traffic",
        "embedded broker on {} with topic '{}' ({} partitions); it keeps a bounded log in memory. Ctrl-C stops it.",
        broker.bootstrap_servers(),
        args.topic,
        args.partitions
    );
    while !crate::cluster::signals::stop_requested() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Ok(())
}
