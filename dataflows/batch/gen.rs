//! `traffic gen counts`: synthetic hourly junction counts in the seed's CSV schema, for samples and benchmarks.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::random::SplitMix64;
use traffic::calendar::{civil_from_days, days_from_civil, iso_weekday};

/// Options of `traffic gen counts`.
#[derive(Args, Clone, Debug)]
pub struct GenCountsArgs {
    /// Number of rows to write.
    #[arg(long)]
    pub rows: u64,
    /// Number of junctions (1, 2, ...), one row each per hour.
    #[arg(long, default_value_t = 4)]
    pub junctions: u32,
    /// Output CSV file ('-' for standard output).
    #[arg(long)]
    pub output: PathBuf,
    /// First day, YYYY-MM-DD.
    #[arg(long, default_value = "2015-11-01")]
    pub start: String,
    /// Random seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Row order: `time` (hour by hour, as most exports are) or `junction` (junction by junction,
    /// as the public Kaggle export is). Both orders hold the same rows.
    #[arg(long, value_enum, default_value_t = RowOrder::Time)]
    pub order: RowOrder,
}

/// The order of a generated file's rows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOrder {
    /// Hour by hour, each hour's junctions in turn.
    Time,
    /// Junction by junction, each junction's hours in turn.
    Junction,
}

/// Hourly traffic shape: night trough, morning and evening peaks.
pub fn hourly_shape(hour: u32) -> f64 {
    const SHAPE: [f64; 24] = [
        0.35, 0.25, 0.2, 0.18, 0.2, 0.35, 0.7, 1.2, 1.5, 1.2, 1.0, 1.0, 1.05, 1.0, 1.0, 1.1, 1.35, 1.6, 1.5, 1.1, 0.9,
        0.75, 0.6, 0.45,
    ];
    SHAPE[hour as usize % 24]
}

/// Writes the file described by `args`.
pub fn gen_counts(args: &GenCountsArgs) -> Result<()> {
    let (year, month, day) = parse_day(&args.start)?;
    let first_day = days_from_civil(year, month, day);
    let junctions = args.junctions.max(1) as u64;
    let width = 10u64.pow(junctions.to_string().len() as u32);
    let sink: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?,
        )
    };
    let mut writer = ::csv::WriterBuilder::new().buffer_capacity(1 << 20).from_writer(sink);
    writer.write_record(["DateTime", "Junction", "Vehicles", "ID"])?;
    let scales: Vec<f64> = (0..junctions).map(|j| 45.0 / (1.0 + j as f64 * 0.8)).collect();
    // Row `hour * junctions + junction` exists if it is below `rows`: the last hour may be partial.
    let hours = args.rows.div_ceil(junctions);
    let keys: Box<dyn Iterator<Item = (u64, u64)>> = match args.order {
        RowOrder::Time => Box::new((0..hours).flat_map(|h| (0..junctions).map(move |j| (h, j)))),
        RowOrder::Junction => Box::new((0..junctions).flat_map(|j| (0..hours).map(move |h| (h, j)))),
    };
    let (mut junction_text, mut vehicles_text, mut id_text) = (String::new(), String::new(), String::new());
    let mut datetime = String::new();
    let mut hour_shown = None;
    for (hour_index, j) in keys.filter(|&(h, j)| h * junctions + j < args.rows) {
        let days = first_day + (hour_index / 24) as i32;
        let hour = (hour_index % 24) as u32;
        let (y, m, d) = civil_from_days(days);
        if hour_shown != Some(hour_index) {
            use std::fmt::Write as _;
            datetime.clear();
            let _ = write!(datetime, "{y:04}-{m:02}-{d:02} {hour:02}:00:00");
            hour_shown = Some(hour_index);
        }
        let weekend = if iso_weekday(days) >= 6 { 0.7 } else { 1.0 };
        let growth = 1.0 + (days - first_day) as f64 / 365.0 * 0.3;
        // Each row's noise depends on the seed and the row alone, so both orders hold the same rows.
        let row = hour_index * junctions + j;
        let noise = 0.8 + 0.4 * SplitMix64::new(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ row).next_f64();
        let vehicles = (scales[j as usize] * hourly_shape(hour) * weekend * growth * noise).round() as u64;
        let id = ((((y as u64 * 100 + m as u64) * 100 + d as u64) * 100 + hour as u64) * width) + j + 1;
        set_number(&mut junction_text, j + 1);
        set_number(&mut vehicles_text, vehicles);
        set_number(&mut id_text, id);
        writer.write_record([datetime.as_str(), &junction_text, &vehicles_text, &id_text])?;
    }
    writer.flush()?;
    Ok(())
}

fn set_number(text: &mut String, value: u64) {
    use std::fmt::Write as _;
    text.clear();
    let _ = write!(text, "{value}");
}

fn parse_day(text: &str) -> Result<(i32, u32, u32)> {
    let parts: Vec<&str> = text.split('-').collect();
    let bad = || anyhow::anyhow!("--start must be YYYY-MM-DD, got '{text}'");
    if parts.len() != 3 {
        return Err(bad());
    }
    Ok((
        parts[0].parse().map_err(|_| bad())?,
        parts[1].parse().map_err(|_| bad())?,
        parts[2].parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(rows: u64, junctions: u32, start: &str, seed: u64, order: RowOrder) -> GenCountsArgs {
        GenCountsArgs { rows, junctions, output: PathBuf::new(), start: start.into(), seed, order }
    }

    /// The text `args` generate, written to a temporary file (which replaces `args.output`).
    fn generated(mut args: GenCountsArgs) -> String {
        let name = format!("traffic-gen-{:?}-{}-{}.csv", args.order, args.seed, std::process::id());
        args.output = std::env::temp_dir().join(name);
        gen_counts(&args).unwrap();
        let text = std::fs::read_to_string(&args.output).unwrap();
        std::fs::remove_file(&args.output).unwrap();
        text
    }

    #[test]
    fn generates_the_seed_schema() {
        let text = generated(args(9, 4, "2015-11-01", 7, RowOrder::Time));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[0], "DateTime,Junction,Vehicles,ID");
        assert!(lines[1].starts_with("2015-11-01 00:00:00,1,"));
        assert!(lines[1].ends_with(",20151101001"));
        assert!(lines[9].starts_with("2015-11-01 02:00:00,1,"));
        assert_eq!(generated(args(9, 4, "2015-11-01", 7, RowOrder::Time)), text);
    }

    #[test]
    fn both_orders_hold_the_same_rows() {
        let rows = |order: RowOrder| {
            let text = generated(args(1003, 5, "2016-02-27", 3, order));
            text.lines().skip(1).map(str::to_string).collect::<Vec<_>>()
        };
        let (by_time, by_junction) = (rows(RowOrder::Time), rows(RowOrder::Junction));
        assert_eq!(by_time.len(), 1003);
        // Junction by junction, each junction's hours in turn: the date-times' text sorts as they do.
        let key = |line: &String| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[1].parse::<u32>().unwrap(), fields[0].to_string())
        };
        assert!(by_junction.windows(2).all(|w| key(&w[0]) < key(&w[1])));
        assert_eq!(by_junction.first().unwrap(), by_time.first().unwrap());
        let mut sorted = by_time.clone();
        sorted.sort_by_key(key);
        assert_eq!(sorted, by_junction);
        assert!(by_time.windows(2).all(|w| w[0][..19] <= w[1][..19]));
    }
}
