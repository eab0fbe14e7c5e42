//! Partial aggregates of a chunk of counts: what the trend views are combined from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::week_profile::{empty_week, week_partials, week_slot, ProfilePartial, WeekProfiles, WeekSlots};
use crate::batch::count_csv::CountColumns;
use traffic::calendar::{day_of, iso_weekday, MICROS_PER_DAY, MICROS_PER_HOUR};

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

/// The partial aggregates of a set of rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partials {
    /// Per junction and day.
    pub daily: Vec<DailyPartial>,
    /// Per junction, weekday and hour.
    pub profile: WeekProfiles,
}

impl Partials {
    /// Computes the partials of `rows` in one pass (the tests' reference).
    #[cfg(test)]
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

/// A junction's profile record, unless its week has no rows.
fn profile_record(junction: i32, week: &[(i64, i64)]) -> Option<Partial> {
    let slots: Vec<ProfilePartial> = week_partials(junction, week).collect();
    (!slots.is_empty()).then_some(Partial::Profile(slots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use traffic::calendar::{days_from_civil, MICROS_PER_DAY, MICROS_PER_HOUR};

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
