//! The one loop every Timely worker runs, for `traffic run` and for a cluster alike: jobs are
//! installed and stopped by commands that every worker sees in the same order (a Timely
//! sequencer), stepped until done, and then removed.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use timely::synchronization::Sequencer;
use timely::worker::Worker;

use super::board::ClusterCommand;
use super::spec::ClusterSpec;
use crate::job::JobHandle;

/// What runs the loop: it supplies the jobs and hears how they end.
pub(super) trait Host: Send + Sync + 'static {
    /// Jobs every worker installs before the first step, without a command (`traffic run`'s one).
    fn initial_jobs(&self) -> Vec<ClusterCommand> {
        Vec::new()
    }

    /// Commands that arrived for the cluster; asked on the first worker of the cluster only, which
    /// hands them to every worker through the sequencer.
    fn take_commands(&self) -> Vec<ClusterCommand> {
        Vec::new()
    }

    /// Installs job `id` on `worker`. A job that cannot be installed stops the process
    /// (fail-stop): the other workers are in the middle of installing it too.
    fn install(&self, worker: &mut Worker, id: u64, name: &str, args: &[String]) -> InstalledJob;

    /// Job `id` ended on the first worker of the cluster; `shutting_down`: because the cluster
    /// (or the run) is stopping.
    fn ended(&self, id: u64, job: &InstalledJob, shutting_down: bool);

    /// Whether the loop ends once no job is left (a run), or only at a shutdown (a cluster).
    fn exits_when_idle(&self) -> bool;
}

/// A job installed on one worker.
pub(super) struct InstalledJob {
    /// The job's handle: done, summary.
    pub handle: JobHandle,
    /// Its stop flag, shared with its operators.
    pub stop: Rc<Cell<bool>>,
    /// Whether a user stopped it (rather than a shutdown).
    pub stopped_by_user: bool,
    /// The indices of the worker's Timely dataflows that make it up, dropped once it is done.
    indices: std::ops::Range<usize>,
}

impl InstalledJob {
    /// Installs with `install` whatever dataflows the job builds on `worker`, and remembers them.
    pub fn install(
        worker: &mut Worker,
        stop: Rc<Cell<bool>>,
        install: impl FnOnce(&mut Worker) -> JobHandle,
    ) -> InstalledJob {
        let first = worker.next_dataflow_index();
        let handle = install(worker);
        InstalledJob { handle, stop, stopped_by_user: false, indices: first..worker.next_dataflow_index() }
    }
}

/// Runs this process's workers of `spec` until `host` is done with them.
///
/// SIGINT or SIGTERM on any process asks every job of the cluster to stop (a shutdown): one
/// worker per process relays the signal through the sequencer.
pub(super) fn run_workers(spec: &ClusterSpec, host: Arc<dyn Host>) -> Result<()> {
    super::signals::install_stop_handlers();
    let workers = spec.workers;
    let (allocators, network) = super::connect::allocators(spec)?;
    let guards = timely::execute::execute_from(allocators, network, timely::WorkerConfig::default(), move |worker| {
        let mut commands: Sequencer<ClusterCommand> = Sequencer::new(worker, Instant::now());
        let leader = worker.index() == 0;
        let mut jobs: BTreeMap<u64, InstalledJob> = BTreeMap::new();
        let (mut shutting_down, mut asked) = (false, false);
        for command in host.initial_jobs() {
            apply(worker, command, &*host, &mut jobs, shutting_down);
        }
        loop {
            if leader {
                for command in host.take_commands() {
                    commands.push(command);
                }
            }
            if worker.index() % workers == 0 && !asked && super::signals::stop_requested() {
                commands.push(ClusterCommand::Shutdown);
                asked = true;
            }
            for command in &mut commands {
                shutting_down |= matches!(command, ClusterCommand::Shutdown);
                apply(worker, command, &*host, &mut jobs, shutting_down);
            }
            let done: Vec<u64> = jobs.iter().filter(|(_, job)| job.handle.is_done()).map(|(id, _)| *id).collect();
            for id in done {
                let job = jobs.remove(&id).expect("finished job");
                if leader {
                    host.ended(id, &job, shutting_down);
                }
                for index in job.indices {
                    worker.drop_dataflow(index);
                }
            }
            if jobs.is_empty() && (shutting_down || host.exits_when_idle()) {
                break;
            }
            worker.step_or_park(Some(Duration::from_millis(20)));
        }
    })
    .map_err(|e| anyhow!("cannot start the Timely cluster: {e}"))?;
    for result in guards.join() {
        result.map_err(|panic| anyhow!("a worker failed: {panic}"))?;
    }
    Ok(())
}

/// Carries out one command on this worker.
fn apply(
    worker: &mut Worker,
    command: ClusterCommand,
    host: &dyn Host,
    jobs: &mut BTreeMap<u64, InstalledJob>,
    shutting_down: bool,
) {
    match command {
        ClusterCommand::Start { id, .. } if jobs.contains_key(&id) => {}
        ClusterCommand::Start { id, name, args } => {
            let installed = host.install(worker, id, &name, &args);
            if shutting_down {
                installed.stop.set(true);
            }
            jobs.insert(id, installed);
        }
        ClusterCommand::Stop(id) => {
            if let Some(job) = jobs.get_mut(&id) {
                job.stop.set(true);
                job.stopped_by_user = true;
            }
        }
        ClusterCommand::Shutdown => jobs.values().for_each(|job| job.stop.set(true)),
    }
}
