//! Loading a chunk: read its lines, parse them into columns, sort, encode Parquet and stage it.

use std::collections::BTreeMap;

use anyhow::Result;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use super::manifest::ChunkRecord;
use super::partials::Partials;
use super::plan::ChunkTask;
use super::schema::{counts_batch, counts_format, counts_schema, quarantine_batch, quarantine_schema, QuarantineRow};
use crate::calendar::{day_of, month_index, month_label};
use crate::checkpoint::StagedFile;
use crate::csv::{lines_before, parse_chunk, read_lines, CountColumns};
use crate::job::JobContext;
use crate::lake::Lake;
use crate::parquet_sink::FileFormat;
use crate::progress::Progress;

/// The loading operator: each worker receives its tasks, waits for the whole plan (the frontier
/// passing time 0), then loads its chunks in time order, one per activation, holding a capability
/// at the next chunk's time so the frontier tells the committer which chunks are finished.
pub fn loader<'scope>(
    tasks: Stream<'scope, u64, Vec<ChunkTask>>,
    lake: Lake,
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
                let Some((&time, _)) = queue.first_key_value() else {
                    capability = None;
                    return;
                };
                let task = queue.remove(&time).expect("first task");
                cap.downgrade(&time);
                let record =
                    load_chunk(&task, &lake, &counts, &quarantine, &job.progress).unwrap_or_else(|e| job.fail(&e));
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

/// Loads one chunk and stages its files; returns the record the committer will write.
pub fn load_chunk(
    task: &ChunkTask,
    lake: &Lake,
    counts: &FileFormat,
    quarantine: &FileFormat,
    progress: &Progress,
) -> Result<ChunkRecord> {
    let (location, path) = task.source.open()?;
    let store = location.store.as_ref();
    let lines = read_lines(store, &path, task.range.0..task.range.1, task.source.size)?;
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
    let partials = Partials::of(&parsed.rows);
    if task.single_file {
        let rows = sorted(parsed.rows);
        let count = rows.len();
        stage(
            format!("{}.parquet", task.source.stem()),
            count,
            counts.encode(&counts_schema(), &[counts_batch(rows)])?,
        );
    } else {
        for (month, rows) in split_by_month(parsed.rows) {
            let count = rows.len();
            let target = format!("counts/month={}/{name}", month_label(month));
            stage(target, count, counts.encode(&counts_schema(), &[counts_batch(rows)])?);
        }
    }
    let quarantined = parsed.rejected.len() as u64;
    if !parsed.rejected.is_empty() {
        // Line numbers need the lines before the chunk: counted only when there is something to report.
        let before = lines_before(store, &path, lines.offset)?;
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
    lake.put_many(uploads)?;
    Ok(ChunkRecord {
        load_id: task.load_id.clone(),
        chunk: task.chunk,
        range: task.range,
        read,
        written,
        quarantined,
        files,
        partials,
    })
}

/// Splits rows by calendar month, each part sorted by junction then date-time.
fn split_by_month(rows: CountColumns) -> Vec<(i32, CountColumns)> {
    let order = sort_order(&rows, |t| month_index(day_of(t)));
    order.chunk_by(|a, b| a.0 == b.0).map(|run| (run[0].0, gather(&rows, run))).collect()
}

/// All rows sorted by junction then date-time.
fn sorted(rows: CountColumns) -> CountColumns {
    gather(&rows, &sort_order(&rows, |_| 0))
}

/// Row order by `(group(datetime), junction, datetime)`; each entry ends with the row index.
fn sort_order(rows: &CountColumns, group: impl Fn(i64) -> i32) -> Vec<(i32, i32, i64, u32)> {
    let mut order: Vec<(i32, i32, i64, u32)> =
        (0..rows.len()).map(|i| (group(rows.datetime[i]), rows.junction[i], rows.datetime[i], i as u32)).collect();
    order.sort_unstable();
    order
}

/// The rows named by `order`, in that order.
fn gather(rows: &CountColumns, order: &[(i32, i32, i64, u32)]) -> CountColumns {
    let index = |entry: &(i32, i32, i64, u32)| entry.3 as usize;
    CountColumns {
        datetime: order.iter().map(|e| e.2).collect(),
        junction: order.iter().map(|e| e.1).collect(),
        vehicles: order.iter().map(|e| rows.vehicles[index(e)]).collect(),
        id: order.iter().map(|e| rows.id[index(e)]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{days_from_civil, MICROS_PER_DAY};

    #[test]
    fn splits_by_month_and_sorts_by_junction_then_time() {
        let nov = days_from_civil(2015, 11, 30) as i64 * MICROS_PER_DAY;
        let dec = days_from_civil(2015, 12, 1) as i64 * MICROS_PER_DAY;
        let rows = CountColumns {
            datetime: vec![dec, nov + 1, nov, dec],
            junction: vec![2, 1, 1, 1],
            vehicles: vec![1, 2, 3, 4],
            id: vec![10, 20, 30, 40],
        };
        let parts = split_by_month(rows);
        assert_eq!(parts.len(), 2);
        assert_eq!(month_label(parts[0].0), "2015-11");
        assert_eq!(parts[0].1.id, vec![30, 20]);
        assert_eq!(parts[1].1.id, vec![40, 10]);
    }
}
