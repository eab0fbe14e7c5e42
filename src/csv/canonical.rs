//! The fast path for count lines in the exporters' own form: `YYYY-MM-DD HH:MM:SS,J,V,ID`.
//!
//! Nearly every line of a real export has this form: no quotes, no spaces, a 19-byte date-time
//! and three unsigned integers. Such a line is read in one forward pass, finding its fields,
//! their values and its end together, instead of finding the line end, then each comma, then
//! parsing each field. A line that is not exactly in this form, or whose values the general
//! parser would reject, is left to the general parser, so results and errors do not change.

use crate::datetime::DateCache;

/// One row read by the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonicalRow {
    /// Naive microseconds since 1970-01-01.
    pub datetime: i64,
    /// Positive junction id.
    pub junction: i32,
    /// Non-negative vehicle count.
    pub vehicles: i32,
    /// Record id.
    pub id: i64,
    /// Where the next line starts (past this line's `\n`, or the end of the bytes).
    pub next: usize,
}

/// Length of `YYYY-MM-DD HH:MM:SS`.
const DATETIME_LEN: usize = 19;

/// Reads the line starting at `pos` of `bytes` if it is a valid row in the canonical form (the
/// columns in the seed's order); `None` sends it to the general parser.
#[inline]
pub fn read_canonical_line(bytes: &[u8], pos: usize, dates: &mut DateCache) -> Option<CanonicalRow> {
    let text = bytes.get(pos..pos + DATETIME_LEN)?;
    if bytes.get(pos + DATETIME_LEN) != Some(&b',') {
        return None;
    }
    let datetime = dates.parse_naive(text).ok()?;
    let mut at = pos + DATETIME_LEN + 1;
    // Nine digits at most: always within an i32, so the range checks are the general parser's.
    let junction = digits(bytes, &mut at, 9)?;
    if junction == 0 || bytes.get(at) != Some(&b',') {
        return None;
    }
    at += 1;
    let vehicles = digits(bytes, &mut at, 9)?;
    if bytes.get(at) != Some(&b',') {
        return None;
    }
    at += 1;
    let id = digits(bytes, &mut at, 18)?;
    let next = match bytes.get(at) {
        None => at,
        Some(b'\n') => at + 1,
        Some(b'\r') => match bytes.get(at + 1) {
            None => at + 1,
            Some(b'\n') => at + 2,
            Some(_) => return None,
        },
        Some(_) => return None,
    };
    Some(CanonicalRow { datetime, junction: junction as i32, vehicles: vehicles as i32, id: id as i64, next })
}

/// The unsigned decimal number at `*at`, of one to `max` digits; moves `*at` past it.
#[inline]
fn digits(bytes: &[u8], at: &mut usize, max: usize) -> Option<u64> {
    let start = *at;
    let mut value = 0u64;
    while let Some(&byte) = bytes.get(*at) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value * 10 + digit as u64;
        *at += 1;
    }
    let count = *at - start;
    (count >= 1 && count <= max).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{days_from_civil, MICROS_PER_DAY, MICROS_PER_HOUR};

    fn read(text: &str) -> Option<CanonicalRow> {
        read_canonical_line(text.as_bytes(), 0, &mut DateCache::default())
    }

    #[test]
    fn reads_a_line_in_the_exporters_form_with_any_line_end() {
        let day = days_from_civil(2015, 11, 1) as i64 * MICROS_PER_DAY;
        for (text, next) in
            [("2015-11-01 03:00:00,12,7,20151101033\nX", 37), ("2015-11-01 03:00:00,12,7,20151101033\r\n", 38)]
        {
            let row = read(text).expect("canonical");
            assert_eq!(
                row,
                CanonicalRow { datetime: day + 3 * MICROS_PER_HOUR, junction: 12, vehicles: 7, id: 20151101033, next }
            );
        }
        assert_eq!(read("2015-11-01 03:00:00,1,0,5").map(|r| r.next), Some(25), "the last line needs no line end");
        assert_eq!(read("2015-11-01 03:00:00,1,0,5\r").map(|r| r.next), Some(26));
    }

    #[test]
    fn anything_else_goes_to_the_general_parser() {
        for text in [
            "\"2015-11-01 03:00:00\",1,2,3",
            "2015-11-01 3:00:00,1,2,3",
            "2015-11-01 03:00:00.5,1,2,3",
            "2015-11-31 03:00:00,1,2,3",
            "2015-11-01 03:00:00, 1,2,3",
            "2015-11-01 03:00:00,0,2,3",
            "2015-11-01 03:00:00,1,-2,3",
            "2015-11-01 03:00:00,1,2",
            "2015-11-01 03:00:00,1,2,3,4",
            "2015-11-01 03:00:00,1,2,3 ",
            "2015-11-01 03:00:00,1,2,3\rx",
            "2015-11-01 03:00:00,1234567890,2,3",
            "2015-11-01 03:00:00,1,2,1234567890123456789",
            "2015-11-01 03:00:00,1,,3",
            "",
            "2015-11-01",
        ] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }
}
