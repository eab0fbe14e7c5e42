//! Ingest: each worker reads its partitions, cuts the stream into epochs of processing time,
//! and at each epoch's end writes the epoch's readings and rejects as staged Parquet files and
//! reports them, with its partitions' next offsets, to the committer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, OkErr};
use timely::dataflow::StreamVec;

use super::columns::ReadingColumns;
use super::epoch::{epoch_at, Totals};
use super::partials::EpochPartials;
use super::plan::Assignment;
use super::reading::parse_reading;
use super::schema::{epoch_file_format, quarantine_batch, quarantine_schema, readings_schema, Rejected};
use super::windows::{WindowPartial, WindowSettings};
use traffic::calendar::{date_label, day_of};
use traffic::checkpoint::StagedFile;
use traffic::datetime::DateCache;
use traffic::job::JobContext;
use traffic::kafka::PartitionReader;
use traffic::lake::Lake;
use traffic::parquet_sink::FileFormat;
use traffic::progress::Progress;

/// What one worker did in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The worker.
    pub worker: usize,
    /// Next offset of each of its partitions after the epoch.
    pub offsets: BTreeMap<i32, i64>,
    /// Its staged files.
    pub files: Vec<StagedFile>,
    /// Its counts (late records are counted by the window operator).
    pub totals: Totals,
    /// Messages still in Kafka for its partitions when the epoch closed.
    pub lag: u64,
}

/// Settings of the ingest operator.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Consumer group (monitoring only).
    pub group: String,
    /// Epoch length.
    pub epoch: Duration,
    /// Windows, for the partial aggregates.
    pub windows: WindowSettings,
    /// Stop once the partitions are read up to their ends at the start of the run.
    pub until_caught_up: bool,
}

/// The ingest operator. Returns the window partials (for the admission operator) and the epoch
/// reports (for the committer).
pub fn ingest<'scope>(
    assignments: StreamVec<'scope, u64, Assignment>,
    settings: IngestSettings,
    lake: Lake,
    job: JobContext,
) -> (StreamVec<'scope, u64, WindowPartial>, StreamVec<'scope, u64, EpochReport>) {
    let scope = assignments.scope();
    let worker = scope.index();
    let output = assignments
        .unary_frontier::<CapacityContainerBuilder<Vec<Result<WindowPartial, EpochReport>>>, _, _, _>(
            Exchange::new(|a: &Assignment| a.worker as u64),
            "Ingest",
            move |_capability, info| {
                let activator = scope.activator_for(info.address);
                let mut offsets = BTreeMap::new();
                let mut ends = BTreeMap::new();
                let mut capability: Option<Capability<u64>> = None;
                let mut epoch: Option<OpenEpoch> = None;
                let mut reader: Option<PartitionReader> = None;
                let format = epoch_file_format();
                move |(input, frontier), output| {
                    input.for_each(|cap, data| {
                        if capability.is_none() {
                            capability = cap.retain_least(0);
                        }
                        for assignment in data.drain(..) {
                            offsets.insert(assignment.partition, assignment.offset);
                            ends.insert(assignment.partition, assignment.end);
                        }
                    });
                    // Start once the whole assignment is here (the planner has finished).
                    if !frontier.frontier().is_empty() {
                        return;
                    }
                    let Some(cap) = capability.as_mut() else { return };
                    let reader = match &mut reader {
                        Some(reader) => reader,
                        None => {
                            let opened = PartitionReader::open(
                                &settings.brokers,
                                &settings.topic,
                                &settings.group,
                                offsets.clone(),
                            );
                            log::debug!(target: "traffic", "stream: worker {worker} reading {} partitions", offsets.len());
                            reader.insert(opened.unwrap_or_else(|e| job.fail(&e)))
                        }
                    };
                    let open = epoch.get_or_insert_with(|| OpenEpoch::new(*cap.time(), ReadingColumns::default()));
                    let read = open.poll(reader, &settings.windows, &job.progress).unwrap_or_else(|e| job.fail(&e));
                    let now = epoch_at(SystemTime::now(), settings.epoch);
                    // A worker caught up leaves the run; the others go on until they are too.
                    let stopping = job.stop.get() || (settings.until_caught_up && reader.reached(&ends));
                    if stopping || now > open.epoch || open.opened.elapsed() >= settings.epoch {
                        let closing = epoch.take().expect("open epoch");
                        let number = closing.epoch;
                        let (report, partials, columns) =
                            closing.close(worker, reader, &lake, &format).unwrap_or_else(|e| job.fail(&e));
                        let mut session = output.session(&*cap);
                        session.give_iterator(partials.into_iter().map(Ok));
                        session.give(Err(report));
                        drop(session);
                        if stopping {
                            capability = None;
                            return;
                        }
                        let next = (number + 1).max(now);
                        cap.downgrade(&next);
                        epoch = Some(OpenEpoch::new(next, columns));
                    }
                    if read > 0 {
                        activator.activate();
                    } else {
                        activator.activate_after(Duration::from_millis(10));
                    }
                }
            },
        );
    output.ok_err::<Vec<WindowPartial>, _, Vec<EpochReport>, _, _>(|item| item)
}

