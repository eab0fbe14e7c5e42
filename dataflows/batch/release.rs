//! Releasing partial aggregates: each worker holds the partials of the chunks it loaded until
//! the committer publishes their load, then releases them into the trend views itself.
//!
//! Why not send them with the chunk's record: the committer lives on worker 0, so every other
//! worker's partials would cross to it and half of them back again to the workers owning their
//! junctions, and worker 0 would merge them all alone. Held where they were computed, they are
//! merged by every worker in parallel and cross between processes once, already by junction.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use super::commit::{Committed, PartialUpdate};
use super::partials::Partials;

/// The partials of the chunks this worker loaded, by load id, until their load is published.
/// Shared by the worker's loader, which fills it, and its releaser, which empties it.
#[derive(Clone, Default)]
pub struct HeldPartials(Rc<RefCell<HashMap<String, Vec<Partials>>>>);

impl HeldPartials {
    /// Holds a chunk's partials until its load is published.
    pub fn hold(&self, load_id: &str, partials: Partials) {
        self.0.borrow_mut().entry(load_id.to_string()).or_default().push(partials);
    }

    /// Takes the partials of `load_id`'s chunks held here (none if this worker loaded none).
    fn take(&self, load_id: &str) -> Vec<Partials> {
        self.0.borrow_mut().remove(load_id).unwrap_or_default()
    }
}

/// The collection of visible partials: the committer's changes, passed on where they were made,
/// and on each worker, at a publication's time, the partials it holds for the published load.
///
/// A loader holds a chunk's partials before it sends the chunk's record, so a worker always holds
/// them by the time the publication, caused by that record, reaches it.
pub fn releaser<'scope>(
    committed: Stream<'scope, u64, Vec<(Committed, u64)>>,
    held: HeldPartials,
) -> Stream<'scope, u64, Vec<PartialUpdate>> {
    let route = |(committed, _time): &(Committed, u64)| match committed {
        Committed::Change(..) => 0,
        Committed::Published { worker, .. } => *worker as u64,
    };
    committed.unary::<CapacityContainerBuilder<Vec<PartialUpdate>>, _, _, _>(
        Exchange::new(route),
        "Release",
        move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut session = output.session(&cap);
                    for (committed, time) in data.drain(..) {
                        match committed {
                            Committed::Change(partial, diff) => session.give((partial, time, diff)),
                            Committed::Published { load_id, .. } => {
                                let chunks = held.take(&load_id);
                                if !chunks.is_empty() {
                                    session.give_iterator(
                                        Partials::load_records(&chunks).into_iter().map(|p| (p, time, 1)),
                                    );
                                }
                            }
                        }
                    }
                });
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use timely::dataflow::operators::{Inspect, ToStream};

    use super::*;
    use crate::batch::partials::{DailyPartial, Partial};

    fn day(junction: i32, day: i32, total: i64) -> DailyPartial {
        DailyPartial { junction, day, total, hours: 1, min: total as i32, max: total as i32 }
    }

    #[test]
    fn every_worker_releases_what_it_holds_once_its_load_is_published() {
        let released = Arc::new(Mutex::new(Vec::new()));
        let sink = released.clone();
        timely::execute(timely::Config::process(2), move |worker| {
            let index = worker.index();
            let held = HeldPartials::default();
            // Each worker loaded one chunk of load "a"; day 2 of junction 1 was cut between them.
            let mine = match index {
                0 => vec![day(1, 1, 10), day(1, 2, 5), day(2, 1, 7)],
                _ => vec![day(1, 2, 4), day(1, 3, 8)],
            };
            held.hold("a", Partials { daily: mine, profile: Default::default() });
            held.hold("b", Partials { daily: vec![day(9, 9, 9)], profile: Default::default() });
            let sink = sink.clone();
            worker.dataflow::<u64, _, _>(|scope| {
                // Only the committer, on worker 0, publishes: "a" at time 3, and "b" not at all.
                let notices: Vec<(Committed, u64)> = match index {
                    0 => (0..2).map(|worker| (Committed::Published { load_id: "a".into(), worker }, 3)).collect(),
                    _ => Vec::new(),
                };
                let changes = vec![(Committed::Change(Partial::Daily(vec![day(3, 1, 1)]), -1), 3)];
                let committed = if index == 0 { [notices, changes].concat() } else { notices };
                releaser(committed.to_stream(scope), held.clone()).inspect(move |update| {
                    sink.lock().unwrap().push((index, update.clone()));
                });
            });
        })
        .unwrap();
        let released = released.lock().unwrap().clone();
        let daily_of = |worker: usize| -> Vec<(Partial, u64, isize)> {
            released.iter().filter(|(w, _)| *w == worker).map(|(_, update)| update.clone()).collect()
        };
        assert_eq!(
            daily_of(0),
            vec![
                (Partial::Daily(vec![day(1, 1, 10), day(1, 2, 5)]), 3, 1),
                (Partial::Daily(vec![day(2, 1, 7)]), 3, 1),
                (Partial::Daily(vec![day(3, 1, 1)]), 3, -1),
            ]
        );
        assert_eq!(daily_of(1), vec![(Partial::Daily(vec![day(1, 2, 4), day(1, 3, 8)]), 3, 1)]);
    }
}
