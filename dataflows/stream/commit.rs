//! The stream committer, on worker 0: when the progress frontier passes an epoch, it writes the
//! epoch's window and congestion files, creates the epoch's checkpoint, publishes every file of
//! the epoch, and then (at least once) sends congestion alerts and records offsets for monitoring.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::checkpoint::{checkpoint_path, Checkpoint, Recovered};
use super::episodes::{EpisodeReport, EpisodeRow, SensorEpisodes};
use super::epoch::Totals;
use super::ingest::EpochReport;
use super::schema::{congestion_batch, congestion_schema, windows_batch, windows_schema};
use super::windows::{AdmissionReport, SensorWindows, WindowRow};
use traffic::calendar::{date_label, day_of};
use traffic::checkpoint::{create_record, publish, Committer, StagedFile};
use traffic::job::Summary;
use traffic::kafka::{admin_consumer, commit_for_monitoring, Producer};
use traffic::lake::Lake;
use traffic::parquet_sink::FileFormat;
use traffic::progress::Progress;

/// Checkpoints kept on store; older ones are deleted.
pub const KEEP_CHECKPOINTS: usize = 10;

/// Everything that goes into an epoch's checkpoint, from every operator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CommitItem {
    /// An ingest worker's epoch.
    Ingest(EpochReport),
    /// Window admission's state and late readings.
    Admission(AdmissionReport),
    /// A new version of a window's statistics.
    Window(WindowRow),
    /// Episode events and state.
    Episodes(EpisodeReport),
}

impl From<EpochReport> for CommitItem {
    fn from(report: EpochReport) -> Self {
        CommitItem::Ingest(report)
    }
}

impl From<AdmissionReport> for CommitItem {
    fn from(report: AdmissionReport) -> Self {
        CommitItem::Admission(report)
    }
}

impl From<WindowRow> for CommitItem {
    fn from(row: WindowRow) -> Self {
        CommitItem::Window(row)
    }
}

impl From<EpisodeReport> for CommitItem {
    fn from(report: EpisodeReport) -> Self {
        CommitItem::Episodes(report)
    }
}

/// Where the committer writes, and what it tells.
#[derive(Clone, Debug)]
pub struct CommitSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic read.
    pub topic: String,
    /// Consumer group for monitoring commits.
    pub group: String,
    /// Topic for congestion alerts.
    pub alerts_topic: Option<String>,
}

/// The stream's commit protocol: when the frontier passes an epoch, its window and congestion
/// files are written, its checkpoint created, and every file of the epoch published. It tells the
/// dataflow nothing: its output only completes when the stream has stopped.
impl Committer for CheckpointLog {
    type Item = CommitItem;
    type Change = ();
    type Setup = (Lake, CommitSettings);
    type Recovered = Recovered;

    fn recover(
        (lake, settings): (Lake, CommitSettings),
        recovered: Recovered,
        _peers: usize,
    ) -> Result<(Self, Vec<()>)> {
        Ok((CheckpointLog::start(lake, settings, recovered)?, Vec::new()))
    }

    fn commit(&mut self, epoch: u64, items: Vec<CommitItem>, progress: &Progress) -> Result<Vec<()>> {
        self.commit_epoch(epoch, items, progress)?;
        Progress::add(&progress.committed, 1);
        Ok(Vec::new())
    }

    fn finish(self, _stopped: bool) -> Result<Summary> {
        Ok(self.summary())
    }
}

/// The stream committer's running state: the last checkpoint's offsets, totals and operator
/// states.
pub struct CheckpointLog {
    lake: Lake,
    settings: CommitSettings,
    format: FileFormat,
    offsets: BTreeMap<i32, i64>,
    totals: Totals,
    run: Totals,
    windows: BTreeMap<String, SensorWindows>,
    episodes: BTreeMap<String, SensorEpisodes>,
    kept: VecDeque<u64>,
    committed: u64,
    published: u64,
    last_epoch: Option<u64>,
    alerts: Option<Producer>,
    monitor: Option<rdkafka::consumer::BaseConsumer>,
}

impl CheckpointLog {
    fn start(lake: Lake, settings: CommitSettings, recovered: Recovered) -> Result<CheckpointLog> {
        let last = recovered.last.unwrap_or_default();
        let alerts = match &settings.alerts_topic {
            Some(_) => Some(Producer::new(&settings.brokers, true)?),
            None => None,
        };
        let monitor = admin_consumer(&settings.brokers, &settings.group).ok();
        Ok(CheckpointLog {
            lake,
            format: FileFormat::builder().build(),
            offsets: recovered.offsets,
            totals: last.totals,
            run: Totals::default(),
            windows: last.windows.into_iter().map(|w| (w.sensor.clone(), w)).collect(),
            episodes: last.episodes.into_iter().map(|e| (e.sensor.clone(), e)).collect(),
            kept: recovered.kept.into(),
            committed: 0,
            published: 0,
            last_epoch: None,
            alerts,
            monitor,
            settings,
        })
    }

