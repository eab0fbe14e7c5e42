//! Congestion episodes per sensor: a window is congested when its mean speed is below the speed
//! threshold and its mean density above the density threshold; consecutive congested windows form
//! an episode, which opens at the first and closes at the first window that is not congested.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use super::windows::{sensor_route, WindowAgg, WindowKey, SCALE};
use traffic::time_stash::TimeStash;

/// Congestion thresholds.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A window is congested when its mean speed is below this (km/h)...
    pub speed: f64,
    /// ... and its mean density above this (percent).
    pub density: f64,
}

impl Thresholds {
    fn congested(&self, agg: &WindowAgg) -> bool {
        agg.count > 0 && agg.mean_speed() < self.speed && agg.mean_density() > self.density
    }
}

/// An episode still open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEpisode {
    /// Start of its first window.
    pub start: i64,
    /// Congested windows so far.
    pub windows: u32,
    /// Lowest window mean speed, thousandths of km/h.
    pub min_speed: i64,
    /// Highest window mean density, thousandths of a percent.
    pub max_density: i64,
}

/// Episode detection state of one sensor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorEpisodes {
    /// Sensor id.
    pub sensor: String,
    /// Latest statistics of windows not yet evaluated.
    pub pending: BTreeMap<i64, WindowAgg>,
    /// Start of the last window evaluated; later changes to it or earlier ones are ignored.
    pub evaluated_through: Option<i64>,
    /// The episode in progress.
    pub open: Option<OpenEpisode>,
}

/// One row of `congestion/` (and one alert): an episode opening or closing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRow {
    /// Sensor id.
    pub sensor_id: String,
    /// `open` or `closed`.
    pub status: String,
    /// Start of the episode's first window, µs.
    pub start: i64,
    /// Start of the first window after it, µs (closed episodes only).
    pub end: Option<i64>,
    /// Congested windows.
    pub windows: u32,
    /// Lowest window mean speed, km/h.
    pub min_mean_speed: f64,
    /// Highest window mean density, percent.
    pub max_mean_density: f64,
    /// Epoch at which it was detected.
    pub epoch: u64,
}

/// Input of the episode operator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum EpisodeInput {
    /// State from the checkpoint.
    Restore(SensorEpisodes),
    /// A change to a window's statistics.
    Change(WindowKey, WindowAgg, isize),
}

impl EpisodeInput {
    fn sensor(&self) -> &str {
        match self {
            EpisodeInput::Restore(state) => &state.sensor,
            EpisodeInput::Change((sensor, _), _, _) => sensor,
        }
    }
}

impl SensorEpisodes {
    /// Applies one epoch's window changes and returns the episode events they cause.
    ///
    /// A window is evaluated once a later window of the sensor has data (it is then complete but
    /// for late records), or when it is retired; windows are evaluated in event-time order.
    pub fn advance(
        &mut self,
        changes: Vec<(i64, WindowAgg, isize)>,
        thresholds: Thresholds,
        epoch: u64,
    ) -> Vec<EpisodeRow> {
        let mut added: BTreeMap<i64, WindowAgg> = BTreeMap::new();
        let mut retired: Vec<i64> = Vec::new();
        for (start, agg, diff) in changes {
            if diff > 0 {
                added.insert(start, agg);
            } else {
                retired.push(start);
            }
        }
        let done = self.evaluated_through;
        let fresh = |start: &i64| done.is_none_or(|done| *start > done);
        retired.retain(|start| !added.contains_key(start) && fresh(start));
        let added: Vec<(i64, WindowAgg)> = added.into_iter().filter(|(start, _)| fresh(start)).collect();
        self.pending.extend(added);
        let Some(&latest) = self.pending.keys().next_back() else { return Vec::new() };
        let final_through = retired.iter().copied().max().unwrap_or(i64::MIN);
        let mut events = Vec::new();
        while let Some((&start, _)) = self.pending.first_key_value() {
            if start >= latest && start > final_through {
                break;
            }
            let agg = self.pending.remove(&start).expect("pending window");
            self.evaluated_through = Some(start);
            events.extend(self.evaluate(start, &agg, thresholds, epoch));
        }
        events
    }

