//! Columnar parsing of one chunk of count lines into typed vectors, with rejects kept aside.

use super::canonical::read_canonical_line;
use super::columns::ColumnMap;
use super::fields::split_fields;
use traffic::datetime::DateCache;
use traffic::prefault::vec_with_capacity;

/// Parsed count rows, one vector per column, in input order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CountColumns {
    /// `datetime`: naive microseconds since 1970-01-01.
    pub datetime: Vec<i64>,
    /// `junction`: positive junction id.
    pub junction: Vec<i32>,
    /// `vehicles`: vehicles counted in the hour.
    pub vehicles: Vec<i32>,
    /// `id`: the record id.
    pub id: Vec<i64>,
}

impl CountColumns {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.datetime.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.datetime.is_empty()
    }

    #[inline]
    fn push(&mut self, datetime: i64, junction: i32, vehicles: i32, id: i64) {
        self.datetime.push(datetime);
        self.junction.push(junction);
        self.vehicles.push(vehicles);
        self.id.push(id);
    }

    /// Empty columns with room for `rows` rows, their memory mapped in ([`traffic::prefault`]).
    fn with_capacity(rows: usize) -> Self {
        CountColumns {
            datetime: vec_with_capacity(rows),
            junction: vec_with_capacity(rows),
            vehicles: vec_with_capacity(rows),
            id: vec_with_capacity(rows),
        }
    }
}

/// A line that failed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedLine {
    /// Byte offset of the line's first byte in its file.
    pub offset: u64,
    /// Line number counted from the chunk's first line (0-based); add the lines before the chunk.
    pub line_in_chunk: u64,
    /// The line as text (invalid UTF-8 replaced), without its line end.
    pub raw: String,
    /// Why it was rejected.
    pub reason: String,
}

/// The result of parsing a chunk.
#[derive(Debug, Default)]
pub struct ParsedChunk {
    /// The valid rows.
    pub rows: CountColumns,
    /// The rejected lines.
    pub rejected: Vec<RejectedLine>,
    /// Physical lines seen in the chunk, blank ones and the header included.
    pub lines: u64,
}

impl ParsedChunk {
    /// Rows read: every non-blank data line, valid or not.
    pub fn read(&self) -> u64 {
        (self.rows.len() + self.rejected.len()) as u64
    }
}

