//! Parsing date-times: `YYYY-MM-DD[ T]H[H]:MM[:SS[.ffffff]]`, naive or with a UTC offset, into microseconds.

use crate::calendar::{days_from_civil, days_in_month, MICROS_PER_DAY};

/// Parses a naive date-time into microseconds since 1970-01-01T00:00:00.
///
/// Accepts `-` or `/` between date parts, a space or `T` before the time, hours with or without
/// a leading zero, optional seconds and fractional seconds. On failure returns why, briefly.
pub fn parse_datetime(text: &[u8]) -> Result<i64, &'static str> {
    let mut cursor = Cursor { text, pos: 0 };
    let year = cursor.digits(4, 4).ok_or("year must have four digits")? as i32;
    cursor.separator(b"-/").ok_or("expected '-' after the year")?;
    let month = cursor.digits(1, 2).ok_or("month must be a number")?;
    cursor.separator(b"-/").ok_or("expected '-' after the month")?;
    let day = cursor.digits(1, 2).ok_or("day must be a number")?;
    if !(1..=12).contains(&month) {
        return Err("month out of range 1-12");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("day out of range for its month");
    }
    if cursor.at_end() {
        return Err("missing time of day");
    }
    cursor.separator(b" T").ok_or("expected ' ' or 'T' between date and time")?;
    let hour = cursor.digits(1, 2).ok_or("hour must be a number")?;
    cursor.separator(b":").ok_or("expected ':' after the hour")?;
    let minute = cursor.digits(2, 2).ok_or("minute must have two digits")?;
    let mut second = 0;
    let mut micros = 0;
    if cursor.separator(b":").is_some() {
        second = cursor.digits(2, 2).ok_or("second must have two digits")?;
        if cursor.separator(b".").is_some() {
            let start = cursor.pos;
            let fraction = cursor.digits(1, 9).ok_or("fractional seconds must be digits")?;
            let width = cursor.pos - start;
            micros = if width <= 6 {
                fraction * 10u32.pow(6 - width as u32)
            } else {
                fraction / 10u32.pow(width as u32 - 6)
            };
        }
    }
    if !cursor.at_end() {
        return Err("unexpected text after the time (time zones are not accepted)");
    }
    if hour > 23 {
        return Err("hour out of range 0-23");
    }
    if minute > 59 {
        return Err("minute out of range 0-59");
    }
    if second > 59 {
        return Err("second out of range 0-59");
    }
    let days = days_from_civil(year, month, day) as i64;
    let seconds = (hour * 3600 + minute * 60 + second) as i64;
    Ok(days * MICROS_PER_DAY + seconds * 1_000_000 + micros as i64)
}

/// Parses an ISO 8601 time stamp into microseconds since the epoch, UTC.
///
/// A trailing `Z`, `+HH:MM`, `+HHMM` or `+HH` gives the offset; without one the time is taken as
/// UTC. Years outside 1970-2200 are refused: sensors do not report from those.
pub fn parse_timestamp_utc(text: &[u8]) -> Result<i64, &'static str> {
    let (local, offset_minutes) = split_offset(text)?;
    let micros = parse_datetime(local)?;
    if !(0..7_258_118_400_000_000).contains(&micros) {
        return Err("year out of range 1970-2200");
    }
    Ok(micros - offset_minutes * 60_000_000)
}

/// Splits a time zone suffix off `text`: returns the rest and the offset in minutes.
fn split_offset(text: &[u8]) -> Result<(&[u8], i64), &'static str> {
    if let Some(rest) = text.strip_suffix(b"Z").or_else(|| text.strip_suffix(b"z")) {
        return Ok((rest, 0));
    }
    // An offset sign can only follow the time part, which starts after the date's 10 bytes.
    let Some(sign_at) = text.iter().skip(11).rposition(|b| *b == b'+' || *b == b'-').map(|i| i + 11) else {
        return Ok((text, 0));
    };
    let digits: Vec<u8> = text[sign_at + 1..].iter().copied().filter(|b| *b != b':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.iter().all(u8::is_ascii_digit) {
        return Err("bad time zone offset");
    }
    let hours = ((digits[0] - b'0') * 10 + (digits[1] - b'0')) as i64;
    let minutes = if digits.len() == 4 { ((digits[2] - b'0') * 10 + (digits[3] - b'0')) as i64 } else { 0 };
    if hours > 14 || minutes > 59 {
        return Err("time zone offset out of range");
    }
    let sign = if text[sign_at] == b'-' { -1 } else { 1 };
    Ok((&text[..sign_at], sign * (hours * 60 + minutes)))
}