    fn evaluate(&mut self, start: i64, agg: &WindowAgg, thresholds: Thresholds, epoch: u64) -> Option<EpisodeRow> {
        let mean_speed = (agg.mean_speed() * SCALE).round() as i64;
        let mean_density = (agg.mean_density() * SCALE).round() as i64;
        match (&mut self.open, thresholds.congested(agg)) {
            (None, true) => {
                let open = OpenEpisode { start, windows: 1, min_speed: mean_speed, max_density: mean_density };
                let row = self.row(&open, "open", None, epoch);
                self.open = Some(open);
                Some(row)
            }
            (Some(open), true) => {
                open.windows += 1;
                open.min_speed = open.min_speed.min(mean_speed);
                open.max_density = open.max_density.max(mean_density);
                None
            }
            (Some(_), false) => {
                let open = self.open.take().expect("open episode");
                Some(self.row(&open, "closed", Some(start), epoch))
            }
            (None, false) => None,
        }
    }

    fn row(&self, open: &OpenEpisode, status: &str, end: Option<i64>, epoch: u64) -> EpisodeRow {
        EpisodeRow {
            sensor_id: self.sensor.clone(),
            status: status.to_string(),
            start: open.start,
            end,
            windows: open.windows,
            min_mean_speed: open.min_speed as f64 / SCALE,
            max_mean_density: open.max_density as f64 / SCALE,
            epoch,
        }
    }
}

/// What episode detection tells the checkpoint after an epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum EpisodeReport {
    /// An episode opening or closing.
    Row(EpisodeRow),
    /// A sensor's episode state after the epoch.
    State(SensorEpisodes),
}

/// The episode operator: per sensor, in epoch order, turns window changes into episode events
/// and state snapshots for the checkpoint.
pub fn detect<'scope>(
    input: StreamVec<'scope, u64, EpisodeInput>,
    thresholds: Thresholds,
) -> StreamVec<'scope, u64, EpisodeReport> {
    input.unary_frontier::<CapacityContainerBuilder<Vec<EpisodeReport>>, _, _, _>(
        Exchange::new(|item: &EpisodeInput| sensor_route(item.sensor())),
        "Episodes",
        move |_capability, _info| {
            let mut sensors: HashMap<String, SensorEpisodes> = HashMap::new();
            let mut stash: TimeStash<EpisodeInput> = TimeStash::default();
            move |(input, frontier), output| {
                stash.absorb(input);
                for (cap, items) in stash.complete(frontier) {
                    let epoch = *cap.time();
                    let mut changes: BTreeMap<String, Vec<(i64, WindowAgg, isize)>> = BTreeMap::new();
                    for item in items {
                        match item {
                            EpisodeInput::Restore(state) => {
                                sensors.insert(state.sensor.clone(), state);
                            }
                            EpisodeInput::Change((sensor, start), agg, diff) => {
                                changes.entry(sensor).or_default().push((start, agg, diff))
                            }
                        }
                    }
                    let mut session = output.session(&cap);
                    for (sensor, changes) in changes {
                        let state = sensors
                            .entry(sensor.clone())
                            .or_insert_with(|| SensorEpisodes { sensor: sensor.clone(), ..Default::default() });
                        for row in state.advance(changes, thresholds, epoch) {
                            session.give(EpisodeReport::Row(row));
                        }
                        session.give(EpisodeReport::State(state.clone()));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;

    fn agg(speed: f64, density: f64) -> WindowAgg {
        let mut a = WindowAgg::default();
        a.add(speed, density);
        a
    }

    #[test]
    fn an_episode_opens_and_closes() {
        let thresholds = Thresholds { speed: 20.0, density: 70.0 };
        let mut state = SensorEpisodes { sensor: "S1".into(), ..Default::default() };
        let free = agg(60.0, 20.0);
        let jam = agg(10.0, 90.0);
        assert!(state.advance(vec![(0, free, 1), (MINUTE, jam, 1)], thresholds, 1).is_empty());
        let opened = state.advance(vec![(2 * MINUTE, jam, 1)], thresholds, 2);
        assert_eq!(opened.len(), 1);
        assert_eq!((opened[0].status.as_str(), opened[0].start), ("open", MINUTE));
        let closed = state.advance(vec![(3 * MINUTE, free, 1), (4 * MINUTE, free, 1)], thresholds, 3);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].status.as_str(), closed[0].end, closed[0].windows), ("closed", Some(3 * MINUTE), 2));
        assert_eq!(closed[0].min_mean_speed, 10.0);
        // Late changes to evaluated windows no longer matter; retirement evaluates the last one.
        assert!(state.advance(vec![(MINUTE, free, 1)], thresholds, 4).is_empty());
        assert_eq!(state.pending.len(), 1);
        assert!(state.advance(vec![(4 * MINUTE, free, -1)], thresholds, 5).is_empty());
        assert!(state.pending.is_empty());
    }
}
