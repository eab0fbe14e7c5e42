//! A worker's window partials for one epoch: per sensor and window, the aggregate of the
//! epoch's readings, found per record through the sensor id packed into an integer.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::windows::{WindowAgg, WindowPartial};

/// Ids up to this many bytes (all real ones) are packed into a `u128` key: hashing and comparing
/// it are a few integer operations, where a string key costs a hash loop and a `memcmp` call per
/// reading. Longer ids take a string-keyed map.
const PACKED_BYTES: usize = 15;

/// The window partials of one epoch on one worker.
#[derive(Default)]
pub struct EpochPartials {
    packed: FxHashMap<u128, usize>,
    long: FxHashMap<String, usize>,
    sensors: Vec<SensorPartials>,
}

/// One sensor's windows in the epoch, each with its aggregate and latest event time.
struct SensorPartials {
    sensor: String,
    /// The window of the sensor's latest reading, kept beside the id: a sensor's consecutive
    /// readings nearly always share a window, and a tree lookup per reading cost a cache miss.
    current: (i64, WindowAgg, i64),
    /// Its other windows: start -> (aggregate, latest event time).
    others: BTreeMap<i64, (WindowAgg, i64)>,
}

impl SensorPartials {
    fn new(sensor: &str, window_start: i64) -> Self {
        SensorPartials {
            sensor: sensor.to_string(),
            current: (window_start, WindowAgg::default(), i64::MIN),
            others: BTreeMap::new(),
        }
    }

    fn add(&mut self, window_start: i64, timestamp: i64, speed: f64, density: f64) {
        if self.current.0 != window_start {
            let (agg, max_event) = self.others.remove(&window_start).unwrap_or((WindowAgg::default(), i64::MIN));
            let (start, agg, max_event) = std::mem::replace(&mut self.current, (window_start, agg, max_event));
            self.others.insert(start, (agg, max_event));
        }
        let (_, agg, max_event) = &mut self.current;
        agg.add(speed, density);
        *max_event = (*max_event).max(timestamp);
    }

    /// The sensor and every window with readings, by start.
    fn into_windows(mut self) -> (String, BTreeMap<i64, (WindowAgg, i64)>) {
        let (start, agg, max_event) = self.current;
        self.others.insert(start, (agg, max_event));
        (self.sensor, self.others)
    }
}

impl EpochPartials {
    /// Adds a reading of `sensor` at `timestamp` to its window starting at `window_start`.
    pub fn add(&mut self, sensor: &str, window_start: i64, timestamp: i64, speed: f64, density: f64) {
        let slot = self.slot(sensor, window_start);
        self.sensors[slot].add(window_start, timestamp, speed, density);
    }

    fn slot(&mut self, sensor: &str, window_start: i64) -> usize {
        let sensors = &mut self.sensors;
        let mut insert = || {
            sensors.push(SensorPartials::new(sensor, window_start));
            sensors.len() - 1
        };
        match packed(sensor) {
            Some(key) => *self.packed.entry(key).or_insert_with(insert),
            None => match self.long.get(sensor) {
                Some(&slot) => slot,
                None => {
                    let slot = insert();
                    self.long.insert(sensor.to_string(), slot);
                    slot
                }
            },
        }
    }

    /// The partials, one per sensor and window.
    pub fn into_partials(self) -> Vec<WindowPartial> {
        self.sensors
            .into_iter()
            .flat_map(|partials| {
                let (sensor, windows) = partials.into_windows();
                windows.into_iter().map(move |(window_start, (agg, max_event))| WindowPartial {
                    sensor: sensor.clone(),
                    window_start,
                    agg,
                    max_event,
                })
            })
            .collect()
    }
}

/// The id's bytes and its length in one integer, if it is short enough: distinct ids give
/// distinct keys (the length byte tells `S1` from `S1\0`).
fn packed(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() > PACKED_BYTES {
        return None;
    }
    // Shifted in a register: bytes stored to a stack array and read back as one integer stalled
    // the load until the stores retired (the ingest loop went from 9.3 to 6.8 % of a drain's CPU).
    let key = bytes.iter().rev().fold(0u128, |key, &byte| key << 8 | byte as u128);
    Some(key | (bytes.len() as u128) << 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_ids_are_their_bytes_and_length() {
        assert_eq!(packed("S1"), Some(u128::from_le_bytes(*b"S1\0\0\0\0\0\0\0\0\0\0\0\0\0\x02")));
        assert_eq!(packed(""), Some(0));
        assert_ne!(packed("S1"), packed("S1\0"));
        assert!(packed("fifteen-bytes-x").is_some() && packed("sixteen-bytes-xx").is_none());
    }

    #[test]
    fn readings_of_a_sensor_and_window_fold_into_one_partial() {
        let mut partials = EpochPartials::default();
        let long = "a-sensor-id-longer-than-fifteen-bytes";
        for (sensor, window, time, speed) in [
            ("S1", 0, 5, 10.0),
            ("S1\0", 0, 6, 20.0),
            ("S1", 0, 7, 30.0),
            ("S1", 60, 61, 40.0),
            ("S1", 0, 2, 60.0),
            (long, 0, 3, 50.0),
            (long, 0, 1, 70.0),
        ] {
            partials.add(sensor, window, time, speed, 1.0);
        }
        let mut found: Vec<(String, i64, i64, WindowAgg)> =
            partials.into_partials().into_iter().map(|p| (p.sensor, p.window_start, p.max_event, p.agg)).collect();
        found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let agg = |speeds: &[f64]| {
            let mut agg = WindowAgg::default();
            speeds.iter().for_each(|&s| agg.add(s, 1.0));
            agg
        };
        assert_eq!(
            found,
            vec![
                ("S1".to_string(), 0, 7, agg(&[10.0, 30.0, 60.0])),
                ("S1".to_string(), 60, 61, agg(&[40.0])),
                ("S1\0".to_string(), 0, 6, agg(&[20.0])),
                (long.to_string(), 0, 3, agg(&[50.0, 70.0])),
            ]
        );
    }

    #[test]
    fn readings_in_any_window_order_fold_as_a_plain_map_does() {
        use crate::random::SplitMix64;
        let mut random = SplitMix64::new(7);
        let mut partials = EpochPartials::default();
        let mut expected: BTreeMap<(String, i64), (WindowAgg, i64)> = BTreeMap::new();
        for _ in 0..10_000 {
            let sensor = format!("S{}", random.next_u64() % 5);
            // Mostly the latest window, sometimes an older or a newer one, as late data arrives.
            let window = [0, 60, 120, 60, 60, 60][(random.next_u64() % 6) as usize];
            let time = window + (random.next_u64() % 60) as i64;
            let speed = (random.next_u64() % 1200) as f64 / 10.0;
            partials.add(&sensor, window, time, speed, 2.0);
            let (agg, max_event) = expected.entry((sensor, window)).or_insert((WindowAgg::default(), i64::MIN));
            agg.add(speed, 2.0);
            *max_event = (*max_event).max(time);
        }
        let partials = partials.into_partials();
        assert_eq!(partials.len(), expected.len(), "one partial per sensor and window");
        let found: BTreeMap<(String, i64), (WindowAgg, i64)> =
            partials.into_iter().map(|p| ((p.sensor, p.window_start), (p.agg, p.max_event))).collect();
        assert_eq!(found, expected);
    }
}
