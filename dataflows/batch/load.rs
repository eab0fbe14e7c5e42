//! Loading a chunk: read its lines, parse them into columns, sort, encode Parquet and stage it.

use std::collections::BTreeMap;

use anyhow::Result;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use super::manifest::{chunk_partials_path, ChunkRecord};
use super::order;
use super::partials::{Partials, PartialsBuilder};
use super::plan::ChunkTask;
use super::release::HeldPartials;
use super::schema::{counts_columns, counts_format, counts_schema, quarantine_batch, quarantine_schema, QuarantineRow};
use crate::batch::count_csv::parse_chunk;
use traffic::calendar::month_label;
use traffic::checkpoint::StagedFile;
use traffic::input::{lines_before, read_lines};
use traffic::job::JobContext;
use traffic::lake::Lake;
use traffic::parquet_sink::FileFormat;
use traffic::progress::Progress;

/// The loading operator: each worker receives its tasks, waits for the whole plan (the frontier
/// passing time 0), then loads its chunks in time order, one per activation: those dealt to it,
/// then those of the plan's tail that it claims first. It holds a capability at the next chunk's
/// time, so the frontier tells the committer which chunks are finished. A chunk's partials stay
/// in `held` until the committer publishes its load.
pub fn loader<'scope>(
    tasks: Stream<'scope, u64, Vec<ChunkTask>>,
    lake: Lake,
    held: HeldPartials,
    job: JobContext,
) -> Stream<'scope, u64, Vec<ChunkRecord>> {
    let activator_scope = tasks.scope();
    tasks.unary_frontier::<CapacityContainerBuilder<Vec<ChunkRecord>>, _, _, _>(
        Exchange::new(|task: &ChunkTask| task.worker as u64),
        "Load",
        move |_default, info| {
            let activator = activator_scope.activator_for(info.address);
            let mut queue: BTreeMap<u64, ChunkTask> = BTreeMap::new();
            let mut capability: Option<Capability<u64>> = None;
            let (counts, quarantine) = (counts_format(), FileFormat::builder().build());
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if capability.is_none() {
                        capability = cap.retain_least(0);
                    }
                    queue.extend(data.drain(..).map(|task| (task.time, task)));
                });
                // Start only once the plan is complete: earlier, a later task could still arrive.
                if !frontier.frontier().is_empty() {
                    return;
                }
                if job.stop.get() {
                    // Asked to stop: leave the remaining chunks to the next run.
                    queue.clear();
                    capability = None;
                }
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                // The first task this worker dealt or claimed; claims others won are passed over.
                let task = loop {
                    let Some((&time, _)) = queue.first_key_value() else {
                        capability = None;
                        return;
                    };
                    let task = queue.remove(&time).expect("first task");
                    cap.downgrade(&time);
                    if claim(&lake, &task).unwrap_or_else(|e| job.fail(&e)) {
                        break task;
                    }
                };
                let (record, partials) =
                    load_chunk(&task, &lake, &counts, &quarantine, &job.progress).unwrap_or_else(|e| job.fail(&e));
                // Held before the record leaves: its publication cannot then overtake them.
                held.hold(&record.load_id, partials);
                output.session(&*cap).give(record);
                match queue.first_key_value() {
                    Some((&next, _)) => {
                        cap.downgrade(&next);
                        activator.activate();
                    }
                    None => capability = None,
                }
            }
        },
    )
}

/// Whether this worker loads `task`: a dealt task is its own; a claimable one is if this worker
/// creates its claim first (a conditional create, atomic in every store we write to).
fn claim(lake: &Lake, task: &ChunkTask) -> Result<bool> {
    match &task.claim {
        None => Ok(true),
        Some(path) => lake.put_new(path, bytes::Bytes::new()),
    }
}

