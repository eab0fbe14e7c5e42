//! Running one job on this process's Timely workers until it is done (`traffic run`).

use std::sync::{Arc, Mutex};

use anyhow::Result;
use timely::worker::Worker;

use super::board::ClusterCommand;
use super::failstop::fail_stop;
use super::spec::ClusterSpec;
use super::worker_loop::{run_workers, Host, InstalledJob};
use crate::job::{Dataflow, JobContext, Summary};
use crate::progress::{Progress, Reporter};

/// Installs `dataflow` on every worker of this process, steps the workers until it is done and
/// returns worker 0's summary (on process 0; `None` elsewhere).
///
/// A worker that fails ends the process (fail-stop): the other processes of the cluster then
/// stop too, and a rerun resumes from the job's checkpoints. SIGINT or SIGTERM on any process
/// asks the job to stop on every worker of the cluster.
pub fn run_job(dataflow: Arc<dyn Dataflow>, spec: &ClusterSpec) -> Result<Option<Summary>> {
    let progress = Arc::new(Progress::default());
    let reporter = (spec.process == 0).then(|| Reporter::start(dataflow.name(), progress.clone()));
    let host = Arc::new(OneJob { dataflow, progress, summary: Mutex::default() });
    run_workers(spec, host.clone())?;
    drop(reporter);
    let summary = host.summary.lock().expect("summary").take();
    Ok(summary)
}

/// The host of a run: one job, installed by every worker at the start.
struct OneJob {
    dataflow: Arc<dyn Dataflow>,
    progress: Arc<Progress>,
    summary: Mutex<Option<Summary>>,
}

impl Host for OneJob {
    fn initial_jobs(&self) -> Vec<ClusterCommand> {
        vec![ClusterCommand::Start { id: 0, name: self.dataflow.name().to_string(), args: Vec::new() }]
    }

    fn install(&self, worker: &mut Worker, _id: u64, _name: &str, _args: &[String]) -> InstalledJob {
        let context = JobContext { progress: self.progress.clone(), ..Default::default() };
        InstalledJob::install(worker, context.stop.clone(), |worker| match self.dataflow.install(worker, &context) {
            Ok(handle) => handle,
            Err(error) => fail_stop(&error.context(format!("cannot start dataflow '{}'", self.dataflow.name()))),
        })
    }

    fn ended(&self, _id: u64, job: &InstalledJob, _shutting_down: bool) {
        *self.summary.lock().expect("summary") = job.handle.summary();
    }

    fn exits_when_idle(&self) -> bool {
        true
    }
}
