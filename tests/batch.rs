//! End-to-end tests of the `batch` dataflow: the real binary, on local and S3 lakes, checked row by row.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::reference::{
    assert_views_equal, count_rows, csv_rows, daily_from, daily_of, profile_from, profile_of, shipped_rows, Row,
};
use common::{list, read_parquet, run, run_ok, summary_counts, temp_dir};

/// Everything a reader sees in a batch output: count rows and both views (each view one file,
/// with no key twice: the workers' parts of it do not overlap).
fn dataset(url: &str) -> (Vec<Row>, common::reference::Daily, common::reference::Profile) {
    let rows = |batches: &[arrow::record_batch::RecordBatch]| batches.iter().map(|b| b.num_rows()).sum::<usize>();
    assert_eq!(list(url, "junction_daily").len(), 1);
    assert_eq!(list(url, "junction_profile").len(), 1);
    let (daily, profile) = (read_parquet(url, "junction_daily"), read_parquet(url, "junction_profile"));
    let (daily_view, profile_view) = (daily_from(&daily), profile_from(&profile));
    assert_eq!((rows(&daily), rows(&profile)), (daily_view.len(), profile_view.len()), "a view row twice");
    (count_rows(&read_parquet(url, "counts")), daily_view, profile_view)
}

fn assert_no_leftovers(url: &str) {
    assert_eq!(list(url, "_staging"), Vec::<String>::new(), "staged files left behind");
    assert_eq!(list(url, "_manifests/chunks"), Vec::<String>::new(), "chunk records left behind");
    assert_eq!(list(url, "_manifests/claims"), Vec::<String>::new(), "chunk claims left behind");
}

/// Each count file sits in the partition of its rows' month and is sorted by junction, then time.
fn assert_files_by_month_sorted(url: &str) {
    for path in list(url, "counts") {
        let month = path.split("month=").nth(1).unwrap()[..7].to_string();
        let batches = read_parquet(url, &path);
        let file_rows: Vec<(i32, i64)> = batches
            .iter()
            .flat_map(|b| {
                let t = common::column::<arrow::array::TimestampMicrosecondArray>(b, "datetime").clone();
                let j = common::column::<arrow::array::Int32Array>(b, "junction").clone();
                (0..b.num_rows()).map(move |i| (j.value(i), t.value(i)))
            })
            .collect();
        assert!(file_rows.windows(2).all(|w| w[0] <= w[1]), "{path} is not sorted by junction, datetime");
        for (_, t) in &file_rows {
            let label = chrono::DateTime::from_timestamp_micros(*t).unwrap().format("%Y-%m").to_string();
            assert_eq!(label, month, "{path} holds a row of another month");
        }
    }
}

/// A run's summary and the dataset at `url` hold exactly the shipped sample's rows: every row
/// read and written, none quarantined, both views as computed from the CSV rows, each file in
/// its month and order, nothing left staged.
fn assert_shipped_rows_loaded(stdout: &str, url: &str) {
    let expected = shipped_rows();
    let (read, written, quarantined) = summary_counts(stdout);
    assert_eq!((read, written, quarantined), (expected.len() as u64, expected.len() as u64, 0));

    let (rows, daily, profile) = dataset(url);
    assert!(rows == expected, "Parquet rows differ from the CSV rows ({} vs {})", rows.len(), expected.len());
    assert_views_equal((&daily, &profile), (&daily_of(&expected), &profile_of(&expected)));

    assert_files_by_month_sorted(url);
    assert_no_leftovers(url);
}

#[test]
fn shipped_data_loads_row_for_row_with_two_workers() {
    let out = temp_dir("shipped");
    let url = out.to_str().unwrap();
    let data = common::data_dir();
    let stdout = run_ok(&["run", "batch", "--input", data.to_str().unwrap(), "--output", url, "-w", "2"], &[]);
    assert_shipped_rows_loaded(&stdout, url);
}

