//! A worker process of a long-running cluster: its workers install and remove jobs as commands
//! arrive (the same commands, in the same order, on every worker), and the first worker of
//! process 0 keeps the catalog and the board the control API reads.

use std::rc::Rc;
use std::sync::Arc;

use anyhow::Result;
use timely::worker::Worker;

use super::board::{Board, ClusterCommand, ClusterInfo};
use super::catalog::{now_ms, Catalog, JobRecord, JobState, MAX_FAILURES};
use super::control::{self, ControlOptions};
use super::failstop::describe;
use super::spec::ClusterSpec;
use super::worker_loop::{run_workers, Host, InstalledJob};
use crate::job::{Failure, JobContext};
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
    let host = ClusterHost { board, catalog, registry, process: options.spec.process };
    run_workers(&options.spec, Arc::new(host))
}

/// The host of a cluster's worker process: jobs come from the board (the control API) and
/// their ends go to the catalog.
struct ClusterHost {
    board: Arc<Board>,
    catalog: Catalog,
    registry: Arc<Registry>,
    process: usize,
}

impl Host for ClusterHost {
    fn take_commands(&self) -> Vec<ClusterCommand> {
        self.board.take_commands()
    }

    /// A job that cannot be installed is a job failure: recorded, then the process stops.
    fn install(&self, worker: &mut Worker, id: u64, name: &str, args: &[String]) -> InstalledJob {
        let (recorder, process) = (self.catalog.clone(), self.process);
        let failure = Failure::recorded_by(move |error| {
            if let Err(e) = recorder.record_failure(id, process, &describe(error)) {
                log::error!(target: "traffic", "cannot record the failure of job {id}: {e:#}");
            }
        });
        let context = JobContext { progress: self.board.progress(id), stop: Rc::default(), failure };
        let installed = InstalledJob::install(worker, context.stop.clone(), |worker| {
            self.registry
                .build(name, args)
                .and_then(|d| d.install(worker, &context))
                .unwrap_or_else(|e| context.fail(&e.context(format!("job {id} ({name})"))))
        });
        if worker.index() == 0 {
            log::info!(target: "traffic", "job {id}: {name} installed");
        }
        installed
    }

    fn ended(&self, id: u64, job: &InstalledJob, shutting_down: bool) {
        record_end(&self.catalog, &self.board, id, job, shutting_down);
    }

    fn exits_when_idle(&self) -> bool {
        false
    }
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
fn record_end(catalog: &Catalog, board: &Board, id: u64, job: &InstalledJob, shutting_down: bool) {
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
