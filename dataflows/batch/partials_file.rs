//! A chunk's partial aggregates as a Parquet file: what a restarted run or a later load reads back.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use arrow::array::{Int32Array, Int64Array, Int8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::partials::{DailyPartial, Partials};
use super::week_profile::{empty_week, WeekProfiles};
use traffic::lake::Lake;
use traffic::parquet_sink::{FileFormat, RequiredColumn};
use traffic::prefault::vec_with_capacity;

impl Partials {
    /// Encodes the partials as one Parquet file (`kind` 0 = daily, 1 = profile). Every chunk
    /// writes one, and a chunk spanning a week has a profile row for each junction's 168 hours
    /// however few rows it holds, so it is made cheap: plain values compressed with Snappy and
    /// no statistics (the file is read whole, never pruned), through the typed column writers:
    /// 3.5x faster to encode than zstd over plain values (as before) and 2.5x faster than delta
    /// encoding, for a file about three times larger than the former.
    pub fn to_parquet(&self) -> Result<Bytes> {
        PartialsColumns::of(self).encode()
    }

    /// Decodes partials written by [`Partials::to_parquet`].
    pub fn from_parquet(bytes: Bytes) -> Result<Partials> {
        let mut partials = Partials::default();
        let mut weeks = BTreeMap::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
            let batch = batch?;
            let int8 = |i: usize| {
                batch.column(i).as_any().downcast_ref::<Int8Array>().cloned().context("partials: column type")
            };
            let int32 = |i: usize| {
                batch.column(i).as_any().downcast_ref::<Int32Array>().cloned().context("partials: column type")
            };
            let int64 = |i: usize| {
                batch.column(i).as_any().downcast_ref::<Int64Array>().cloned().context("partials: column type")
            };
            let (kind, junction, key, total, count, min, max) =
                (int8(0)?, int32(1)?, int32(2)?, int64(3)?, int64(4)?, int32(5)?, int32(6)?);
            for i in 0..batch.num_rows() {
                if kind.value(i) == 0 {
                    partials.daily.push(DailyPartial {
                        junction: junction.value(i),
                        day: key.value(i),
                        total: total.value(i),
                        hours: count.value(i),
                        min: min.value(i),
                        max: max.value(i),
                    });
                } else {
                    let slot = key.value(i) as usize;
                    let week = weeks.entry(junction.value(i)).or_insert_with(empty_week);
                    // `key` is weekday * 24 + hour, the weekday from 1 (see `PartialsColumns`).
                    let cell = week.get_mut(slot.wrapping_sub(24)).context("partials: profile key out of range")?;
                    cell.0 += total.value(i);
                    cell.1 += count.value(i);
                }
            }
        }
        partials.profile = WeekProfiles::from_weeks(&weeks);
        Ok(partials)
    }

    /// Reads the partials files at `paths` in `lake`, a few at a time.
    pub fn read_all(lake: &Lake, paths: &[String]) -> Result<Vec<Partials>> {
        use futures::StreamExt;
        let results: Vec<Result<Partials>> = traffic::runtime::block_on(
            futures::stream::iter(paths.iter().map(|path| async move {
                let bytes =
                    lake.get_async(path).await?.with_context(|| format!("missing partial aggregates {path}"))?;
                Partials::from_parquet(bytes).with_context(|| format!("corrupt partial aggregates {path}"))
            }))
            .buffered(16)
            .collect(),
        );
        results.into_iter().collect()
    }
}

/// A partials file's columns: a row for each day of each junction (kind 0, key the day), then a
/// row for each hour with rows of each junction's week (kind 1, key `weekday * 24 + hour`,
/// weekdays from 1), filled in one pass.
struct PartialsColumns {
    kind: Vec<i32>,
    junction: Vec<i32>,
    key: Vec<i32>,
    total: Vec<i64>,
    count: Vec<i64>,
    min: Vec<i32>,
    max: Vec<i32>,
}

impl PartialsColumns {
    /// The columns of `partials`' file.
    fn of(partials: &Partials) -> PartialsColumns {
        let hours = partials.profile.hours_with_rows();
        let rows = partials.daily.len() + hours;
        let mut c = PartialsColumns {
            kind: vec_with_capacity(rows),
            junction: vec_with_capacity(rows),
            key: vec_with_capacity(rows),
            total: vec_with_capacity(rows),
            count: vec_with_capacity(rows),
            min: vec_with_capacity(rows),
            max: vec_with_capacity(rows),
        };
        for d in &partials.daily {
            c.push(0, d.junction, d.day, d.total, d.hours, d.min, d.max);
        }
        for (junction, week) in partials.profile.weeks() {
            for (slot, &(total, samples)) in week.iter().enumerate() {
                if samples > 0 {
                    c.push(1, junction, slot as i32 + 24, total, samples, 0, 0);
                }
            }
        }
        c
    }

    /// The file: plain values, Snappy, no statistics (see [`Partials::to_parquet`]).
    fn encode(&self) -> Result<Bytes> {
        static FORMAT: OnceLock<FileFormat> = OnceLock::new();
        let format =
            FORMAT.get_or_init(|| FileFormat::builder().without_dictionaries().without_statistics().snappy().build());
        format.encode_required(
            &partials_schema(),
            &[
                RequiredColumn::Int32(&self.kind),
                RequiredColumn::Int32(&self.junction),
                RequiredColumn::Int32(&self.key),
                RequiredColumn::Int64(&self.total),
                RequiredColumn::Int64(&self.count),
                RequiredColumn::Int32(&self.min),
                RequiredColumn::Int32(&self.max),
            ],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, kind: i32, junction: i32, key: i32, total: i64, count: i64, min: i32, max: i32) {
        self.kind.push(kind);
        self.junction.push(junction);
        self.key.push(key);
        self.total.push(total);
        self.count.push(count);
        self.min.push(min);
        self.max.push(max);
    }
}

fn partials_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let field = |name: &str, t: DataType| Field::new(name, t, false);
            Arc::new(Schema::new(vec![
                field("kind", DataType::Int8),
                field("junction", DataType::Int32),
                field("key", DataType::Int32),
                field("total", DataType::Int64),
                field("count", DataType::Int64),
                field("min", DataType::Int32),
                field("max", DataType::Int32),
            ]))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partials_file_with_an_hour_outside_the_week_is_refused() {
        let mut columns = PartialsColumns::of(&Partials::default());
        columns.push(1, 7, 23, 10, 1, 0, 0); // weekday 0: no such day
        let bytes = columns.encode().unwrap();
        let error = Partials::from_parquet(bytes).unwrap_err();
        assert!(error.to_string().contains("profile key out of range"), "{error}");
    }
}
