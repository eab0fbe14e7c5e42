//! The batch's committer: on worker 0, writes each chunk's record as it arrives, takes the chunks
//! in time order as the progress frontier passes them, and publishes an input's files once all
//! its chunks are recorded.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::manifest::{chunk_record_path, chunk_records_dir, load_commit_path, ChunkRecord, LoadCommit};
use super::partials::{Partial, Partials};
use super::plan::{LoadPlan, Plan, CLAIMS};
use traffic::checkpoint::{create_record, publish, Committer};
use traffic::job::Summary;
use traffic::lake::Lake;
use traffic::progress::Progress;

/// A change to the collection of partial aggregates.
pub type PartialUpdate = (Partial, u64, isize);

/// What the committer tells the trend views, with the time it happened at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Committed {
    /// Partials it read itself enter (`+1`: chunks recorded by an earlier run, loads visible at
    /// the start) or leave (`-1`: a load replaced by a reload).
    Change(Partial, isize),
    /// A load's files were published: `worker` releases the partials of the chunks it loaded.
    Published {
        /// The load published.
        load_id: String,
        /// The worker this notice is for (each gets one).
        worker: usize,
    },
}

/// The batch's commit protocol: chunk records written as they arrive, a load committed and its
/// files published once all its chunks are recorded. Its changes tell the views which partial
/// aggregates are visible: a load's partials enter when its files are published, and leave when a
/// reload replaces them.
pub struct BatchCommitter {
    log: CommitLog,
}

impl Committer for BatchCommitter {
    type Item = ChunkRecord;
    type Change = Committed;
    type Setup = Lake;
    type Recovered = Plan;

    fn recover(lake: Lake, plan: Plan, peers: usize) -> Result<(Self, Vec<Committed>)> {
        let (log, changes) = CommitLog::start(lake, plan, peers)?;
        Ok((BatchCommitter { log }, changes))
    }

    /// Writes each chunk's record as soon as it arrives, not when the frontier passes its
    /// chunk: the chunk's files are staged before the record is sent, and with claimed pieces the
    /// frontier trails the last chunks, so waiting left their writes all to the end of the run.
    fn received(&mut self, records: &[ChunkRecord]) -> Result<()> {
        records.iter().try_for_each(|record| write_chunk_record(&self.log.lake, record))
    }

    fn commit(&mut self, time: u64, records: Vec<ChunkRecord>, progress: &Progress) -> Result<Vec<Committed>> {
        let mut changes = Vec::new();
        for record in records {
            changes.extend(self.log.record(record)?);
            self.log.report(progress, time);
            Progress::add(&progress.committed, 1);
        }
        Ok(changes)
    }

    fn finish(self, stopped: bool) -> Result<Summary> {
        self.log.finish(stopped)
    }
}

/// Writes the record of a finished chunk, once its counts reconcile.
fn write_chunk_record(lake: &Lake, record: &ChunkRecord) -> Result<()> {
    if record.read != record.written + record.quarantined {
        bail!(
            "chunk {} of load {} does not reconcile: read {} != written {} + quarantined {}",
            record.chunk,
            record.load_id,
            record.read,
            record.written,
            record.quarantined
        );
    }
    create_record(lake, &chunk_record_path(&record.load_id, record.chunk), record)
}

/// The state of this run's loads, and the log of load commits.
struct CommitLog {
    lake: Lake,
    visible: VisiblePartials,
    loads: HashMap<String, PendingLoad>,
    /// Workers in the run: each gets a notice of every publication.
    peers: usize,
    next_seq: u64,
    summary: Summary,
    /// Claims this run's loaders may have made, deleted when the run ends.
    claims: Vec<String>,
}

/// Partial aggregates of the loads visible at the start of the run, by load id, as they entered
/// the collection (for retraction when one is replaced). A load published by this run is not
/// replaced in the same run (inputs are distinct), so its partials are not kept.
type VisiblePartials = HashMap<String, Partials>;

struct PendingLoad {
    plan: LoadPlan,
    /// Every recorded chunk: those of `plan.recorded` (an earlier run's, whose partials are read
    /// back from their files) and this run's (whose loaders hold their partials).
    records: BTreeMap<u32, ChunkRecord>,
}

