//! Event-time windows per sensor with differential dataflow: admission against the allowed
//! lateness, retirement of old windows (so state stays bounded), and the reduce that turns
//! partial aggregates into window statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::OkErr;
use timely::dataflow::StreamVec;

use traffic::checkpoint::stable_hash;
use traffic::time_stash::TimeStash;

/// Fixed-point scale of speeds and densities inside aggregates (thousandths): integer sums are
/// exact, so results do not depend on how records were spread over workers and epochs.
pub const SCALE: f64 = 1000.0;

/// Window length and allowed lateness, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct WindowSettings {
    /// Tumbling window length.
    pub window: i64,
    /// How far behind a sensor's latest event time a record may be and still update its window.
    pub lateness: i64,
}

impl WindowSettings {
    /// Start of the window holding `timestamp`.
    pub fn window_of(&self, timestamp: i64) -> i64 {
        timestamp - timestamp.rem_euclid(self.window)
    }

    /// Whether the window starting at `start` is closed once a sensor's latest event is `watermark`.
    pub fn is_closed(&self, start: i64, watermark: i64) -> bool {
        start.saturating_add(self.window).saturating_add(self.lateness) <= watermark
    }
}

/// Count, sums and minimum of readings, in fixed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowAgg {
    /// Readings.
    pub count: i64,
    /// Sum of speeds, thousandths of km/h.
    pub speed_sum: i64,
    /// Lowest speed, thousandths of km/h.
    pub speed_min: i64,
    /// Sum of densities, thousandths of a percent.
    pub density_sum: i64,
}

impl Default for WindowAgg {
    fn default() -> Self {
        WindowAgg { count: 0, speed_sum: 0, speed_min: i64::MAX, density_sum: 0 }
    }
}

impl WindowAgg {
    /// Adds one reading.
    pub fn add(&mut self, speed: f64, density: f64) {
        let speed = (speed * SCALE).round() as i64;
        self.count += 1;
        self.speed_sum += speed;
        self.speed_min = self.speed_min.min(speed);
        self.density_sum += (density * SCALE).round() as i64;
    }

    /// Adds `times` copies of `other`.
    pub fn merge(&mut self, other: &WindowAgg, times: i64) {
        self.count += other.count * times;
        self.speed_sum += other.speed_sum * times;
        self.density_sum += other.density_sum * times;
        self.speed_min = self.speed_min.min(other.speed_min);
    }

    /// The aggregate of `parts`, each counted `times` times.
    pub fn total<'a>(parts: impl IntoIterator<Item = (&'a WindowAgg, i64)>) -> WindowAgg {
        let mut total = WindowAgg::default();
        for (agg, times) in parts {
            total.merge(agg, times);
        }
        total
    }

    /// Mean speed, km/h.
    pub fn mean_speed(&self) -> f64 {
        self.speed_sum as f64 / self.count.max(1) as f64 / SCALE
    }

    /// Mean density, percent.
    pub fn mean_density(&self) -> f64 {
        self.density_sum as f64 / self.count.max(1) as f64 / SCALE
    }
}

/// What one ingest worker saw of one sensor window during one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowPartial {
    /// Sensor id.
    pub sensor: String,
    /// Window start, microseconds since the epoch.
    pub window_start: i64,
    /// The readings' aggregate.
    pub agg: WindowAgg,
    /// Latest event time among them.
    pub max_event: i64,
}

/// The admission state of one sensor: its latest event time and its open windows' aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorWindows {
    /// Sensor id.
    pub sensor: String,
    /// Latest event time seen (the sensor's watermark).
    pub watermark: i64,
    /// The aggregate of each open window, exactly as it stands in the collection: one record per
    /// window, replaced when a partial arrives, so state and checkpoints do not grow with the
    /// number of epochs a window spans.
    pub windows: BTreeMap<i64, WindowAgg>,
}

