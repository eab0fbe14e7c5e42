//! A scanner of flat JSON: white space, literals, plain strings and numbers, for the sensor
//! messages' fast path (anything it does not take is left to serde_json).

/// A position in a JSON text.
pub(super) struct Scanner<'a> {
    text: &'a [u8],
    /// Bytes read so far.
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub(super) fn new(text: &'a [u8]) -> Self {
        Scanner { text, pos: 0 }
    }

    /// The text not read yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        &self.text[self.pos..]
    }

    /// Steps over JSON white space.
    pub(super) fn skip_space(&mut self) {
        while self.text.get(self.pos).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The next byte after white space, stepped over.
    pub(super) fn next(&mut self) -> Option<u8> {
        self.skip_space();
        let byte = *self.text.get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    /// Steps over `byte` (after white space), or `None` if another byte comes.
    pub(super) fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// Steps over `literal` if the text continues with it.
    pub(super) fn literal<const N: usize>(&mut self, literal: &[u8; N]) -> bool {
        let matches = self.text.get(self.pos..self.pos + N).is_some_and(|next| next == literal);
        self.pos += if matches { N } else { 0 };
        matches
    }

    /// A string without escapes or control characters.
    pub(super) fn string(&mut self) -> Option<&'a [u8]> {
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
    /// pass that checks the grammar and gathers the digits together. (Reading it eight bytes at a
    /// time, without branches, was slower: here the digit counts are predicted, and the branches'
    /// speculation overlaps what the word arithmetic's chain of multiplications makes wait.)
    pub(super) fn number(&mut self) -> Option<f64> {
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
    // Under 10^15, so converted as an i64: one instruction, where a u64 takes a sequence of them.
    Some(mantissa as i64 as f64 / *POWERS_OF_TEN.get(decimals)?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
