//! Recovery and planning, done once by worker 0: finish an interrupted publication, drop stale
//! staging, skip inputs already loaded, and deal the remaining chunks out to the workers.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use super::manifest::{chunk_partials_dir, chunk_records_dir, ChunkRecord, LoadCommit, LOAD_COMMITS};
use super::partials::Partials;
use crate::batch::count_csv::{detect_layout, Layout};
use traffic::checkpoint::{discard_staged, list_records, publish, stable_hash, STAGING};
use traffic::input::{resolve_inputs, split_ranges, InputFile};
use traffic::job::JobContext;
use traffic::lake::Lake;
use traffic::progress::Progress;

/// One unit of work: a byte range of an input file, for one worker, at one Timely time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkTask {
    /// The Timely time of the chunk: the committer takes chunks in this order as the frontier
    /// passes them.
    pub time: u64,
    /// The worker that loads it (for a claimable chunk: the worker this copy is sent to).
    pub worker: usize,
    /// For a chunk of the plan's tail: the object whose creation claims it. Every worker gets a
    /// copy, and the first to create the object loads the chunk.
    pub claim: Option<String>,
    /// The load it belongs to.
    pub load_id: String,
    /// The input file.
    pub source: InputFile,
    /// Where the columns are, and whether line 1 is a header.
    pub layout: Layout,
    /// Chunk index within the load.
    pub chunk: u32,
    /// Byte range of the file.
    pub range: (u64, u64),
    /// Write one `<stem>.parquet` per input instead of month partitions.
    pub single_file: bool,
}

/// An input to (re)load in this run.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// The load's id.
    pub load_id: String,
    /// The input file.
    pub source: InputFile,
    /// Number of chunks.
    pub chunks: u32,
    /// Chunks recorded by an earlier, interrupted run.
    pub recorded: Vec<ChunkRecord>,
    /// The published load this one replaces.
    pub replaces: Option<LoadCommit>,
}

/// What worker 0 decided, shared with the committer on the same worker.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Chunks to load, in time order.
    pub tasks: Vec<ChunkTask>,
    /// Loads to publish in this run.
    pub loads: Vec<LoadPlan>,
    /// Loads visible at the start of the run, with their partial aggregates.
    pub current: Vec<(LoadCommit, Partials)>,
    /// Sequence number of the next load commit.
    pub next_seq: u64,
    /// Inputs skipped because they are loaded already.
    pub skipped: u64,
}

/// The batch arguments planning depends on.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    /// Input specifications.
    pub inputs: Vec<String>,
    /// Largest chunk, in bytes (default: see [`auto_chunk_size`]).
    pub chunk_size: Option<u64>,
    /// One output file per input.
    pub single_file: bool,
    /// Reload inputs even if loaded already.
    pub full: bool,
}

/// The planning operator: worker 0 plans and sends each task to its worker; others send nothing.
pub fn planner<'scope>(
    scope: Scope<'scope, u64>,
    lake: Lake,
    settings: PlanSettings,
    shared: Rc<RefCell<Option<Plan>>>,
    job: JobContext,
) -> Stream<'scope, u64, Vec<ChunkTask>> {
    let (index, peers) = (scope.index(), scope.peers());
    source::<_, CapacityContainerBuilder<Vec<ChunkTask>>, _, _>(scope, "Plan", move |capability, _info| {
        let mut capability = (index == 0).then_some(capability);
        move |output| {
            let Some(capability) = capability.take() else {
                return;
            };
            let plan = recover_and_plan(&lake, &settings, peers).unwrap_or_else(|e| job.fail(&e));
            let bytes: u64 = plan.tasks.iter().map(|t| t.range.1 - t.range.0).sum();
            Progress::add(&job.progress.total_bytes, bytes);
            Progress::add(&job.progress.planned, plan.tasks.len() as u64);
            log::info!(
                target: "traffic",
                "batch: {} chunks of {} inputs to load ({} bytes) on {peers} workers, {} inputs already loaded",
                plan.tasks.len(),
                plan.loads.len(),
                bytes,
                plan.skipped
            );
            let copies = plan.tasks.iter().flat_map(|task| {
                let workers = if task.claim.is_some() { 0..peers } else { task.worker..task.worker + 1 };
                workers.map(move |worker| ChunkTask { worker, ..task.clone() })
            });
            output.session(&capability).give_iterator(copies);
            *shared.borrow_mut() = Some(plan);
        }
    })
}

