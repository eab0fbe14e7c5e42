//! End-to-end tests of the `stream` dataflow against a real Kafka broker (KRaft), checked row by
//! row against an independent consumer (kafka-python).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use base64::Engine;
use common::kafka::{broker, Kafka};
use common::{column, list, read_parquet, temp_dir};
use traffic::lake::Lake;

/// Starts `traffic run stream` in the background.
fn start_stream(kafka: &Kafka, topic: &str, output: &str, extra: &[&str]) -> Child {
    stream_command(kafka, topic, output, extra).spawn().unwrap()
}

fn stream_command(kafka: &Kafka, topic: &str, output: &str, extra: &[&str]) -> Command {
    let mut command = common::traffic();
    command
        .args(["run", "stream", "--brokers", &kafka.bootstrap, "--topic", topic, "--output", output, "--epoch", "1s"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// The latest checkpoint of a stream output, as JSON.
fn latest_checkpoint(output: &str) -> Option<serde_json::Value> {
    let lake = Lake::open(output).unwrap();
    let last = lake.list("_checkpoints").unwrap().into_iter().map(|e| e.path).filter(|p| p.ends_with(".json")).max()?;
    serde_json::from_slice(&lake.get(&last).unwrap()?).ok()
}

/// Waits until the latest checkpoint has read every partition up to its end offset.
fn wait_until_drained(kafka: &Kafka, topic: &str, output: &str, child: &mut Child) {
    let ends = kafka.end_offsets(topic);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the stream exited before draining the topic");
        if let Some(checkpoint) = latest_checkpoint(output) {
            let drained =
                ends.iter().enumerate().all(|(p, end)| checkpoint["offsets"][p.to_string()].as_i64() == Some(*end));
            if drained {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the stream did not drain {topic} in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops a stream with SIGTERM and checks it exits 0 after its final checkpoint.
fn stop_cleanly(child: Child) -> String {
    // SAFETY: kill takes plain integers; `child` is owned here and not yet reaped, so its pid
    // still names it.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the stream did not stop cleanly: {}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits for a stream run `--until-caught-up` to exit by itself, successfully.
fn exit_when_caught_up(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the stream did not exit once caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the caught-up stream failed: {}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Kills a stream with SIGKILL (the launcher's children die with it).
fn kill_hard(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

struct Reading {
    sensor: String,
    timestamp: i64,
    speed: f64,
    density: f64,
    date: String,
}

fn readings(output: &str) -> Vec<((i32, i64), Reading)> {
    let lake = Lake::open(output).unwrap();
    let mut rows = Vec::new();
    for path in list(output, "readings") {
        let date = path.split("date=").nth(1).unwrap()[..10].to_string();
        let bytes = lake.get(&path).unwrap().unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
        for batch in reader {
            let b = batch.unwrap();
            let (s, t, v, d, p, o) = (
                column::<StringArray>(&b, "sensor_id"),
                column::<TimestampMicrosecondArray>(&b, "timestamp"),
                column::<Float64Array>(&b, "average_speed"),
                column::<Float64Array>(&b, "traffic_density"),
                column::<Int32Array>(&b, "kafka_partition"),
                column::<Int64Array>(&b, "kafka_offset"),
            );
            for i in 0..b.num_rows() {
                let reading = Reading {
                    sensor: s.value(i).into(),
                    timestamp: t.value(i),
                    speed: v.value(i),
                    density: d.value(i),
                    date: date.clone(),
                };
                rows.push(((p.value(i), o.value(i)), reading));
            }
        }
    }
    rows
}

fn quarantined(output: &str) -> Vec<((i32, i64), Vec<u8>)> {
    let mut rows = Vec::new();
    for b in read_parquet(output, "quarantine") {
        let (p, o, payload, encoding) = (
            column::<Int32Array>(&b, "kafka_partition"),
            column::<Int64Array>(&b, "kafka_offset"),
            column::<StringArray>(&b, "payload"),
            column::<StringArray>(&b, "payload_encoding"),
        );
        for i in 0..b.num_rows() {
            let bytes = match encoding.value(i) {
                "base64" => base64::engine::general_purpose::STANDARD.decode(payload.value(i)).unwrap(),
                _ => payload.value(i).as_bytes().to_vec(),
            };
            rows.push(((p.value(i), o.value(i)), bytes));
        }
    }
    rows
}

fn parse_time(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
}

#[test]
fn every_record_lands_exactly_once_through_kills_and_rescaling() {
    let kafka = broker();
    let topic = "exactly-once";
    kafka.create_topic(topic, 4);
    // Messages from an independent client, some of them bad.
    let independent: Vec<(&str, Vec<u8>)> = vec![
        ("P1", br#"{"sensor_id":"P1","timestamp":"2026-03-01T10:00:00+01:00","average_speed":42.5,"traffic_density":12}"#.to_vec()),
        ("P2", b"not json at all".to_vec()),
        ("P3", b"{\"sensor_id\":\"P\xc3\x28\",\"timestamp\":\"2026-03-01T10:00:00Z\",\"average_speed\":1,\"traffic_density\":1}".to_vec()),
        ("P4", br#"{"sensor_id":"P4","timestamp":"2026-03-01T10:00:00Z","average_speed":400,"traffic_density":1}"#.to_vec()),
    ];
    kafka.send(topic, &independent, None);

    // The simulator keeps producing while the stream is killed and restarted.
    let producer = kafka.produce_in_background(
        topic,
        &["--rate", "20000", "--count", "220000", "--bad-fraction", "0.01", "--seed", "11"],
    );

    let out = temp_dir("exactly-once");
    let output = out.to_str().unwrap();
    let seed = std::process::id() as u64;
    let shapes: [&[&str]; 3] = [&["-n", "2", "-w", "1"], &["-n", "1", "-w", "2"], &["-n", "2", "-w", "1"]];
    for (round, shape) in shapes.iter().enumerate() {
        let child = start_stream(kafka, topic, output, shape);
        // A random moment after the run has committed at least one epoch of its own.
        let before = latest_checkpoint(output).map(|c| c["epoch"].as_u64().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while latest_checkpoint(output).map(|c| c["epoch"].as_u64().unwrap()) == before {
            assert!(Instant::now() < deadline, "round {round}: no checkpoint");
            std::thread::sleep(Duration::from_millis(50));
        }
        let delay = 300 + (seed.wrapping_mul(2654435761).wrapping_add(round as u64 * 7919) % 2500);
        std::thread::sleep(Duration::from_millis(delay));
        kill_hard(child);
        eprintln!("round {round}: killed {delay} ms after a checkpoint");
    }
    let sent = producer.join().unwrap();
    let bad_sent: u64 = sent.split('(').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();

    // The last run catches up and exits by itself: two processes, each leaving when its
    // partitions reach the ends they had when the run started.
    let last = start_stream(kafka, topic, output, &["-n", "2", "-w", "1", "--until-caught-up"]);
    let summary = exit_when_caught_up(last);
    assert!(summary.contains("stream finished"), "{summary}");

    let messages: HashMap<(i32, i64), Vec<u8>> =
        kafka.read_all(topic).into_iter().map(|(p, o, v)| ((p, o), v)).collect();
    assert_eq!(messages.len(), 220_004);
    let good = readings(output);
    let bad = quarantined(output);
    let mut seen = HashSet::new();
    for (key, _) in &good {
        assert!(seen.insert(*key), "{key:?} written twice");
    }
    for (key, _) in &bad {
        assert!(seen.insert(*key), "{key:?} quarantined twice or both written and quarantined");
    }
    assert_eq!(seen.len(), messages.len(), "records lost");
    assert_eq!(bad.len() as u64, bad_sent + 3, "quarantined records");

    // Row by row against what the independent consumer read.
    for (key, row) in &good {
        let payload: serde_json::Value = serde_json::from_slice(&messages[key]).unwrap();
        assert_eq!(row.sensor, payload["sensor_id"].as_str().unwrap(), "{key:?}");
        assert_eq!(row.speed, payload["average_speed"].as_f64().unwrap(), "{key:?}");
        assert_eq!(row.density, payload["traffic_density"].as_f64().unwrap(), "{key:?}");
        let time = payload["timestamp"].as_str().unwrap();
        let expected =
            if time.ends_with('Z') || time.contains('+') { parse_time(time) } else { parse_time(&format!("{time}Z")) };
        assert_eq!(row.timestamp, expected, "{key:?}");
        let date = chrono::DateTime::from_timestamp_micros(row.timestamp).unwrap().format("%Y-%m-%d").to_string();
        assert_eq!(row.date, date, "{key:?} is in the wrong date partition");
    }
    for (key, payload) in &bad {
        assert_eq!(payload, &messages[key], "quarantined payload of {key:?}");
    }
    assert!(list(output, "_staging").is_empty(), "staged files left behind");
    let checkpoint = latest_checkpoint(output).unwrap();
    assert_eq!(checkpoint["totals"]["read"].as_u64(), Some(220_004));
}

/// Regression: a partition whose last record is a transaction marker (never delivered to a
/// consumer) made `--until-caught-up` wait forever, its next offset one short of the end.
#[test]
fn a_run_until_caught_up_passes_transaction_markers() {
    // Both partition readers: the Fetch reader filters aborted records itself.
    for reader in ["fetch", "librdkafka"] {
        transaction_markers_are_passed_by(reader);
    }
}

fn transaction_markers_are_passed_by(reader: &str) {
    let kafka = broker();
    let topic = &format!("transactional-{reader}");
    kafka.create_topic(topic, 2);
    // A committed transaction of three readings, then an aborted one of two: each partition ends
    // in a commit or abort marker, and the aborted readings must not be read.
    let messages: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"sensor_id":"T{i}","timestamp":"2026-03-01T10:00:0{i}Z","average_speed":50,"traffic_density":10}}"#
            )
        })
        .collect();
    kafka.python_ok(&format!(
        "p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id='traffic-test-{reader}')
p.init_transactions()
for commit, batch in [(True, {committed:?}), (False, {aborted:?})]:
    p.begin_transaction()
    for i, m in enumerate(batch):
        p.send('{topic}', value=m.encode(), partition=i % 2)
    p.flush()
    p.commit_transaction() if commit else p.abort_transaction()
p.close()",
        committed = &messages[..3],
        aborted = &messages[3..],
    ));
    let out = temp_dir(topic);
    let output = out.to_str().unwrap();
    let mut command = stream_command(kafka, topic, output, &["-w", "2", "--until-caught-up"]);
    let summary = exit_when_caught_up(command.env("TRAFFIC_KAFKA_READER", reader).spawn().unwrap());
    assert!(summary.contains("read 3 = written 3 + quarantined 0"), "{reader}: {summary}");
    let mut sensors: Vec<String> = readings(output).into_iter().map(|(_, r)| r.sensor).collect();
    sensors.sort();
    assert_eq!(sensors, ["T0", "T1", "T2"], "{reader}");
    let checkpoint = latest_checkpoint(output).unwrap();
    for (partition, end) in kafka.end_offsets(topic).into_iter().enumerate() {
        assert_eq!(checkpoint["offsets"][partition.to_string()].as_i64(), Some(end), "{reader}: partition {partition}");
    }
}

const BASE: i64 = 1_767_254_400_000_000; // 2026-01-01T08:00:00Z
const MINUTE: i64 = 60_000_000;

fn reading(sensor: &str, at: i64, speed: f64, density: f64) -> (&str, Vec<u8>) {
    let time = chrono::DateTime::from_timestamp_micros(at).unwrap().to_rfc3339();
    (
        sensor,
        format!(
            r#"{{"sensor_id":"{sensor}","timestamp":"{time}","average_speed":{speed},"traffic_density":{density}}}"#
        )
        .into_bytes(),
    )
}

/// A window: sensor and start.
type Window = (String, i64);

/// A window version: count, mean speed and epoch.
type Version = (i64, f64, i64);

/// Latest version of each window, and how many versions each has.
fn latest_windows(output: &str) -> (BTreeMap<Window, Version>, HashMap<Window, usize>) {
    let mut latest: BTreeMap<Window, Version> = BTreeMap::new();
    let mut versions: HashMap<Window, usize> = HashMap::new();
    for b in read_parquet(output, "windows") {
        let (s, start, count, speed, epoch) = (
            column::<StringArray>(&b, "sensor_id"),
            column::<TimestampMicrosecondArray>(&b, "window_start"),
            column::<Int64Array>(&b, "count"),
            column::<Float64Array>(&b, "mean_speed"),
            column::<Int64Array>(&b, "epoch"),
        );
        for i in 0..b.num_rows() {
            let key = (s.value(i).to_string(), start.value(i));
            *versions.entry(key.clone()).or_default() += 1;
            let row = (count.value(i), speed.value(i), epoch.value(i));
            if latest.get(&key).is_none_or(|old| old.2 <= row.2) {
                latest.insert(key, row);
            }
        }
    }
    (latest, versions)
}

#[test]
fn windows_take_late_records_detect_congestion_and_survive_a_restart() {
    let kafka = broker();
    let (topic, alerts) = ("windows", "congestion-alerts");
    kafka.create_topic(topic, 1);
    kafka.create_topic(alerts, 1);
    // Sensor C1 every 10 s for ten minutes; congested during minutes 3, 4 and 5.
    let mut messages = Vec::new();
    for i in 0..60 {
        let at = BASE + i * 10_000_000;
        let jammed = (3..6).contains(&(i / 6));
        messages.push(if jammed { reading("C1", at, 12.0, 85.0) } else { reading("C1", at, 60.0, 20.0) });
    }
    kafka.send(topic, &messages, None);
    let out = temp_dir("windows");
    let output = out.to_str().unwrap();
    let args = ["--window", "1m", "--allowed-lateness", "3m", "--alerts-topic", alerts];
    let mut child = start_stream(kafka, topic, output, &args);
    wait_until_drained(kafka, topic, output, &mut child);
    stop_cleanly(child);

    // Congestion: one episode from 08:03 to 08:06.
    let mut episodes = Vec::new();
    for b in read_parquet(output, "congestion") {
        let (s, status, start, end, windows, speed) = (
            column::<StringArray>(&b, "sensor_id"),
            column::<StringArray>(&b, "status"),
            column::<TimestampMicrosecondArray>(&b, "episode_start"),
            column::<TimestampMicrosecondArray>(&b, "episode_end"),
            column::<Int64Array>(&b, "windows"),
            column::<Float64Array>(&b, "min_mean_speed"),
        );
        for i in 0..b.num_rows() {
            let end = (!end.is_null(i)).then(|| end.value(i));
            episodes.push((
                s.value(i).to_string(),
                status.value(i).to_string(),
                start.value(i),
                end,
                windows.value(i),
                speed.value(i),
            ));
        }
    }
    episodes.sort_by_key(|e| e.1.clone());
    assert_eq!(
        episodes,
        vec![
            ("C1".to_string(), "closed".to_string(), BASE + 3 * MINUTE, Some(BASE + 6 * MINUTE), 3, 12.0),
            ("C1".to_string(), "open".to_string(), BASE + 3 * MINUTE, None, 1, 12.0),
        ]
    );
    let (windows, _) = latest_windows(output);
    assert_eq!(windows.len(), 10);
    assert_eq!(windows[&("C1".to_string(), BASE + 7 * MINUTE)].0, 6);

    // After a restart (state from the checkpoint): one record late but within the allowed
    // lateness updates its window; one beyond it is counted, kept in readings, left out of windows.
    kafka.send(
        topic,
        &[reading("C1", BASE + 7 * MINUTE + 30_000_000, 30.0, 40.0), reading("C1", BASE + 2 * MINUTE, 30.0, 40.0)],
        None,
    );
    let mut child = start_stream(kafka, topic, output, &args);
    wait_until_drained(kafka, topic, output, &mut child);
    stop_cleanly(child);
    let (windows, versions) = latest_windows(output);
    let updated = windows[&("C1".to_string(), BASE + 7 * MINUTE)];
    assert_eq!(updated.0, 7, "the late record did not update its window");
    assert!((updated.1 - (6.0 * 60.0 + 30.0) / 7.0).abs() < 1e-9);
    assert!(versions[&("C1".to_string(), BASE + 7 * MINUTE)] >= 2, "the update is a new row, not a rewrite");
    assert_eq!(windows[&("C1".to_string(), BASE + 2 * MINUTE)].0, 6, "a record beyond the lateness changed its window");
    let checkpoint = latest_checkpoint(output).unwrap();
    assert_eq!(checkpoint["totals"]["late"].as_u64(), Some(1));
    assert_eq!(readings(output).len(), 62, "late records are still written to readings/");

    // Alerts went to Kafka once each: the episode was not re-detected after the restart.
    let alerts_read: Vec<serde_json::Value> =
        kafka.read_all(alerts).iter().map(|(_, _, v)| serde_json::from_slice(v).unwrap()).collect();
    let statuses: Vec<&str> = alerts_read.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["open", "closed"]);
    assert_eq!(alerts_read[1]["episode_end"].as_str().map(parse_time), Some(BASE + 6 * MINUTE));
}
