//! `stream`: sensor readings from Kafka, in epochs of processing time, to date-partitioned
//! Parquet exactly once, with event-time windows and congestion episodes.
//!
//! Worker 0 recovers from the latest checkpoint and deals out partitions; every worker reads its
//! partitions and stages each epoch's files; event-time windows are admitted, retired and reduced
//! with differential dataflow, and episodes detected per sensor; worker 0 checkpoints each epoch
//! once the progress frontier passes it, then publishes the epoch's files.

mod checkpoint;
mod columns;
mod commit;
mod episodes;
mod epoch;
mod ingest;
mod partials;
mod plan;
pub(crate) mod produce;
mod reading;
mod scanner;
mod schema;
pub mod simulator;
mod windows;

pub use reading::{parse_reading, Reading};

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, FromArgMatches};
use differential_dataflow::AsCollection;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Concatenate, Probe};
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use checkpoint::StartAt;
use commit::CommitItem;
use episodes::{EpisodeInput, Thresholds};
use plan::PlanItem;
use traffic::checkpoint::CommitAtFrontier;
use traffic::job::{Dataflow, JobContext, JobHandle};
use traffic::lake::{Lake, Location};
use traffic::registry::Registration;
use traffic::units::parse_duration;
use windows::{AdmissionInput, WindowSettings};

/// Arguments of the `stream` dataflow.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct StreamArgs {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long)]
    pub brokers: String,
    /// Topic of sensor readings.
    #[arg(long, default_value = "traffic-stream")]
    pub topic: String,
    /// Dataset root: a directory, or a file://, s3:// or memory:// URL.
    #[arg(long)]
    pub output: String,
    /// Epoch length: readings are committed once per epoch (e.g. 10s, 2s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub epoch: Duration,
    /// Where to start partitions when the output has no checkpoint yet.
    #[arg(long, value_enum, default_value_t = StartAt::Earliest)]
    pub start: StartAt,
    /// Event-time window length per sensor.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub window: Duration,
    /// How late (behind a sensor's latest event) a reading may be and still update its window.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub allowed_lateness: Duration,
    /// A window is congested when its mean speed (km/h) is below this...
    #[arg(long, default_value_t = 20.0)]
    pub congestion_speed: f64,
    /// ... and its mean density (percent) is above this.
    #[arg(long, default_value_t = 70.0)]
    pub congestion_density: f64,
    /// Also send congestion episodes as JSON to this topic (at least once).
    #[arg(long)]
    pub alerts_topic: Option<String>,
    /// Consumer group that offsets are committed to, for monitoring only (default traffic-<topic>).
    #[arg(long)]
    pub group_id: Option<String>,
    /// Stop once every partition is read up to where it ended when the run started, with the
    /// last epoch committed (as Spark's `availableNow` trigger): catch up on a backlog and exit.
    #[arg(long)]
    pub until_caught_up: bool,
}

/// The registry entry.
pub fn registration() -> Registration {
    Registration {
        name: "stream",
        about: "Read sensor JSON from Kafka into date-partitioned Parquet exactly once, with windows and congestion episodes",
        command: || StreamArgs::augment_args(clap::Command::new("stream")),
        build: |matches| Ok(Arc::new(StreamDataflow::new(StreamArgs::from_arg_matches(matches)?)?)),
    }
}

/// The stream dataflow with validated arguments.
pub struct StreamDataflow {
    args: StreamArgs,
}

impl StreamDataflow {
    /// Validates the arguments.
    pub fn new(args: StreamArgs) -> Result<Self> {
        Location::parse(&args.output, false)?;
        if args.epoch < Duration::from_millis(100) {
            bail!("--epoch must be at least 100ms");
        }
        if args.window < Duration::from_secs(1) {
            bail!("--window must be at least 1s");
        }
        if !(args.congestion_speed.is_finite() && args.congestion_density.is_finite()) {
            bail!("congestion thresholds must be numbers");
        }
        Ok(StreamDataflow { args })
    }

    fn group(&self) -> String {
        self.args.group_id.clone().unwrap_or_else(|| format!("traffic-{}", self.args.topic))
    }
}

impl Dataflow for StreamDataflow {
    fn name(&self) -> &'static str {
        "stream"
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.args.output.clone()]
    }

    fn install(&self, worker: &mut Worker, context: &JobContext) -> Result<JobHandle> {
        let args = &self.args;
        let lake = Lake::open(&args.output)?;
        let windows = WindowSettings {
            window: args.window.as_micros() as i64,
            lateness: args.allowed_lateness.as_micros() as i64,
        };
        let thresholds = Thresholds { speed: args.congestion_speed, density: args.congestion_density };
        let source = plan::Source {
            brokers: args.brokers.clone(),
            topic: args.topic.clone(),
            group: self.group(),
            start: args.start,
            epoch: args.epoch,
        };
        let ingest_settings = ingest::IngestSettings {
            brokers: args.brokers.clone(),
            topic: args.topic.clone(),
            group: self.group(),
            epoch: args.epoch,
            windows,
            until_caught_up: args.until_caught_up,
        };
        let commit_settings = commit::CommitSettings {
            brokers: args.brokers.clone(),
            topic: args.topic.clone(),
            group: self.group(),
            alerts_topic: args.alerts_topic.clone(),
        };
        let recovered = Rc::new(RefCell::new(None));
        let summary = Rc::new(RefCell::new(None));
        let probe = ProbeHandle::new();
        worker.dataflow_named::<u64, _, _>("stream", |scope| {
            let plan = plan::planner(scope, lake.clone(), source, recovered.clone(), context.clone());
            let assignments = plan.clone().flat_map(|item| match item {
                PlanItem::Assign(assignment) => Some(assignment),
                _ => None,
            });
            let (partials, reports) = ingest::ingest(assignments, ingest_settings, lake.clone(), context.clone());

            let restored_windows = plan.clone().flat_map(|item| match item {
                PlanItem::Windows(state) => Some(AdmissionInput::Restore(state)),
                _ => None,
            });
            let admission_input = restored_windows.concat(partials.map(AdmissionInput::Partial));
            let (admitted, admission_items) = windows::admit(admission_input, windows);
            let stats = windows::window_stats(admitted.as_collection());
            let window_items = windows::window_rows(stats.clone(), windows);

            let restored_episodes = plan.flat_map(|item| match item {
                PlanItem::Episodes(state) => Some(EpisodeInput::Restore(state)),
                _ => None,
            });
            let changes = stats.inner.map(|((key, agg), _time, diff)| EpisodeInput::Change(key, agg, diff));
            let episode_items = episodes::detect(restored_episodes.concat(changes), thresholds);

            let items = scope.concatenate([
                reports.map(CommitItem::from),
                admission_items.map(CommitItem::from),
                window_items.map(CommitItem::from),
                episode_items.map(CommitItem::from),
            ]);
            items
                .commit_at_frontier::<commit::CheckpointLog>(
                    (lake, commit_settings),
                    recovered,
                    summary.clone(),
                    context.clone(),
                )
                .probe_with(&probe);
        });
        Ok(JobHandle::new(move || probe.done(), summary))
    }
}