/// Checks, before a job is accepted, what its plan would check first: every input names at least
/// one readable CSV file whose header has the expected columns, and `--single-file` outputs do
/// not collide.
pub fn check_inputs(settings: &PlanSettings) -> Result<()> {
    read_layouts(resolve_all(settings)?.iter()).map(drop)
}

/// The input files of every input spec, sorted by URL, each once.
fn resolve_all(settings: &PlanSettings) -> Result<Vec<InputFile>> {
    let mut inputs: Vec<InputFile> = Vec::new();
    for spec in &settings.inputs {
        inputs.extend(resolve_inputs(spec)?);
    }
    inputs.sort_by(|a, b| a.url.cmp(&b.url));
    inputs.dedup_by(|a, b| a.url == b.url);
    if settings.single_file {
        let mut stems = HashSet::new();
        for input in &inputs {
            if !stems.insert(input.stem().to_string()) {
                bail!("--single-file: two inputs are named '{}'; their outputs would collide", input.stem());
            }
        }
    }
    Ok(inputs)
}

/// Finishes what an interrupted run left, then plans this run.
pub fn recover_and_plan(lake: &Lake, settings: &PlanSettings, workers: usize) -> Result<Plan> {
    let commits: Vec<LoadCommit> = list_records(lake, LOAD_COMMITS)?.into_iter().map(|(_, c)| c).collect();
    if let Some(last) = commits.last() {
        finish_publication(lake, last)?;
    }
    let next_seq = commits.last().map_or(0, |c| c.seq + 1);
    let mut current: BTreeMap<String, LoadCommit> = BTreeMap::new();
    for commit in commits {
        current.insert(commit.source.url.clone(), commit);
    }

    let inputs = resolve_all(settings)?;

    let visible: Vec<LoadCommit> = current.values().cloned().collect();
    let mut partials = Vec::with_capacity(visible.len());
    for commit in &visible {
        partials.push(Partials::merge(&Partials::read_all(lake, &commit.partials)?));
    }
    let mut plan = Plan { next_seq, current: visible.into_iter().zip(partials).collect(), ..Default::default() };
    let mut to_load = Vec::new();
    for input in inputs {
        let existing = current.get(&input.url);
        if !settings.full && existing.is_some_and(|c| c.source == input) {
            plan.skipped += 1;
            continue;
        }
        to_load.push((input, existing.cloned()));
    }
    let layouts = read_layouts(to_load.iter().map(|(input, _)| input))?;
    let cuts = cut_inputs(to_load.iter().map(|(input, _)| input), settings, workers);
    let run = run_token();
    let mut chunk_loads = Vec::new();
    for (((source, replaces), layout), InputCut { ranges, claimable }) in to_load.into_iter().zip(layouts).zip(cuts) {
        let modified = source.modified.to_string();
        let size = source.size.to_string();
        let previous = replaces.as_ref().map_or("", |c| c.load_id.as_str());
        let etag = source.etag.as_deref().unwrap_or("");
        // The ranges are part of the id: a run cut differently does not reuse chunk records.
        let cuts: Vec<String> = ranges.iter().map(|r| r.end.to_string()).collect();
        let load_id =
            format!("{:016x}", stable_hash(&[&source.url, &size, &modified, etag, &cuts.join(","), previous]));
        let recorded: Vec<ChunkRecord> = list_records::<ChunkRecord>(lake, &chunk_records_dir(&load_id))?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| (r.chunk as usize) < ranges.len())
            .collect();
        let done: HashSet<u32> = recorded.iter().map(|r| r.chunk).collect();
        let first_claimable = ranges.len() - claimable;
        for (chunk, range) in ranges.iter().enumerate() {
            if !done.contains(&(chunk as u32)) {
                plan.tasks.push(ChunkTask {
                    time: 0,
                    worker: 0,
                    claim: (chunk >= first_claimable).then(|| format!("{CLAIMS}/{run}/{load_id}-{chunk:06}")),
                    load_id: load_id.clone(),
                    source: source.clone(),
                    layout,
                    chunk: chunk as u32,
                    range: (range.start, range.end),
                    single_file: settings.single_file,
                });
            }
        }
        chunk_loads.push(load_id.clone());
        plan.loads.push(LoadPlan { load_id, source, chunks: ranges.len() as u32, recorded, replaces });
    }
    discard_stale(lake, &plan, &chunk_loads)?;
    deal(&mut plan.tasks, workers);
    Ok(plan)
}

