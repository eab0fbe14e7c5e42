//! Readings of one epoch on one worker, built column by column, split by event date, and the
//! column memory recycled from one epoch to the next.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, PrimitiveArray, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{ArrowPrimitiveType, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;

use super::schema::readings_schema;
use traffic::calendar::{date_label, day_of};

/// Spare date columns kept between epochs.
const MAX_SPARE: usize = 4;

/// The readings of an epoch, by event date.
///
/// At a million readings per second an epoch's columns are tens of megabytes. Allocating them
/// afresh every epoch made the allocator map new memory and the kernel zero it, a quarter of the
/// stream's CPU time; so the batches are built on the columns' own vectors without copying and,
/// once encoded, handed back ([`ReadingColumns::recycle`]) to be emptied and filled again.
#[derive(Default)]
pub struct ReadingColumns {
    by_date: BTreeMap<i32, DateColumns>,
    spare: Vec<DateColumns>,
}

struct DateColumns {
    /// Arrow's string layout: `sensor_offsets[i]..sensor_offsets[i + 1]` in `sensor_bytes`.
    sensor_offsets: Vec<i32>,
    sensor_bytes: Vec<u8>,
    timestamp: Vec<i64>,
    speed: Vec<f64>,
    density: Vec<f64>,
    partition: Vec<i32>,
    offset: Vec<i64>,
}

impl DateColumns {
    fn empty() -> Self {
        DateColumns {
            sensor_offsets: vec![0],
            sensor_bytes: Vec::new(),
            timestamp: Vec::new(),
            speed: Vec::new(),
            density: Vec::new(),
            partition: Vec::new(),
            offset: Vec::new(),
        }
    }

    fn into_batch(self) -> RecordBatch {
        let sensor = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.sensor_offsets)),
            Buffer::from_vec(self.sensor_bytes),
            None,
        )
        .expect("sensor ids are UTF-8 with rising offsets");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(sensor),
            Arc::new(TimestampMicrosecondArray::new(ScalarBuffer::from(self.timestamp), None).with_timezone("UTC")),
            Arc::new(Float64Array::new(ScalarBuffer::from(self.speed), None)),
            Arc::new(Float64Array::new(ScalarBuffer::from(self.density), None)),
            Arc::new(Int32Array::new(ScalarBuffer::from(self.partition), None)),
            Arc::new(Int64Array::new(ScalarBuffer::from(self.offset), None)),
        ];
        RecordBatch::try_new(readings_schema(), columns).expect("readings schema")
    }

    /// Takes back the vectors of a batch made by `into_batch` and no longer shared; a column
    /// that cannot be taken back (still shared) is simply allocated again.
    fn reclaim(batch: RecordBatch) -> Self {
        let (_, columns, _) = batch.into_parts();
        let mut columns = columns.into_iter();
        let mut next = || columns.next().expect("readings column");
        let (sensor_offsets, sensor_bytes) = {
            let data = next().to_data();
            let (offsets, values, _) = StringArray::from(data).into_parts();
            (vector(offsets.into_inner().into_inner()), vector(values))
        };
        let mut columns = DateColumns {
            sensor_offsets,
            sensor_bytes,
            timestamp: values::<TimestampMicrosecondType>(next()),
            speed: values::<Float64Type>(next()),
            density: values::<Float64Type>(next()),
            partition: values::<Int32Type>(next()),
            offset: values::<Int64Type>(next()),
        };
        columns.clear();
        columns
    }

    fn clear(&mut self) {
        self.sensor_offsets.clear();
        self.sensor_offsets.push(0);
        self.sensor_bytes.clear();
        self.timestamp.clear();
        self.speed.clear();
        self.density.clear();
        self.partition.clear();
        self.offset.clear();
    }
}

/// The vector under a primitive column, if nothing else holds it.
fn values<T: ArrowPrimitiveType>(column: ArrayRef) -> Vec<T::Native> {
    let data = column.to_data();
    drop(column);
    let (_, values, _) = PrimitiveArray::<T>::from(data).into_parts();
    vector(values.into_inner())
}

fn vector<T: arrow::datatypes::ArrowNativeType>(buffer: Buffer) -> Vec<T> {
    buffer.into_vec().unwrap_or_default()
}

