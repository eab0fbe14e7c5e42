//! The raw consume rate: read every message of a topic once, with the same reader, consumer
//! settings and parallelism as the `stream` dataflow, and do nothing with it: the stream
//! benchmark's ceiling.
//!
//! `cargo run --release --example raw_consume -- BROKERS TOPIC [THREADS]` (with the reader that
//! `TRAFFIC_KAFKA_READER` names: `fetch`, the default, or `librdkafka`) reads partition `p` on
//! thread `p % THREADS` (as the stream assigns partitions to workers) and prints one JSON line
//! with the message count, seconds and messages per second.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use traffic::kafka::{admin_consumer, partition_count, watermarks, PartitionReader};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "traffic-stream".into());
    let threads: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let admin = admin_consumer(&brokers, "raw-consume-bench")?;
    let marks = watermarks(&admin, &topic, partition_count(&admin, &topic)?)?;
    let barrier = Barrier::new(threads);
    let results = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..threads)
            .map(|thread| {
                let mine: BTreeMap<i32, (i64, i64)> =
                    marks.iter().filter(|(&p, _)| p as usize % threads == thread).map(|(&p, &m)| (p, m)).collect();
                let (brokers, topic, barrier) = (&brokers, &topic, &barrier);
                scope.spawn(move || read_all(brokers, topic, &mine, barrier))
            })
            .collect();
        readers.into_iter().map(|reader| reader.join().expect("reader thread")).collect::<Vec<_>>()
    });
    let (mut count, mut bytes, mut seconds) = (0, 0, 0f64);
    for result in results {
        let (c, b, s) = result?;
        (count, bytes, seconds) = (count + c, bytes + b, seconds.max(s));
    }
    println!(
        r#"{{"messages": {count}, "bytes": {bytes}, "threads": {threads}, "seconds": {seconds:.3}, "rate": {:.0}}}"#,
        count as f64 / seconds
    );
    Ok(())
}

/// Reads `partitions` from their low to their high watermark; returns messages, bytes and the
/// seconds from the moment every thread's reader was open.
fn read_all(
    brokers: &str,
    topic: &str,
    partitions: &BTreeMap<i32, (i64, i64)>,
    barrier: &Barrier,
) -> anyhow::Result<(i64, u64, f64)> {
    let total: i64 = partitions.values().map(|(low, high)| high - low).sum();
    let start = partitions.iter().map(|(&partition, &(low, _))| (partition, low)).collect();
    let reader = PartitionReader::open(brokers, topic, "raw-consume-bench", start);
    barrier.wait();
    let mut reader = reader?;
    let started = Instant::now();
    let (mut count, mut bytes) = (0i64, 0u64);
    while count < total {
        count += reader.poll(50_000, Duration::from_millis(100), |record| {
            bytes += record.payload.map_or(0, <[u8]>::len) as u64;
        })? as i64;
    }
    Ok((count, bytes, started.elapsed().as_secs_f64()))
}
