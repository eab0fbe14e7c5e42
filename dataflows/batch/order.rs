//! The order of count rows in the lake: by month (one file each), then junction, then time.
//!
//! Exports are almost always in time order; then each month is a contiguous run and a stable
//! counting sort by junction finishes the job in linear time. Other inputs fall back to a
//! comparison sort.

use crate::calendar::{day_of, days_from_civil, month_index, MICROS_PER_DAY};
use crate::csv::CountColumns;
use crate::prefault::vec_with_capacity;

/// Junction ranges up to this size are counting-sorted.
const COUNTING_SORT_RANGE: i64 = 1 << 20;

/// Splits rows by calendar month, each part sorted by junction then time. Parts are gathered
/// one at a time, as the caller takes them: a part dropped before the next is gathered lends it
/// its memory, so a chunk needs fresh pages for one month's part instead of all of them.
pub fn by_month(rows: &CountColumns) -> impl Iterator<Item = (i32, CountColumns)> + '_ {
    groups(rows, true).into_iter().map(|(month, order)| (month, gather(rows, &order)))
}

/// All rows sorted by junction then time.
pub fn sorted(rows: CountColumns) -> CountColumns {
    let order: Vec<u32> = groups(&rows, false).into_iter().flat_map(|(_, order)| order).collect();
    gather(&rows, &order)
}

/// Row indices grouped by month (or all in one group), each group in output order.
fn groups(rows: &CountColumns, split_months: bool) -> Vec<(i32, Vec<u32>)> {
    if rows.is_empty() {
        return Vec::new();
    }
    if !rows.datetime.windows(2).all(|w| w[0] <= w[1]) {
        return comparison_sort(rows, split_months);
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let month = month_index(day_of(rows.datetime[start]));
        let end = if split_months {
            let next = month_start(month + 1);
            start + rows.datetime[start..].partition_point(|&t| t < next)
        } else {
            rows.len()
        };
        out.push((month, sort_run_by_junction(rows, start, end)));
        start = end;
    }
    out
}

/// Microseconds at the start of month index `month` (`year * 12 + month - 1`).
fn month_start(month: i32) -> i64 {
    days_from_civil(month.div_euclid(12), (month.rem_euclid(12) + 1) as u32, 1) as i64 * MICROS_PER_DAY
}

/// Indices `start..end`, stably sorted by junction (they are already in time order).
fn sort_run_by_junction(rows: &CountColumns, start: usize, end: usize) -> Vec<u32> {
    let junctions = &rows.junction[start..end];
    let (min, max) = junctions.iter().fold((i32::MAX, i32::MIN), |(lo, hi), &j| (lo.min(j), hi.max(j)));
    let range = max as i64 - min as i64 + 1;
    if range > COUNTING_SORT_RANGE {
        let mut order: Vec<u32> = (start as u32..end as u32).collect();
        order.sort_by_key(|&i| rows.junction[i as usize]);
        return order;
    }
    let mut offsets = vec![0u32; range as usize + 1];
    for &j in junctions {
        offsets[(j - min) as usize + 1] += 1;
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut order = vec![0u32; junctions.len()];
    for (k, &j) in junctions.iter().enumerate() {
        let slot = &mut offsets[(j - min) as usize];
        order[*slot as usize] = (start + k) as u32;
        *slot += 1;
    }
    order
}

fn comparison_sort(rows: &CountColumns, split_months: bool) -> Vec<(i32, Vec<u32>)> {
    let month = |t: i64| if split_months { month_index(day_of(t)) } else { 0 };
    let mut keyed: Vec<(i32, i32, i64, u32)> =
        (0..rows.len()).map(|i| (month(rows.datetime[i]), rows.junction[i], rows.datetime[i], i as u32)).collect();
    keyed.sort_unstable();
    keyed.chunk_by(|a, b| a.0 == b.0).map(|run| (run[0].0, run.iter().map(|k| k.3).collect())).collect()
}

/// The rows named by `order`, in that order.
fn gather(rows: &CountColumns, order: &[u32]) -> CountColumns {
    fn pick<T: Copy>(column: &[T], order: &[u32]) -> Vec<T> {
        let mut picked = vec_with_capacity(order.len());
        picked.extend(order.iter().map(|&i| column[i as usize]));
        picked
    }
    CountColumns {
        datetime: pick(&rows.datetime, order),
        junction: pick(&rows.junction, order),
        vehicles: pick(&rows.vehicles, order),
        id: pick(&rows.id, order),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::month_label;

    fn rows(datetime: Vec<i64>, junction: Vec<i32>) -> CountColumns {
        let id = (0..datetime.len() as i64).collect();
        let vehicles = vec![0; datetime.len()];
        CountColumns { datetime, junction, vehicles, id }
    }

    #[test]
    fn time_ordered_input_is_split_by_month_and_sorted_by_junction() {
        let nov = days_from_civil(2015, 11, 30) as i64 * MICROS_PER_DAY;
        let dec = days_from_civil(2015, 12, 1) as i64 * MICROS_PER_DAY;
        let parts: Vec<_> = by_month(&rows(vec![nov, nov, nov + 1, dec, dec], vec![2, 1, 2, 3, 1])).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(month_label(parts[0].0), "2015-11");
        assert_eq!(parts[0].1.id, vec![1, 0, 2]);
        assert_eq!(parts[1].1.id, vec![4, 3]);
    }

    #[test]
    fn unordered_input_takes_the_comparison_sort() {
        let nov = days_from_civil(2015, 11, 30) as i64 * MICROS_PER_DAY;
        let dec = days_from_civil(2015, 12, 1) as i64 * MICROS_PER_DAY;
        let parts: Vec<_> = by_month(&rows(vec![dec, nov + 1, nov, dec], vec![2, 1, 1, 1])).collect();
        assert_eq!(parts[0].1.id, vec![2, 1]);
        assert_eq!(parts[1].1.id, vec![3, 0]);
        assert_eq!(sorted(rows(vec![dec, nov + 1, nov, dec], vec![2, 1, 1, 1])).id, vec![2, 1, 3, 0]);
    }

    #[test]
    fn wide_junction_ranges_still_sort() {
        let parts: Vec<_> = by_month(&rows(vec![0, 0, 1], vec![i32::MAX, 1, 5])).collect();
        assert_eq!(parts[0].1.junction, vec![1, 5, i32::MAX]);
    }
}
