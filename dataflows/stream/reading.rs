//! The sensor message schema: strict JSON parsing and validation of one Kafka payload.

use std::borrow::Cow;

use serde::Deserialize;

use super::scanner::Scanner;
use traffic::datetime::DateCache;

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
/// (0-100), both finite numbers. Other fields are ignored. `dates` remembers the last date seen.
pub fn parse_reading<'a>(payload: &'a [u8], dates: &mut DateCache) -> Result<Reading<'a>, String> {
    let serde_timestamp: Cow<'a, str>;
    let (sensor_id, timestamp, speed, density) = match canonical(payload) {
        Some(fast) => (Cow::Borrowed(fast.sensor_id), fast.timestamp, fast.average_speed, fast.traffic_density),
        None => {
            let message: Message<'a> = serde_json::from_slice(payload).map_err(|e| format!("invalid JSON: {e}"))?;
            serde_timestamp = message.timestamp;
            (message.sensor_id, serde_timestamp.as_bytes(), message.average_speed, message.traffic_density)
        }
    };
    if !valid_sensor_id(&sensor_id) {
        return Err("sensor_id must be 1-64 printable characters".to_string());
    }
    let timestamp = dates
        .parse_utc(timestamp)
        .map_err(|why| format!("invalid timestamp '{}': {why}", String::from_utf8_lossy(timestamp)))?;
    if !speed.is_finite() || !(0.0..=MAX_SPEED).contains(&speed) {
        return Err(format!("average_speed {speed} out of range 0-{MAX_SPEED}"));
    }
    if !density.is_finite() || !(0.0..=100.0).contains(&density) {
        return Err(format!("traffic_density {density} out of range 0-100"));
    }
    Ok(Reading { sensor_id, timestamp, average_speed: speed, traffic_density: density })
}

/// 1-64 characters, none of them a control character; ASCII ids (all real ones) in one pass.
fn valid_sensor_id(id: &str) -> bool {
    if id.is_ascii() {
        return (1..=64).contains(&id.len()) && !id.bytes().any(|b| b.is_ascii_control());
    }
    (1..=64).contains(&id.chars().count()) && !id.chars().any(char::is_control)
}

/// The four fields as the fast path finds them; the time stamp stays bytes (ASCII, checked), as
/// the date-time parser reads bytes.
struct Fields<'a> {
    sensor_id: &'a str,
    timestamp: &'a [u8],
    average_speed: f64,
    traffic_density: f64,
}

impl<'a> Fields<'a> {
    /// The fields of a scanned message, if the id is UTF-8 and the time stamp ASCII. Inlined: as a
    /// call it cost the parser 12 ns per message (`examples/parse_rate`).
    #[inline(always)]
    fn checked(id: &'a [u8], timestamp: &'a [u8], average_speed: f64, traffic_density: f64) -> Option<Self> {
        Some(Fields {
            sensor_id: std::str::from_utf8(id).ok()?,
            timestamp: timestamp.is_ascii().then_some(timestamp)?,
            average_speed,
            traffic_density,
        })
    }
}

/// The fast path: a flat object of exactly the four fields, strings without escapes, numbers in
/// JSON's own grammar. Anything else returns `None` and goes to serde_json, which decides (and
/// words the error); so both paths accept exactly the same messages.
fn canonical(payload: &[u8]) -> Option<Fields<'_>> {
    in_producer_layout(payload).or_else(|| in_any_layout(payload))
}

/// The layout sensors and `traffic produce` write: the four keys in the seed's order, no spaces.
/// Straight-line, with no key dispatch; any other layout is for [`in_any_layout`].
fn in_producer_layout(payload: &[u8]) -> Option<Fields<'_>> {
    let mut scan = Scanner::new(payload);
    scan.literal(b"{\"sensor_id\":").then_some(())?;
    let id = scan.string()?;
    scan.literal(b",\"timestamp\":").then_some(())?;
    let time = scan.string()?;
    scan.literal(b",\"average_speed\":").then_some(())?;
    let speed = scan.number()?;
    scan.literal(b",\"traffic_density\":").then_some(())?;
    let density = scan.number()?;
    (scan.rest() == b"}").then_some(())?;
    Fields::checked(id, time, speed, density)
}

/// The four fields in any order, with any JSON white space.
fn in_any_layout(payload: &[u8]) -> Option<Fields<'_>> {
    let mut scan = Scanner::new(payload);
    scan.expect(b'{')?;
    let (mut id, mut time, mut speed, mut density) = (None, None, None, None);
    loop {
        let slot_filled = match read_key(&mut scan)? {
            Key::SensorId => id.replace(scan.string()?).is_some(),
            Key::Timestamp => time.replace(scan.string()?).is_some(),
            Key::AverageSpeed => speed.replace(scan.number()?).is_some(),
            Key::TrafficDensity => density.replace(scan.number()?).is_some(),
        };
        if slot_filled {
            return None;
        }
        match scan.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    scan.skip_space();
    if !scan.rest().is_empty() {
        return None;
    }
    Fields::checked(id?, time?, speed?, density?)
}

