//! Stream checkpoints: one record per epoch, written when the progress frontier passes it, and
//! the recovery that resumes from the latest one.
//!
//! `_checkpoints/<epoch>.json` holds every partition's next offset, the epoch's files, running
//! totals and the window and episode state. It is created atomically *before* the epoch's files
//! are moved to their final names; recovery repeats that move for the latest checkpoint and
//! discards every other staged file, then each partition resumes at its recorded offset.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::episodes::SensorEpisodes;
use super::epoch::{epoch_at, Totals};
use super::windows::{SensorWindows, WindowAgg};
use traffic::checkpoint::{publish, read_record, StagedFile, Versioned, STAGING};
use traffic::kafka::{admin_consumer, partition_count, watermarks};
use traffic::lake::Lake;

/// The folder of checkpoints.
pub const CHECKPOINTS: &str = "_checkpoints";

/// Path of the checkpoint of `epoch`; zero-padded so names sort by epoch.
pub fn checkpoint_path(epoch: u64) -> String {
    format!("{CHECKPOINTS}/{epoch:020}.json")
}

/// The checkpoint of one epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The epoch.
    pub epoch: u64,
    /// The topic read.
    pub topic: String,
    /// Next offset to read in every partition.
    pub offsets: BTreeMap<i32, i64>,
    /// Files of this epoch.
    pub files: Vec<StagedFile>,
    /// Counts since the stream first started.
    pub totals: Totals,
    /// Counts of this epoch.
    pub epoch_totals: Totals,
    /// Admission state of every sensor.
    pub windows: Vec<SensorWindows>,
    /// Episode state of every sensor.
    pub episodes: Vec<SensorEpisodes>,
}

impl Versioned for Checkpoint {
    const KIND: &'static str = "stream checkpoint";
    const VERSION: u32 = 2;

    /// Version 1 listed the partials of each open window; version 2 holds their aggregate.
    fn upgrade(mut record: Value, _version: u32) -> Result<Value> {
        for sensor in record["windows"].as_array_mut().into_iter().flatten() {
            for window in sensor["windows"].as_object_mut().into_iter().flat_map(|w| w.values_mut()) {
                if window.is_array() {
                    let partials: Vec<WindowAgg> = serde_json::from_value(window.take())?;
                    *window = serde_json::to_value(WindowAgg::total(partials.iter().map(|agg| (agg, 1))))?;
                }
            }
        }
        Ok(record)
    }
}

/// Where to start partitions that no checkpoint mentions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartAt {
    /// The oldest message still in the partition.
    Earliest,
    /// The next message to arrive.
    Latest,
}

/// What recovery found and decided, for the planner and the committer on worker 0.
#[derive(Clone, Debug)]
pub struct Recovered {
    /// The latest checkpoint, if any.
    pub last: Option<Checkpoint>,
    /// Epochs of the checkpoints on store, oldest first.
    pub kept: Vec<u64>,
    /// Offset at which each partition starts.
    pub offsets: BTreeMap<i32, i64>,
    /// Each partition's end (high watermark) when the run started.
    pub ends: BTreeMap<i32, i64>,
    /// The first epoch of this run.
    pub first_epoch: u64,
}