impl CommitLog {
    /// Starts from the plan; returns the partials of the visible loads, and publishes loads whose
    /// chunks were all recorded by an interrupted run.
    fn start(lake: Lake, plan: Plan, peers: usize) -> Result<(CommitLog, Vec<Committed>)> {
        let mut changes: Vec<Committed> =
            plan.current.iter().flat_map(|(_, partials)| partials.records().map(|p| Committed::Change(p, 1))).collect();
        let mut log = CommitLog {
            lake,
            visible: plan.current.into_iter().map(|(commit, partials)| (commit.load_id, partials)).collect(),
            loads: HashMap::new(),
            peers,
            next_seq: plan.next_seq,
            summary: Summary { skipped: plan.skipped, ..Default::default() },
            claims: plan.tasks.iter().filter_map(|t| t.claim.clone()).collect(),
        };
        for load in plan.loads {
            let records = load.recorded.iter().map(|r| (r.chunk, r.clone())).collect();
            let load_id = load.load_id.clone();
            log.loads.insert(load_id.clone(), PendingLoad { plan: load, records });
            changes.extend(log.publish_if_complete(&load_id)?);
        }
        Ok((log, changes))
    }

    /// Takes a finished chunk whose record is written (see [`write_chunk_record`]); publishes its
    /// load if it was the last one.
    fn record(&mut self, record: ChunkRecord) -> Result<Vec<Committed>> {
        let load_id = record.load_id.clone();
        let Some(pending) = self.loads.get_mut(&load_id) else { bail!("chunk of an unplanned load {load_id}") };
        pending.records.insert(record.chunk, record);
        self.publish_if_complete(&load_id)
    }

    /// Shows the committed figures.
    fn report(&self, progress: &Progress, time: u64) {
        Progress::set(&progress.read, self.summary.read);
        Progress::set(&progress.written, self.summary.written);
        Progress::set(&progress.quarantined, self.summary.quarantined);
        Progress::set(&progress.frontier, time);
    }

    fn publish_if_complete(&mut self, load_id: &str) -> Result<Vec<Committed>> {
        let complete = self.loads.get(load_id).is_some_and(|p| p.records.len() as u32 == p.plan.chunks);
        if !complete {
            return Ok(Vec::new());
        }
        let PendingLoad { plan, records } = self.loads.remove(load_id).expect("pending load");
        let files: Vec<_> = records.values().flat_map(|r| r.files.iter().cloned()).collect();
        let targets: HashSet<&str> = files.iter().map(|f| f.target.as_str()).collect();
        let retired: Vec<String> = plan
            .replaces
            .iter()
            .flat_map(|old| old.files.iter().map(|f| f.target.clone()).chain(old.partials.iter().cloned()))
            .filter(|t| !targets.contains(t.as_str()))
            .collect();
        let commit = LoadCommit {
            seq: self.next_seq,
            load_id: plan.load_id.clone(),
            source: plan.source.clone(),
            chunks: plan.chunks,
            read: records.values().map(|r| r.read).sum(),
            written: records.values().map(|r| r.written).sum(),
            quarantined: records.values().map(|r| r.quarantined).sum(),
            files,
            retired,
            replaces: plan.replaces.as_ref().map(|c| c.load_id.clone()),
            // The chunks' partials stay where the loaders wrote them: merging them here would put
            // work on the path between the last chunk and the trend views.
            partials: records.values().map(|r| r.partials.clone()).collect(),
        };
        let missing: Vec<String> = plan.recorded.iter().map(|r| r.partials.clone()).collect();
        let recovered = Partials::read_all(&self.lake, &missing)?;
        create_record(&self.lake, &load_commit_path(commit.seq), &commit)?;
        publish(&self.lake, &commit.files)?;
        self.lake.delete_many(&commit.retired)?;
        let chunk_records: Vec<String> = (0..plan.chunks).map(|c| chunk_record_path(&plan.load_id, c)).collect();
        self.lake.delete_many(&chunk_records)?;
        log::debug!(target: "traffic", "published {} ({})", chunk_records_dir(&plan.load_id), plan.source.url);
        self.next_seq += 1;
        self.summary.read += commit.read;
        self.summary.written += commit.written;
        self.summary.quarantined += commit.quarantined;
        self.summary.files += commit.files.len() as u64;
        let mut changes: Vec<Committed> =
            Partials::load_records(&recovered).into_iter().map(|p| Committed::Change(p, 1)).collect();
        if let Some(old) = plan.replaces.as_ref().and_then(|old| self.visible.remove(&old.load_id)) {
            changes.extend(old.records().map(|p| Committed::Change(p, -1)));
        }
        // Chunks loaded by this run: their loaders release the partials they hold.
        if records.len() > plan.recorded.len() {
            let load_id = &plan.load_id;
            changes.extend((0..self.peers).map(|worker| Committed::Published { load_id: load_id.clone(), worker }));
        }
        Ok(changes)
    }

