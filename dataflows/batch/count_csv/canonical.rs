//! The fast path for count lines in the exporters' own form: `YYYY-MM-DD HH:MM:SS,J,V,ID`.
//!
//! Nearly every line of a real export has this form: no quotes, no spaces, a 19-byte date-time
//! and three unsigned integers. Such a line is read in one forward pass, finding its fields,
//! their values and its end together, instead of finding the line end, then each comma, then
//! parsing each field. A line that is not exactly in this form, or whose values the general
//! parser would reject, is left to the general parser, so results and errors do not change.

use traffic::datetime::{DateCache, SECONDS_LEN};

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

/// Reads the line starting at `pos` of `bytes` if it is a valid row in the canonical form (the
/// columns in the seed's order); `None` sends it to the general parser.
#[inline]
pub fn read_canonical_line(bytes: &[u8], pos: usize, dates: &mut DateCache) -> Option<CanonicalRow> {
    let text = bytes.get(pos..pos + SECONDS_LEN)?;
    if bytes.get(pos + SECONDS_LEN) != Some(&b',') {
        return None;
    }
    let datetime = dates.parse_naive(text).ok()?;
    let mut at = pos + SECONDS_LEN + 1;
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
    // Eight digits at a time while they last (ids are a dozen digits long). Wrapping: a run of
    // more than `max` digits is refused below, whatever its value.
    while let Some(eight) = bytes.get(*at..*at + 8) {
        let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        if !eight_digits(word) {
            break;
        }
        value = value.wrapping_mul(100_000_000).wrapping_add(eight_digits_value(word));
        *at += 8;
    }
    while let Some(&byte) = bytes.get(*at) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(digit as u64);
        *at += 1;
    }
    let count = *at - start;
    (count >= 1 && count <= max).then_some(value)
}

const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Whether all eight bytes of `word` are ASCII digits.
#[inline]
fn eight_digits(word: u64) -> bool {
    // Each byte is 0x30-0x3F, and adding 6 keeps it below 0x40 (so it is at most 0x39).
    (word & !LOW_NIBBLES) == ZEROS && (word.wrapping_add(0x0606_0606_0606_0606) & !LOW_NIBBLES) == ZEROS
}

/// The value of eight ASCII digits, the first in the lowest byte: pairs, then fours, then all.
#[inline]
fn eight_digits_value(word: u64) -> u64 {
    let word = word - ZEROS;
    let pairs = (word * 10 + (word >> 8)) & 0x00FF_00FF_00FF_00FF;
    let fours = (pairs * 100 + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
    (fours * 10_000 + (fours >> 32)) & 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;
    use traffic::calendar::{days_from_civil, MICROS_PER_DAY, MICROS_PER_HOUR};

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
    fn numbers_of_any_length_read_as_the_standard_parse_does() {
        let mut numbers: Vec<u64> =
            vec![0, 7, 12_345_678, 99_999_999, 100_000_000, 20_151_101_033, 999_999_999_999_999_999];
        numbers.extend((1..=18).map(|width| 10u64.pow(width - 1) + 3));
        for number in numbers {
            for end in ["", ",", "\n", "x", "/", ":"] {
                let text = format!("{number}{end}");
                let mut at = 0;
                assert_eq!(digits(text.as_bytes(), &mut at, 18), Some(number), "{text:?}");
                assert_eq!(at, number.to_string().len());
            }
        }
        let padded = "0000000000000042,";
        assert_eq!(digits(padded.as_bytes(), &mut 0, 18), Some(42));
        assert_eq!(digits(b"1234567890123456789", &mut 0, 18), None, "too many digits");
        assert_eq!(digits(b"12345678/", &mut 0, 18), Some(12_345_678));
        assert_eq!(digits(b"1234567:9", &mut 0, 18), Some(1_234_567));
        assert_eq!(digits(b",1", &mut 0, 18), None);
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
