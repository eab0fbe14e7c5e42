//! Partial aggregates of a chunk of counts: what the trend views are combined from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::{day_of, hour_of, iso_weekday};
use crate::csv::CountColumns;

/// One partial aggregate, as it enters the differential collection of the trend views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Partial {
    /// Vehicles of one junction on one day, over some of its hours.
    Daily(DailyPartial),
    /// Vehicles of one junction in one (weekday, hour) slot, over some of its samples.
    Profile(ProfilePartial),
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

/// The partial aggregates of a set of rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partials {
    /// Per junction and day.
    pub daily: Vec<DailyPartial>,
    /// Per junction, weekday and hour.
    pub profile: Vec<ProfilePartial>,
}

impl Partials {
    /// Computes the partials of `rows` in one pass.
    pub fn of(rows: &CountColumns) -> Partials {
        let mut daily: BTreeMap<(i32, i32), DailyPartial> = BTreeMap::new();
        let mut profile: BTreeMap<i32, [(i64, i64); 7 * 24]> = BTreeMap::new();
        let mut last: Option<(i32, i32)> = None;
        let mut current = DailyPartial { junction: 0, day: 0, total: 0, hours: 0, min: i32::MAX, max: i32::MIN };
        for i in 0..rows.len() {
            let (junction, micros, vehicles) = (rows.junction[i], rows.datetime[i], rows.vehicles[i]);
            let day = day_of(micros);
            // Rows usually come grouped by junction and day: fold runs before touching the map.
            if last != Some((junction, day)) {
                if let Some(key) = last {
                    merge_daily(&mut daily, key, current);
                }
                last = Some((junction, day));
                current = DailyPartial { junction, day, total: 0, hours: 0, min: i32::MAX, max: i32::MIN };
            }
            current.total += vehicles as i64;
            current.hours += 1;
            current.min = current.min.min(vehicles);
            current.max = current.max.max(vehicles);
            let slot = (iso_weekday(day) as usize - 1) * 24 + hour_of(micros) as usize;
            let cell = &mut profile.entry(junction).or_insert([(0, 0); 7 * 24])[slot];
            cell.0 += vehicles as i64;
            cell.1 += 1;
        }
        if let Some(key) = last {
            merge_daily(&mut daily, key, current);
        }
        let profile = profile
            .into_iter()
            .flat_map(|(junction, slots)| {
                slots.into_iter().enumerate().filter(|(_, (_, n))| *n > 0).map(move |(slot, (total, samples))| {
                    ProfilePartial { junction, weekday: (slot / 24 + 1) as u8, hour: (slot % 24) as u8, total, samples }
                })
            })
            .collect();
        Partials { daily: daily.into_values().collect(), profile }
    }

    /// Combines several sets of partials into one (same keys merged).
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Partials>) -> Partials {
        let mut daily: BTreeMap<(i32, i32), DailyPartial> = BTreeMap::new();
        let mut profile: BTreeMap<(i32, u8, u8), ProfilePartial> = BTreeMap::new();
        for part in parts {
            for d in &part.daily {
                merge_daily(&mut daily, (d.junction, d.day), *d);
            }
            for p in &part.profile {
                profile
                    .entry((p.junction, p.weekday, p.hour))
                    .and_modify(|q| {
                        q.total += p.total;
                        q.samples += p.samples;
                    })
                    .or_insert(*p);
            }
        }
        Partials { daily: daily.into_values().collect(), profile: profile.into_values().collect() }
    }

    /// Every partial, as collection records.
    pub fn records(&self) -> impl Iterator<Item = Partial> + '_ {
        self.daily.iter().copied().map(Partial::Daily).chain(self.profile.iter().copied().map(Partial::Profile))
    }
}

fn merge_daily(daily: &mut BTreeMap<(i32, i32), DailyPartial>, key: (i32, i32), part: DailyPartial) {
    daily
        .entry(key)
        .and_modify(|d| {
            d.total += part.total;
            d.hours += part.hours;
            d.min = d.min.min(part.min);
            d.max = d.max.max(part.max);
        })
        .or_insert(part);
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
        assert_eq!(partials.profile[0], ProfilePartial { junction: 1, weekday: 1, hour: 0, total: 10, samples: 1 });
        assert_eq!(partials.profile.len(), 4);
        let twice = Partials::merge([&partials, &partials]);
        assert_eq!(twice.daily[0].total, 60);
        assert_eq!(twice.daily[0].min, 10);
        assert_eq!(twice.records().count(), 7);
    }
}
