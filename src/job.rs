//! What a named dataflow is to the platform: something every worker installs, steps and reports on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use timely::worker::Worker;

use crate::progress::Progress;

/// A dataflow that can be installed on the workers of a cluster.
///
/// Every worker calls [`Dataflow::install`] with the same arguments, in the same order, and then
/// steps its worker until the returned handle says the job is done.
pub trait Dataflow: Send + Sync {
    /// The registry name (`batch`, `stream`, ...).
    fn name(&self) -> &'static str;

    /// Builds the dataflow on `worker`.
    fn install(&self, worker: &mut Worker, context: &JobContext) -> Result<JobHandle>;

    /// The storage URLs the job writes to (checked against a cluster's lake before it runs).
    fn outputs(&self) -> Vec<String>;

    /// Checks what can be checked before the job is accepted (that its inputs exist and can be
    /// read, for instance), so that a job that could only fail is refused with a clear error
    /// instead of failing on a worker, which stops the whole cluster (fail-stop). By default
    /// there is nothing to check.
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// What a job's operators on one worker may use while it runs.
#[derive(Clone, Default)]
pub struct JobContext {
    /// Counters shown by the progress reporter and the control API (shared by the process).
    pub progress: Arc<Progress>,
    /// Set on every worker, at once, when the job is asked to stop: sources then close their
    /// current unit of work, the job commits it and finishes.
    pub stop: Rc<Cell<bool>>,
    /// How a failure of this job is recorded before the process stops.
    pub failure: Failure,
}

impl JobContext {
    /// Ends the process because of `error` (fail-stop), after recording it against the job.
    pub fn fail(&self, error: &anyhow::Error) -> ! {
        self.failure.stop(error)
    }
}

/// Records a job's failure where the cluster's supervisor will find it after the restart, so
/// that a job that keeps failing is given up instead of crashing the cluster forever.
#[derive(Clone, Default)]
pub struct Failure {
    record: Option<Arc<FailureRecorder>>,
}

/// Writes a job's failure down somewhere lasting.
type FailureRecorder = dyn Fn(&anyhow::Error) + Send + Sync;

impl Failure {
    /// A failure recorded by `record` (best effort) before the process stops.
    pub fn recorded_by(record: impl Fn(&anyhow::Error) + Send + Sync + 'static) -> Failure {
        Failure { record: Some(Arc::new(record)) }
    }

    /// Records `error` (if set up to) and ends the process.
    pub fn stop(&self, error: &anyhow::Error) -> ! {
        if let Some(record) = &self.record {
            record(error);
        }
        crate::cluster::fail_stop(error)
    }
}

/// The end-of-job figures, reported by worker 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Records (rows or messages) read.
    pub read: u64,
    /// Records written to the lake.
    pub written: u64,
    /// Records quarantined, each with its reason.
    pub quarantined: u64,
    /// Data files published.
    pub files: u64,
    /// Inputs skipped because they were already loaded.
    pub skipped: u64,
    /// Free text for the end-of-run line, e.g. where the output went.
    pub detail: String,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {} = written {} + quarantined {}; {} files published",
            self.read, self.written, self.quarantined, self.files
        )?;
        if self.skipped > 0 {
            write!(f, ", {} inputs skipped", self.skipped)?;
        }
        if !self.detail.is_empty() {
            write!(f, "; {}", self.detail)?;
        }
        Ok(())
    }
}

/// A job installed on one worker.
pub struct JobHandle {
    done: Box<dyn Fn() -> bool>,
    summary: Rc<RefCell<Option<Summary>>>,
}

impl JobHandle {
    /// A handle that is done when `done` says so, and whose summary (worker 0 only) lands in `summary`.
    pub fn new(done: impl Fn() -> bool + 'static, summary: Rc<RefCell<Option<Summary>>>) -> Self {
        JobHandle { done: Box::new(done), summary }
    }

    /// Whether every operator of the job on this worker has finished.
    pub fn is_done(&self) -> bool {
        (self.done)()
    }

    /// The job's summary, once done, on the worker that keeps it.
    pub fn summary(&self) -> Option<Summary> {
        self.summary.borrow().clone()
    }
}
