//! The sensor-message parser alone: how many payloads per second one core turns into readings.
//!
//! `cargo run --release --example parse_rate -- [MESSAGES]` generates simulator payloads (1,000
//! sensors, 0.1 % bad) into one buffer, parses them all five times and prints the best rate.

use std::time::Instant;

use dataflows::stream::parse_reading;
use dataflows::stream::simulator::Simulator;
use traffic::datetime::DateCache;

fn main() {
    let messages: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
    let mut simulator = Simulator::new(1000, 1, 0.001);
    let (mut bytes, mut ends, mut payload) = (Vec::new(), Vec::with_capacity(messages), Vec::new());
    let start = 1_764_489_600_000_000i64;
    for i in 0..messages {
        simulator.next(start + i as i64 * 1000, &mut payload);
        bytes.extend_from_slice(&payload);
        ends.push(bytes.len());
    }
    let mut best = f64::MAX;
    let mut valid = 0;
    for _ in 0..5 {
        let (mut dates, mut from, mut checksum) = (DateCache::default(), 0, 0i64);
        valid = 0;
        let started = Instant::now();
        for &end in &ends {
            if let Ok(reading) = parse_reading(&bytes[from..end], &mut dates) {
                valid += 1;
                checksum = checksum.wrapping_add(reading.timestamp ^ reading.sensor_id.len() as i64);
            }
            from = end;
        }
        std::hint::black_box(checksum);
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        r#"{{"messages": {messages}, "valid": {valid}, "bytes": {}, "seconds": {best:.4}, "rate": {:.0}, "ns_per_message": {:.1}}}"#,
        bytes.len(),
        messages as f64 / best,
        best * 1e9 / messages as f64
    );
}
