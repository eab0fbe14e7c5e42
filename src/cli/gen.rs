//! `traffic gen counts`: synthetic hourly junction counts in the seed's CSV schema, for samples and benchmarks.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::calendar::{civil_from_days, days_from_civil, iso_weekday};
use crate::simulator::SplitMix64;

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
    let junctions = args.junctions.max(1);
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
    let mut rng = SplitMix64::new(args.seed);
    let scales: Vec<f64> = (0..junctions).map(|j| 45.0 / (1.0 + j as f64 * 0.8)).collect();
    let (mut junction_text, mut vehicles_text, mut id_text) = (String::new(), String::new(), String::new());
    let mut written = 0;
    let mut hour_index: u64 = 0;
    'hours: loop {
        let days = first_day + (hour_index / 24) as i32;
        let hour = (hour_index % 24) as u32;
        let (y, m, d) = civil_from_days(days);
        // One string per hour, shared by its junctions' rows.
        let datetime = format!("{y:04}-{m:02}-{d:02} {hour:02}:00:00");
        let weekend = if iso_weekday(days) >= 6 { 0.7 } else { 1.0 };
        let growth = 1.0 + (days - first_day) as f64 / 365.0 * 0.3;
        for j in 0..junctions {
            if written == args.rows {
                break 'hours;
            }
            let noise = 0.8 + 0.4 * rng.next_f64();
            let vehicles = (scales[j as usize] * hourly_shape(hour) * weekend * growth * noise).round() as u64;
            let id = ((((y as u64 * 100 + m as u64) * 100 + d as u64) * 100 + hour as u64) * width) + j as u64 + 1;
            set_number(&mut junction_text, j as u64 + 1);
            set_number(&mut vehicles_text, vehicles);
            set_number(&mut id_text, id);
            writer.write_record([datetime.as_str(), &junction_text, &vehicles_text, &id_text])?;
            written += 1;
        }
        hour_index += 1;
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

    #[test]
    fn generates_the_seed_schema() {
        let path = std::env::temp_dir().join(format!("traffic-gen-{}.csv", std::process::id()));
        let args = GenCountsArgs { rows: 9, junctions: 4, output: path.clone(), start: "2015-11-01".into(), seed: 7 };
        gen_counts(&args).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[0], "DateTime,Junction,Vehicles,ID");
        assert!(lines[1].starts_with("2015-11-01 00:00:00,1,"));
        assert!(lines[1].ends_with(",20151101001"));
        assert!(lines[9].starts_with("2015-11-01 02:00:00,1,"));
        gen_counts(&args).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_file(path).unwrap();
    }
}
