//! The job catalog: which dataflows were submitted to a cluster, with what arguments, and how
//! they ended. It lives in the cluster's state location, so that a restarted (or rescaled)
//! cluster installs the running jobs again and they resume from their own checkpoints.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{encode, list_records, Versioned};
use crate::job::Summary;
use crate::lake::Lake;

/// A job gives up after this many failures within [`FAILURE_WINDOW_MS`].
pub const MAX_FAILURES: usize = 3;
/// Failures older than this no longer count against a job.
pub const FAILURE_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Installed (or to be installed again after a restart).
    Running,
    /// Stopping at a user's request.
    Stopping,
    /// Done by itself (a batch load).
    Finished,
    /// Stopped by a user.
    Stopped,
    /// Gave up after repeated failures.
    Failed,
}

/// One submitted job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: u64,
    /// The dataflow's registry name.
    pub name: String,
    /// Its arguments, as submitted.
    pub args: Vec<String>,
    /// Where it stands.
    pub state: JobState,
    /// When it was submitted (milliseconds since the epoch).
    pub submitted_ms: u64,
    /// When its state last changed.
    pub updated_ms: u64,
    /// How many times it was installed (more than once after restarts).
    pub starts: u32,
    /// Its summary, once it ended.
    pub summary: Option<Summary>,
    /// Why it failed.
    pub error: Option<String>,
}

impl JobRecord {
    /// A job just submitted.
    pub fn new(id: u64, name: &str, args: Vec<String>) -> JobRecord {
        JobRecord {
            id,
            name: name.to_string(),
            args,
            state: JobState::Running,
            submitted_ms: now_ms(),
            updated_ms: now_ms(),
            starts: 1,
            summary: None,
            error: None,
        }
    }
}

impl Versioned for JobRecord {
    const KIND: &'static str = "job record";
    const VERSION: u32 = 2;
}

/// A recorded failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When (milliseconds since the epoch).
    pub at_ms: u64,
    /// Which process.
    pub process: usize,
    /// The error.
    pub error: String,
}

impl Versioned for FailureRecord {
    const KIND: &'static str = "failure record";
    const VERSION: u32 = 2;
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The catalog in a state location.
#[derive(Clone, Debug)]
pub struct Catalog {
    lake: Lake,
}

impl Catalog {
    /// Opens the catalog at `url` (created if local).
    pub fn open(url: &str) -> Result<Catalog> {
        Ok(Catalog { lake: Lake::open(url)? })
    }

    /// Every job, in id order.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        Ok(list_records(&self.lake, "jobs")?.into_iter().map(|(_, job)| job).collect())
    }

    /// Writes a job's record.
    pub fn put(&self, job: &JobRecord) -> Result<()> {
        self.lake.put(&format!("jobs/{:08}.json", job.id), encode(job)?)
    }

    /// The id for the next job.
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.jobs()?.iter().map(|j| j.id).max().unwrap_or(0) + 1)
    }

    /// Records that job `id` failed on `process` (each record under its own name, so processes
    /// on different hosts never overwrite each other's).
    pub fn record_failure(&self, id: u64, process: usize, error: &str) -> Result<()> {
        let record = FailureRecord { at_ms: now_ms(), process, error: error.to_string() };
        let path = format!("failures/{id:08}/{:016}-p{process:04}.json", record.at_ms);
        self.lake.put(&path, encode(&record)?)
    }

    /// The recent failures of job `id` (within [`FAILURE_WINDOW_MS`]), oldest first.
    pub fn recent_failures(&self, id: u64) -> Result<Vec<FailureRecord>> {
        let since = now_ms().saturating_sub(FAILURE_WINDOW_MS);
        let mut failures: Vec<FailureRecord> = list_records(&self.lake, &format!("failures/{id:08}"))?
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f: &FailureRecord| f.at_ms >= since)
            .collect();
        failures.sort_by_key(|f| f.at_ms);
        Ok(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_failures() {
        let catalog = Catalog::open("memory://catalog-test/state").unwrap();
        assert_eq!(catalog.next_id().unwrap(), 1);
        let job = JobRecord::new(1, "batch", vec!["--input".into(), "data".into()]);
        catalog.put(&job).unwrap();
        assert_eq!(catalog.jobs().unwrap(), vec![job]);
        assert_eq!(catalog.next_id().unwrap(), 2);
        catalog.record_failure(1, 0, "boom").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        catalog.record_failure(1, 1, "bang").unwrap();
        let failures = catalog.recent_failures(1).unwrap();
        assert_eq!(failures.iter().map(|f| f.error.as_str()).collect::<Vec<_>>(), vec!["boom", "bang"]);
        assert!(catalog.recent_failures(2).unwrap().is_empty());
    }
}
