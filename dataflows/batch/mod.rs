//! `batch`: historical count CSVs to month-partitioned Parquet, exactly once, plus trend views.
//!
//! Worker 0 plans (recovering from any interrupted run), every worker loads its chunks (those
//! dealt to it, then pieces of the plan's tail it claims first), worker 0 records each chunk as it
//! arrives and, as the progress frontier passes the chunks, publishes an input once all its
//! chunks are recorded; each worker then releases the partial aggregates of its chunks of that
//! input, and differential dataflow reduces them into `junction_daily` and `junction_profile`.

mod aggregate;
mod commit;
mod count_csv;
pub(crate) mod gen;
mod load;
mod manifest;
mod order;
mod partials;
mod partials_file;
mod plan;
mod release;
mod schema;
mod week_profile;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, FromArgMatches};
use differential_dataflow::AsCollection;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use traffic::checkpoint::CommitAtFrontier;
use traffic::job::{Dataflow, JobContext, JobHandle};
use traffic::lake::{Lake, Location};
use traffic::registry::Registration;
use traffic::units::parse_size;

/// Arguments of the `batch` dataflow.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct BatchArgs {
    /// CSV input: a file, a directory, a glob or an s3:// prefix (repeat for several).
    #[arg(long = "input", required = true)]
    pub inputs: Vec<String>,
    /// Dataset root: a directory, or a file://, s3:// or memory:// URL.
    #[arg(long)]
    pub output: String,
    /// Write one <input stem>.parquet per input instead of counts/month=YYYY-MM/ partitions.
    #[arg(long)]
    pub single_file: bool,
    /// Load every input again, even those loaded before (their earlier rows are replaced).
    #[arg(long)]
    pub full: bool,
    /// Largest byte range of one file given to one worker (e.g. 64MiB); by default a file's size
    /// over the number of workers, between 16 MiB and 64 MiB. With several workers the last
    /// quarter of the input is cut into pieces that free workers claim (at most a chunk, shrinking
    /// to 4 MiB at the end).
    #[arg(long, value_parser = parse_size)]
    pub chunk_size: Option<u64>,
}

/// The registry entry.
pub fn registration() -> Registration {
    Registration {
        name: "batch",
        about: "Load historical count CSVs into month-partitioned Parquet with daily and weekly trend views",
        command: || BatchArgs::augment_args(clap::Command::new("batch")),
        build: |matches| Ok(Arc::new(BatchDataflow::new(BatchArgs::from_arg_matches(matches)?)?)),
    }
}

/// The batch dataflow with validated arguments.
pub struct BatchDataflow {
    args: BatchArgs,
}

impl BatchDataflow {
    /// Validates the arguments (the output URL must parse).
    pub fn new(args: BatchArgs) -> Result<Self> {
        Location::parse(&args.output, false)?;
        if args.chunk_size.is_some_and(|size| size < 4096) {
            anyhow::bail!("--chunk-size must be at least 4KiB");
        }
        Ok(BatchDataflow { args })
    }

    fn plan_settings(&self) -> plan::PlanSettings {
        plan::PlanSettings {
            inputs: self.args.inputs.clone(),
            chunk_size: self.args.chunk_size,
            single_file: self.args.single_file,
            full: self.args.full,
        }
    }
}

impl Dataflow for BatchDataflow {
    fn name(&self) -> &'static str {
        "batch"
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.args.output.clone()]
    }

    fn check(&self) -> Result<()> {
        plan::check_inputs(&self.plan_settings())
    }

    fn install(&self, worker: &mut Worker, context: &JobContext) -> Result<JobHandle> {
        let lake = Lake::open(&self.args.output)?;
        let settings = self.plan_settings();
        let shared_plan = Rc::new(RefCell::new(None));
        let summary = Rc::new(RefCell::new(None));
        let probe = ProbeHandle::new();
        worker.dataflow_named::<u64, _, _>("batch", |scope| {
            let tasks = plan::planner(scope, lake.clone(), settings, shared_plan.clone(), context.clone());
            let held = release::HeldPartials::default();
            let records = load::loader(tasks, lake.clone(), held.clone(), context.clone());
            let committed = records.commit_at_frontier::<commit::BatchCommitter>(
                lake.clone(),
                shared_plan,
                summary.clone(),
                context.clone(),
            );
            let partials = release::releaser(committed, held);
            aggregate::trend_views(partials.as_collection(), lake, context.clone()).probe_with(&probe);
        });
        Ok(JobHandle::new(move || probe.done(), summary))
    }
}
