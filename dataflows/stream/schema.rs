//! The speed layer's tables: readings, quarantine, windows and congestion episodes.

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use base64::Engine;

use super::episodes::EpisodeRow;
use super::windows::WindowRow;
use traffic::parquet_sink::FileFormat;

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn cached(cell: &'static OnceLock<SchemaRef>, fields: impl FnOnce() -> Vec<Field>) -> SchemaRef {
    cell.get_or_init(|| Arc::new(Schema::new(fields()))).clone()
}

/// Writer settings for `readings/` and `quarantine/` files: offsets and time stamps rise within a
/// partition, so delta encoding stores them in a few bits each, where dictionaries would overflow
/// and fall back to eight plain bytes per value; partitions come in long runs, which delta stores
/// in no bits at all without a dictionary's hash per value; sensor ids and measurements keep their
/// dictionaries (halving the measurements' size).
pub fn epoch_file_format() -> FileFormat {
    FileFormat::builder().delta("timestamp").delta("kafka_partition").delta("kafka_offset").build()
}

/// `sensor_id, timestamp, average_speed, traffic_density, kafka_partition, kafka_offset`.
pub fn readings_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    cached(&SCHEMA, || {
        vec![
            Field::new("sensor_id", DataType::Utf8, false),
            Field::new("timestamp", utc(), false),
            Field::new("average_speed", DataType::Float64, false),
            Field::new("traffic_density", DataType::Float64, false),
            Field::new("kafka_partition", DataType::Int32, false),
            Field::new("kafka_offset", DataType::Int64, false),
        ]
    })
}

/// `kafka_partition, kafka_offset, payload, payload_encoding, reason, received_at`.
pub fn quarantine_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    cached(&SCHEMA, || {
        vec![
            Field::new("kafka_partition", DataType::Int32, false),
            Field::new("kafka_offset", DataType::Int64, false),
            Field::new("payload", DataType::Utf8, false),
            Field::new("payload_encoding", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("received_at", utc(), false),
        ]
    })
}

/// A rejected message.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The payload as text, or base64 when it is not UTF-8.
    pub payload: String,
    /// `text` or `base64`.
    pub encoding: &'static str,
    /// Why it was rejected.
    pub reason: String,
    /// When it was read, microseconds since the epoch.
    pub received_at: i64,
}

impl Rejected {
    /// Keeps `payload` losslessly: as text when it is UTF-8, as base64 otherwise.
    pub fn new(partition: i32, offset: i64, payload: Option<&[u8]>, reason: String, received_at: i64) -> Rejected {
        let (payload, encoding) = match payload.map(std::str::from_utf8) {
            None => (String::new(), "text"),
            Some(Ok(text)) => (text.to_string(), "text"),
            Some(Err(_)) => (base64::engine::general_purpose::STANDARD.encode(payload.unwrap_or_default()), "base64"),
        };
        Rejected { partition, offset, payload, encoding, reason, received_at }
    }
}

/// A batch of rejected messages.
pub fn quarantine_batch(rows: &[Rejected]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.partition))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.offset))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.payload.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.encoding))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.reason.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.received_at)).with_timezone("UTC")),
    ];
    RecordBatch::try_new(quarantine_schema(), columns).expect("quarantine schema")
}

/// `sensor_id, window_start, window_end, count, mean_speed, min_speed, mean_density, epoch`.
pub fn windows_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    cached(&SCHEMA, || {
        vec![
            Field::new("sensor_id", DataType::Utf8, false),
            Field::new("window_start", utc(), false),
            Field::new("window_end", utc(), false),
            Field::new("count", DataType::Int64, false),
            Field::new("mean_speed", DataType::Float64, false),
            Field::new("min_speed", DataType::Float64, false),
            Field::new("mean_density", DataType::Float64, false),
            Field::new("epoch", DataType::Int64, false),
        ]
    })
}

/// A batch of window rows.
pub fn windows_batch(rows: &[WindowRow]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.sensor_id.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.window_start)).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.window_end)).with_timezone("UTC")),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.count))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.mean_speed))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.min_speed))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.mean_density))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.epoch as i64))),
    ];
    RecordBatch::try_new(windows_schema(), columns).expect("windows schema")
}

/// `sensor_id, status, episode_start, episode_end, windows, min_mean_speed, max_mean_density, epoch`.
pub fn congestion_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    cached(&SCHEMA, || {
        vec![
            Field::new("sensor_id", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("episode_start", utc(), false),
            Field::new("episode_end", utc(), true),
            Field::new("windows", DataType::Int64, false),
            Field::new("min_mean_speed", DataType::Float64, false),
            Field::new("max_mean_density", DataType::Float64, false),
            Field::new("epoch", DataType::Int64, false),
        ]
    })
}

/// A batch of episode events.
pub fn congestion_batch(rows: &[EpisodeRow]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.sensor_id.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.status.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.start)).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| r.end).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.windows as i64))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.min_mean_speed))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.max_mean_density))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.epoch as i64))),
    ];
    RecordBatch::try_new(congestion_schema(), columns).expect("congestion schema")
}
