//! The board shared by the control API and the first worker of process 0: the job table it
//! shows, the commands it queues for the cluster, and each job's live counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::catalog::JobRecord;
use crate::progress::Progress;

/// Commands every worker of the cluster sees in the same order (through a Timely sequencer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCommand {
    /// Install job `id`: the dataflow `name` with `args`.
    Start {
        /// Job id.
        id: u64,
        /// Registry name.
        name: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// Stop job `id` cleanly (streams write a final checkpoint).
    Stop(u64),
    /// Stop every job and the cluster; running jobs resume at the next start.
    Shutdown,
}

/// Facts about the cluster, for `traffic cluster status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Number of processes.
    pub processes: usize,
    /// Worker threads per process.
    pub workers: usize,
    /// Where the catalog lives.
    pub state: String,
    /// The storage jobs may write to.
    pub lake: String,
    /// When this incarnation started (ms since the epoch).
    pub started_ms: u64,
}

/// The shared board.
pub struct Board {
    /// Facts about the cluster.
    pub info: ClusterInfo,
    inbox: Mutex<Vec<ClusterCommand>>,
    jobs: Mutex<BTreeMap<u64, JobRecord>>,
    progress: Mutex<HashMap<u64, Arc<Progress>>>,
}

impl Board {
    /// An empty board.
    pub fn new(info: ClusterInfo) -> Board {
        Board { info, inbox: Mutex::default(), jobs: Mutex::default(), progress: Mutex::default() }
    }

    /// Queues a command for the cluster.
    pub fn send(&self, command: ClusterCommand) {
        self.inbox.lock().expect("inbox").push(command);
    }

    /// Takes the queued commands.
    pub fn take_commands(&self) -> Vec<ClusterCommand> {
        std::mem::take(&mut *self.inbox.lock().expect("inbox"))
    }

    /// Records a job's current record.
    pub fn set_job(&self, job: JobRecord) {
        self.jobs.lock().expect("jobs").insert(job.id, job);
    }

    /// A job's current record.
    pub fn job(&self, id: u64) -> Option<JobRecord> {
        self.jobs.lock().expect("jobs").get(&id).cloned()
    }

    /// Every job's current record.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.jobs.lock().expect("jobs").values().cloned().collect()
    }

    /// The counters of job `id` on this process (created on first use).
    pub fn progress(&self, id: u64) -> Arc<Progress> {
        self.progress.lock().expect("progress").entry(id).or_default().clone()
    }
}