/// Parses `bytes`, whole lines starting at byte `base_offset` of their file.
///
/// `skip_first_line` drops a header. A UTF-8 byte order mark at offset 0 is ignored; so are
/// `\r` before line ends and blank lines.
pub fn parse_chunk(bytes: &[u8], base_offset: u64, columns: &ColumnMap, skip_first_line: bool) -> ParsedChunk {
    let mut out = ParsedChunk { rows: CountColumns::with_capacity(bytes.len() / 36 + 1), ..Default::default() };
    let mut pos = 0;
    if base_offset == 0 && bytes.starts_with(b"\xEF\xBB\xBF") {
        pos = 3;
    }
    let mut line_number = 0u64;
    let mut dates = DateCache::default();
    let canonical = *columns == ColumnMap::default();
    while pos < bytes.len() {
        if canonical && !(skip_first_line && line_number == 0) {
            if let Some(row) = read_canonical_line(bytes, pos, &mut dates) {
                out.rows.push(row.datetime, row.junction, row.vehicles, row.id);
                line_number += 1;
                pos = row.next;
                continue;
            }
        }
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let mut line = &bytes[pos..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let is_header = skip_first_line && line_number == 0;
        if !is_header && !line.iter().all(u8::is_ascii_whitespace) {
            if let Err(reason) = parse_line(line, columns, &mut out.rows, &mut dates) {
                out.rejected.push(RejectedLine {
                    offset: base_offset + pos as u64,
                    line_in_chunk: line_number,
                    raw: String::from_utf8_lossy(line).into_owned(),
                    reason,
                });
            }
        }
        line_number += 1;
        pos = end + 1;
    }
    out.lines = line_number;
    out
}

const MAX_FIELDS: usize = 8;

fn parse_line(line: &[u8], columns: &ColumnMap, rows: &mut CountColumns, dates: &mut DateCache) -> Result<(), String> {
    let mut fields: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut seen = 0;
    let count = split_fields(line, |f| {
        if seen < MAX_FIELDS {
            fields[seen] = f;
        }
        seen += 1;
    });
    if count != columns.width {
        return Err(format!("expected {} fields, found {count}", columns.width));
    }
    let datetime_text = trim(fields[columns.datetime]);
    let datetime = dates
        .parse_naive(datetime_text)
        .map_err(|why| format!("invalid datetime '{}': {why}", String::from_utf8_lossy(datetime_text)))?;
    let junction = parse_int(fields[columns.junction]).map_err(|t| format!("junction is not an integer: '{t}'"))?;
    if junction <= 0 || junction > i32::MAX as i64 {
        return Err(format!("junction must be a positive 32-bit integer, got {junction}"));
    }
    let vehicles = parse_int(fields[columns.vehicles]).map_err(|t| format!("vehicles is not an integer: '{t}'"))?;
    if vehicles < 0 || vehicles > i32::MAX as i64 {
        return Err(format!("vehicles must be a non-negative 32-bit integer, got {vehicles}"));
    }
    let id = parse_int(fields[columns.id]).map_err(|t| format!("id is not an integer: '{t}'"))?;
    rows.push(datetime, junction as i32, vehicles as i32, id);
    Ok(())
}

fn trim(field: &[u8]) -> &[u8] {
    let start = field.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(field.len());
    let end = field.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &field[start..end]
}

/// Parses an optionally signed decimal integer that fits in an `i64`; on failure returns the text.
fn parse_int(field: &[u8]) -> Result<i64, String> {
    let text =
        if field.first().is_some_and(u8::is_ascii_whitespace) || field.last().is_some_and(u8::is_ascii_whitespace) {
            trim(field)
        } else {
            field
        };
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let bad = || String::from_utf8_lossy(text).into_owned();
    if digits.is_empty() || digits.len() > 18 {
        return Err(bad());
    }
    let mut value: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(bad());
        }
        value = value * 10 + digit as i64;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use traffic::calendar::{days_from_civil, MICROS_PER_DAY, MICROS_PER_HOUR};

    #[test]
    fn parses_messy_exports() {
        let text = b"\xEF\xBB\xBFDateTime,Junction,Vehicles,ID\r\n2015-11-01 00:00:00,1,15,20151101001\r\n\"2015-11-01 1:00:00\",\"2\",7,20151101012\n2015-11-01T02:00:00,1,0,20151101021\n\n  \r\n";
        let parsed = parse_chunk(text, 0, &ColumnMap::default(), true);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let day = days_from_civil(2015, 11, 1) as i64 * MICROS_PER_DAY;
        assert_eq!(parsed.rows.datetime, vec![day, day + MICROS_PER_HOUR, day + 2 * MICROS_PER_HOUR]);
        assert_eq!(parsed.rows.junction, vec![1, 2, 1]);
        assert_eq!(parsed.rows.vehicles, vec![15, 7, 0]);
        assert_eq!(parsed.rows.id, vec![20151101001, 20151101012, 20151101021]);
        assert_eq!(parsed.read(), 3);
    }

    #[test]
    fn rejects_each_bad_row_with_its_reason() {
        let text = b"2015-11-31 00:00:00,1,15,1\n2015-11-01 25:00:00,1,15,2\n2015-11-01 00:00:00,1,-4,3\n2015-11-01 00:00:00,1,4\n2015-11-01 00:00:00,x,4,5\n2015-11-01 00:00:00,0,4,6\n2015-11-01 00:00:00,1,4,7.5\n2015-11-01 00:00:00,1,4,8\n";
        let parsed = parse_chunk(text, 100, &ColumnMap::default(), false);
        assert_eq!(parsed.rows.id, vec![8]);
        let reasons: Vec<&str> = parsed.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("day out of range"), "{reasons:?}");
        assert!(reasons[1].contains("hour out of range"));
        assert!(reasons[2].contains("non-negative"));
        assert!(reasons[3].contains("expected 4 fields, found 3"));
        assert!(reasons[4].contains("junction is not an integer"));
        assert!(reasons[5].contains("positive"));
        assert!(reasons[6].contains("id is not an integer"));
        assert_eq!(parsed.rejected[1].offset, 100 + 27);
        assert_eq!(parsed.rejected[1].line_in_chunk, 1);
        assert_eq!(parsed.read(), 8);
    }

    #[test]
    fn the_fast_path_reads_what_the_general_parser_reads() {
        let lines = [
            "2015-11-01 00:00:00,1,15,20151101001",
            "2016-02-29 23:00:00,999999999,0,999999999999999999",
            "2015-11-01 00:00:00,007,0015,0",
            "2015-11-01 00:00:00,+1,15,1",
            "2015-11-01 00:00:00,1,15,1.0",
            "2015-11-01 24:00:00,1,15,1",
            "2015-02-29 00:00:00,1,15,1",
            "2015-11-01T00:00:00,1,15,1",
            "2015-11-01 00:00:00,1,2147483648,1",
        ];
        for line in lines {
            let mut general = CountColumns::default();
            let accepted = parse_line(line.as_bytes(), &ColumnMap::default(), &mut general, &mut DateCache::default());
            let Some(row) = read_canonical_line(line.as_bytes(), 0, &mut DateCache::default()) else {
                continue;
            };
            assert!(accepted.is_ok(), "{line}: the fast path accepted a line the general parser rejects");
            let fast = CountColumns {
                datetime: vec![row.datetime],
                junction: vec![row.junction],
                vehicles: vec![row.vehicles],
                id: vec![row.id],
            };
            assert_eq!(fast, general, "{line}");
            assert_eq!(row.next, line.len());
        }
    }

    #[test]
    fn invalid_utf8_is_rejected_not_fatal() {
        let parsed = parse_chunk(b"2015-11-01 00:00:00,\xff,1,1\n", 0, &ColumnMap::default(), false);
        assert_eq!(parsed.rejected.len(), 1);
        assert!(parsed.rejected[0].raw.contains('\u{FFFD}'));
    }
}
