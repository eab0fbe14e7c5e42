//! The sensor simulator behind `traffic produce`: realistic readings in the seed's JSON schema,
//! with rush hours, congestion episodes, and (on request) deliberately bad messages.

use std::io::Write;

use crate::random::SplitMix64;
use traffic::calendar::{civil_from_days, day_of, hour_of, MICROS_PER_DAY};

/// Kinds of deliberately bad messages.
pub const BAD_KINDS: [&str; 6] =
    ["truncated", "wrong type", "missing field", "out of range", "non-finite", "invalid UTF-8"];

struct Sensor {
    id: String,
    free_speed: f64,
    base_density: f64,
    /// Messages left in the current congestion episode.
    jam: u32,
}

/// Generates readings for sensors `S1`..`Sn`.
pub struct Simulator {
    sensors: Vec<Sensor>,
    rng: SplitMix64,
    bad_fraction: f64,
    next_sensor: usize,
}

/// One generated message.
pub struct Message<'a> {
    /// The sensor id, used as the Kafka key.
    pub key: &'a str,
    /// Whether it was made bad on purpose, and how.
    pub bad: Option<&'static str>,
}

impl Simulator {
    /// A simulator of `sensors` sensors; `bad_fraction` of messages are broken on purpose.
    pub fn new(sensors: usize, seed: u64, bad_fraction: f64) -> Simulator {
        let mut rng = SplitMix64::new(seed);
        let sensors = (1..=sensors.max(1))
            .map(|i| Sensor {
                id: format!("S{i}"),
                free_speed: 55.0 + 35.0 * rng.next_f64(),
                base_density: 10.0 + 15.0 * rng.next_f64(),
                jam: 0,
            })
            .collect();
        Simulator { sensors, rng, bad_fraction, next_sensor: 0 }
    }

    /// Writes the next message (sensors take turns) with event time `now` into `payload`.
    pub fn next(&mut self, now: i64, payload: &mut Vec<u8>) -> Message<'_> {
        payload.clear();
        let index = self.next_sensor;
        self.next_sensor = (self.next_sensor + 1) % self.sensors.len();
        let rush = rush_hour(hour_of(now));
        let (u1, u2, u3) = (self.rng.next_f64(), self.rng.next_f64(), self.rng.next_f64());
        let sensor = &mut self.sensors[index];
        // About one episode per sensor every 1,500 messages, lasting 60 to 300 of its messages.
        if sensor.jam == 0 && u1 < 1.0 / 1500.0 * (1.0 + 2.0 * rush) {
            sensor.jam = 60 + (u2 * 240.0) as u32;
        }
        let (speed, density) = if sensor.jam > 0 {
            sensor.jam -= 1;
            (10.0 + 8.0 * u2, 80.0 + 18.0 * u3)
        } else {
            let density = sensor.base_density + 45.0 * rush + 10.0 * (u2 - 0.5);
            let speed = sensor.free_speed * (1.0 - 0.45 * rush) + 8.0 * (u3 - 0.5);
            (speed.clamp(10.0, 100.0), density.clamp(0.0, 100.0))
        };
        let bad = (self.bad_fraction > 0.0 && self.rng.next_f64() < self.bad_fraction)
            .then(|| BAD_KINDS[(self.rng.next_u64() % BAD_KINDS.len() as u64) as usize]);
        let sensor = &self.sensors[index];
        write_message(payload, &sensor.id, now, speed, density, bad);
        Message { key: &sensor.id, bad }
    }
}

/// 0 at night, 1 at the 8:00 and 17:30 peaks.
fn rush_hour(hour: u32) -> f64 {
    match hour {
        7 | 9 => 0.6,
        8 => 1.0,
        16 | 19 => 0.5,
        17 | 18 => 1.0,
        10..=15 => 0.3,
        _ => 0.05,
    }
}

fn write_message(out: &mut Vec<u8>, id: &str, now: i64, speed: f64, density: f64, bad: Option<&str>) {
    let time = iso_timestamp(now);
    let _ = match bad {
        None => write!(
            out,
            r#"{{"sensor_id":"{id}","timestamp":"{time}","average_speed":{speed:.2},"traffic_density":{density:.2}}}"#
        ),
        Some("truncated") => {
            let _ = write!(
                out,
                r#"{{"sensor_id":"{id}","timestamp":"{time}","average_speed":{speed:.2},"traffic_density":{density:.2}}}"#
            );
            out.truncate(out.len() / 2);
            Ok(())
        }
        Some("wrong type") => write!(
            out,
            r#"{{"sensor_id":"{id}","timestamp":"{time}","average_speed":"fast","traffic_density":{density:.2}}}"#
        ),
        Some("missing field") => {
            write!(out, r#"{{"sensor_id":"{id}","timestamp":"{time}","average_speed":{speed:.2}}}"#)
        }
        Some("out of range") => write!(
            out,
            r#"{{"sensor_id":"{id}","timestamp":"{time}","average_speed":{speed:.2},"traffic_density":140.0}}"#
        ),
        Some("non-finite") => write!(
            out,
            r#"{{"sensor_id":"{id}","timestamp":"{time}","average_speed":NaN,"traffic_density":{density:.2}}}"#
        ),
        Some(_) => {
            out.extend_from_slice(b"{\"sensor_id\":\"S\xff\xfe\",");
            write!(out, r#""timestamp":"{time}","average_speed":{speed:.2},"traffic_density":{density:.2}}}"#)
        }
    };
}

/// `2026-11-30T08:15:00.123456Z`.
pub fn iso_timestamp(micros: i64) -> String {
    let (y, m, d) = civil_from_days(day_of(micros));
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let seconds = in_day / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        in_day % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::parse_reading;

    #[test]
    fn good_messages_parse_and_bad_ones_do_not() {
        let mut simulator = Simulator::new(5, 42, 0.2);
        let mut payload = Vec::new();
        let now = 1_764_489_600_000_000; // 2025-11-30T08:00:00Z
        let (mut good, mut bad) = (0, 0);
        for i in 0..5000 {
            let message = simulator.next(now + i * 1000, &mut payload);
            let bad_kind = message.bad;
            match (bad_kind, parse_reading(&payload, &mut traffic::datetime::DateCache::default())) {
                (None, Ok(r)) => {
                    assert!((10.0..=100.0).contains(&r.average_speed));
                    good += 1;
                }
                (Some(_), Err(_)) => bad += 1,
                (kind, result) => panic!("{kind:?} gave {result:?} for {}", String::from_utf8_lossy(&payload)),
            }
        }
        assert!(bad > 800 && good > 3500, "{good} good, {bad} bad");
    }

    #[test]
    fn formats_time_stamps() {
        assert_eq!(iso_timestamp(1_764_489_600_123_456), "2025-11-30T08:00:00.123456Z");
    }
}
