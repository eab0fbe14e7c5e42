//! The smallest complete dataflow, for the platform's own tests and as the example of
//! ARCHITECTURE.md: every worker counts its share of `1..=N` in rounds of ten, and worker 0
//! commits each round through the commit protocol.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, FromArgMatches};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use crate::checkpoint::{CommitAtFrontier, Committer};
use crate::job::{Dataflow, JobContext, JobHandle, Summary};
use crate::progress::Progress;
use crate::registry::Registration;

/// Arguments of `count`.
#[derive(Args, Clone, Debug)]
struct CountArgs {
    /// Count from 1 to this.
    #[arg(long)]
    to: u64,
    /// A file that must exist for the job to be accepted.
    #[arg(long)]
    input: Option<String>,
}

/// The registry entry: one line in a binary's registry.
pub fn registration() -> Registration {
    Registration {
        name: "count",
        about: "Count from 1 to N (a test dataflow)",
        command: || CountArgs::augment_args(clap::Command::new("count")),
        build: |matches| Ok(Arc::new(CountDataflow { args: CountArgs::from_arg_matches(matches)? })),
    }
}

struct CountDataflow {
    args: CountArgs,
}

impl Dataflow for CountDataflow {
    fn name(&self) -> &'static str {
        "count"
    }

    fn outputs(&self) -> Vec<String> {
        Vec::new()
    }

    fn check(&self) -> Result<()> {
        match &self.args.input {
            Some(input) if !std::path::Path::new(input).exists() => bail!("input {input} does not exist"),
            _ => Ok(()),
        }
    }

    fn install(&self, worker: &mut Worker, context: &JobContext) -> Result<JobHandle> {
        let to = self.args.to;
        let summary = Rc::new(RefCell::new(None));
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let (index, peers) = (scope.index() as u64, scope.peers() as u64);
            let numbers = source::<_, CapacityContainerBuilder<Vec<u64>>, _, _>(scope, "Numbers", move |cap, _| {
                let mut cap = Some(cap);
                move |output| {
                    let Some(cap) = cap.take() else { return };
                    for n in (1..=to).filter(|n| n % peers == index) {
                        output.session(&cap.delayed(&(n / 10))).give(n);
                    }
                }
            });
            numbers
                .commit_at_frontier::<CountCommitter>(
                    (),
                    Rc::new(RefCell::new(Some(()))),
                    summary.clone(),
                    context.clone(),
                )
                .probe_with(&probe);
        });
        Ok(JobHandle::new(move || probe.done(), summary))
    }
}

/// Commits each round's count; nothing to recover, nothing written.
struct CountCommitter {
    counted: u64,
    rounds: u64,
}

impl Committer for CountCommitter {
    type Item = u64;
    type Change = u64;
    type Setup = ();
    type Recovered = ();

    fn recover((): (), (): (), _peers: usize) -> Result<(Self, Vec<u64>)> {
        Ok((CountCommitter { counted: 0, rounds: 0 }, Vec::new()))
    }

    fn commit(&mut self, _round: u64, numbers: Vec<u64>, progress: &Progress) -> Result<Vec<u64>> {
        self.counted += numbers.len() as u64;
        self.rounds += 1;
        Progress::add(&progress.committed, 1);
        Ok(vec![self.counted])
    }

    fn finish(self, _stopped: bool) -> Result<Summary> {
        let detail = format!("{} rounds", self.rounds);
        Ok(Summary { read: self.counted, written: self.counted, detail, ..Summary::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{run_job, ClusterSpec};
    use crate::registry::Registry;

    #[test]
    fn a_registered_dataflow_runs_on_the_platform_alone() {
        let registry = Registry::new(vec![registration()]);
        let dataflow = registry.build("count", &["--to".into(), "95".into()]).unwrap();
        let summary = run_job(dataflow, &ClusterSpec::local(2)).unwrap().expect("worker 0's summary");
        assert_eq!((summary.read, summary.written, summary.detail.as_str()), (95, 95, "10 rounds"));
        assert!(registry.build("count", &[]).is_err(), "--to is required");
        let unknown = registry.build("batch", &[]).err().expect("not registered");
        assert!(unknown.to_string().contains("known: count"), "{unknown}");
    }
}