/// Input of the admission operator: restored state (at the first epoch) or new partials.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdmissionInput {
    /// State from the checkpoint.
    Restore(SensorWindows),
    /// New partial aggregate.
    Partial(WindowPartial),
}

impl AdmissionInput {
    fn sensor(&self) -> &str {
        match self {
            AdmissionInput::Restore(state) => &state.sensor,
            AdmissionInput::Partial(partial) => &partial.sensor,
        }
    }
}

/// A window key: sensor and window start.
pub type WindowKey = (String, i64);
/// A change to the collection of admitted partials.
pub type AdmittedUpdate = ((WindowKey, WindowAgg), u64, isize);

/// One row of `windows/`: a window's statistics as computed at `epoch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRow {
    /// Sensor id.
    pub sensor_id: String,
    /// Window start, µs.
    pub window_start: i64,
    /// Window end (exclusive), µs.
    pub window_end: i64,
    /// Readings in the window.
    pub count: i64,
    /// Mean speed, km/h.
    pub mean_speed: f64,
    /// Lowest speed, km/h.
    pub min_speed: f64,
    /// Mean density, percent.
    pub mean_density: f64,
    /// Epoch at which this version was computed; the highest epoch of a window is its latest.
    pub epoch: u64,
}

/// Routes a sensor's data to one worker.
pub fn sensor_route(sensor: &str) -> u64 {
    stable_hash(&[sensor])
}

/// The admission operator. When the frontier passes an epoch, it first retires the windows that
/// the previous epochs' watermarks closed (retracting their partials, so state stays bounded),
/// then admits each new partial whose window is still open, or counts its readings as late, and
/// finally advances the sensors' watermarks. Windows closed by an epoch's own data are retired
/// at the next epoch with data, so their final statistics are always computed and written once.
/// Returns the admitted-partials updates and the commit items (state snapshots, late counts).
pub fn admit<'scope>(
    input: StreamVec<'scope, u64, AdmissionInput>,
    settings: WindowSettings,
) -> (StreamVec<'scope, u64, AdmittedUpdate>, StreamVec<'scope, u64, AdmissionReport>) {
    let output = input
        .unary_frontier::<CapacityContainerBuilder<Vec<Result<AdmittedUpdate, AdmissionReport>>>, _, _, _>(
            Exchange::new(|item: &AdmissionInput| sensor_route(item.sensor())),
            "Admit",
            move |_capability, _info| {
                let mut sensors: HashMap<String, SensorWindows> = HashMap::new();
                // Sensors whose watermark moved since their windows were last checked for retirement.
                let mut advanced: BTreeSet<String> = BTreeSet::new();
                let mut stash: TimeStash<AdmissionInput> = TimeStash::default();
                move |(input, frontier), output| {
                    stash.absorb(input);
                    for (cap, items) in stash.complete(frontier) {
                        let epoch = *cap.time();
                        let mut session = output.session(&cap);
                        let mut touched = BTreeSet::new();
                        let mut partials = Vec::new();
                        for item in items {
                            match item {
                                AdmissionInput::Restore(state) => {
                                    for (&start, agg) in &state.windows {
                                        session.give(Ok((((state.sensor.clone(), start), *agg), epoch, 1)));
                                    }
                                    advanced.insert(state.sensor.clone());
                                    sensors.insert(state.sensor.clone(), state);
                                }
                                AdmissionInput::Partial(partial) => partials.push(partial),
                            }
                        }
                        for sensor in std::mem::take(&mut advanced) {
                            let state = sensors.get_mut(&sensor).expect("sensor state");
                            let open =
                                state.windows.split_off(&(state.watermark - settings.window - settings.lateness + 1));
                            for (start, agg) in std::mem::replace(&mut state.windows, open) {
                                session.give(Ok((((sensor.clone(), start), agg), epoch, -1)));
                            }
                            touched.insert(sensor);
                        }
                        // Every partial of the epoch is judged against the watermarks of earlier
                        // epochs, so the outcome does not depend on the order partials arrive in.
                        let mut late = 0;
                        let mut latest: HashMap<String, i64> = HashMap::new();
                        for partial in partials {
                            let state = sensors.entry(partial.sensor.clone()).or_insert_with(|| SensorWindows {
                                sensor: partial.sensor.clone(),
                                watermark: i64::MIN,
                                ..Default::default()
                            });
                            if settings.is_closed(partial.window_start, state.watermark) {
                                late += partial.agg.count as u64;
                            } else {
                                let key = (partial.sensor.clone(), partial.window_start);
                                let mut merged = partial.agg;
                                if let Some(previous) = state.windows.get(&partial.window_start) {
                                    session.give(Ok(((key.clone(), *previous), epoch, -1)));
                                    merged.merge(previous, 1);
                                }
                                state.windows.insert(partial.window_start, merged);
                                session.give(Ok(((key, merged), epoch, 1)));
                            }
                            let max = latest.entry(partial.sensor.clone()).or_insert(i64::MIN);
                            *max = (*max).max(partial.max_event);
                            touched.insert(partial.sensor);
                        }
                        for (sensor, max_event) in latest {
                            let state = sensors.get_mut(&sensor).expect("sensor state");
                            if max_event > state.watermark {
                                state.watermark = max_event;
                                advanced.insert(sensor);
                            }
                        }
                        for sensor in touched {
                            session.give(Err(AdmissionReport::State(sensors[&sensor].clone())));
                        }
                        if late > 0 {
                            session.give(Err(AdmissionReport::Late(late)));
                        }
                    }
                }
            },
        );
    output.ok_err::<Vec<AdmittedUpdate>, _, Vec<AdmissionReport>, _, _>(|item| item)
}