    /// Writes the checkpoint of `epoch` and publishes its files.
    fn commit_epoch(&mut self, epoch: u64, items: Vec<CommitItem>, progress: &Progress) -> Result<()> {
        let mut files: Vec<StagedFile> = Vec::new();
        let mut epoch_totals = Totals::default();
        let mut windows: Vec<WindowRow> = Vec::new();
        let mut episodes: Vec<EpisodeRow> = Vec::new();
        let mut lag = 0;
        for item in items {
            match item {
                CommitItem::Ingest(report) => {
                    let t = report.totals;
                    if t.read != t.written + t.quarantined {
                        bail!("epoch {epoch} of worker {} does not reconcile: {t:?}", report.worker);
                    }
                    epoch_totals.add(&t);
                    lag += report.lag;
                    self.offsets.extend(report.offsets);
                    files.extend(report.files);
                }
                CommitItem::Admission(AdmissionReport::State(state)) => {
                    self.windows.insert(state.sensor.clone(), state);
                }
                CommitItem::Admission(AdmissionReport::Late(count)) => epoch_totals.late += count,
                CommitItem::Window(row) => windows.push(row),
                CommitItem::Episodes(EpisodeReport::Row(row)) => episodes.push(row),
                CommitItem::Episodes(EpisodeReport::State(state)) => {
                    self.episodes.insert(state.sensor.clone(), state);
                }
            }
        }
        let unit = format!("e{epoch:020}-commit");
        let mut uploads = Vec::new();
        let mut stage = |table: &str, rows: usize, date: String, bytes: bytes::Bytes| {
            let file = StagedFile::new(
                &unit,
                format!("{table}/date={date}/part-e{epoch:020}.parquet"),
                rows as u64,
                bytes.len() as u64,
            );
            uploads.push((file.staged.clone(), bytes));
            files.push(file);
        };
        for (date, rows) in by_date(windows, |row| row.window_start) {
            stage("windows", rows.len(), date, self.format.encode(&windows_schema(), &[windows_batch(&rows)])?);
        }
        for (date, rows) in by_date(episodes.clone(), |row| row.start) {
            stage(
                "congestion",
                rows.len(),
                date,
                self.format.encode(&congestion_schema(), &[congestion_batch(&rows)])?,
            );
        }
        self.lake.put_many(uploads)?;

        self.totals.add(&epoch_totals);
        self.run.add(&epoch_totals);
        let checkpoint = Checkpoint {
            epoch,
            topic: self.settings.topic.clone(),
            offsets: self.offsets.clone(),
            files,
            totals: self.totals,
            epoch_totals,
            windows: self.windows.values().cloned().collect(),
            episodes: self.episodes.values().cloned().collect(),
        };
        create_record(&self.lake, &checkpoint_path(epoch), &checkpoint)?;
        publish(&self.lake, &checkpoint.files)?;
        self.lake.tidy(traffic::checkpoint::STAGING);
        self.kept.push_back(epoch);
        while self.kept.len() > KEEP_CHECKPOINTS {
            let old = self.kept.pop_front().expect("an old checkpoint");
            self.lake.delete(&checkpoint_path(old))?;
        }
        self.committed += 1;
        self.published += checkpoint.files.len() as u64;
        self.last_epoch = Some(epoch);
        self.after_commit(&episodes);
        Progress::set(&progress.read, self.totals.read);
        Progress::set(&progress.written, self.totals.written);
        Progress::set(&progress.quarantined, self.totals.quarantined);
        Progress::set(&progress.frontier, epoch);
        Progress::set(&progress.lag, lag);
        Ok(())
    }

    /// At-least-once side effects of a committed epoch; failures are logged, not fatal.
    fn after_commit(&self, episodes: &[EpisodeRow]) {
        if let (Some(producer), Some(topic)) = (&self.alerts, &self.settings.alerts_topic) {
            for row in episodes {
                let payload = serde_json::to_vec(&alert_json(row)).expect("alert JSON");
                if let Err(error) = producer.send(topic, row.sensor_id.as_bytes(), &payload) {
                    log::warn!(target: "traffic", "stream: cannot send a congestion alert: {error:#}");
                }
            }
        }
        if let Some(monitor) = &self.monitor {
            if let Err(error) = commit_for_monitoring(monitor, &self.settings.topic, &self.offsets) {
                log::debug!(target: "traffic", "stream: monitoring offsets not committed: {error:#}");
            }
        }
    }

    fn summary(self) -> Summary {
        if let Some(producer) = &self.alerts {
            if let Err(error) = producer.flush(Duration::from_secs(10)) {
                log::warn!(target: "traffic", "stream: congestion alerts not all delivered: {error:#}");
            }
        }
        let last = self.last_epoch.map_or("none".to_string(), |e| e.to_string());
        Summary {
            read: self.run.read,
            written: self.run.written,
            quarantined: self.run.quarantined,
            files: self.published,
            skipped: 0,
            detail: format!(
                "{} epochs committed, last checkpoint {last}, {} readings too late for their window; output {}",
                self.committed,
                self.run.late,
                self.lake.url()
            ),
        }
    }
}

/// Rows grouped by the date (`YYYY-MM-DD`, UTC) of a time stamp of theirs.
fn by_date<R>(rows: Vec<R>, time: impl Fn(&R) -> i64) -> BTreeMap<String, Vec<R>> {
    let mut grouped: BTreeMap<String, Vec<R>> = BTreeMap::new();
    for row in rows {
        grouped.entry(date_label(day_of(time(&row)))).or_default().push(row);
    }
    grouped
}

/// The alert message for an episode event.
pub fn alert_json(row: &EpisodeRow) -> serde_json::Value {
    let time = |micros: i64| chrono::DateTime::from_timestamp_micros(micros).map(|t| t.to_rfc3339());
    serde_json::json!({
        "sensor_id": row.sensor_id,
        "status": row.status,
        "episode_start": time(row.start),
        "episode_end": row.end.and_then(time),
        "windows": row.windows,
        "min_mean_speed": row.min_mean_speed,
        "max_mean_density": row.max_mean_density,
        "epoch": row.epoch,
    })
}
