//! `traffic up`: the whole platform on embedded defaults: a demo broker, the sensor simulator,
//! a local cluster running the stream and batch dataflows, and a lake in `./lake/`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::stream::produce::{produce, ProduceArgs};
use traffic::cli::cluster::{worker_args, PlacementArgs};
use traffic::cli::control::ControlArgs;
use traffic::cluster::processes::ProcessGroup;
use traffic::cluster::signals;
use traffic::cluster::supervisor::supervise;
use traffic::kafka::mock::EmbeddedBroker;

/// Options of `traffic up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Kafka bootstrap servers; without them an embedded demo broker is started.
    #[arg(long, env = "TRAFFIC_BROKERS")]
    pub brokers: Option<String>,
    /// Port of the embedded broker on 127.0.0.1.
    #[arg(long, default_value_t = 9092)]
    pub broker_port: u16,
    /// Historical count CSVs for the batch layer.
    #[arg(long, default_value = "data")]
    pub data: String,
    /// Worker processes.
    #[arg(short = 'n', long = "processes", default_value_t = 1)]
    pub processes: u32,
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 2)]
    pub workers: u32,
    /// Simulated sensor messages per second.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// The stream's epoch.
    #[arg(long, default_value = "10s")]
    pub epoch: String,
    /// Where the control API listens, and its token.
    #[command(flatten)]
    pub control: ControlArgs,
    /// Where the catalog lives and what jobs may write.
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// `lake` joined with a bucket-like name: `lake/traffic-batch-data`, or `s3://traffic-batch-data`.
fn under(lake: &str, name: &str) -> String {
    if lake.ends_with('/') {
        format!("{lake}{name}")
    } else {
        format!("{lake}/{name}")
    }
}