/// Repeats the publication of the latest load commit: a crash may have cut it short.
fn finish_publication(lake: &Lake, commit: &LoadCommit) -> Result<()> {
    publish(lake, &commit.files)?;
    lake.delete_many(&commit.retired)?;
    let leftovers: Vec<String> = lake.list(&chunk_records_dir(&commit.load_id))?.into_iter().map(|e| e.path).collect();
    lake.delete_many(&leftovers)
}

/// Deletes staged files and chunk records that no load of this run will publish.
fn discard_stale(lake: &Lake, plan: &Plan, live_loads: &[String]) -> Result<()> {
    let keep: HashSet<String> = plan
        .loads
        .iter()
        .flat_map(|l| l.recorded.iter().flat_map(|r| r.files.iter().map(|f| f.staged.clone())))
        .collect();
    let discarded = discard_staged(lake, STAGING, &keep)?;
    let mut live: HashSet<String> = live_loads.iter().map(|id| format!("{}/", chunk_records_dir(id))).collect();
    live.extend(live_loads.iter().map(|id| format!("{}/", chunk_partials_dir(id))));
    let mut stale: Vec<String> = lake.list("_manifests/chunks")?.into_iter().map(|e| e.path).collect();
    // Partials of visible loads stay until a reload retires them; other loads' are leftovers.
    let visible: HashSet<&String> = plan.current.iter().flat_map(|(commit, _)| &commit.partials).collect();
    stale.extend(lake.list("_manifests/partials")?.into_iter().map(|e| e.path).filter(|p| !visible.contains(p)));
    // Claims of earlier runs: this run's are in a folder of their own.
    stale.extend(lake.list(CLAIMS)?.into_iter().map(|e| e.path));
    stale.retain(|p| !live.iter().any(|prefix| p.starts_with(prefix)));
    lake.delete_many(&stale)?;
    if discarded + stale.len() > 0 {
        log::info!(target: "traffic", "batch: discarded {discarded} staged files and {} chunk records of interrupted work", stale.len());
    }
    Ok(())
}

/// How one input is cut: its byte ranges, of which the last `claimable` are claimed, not dealt.
struct InputCut {
    ranges: Vec<Range<u64>>,
    claimable: usize,
}

/// Cuts each input into chunks; with several workers, the plan's last quarter into claimable
/// pieces (see [`cut_tail`]).
fn cut_inputs<'a>(
    inputs: impl Iterator<Item = &'a InputFile>,
    settings: &PlanSettings,
    workers: usize,
) -> Vec<InputCut> {
    let (sizes, chunks): (Vec<u64>, Vec<u64>) = inputs
        .map(|source| {
            let chunk = match (settings.single_file, settings.chunk_size) {
                (true, _) => u64::MAX,
                (false, Some(size)) => size,
                (false, None) => auto_chunk_size(source.size, workers),
            };
            (source.size, chunk)
        })
        .unzip();
    let mut ranges: Vec<Vec<Range<u64>>> =
        sizes.iter().zip(&chunks).map(|(size, chunk)| split_ranges(*size, *chunk)).collect();
    let claimable = if workers > 1 && !settings.single_file {
        cut_tail(&mut ranges, &chunks, workers)
    } else {
        vec![0; ranges.len()]
    };
    ranges.into_iter().zip(claimable).map(|(ranges, claimable)| InputCut { ranges, claimable }).collect()
}

/// A name for this run's claims, unlike any other run's.
fn run_token() -> String {
    let now = format!("{:?}", std::time::SystemTime::now());
    format!("{:016x}", stable_hash(&[&now, &std::process::id().to_string()]))
}

/// A file's size over the number of workers, between 16 MiB and 64 MiB: small files still keep
/// every worker busy, large ones are not cut finer than needed (every chunk writes its own files
/// and partial aggregates).
pub fn auto_chunk_size(size: u64, workers: usize) -> u64 {
    (size / workers.max(1) as u64 + 1).clamp(16 << 20, 64 << 20)
}

/// Where claims of the plan's tail chunks are made, one folder per run.
pub const CLAIMS: &str = "_manifests/claims";

/// One part in this many of a multi-worker plan's bytes, at its end, is claimed piece by piece
/// instead of dealt in advance: enough to even out workers that run at different speeds (a busy
/// host, a noisy neighbour, worker 0's commit work).
const CLAIMED_SHARE: u64 = 4;

/// The smallest piece the tail is cut into, unless the chunks themselves are smaller: each piece
/// writes files of its own.
const MIN_PIECE: u64 = 4 << 20;

