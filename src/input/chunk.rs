//! Cutting files into byte ranges and reading a range back as whole lines.

use std::ops::Range;

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Splits a file of `size` bytes into about equal ranges of at most `chunk_size` bytes.
///
/// The ranges depend only on the two numbers, so a resumed run cuts a file exactly as before.
pub fn split_ranges(size: u64, chunk_size: u64) -> Vec<Range<u64>> {
    let count = size.div_ceil(chunk_size.max(1)).max(1);
    (0..count).map(|i| (size * i / count)..(size * (i + 1) / count)).collect()
}

/// Reads byte ranges of one input file: mapped from the file system for local files (no
/// zero-filled buffer, no copy), through the object store otherwise.
pub enum RangeReader {
    /// A local file.
    Local(std::path::PathBuf),
    /// An object in a store.
    Store(std::sync::Arc<dyn ObjectStore>, Path),
}

impl RangeReader {
    /// The bytes `range` of the file.
    pub fn read(&self, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        match self {
            RangeReader::Local(path) => {
                use std::io::{Read, Seek, SeekFrom};
                let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
                let mapped = super::mapped::map_range(&file, range.clone()).with_context(|| {
                    format!("cannot read bytes {}..{} of {}", range.start, range.end, path.display())
                })?;
                if let Some(bytes) = mapped {
                    return Ok(bytes);
                }
                file.seek(SeekFrom::Start(range.start))?;
                let mut buffer = Vec::with_capacity((range.end - range.start) as usize);
                file.take(range.end - range.start)
                    .read_to_end(&mut buffer)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Ok(Bytes::from(buffer))
            }
            RangeReader::Store(store, path) => crate::runtime::block_on(store.get_range(path, range.clone()))
                .with_context(|| format!("cannot read bytes {}..{} of {path}", range.start, range.end)),
        }
    }
}

/// A chunk's lines: the bytes of every line that starts inside the range, and where they start.
pub struct ChunkBytes {
    /// Whole lines, each ending in `\n` except perhaps the file's last.
    pub bytes: Bytes,
    /// Offset of `bytes[0]` in the file.
    pub offset: u64,
}

const TAIL: u64 = 64 * 1024;

/// Reads the lines owned by `range` of a `size`-byte file: those whose first byte lies in it.
///
/// A line that crosses the range's end is read whole; a line that began before the range is
/// left to the previous chunk. Every line of the file thus belongs to exactly one chunk.
pub fn read_lines(reader: &RangeReader, range: Range<u64>, size: u64) -> Result<ChunkBytes> {
    // Start one byte early: the chunk owns a line at `range.start` only if a newline precedes it.
    let read_start = range.start.saturating_sub(1);
    let mut read_end = (range.end + TAIL).min(size);
    let mut buffer = reader.read(read_start..read_end)?;
    // Rarely a line runs past what was read: read on and join.
    let extend = |buffer: &mut Bytes, read_end: &mut u64, at_least: u64| -> Result<()> {
        let next = (*read_end + at_least.max(TAIL)).min(size);
        let more = reader.read(*read_end..next)?;
        let mut joined = BytesMut::with_capacity(buffer.len() + more.len());
        joined.extend_from_slice(buffer);
        joined.extend_from_slice(&more);
        *buffer = joined.freeze();
        *read_end = next;
        Ok(())
    };
    let first = if range.start == 0 {
        0
    } else {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &buffer) {
                break i + 1;
            }
            if read_end == size {
                break buffer.len();
            }
            extend(&mut buffer, &mut read_end, TAIL)?;
        }
    };
    let first_line_start = read_start + first as u64;
    if first_line_start >= range.end {
        return Ok(ChunkBytes { bytes: Bytes::new(), offset: first_line_start });
    }
    // The last owned line is the one holding byte `range.end - 1`; it ends at the next newline.
    let last_byte = (range.end - 1 - read_start) as usize;
    let end = loop {
        if let Some(i) = memchr::memchr(b'\n', &buffer[last_byte.min(buffer.len())..]) {
            break last_byte + i + 1;
        }
        if read_end == size {
            break buffer.len();
        }
        let grown = read_end - read_start;
        extend(&mut buffer, &mut read_end, grown)?;
    };
    Ok(ChunkBytes { bytes: buffer.slice(first..end), offset: first_line_start })
}

/// Counts the lines that start before `offset` (so the 1-based number of the line at `offset`
/// is this plus one). Reads the prefix in blocks; used only when a chunk has rejects to report.
pub fn lines_before(reader: &RangeReader, offset: u64) -> Result<u64> {
    const BLOCK: u64 = 8 * 1024 * 1024;
    let mut count = 0;
    let mut start = 0;
    while start < offset {
        let end = (start + BLOCK).min(offset);
        count += memchr::memchr_iter(b'\n', &reader.read(start..end)?).count() as u64;
        start = end;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::PutPayload;

    fn store_with(text: &'static [u8]) -> RangeReader {
        let store = InMemory::new();
        let path = Path::from("f.csv");
        crate::runtime::block_on(store.put(&path, PutPayload::from_static(text))).unwrap();
        RangeReader::Store(std::sync::Arc::new(store), path)
    }

    #[test]
    fn ranges_cover_the_file() {
        assert_eq!(split_ranges(10, 4), vec![0..3, 3..6, 6..10]);
        assert_eq!(split_ranges(0, 4), vec![0..0]);
        assert_eq!(split_ranges(5, 100), vec![0..5]);
    }

    #[test]
    fn every_line_lands_in_exactly_one_chunk() {
        let text: &'static [u8] = b"aaa\nbb\n\ncccccc\nd\neeeeeeeee\nf";
        let reader = store_with(text);
        for chunk_size in 1..=text.len() as u64 + 1 {
            let mut joined = Vec::new();
            let mut expected_offset = 0;
            for range in split_ranges(text.len() as u64, chunk_size) {
                let chunk = read_lines(&reader, range.clone(), text.len() as u64).unwrap();
                if !chunk.bytes.is_empty() {
                    assert_eq!(chunk.offset, expected_offset, "chunk size {chunk_size}");
                    assert!(chunk.offset >= range.start && chunk.offset < range.end);
                }
                expected_offset += chunk.bytes.len() as u64;
                joined.extend_from_slice(&chunk.bytes);
            }
            assert_eq!(joined, text, "chunk size {chunk_size}");
        }
    }

    #[test]
    fn counts_lines_before_an_offset() {
        let reader = store_with(b"a\nb\nc\n");
        assert_eq!(lines_before(&reader, 0).unwrap(), 0);
        assert_eq!(lines_before(&reader, 4).unwrap(), 2);
        let local = std::env::temp_dir().join(format!("traffic-lines-{}", std::process::id()));
        std::fs::write(&local, "a\nb\nc\n").unwrap();
        let reader = RangeReader::Local(local.clone());
        assert_eq!(lines_before(&reader, 4).unwrap(), 2);
        assert_eq!(&read_lines(&reader, 1..3, 6).unwrap().bytes[..], b"b\n");
        std::fs::remove_file(local).unwrap();
    }
}
