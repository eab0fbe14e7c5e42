//! Running one job on this process's Timely workers until it is done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use serde::{Deserialize, Serialize};
use timely::synchronization::Sequencer;

use super::failstop::fail_stop;
use super::spec::ClusterSpec;
use crate::job::{Dataflow, JobContext, Summary};
use crate::progress::{Progress, Reporter};

/// Commands every worker of a cluster sees in the same order.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum JobCommand {
    /// Stop the job cleanly: close the current unit of work, commit it, finish.
    Stop,
}

/// Installs `dataflow` on every worker of this process, steps the workers until it is done and
/// returns worker 0's summary (on process 0; `None` elsewhere).
///
/// A worker that fails ends the process (fail-stop): the other processes of the cluster then
/// stop too, and a rerun resumes from the job's checkpoints. SIGINT or SIGTERM on any process
/// asks the job to stop on every worker of the cluster (through a Timely sequencer).
pub fn run_job(dataflow: Arc<dyn Dataflow>, spec: &ClusterSpec) -> Result<Option<Summary>> {
    let progress = Arc::new(Progress::default());
    let reporter = (spec.process == 0).then(|| Reporter::start(dataflow.name(), progress.clone()));
    super::signals::install_stop_handlers();
    let workers = spec.workers;
    let (allocators, network) = super::connect::allocators(spec)?;
    let guards = timely::execute::execute_from(allocators, network, timely::WorkerConfig::default(), move |worker| {
        let context = JobContext { progress: progress.clone(), ..Default::default() };
        let mut commands: Sequencer<JobCommand> = Sequencer::new(worker, Instant::now());
        let handle = match dataflow.install(worker, &context) {
            Ok(handle) => handle,
            Err(error) => fail_stop(&error.context(format!("cannot start dataflow '{}'", dataflow.name()))),
        };
        let mut asked = false;
        while !handle.is_done() {
            // One worker per process relays a local signal to the whole cluster.
            if !asked && worker.index() % workers == 0 && super::signals::stop_requested() {
                commands.push(JobCommand::Stop);
                asked = true;
            }
            for command in &mut commands {
                match command {
                    JobCommand::Stop => context.stop.set(true),
                }
            }
            worker.step_or_park(Some(Duration::from_millis(20)));
        }
        handle.summary()
    })
    .map_err(|e| anyhow!("cannot start the Timely cluster: {e}"))?;
    let mut summary = None;
    for result in guards.join() {
        match result {
            Ok(Some(s)) => summary = Some(s),
            Ok(None) => {}
            Err(panic) => return Err(anyhow!("a worker failed: {panic}")),
        }
    }
    drop(reporter);
    Ok(summary)
}
