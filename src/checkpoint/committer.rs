//! The frontier-driven commit operator, and the [`Committer`] trait each dataflow's outputs
//! implement: one protocol for every table, whatever the dataflow.

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::Result;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use crate::job::{JobContext, Summary};
use crate::progress::Progress;
use crate::time_stash::TimeStash;

/// How a dataflow makes its outputs visible exactly once: driven on worker 0 by
/// [`CommitAtFrontier::commit_at_frontier`], which hands it each time (a chunk, an epoch) once
/// the progress frontier has passed it, so that every item of that time is there.
///
/// Every call that fails stops the job (fail-stop); a restart recovers from what the committed
/// records say, so each step must be idempotent or guarded by a create-once record.
pub trait Committer: Sized + 'static {
    /// What the dataflow's operators send to be committed, at the time they belong to.
    type Item: ExchangeData;
    /// What committing tells the rest of the dataflow, emitted at the committed time.
    type Change: Clone + 'static;
    /// Where it writes and how: given when the dataflow is built.
    type Setup: 'static;
    /// What recovery found, handed over on worker 0 by the job's planning operator.
    type Recovered: 'static;

    /// Finishes what an interrupted run left (idempotently) and returns the committer, with the
    /// changes recovery makes visible (emitted at time 0).
    fn recover(setup: Self::Setup, recovered: Self::Recovered, peers: usize) -> Result<(Self, Vec<Self::Change>)>;

    /// Items as they arrive, before their time is complete: for work that need not wait for it.
    fn received(&mut self, items: &[Self::Item]) -> Result<()> {
        let _ = items;
        Ok(())
    }

    /// Commits `time`, all of whose items are here.
    fn commit(&mut self, time: u64, items: Vec<Self::Item>, progress: &Progress) -> Result<Vec<Self::Change>>;

    /// Ends the run once no time is left to commit; `stopped` says the job was asked to stop early.
    fn finish(self, stopped: bool) -> Result<Summary>;
}

/// The commit operator, as a method of the stream of items to commit.
pub trait CommitAtFrontier<'scope, D> {
    /// Sends every item to worker 0, where a `C` recovered from `recovered` (once the planning
    /// operator has put it there) commits each time as the frontier passes it. The output carries
    /// the committer's changes with the time they were made at; the job's `summary` is set, and
    /// the output's frontier empties, once the input is done and `C` has finished.
    fn commit_at_frontier<C: Committer<Item = D>>(
        self,
        setup: C::Setup,
        recovered: Rc<RefCell<Option<C::Recovered>>>,
        summary: Rc<RefCell<Option<Summary>>>,
        job: JobContext,
    ) -> StreamVec<'scope, u64, (C::Change, u64)>;
}

impl<'scope, D: ExchangeData> CommitAtFrontier<'scope, D> for StreamVec<'scope, u64, D> {
    fn commit_at_frontier<C: Committer<Item = D>>(
        self,
        setup: C::Setup,
        recovered: Rc<RefCell<Option<C::Recovered>>>,
        summary: Rc<RefCell<Option<Summary>>>,
        job: JobContext,
    ) -> StreamVec<'scope, u64, (C::Change, u64)> {
        let (index, peers) = (self.scope().index(), self.scope().peers());
        let mut setup = Some(setup);
        self.unary_frontier::<CapacityContainerBuilder<Vec<(C::Change, u64)>>, _, _, _>(
            Exchange::new(|_: &D| 0),
            "Commit",
            move |initial, _info| {
                // Held until the summary is written, so the job is not done before it.
                let mut initial: Option<Capability<u64>> = (index == 0).then_some(initial);
                let mut committer: Option<C> = None;
                let mut stash: TimeStash<D> = TimeStash::default();
                move |(input, frontier), output| {
                    let Some(initial_cap) = initial.as_ref() else {
                        stash.absorb(input);
                        return;
                    };
                    if committer.is_none() {
                        if let Some(found) = recovered.borrow_mut().take() {
                            let setup = setup.take().expect("recovered once");
                            let (mut started, changes) =
                                C::recover(setup, found, peers).unwrap_or_else(|e| job.fail(&e));
                            output.session(initial_cap).give_iterator(changes.into_iter().map(|c| (c, 0)));
                            // Items that came before recovery could start.
                            for items in stash.held() {
                                started.received(items).unwrap_or_else(|e| job.fail(&e));
                            }
                            committer = Some(started);
                        }
                    }
                    stash.absorb_with(input, |items| {
                        if let Some(started) = committer.as_mut() {
                            started.received(items).unwrap_or_else(|e| job.fail(&e));
                        }
                    });
                    let Some(started) = committer.as_mut() else { return };
                    for (cap, items) in stash.complete(frontier) {
                        let time = *cap.time();
                        let changes = started.commit(time, items, &job.progress).unwrap_or_else(|e| job.fail(&e));
                        output.session(&cap).give_iterator(changes.into_iter().map(|c| (c, time)));
                    }
                    if frontier.frontier().is_empty() {
                        let finished = committer.take().expect("started").finish(job.stop.get());
                        *summary.borrow_mut() = Some(finished.unwrap_or_else(|e| job.fail(&e)));
                        initial = None;
                    }
                }
            },
        )
    }
}