/// The four keys of a sensor message.
enum Key {
    SensorId,
    Timestamp,
    AverageSpeed,
    TrafficDensity,
}

/// One of the four keys and its colon, compared as literals: any other key (or one written
/// with escapes) is for serde_json.
fn read_key(scan: &mut Scanner<'_>) -> Option<Key> {
    scan.skip_space();
    let key = match scan.rest().get(1..3)? {
        [b's', _] => scan.literal(b"\"sensor_id\"").then_some(Key::SensorId),
        [b't', b'i'] => scan.literal(b"\"timestamp\"").then_some(Key::Timestamp),
        [b'a', _] => scan.literal(b"\"average_speed\"").then_some(Key::AverageSpeed),
        [b't', b'r'] => scan.literal(b"\"traffic_density\"").then_some(Key::TrafficDensity),
        _ => None,
    }?;
    scan.expect(b':')?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_reading_once(payload: &[u8]) -> Result<Reading<'_>, String> {
        parse_reading(payload, &mut DateCache::default())
    }

    #[test]
    fn both_paths_agree() {
        let messages: [&[u8]; 10] = [
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00.5Z","average_speed":54.2,"traffic_density":31}"#,
            br#" { "timestamp" : "2024-05-01T12:00:00Z" , "sensor_id":"S1", "traffic_density":3e1, "average_speed":-0.0 } "#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":01,"traffic_density":3}"#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1.,"traffic_density":3}"#,
            br#"{"sensor_id":"S1","sensor_id":"S2","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3}"#,
            br#"{"sensor_id":"S\u0031","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3}"#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3,"x":[1]}"#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3} x"#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":+1,"traffic_density":3}"#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1e999,"traffic_density":3}"#,
        ];
        for payload in messages {
            let fast = parse_reading_once(payload).map(|r| {
                (r.sensor_id.to_string(), r.timestamp, r.average_speed.to_bits(), r.traffic_density.to_bits())
            });
            let slow =
                serde_json::from_slice::<Message>(payload).map_err(|e| format!("invalid JSON: {e}")).and_then(|m| {
                    let t = traffic::datetime::parse_timestamp_utc(m.timestamp.as_bytes()).map_err(str::to_string)?;
                    Ok((m.sensor_id.to_string(), t, m.average_speed.to_bits(), m.traffic_density.to_bits()))
                });
            assert_eq!(fast.is_ok(), slow.is_ok(), "{}", String::from_utf8_lossy(payload));
            if let (Ok(a), Ok(b)) = (&fast, &slow) {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn the_producer_layout_reads_as_any_layout_does() {
        let fields = |f: Option<Fields<'_>>| {
            f.map(|f| {
                (f.sensor_id.to_string(), f.timestamp.to_vec(), f.average_speed.to_bits(), f.traffic_density.to_bits())
            })
        };
        let producer: [&[u8]; 4] = [
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00.5Z","average_speed":54.2,"traffic_density":31}"#,
            br#"{"sensor_id":"sensor-0042","timestamp":"2024-05-01 12:00:00","average_speed":-0.0,"traffic_density":1e1}"#,
            br#"{"sensor_id":"\u00e9","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3}"#,
            "{\"sensor_id\":\"é\",\"timestamp\":\"2024-05-01T12:00:00Z\",\"average_speed\":1,\"traffic_density\":3}".as_bytes(),
        ];
        for payload in producer {
            assert_eq!(
                fields(in_producer_layout(payload)),
                fields(in_any_layout(payload)),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        // Anything past the producer's layout is left to the general scanner (and to serde_json).
        let other: [&[u8]; 4] = [
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3} "#,
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3,"sensor_id":"S2"}"#,
            br#"{ "sensor_id":"S1","timestamp":"2024-05-01T12:00:00Z","average_speed":1,"traffic_density":3}"#,
            br#"{"timestamp":"2024-05-01T12:00:00Z","sensor_id":"S1","average_speed":1,"traffic_density":3}"#,
        ];
        for payload in other {
            assert!(in_producer_layout(payload).is_none(), "{}", String::from_utf8_lossy(payload));
        }
        assert!(in_any_layout(other[0]).is_some() && in_any_layout(other[1]).is_none());
    }

    #[test]
    fn accepts_the_seed_messages() {
        let r = parse_reading_once(
            br#"{"sensor_id":"S1","timestamp":"2024-05-01T12:00:00.5","average_speed":54.2,"traffic_density":31}"#,
        )
        .unwrap();
        assert_eq!(r.sensor_id, "S1");
        assert_eq!(r.timestamp, 1_714_564_800_500_000);
        assert_eq!((r.average_speed, r.traffic_density), (54.2, 31.0));
        let with_offset = parse_reading_once(br#"{"sensor_id":"S1","timestamp":"2024-05-01T14:00:00.5+02:00","average_speed":1,"traffic_density":0,"extra":true}"#).unwrap();
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
            let error = parse_reading_once(payload).unwrap_err();
            assert!(error.contains(expected), "{} -> {error}", String::from_utf8_lossy(payload));
        }
    }
}
