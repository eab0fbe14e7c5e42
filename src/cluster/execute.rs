//! Running one job on this process's Timely workers until it is done.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::failstop::fail_stop;
use super::spec::ClusterSpec;
use crate::job::{Dataflow, JobContext, Summary};
use crate::progress::Reporter;

/// Installs `dataflow` on every worker of this process, steps the workers until it is done and
/// returns worker 0's summary (on process 0; `None` elsewhere).
///
/// A worker that fails ends the process (fail-stop): the other processes of the cluster then
/// stop too, and a rerun resumes from the job's checkpoints.
pub fn run_job(dataflow: Arc<dyn Dataflow>, spec: &ClusterSpec) -> Result<Option<Summary>> {
    let context = JobContext::default();
    let reporter = (spec.process == 0).then(|| Reporter::start(dataflow.name(), context.progress.clone()));
    let guards = timely::execute(spec.timely_config(), move |worker| {
        let handle = match dataflow.install(worker, &context) {
            Ok(handle) => handle,
            Err(error) => fail_stop(&error.context(format!("cannot start dataflow '{}'", dataflow.name()))),
        };
        while !handle.is_done() {
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
