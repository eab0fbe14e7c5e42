//! A worker process of a long-running cluster: its workers install and remove jobs as commands
//! arrive (the same commands, in the same order, on every worker), and the first worker of
//! process 0 keeps the catalog and the board the control API reads.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use timely::synchronization::Sequencer;
use timely::worker::Worker;

use super::board::{Board, ClusterCommand, ClusterInfo};
use super::catalog::{now_ms, Catalog, JobRecord, JobState, MAX_FAILURES};
use super::control::{self, ControlOptions};
use super::failstop::describe;
use super::spec::ClusterSpec;
use crate::job::{Failure, JobContext, JobHandle};
use crate::registry::Registry;

/// How to run one worker process.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Shape and place of this process.
    pub spec: ClusterSpec,
    /// Where the catalog lives.
    pub state: String,
    /// The storage jobs may write to.
    pub lake: String,
    /// The control API (served by process 0 only).
    pub control: Option<ControlOptions>,
}

struct Installed {
    handle: JobHandle,
    dataflows: std::ops::Range<usize>,
    stop: Rc<Cell<bool>>,
    stopped_by_user: bool,
}

/// Runs this process's workers until the cluster is shut down.
pub fn run_worker(options: WorkerOptions, registry: Arc<Registry>) -> Result<()> {
    let catalog = Catalog::open(&options.state)?;
    let info = ClusterInfo {
        processes: options.spec.processes(),
        workers: options.spec.workers,
        state: options.state.clone(),
        lake: control::lake_root(&options.lake)?,
        started_ms: now_ms(),
    };
    let board = Arc::new(Board::new(info));
    if options.spec.process == 0 {
        // Jobs to resume go first, before the API can take new submissions.
        for command in resume(&catalog, &board, &registry) {
            board.send(command);
        }
        if let Some(control) = &options.control {
            let address = control::serve(control, board.clone(), catalog.clone(), registry.clone())?;
            log::info!(target: "traffic", "control API on http://{address}");
        }
    }
    super::signals::install_stop_handlers();
    let (workers, process) = (options.spec.workers, options.spec.process);
    let (allocators, network) = super::connect::allocators(&options.spec)?;
    let guards = timely::execute::execute_from(allocators, network, timely::WorkerConfig::default(), move |worker| {
        let mut commands: Sequencer<ClusterCommand> = Sequencer::new(worker, Instant::now());
        let leader = worker.index() == 0;
        let mut jobs: BTreeMap<u64, Installed> = BTreeMap::new();
        let (mut shutting_down, mut asked) = (false, false);
        loop {
            if leader {
                for command in board.take_commands() {
                    commands.push(command);
                }
            }
            if worker.index() % workers == 0 && !asked && super::signals::stop_requested() {
                commands.push(ClusterCommand::Shutdown);
                asked = true;
            }
            for command in &mut commands {
                match command {
                    ClusterCommand::Start { id, .. } if jobs.contains_key(&id) => {}
                    ClusterCommand::Start { id, name, args } => {
                        let installed = install(worker, id, &name, &args, &board, &catalog, &registry, process);
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
                    ClusterCommand::Shutdown => {
                        shutting_down = true;
                        jobs.values().for_each(|job| job.stop.set(true));
                    }
                }
            }
            let done: Vec<u64> = jobs.iter().filter(|(_, job)| job.handle.is_done()).map(|(id, _)| *id).collect();
            for id in done {
                let job = jobs.remove(&id).expect("finished job");
                if leader {
                    record_end(&catalog, &board, id, &job, shutting_down);
                }
                for index in job.dataflows {
                    worker.drop_dataflow(index);
                }
            }
            if shutting_down && jobs.is_empty() {
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

/// Installs a job on this worker. A job that cannot be installed is a job failure: recorded,
/// then the process stops (the other workers are in the middle of installing it too).
fn install(
    worker: &mut Worker,
    id: u64,
    name: &str,
    args: &[String],
    board: &Board,
    catalog: &Catalog,
    registry: &Registry,
    process: usize,
) -> Installed {
    let recorder = catalog.clone();
    let failure = Failure::recorded_by(move |error| {
        if let Err(e) = recorder.record_failure(id, process, &describe(error)) {
            log::error!(target: "traffic", "cannot record the failure of job {id}: {e:#}");
        }
    });
    let context = JobContext { progress: board.progress(id), stop: Rc::default(), failure };
    let first = worker.next_dataflow_index();
    let handle = registry
        .build(name, args)
        .and_then(|d| d.install(worker, &context))
        .unwrap_or_else(|e| context.fail(&e.context(format!("job {id} ({name})"))));
    if worker.index() == 0 {
        log::info!(target: "traffic", "job {id}: {name} installed");
    }
    Installed { handle, dataflows: first..worker.next_dataflow_index(), stop: context.stop, stopped_by_user: false }
}

/// At start: the jobs to install again, and the ones that failed too often to try again.
fn resume(catalog: &Catalog, board: &Board, registry: &Registry) -> Vec<ClusterCommand> {
    let jobs = catalog.jobs().unwrap_or_else(|e| super::fail_stop(&e.context("cannot read the job catalog")));
    let mut commands = Vec::new();
    for mut job in jobs {
        if matches!(job.state, JobState::Running | JobState::Stopping) {
            let failures = catalog.recent_failures(job.id).unwrap_or_default();
            if failures.len() >= MAX_FAILURES {
                job.state = JobState::Failed;
                job.error = failures.last().map(|f| f.error.clone());
                log::error!(target: "traffic", "job {}: failed {} times, giving up: {}", job.id, failures.len(), job.error.as_deref().unwrap_or(""));
            } else if job.state == JobState::Stopping {
                job.state = JobState::Stopped;
            } else if let Err(error) = check(&job, registry) {
                // Installing it would stop the cluster again, and every other job with it.
                log::error!(target: "traffic", "job {}: cannot resume, marked failed: {error}", job.id);
                job.state = JobState::Failed;
                job.error = Some(error);
            } else {
                job.starts += 1;
                commands.push(ClusterCommand::Start { id: job.id, name: job.name.clone(), args: job.args.clone() });
                log::info!(target: "traffic", "job {}: {} resumes (start {})", job.id, job.name, job.starts);
            }
            job.updated_ms = now_ms();
            if let Err(e) = catalog.put(&job) {
                super::fail_stop(&e.context("cannot update the job catalog"));
            }
        }
        board.set_job(job);
    }
    commands
}

/// Whether a job to resume can still run: its dataflow is known, its arguments parse and its
/// inputs are still there.
fn check(job: &JobRecord, registry: &Registry) -> Result<(), String> {
    registry.build(&job.name, &job.args).and_then(|dataflow| dataflow.check()).map_err(|e| describe(&e))
}

/// Records how a job ended. A job interrupted by a cluster shutdown stays `running`, to resume.
fn record_end(catalog: &Catalog, board: &Board, id: u64, job: &Installed, shutting_down: bool) {
    let Some(mut record): Option<JobRecord> = board.job(id) else { return };
    record.state = if job.stopped_by_user {
        JobState::Stopped
    } else if shutting_down {
        JobState::Running
    } else {
        JobState::Finished
    };
    // A job interrupted by a shutdown has no final summary yet: it resumes at the next start.
    record.summary = if record.state == JobState::Running { None } else { job.handle.summary() };
    record.updated_ms = now_ms();
    if let Some(summary) = &record.summary {
        log::info!(target: "traffic", "job {id}: {} {:?}: {summary}", record.name, record.state);
    }
    if let Err(e) = catalog.put(&record) {
        log::error!(target: "traffic", "cannot record the end of job {id}: {e:#}");
    }
    board.set_job(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_whose_inputs_are_gone_is_marked_failed_not_resumed() {
        let catalog = Catalog::open("memory://resume-test/state").unwrap();
        let args = ["--to", "10", "--input", "/nonexistent/history"];
        catalog.put(&JobRecord::new(1, "count", args.map(String::from).to_vec())).unwrap();
        let info = ClusterInfo { processes: 1, workers: 1, state: String::new(), lake: String::new(), started_ms: 0 };
        let board = Board::new(info);
        let registry = Registry::new(vec![crate::count_dataflow::registration()]);
        assert!(resume(&catalog, &board, &registry).is_empty(), "installing it would stop the cluster");
        let job = board.job(1).unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(job.error.as_deref().unwrap_or("").contains("does not exist"), "{:?}", job.error);
        assert_eq!(catalog.jobs().unwrap()[0].state, JobState::Failed);
    }
}