/// The window statistics: admitted partials reduced per `(sensor, window start)`.
pub fn window_stats<'scope>(
    admitted: VecCollection<'scope, u64, (WindowKey, WindowAgg)>,
) -> VecCollection<'scope, u64, (WindowKey, WindowAgg)> {
    admitted.reduce(|_key, partials, output| {
        let total = WindowAgg::total(partials.iter().map(|(agg, times)| (*agg, *times as i64)));
        if total.count > 0 {
            output.push((total, 1));
        }
    })
}

/// What admission tells the checkpoint after an epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdmissionReport {
    /// A sensor's window state after the epoch.
    State(SensorWindows),
    /// Readings found too late for their window.
    Late(u64),
}

/// The rows of `windows/`: every new version of a window's statistics.
pub fn window_rows<'scope>(
    stats: VecCollection<'scope, u64, (WindowKey, WindowAgg)>,
    settings: WindowSettings,
) -> StreamVec<'scope, u64, WindowRow> {
    stats.inner.flat_map(move |(((sensor_id, window_start), agg), epoch, diff)| {
        (diff > 0).then(|| WindowRow {
            sensor_id,
            window_start,
            window_end: window_start + settings.window,
            count: agg.count,
            mean_speed: agg.mean_speed(),
            min_speed: agg.speed_min as f64 / SCALE,
            mean_density: agg.mean_density(),
            epoch,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_lateness() {
        let settings = WindowSettings { window: 60_000_000, lateness: 600_000_000 };
        assert_eq!(settings.window_of(125_000_000), 120_000_000);
        assert!(!settings.is_closed(0, 659_999_999));
        assert!(settings.is_closed(0, 660_000_000));
        assert!(!settings.is_closed(0, i64::MIN));
    }

    #[test]
    fn aggregates_are_exact_and_order_free() {
        let mut a = WindowAgg::default();
        a.add(10.5, 80.0);
        a.add(20.25, 90.0);
        let mut b = WindowAgg::default();
        b.merge(&a, 2);
        assert_eq!(b.count, 4);
        assert_eq!(b.mean_speed(), 15.375);
        assert_eq!(b.speed_min, 10_500);
        assert_eq!(b.mean_density(), 85.0);
    }
}
