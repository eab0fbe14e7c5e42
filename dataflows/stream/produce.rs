//! `traffic produce`: the sensor simulator, sending JSON readings to Kafka.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::stream::simulator::Simulator;
use traffic::kafka::Producer;

/// Options of `traffic produce`.
#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "TRAFFIC_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic to send to.
    #[arg(long, default_value = "traffic-stream")]
    pub topic: String,
    /// Number of sensors, named S1..Sn.
    #[arg(long, default_value_t = 5)]
    pub sensors: usize,
    /// Messages per second over all sensors; 0 sends as fast as the broker takes them.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long (e.g. 10m).
    #[arg(long, value_parser = traffic::units::parse_duration)]
    pub duration: Option<Duration>,
    /// Random seed: the same seed sends the same values.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of messages broken on purpose (truncated, wrong type, missing field, out of range,
    /// non-finite, invalid UTF-8).
    #[arg(long, default_value_t = 0.0)]
    pub bad_fraction: f64,
}

/// What a producer run sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Messages sent.
    pub messages: u64,
    /// Of which broken on purpose.
    pub bad: u64,
}

/// Sends messages as `args` says, until the count or duration is reached or a stop is requested.
pub fn produce(args: &ProduceArgs, stop: impl Fn() -> bool) -> Result<Sent> {
    if !(0.0..=1.0).contains(&args.bad_fraction) {
        bail!("--bad-fraction must be between 0 and 1");
    }
    if !args.rate.is_finite() || args.rate < 0.0 {
        bail!("--rate must be a number >= 0");
    }
    let producer = Producer::new(&args.brokers, true)?;
    let mut simulator = Simulator::new(args.sensors, args.seed, args.bad_fraction);
    let mut payload = Vec::with_capacity(256);
    let started = Instant::now();
    let mut sent = Sent::default();
    let mut last_report = Instant::now();
    loop {
        if args.count.is_some_and(|c| sent.messages >= c)
            || args.duration.is_some_and(|d| started.elapsed() >= d)
            || stop()
        {
            break;
        }
        if args.rate > 0.0 {
            let due = started + Duration::from_secs_f64(sent.messages as f64 / args.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep((due - now).min(Duration::from_millis(100)));
                continue;
            }
        }
        let message = simulator.next(chrono::Utc::now().timestamp_micros(), &mut payload);
        sent.bad += u64::from(message.bad.is_some());
        producer.send(&args.topic, message.key.as_bytes(), &payload)?;
        sent.messages += 1;
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            log::info!(target: "traffic", "produce: {} messages sent ({} bad)", sent.messages, sent.bad);
        }
    }
    producer.flush(Duration::from_secs(60)).context("not every message reached the broker")?;
    Ok(sent)
}

/// `traffic produce`.
pub fn run(args: ProduceArgs) -> Result<()> {
    traffic::cluster::signals::install_stop_handlers();
    let started = Instant::now();
    let sent = produce(&args, traffic::cluster::signals::stop_requested)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "sent {} messages ({} bad) to '{}' in {seconds:.2} s ({:.0} messages/s)",
        sent.messages,
        sent.bad,
        args.topic,
        sent.messages as f64 / seconds.max(1e-9)
    );
    Ok(())
}
