//! The sensor message schema: strict JSON parsing and validation of one Kafka payload.

use std::borrow::Cow;

use serde::Deserialize;

use crate::datetime::DateCache;

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
    let mut scan = Scanner { text: payload, pos: 0 };
    scan.literal(b"{\"sensor_id\":").then_some(())?;
    let id = scan.string()?;
    scan.literal(b",\"timestamp\":").then_some(())?;
    let time = scan.string()?;
    scan.literal(b",\"average_speed\":").then_some(())?;
    let speed = scan.number()?;
    scan.literal(b",\"traffic_density\":").then_some(())?;
    let density = scan.number()?;
    (payload.get(scan.pos..)? == b"}").then_some(())?;
    Fields::checked(id, time, speed, density)
}

/// The four fields in any order, with any JSON white space.
fn in_any_layout(payload: &[u8]) -> Option<Fields<'_>> {
    let mut scan = Scanner { text: payload, pos: 0 };
    scan.expect(b'{')?;
    let (mut id, mut time, mut speed, mut density) = (None, None, None, None);
    loop {
        let slot_filled = match scan.key()? {
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
    if scan.pos != payload.len() {
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

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_space(&mut self) {
        while self.text.get(self.pos).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        self.skip_space();
        let byte = *self.text.get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// One of the four keys and its colon, compared as literals: any other key (or one written
    /// with escapes) is for serde_json.
    fn key(&mut self) -> Option<Key> {
        self.skip_space();
        let key = match self.text.get(self.pos + 1..self.pos + 3)? {
            [b's', _] => self.literal(b"\"sensor_id\"").then_some(Key::SensorId),
            [b't', b'i'] => self.literal(b"\"timestamp\"").then_some(Key::Timestamp),
            [b'a', _] => self.literal(b"\"average_speed\"").then_some(Key::AverageSpeed),
            [b't', b'r'] => self.literal(b"\"traffic_density\"").then_some(Key::TrafficDensity),
            _ => None,
        }?;
        self.expect(b':')?;
        Some(key)
    }

    /// Steps over `literal` if the text continues with it.
    fn literal<const N: usize>(&mut self, literal: &[u8; N]) -> bool {
        let matches = self.text.get(self.pos..self.pos + N).is_some_and(|next| next == literal);
        self.pos += if matches { N } else { 0 };
        matches
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = &self.text[self.pos..];
        let length = string_end(rest)?;
        if rest[length] != b'"' {
            return None;
        }
        self.pos += length + 1;
        Some(&rest[..length])
    }

    /// A number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, read in one
    /// pass that checks the grammar and gathers the digits together.
    fn number(&mut self) -> Option<f64> {
        self.skip_space();
        let text = self.text;
        let start = self.pos;
        let mut pos = start;
        let negative = text.get(pos) == Some(&b'-');
        pos += usize::from(negative);
        // The digits as one integer, and how many of them count (leading zeros do not).
        let (mut mantissa, mut significant) = (0u64, 0usize);
        let mut digits = |pos: &mut usize| {
            let from = *pos;
            while let Some(&byte) = text.get(*pos).filter(|b| b.is_ascii_digit()) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(byte - b'0'));
                significant += usize::from(mantissa != 0);
                *pos += 1;
            }
            *pos - from
        };
        let leading = text.get(pos).copied();
        let integer = digits(&mut pos);
        if integer == 0 || (leading == Some(b'0') && integer > 1) {
            return None;
        }
        let mut decimals = 0;
        if text.get(pos) == Some(&b'.') {
            pos += 1;
            decimals = digits(&mut pos);
            if decimals == 0 {
                return None;
            }
        }
        let exponent = matches!(text.get(pos), Some(b'e' | b'E'));
        if exponent {
            pos += 1;
            if matches!(text.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            let from = pos;
            while text.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            if pos == from {
                return None;
            }
        }
        self.pos = pos;
        let value = match short_decimal(exponent, significant, mantissa, decimals) {
            Some(magnitude) if negative => -magnitude,
            Some(magnitude) => magnitude,
            None => std::str::from_utf8(&text[start..pos]).ok()?.parse().ok()?,
        };
        // Out-of-range literals (1e999) are serde_json's to reject.
        value.is_finite().then_some(value)
    }
}

/// Where a JSON string's plain run ends: the index of the first `"`, `\` or control byte (below
/// 0x20), eight bytes at a time. In each word, `(x - 0x01..) & !x & 0x80..` flags the bytes that
/// are zero (here: equal to the byte searched for, or below 0x20); a borrow can only flag bytes
/// above a true one, so the lowest flag is exact.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64, below: u64| x.wrapping_sub(ONES * below) & !x & HIGHS;
    let mut words = bytes.chunks_exact(8);
    for (index, word) in words.by_ref().enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let flags = zero_bytes(word ^ (ONES * u64::from(b'"')), 1)
            | zero_bytes(word ^ (ONES * u64::from(b'\\')), 1)
            | zero_bytes(word, 0x20);
        if flags != 0 {
            return Some(index * 8 + flags.trailing_zeros() as usize / 8);
        }
    }
    let tail = bytes.len() - words.remainder().len();
    words.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| tail + i)
}

/// Clinger's fast path for a number already checked against JSON's grammar: with no exponent, at
/// most 15 significant digits and at most 22 decimals, it is `digits / 10^decimals`, two exactly
/// represented doubles, and one IEEE division rounds the quotient correctly. `None` otherwise.
fn short_decimal(exponent: bool, significant: usize, mantissa: u64, decimals: usize) -> Option<f64> {
    const POWERS_OF_TEN: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    if exponent || significant > 15 {
        return None;
    }
    Some(mantissa as f64 / *POWERS_OF_TEN.get(decimals)?)
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
                    let t = crate::datetime::parse_timestamp_utc(m.timestamp.as_bytes()).map_err(str::to_string)?;
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
    fn numbers_equal_the_standard_parse() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut spans: Vec<String> =
            ["0", "-0", "-0.0", "0.1", "54.2", "99.99", "300", "123456789012345", "0.30000000000000004"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for _ in 0..100_000 {
            let digits = (next() % 15 + 1) as u32;
            let mantissa = next() % 10u64.pow(digits);
            let decimals = (next() % (digits as u64 + 1)) as usize;
            let text = format!("{mantissa:0width$}", width = decimals + 1);
            let (whole, fraction) = text.split_at(text.len() - decimals);
            let sign = if next() % 2 == 0 { "-" } else { "" };
            spans.push(if decimals == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") });
        }
        spans.extend(
            ["1e5", "-2.5E-3", "0e0", "1E+2", "12345678901234567890", "0.000000000000000000000001"].map(String::from),
        );
        for span in spans {
            let standard: f64 = span.parse().unwrap();
            let mut scan = Scanner { text: span.as_bytes(), pos: 0 };
            assert_eq!(scan.number().map(f64::to_bits), Some(standard.to_bits()), "{span}");
            assert_eq!(scan.pos, span.len(), "{span}");
        }
    }

    #[test]
    fn string_ends_are_found_in_every_byte_position() {
        for length in 0..40 {
            for end in [b'"', b'\\', b'\n', 0x1f] {
                for filler in [b'a', 0x7f, 0xc3, 0x21, 0x5d] {
                    let mut bytes = vec![filler; length];
                    bytes.push(end);
                    bytes.extend_from_slice(b"\"\\x");
                    assert_eq!(string_end(&bytes), Some(length), "{length} {end} {filler}");
                    assert_eq!(string_end(&bytes[..length]), None);
                }
            }
        }
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
