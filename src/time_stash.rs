//! Holding an operator's input by time until the input frontier passes that time, then handing
//! it over in time order: how every commit-style operator here sees complete epochs and chunks.

use std::collections::BTreeMap;

use timely::communication::Pull;
use timely::dataflow::channels::Message;
use timely::dataflow::operators::generic::InputHandleCore;
use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

/// Input records held per time, each time with a capability to produce output at it.
pub struct TimeStash<D> {
    held: BTreeMap<u64, (Capability<u64>, Vec<D>)>,
}

impl<D> Default for TimeStash<D> {
    fn default() -> Self {
        TimeStash { held: BTreeMap::new() }
    }
}

impl<D> TimeStash<D> {
    /// Takes everything available on `input`, keeping a capability for each new time.
    pub fn absorb<P: Pull<Message<u64, Vec<D>>>>(&mut self, input: &mut InputHandleCore<u64, Vec<D>, P>) {
        self.absorb_with(input, |_| ());
    }

    /// As [`Self::absorb`], first showing each arriving batch to `arrived`: for work that need
    /// not wait for its time to complete.
    pub fn absorb_with<P: Pull<Message<u64, Vec<D>>>>(
        &mut self,
        input: &mut InputHandleCore<u64, Vec<D>, P>,
        mut arrived: impl FnMut(&[D]),
    ) {
        input.for_each(|cap, data| {
            arrived(data);
            let Some(time) = cap.least().copied() else { return };
            let entry = self.held.entry(time).or_insert_with(|| (cap.retain_least(0).expect("a time"), Vec::new()));
            entry.1.append(data);
        });
    }

    /// Removes and returns, oldest first, the times `frontier` has passed: no more input can
    /// arrive at them.
    pub fn complete(&mut self, frontier: &MutableAntichain<u64>) -> Vec<(Capability<u64>, Vec<D>)> {
        let mut ready = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if frontier.frontier().less_equal(entry.key()) {
                break;
            }
            ready.push(entry.remove());
        }
        ready
    }

    /// Everything held, by time, oldest first.
    pub fn held(&self) -> impl Iterator<Item = &[D]> {
        self.held.values().map(|(_, data)| data.as_slice())
    }
}