/// The epoch a worker is filling.
struct OpenEpoch {
    epoch: u64,
    opened: Instant,
    readings: ReadingColumns,
    rejected: Vec<Rejected>,
    windows: EpochPartials,
    read: u64,
    dates: DateCache,
}

impl OpenEpoch {
    fn new(epoch: u64, readings: ReadingColumns) -> Self {
        OpenEpoch {
            epoch,
            opened: Instant::now(),
            readings,
            rejected: Vec::new(),
            windows: EpochPartials::default(),
            read: 0,
            dates: DateCache::default(),
        }
    }

    /// Reads what Kafka has now (a bounded amount), parsing each message into the epoch.
    fn poll(&mut self, reader: &mut PartitionReader, windows: &WindowSettings, progress: &Progress) -> Result<usize> {
        let received_at = chrono::Utc::now().timestamp_micros();
        let mut bytes = 0;
        let count = reader.poll(50_000, Duration::ZERO, |record| {
            bytes += record.payload.map_or(0, <[u8]>::len) as u64;
            let parsed = match record.payload {
                Some(payload) => parse_reading(payload, &mut self.dates),
                None => Err("empty payload".to_string()),
            };
            match parsed {
                Ok(r) => {
                    self.readings.push(
                        &r.sensor_id,
                        r.timestamp,
                        r.average_speed,
                        r.traffic_density,
                        record.partition,
                        record.offset,
                    );
                    self.windows.add(
                        &r.sensor_id,
                        windows.window_of(r.timestamp),
                        r.timestamp,
                        r.average_speed,
                        r.traffic_density,
                    );
                }
                Err(reason) => self.rejected.push(Rejected::new(
                    record.partition,
                    record.offset,
                    record.payload,
                    reason,
                    received_at,
                )),
            }
        })?;
        self.read += count as u64;
        Progress::add(&progress.records, count as u64);
        Progress::add(&progress.bytes, bytes);
        Ok(count)
    }

    /// Stages the epoch's files; returns its report, its window partials and the emptied columns
    /// for the next epoch.
    fn close(
        mut self,
        worker: usize,
        reader: &PartitionReader,
        lake: &Lake,
        format: &FileFormat,
    ) -> Result<(EpochReport, Vec<WindowPartial>, ReadingColumns)> {
        let unit = format!("e{:020}-w{worker:04}", self.epoch);
        let name = format!("part-e{:020}-w{worker:04}.parquet", self.epoch);
        let mut files = Vec::new();
        let mut uploads = Vec::new();
        let written = self.readings.len() as u64;
        let mut encoded = Vec::new();
        for (date, batch) in self.readings.take_batches() {
            let rows = batch.num_rows() as u64;
            let bytes = format.encode(&readings_schema(), std::slice::from_ref(&batch))?;
            let file = StagedFile::new(&unit, format!("readings/date={date}/{name}"), rows, bytes.len() as u64);
            uploads.push((file.staged.clone(), bytes));
            files.push(file);
            encoded.push(batch);
        }
        self.readings.recycle(encoded);
        if !self.rejected.is_empty() {
            let date = date_label(day_of(self.rejected[0].received_at));
            let bytes = format.encode(&quarantine_schema(), &[quarantine_batch(&self.rejected)])?;
            let file = StagedFile::new(
                &unit,
                format!("quarantine/date={date}/{name}"),
                self.rejected.len() as u64,
                bytes.len() as u64,
            );
            uploads.push((file.staged.clone(), bytes));
            files.push(file);
        }
        lake.put_many(uploads)?;
        let totals = Totals { read: self.read, written, quarantined: self.rejected.len() as u64, late: 0 };
        let lag = reader.lag();
        let report = EpochReport { worker, offsets: reader.next_offsets().clone(), files, totals, lag };
        let partials = self.windows.into_partials();
        Ok((report, partials, self.readings))
    }
}
