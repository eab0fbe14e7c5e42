//! Partial aggregates of a chunk of counts: what the trend views are combined from.

use std::collections::BTreeMap;

use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use arrow::array::{Int32Array, Int64Array, Int8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::lake::Lake;
use crate::parquet_sink::{FileFormat, RequiredColumn};

use crate::calendar::{day_of, iso_weekday, MICROS_PER_DAY, MICROS_PER_HOUR};
use crate::csv::CountColumns;
use crate::prefault::vec_with_capacity;

/// The partial aggregates of one junction in one load: a record of the trend views' collection.
///
/// Differential dataflow's cost is per record, so a junction's days, or its week's slots, travel
/// together: a load of 10 M rows adds a thousand records instead of half a million.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Partial {
    /// One junction's days, sorted by day.
    Daily(Vec<DailyPartial>),
    /// One junction's (weekday, hour) slots, sorted.
    Profile(Vec<ProfilePartial>),
}

/// Sum, count, minimum and maximum of vehicles for `(junction, day)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DailyPartial {
    /// Junction id.
    pub junction: i32,
    /// Day number since 1970-01-01.
    pub day: i32,
    /// Sum of vehicles.
    pub total: i64,
    /// Rows (hours) counted.
    pub hours: i64,
    /// Smallest hourly count.
    pub min: i32,
    /// Largest hourly count.
    pub max: i32,
}

/// Sum and count of vehicles for `(junction, ISO weekday, hour)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProfilePartial {
    /// Junction id.
    pub junction: i32,
    /// ISO weekday, 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    /// Hour of day, 0-23.
    pub hour: u8,
    /// Sum of vehicles.
    pub total: i64,
    /// Rows counted.
    pub samples: i64,
}

impl DailyPartial {
    /// Adds the rows of `other`, a partial of the same junction and day.
    pub fn absorb(&mut self, other: &DailyPartial) {
        self.total += other.total;
        self.hours += other.hours;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The partial of `copies` identical sets of rows.
    pub fn times(self, copies: i64) -> DailyPartial {
        DailyPartial { total: self.total * copies, hours: self.hours * copies, ..self }
    }

    /// Sorts partials by `(junction, day)` and folds those of the same key into one.
    /// Sorting the concatenation is several times faster than map inserts: parts come in sorted
    /// runs, and the sort finds and merges them.
    pub fn fold(mut daily: Vec<DailyPartial>) -> Vec<DailyPartial> {
        daily.sort_by_key(|d| (d.junction, d.day));
        daily.dedup_by(|next, kept| {
            let same = (next.junction, next.day) == (kept.junction, kept.day);
            if same {
                kept.absorb(next);
            }
            same
        });
        daily
    }
}

impl ProfilePartial {
    /// The partial of `copies` identical sets of rows.
    pub fn times(self, copies: i64) -> ProfilePartial {
        ProfilePartial { total: self.total * copies, samples: self.samples * copies, ..self }
    }

    /// Sorts partials by `(junction, weekday, hour)` and folds those of the same key into one.
    pub fn fold(mut profile: Vec<ProfilePartial>) -> Vec<ProfilePartial> {
        profile.sort_by_key(|p| (p.junction, p.weekday, p.hour));
        profile.dedup_by(|next, kept| {
            let same = (next.junction, next.weekday, next.hour) == (kept.junction, kept.weekday, kept.hour);
            if same {
                kept.total += next.total;
                kept.samples += next.samples;
            }
            same
        });
        profile
    }
}

/// The partial aggregates of a set of rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partials {
    /// Per junction and day.
    pub daily: Vec<DailyPartial>,
    /// Per junction, weekday and hour.
    pub profile: WeekProfiles,
}

/// Weekly profile partials, dense: for each junction with rows, in junction order, the
/// `(total, samples)` of every hour of its week, empty hours included.
///
/// A chunk that spans a week fills nearly every hour of every junction, so this is no larger
/// than a list of `(junction, weekday, hour)` partials, and every chunk has one: kept as arrays,
/// building, summing and encoding it are plain loops (with 2,000 junctions, a list of partials
/// cost a chunk ~6 ms more).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekProfiles {
    junctions: Vec<i32>,
    /// [`WEEK_HOURS`] cells per junction, junction after junction.
    cells: Vec<(i64, i64)>,
}

