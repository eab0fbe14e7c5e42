//! Trend views with differential dataflow: daily totals and the weekly profile of each junction,
//! reduced from the partial aggregates of all visible loads and written when the run completes.

use std::sync::Arc;

use anyhow::Result;
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use differential_dataflow::consolidation::consolidate;
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::trace::implementations::{ValBatcher, ValBuilder, ValSpine};
use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::core::Partition;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concat;
use timely::dataflow::Stream;

use super::partials::{DailyPartial, Partial};
use super::week_profile::ProfilePartial;
use traffic::job::JobContext;
use traffic::lake::Lake;
use traffic::parquet_sink::{FileFormat, RequiredColumn};

/// Builds both views from the partials and writes them under the lake; the returned stream is
/// complete once both files are written.
///
/// Both views are keyed by junction: each reduction folds the partials of every visible load of
/// one junction, weighted by their multiplicity.
pub fn trend_views<'scope>(
    partials: VecCollection<'scope, u64, Partial>,
    lake: Lake,
    job: JobContext,
) -> Stream<'scope, u64, Vec<()>> {
    // Each view is reduced and encoded where its junctions fall, a part per worker; one worker
    // joins the parts into the view's file. The two views are joined on different workers, so
    // that two processes write them side by side.
    let last = partials.inner.scope().peers() - 1;
    // Split by kind without copying: two consumers of one stream would each get a clone of it.
    let mut kinds = partials.inner.partition::<CapacityContainerBuilder<Vec<_>>, _, _>(2, |update| match update.0 {
        Partial::Daily(_) => (0, update),
        Partial::Profile(_) => (1, update),
    });
    let (profile, daily) = (kinds.pop().expect("two kinds"), kinds.pop().expect("two kinds"));
    let daily = daily.as_collection().flat_map(|p| match p {
        Partial::Daily(days) => days.first().map(|d| d.junction).map(|junction| (junction, days)),
        Partial::Profile(_) => None,
    });
    let daily = reduce_by_junction(daily, |input| DailyPartial::fold(weighted(input, DailyPartial::times)));
    let profile = profile.as_collection().flat_map(|p| match p {
        Partial::Profile(slots) => slots.first().map(|s| s.junction).map(|junction| (junction, slots)),
        Partial::Daily(_) => None,
    });
    let profile = reduce_by_junction(profile, |input| ProfilePartial::fold(weighted(input, ProfilePartial::times)));
    let daily_file =
        ViewFile { target: "junction_daily/junction_daily.parquet", format: daily_format(), encode: encode_daily };
    let profile_file = ViewFile {
        target: "junction_profile/junction_profile.parquet",
        format: profile_format(),
        encode: encode_profile,
    };
    let daily_done = write_view(daily, 0, lake.clone(), daily_file, job.clone());
    let profile_done = write_view(profile, last, lake, profile_file, job);
    daily_done.concat(profile_done)
}

/// The partials of a reduction's input in one vector, each multiplied by its record's count.
fn weighted<P: Copy>(input: &[(&Vec<P>, isize)], times: fn(P, i64) -> P) -> Vec<P> {
    let mut all = Vec::with_capacity(input.iter().map(|(parts, _)| parts.len()).sum());
    for (parts, count) in input {
        all.extend(parts.iter().map(|p| times(*p, *count as i64)));
    }
    all
}

/// The collection of `fold(values of the junction)` for each junction, computed on the worker
/// the junction is exchanged to.
fn reduce_by_junction<'scope, V>(
    collection: VecCollection<'scope, u64, (i32, V)>,
    fold: fn(&[(&V, isize)]) -> V,
) -> VecCollection<'scope, u64, (i32, V)>
where
    V: differential_dataflow::ExchangeData,
{
    let arranged = arrange_core::<_, _, ValBatcher<i32, V, u64, isize>, ValSpine<i32, V, u64, isize>>(
        collection.inner,
        Exchange::new(|((junction, _), _, _): &((i32, V), u64, isize)| *junction as u64),
        "ArrangeByJunction",
        ValBatcher::new,
    );
    arranged
        .reduce_abelian::<_, ValBuilder<i32, V, u64, isize>, ValSpine<i32, V, u64, isize>, _, _>(
            "FoldJunction",
            move |_junction, input, output| output.push((fold(input), 1)),
            |buffer, junction, updates| {
                buffer.clear();
                buffer.extend(updates.drain(..).map(|(v, t, r)| ((*junction, v), t, r)));
            },
        )
        .as_collection(|junction, v| (*junction, v.clone()))
}

/// A view's file: where it goes, its writer settings, and how rows become a Parquet file.
struct ViewFile<D> {
    target: &'static str,
    format: FileFormat,
    encode: fn(&FileFormat, Vec<D>) -> Result<Bytes>,
}

