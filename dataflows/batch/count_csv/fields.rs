//! Splitting one CSV line into fields, with RFC 4180 quotes, without allocating.

/// Calls `field` with each field of `line` (quotes removed; `""` inside quotes is kept as is).
///
/// Returns the number of fields. A line is one physical line: a quoted field cannot span lines,
/// which keeps a stray quote from swallowing the good rows after it.
pub fn split_fields<'a>(line: &'a [u8], mut field: impl FnMut(&'a [u8])) -> usize {
    let mut count = 0;
    let mut start = 0;
    loop {
        let rest = &line[start..];
        let trimmed_at = rest.iter().position(|b| *b != b' ' && *b != b'\t').unwrap_or(rest.len());
        if rest.get(trimmed_at) == Some(&b'"') {
            let open = start + trimmed_at + 1;
            let mut close = open;
            // Find the closing quote, stepping over doubled quotes.
            loop {
                match memchr::memchr(b'"', &line[close..]) {
                    Some(i) if line.get(close + i + 1) == Some(&b'"') => close += i + 2,
                    Some(i) => {
                        close += i;
                        break;
                    }
                    None => {
                        close = line.len();
                        break;
                    }
                }
            }
            field(&line[open..close]);
            count += 1;
            match memchr::memchr(b',', &line[close.min(line.len())..]) {
                Some(i) => start = close + i + 1,
                None => return count,
            }
        } else {
            match memchr::memchr(b',', rest) {
                Some(i) => {
                    field(&rest[..i]);
                    count += 1;
                    start += i + 1;
                }
                None => {
                    field(rest);
                    return count + 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let n = split_fields(line.as_bytes(), |f| out.push(String::from_utf8_lossy(f).into_owned()));
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn splits_plain_and_quoted_fields() {
        assert_eq!(fields("a,b,,d"), vec!["a", "b", "", "d"]);
        assert_eq!(fields("\"2015-11-01 00:00:00\",1, \"15\",x"), vec!["2015-11-01 00:00:00", "1", "15", "x"]);
        assert_eq!(fields("\"a,b\",c"), vec!["a,b", "c"]);
        assert_eq!(fields("\"a\"\"b\",c"), vec!["a\"\"b", "c"]);
        assert_eq!(fields("\"unterminated,c"), vec!["unterminated,c"]);
        assert_eq!(fields(""), vec![""]);
    }
}