/// Hours in a week: the cells of one junction's profile.
const WEEK_HOURS: usize = 7 * 24;

impl WeekProfiles {
    /// Each junction with its week's cells, in junction order.
    pub fn weeks(&self) -> impl Iterator<Item = (i32, &[(i64, i64)])> + '_ {
        self.junctions.iter().copied().zip(self.cells.chunks_exact(WEEK_HOURS))
    }

    /// The partials of the hours with rows, in `(junction, weekday, hour)` order.
    pub fn partials(&self) -> impl Iterator<Item = ProfilePartial> + '_ {
        self.weeks().flat_map(|(junction, week)| week_partials(junction, week))
    }

    /// The profiles of the weeks in `weeks`, in junction order.
    fn from_weeks(weeks: &BTreeMap<i32, Box<WeekSlots>>) -> WeekProfiles {
        let mut cells = Vec::with_capacity(weeks.len() * WEEK_HOURS);
        for week in weeks.values() {
            cells.extend_from_slice(&week[..]);
        }
        WeekProfiles { junctions: weeks.keys().copied().collect(), cells }
    }

    /// Adds each junction's cells to its week in `weeks`.
    fn add_to(&self, weeks: &mut BTreeMap<i32, Box<WeekSlots>>) {
        for (junction, week) in self.weeks() {
            let sum = weeks.entry(junction).or_insert_with(empty_week);
            for (cell, add) in sum.iter_mut().zip(week) {
                cell.0 += add.0;
                cell.1 += add.1;
            }
        }
    }
}

impl Partials {
    /// Computes the partials of `rows` in one pass.
    pub fn of(rows: &CountColumns) -> Partials {
        let mut builder = PartialsBuilder::default();
        builder.add(rows);
        builder.finish()
    }

    /// Combines several sets of partials into one (same keys merged).
    pub fn merge(parts: &[Partials]) -> Partials {
        let mut daily = Vec::with_capacity(parts.iter().map(|p| p.daily.len()).sum());
        let mut weeks = BTreeMap::new();
        for part in parts {
            daily.extend_from_slice(&part.daily);
            part.profile.add_to(&mut weeks);
        }
        Partials { daily: DailyPartial::fold(daily), profile: WeekProfiles::from_weeks(&weeks) }
    }

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
        let results: Vec<Result<Partials>> = crate::runtime::block_on(
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

    /// The collection records of a load cut into chunks: one per junction and kind, each the
    /// sum over the chunks. Linear when the chunks cover successive days, as they do for inputs
    /// in time order; the views' reduction then folds one record per junction, not one per chunk.
    pub fn load_records(chunks: &[Partials]) -> Vec<Partial> {
        let mut days: BTreeMap<i32, Vec<&[DailyPartial]>> = BTreeMap::new();
        let mut weeks: BTreeMap<i32, Box<WeekSlots>> = BTreeMap::new();
        for chunk in chunks {
            for run in chunk.daily.chunk_by(|a, b| a.junction == b.junction) {
                days.entry(run[0].junction).or_default().push(run);
            }
            chunk.profile.add_to(&mut weeks);
        }
        let daily = days.into_values().map(|runs| {
            let in_order = runs.windows(2).all(|w| w[0][w[0].len() - 1].day <= w[1][0].day);
            let mut joined: Vec<DailyPartial> = Vec::with_capacity(runs.iter().map(|r| r.len()).sum());
            for run in runs {
                // A day cut by a chunk boundary ends one run and starts the next.
                let rest = match (joined.last_mut(), run.first()) {
                    (Some(last), Some(first)) if last.day == first.day => {
                        last.absorb(first);
                        &run[1..]
                    }
                    _ => run,
                };
                joined.extend_from_slice(rest);
            }
            Some(Partial::Daily(if in_order { joined } else { DailyPartial::fold(joined) }))
        });
        let profile = weeks.iter().map(|(junction, week)| profile_record(*junction, &week[..]));
        daily.chain(profile).flatten().collect()
    }

    /// Every partial, as collection records: one per junction and kind.
    pub fn records(&self) -> impl Iterator<Item = Partial> + '_ {
        let daily =
            self.daily.chunk_by(|a, b| a.junction == b.junction).map(|days| Some(Partial::Daily(days.to_vec())));
        let profile = self.profile.weeks().map(|(junction, week)| profile_record(junction, week));
        daily.chain(profile).flatten()
    }
}

