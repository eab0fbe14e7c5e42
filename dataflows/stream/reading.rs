//! The sensor message schema: strict JSON parsing and validation of one Kafka payload.

use std::borrow::Cow;

use serde::Deserialize;

use crate::datetime::parse_timestamp_utc;

/// A valid sensor reading, borrowing its id from the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<'a> {
    /// Sensor id, e.g. `S1`.
    pub sensor_id: Cow<'a, str>,
    /// Event time, microseconds since the epoch, UTC.
    pub timestamp: i64,
    /// Mean speed over the sensor's interval, km/h.
    pub average_speed: f64,
    /// Occupancy, percent (0-100).
    pub traffic_density: f64,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    sensor_id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    average_speed: f64,
    traffic_density: f64,
}

/// Highest speed accepted, km/h: beyond it a reading is a sensor fault.
pub const MAX_SPEED: f64 = 300.0;

/// Parses and validates one payload; on failure returns why.
///
/// Required: `sensor_id` (non-empty string, at most 64 characters, no control characters),
/// `timestamp` (ISO 8601, with or without offset), `average_speed` (0-300) and `traffic_density`
/// (0-100), both finite numbers. Other fields are ignored.
pub fn parse_reading(payload: &[u8]) -> Result<Reading<'_>, String> {
    let message: Message = serde_json::from_slice(payload).map_err(|e| format!("invalid JSON: {e}"))?;
    let id = &message.sensor_id;
    if id.is_empty() || id.chars().count() > 64 || id.chars().any(char::is_control) {
        return Err("sensor_id must be 1-64 printable characters".to_string());
    }
    let timestamp = parse_timestamp_utc(message.timestamp.as_bytes())
        .map_err(|why| format!("invalid timestamp '{}': {why}", message.timestamp))?;
    let (speed, density) = (message.average_speed, message.traffic_density);
    if !speed.is_finite() || !(0.0..=MAX_SPEED).contains(&speed) {
        return Err(format!("average_speed {speed} out of range 0-{MAX_SPEED}"));
    }
    if !density.is_finite() || !(0.0..=100.0).contains(&density) {
        return Err(format!("traffic_density {density} out of range 0-100"));
    }
    Ok(Reading { sensor_id: message.sensor_id, timestamp, average_speed: speed, traffic_density: density })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_messages() {
        let r = parse_reading(
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00.5","average_speed":54.2,"traffic_density":31}"#,
        )
        .unwrap();
        assert_eq!(r.sensor_id, "S1");
        assert_eq!(r.timestamp, 1_714_564_800_500_000);
        assert_eq!((r.average_speed, r.traffic_density), (54.2, 31.0));
        let with_offset = parse_reading(br#"{"sensor_id":"S1","timestamp":"2024-05-01T14:00:00.5+02:00","average_speed":1,"traffic_density":0,"extra":true}"#).unwrap();
        assert_eq!(with_offset.timestamp, r.timestamp);
    }

    #[test]
    fn rejects_bad_messages_with_a_reason() {
        let cases: [(&[u8], &str); 9] = [
            (br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00","average_speed":54.2"#, "invalid JSON"),
            (br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00","average_speed":"fast","traffic_density":3}"#, "invalid type"),
            (br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00","traffic_density":3}"#, "missing field `average_speed`"),
            (br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00","average_speed":-4,"traffic_density":3}"#, "out of range"),
            (br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00","average_speed":4,"traffic_density":300}"#, "out of range"),
            (br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00","average_speed":1e999,"traffic_density":3}"#, "invalid JSON"),
            (br#"{"sensor_id":"","timestamp":"2024-05-01T12:00:00","average_speed":4,"traffic_density":3}"#, "sensor_id"),
            (br#"{"sensor_id":"S1","timestamp":"noon","average_speed":4,"traffic_density":3}"#, "invalid timestamp"),
            (b"{\"sensor_id\":\"S\xff\",\"timestamp\":\"2024-05-01T12:00:00\",\"average_speed\":4,\"traffic_density\":3}", "invalid JSON"),
        ];
        for (payload, expected) in cases {
            let error = parse_reading(payload).unwrap_err();
            assert!(error.contains(expected), "{} -> {error}", String::from_utf8_lossy(payload));
        }
    }
}
