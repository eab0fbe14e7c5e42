//! A junction's weekly profile partials: the `(total, samples)` of each of the week's 168 hours.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// How many hours of all the weeks have rows.
    pub(super) fn hours_with_rows(&self) -> usize {
        self.cells.iter().filter(|(_, n)| *n > 0).count()
    }

    /// Each junction with its week's cells, in junction order.
    pub fn weeks(&self) -> impl Iterator<Item = (i32, &[(i64, i64)])> + '_ {
        self.junctions.iter().copied().zip(self.cells.chunks_exact(WEEK_HOURS))
    }

    /// The partials of the hours with rows, in `(junction, weekday, hour)` order.
    #[cfg(test)]
    pub fn partials(&self) -> impl Iterator<Item = ProfilePartial> + '_ {
        self.weeks().flat_map(|(junction, week)| week_partials(junction, week))
    }

    /// The profiles of the weeks in `weeks`, in junction order.
    pub(super) fn from_weeks(weeks: &BTreeMap<i32, Box<WeekSlots>>) -> WeekProfiles {
        let mut cells = Vec::with_capacity(weeks.len() * WEEK_HOURS);
        for week in weeks.values() {
            cells.extend_from_slice(&week[..]);
        }
        WeekProfiles { junctions: weeks.keys().copied().collect(), cells }
    }

    /// Adds each junction's cells to its week in `weeks`.
    pub(super) fn add_to(&self, weeks: &mut BTreeMap<i32, Box<WeekSlots>>) {
        for (junction, week) in self.weeks() {
            let sum = weeks.entry(junction).or_insert_with(empty_week);
            for (cell, add) in sum.iter_mut().zip(week) {
                cell.0 += add.0;
                cell.1 += add.1;
            }
        }
    }
}

/// `(total, samples)` for each of a week's 168 hours.
pub(super) type WeekSlots = [(i64, i64); WEEK_HOURS];

/// A week with no rows.
pub(super) fn empty_week() -> Box<WeekSlots> {
    Box::new([(0, 0); WEEK_HOURS])
}

/// The index in [`WeekSlots`] of ISO `weekday` (1 = Monday) and `hour`.
pub(super) fn week_slot(weekday: u8, hour: u8) -> usize {
    (weekday as usize - 1) * 24 + hour as usize
}

/// The partials of a junction's week slots that have rows, in (weekday, hour) order (the
/// inverse of [`week_slot`]).
pub(super) fn week_partials(junction: i32, week: &[(i64, i64)]) -> impl Iterator<Item = ProfilePartial> + '_ {
    week.iter().enumerate().filter(|(_, (_, n))| *n > 0).map(move |(slot, &(total, samples))| ProfilePartial {
        junction,
        weekday: (slot / 24 + 1) as u8,
        hour: (slot % 24) as u8,
        total,
        samples,
    })
}