impl ReadingColumns {
    /// Appends one reading.
    pub fn push(&mut self, sensor_id: &str, timestamp: i64, speed: f64, density: f64, partition: i32, offset: i64) {
        let date = match self.by_date.entry(day_of(timestamp)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(self.spare.pop().unwrap_or_else(DateColumns::empty)),
        };
        date.sensor_bytes.extend_from_slice(sensor_id.as_bytes());
        // Offsets past i32 would need over 2 GiB of sensor ids in one epoch's date; were it to
        // happen, the batch would fail validation (and the job with it) rather than lose data.
        date.sensor_offsets.push(date.sensor_bytes.len() as i32);
        date.timestamp.push(timestamp);
        date.speed.push(speed);
        date.density.push(density);
        date.partition.push(partition);
        date.offset.push(offset);
    }

    /// Rows held.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.by_date.values().map(|d| d.timestamp.len()).sum()
    }

    /// One batch per event date (`YYYY-MM-DD`), emptying the buffer.
    pub fn take_batches(&mut self) -> Vec<(String, RecordBatch)> {
        std::mem::take(&mut self.by_date).into_iter().map(|(day, c)| (date_label(day), c.into_batch())).collect()
    }

    /// Takes back the memory of batches from [`ReadingColumns::take_batches`] once encoded.
    ///
    /// Only columns that the epoch filled to at least a quarter are kept: after a burst (a backlog
    /// drained at start-up) the next ordinary epoch lets the burst's memory go instead of holding
    /// it for the life of the stream.
    pub fn recycle(&mut self, batches: impl IntoIterator<Item = RecordBatch>) {
        for batch in batches {
            // A few dates' worth is all an epoch needs; more would only hold memory.
            if self.spare.len() >= MAX_SPARE {
                break;
            }
            let rows = batch.num_rows();
            let columns = DateColumns::reclaim(batch);
            if columns.speed.capacity() <= rows.saturating_mul(4) {
                self.spare.push(columns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    #[test]
    fn columns_are_reused_across_epochs() {
        let mut columns = ReadingColumns::default();
        let day = 20_000i64 * 86_400_000_000;
        for epoch in 0..3 {
            for i in 0..1000 {
                columns.push(&format!("S{}", i % 7), day + i, 50.0, 20.0, 1, epoch * 1000 + i);
            }
            let batches = columns.take_batches();
            assert_eq!(batches.len(), 1);
            let batch = &batches[0].1;
            assert_eq!(batch.num_rows(), 1000);
            assert_eq!(batch.column(0).as_string::<i32>().value(8), "S1");
            assert_eq!(batch.column(5).as_primitive::<Int64Type>().value(999), epoch * 1000 + 999);
            let pointer = batch.column(2).as_primitive::<Float64Type>().values().as_ptr();
            columns.recycle(batches.into_iter().map(|(_, b)| b));
            assert_eq!(columns.spare.len(), 1);
            let reused = &columns.spare[0];
            assert!(reused.speed.capacity() >= 1000 && reused.speed.is_empty());
            assert_eq!(reused.speed.as_ptr(), pointer, "the same memory comes back");
            assert_eq!(reused.sensor_offsets, vec![0]);
        }
    }

    #[test]
    fn the_memory_of_a_burst_is_let_go_after_an_ordinary_epoch() {
        let mut columns = ReadingColumns::default();
        let day = 20_000i64 * 86_400_000_000;
        for (epoch, rows) in [100_000, 10, 10].into_iter().enumerate() {
            for i in 0..rows {
                columns.push("S1", day + i, 50.0, 20.0, 0, i);
            }
            let batches = columns.take_batches().into_iter().map(|(_, b)| b);
            columns.recycle(batches);
            let kept: Vec<usize> = columns.spare.iter().map(|c| c.speed.capacity()).collect();
            match epoch {
                0 => assert!(kept.len() == 1 && kept[0] >= 100_000, "the burst's columns serve the next epoch"),
                1 => assert!(kept.is_empty(), "a tenth-full epoch lets them go: {kept:?}"),
                _ => assert!(kept.len() == 1 && kept[0] < 100, "small columns are kept again: {kept:?}"),
            }
        }
    }
}