/// Runs everything until Ctrl-C.
pub fn up(args: UpArgs) -> Result<()> {
    signals::install_stop_handlers();
    let broker = match &args.brokers {
        Some(_) => None,
        None => {
            let broker = EmbeddedBroker::start(Some(args.broker_port)).with_context(|| {
                format!("cannot start the embedded broker (is port {} taken? use --broker-port)", args.broker_port)
            })?;
            broker.create_topic("traffic-stream", 4)?;
            broker.create_topic("traffic-alerts", 1)?;
            Some(broker)
        }
    };
    let brokers =
        args.brokers.clone().unwrap_or_else(|| broker.as_ref().expect("broker").bootstrap_servers().to_string());
    let lake = &args.placement.lake;
    let (batch_out, stream_out) = (under(lake, "traffic-batch-data"), under(lake, "traffic-streaming-data"));
    if let Some(token) = &args.control.token {
        std::env::set_var("TRAFFIC_TOKEN", token);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let stopping = {
        let stop = stop.clone();
        move || stop.load(Ordering::Relaxed) || signals::stop_requested()
    };
    let worker = worker_args(args.workers, &args.control, &args.placement);
    let processes = args.processes as usize;
    let cluster = {
        let stopping = stopping.clone();
        std::thread::spawn(move || supervise(&|| ProcessGroup::start(&worker, processes), &stopping))
    };
    let producer = {
        let produce_args = ProduceArgs {
            brokers: brokers.clone(),
            topic: "traffic-stream".into(),
            sensors: 5,
            rate: args.rate,
            count: None,
            duration: None,
            seed: traffic::cluster::catalog::now_ms(),
            bad_fraction: 0.002,
        };
        let stopping = stopping.clone();
        std::thread::spawn(move || produce(&produce_args, stopping))
    };

    wait_for_api(&args.control, &stopping)?;
    let jobs = args.control.call("GET", "/v1/jobs", None)?;
    let running = |name: &str, output: &str| {
        jobs.as_array().into_iter().flatten().any(|j| {
            j["name"] == name
                && j["state"] == "running"
                && j["args"].as_array().is_some_and(|a| a.iter().any(|v| v == output))
        })
    };
    if !running("stream", &stream_out) {
        let stream_args = [
            "--brokers",
            &brokers,
            "--output",
            &stream_out,
            "--epoch",
            &args.epoch,
            "--alerts-topic",
            "traffic-alerts",
        ];
        args.control.call("POST", "/v1/jobs", Some(&json!({ "name": "stream", "args": stream_args })))?;
    }
    // The control API refuses a batch job whose history is missing (instead of letting it fail on
    // a worker and stop the stream with it): then the stream runs alone.
    let history = if running("batch", &batch_out) {
        Ok(())
    } else {
        let submit = json!({ "name": "batch", "args": ["--input", &args.data, "--output", &batch_out] });
        args.control.call("POST", "/v1/jobs", Some(&submit)).map(|_| ())
    };
    if let Err(error) = &history {
        log::warn!(target: "traffic", "batch layer skipped: {error:#} (pass --data with the count CSVs)");
    }
    println!("traffic is up:");
    match &broker {
        Some(_) => println!(
            "  Kafka         {brokers} (embedded demo broker, in memory; topics traffic-stream, traffic-alerts)"
        ),
        None => println!("  Kafka         {brokers} (topics traffic-stream, traffic-alerts)"),
    }
    println!("  sensors       S1..S5, {} messages/s to traffic-stream", args.rate);
    println!(
        "  cluster       {} process(es) x {} workers; control API http://{} (traffic list)",
        args.processes, args.workers, args.control.control
    );
    match &history {
        Ok(_) => println!("  batch lake    {batch_out}  (counts/, quarantine/, junction_daily/, junction_profile/)"),
        Err(error) => println!("  batch lake    skipped: {error:#}"),
    }
    println!("  stream lake   {stream_out}  (readings/, quarantine/, windows/, congestion/)");
    println!("Ctrl-C stops everything cleanly; `traffic up` again resumes.");

    let mut last_status = Instant::now() - Duration::from_secs(60);
    while !stopping() {
        if last_status.elapsed() >= Duration::from_secs(5) {
            last_status = Instant::now();
            if let Ok(jobs) = args.control.call("GET", "/v1/jobs", None) {
                println!("{}", status_line(&jobs));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    println!("stopping: the stream writes its final checkpoint...");
    let cluster_result = cluster.join().map_err(|_| anyhow::anyhow!("the supervisor thread panicked"))?;
    let sent = producer.join().map_err(|_| anyhow::anyhow!("the producer thread panicked"))?;
    drop(broker);
    cluster_result?;
    let sent = sent?;
    println!("stopped; {} sensor messages were sent this time", sent.messages);
    Ok(())
}

fn wait_for_api(control: &ControlArgs, stopping: &dyn Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !stopping() {
        if control.call("GET", "/v1/cluster", None).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the cluster's control API did not answer on {}", control.control)
}

/// `stream: 1,234 readings (3 quarantined), epoch ..., lag 0 | batch: finished, 17,472 rows`.
fn status_line(jobs: &Value) -> String {
    // Running jobs, and the latest batch load however it ended.
    let latest_batch =
        jobs.as_array().into_iter().flatten().filter(|j| j["name"] == "batch").filter_map(|j| j["id"].as_u64()).max();
    let parts: Vec<String> = jobs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| j["state"] == "running" || j["id"].as_u64() == latest_batch)
        .map(|j| {
            let f = &j["figures"];
            let n = |k: &str| f[k].as_u64().unwrap_or(0);
            match j["name"].as_str().unwrap_or("") {
                "stream" => format!(
                    "stream: {} readings written, {} quarantined, Kafka lag {}",
                    n("written"),
                    n("quarantined"),
                    n("kafka_lag")
                ),
                name => format!(
                    "{name} #{}: {}, {} rows written, {} quarantined",
                    j["id"],
                    j["state"].as_str().unwrap_or(""),
                    n("written"),
                    n("quarantined")
                ),
            }
        })
        .collect();
    parts.join(" | ")
}