/// Loads one chunk and stages its files; returns the record the committer will write and the
/// chunk's partial aggregates (also staged, for a later run if this one stops).
pub fn load_chunk(
    task: &ChunkTask,
    lake: &Lake,
    counts: &FileFormat,
    quarantine: &FileFormat,
    progress: &Progress,
) -> Result<(ChunkRecord, Partials)> {
    let started = std::time::Instant::now();
    let reader = task.source.reader()?;
    let lines = read_lines(&reader, task.range.0..task.range.1, task.source.size)?;
    let parsed =
        parse_chunk(&lines.bytes, lines.offset, &task.layout.columns, task.layout.has_header && lines.offset == 0);
    Progress::add(&progress.records, parsed.read());
    Progress::add(&progress.bytes, task.range.1 - task.range.0);

    let unit = format!("{}/{:05}", task.load_id, task.chunk);
    let name = format!("part-{}-{:05}.parquet", task.load_id, task.chunk);
    let mut files = Vec::new();
    let mut uploads = Vec::new();
    let mut stage = |target: String, rows: usize, bytes: bytes::Bytes| {
        let file = StagedFile::new(&unit, target, rows as u64, bytes.len() as u64);
        uploads.push((file.staged.clone(), bytes));
        files.push(file);
    };

    let read = parsed.read();
    let written = parsed.rows.len() as u64;
    // Partial aggregates are computed on sorted rows: junction and day then come in runs.
    let mut partials = PartialsBuilder::default();
    if task.single_file {
        let rows = order::sorted(parsed.rows);
        partials.add(&rows);
        let count = rows.len();
        stage(
            format!("{}.parquet", task.source.stem()),
            count,
            counts.encode_required(&counts_schema(), &counts_columns(&rows))?,
        );
    } else {
        for (month, rows) in order::by_month(&parsed.rows) {
            partials.add(&rows);
            let count = rows.len();
            let target = format!("counts/month={}/{name}", month_label(month));
            stage(target, count, counts.encode_required(&counts_schema(), &counts_columns(&rows))?);
        }
    }
    let partials = partials.finish();
    let encoded = partials.to_parquet()?;
    let quarantined = parsed.rejected.len() as u64;
    if !parsed.rejected.is_empty() {
        // Line numbers need the lines before the chunk: counted only when there is something to report.
        let before = lines_before(&reader, lines.offset)?;
        let rows = parsed.rejected.iter().map(|r| QuarantineRow {
            source: &task.source.url,
            line: (before + r.line_in_chunk + 1) as i64,
            byte_offset: r.offset as i64,
            raw: &r.raw,
            reason: &r.reason,
        });
        let bytes = quarantine.encode(&quarantine_schema(), &[quarantine_batch(rows)])?;
        stage(format!("quarantine/{name}"), parsed.rejected.len(), bytes);
    }
    let partials_path = chunk_partials_path(&task.load_id, task.chunk);
    uploads.push((partials_path.clone(), encoded));
    let staged_at = started.elapsed();
    lake.put_many(uploads)?;
    let total = started.elapsed();
    log::debug!(target: "traffic", "chunk {unit}: {read} rows in {total:?}, of which {:?} writing", total - staged_at);
    let record = ChunkRecord {
        load_id: task.load_id.clone(),
        chunk: task.chunk,
        range: task.range,
        read,
        written,
        quarantined,
        files,
        partials: partials_path,
    };
    Ok((record, partials))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::count_csv::detect_layout;
    use traffic::input::InputFile;

    #[test]
    fn a_claimable_chunk_is_loaded_by_the_first_claimant_only() {
        let lake = Lake::open("memory://claims").unwrap();
        let mut task = ChunkTask {
            time: 1,
            worker: 0,
            claim: None,
            load_id: "load".into(),
            source: InputFile { url: String::new(), size: 0, modified: 0, etag: None },
            layout: detect_layout(b"").unwrap(),
            chunk: 0,
            range: (0, 0),
            single_file: false,
        };
        assert!(claim(&lake, &task).unwrap(), "a dealt chunk needs no claim");
        assert!(claim(&lake, &task).unwrap());
        task.claim = Some("_manifests/claims/run/load-000000".into());
        assert!(claim(&lake, &task).unwrap());
        assert!(!claim(&lake, &ChunkTask { worker: 1, ..task.clone() }).unwrap(), "claimed twice");
    }
}