/// The public export with this schema is ordered by junction, then time, not by time: chunks
/// then cut through junctions' runs, and each month's file gathers its slice of every run.
#[test]
fn junction_ordered_input_loads_row_for_row() {
    let input = temp_dir("junction-ordered-input");
    let files: Vec<String> = ["traffic_1.csv", "traffic_2.csv"]
        .iter()
        .map(|name| std::fs::read_to_string(common::data_dir().join(name)).unwrap())
        .collect();
    let mut lines: Vec<&str> = files.iter().flat_map(|csv| csv.lines().skip(1)).collect();
    // By junction, then time: the date-times' text sorts as they do.
    lines.sort_by_key(|line| {
        let (datetime, rest) = line.split_once(',').unwrap();
        (rest.split(',').next().unwrap().parse::<i32>().unwrap(), datetime)
    });
    let sorted = format!("DateTime,Junction,Vehicles,ID\n{}\n", lines.join("\n"));
    std::fs::write(input.join("by_junction.csv"), sorted).unwrap();

    let out = temp_dir("junction-ordered");
    let url = out.to_str().unwrap();
    let args =
        ["run", "batch", "--input", input.to_str().unwrap(), "--output", url, "-w", "2", "--chunk-size", "64KiB"];
    assert_shipped_rows_loaded(&run_ok(&args, &[]), url);
}

#[test]
fn process_and_worker_counts_give_the_same_dataset() {
    let data = common::data_dir();
    let shapes: [&[&str]; 3] = [&["-n", "1", "-w", "1"], &["-n", "2", "-w", "1"], &["-n", "1", "-w", "2"]];
    let mut datasets = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let out = temp_dir(&format!("shapes-{i}"));
        let mut args = vec![
            "run",
            "batch",
            "--input",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--chunk-size",
            "64KiB",
        ];
        args.extend_from_slice(shape);
        run_ok(&args, &[]);
        assert_no_leftovers(out.to_str().unwrap());
        datasets.push(dataset(out.to_str().unwrap()));
    }
    assert_eq!(datasets[0].0, shipped_rows());
    for other in &datasets[1..] {
        assert_eq!(other.0, datasets[0].0);
        assert_views_equal((&other.1, &other.2), (&datasets[0].1, &datasets[0].2));
    }
}

const MESSY: &str = "\u{feff}DateTime,Junction,Vehicles,ID\r
2015-11-01 00:00:00,1,15,20151101001\r
2015-11-31 00:00:00,1,15,20151131001\r
2015-11-01 24:00:00,1,15,20151101241\r
2015-11-01 01:00:00,1,-3,20151101011\r
2015-11-01 01:00:00,1,3\r
2015-11-01 01:00:00,1,3,20151101011,extra\r
2015-11-01 01:00:00,two,3,20151101012\r
2015-11-01 01:00:00,2,3.5,20151101012\r
2015-11-01 1:00:00,2,4,20151101012\r
\"2015-11-01 02:00:00\",\"3\",\"5\",\"20151101023\"\r
2015-11-01T03:00:00,4,6,20151101034\r
not a date,1,1,1\r
2015-11-01 04:00:00,0,6,20151101040\r
\r
\r
";