/// Cuts the last quarter of the plan's bytes (the last ranges of the last inputs) into pieces
/// that shrink towards the end (guided self-scheduling): each is the tail's remaining bytes over
/// twice the workers, between [`MIN_PIECE`] and its input's chunk size. Workers then finish
/// within about one of the last, smallest pieces of each other, with only a few more pieces than
/// chunks. The first pieces of a large tail are whole chunks: every piece has a fixed cost (its
/// files and partial aggregates, tens of milliseconds with thousands of junctions), and capping
/// them at a quarter chunk, as before, cut a 1.6 GB input's tail into 33 pieces instead of 17.
/// Returns how many trailing ranges of each input are claimable.
///
/// The cut depends on every input of the plan and on the number of workers: if an interrupted run
/// is resumed with fewer inputs left or another shape, a tail input may be cut differently and
/// then loaded again from its start.
fn cut_tail(ranges: &mut [Vec<Range<u64>>], chunks: &[u64], workers: usize) -> Vec<usize> {
    let length = |r: &Range<u64>| r.end - r.start;
    let total: u64 = ranges.iter().flatten().map(length).sum();
    // Whole ranges from the end of the plan until the claimed share is covered.
    let mut budget = total.div_ceil(CLAIMED_SHARE);
    let mut taken = vec![0; ranges.len()];
    for (file, file_ranges) in ranges.iter().enumerate().rev() {
        for range in file_ranges.iter().rev() {
            if budget == 0 {
                break;
            }
            budget = budget.saturating_sub(length(range));
            taken[file] += 1;
        }
    }
    let mut left: u64 = ranges.iter().zip(&taken).flat_map(|(r, &n)| &r[r.len() - n..]).map(length).sum();
    let mut claimable = vec![0; ranges.len()];
    for (file, file_ranges) in ranges.iter_mut().enumerate() {
        let tail = file_ranges.split_off(file_ranges.len() - taken[file]);
        let dealt = file_ranges.len();
        let floor = MIN_PIECE.min(chunks[file]);
        // The tail's ranges tile one span of the file: cut as one, pieces do not stop at the
        // chunks' ends (which left a stub piece at each).
        let span = tail.first().zip(tail.last()).map(|(first, last)| first.start..last.end);
        match span {
            None => {}
            Some(empty) if empty.is_empty() => file_ranges.push(empty), // an empty input keeps its one empty chunk
            Some(range) => {
                let mut start = range.start;
                while start < range.end {
                    let guided = (left / (2 * workers.max(1) as u64)).clamp(floor, chunks[file]);
                    let mut end = (start + guided).min(range.end);
                    if range.end - end < floor / 2 {
                        end = range.end; // no sliver of a piece
                    }
                    file_ranges.push(start..end);
                    left -= end - start;
                    start = end;
                }
            }
        }
        claimable[file] = file_ranges.len() - dealt;
    }
    claimable
}

/// Numbers tasks 1, 2, ... in order and gives each task dealt in advance to the worker with the
/// fewest bytes so far (claimable tasks come last: whoever claims them loads them).
fn deal(tasks: &mut [ChunkTask], workers: usize) {
    let mut assigned = vec![0u64; workers.max(1)];
    for (i, task) in tasks.iter_mut().enumerate() {
        task.time = i as u64 + 1;
        if task.claim.is_none() {
            let worker = (0..assigned.len()).min_by_key(|&w| (assigned[w], w)).expect("at least one worker");
            assigned[worker] += task.range.1 - task.range.0 + 1;
            task.worker = worker;
        }
    }
}

