//! Trend views with differential dataflow: daily totals and the weekly profile of each junction,
//! reduced from the partial aggregates of all visible loads and written when the run completes.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use differential_dataflow::VecCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concat;
use timely::dataflow::Stream;

use super::partials::Partial;
use crate::job::JobContext;
use crate::lake::Lake;
use crate::parquet_sink::FileFormat;

/// One row of `junction_daily`: `(junction, day)` and `(total, hours, min, max)`.
pub type DailyRow = ((i32, i32), (i64, i64, i32, i32));
/// One row of `junction_profile`: `(junction, weekday, hour)` and `(total, samples)`.
pub type ProfileRow = ((i32, u8, u8), (i64, i64));

/// Builds both views from the partials and writes them under the lake; the returned stream is
/// complete once both files are written.
pub fn trend_views<'scope>(
    partials: VecCollection<'scope, u64, Partial>,
    lake: Lake,
    job: JobContext,
) -> Stream<'scope, u64, Vec<()>> {
    let daily = partials
        .clone()
        .flat_map(|p| match p {
            Partial::Daily(d) => Some(((d.junction, d.day), (d.total, d.hours, d.min, d.max))),
            Partial::Profile(_) => None,
        })
        .reduce(|_key, input, output| {
            let mut row = (0i64, 0i64, i32::MAX, i32::MIN);
            for ((total, hours, min, max), count) in input {
                row.0 += total * *count as i64;
                row.1 += hours * *count as i64;
                row.2 = row.2.min(*min);
                row.3 = row.3.max(*max);
            }
            output.push((row, 1));
        });
    let profile = partials
        .flat_map(|p| match p {
            Partial::Profile(p) => Some(((p.junction, p.weekday, p.hour), (p.total, p.samples))),
            Partial::Daily(_) => None,
        })
        .reduce(|_key, input, output| {
            let mut row = (0i64, 0i64);
            for ((total, samples), count) in input {
                row.0 += total * *count as i64;
                row.1 += samples * *count as i64;
            }
            output.push((row, 1));
        });
    let daily_done =
        write_view(daily, lake.clone(), "junction_daily/junction_daily.parquet", encode_daily, job.clone());
    let profile_done = write_view(profile, lake, "junction_profile/junction_profile.parquet", encode_profile, job);
    daily_done.concat(profile_done)
}

/// Gathers a view on worker 0 and, once its input is complete, writes it as one Parquet file
/// (replacing the previous one atomically).
fn write_view<'scope, D>(
    view: VecCollection<'scope, u64, D>,
    lake: Lake,
    target: &'static str,
    encode: fn(Vec<D>) -> Result<Bytes>,
    job: JobContext,
) -> Stream<'scope, u64, Vec<()>>
where
    D: timely::ExchangeData + Ord + Clone,
{
    let index = view.inner.scope().index();
    view.inner.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &(D, u64, isize)| 0),
        "WriteView",
        move |capability, _info| {
            let mut capability = (index == 0).then_some(capability);
            let mut rows: BTreeMap<D, isize> = BTreeMap::new();
            move |(input, frontier), _output| {
                input.for_each(|_cap, data| {
                    for (row, _time, diff) in data.drain(..) {
                        *rows.entry(row).or_insert(0) += diff;
                    }
                });
                if frontier.frontier().is_empty() && capability.is_some() {
                    let visible: Vec<D> =
                        std::mem::take(&mut rows).into_iter().filter(|(_, n)| *n > 0).map(|(row, _)| row).collect();
                    let bytes = encode(visible).unwrap_or_else(|e| job.fail(&e));
                    lake.put(target, bytes).unwrap_or_else(|e| job.fail(&e));
                    capability = None;
                }
            }
        },
    )
}

fn encode_daily(rows: Vec<DailyRow>) -> Result<Bytes> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("junction", DataType::Int32, false),
        Field::new("date", DataType::Date32, false),
        Field::new("total", DataType::Int64, false),
        Field::new("min", DataType::Int32, false),
        Field::new("max", DataType::Int32, false),
        Field::new("mean", DataType::Float64, false),
        Field::new("hours", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0 .0))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.0 .1))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1 .0))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1 .2))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1 .3))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1 .0 as f64 / r.1 .1 as f64))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1 .1))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    FileFormat::builder().sorted_by(&[0, 1]).build().encode(&schema, &[batch])
}

fn encode_profile(rows: Vec<ProfileRow>) -> Result<Bytes> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("junction", DataType::Int32, false),
        Field::new("weekday", DataType::Int32, false),
        Field::new("hour", DataType::Int32, false),
        Field::new("mean", DataType::Float64, false),
        Field::new("samples", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0 .0))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0 .1 as i32))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0 .2 as i32))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1 .0 as f64 / r.1 .1 as f64))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1 .1))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    FileFormat::builder().sorted_by(&[0, 1, 2]).build().encode(&schema, &[batch])
}