/// Accumulates partials over several batches of rows; fastest when rows come grouped by junction
/// and day, as they are once sorted for the lake.
#[derive(Default)]
pub struct PartialsBuilder {
    /// One entry per run of a junction's day, in the order met; folded by [`Self::finish`]
    /// (a sort of runs is several times faster than a map update per run).
    daily: Vec<DailyPartial>,
    profile: BTreeMap<i32, Box<WeekSlots>>,
}

/// `(total, samples)` for each of a week's 168 hours.
type WeekSlots = [(i64, i64); 7 * 24];

impl PartialsBuilder {
    /// Adds `rows`.
    pub fn add(&mut self, rows: &CountColumns) {
        let empty = |junction, day| DailyPartial { junction, day, total: 0, hours: 0, min: i32::MAX, max: i32::MIN };
        let mut current = empty(0, 0);
        let mut slots: Option<(i32, Box<WeekSlots>)> = None;
        let mut day_start = i64::MAX;
        let mut weekday_base = 0;
        for i in 0..rows.len() {
            let (junction, micros, vehicles) = (rows.junction[i], rows.datetime[i], rows.vehicles[i]);
            if junction != current.junction || micros < day_start || micros >= day_start + MICROS_PER_DAY {
                if current.hours > 0 {
                    self.daily.push(current);
                }
                let day = day_of(micros);
                current = empty(junction, day);
                day_start = day as i64 * MICROS_PER_DAY;
                weekday_base = week_slot(iso_weekday(day) as u8, 0);
            }
            current.total += vehicles as i64;
            current.hours += 1;
            current.min = current.min.min(vehicles);
            current.max = current.max.max(vehicles);
            // Keep the current junction's 168 weekly slots at hand instead of a map lookup per row.
            if slots.as_ref().is_none_or(|(j, _)| *j != junction) {
                if let Some((j, done)) = slots.take() {
                    self.profile.insert(j, done);
                }
                let taken = self.profile.remove(&junction).unwrap_or_else(empty_week);
                slots = Some((junction, taken));
            }
            let hour = ((micros - day_start) / MICROS_PER_HOUR) as usize;
            let cell = &mut slots.as_mut().expect("slots").1[weekday_base + hour];
            cell.0 += vehicles as i64;
            cell.1 += 1;
        }
        if current.hours > 0 {
            self.daily.push(current);
        }
        if let Some((j, done)) = slots {
            self.profile.insert(j, done);
        }
    }

    /// The partials of every row added.
    pub fn finish(self) -> Partials {
        Partials { daily: DailyPartial::fold(self.daily), profile: WeekProfiles::from_weeks(&self.profile) }
    }
}

/// A week with no rows.
fn empty_week() -> Box<WeekSlots> {
    Box::new([(0, 0); WEEK_HOURS])
}

/// The index in [`WeekSlots`] of ISO `weekday` (1 = Monday) and `hour`.
fn week_slot(weekday: u8, hour: u8) -> usize {
    (weekday as usize - 1) * 24 + hour as usize
}

/// The partials of a junction's week slots that have rows, in (weekday, hour) order (the
/// inverse of [`week_slot`]).
fn week_partials(junction: i32, week: &[(i64, i64)]) -> impl Iterator<Item = ProfilePartial> + '_ {
    week.iter().enumerate().filter(|(_, (_, n))| *n > 0).map(move |(slot, &(total, samples))| ProfilePartial {
        junction,
        weekday: (slot / 24 + 1) as u8,
        hour: (slot % 24) as u8,
        total,
        samples,
    })
}