/// Parses date-times, remembering the previous one's date: consecutive records almost always
/// share it, and the common `YYYY-MM-DD HH:MM:SS[.f]` layout is then read by fixed positions.
/// The last `YYYY-MM-DD HH:MM:SS` read is remembered whole too: an export in time order repeats
/// it on every junction's line of the hour. Anything else goes to the full parsers, so results
/// and errors are the same.
#[derive(Default)]
pub struct DateCache {
    date: [u8; 10],
    midnight: i64,
    valid: bool,
    /// The last valid date-time of exactly [`SECONDS_LEN`] bytes, and its value.
    last: Option<([u8; SECONDS_LEN], i64)>,
}

/// Length of `YYYY-MM-DD HH:MM:SS`, the usual form of a date-time.
pub const SECONDS_LEN: usize = 19;

impl DateCache {
    /// As [`parse_datetime`].
    pub fn parse_naive(&mut self, text: &[u8]) -> Result<i64, &'static str> {
        self.fast(text).unwrap_or_else(|| parse_datetime(text))
    }

    /// As [`parse_timestamp_utc`].
    pub fn parse_utc(&mut self, text: &[u8]) -> Result<i64, &'static str> {
        let (local, offset_minutes) = split_offset(text)?;
        let micros = self.fast(local).unwrap_or_else(|| parse_datetime(local))?;
        if !(0..7_258_118_400_000_000).contains(&micros) {
            return Err("year out of range 1970-2200");
        }
        Ok(micros - offset_minutes * 60_000_000)
    }

    /// The fixed-position reading, or `None` to take the full parser.
    fn fast(&mut self, text: &[u8]) -> Option<Result<i64, &'static str>> {
        if let Some((last, micros)) = &self.last {
            if text == last {
                return Some(Ok(*micros));
            }
        }
        let digits = |range: std::ops::Range<usize>| text[range].iter().all(u8::is_ascii_digit);
        let fraction = text.get(19..).unwrap_or_default();
        let fixed = text.len() >= 19
            && (text[10] == b' ' || text[10] == b'T')
            && text[13] == b':'
            && text[16] == b':'
            && digits(11..13)
            && digits(14..16)
            && digits(17..19)
            && (fraction.is_empty()
                || (fraction.len() >= 2
                    && fraction.len() <= 10
                    && fraction[0] == b'.'
                    && fraction[1..].iter().all(u8::is_ascii_digit)));
        if !fixed {
            return None;
        }
        if !(self.valid && self.date == text[..10]) {
            let midnight = match parse_datetime(&[&text[..10], b" 00:00:00"].concat()) {
                Ok(midnight) => midnight,
                Err(why) => return Some(Err(why)),
            };
            self.date.copy_from_slice(&text[..10]);
            self.midnight = midnight;
            self.valid = true;
        }
        let two = |at: usize| ((text[at] - b'0') * 10 + (text[at + 1] - b'0')) as i64;
        let (hour, minute, second) = (two(11), two(14), two(17));
        if hour > 23 {
            return Some(Err("hour out of range 0-23"));
        }
        if minute > 59 {
            return Some(Err("minute out of range 0-59"));
        }
        if second > 59 {
            return Some(Err("second out of range 0-59"));
        }
        let mut micros = 0i64;
        for (i, digit) in fraction.iter().skip(1).take(6).enumerate() {
            micros += (digit - b'0') as i64 * 10i64.pow(5 - i as u32);
        }
        let micros = self.midnight + (hour * 3600 + minute * 60 + second) * 1_000_000 + micros;
        if let Ok(whole) = text.try_into() {
            self.last = Some((whole, micros));
        }
        Some(Ok(micros))
    }
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let mut value = 0u32;
        let start = self.pos;
        while self.pos < self.text.len() && self.pos - start < max && self.text[self.pos].is_ascii_digit() {
            value = value * 10 + (self.text[self.pos] - b'0') as u32;
            self.pos += 1;
        }
        let width = self.pos - start;
        (width >= min && !(self.pos < self.text.len() && self.text[self.pos].is_ascii_digit())).then_some(value)
    }

    fn separator(&mut self, allowed: &[u8]) -> Option<()> {
        let byte = *self.text.get(self.pos)?;
        allowed.contains(&byte).then(|| self.pos += 1)
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        days_from_civil(y, mo, d) as i64 * MICROS_PER_DAY + (h * 3600 + mi * 60 + s) * 1_000_000
    }

    #[test]
    fn accepts_the_usual_forms() {
        assert_eq!(parse_datetime(b"2015-11-01 00:00:00"), Ok(at(2015, 11, 1, 0, 0, 0)));
        assert_eq!(parse_datetime(b"2015-11-01 7:00:00"), Ok(at(2015, 11, 1, 7, 0, 0)));
        assert_eq!(parse_datetime(b"2015-11-01T23:59:59"), Ok(at(2015, 11, 1, 23, 59, 59)));
        assert_eq!(parse_datetime(b"2015/11/01 13:05"), Ok(at(2015, 11, 1, 13, 5, 0)));
        assert_eq!(parse_datetime(b"2016-02-29 01:00:00.5"), Ok(at(2016, 2, 29, 1, 0, 0) + 500_000));
    }

    #[test]
    fn time_stamps_with_and_without_offsets() {
        let base = at(2024, 5, 1, 12, 0, 0);
        assert_eq!(parse_timestamp_utc(b"2024-05-01T12:00:00"), Ok(base));
        assert_eq!(parse_timestamp_utc(b"2024-05-01T12:00:00Z"), Ok(base));
        assert_eq!(parse_timestamp_utc(b"2024-05-01T14:00:00+02:00"), Ok(base));
        assert_eq!(parse_timestamp_utc(b"2024-05-01T10:30:00-0130"), Ok(base));
        assert_eq!(parse_timestamp_utc(b"2024-05-01T12:00:00.250+00"), Ok(base + 250_000));
        assert!(parse_timestamp_utc(b"2024-05-01T12:00:00+25:00").is_err());
        assert!(parse_timestamp_utc(b"1960-05-01T12:00:00").is_err());
        assert!(parse_timestamp_utc(b"yesterday").is_err());
    }

    #[test]
    fn the_cache_agrees_with_the_full_parsers() {
        let mut cache = DateCache::default();
        let samples: [&[u8]; 12] = [
            b"2015-11-01 00:00:00",
            b"2015-11-01 23:59:59",
            b"2015-11-01T07:00:00.5",
            b"2015-11-01 24:00:00",
            b"2015-11-31 01:00:00",
            b"2015-11-01 1:00:00",
            b"2015-11-01 01:00",
            b"2015-11-01 01:00:00.1234567",
            b"2016-02-29T12:00:00.123456",
            b"2016-02-29T12:00:00.",
            b"2016-02-29T12:00:60",
            b"2016-02-29T12:0a:00",
        ];
        // Each twice in a row: the second reading is the remembered one.
        for text in samples.iter().flat_map(|text| [*text, *text]) {
            assert_eq!(cache.parse_naive(text), parse_datetime(text), "{}", String::from_utf8_lossy(text));
        }
        let stamps: [&[u8]; 4] = [
            b"2024-05-01T12:00:00.123456Z",
            b"2024-05-01T14:00:00+02:00",
            b"2024-05-01T12:00:00",
            b"1960-01-01T00:00:00Z",
        ];
        for text in stamps {
            assert_eq!(cache.parse_utc(text), parse_timestamp_utc(text), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn rejects_impossible_values() {
        assert_eq!(parse_datetime(b"2015-11-01 24:00:00"), Err("hour out of range 0-23"));
        assert_eq!(parse_datetime(b"2015-02-29 01:00:00"), Err("day out of range for its month"));
        assert_eq!(parse_datetime(b"2015-13-01 01:00:00"), Err("month out of range 1-12"));
        assert!(parse_datetime(b"2015-11-01").is_err());
        assert!(parse_datetime(b"yesterday").is_err());
        assert!(parse_datetime(b"2015-11-01 01:00:00+02:00").is_err());
        assert!(parse_datetime(b"2015-11-01 100:00:00").is_err());
        assert!(parse_datetime(b"").is_err());
    }
}
