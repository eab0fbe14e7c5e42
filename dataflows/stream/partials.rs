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

/// One sensor's windows in the epoch: window start -> (aggregate, latest event time).
struct SensorPartials {
    sensor: String,
    windows: BTreeMap<i64, (WindowAgg, i64)>,
}

impl EpochPartials {
    /// Adds a reading of `sensor` at `timestamp` to its window starting at `window_start`.
    pub fn add(&mut self, sensor: &str, window_start: i64, timestamp: i64, speed: f64, density: f64) {
        let slot = self.slot(sensor);
        let (agg, max_event) =
            self.sensors[slot].windows.entry(window_start).or_insert((WindowAgg::default(), i64::MIN));
        agg.add(speed, density);
        *max_event = (*max_event).max(timestamp);
    }

    fn slot(&mut self, sensor: &str) -> usize {
        let sensors = &mut self.sensors;
        let mut insert = || {
            sensors.push(SensorPartials { sensor: sensor.to_string(), windows: BTreeMap::new() });
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
            .flat_map(|SensorPartials { sensor, windows }| {
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
    let mut key = [0u8; 16];
    for (to, from) in key.iter_mut().zip(bytes) {
        *to = *from;
    }
    key[15] = bytes.len() as u8;
    Some(u128::from_le_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_of_a_sensor_and_window_fold_into_one_partial() {
        let mut partials = EpochPartials::default();
        let long = "a-sensor-id-longer-than-fifteen-bytes";
        for (sensor, window, time, speed) in [
            ("S1", 0, 5, 10.0),
            ("S1\0", 0, 6, 20.0),
            ("S1", 0, 7, 30.0),
            ("S1", 60, 61, 40.0),
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
                ("S1".to_string(), 0, 7, agg(&[10.0, 30.0])),
                ("S1".to_string(), 60, 61, agg(&[40.0])),
                ("S1\0".to_string(), 0, 6, agg(&[20.0])),
                (long.to_string(), 0, 3, agg(&[50.0, 70.0])),
            ]
        );
    }
}
