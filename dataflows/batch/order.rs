//! The order of count rows in the lake: by month (one file each), then junction, then time.
//!
//! Exports come in one of two orders. Most are in time order: each month is then a contiguous
//! run, and a stable counting sort by junction finishes the job in linear time. Some are by
//! junction, then time (the public data set with the seed's schema is): every junction's run then
//! holds each month's rows contiguously, and a month's part is those slices copied one after
//! another. Other inputs fall back to a comparison sort.

use std::collections::BTreeMap;

use crate::batch::count_csv::CountColumns;
use traffic::calendar::{day_of, days_from_civil, month_index, MICROS_PER_DAY};
use traffic::prefault::vec_with_capacity;

/// Junction ranges up to this size are counting-sorted.
const COUNTING_SORT_RANGE: i64 = 1 << 20;

/// Splits rows by calendar month, each part sorted by junction then time. Parts are put in order
/// one at a time, as the caller takes them: a part dropped before the next is made lends it its
/// memory, so a chunk needs fresh pages for one month's part instead of all of them.
pub fn by_month(rows: &CountColumns) -> impl Iterator<Item = (i32, CountColumns)> + '_ {
    parts(rows, true).into_iter().map(|(month, part)| (month, part.take(rows)))
}

/// All rows sorted by junction then time.
pub fn sorted(rows: CountColumns) -> CountColumns {
    if by_junction_then_time(&rows) {
        return rows;
    }
    match parts(&rows, false).pop() {
        Some((_, part)) => part.take(&rows),
        None => rows,
    }
}

/// A month's rows (or all rows), in output order, as positions in the chunk's rows.
enum Part {
    /// Row indices, one by one.
    Indexed(Vec<u32>),
    /// Runs of consecutive rows `start..end`, one after another.
    Slices(Vec<(usize, usize)>),
}

impl Part {
    /// The part's rows, copied out of `rows`.
    fn take(self, rows: &CountColumns) -> CountColumns {
        match self {
            Part::Indexed(order) => gather(rows, &order),
            Part::Slices(slices) => concatenate(rows, &slices),
        }
    }
}

/// The rows' parts by month (or all in one part), months in ascending order.
fn parts(rows: &CountColumns, split_months: bool) -> Vec<(i32, Part)> {
    if rows.is_empty() {
        return Vec::new();
    }
    if rows.datetime.windows(2).all(|w| w[0] <= w[1]) {
        return time_ordered_parts(rows, split_months);
    }
    // Unsplit rows in this order are already sorted: `sorted` takes them as they are.
    if split_months && by_junction_then_time(rows) {
        return junction_ordered_parts(rows);
    }
    comparison_sort(rows, split_months)
}

/// Time-ordered rows: each month is one run, counting-sorted by junction.
fn time_ordered_parts(rows: &CountColumns, split_months: bool) -> Vec<(i32, Part)> {
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
        out.push((month, Part::Indexed(sort_run_by_junction(rows, start, end))));
        start = end;
    }
    out
}

/// Whether the rows are ordered by junction, then time: already the order within a month.
fn by_junction_then_time(rows: &CountColumns) -> bool {
    let keys = rows.junction.iter().zip(&rows.datetime);
    keys.clone().zip(keys.skip(1)).all(|(a, b)| a <= b)
}

