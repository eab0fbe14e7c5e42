//! Straightforward reference computations over CSV text, to check the dataflows against.

use std::collections::BTreeMap;

use arrow::array::{Date32Array, Float64Array, Int32Array, Int64Array, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDateTime, Timelike};

use super::column;

/// One count row: datetime (µs), junction, vehicles, id.
pub type Row = (i64, i32, i32, i64);

/// Parses a clean count CSV (header first) with chrono, independently of the parser under test.
pub fn csv_rows(text: &str) -> Vec<Row> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let t = NaiveDateTime::parse_from_str(f[0], "%Y-%m-%d %H:%M:%S").unwrap();
            (t.and_utc().timestamp_micros(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect()
}

/// The rows of the shipped sample CSVs in `data/`, sorted.
pub fn shipped_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(super::data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            rows.extend(csv_rows(&std::fs::read_to_string(path).unwrap()));
        }
    }
    rows.sort_unstable();
    rows
}

/// The rows of count batches, sorted.
pub fn count_rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut rows = Vec::new();
    for b in batches {
        let (t, j, v, id) = (
            column::<TimestampMicrosecondArray>(b, "datetime"),
            column::<Int32Array>(b, "junction"),
            column::<Int32Array>(b, "vehicles"),
            column::<Int64Array>(b, "id"),
        );
        for i in 0..b.num_rows() {
            rows.push((t.value(i), j.value(i), v.value(i), id.value(i)));
        }
    }
    rows.sort_unstable();
    rows
}

/// `(junction, date) -> (total, min, max, mean, hours)`.
pub type Daily = BTreeMap<(i32, i32), (i64, i32, i32, f64, i64)>;
/// `(junction, weekday, hour) -> (mean, samples)`.
pub type Profile = BTreeMap<(i32, i32, i32), (f64, i64)>;

/// The daily view computed directly from rows.
pub fn daily_of(rows: &[Row]) -> Daily {
    let mut acc: BTreeMap<(i32, i32), Vec<i32>> = BTreeMap::new();
    for &(t, j, v, _) in rows {
        let day = chrono::DateTime::from_timestamp_micros(t).unwrap().date_naive();
        let days = (day - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32;
        acc.entry((j, days)).or_default().push(v);
    }
    acc.into_iter()
        .map(|(k, vs)| {
            let total: i64 = vs.iter().map(|&v| v as i64).sum();
            let n = vs.len() as i64;
            (k, (total, *vs.iter().min().unwrap(), *vs.iter().max().unwrap(), total as f64 / n as f64, n))
        })
        .collect()
}

/// The profile view computed directly from rows.
pub fn profile_of(rows: &[Row]) -> Profile {
    let mut acc: BTreeMap<(i32, i32, i32), (i64, i64)> = BTreeMap::new();
    for &(t, j, v, _) in rows {
        let dt = chrono::DateTime::from_timestamp_micros(t).unwrap().naive_utc();
        let key = (j, dt.weekday().number_from_monday() as i32, dt.hour() as i32);
        let e = acc.entry(key).or_default();
        e.0 += v as i64;
        e.1 += 1;
    }
    acc.into_iter().map(|(k, (total, n))| (k, (total as f64 / n as f64, n))).collect()
}

/// The daily view as written by the batch dataflow.
pub fn daily_from(batches: &[RecordBatch]) -> Daily {
    let mut out = Daily::new();
    for b in batches {
        let (j, d, total, min, max, mean, hours) = (
            column::<Int32Array>(b, "junction"),
            column::<Date32Array>(b, "date"),
            column::<Int64Array>(b, "total"),
            column::<Int32Array>(b, "min"),
            column::<Int32Array>(b, "max"),
            column::<Float64Array>(b, "mean"),
            column::<Int64Array>(b, "hours"),
        );
        for i in 0..b.num_rows() {
            out.insert(
                (j.value(i), d.value(i)),
                (total.value(i), min.value(i), max.value(i), mean.value(i), hours.value(i)),
            );
        }
    }
    out
}

/// The profile view as written by the batch dataflow.
pub fn profile_from(batches: &[RecordBatch]) -> Profile {
    let mut out = Profile::new();
    for b in batches {
        let (j, w, h, mean, n) = (
            column::<Int32Array>(b, "junction"),
            column::<Int32Array>(b, "weekday"),
            column::<Int32Array>(b, "hour"),
            column::<Float64Array>(b, "mean"),
            column::<Int64Array>(b, "samples"),
        );
        for i in 0..b.num_rows() {
            out.insert((j.value(i), w.value(i), h.value(i)), (mean.value(i), n.value(i)));
        }
    }
    out
}

/// Asserts two views are equal, comparing means within floating-point rounding.
pub fn assert_views_equal(actual: (&Daily, &Profile), expected: (&Daily, &Profile)) {
    assert_eq!(actual.0.len(), expected.0.len(), "daily rows");
    for (key, a) in actual.0 {
        let e = expected.0.get(key).unwrap_or_else(|| panic!("unexpected daily row {key:?}"));
        assert_eq!((a.0, a.1, a.2, a.4), (e.0, e.1, e.2, e.4), "daily {key:?}");
        assert!((a.3 - e.3).abs() < 1e-9, "daily mean {key:?}");
    }
    assert_eq!(actual.1.len(), expected.1.len(), "profile rows");
    for (key, a) in actual.1 {
        let e = expected.1.get(key).unwrap_or_else(|| panic!("unexpected profile row {key:?}"));
        assert_eq!(a.1, e.1, "profile samples {key:?}");
        assert!((a.0 - e.0).abs() < 1e-9, "profile mean {key:?}");
    }
}