    fn finish(self, stopped: bool) -> Result<Summary> {
        self.lake.delete_many(&self.claims)?;
        self.lake.tidy(traffic::checkpoint::STAGING);
        self.lake.tidy(CLAIMS);
        self.lake.tidy("_manifests/chunks");
        let mut detail = format!("output {}", self.lake.url());
        if stopped && !self.loads.is_empty() {
            detail.push_str(&format!(
                "; stopped early with {} inputs unfinished: run again to finish them",
                self.loads.len()
            ));
        } else if let Some(unfinished) = self.loads.values().next() {
            bail!(
                "load of {} did not finish: {} of {} chunks",
                unfinished.plan.source.url,
                unfinished.records.len(),
                unfinished.plan.chunks
            );
        }
        Ok(Summary { detail, ..self.summary })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use timely::dataflow::operators::{Input, Probe};
    use timely::dataflow::ProbeHandle;
    use traffic::checkpoint::CommitAtFrontier;
    use traffic::input::InputFile;
    use traffic::job::JobContext;

    use super::*;

    fn record(chunk: u32, read: u64, written: u64) -> ChunkRecord {
        ChunkRecord {
            load_id: "load".into(),
            chunk,
            range: (0, 10),
            read,
            written,
            quarantined: 0,
            files: Vec::new(),
            partials: String::new(),
        }
    }

    #[test]
    fn a_chunk_record_is_written_before_the_frontier_passes_its_chunk() {
        // With claimed pieces the frontier trails the last chunks: waiting for it left every
        // last chunk's record write to the end of the run.
        let lake = Lake::open("memory://records-on-arrival").unwrap();
        let plan = Plan {
            loads: vec![LoadPlan {
                load_id: "load".into(),
                source: InputFile { url: "file:///counts.csv".into(), size: 10, modified: 0, etag: None },
                chunks: 1,
                recorded: Vec::new(),
                replaces: None,
            }],
            ..Plan::default()
        };
        let in_run = lake.clone();
        timely::execute_directly(move |worker| {
            let (lake, probe) = (in_run, ProbeHandle::new());
            let mut input = worker.dataflow::<u64, _, _>(|scope| {
                let (input, records) = scope.new_input::<Vec<ChunkRecord>>();
                let plan = Rc::new(RefCell::new(Some(plan)));
                records
                    .commit_at_frontier::<BatchCommitter>(lake.clone(), plan, Rc::default(), JobContext::default())
                    .probe_with(&probe);
                input
            });
            input.advance_to(5);
            input.send(record(0, 3, 3));
            input.flush();
            for _ in 0..10 {
                worker.step();
            }
            assert!(probe.less_equal(&5), "the frontier has not passed the chunk");
            assert!(lake.get(&chunk_record_path("load", 0)).unwrap().is_some(), "its record is written");
        });
        // The input closed, the frontier passed the chunk: its load was published as before.
        assert!(lake.get(&load_commit_path(0)).unwrap().is_some());
        assert!(lake.get(&chunk_record_path("load", 0)).unwrap().is_none(), "records go once published");
    }

    #[test]
    fn a_chunk_that_does_not_reconcile_is_not_recorded() {
        let lake = Lake::open("memory://records-that-do-not-reconcile").unwrap();
        let error = write_chunk_record(&lake, &record(1, 3, 2)).unwrap_err();
        assert!(error.to_string().contains("does not reconcile"), "{error}");
        assert!(lake.get(&chunk_record_path("load", 1)).unwrap().is_none());
    }
}