/// Reads each input's first line to find its columns, a few files at a time.
fn read_layouts<'a>(inputs: impl Iterator<Item = &'a InputFile>) -> Result<Vec<Layout>> {
    use futures::StreamExt;
    let inputs: Vec<&InputFile> = inputs.collect();
    let heads = traffic::runtime::block_on(
        futures::stream::iter(inputs.iter().map(|input| async move {
            let (location, path) = input.open()?;
            let end = input.size.min(64 * 1024);
            let bytes = if end == 0 { bytes::Bytes::new() } else { location.store.get_range(&path, 0..end).await? };
            anyhow::Ok(bytes)
        }))
        .buffered(16)
        .collect::<Vec<_>>(),
    );
    inputs
        .iter()
        .zip(heads)
        .map(|(input, head)| {
            let head = head.with_context(|| format!("cannot read {}", input.url))?;
            let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
            let line = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            detect_layout(line).with_context(|| input.url.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deals_chunks_by_bytes() {
        let task = |len: u64| ChunkTask {
            time: 0,
            worker: 0,
            load_id: String::new(),
            source: InputFile { url: String::new(), size: 0, modified: 0, etag: None },
            layout: detect_layout(b"").unwrap(),
            claim: None,
            chunk: 0,
            range: (0, len),
            single_file: false,
        };
        let mut tasks = vec![task(100), task(10), task(10), task(100)];
        deal(&mut tasks, 2);
        assert_eq!(tasks.iter().map(|t| t.worker).collect::<Vec<_>>(), vec![0, 1, 1, 1]);
        assert_eq!(tasks.iter().map(|t| t.time).collect::<Vec<_>>(), vec![1, 2, 3, 4]);

        // Claimable tasks are numbered in turn, and dealt to no one.
        tasks[3].claim = Some("claim".into());
        tasks[3].worker = 7;
        deal(&mut tasks, 2);
        assert_eq!(tasks.iter().map(|t| t.worker).collect::<Vec<_>>(), vec![0, 1, 1, 7]);
    }

    #[test]
    fn the_last_quarter_of_the_plan_is_cut_into_shrinking_claimable_pieces() {
        const MIB: u64 = 1 << 20;
        // Two inputs of 200 MiB and 40 MiB in 64 MiB chunks: 60 MiB is the claimed quarter, all of
        // the second input and 20 MiB of the first (its last chunk, 50 MiB, cut in full).
        let mut ranges = vec![split_ranges(200 * MIB, 64 * MIB), split_ranges(40 * MIB, 64 * MIB)];
        let chunks = [64 * MIB, 64 * MIB];
        let claimable = cut_tail(&mut ranges, &chunks, 2);
        for (file, size) in [(0, 200 * MIB), (1, 40 * MIB)] {
            // Still a tiling of the input, in order.
            assert_eq!(ranges[file].first().unwrap().start, 0);
            assert_eq!(ranges[file].last().unwrap().end, size);
            assert!(ranges[file].windows(2).all(|w| w[0].end == w[1].start));
        }
        assert_eq!(ranges[0].len() - claimable[0], 3, "the first three chunks are dealt");
        assert_eq!(claimable[1], ranges[1].len(), "all of the second input is claimed");
        let tail: Vec<u64> = ranges[0][3..].iter().chain(&ranges[1]).map(|r| r.end - r.start).collect();
        assert_eq!(tail.iter().sum::<u64>(), 90 * MIB);
        // Each piece is a quarter of what is left (twice the workers), never below 4 MiB.
        assert_eq!(tail[0], 90 * MIB / 4, "{tail:?}");
        assert!(tail[0] > tail[tail.len() / 2] && tail[tail.len() / 2] > *tail.last().unwrap(), "{tail:?}");
        assert!(*tail.last().unwrap() <= 6 * MIB && *tail.last().unwrap() >= 2 * MIB, "{tail:?}");
        assert!(tail.len() <= 10, "a few pieces per worker, not many: {tail:?}");

        // A large tail starts with whole chunks: a piece is never larger than a chunk.
        let mut large = vec![split_ranges(1600 * MIB, 64 * MIB)];
        let claimed = cut_tail(&mut large, &chunks, 2)[0];
        let tail: Vec<u64> = large[0][large[0].len() - claimed..].iter().map(|r| r.end - r.start).collect();
        assert_eq!(tail.iter().sum::<u64>(), 7 * 64 * MIB, "the last seven chunks are claimed: {tail:?}");
        assert!(tail[..4].iter().all(|&piece| piece == 64 * MIB), "{tail:?}");
        // Capped at a quarter chunk, as before, it took many more.
        assert!(tail.len() <= 17, "{tail:?}");

        // An empty input keeps its one (empty) chunk.
        let mut with_empty = vec![split_ranges(100 * MIB, 64 * MIB), split_ranges(0, 64 * MIB)];
        assert_eq!(cut_tail(&mut with_empty, &chunks, 2)[1], 1);
        assert_eq!(with_empty[1], vec![0..0]);

        // Chunks no larger than 4 MiB are not cut further, only claimed.
        let mut small = vec![split_ranges(64 * 1024, 4096)];
        assert_eq!(cut_tail(&mut small, &[4096], 2), vec![4]);
        assert_eq!(small[0].len(), 16);
    }
}
