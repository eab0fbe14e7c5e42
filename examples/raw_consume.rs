//! The raw consume rate: read every message of a topic once, with the same reader and consumer
//! settings as the `stream` dataflow, and do nothing with it: the stream benchmark's ceiling.
//!
//! `cargo run --release --example raw_consume -- BROKERS TOPIC` prints one JSON line with the
//! message count, seconds and messages per second.

use std::time::{Duration, Instant};

use traffic::kafka::{admin_consumer, partition_count, watermarks, PartitionReader};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "traffic-stream".into());
    let admin = admin_consumer(&brokers, "raw-consume-bench")?;
    let marks = watermarks(&admin, &topic, partition_count(&admin, &topic)?)?;
    let total: i64 = marks.values().map(|(low, high)| high - low).sum();
    let start = marks.iter().map(|(&partition, &(low, _))| (partition, low)).collect();
    let mut reader = PartitionReader::open(&brokers, &topic, "raw-consume-bench", start)?;
    let started = Instant::now();
    let (mut count, mut bytes) = (0i64, 0u64);
    while count < total {
        count += reader.poll(50_000, Duration::from_millis(100), |record| {
            bytes += record.payload.map_or(0, <[u8]>::len) as u64;
        })? as i64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        r#"{{"messages": {count}, "bytes": {bytes}, "seconds": {seconds:.3}, "rate": {:.0}}}"#,
        count as f64 / seconds
    );
    Ok(())
}