#[test]
fn bad_rows_are_quarantined_once_with_their_reason() {
    let dir = temp_dir("messy");
    let input = dir.join("messy.csv");
    std::fs::write(&input, MESSY).unwrap();
    let out = dir.join("lake");
    let url = out.to_str().unwrap();
    let stdout = run_ok(
        &["run", "batch", "--input", input.to_str().unwrap(), "--output", url, "-w", "2", "--chunk-size", "4KiB"],
        &[],
    );
    assert_eq!(summary_counts(&stdout), (13, 4, 9));

    let rows = count_rows(&read_parquet(url, "counts"));
    let ids: Vec<i64> = rows.iter().map(|r| r.3).collect();
    assert_eq!(ids, vec![20151101001, 20151101012, 20151101023, 20151101034]);

    let quarantine = read_parquet(url, "quarantine");
    let mut found: Vec<(i64, String, String)> = Vec::new();
    for b in &quarantine {
        let line = common::column::<arrow::array::Int64Array>(b, "line");
        let raw = common::column::<arrow::array::StringArray>(b, "raw");
        let reason = common::column::<arrow::array::StringArray>(b, "reason");
        let source = common::column::<arrow::array::StringArray>(b, "source");
        for i in 0..b.num_rows() {
            assert!(source.value(i).ends_with("/messy.csv"));
            found.push((line.value(i), raw.value(i).to_string(), reason.value(i).to_string()));
        }
    }
    found.sort();
    let expected = [
        (3, "2015-11-31", "day out of range"),
        (4, "24:00:00", "hour out of range"),
        (5, "-3", "non-negative"),
        (6, "2015-11-01 01:00:00,1,3", "expected 4 fields, found 3"),
        (7, "extra", "expected 4 fields, found 5"),
        (8, "two", "junction is not an integer"),
        (9, "3.5", "vehicles is not an integer"),
        (13, "not a date", "invalid datetime"),
        (14, ",0,", "positive"),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((line, raw, reason), (e_line, e_raw, e_reason)) in found.iter().zip(expected) {
        assert_eq!(*line, e_line, "{raw}");
        assert!(raw.contains(e_raw), "line {line}: raw {raw:?}");
        assert!(reason.contains(e_reason), "line {line}: reason {reason:?}");
    }
}

#[test]
fn an_input_of_another_schema_or_missing_is_a_clear_error() {
    let dir = temp_dir("schema");
    let input = dir.join("stream.csv");
    std::fs::write(&input, "sensor_id,timestamp,average_speed,traffic_density\nS1,2024-01-01T00:00:00Z,50.0,10\n")
        .unwrap();
    let out = dir.join("lake");
    let output = run(&["run", "batch", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sensor_id,timestamp") && stderr.contains("expected DateTime,Junction,Vehicles,ID"),
        "{stderr}"
    );

    let missing = dir.join("missing.csv");
    let output = run(&["run", "batch", "--input", missing.to_str().unwrap(), "--output", out.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
    // With several processes, the launcher says so before it starts any.
    let output =
        run(&["run", "batch", "--input", missing.to_str().unwrap(), "--output", out.to_str().unwrap(), "-n", "2"], &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
    assert!(list(out.to_str().unwrap(), "counts").is_empty());
}

#[test]
fn reruns_skip_loaded_inputs_and_replace_changed_ones() {
    let dir = temp_dir("rerun");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    for name in ["traffic_1.csv", "traffic_2.csv"] {
        std::fs::copy(common::data_dir().join(name), inputs.join(name)).unwrap();
    }
    let out = dir.join("lake");
    let url = out.to_str().unwrap();
    let args = ["run", "batch", "--input", inputs.to_str().unwrap(), "--output", url, "-w", "2"];
    run_ok(&args, &[]);
    let first = dataset(url);

    let again = run_ok(&args, &[]);
    assert_eq!(summary_counts(&again), (0, 0, 0));
    assert!(again.contains("2 inputs skipped"), "{again}");
    assert_eq!(dataset(url).0, first.0);

    // Changing one input reloads it and replaces its earlier rows.
    let text = std::fs::read_to_string(inputs.join("traffic_1.csv")).unwrap();
    let shorter: String = text.lines().take(101).map(|l| format!("{l}\n")).collect();
    std::fs::write(inputs.join("traffic_1.csv"), &shorter).unwrap();
    let changed = run_ok(&args, &[]);
    assert_eq!(summary_counts(&changed), (100, 100, 0));
    let mut expected = csv_rows(&shorter);
    expected.extend(csv_rows(&std::fs::read_to_string(inputs.join("traffic_2.csv")).unwrap()));
    expected.sort_unstable();
    let (rows, daily, profile) = dataset(url);
    assert_eq!(rows, expected);
    assert_views_equal((&daily, &profile), (&daily_of(&expected), &profile_of(&expected)));

    // --full reloads everything without duplicating a row.
    let full = run_ok(&[&args[..], &["--full"]].concat(), &[]);
    assert_eq!(summary_counts(&full).0, expected.len() as u64);
    assert_eq!(dataset(url).0, expected);
    assert_no_leftovers(url);
}

#[test]
fn single_file_writes_one_file_per_input() {
    let out = temp_dir("single");
    let url = out.to_str().unwrap();
    run_ok(
        &["run", "batch", "--input", common::data_dir().to_str().unwrap(), "--output", url, "--single-file", "-w", "2"],
        &[],
    );
    let files: Vec<String> =
        list(url, "").into_iter().filter(|p| !p.starts_with('_') && !p.starts_with("junction_")).collect();
    assert_eq!(files, vec!["traffic_1.parquet", "traffic_2.parquet"]);
    let one = count_rows(&read_parquet(url, "traffic_1.parquet"));
    let mut expected = csv_rows(&std::fs::read_to_string(common::data_dir().join("traffic_1.csv")).unwrap());
    expected.sort_unstable();
    assert!(one == expected, "traffic_1.parquet holds {} rows, the CSV {}", one.len(), expected.len());
}

/// Writes `files` generated inputs of `rows` rows each under `dir`.
fn generate_inputs(dir: &std::path::Path, files: usize, rows: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        let path = dir.join(format!("big_{i}.csv"));
        let start = format!("{}-01-01", 2000 + i * 10);
        run_ok(
            &[
                "gen",
                "counts",
                "--rows",
                &rows.to_string(),
                "--junctions",
                "8",
                "--start",
                &start,
                "--seed",
                &i.to_string(),
                "--output",
                path.to_str().unwrap(),
            ],
            &[],
        );
    }
}

/// Starts a run, kills it with SIGKILL once some chunks are committed, and returns whether it
/// was killed (rather than finishing first).
fn kill_midway(args: &[&str], url: &str) -> bool {
    let mut child = common::traffic().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if list(url, "_manifests/chunks").len() >= 3 || Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_killed_run_resumes_to_the_dataset_of_an_uninterrupted_one() {
    let dir = temp_dir("resume");
    let inputs = dir.join("in");
    generate_inputs(&inputs, 3, 300_000);
    let reference = dir.join("reference");
    let input = inputs.to_str().unwrap();
    run_ok(
        &[
            "run",
            "batch",
            "--input",
            input,
            "--output",
            reference.to_str().unwrap(),
            "-w",
            "2",
            "--chunk-size",
            "256KiB",
        ],
        &[],
    );
    let expected = dataset(reference.to_str().unwrap());
    assert_eq!(expected.0.len(), 900_000);

    for (round, shape) in [["-n", "1", "-w", "2"], ["-n", "2", "-w", "1"]].iter().enumerate() {
        let out = dir.join(format!("killed-{round}"));
        let url = out.to_str().unwrap();
        let mut args = vec!["run", "batch", "--input", input, "--output", url, "--chunk-size", "256KiB"];
        args.extend_from_slice(shape);
        assert!(kill_midway(&args, url), "the run finished before it could be killed");
        let stdout = run_ok(&args, &[]);
        let (read, written, quarantined) = summary_counts(&stdout);
        assert_eq!(read, written + quarantined);
        let resumed = dataset(url);
        assert_eq!(resumed.0.len(), expected.0.len(), "row count after resume");
        assert!(resumed.0 == expected.0, "rows after resume differ");
        assert_views_equal((&resumed.1, &resumed.2), (&expected.1, &expected.2));
        assert_no_leftovers(url);
    }
}

#[test]
fn s3_input_and_output_give_the_same_dataset() {
    let s3 = common::s3::server();
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pid = std::process::id();
    let raw = format!("s3://traffic-raw/shipped-{pid}");
    let raw_lake = traffic::lake::Lake::open(&raw).unwrap();
    for name in ["traffic_1.csv", "traffic_2.csv"] {
        let bytes = std::fs::read(common::data_dir().join(name)).unwrap();
        raw_lake.put(&format!("2015/{name}"), bytes.into()).unwrap();
    }
    let expected = shipped_rows();
    for (i, shape) in [["-n", "1", "-w", "2"], ["-n", "2", "-w", "1"]].iter().enumerate() {
        let out = format!("s3://traffic-batch-data/shipped-{pid}-{i}");
        let mut args = vec!["run", "batch", "--input", &raw, "--output", &out, "--chunk-size", "64KiB"];
        args.extend_from_slice(shape);
        let stdout = run_ok(&args, &env);
        assert_eq!(summary_counts(&stdout), (expected.len() as u64, expected.len() as u64, 0));
        let (rows, daily, profile) = dataset(&out);
        assert!(rows == expected, "S3 dataset differs from the CSV rows ({} vs {})", rows.len(), expected.len());
        assert_views_equal((&daily, &profile), (&daily_of(&expected), &profile_of(&expected)));
        assert_no_leftovers(&out);
    }

    // The server checks signatures: a wrong secret is a clear error, not a crash or a hang.
    let mut bad_env = env.clone();
    bad_env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    bad_env.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret"));
    let out = format!("s3://traffic-batch-data/refused-{pid}");
    let output = run(&["run", "batch", "--input", &raw, "--output", &out], &bad_env);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SignatureDoesNotMatch") || stderr.contains("403"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "the secret leaked into the error output");
}
