//! The stream's first step, on worker 0: recover from the latest checkpoint, then send each
//! worker its partitions and offsets, and each sensor's restored state to the worker that owns it.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};

use super::checkpoint::{recover, Recovered, StartAt};
use super::episodes::SensorEpisodes;
use super::windows::SensorWindows;
use traffic::job::JobContext;
use traffic::lake::Lake;

/// A partition to read, from an offset, on a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The worker that reads it: `partition % workers`.
    pub worker: usize,
    /// Partition.
    pub partition: i32,
    /// First offset to read.
    pub offset: i64,
    /// The partition's end when the run started: where a run `--until-caught-up` stops.
    pub end: i64,
}

/// What the planner sends, at the run's first epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PlanItem {
    /// A partition for a worker.
    Assign(Assignment),
    /// A sensor's restored window state.
    Windows(SensorWindows),
    /// A sensor's restored episode state.
    Episodes(SensorEpisodes),
}

/// Connection and start settings the planner needs.
#[derive(Clone, Debug)]
pub struct Source {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Consumer group offsets are committed to, for monitoring.
    pub group: String,
    /// Where partitions without a checkpoint start.
    pub start: StartAt,
    /// Epoch length.
    pub epoch: std::time::Duration,
}

/// The planning operator. Worker 0 recovers and emits the plan at the first epoch (and leaves
/// what it recovered in `shared` for the committer); other workers emit nothing.
pub fn planner<'scope>(
    scope: Scope<'scope, u64>,
    lake: Lake,
    source_settings: Source,
    shared: Rc<RefCell<Option<Recovered>>>,
    job: JobContext,
) -> StreamVec<'scope, u64, PlanItem> {
    let (index, peers) = (scope.index(), scope.peers());
    source::<_, CapacityContainerBuilder<Vec<PlanItem>>, _, _>(scope, "Plan", move |capability, _info| {
        let mut capability = (index == 0).then_some(capability);
        move |output| {
            let Some(capability) = capability.take() else { return };
            let s = &source_settings;
            let recovered =
                recover(&lake, &s.brokers, &s.topic, &s.group, s.start, s.epoch).unwrap_or_else(|e| job.fail(&e));
            let at = capability.delayed(&recovered.first_epoch);
            let mut session = output.session(&at);
            for (&partition, &offset) in &recovered.offsets {
                let worker = partition as usize % peers;
                let end = recovered.ends.get(&partition).copied().unwrap_or(offset);
                session.give(PlanItem::Assign(Assignment { worker, partition, offset, end }));
            }
            if let Some(last) = &recovered.last {
                session.give_iterator(last.windows.iter().cloned().map(PlanItem::Windows));
                session.give_iterator(last.episodes.iter().cloned().map(PlanItem::Episodes));
            }
            log::info!(
                target: "traffic",
                "stream: {} partitions of '{}' on {peers} workers, from epoch {}{}",
                recovered.offsets.len(),
                s.topic,
                recovered.first_epoch,
                recovered.last.as_ref().map_or(String::new(), |c| format!(" (resuming after checkpoint {})", c.epoch))
            );
            *shared.borrow_mut() = Some(recovered);
        }
    })
}