/// Rows ordered by junction, then time: each junction's run is cut at month starts, and a month's
/// part is its slice of every run, in junction order.
fn junction_ordered_parts(rows: &CountColumns) -> Vec<(i32, Part)> {
    let mut months: BTreeMap<i32, Vec<(usize, usize)>> = BTreeMap::new();
    let mut start = 0;
    while start < rows.len() {
        let junction = rows.junction[start];
        let run_end = start + rows.junction[start..].partition_point(|&j| j == junction);
        while start < run_end {
            let month = month_index(day_of(rows.datetime[start]));
            let next = month_start(month + 1);
            let end = start + rows.datetime[start..run_end].partition_point(|&t| t < next);
            months.entry(month).or_default().push((start, end));
            start = end;
        }
    }
    months.into_iter().map(|(month, slices)| (month, Part::Slices(slices))).collect()
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

fn comparison_sort(rows: &CountColumns, split_months: bool) -> Vec<(i32, Part)> {
    let month = |t: i64| if split_months { month_index(day_of(t)) } else { 0 };
    let mut keyed: Vec<(i32, i32, i64, u32)> =
        (0..rows.len()).map(|i| (month(rows.datetime[i]), rows.junction[i], rows.datetime[i], i as u32)).collect();
    keyed.sort_unstable();
    keyed.chunk_by(|a, b| a.0 == b.0).map(|run| (run[0].0, Part::Indexed(run.iter().map(|k| k.3).collect()))).collect()
}

/// The rows of `slices`, one slice after another.
fn concatenate(rows: &CountColumns, slices: &[(usize, usize)]) -> CountColumns {
    fn copy<T: Copy>(column: &[T], slices: &[(usize, usize)], rows: usize) -> Vec<T> {
        let mut copied = vec_with_capacity(rows);
        for &(start, end) in slices {
            copied.extend_from_slice(&column[start..end]);
        }
        copied
    }
    let count = slices.iter().map(|(start, end)| end - start).sum();
    CountColumns {
        datetime: copy(&rows.datetime, slices, count),
        junction: copy(&rows.junction, slices, count),
        vehicles: copy(&rows.vehicles, slices, count),
        id: copy(&rows.id, slices, count),
    }
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
    use traffic::calendar::month_label;

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

    /// The same rows twice, over four months and 37 junctions (some missing some hours): in time
    /// order (junctions scrambled within each hour), and by junction, then time.
    fn the_same_rows_in_both_orders() -> (CountColumns, CountColumns) {
        let first = days_from_civil(2016, 1, 30) as i64 * MICROS_PER_DAY;
        let row = |hour: i64, j: i32| (first + hour * 3_600_000_000, j, hour * 1000 + j as i64);
        let present = |hour: i64, j: i32| (j as i64 + hour) % 7 != 0;
        let columns = |keys: Vec<(i64, i32, i64)>| CountColumns {
            datetime: keys.iter().map(|k| k.0).collect(),
            junction: keys.iter().map(|k| k.1).collect(),
            vehicles: keys.iter().map(|k| (k.2 % 97) as i32).collect(),
            id: keys.iter().map(|k| k.2).collect(),
        };
        let hours = 0..24 * 70i64;
        let by_time = hours.clone().flat_map(|h| (0..37).map(move |k| (h, (k * 17 + h as i32) % 37 + 5)));
        let by_junction = (5..42).flat_map(|j| hours.clone().map(move |h| (h, j)));
        let keep = |(h, j): (i64, i32)| present(h, j).then(|| row(h, j));
        (columns(by_time.filter_map(keep).collect()), columns(by_junction.filter_map(keep).collect()))
    }

    #[test]
    fn both_input_orders_give_what_the_comparison_sort_gives() {
        let (by_time, by_junction) = the_same_rows_in_both_orders();
        assert!(matches!(parts(&by_time, true)[0].1, Part::Indexed(_)));
        assert!(matches!(parts(&by_junction, true)[0].1, Part::Slices(_)));
        let expected: Vec<_> =
            comparison_sort(&by_time, true).into_iter().map(|(month, part)| (month, part.take(&by_time))).collect();
        assert_eq!(expected.len(), 4);
        assert_eq!(by_month(&by_time).collect::<Vec<_>>(), expected);
        assert_eq!(by_month(&by_junction).collect::<Vec<_>>(), expected);
        let all = comparison_sort(&by_time, false).pop().unwrap().1.take(&by_time);
        assert_eq!(sorted(by_time), all);
        assert_eq!(sorted(by_junction), all);
    }

    #[test]
    fn wide_junction_ranges_still_sort() {
        let parts: Vec<_> = by_month(&rows(vec![0, 0, 1], vec![i32::MAX, 1, 5])).collect();
        assert_eq!(parts[0].1.junction, vec![1, 5, i32::MAX]);
    }
}