/// A junction's profile record, unless its week has no rows.
fn profile_record(junction: i32, week: &[(i64, i64)]) -> Option<Partial> {
    let slots: Vec<ProfilePartial> = week_partials(junction, week).collect();
    (!slots.is_empty()).then_some(Partial::Profile(slots))
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
        let hours = partials.profile.cells.iter().filter(|(_, n)| *n > 0).count();
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
    use crate::calendar::{days_from_civil, MICROS_PER_DAY, MICROS_PER_HOUR};

    #[test]
    fn daily_and_profile_partials() {
        let monday = days_from_civil(2015, 11, 2) as i64 * MICROS_PER_DAY;
        let rows = CountColumns {
            datetime: vec![monday, monday + MICROS_PER_HOUR, monday, monday + MICROS_PER_DAY],
            junction: vec![1, 1, 2, 1],
            vehicles: vec![10, 20, 5, 7],
            id: vec![1, 2, 3, 4],
        };
        let partials = Partials::of(&rows);
        let day = days_from_civil(2015, 11, 2);
        assert_eq!(partials.daily[0], DailyPartial { junction: 1, day, total: 30, hours: 2, min: 10, max: 20 });
        assert_eq!(partials.daily.len(), 3);
        let profile: Vec<ProfilePartial> = partials.profile.partials().collect();
        assert_eq!(profile[0], ProfilePartial { junction: 1, weekday: 1, hour: 0, total: 10, samples: 1 });
        assert_eq!(profile.len(), 4);
        assert_eq!(Partials::from_parquet(partials.to_parquet().unwrap()).unwrap(), partials);
        let twice = Partials::merge(&[partials.clone(), partials.clone()]);
        assert_eq!(twice.daily[0].total, 60);
        assert_eq!(twice.daily[0].min, 10);
        // Junctions 1 and 2, daily and profile.
        assert_eq!(twice.records().count(), 4);
        assert_eq!(twice.daily[0], partials.daily[0].times(2));
    }

    #[test]
    fn a_partials_file_with_an_hour_outside_the_week_is_refused() {
        let mut columns = PartialsColumns::of(&Partials::default());
        columns.push(1, 7, 23, 10, 1, 0, 0); // weekday 0: no such day
        let bytes = columns.encode().unwrap();
        let error = Partials::from_parquet(bytes).unwrap_err();
        assert!(error.to_string().contains("profile key out of range"), "{error}");
    }

    #[test]
    fn a_loads_records_are_the_records_of_its_chunks_merged() {
        let hour = |day: i32, h: i64| {
            days_from_civil(2015, 11, 1) as i64 * MICROS_PER_DAY + day as i64 * MICROS_PER_DAY + h * MICROS_PER_HOUR
        };
        let rows = |cells: &[(i32, i64, i32)]| CountColumns {
            datetime: cells.iter().map(|c| hour(c.0, c.1)).collect(),
            junction: cells.iter().map(|c| c.2).collect(),
            vehicles: cells.iter().map(|c| c.0 * 10 + c.1 as i32 + c.2).collect(),
            id: (0..cells.len() as i64).collect(),
        };
        // Chunks in time order, a day cut between the first and second; then one out of order.
        let first = Partials::of(&rows(&[(0, 1, 1), (1, 2, 1), (0, 3, 2), (1, 5, 2)]));
        let second = Partials::of(&rows(&[(1, 9, 1), (2, 1, 1), (3, 1, 2)]));
        let earlier = Partials::of(&rows(&[(0, 7, 1), (5, 1, 3)]));
        for chunks in [vec![first.clone(), second.clone()], vec![first, second, earlier]] {
            let mut records = Partials::load_records(&chunks);
            let mut expected: Vec<Partial> = Partials::merge(&chunks).records().collect();
            records.sort();
            expected.sort();
            assert_eq!(records, expected);
        }
    }
}