/// Finishes the latest checkpoint's publication, discards staged files beyond it, and decides
/// where each partition starts and which epoch comes next.
pub fn recover(
    lake: &Lake,
    brokers: &str,
    topic: &str,
    group: &str,
    start: StartAt,
    epoch: Duration,
) -> Result<Recovered> {
    let mut kept: Vec<u64> = lake
        .list(CHECKPOINTS)?
        .iter()
        .filter_map(|e| e.path.strip_prefix(&format!("{CHECKPOINTS}/"))?.strip_suffix(".json")?.parse().ok())
        .collect();
    kept.sort_unstable();
    let last: Option<Checkpoint> = match kept.last() {
        Some(&epoch) => read_record(lake, &checkpoint_path(epoch))?,
        None => None,
    };
    if let Some(last) = &last {
        if last.topic != topic {
            bail!("{} holds checkpoints of topic '{}', not '{topic}': use another output", lake.url(), last.topic);
        }
        publish(lake, &last.files)?;
    }
    let staged: Vec<String> = lake.list(STAGING)?.into_iter().map(|e| e.path).collect();
    if !staged.is_empty() {
        log::info!(target: "traffic", "stream: discarding {} staged files of an unfinished epoch", staged.len());
        lake.delete_many(&staged)?;
    }
    lake.tidy(STAGING);

    let consumer = admin_consumer(brokers, group)?;
    let partitions = wait_for_topic(&consumer, topic)?;
    let marks = watermarks(&consumer, topic, partitions)?;
    let mut offsets = BTreeMap::new();
    for (&partition, &(low, high)) in &marks {
        let offset = match (last.as_ref().and_then(|c| c.offsets.get(&partition)), start, &last) {
            (Some(&recorded), _, _) if recorded > high => {
                log::warn!(
                    target: "traffic",
                    "stream: {topic}/{partition} ends at offset {high}, before the checkpoint's {recorded}: the topic was recreated; reading it from its start"
                );
                low
            }
            (Some(&recorded), _, _) => {
                if recorded < low {
                    log::warn!(
                        target: "traffic",
                        "stream: {topic}/{partition}: offsets {recorded}..{low} expired from Kafka before they were read"
                    );
                }
                recorded.max(low)
            }
            // A partition added since the last checkpoint holds only new messages.
            (None, _, Some(_)) | (None, StartAt::Earliest, None) => low,
            (None, StartAt::Latest, None) => high,
        };
        offsets.insert(partition, offset);
    }
    let now_epoch = epoch_at(SystemTime::now(), epoch);
    let first_epoch = last.as_ref().map_or(now_epoch, |c| (c.epoch + 1).max(now_epoch));
    let ends = marks.iter().map(|(&partition, &(_, high))| (partition, high)).collect();
    Ok(Recovered { last, kept, offsets, ends, first_epoch })
}

/// Waits up to 60 s for `topic` to exist (a producer may be creating it), then gives its size.
fn wait_for_topic(consumer: &rdkafka::consumer::BaseConsumer, topic: &str) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match partition_count(consumer, topic) {
            Ok(count) => return Ok(count),
            Err(error) if Instant::now() < deadline => {
                log::info!(target: "traffic", "stream: waiting for topic '{topic}': {error:#}");
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(error) => return Err(error).context("the topic is not there"),
        }
    }
}

#[cfg(test)]
mod tests {
    use traffic::checkpoint::{decode, encode};

    use super::*;

    #[test]
    fn checkpoints_of_version_1_list_partials_that_are_merged_on_load() {
        let partial = |count, speed, min| WindowAgg { count, speed_sum: speed, speed_min: min, density_sum: 7 * count };
        let mut old = serde_json::to_value(Checkpoint { epoch: 5, ..Checkpoint::default() }).unwrap();
        old["windows"] = serde_json::json!([{
            "sensor": "S1",
            "watermark": 99,
            "windows": {"0": [partial(2, 100, 40), partial(1, 30, 30)], "60000000": [partial(1, 50, 50)]}
        }]);
        let checkpoint: Checkpoint = decode(&serde_json::to_vec(&old).unwrap()).unwrap();
        let state = &checkpoint.windows[0];
        assert_eq!((checkpoint.epoch, state.watermark), (5, 99));
        assert_eq!(state.windows[&0], partial(3, 130, 30));
        assert_eq!(state.windows[&60_000_000], partial(1, 50, 50));
        let again: Checkpoint = decode(&encode(&checkpoint).unwrap()).unwrap();
        assert_eq!(again, checkpoint, "the current version reads back as written");
    }
}