/// Once the view is complete, every worker encodes its rows (its junctions, in junction order)
/// as one Parquet part, and worker `writer` joins the parts, worker by worker, into one file that
/// replaces the previous one atomically: one row group per worker, each sorted.
fn write_view<'scope, D>(
    view: VecCollection<'scope, u64, D>,
    writer: usize,
    lake: Lake,
    file: ViewFile<D>,
    job: JobContext,
) -> Stream<'scope, u64, Vec<()>>
where
    D: timely::ExchangeData + Ord + Clone,
{
    let index = view.inner.scope().index();
    let (format, encode, part_job) = (file.format.clone(), file.encode, job.clone());
    let parts = view.inner.unary_frontier::<CapacityContainerBuilder<Vec<(usize, Vec<u8>)>>, _, _, _>(
        Pipeline,
        "EncodeViewPart",
        move |capability, _info| {
            let mut capability = Some(capability);
            let mut rows: Vec<(D, isize)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|_cap, data| rows.extend(data.drain(..).map(|(row, _time, diff)| (row, diff))));
                if !frontier.frontier().is_empty() {
                    return;
                }
                if let Some(capability) = capability.take() {
                    let mut rows = std::mem::take(&mut rows);
                    consolidate(&mut rows);
                    let visible: Vec<D> = rows.into_iter().filter(|(_, n)| *n > 0).map(|(row, _)| row).collect();
                    let part = encode(&format, visible).unwrap_or_else(|e| part_job.fail(&e));
                    output.session(&capability).give((index, Vec::from(part)));
                }
            }
        },
    );
    parts.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(move |_: &(usize, Vec<u8>)| writer as u64),
        "WriteView",
        move |capability, _info| {
            let mut capability = (index == writer).then_some(capability);
            let mut parts: Vec<(usize, Vec<u8>)> = Vec::new();
            move |(input, frontier), _output| {
                input.for_each(|_cap, data| parts.append(data));
                if frontier.frontier().is_empty() && capability.take().is_some() {
                    parts.sort_by_key(|(worker, _)| *worker);
                    let parts: Vec<Bytes> = std::mem::take(&mut parts).into_iter().map(|(_, b)| b.into()).collect();
                    let bytes = file.format.concatenate(&parts).unwrap_or_else(|e| job.fail(&e));
                    lake.put(file.target, bytes).unwrap_or_else(|e| job.fail(&e));
                    log::debug!(target: "traffic", "wrote {}", file.target);
                }
            }
        },
    )
}

fn encode_daily(format: &FileFormat, junctions: Vec<(i32, Vec<DailyPartial>)>) -> Result<Bytes> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("junction", DataType::Int32, false),
        Field::new("date", DataType::Date32, false),
        Field::new("total", DataType::Int64, false),
        Field::new("min", DataType::Int32, false),
        Field::new("max", DataType::Int32, false),
        Field::new("mean", DataType::Float64, false),
        Field::new("hours", DataType::Int64, false),
    ]));
    format.encode_required(
        &schema,
        &[
            RequiredColumn::Int32(&view_column(&junctions, |r| r.junction)),
            RequiredColumn::Int32(&view_column(&junctions, |r| r.day)),
            RequiredColumn::Int64(&view_column(&junctions, |r| r.total)),
            RequiredColumn::Int32(&view_column(&junctions, |r| r.min)),
            RequiredColumn::Int32(&view_column(&junctions, |r| r.max)),
            RequiredColumn::Float64(&view_column(&junctions, |r| r.total as f64 / r.hours as f64)),
            RequiredColumn::Int64(&view_column(&junctions, |r| r.hours)),
        ],
    )
}

/// One column of a view: `value` of each row, junction after junction, in a vector sized once.
fn view_column<P, T>(junctions: &[(i32, Vec<P>)], value: impl Fn(&P) -> T) -> Vec<T> {
    let mut column = Vec::with_capacity(junctions.iter().map(|(_, rows)| rows.len()).sum());
    for (_, rows) in junctions {
        column.extend(rows.iter().map(&value));
    }
    column
}

fn daily_format() -> FileFormat {
    FileFormat::builder()
        .without_dictionaries()
        .delta("junction")
        .delta("date")
        .delta("total")
        .delta("min")
        .delta("max")
        .delta("hours")
        .sorted_by(&[0, 1])
        .build()
}

fn encode_profile(format: &FileFormat, junctions: Vec<(i32, Vec<ProfilePartial>)>) -> Result<Bytes> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("junction", DataType::Int32, false),
        Field::new("weekday", DataType::Int32, false),
        Field::new("hour", DataType::Int32, false),
        Field::new("mean", DataType::Float64, false),
        Field::new("samples", DataType::Int64, false),
    ]));
    format.encode_required(
        &schema,
        &[
            RequiredColumn::Int32(&view_column(&junctions, |r| r.junction)),
            RequiredColumn::Int32(&view_column(&junctions, |r| r.weekday as i32)),
            RequiredColumn::Int32(&view_column(&junctions, |r| r.hour as i32)),
            RequiredColumn::Float64(&view_column(&junctions, |r| r.total as f64 / r.samples as f64)),
            RequiredColumn::Int64(&view_column(&junctions, |r| r.samples)),
        ],
    )
}

fn profile_format() -> FileFormat {
    FileFormat::builder().without_dictionaries().sorted_by(&[0, 1, 2]).build()
}
