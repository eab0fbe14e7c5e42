//! Record batches (message format v2) of a fetch response: their headers scanned, their records
//! decompressed, aborted transactions and control markers set aside, records read in place.

use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;

use anyhow::{bail, Context, Result};

/// Bytes of a batch header, up to the first record.
const HEADER: usize = 61;
/// Bytes of the base offset and length fields, which the length does not count.
const PREFIX: usize = 12;

/// One record batch of a partition, with its records where a reader finds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The partition.
    pub partition: i32,
    /// The first record's offset.
    pub base_offset: i64,
    /// The offset after the batch's last one (records may be missing below it, after compaction).
    pub next_offset: i64,
    /// Which buffer of the fetch holds the records.
    pub buffer: usize,
    /// Where the records lie in that buffer.
    pub records: Range<usize>,
    /// Whether the records are for the reader: false for control markers and aborted transactions.
    pub deliver: bool,
}

/// A batch's header, read from the fetch response before anything is decompressed.
#[derive(Clone, Copy, Debug)]
pub struct BatchHeader {
    base_offset: i64,
    next_offset: i64,
    compression: u8,
    transactional: bool,
    control: bool,
    producer_id: i64,
    /// Where the whole batch lies in the response.
    start: usize,
    end: usize,
}

/// Reads the headers of the complete batches in `records` of `response`; a batch cut off at the
/// end of the response (the broker fills up to a size) is left for the next fetch.
pub fn scan(response: &[u8], records: Range<usize>) -> Result<Vec<BatchHeader>> {
    let mut headers = Vec::new();
    let mut at = records.start;
    while at + PREFIX <= records.end {
        let base_offset = be_i64(response, at);
        let length = be_i32(response, at + 8);
        let end = at + PREFIX + length.max(0) as usize;
        if end > records.end {
            break;
        }
        if length < (HEADER - PREFIX) as i32 {
            bail!("a record batch at offset {base_offset} is {length} bytes long, shorter than its header");
        }
        let magic = response[at + 16];
        if magic != 2 {
            bail!(
                "the batch at offset {base_offset} is in message format v{magic} (before Kafka 0.11), which the \
                 fetching reader does not read; set TRAFFIC_KAFKA_READER=librdkafka"
            );
        }
        let attributes = be_i16(response, at + 21);
        let last_offset_delta = be_i32(response, at + 23);
        headers.push(BatchHeader {
            base_offset,
            next_offset: base_offset + last_offset_delta as i64 + 1,
            compression: (attributes & 7) as u8,
            transactional: attributes & 0x10 != 0,
            control: attributes & 0x20 != 0,
            producer_id: be_i64(response, at + 43),
            start: at,
            end,
        });
        at = end;
    }
    Ok(headers)
}

/// Which batches of a partition a read-committed reader skips: those of aborted transactions,
/// given the response's list of them (producer id, first offset), and control markers.
pub struct AbortedTransactions {
    pending: Vec<(i64, i64)>,
    open: HashSet<i64>,
}

impl AbortedTransactions {
    /// The filter for one partition's response.
    pub fn new(mut aborted: Vec<(i64, i64)>) -> AbortedTransactions {
        aborted.sort_unstable_by_key(|&(_, first)| std::cmp::Reverse(first));
        AbortedTransactions { pending: aborted, open: HashSet::new() }
    }

    /// Whether `header`'s records are for the reader; `marker` is the control record's type (0:
    /// abort, 1: commit) when the batch is a control batch.
    fn deliver(&mut self, header: &BatchHeader, marker: Option<i16>) -> bool {
        while self.pending.last().is_some_and(|&(_, first)| first < header.next_offset) {
            let (producer, _) = self.pending.pop().expect("an aborted transaction");
            self.open.insert(producer);
        }
        if header.control {
            if marker == Some(0) {
                self.open.remove(&header.producer_id);
            }
            return false;
        }
        !(header.transactional && self.open.contains(&header.producer_id))
    }
}

/// Turns the scanned batches of one partition into [`Batch`]es: records of compressed batches are
/// decompressed into new buffers (pushed onto `buffers`, whose first is the response), batches
/// wholly below `position` are dropped.
pub fn unpack(
    partition: i32,
    headers: &[BatchHeader],
    position: i64,
    transactions: &mut AbortedTransactions,
    buffers: &mut Vec<Vec<u8>>,
    batches: &mut Vec<Batch>,
) -> Result<()> {
    for header in headers.iter().filter(|h| h.next_offset > position) {
        let compressed = header.start + HEADER..header.end;
        let (buffer, records) = if header.compression == 0 {
            (0, compressed)
        } else {
            let plain = decompress(header.compression, &buffers[0][compressed])
                .with_context(|| format!("cannot decompress the batch at offset {}", header.base_offset))?;
            buffers.push(plain);
            (buffers.len() - 1, 0..buffers[buffers.len() - 1].len())
        };
        let marker = if header.control { control_type(&buffers[buffer][records.clone()]) } else { None };
        let deliver = transactions.deliver(header, marker);
        batches.push(Batch {
            partition,
            base_offset: header.base_offset,
            next_offset: header.next_offset,
            buffer,
            records,
            deliver,
        });
    }
    Ok(())
}

/// The offset after the last complete batch of `headers`, where the next fetch starts.
pub fn next_position(headers: &[BatchHeader], position: i64) -> i64 {
    headers.last().map_or(position, |h| h.next_offset.max(position))
}

fn decompress(codec: u8, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut plain = Vec::with_capacity(bytes.len() * 4);
    match codec {
        1 => {
            flate2::read::GzDecoder::new(bytes).read_to_end(&mut plain)?;
        }
        2 => snappy(bytes, &mut plain)?,
        3 => {
            lz4_flex::frame::FrameDecoder::new(bytes).read_to_end(&mut plain)?;
        }
        4 => {
            zstd::stream::read::Decoder::new(bytes)?.read_to_end(&mut plain)?;
        }
        other => bail!("unknown compression codec {other}"),
    }
    Ok(plain)
}

/// Snappy, raw or in the framing of the Java clients (xerial: a magic header, then blocks each
/// with a four-byte length).
fn snappy(bytes: &[u8], plain: &mut Vec<u8>) -> Result<()> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    let mut decoder = snap::raw::Decoder::new();
    if !bytes.starts_with(XERIAL) {
        plain.extend_from_slice(&decoder.decompress_vec(bytes)?);
        return Ok(());
    }
    let mut at = XERIAL.len() + 8;
    while at + 4 <= bytes.len() {
        let length = be_i32(bytes, at).max(0) as usize;
        let Some(block) = bytes.get(at + 4..at + 4 + length) else { bail!("a snappy block runs past its batch") };
        plain.extend_from_slice(&decoder.decompress_vec(block)?);
        at += 4 + length;
    }
    Ok(())
}

/// The type of a control batch's marker (0: abort, 1: commit), read from its first record's key.
fn control_type(records: &[u8]) -> Option<i16> {
    // The key: a version (two bytes), then the type.
    let key = &records[next_record(records, &mut 0)?.key?];
    Some(i16::from_be_bytes(key.get(2..4)?.try_into().ok()?))
}

/// A record read from a batch: its offset delta and where its key and value lie.
pub struct RecordAt {
    /// The record's offset minus its batch's base offset.
    pub offset_delta: i64,
    /// Where the key lies in the records' buffer (`None`: a null key).
    pub key: Option<Range<usize>>,
    /// Where the value lies in the records' buffer.
    pub value: Option<Range<usize>>,
}

/// Reads the record at `*at` of `records` and moves `*at` past it; `None` when the records are
/// malformed.
#[inline]
pub fn next_record(records: &[u8], at: &mut usize) -> Option<RecordAt> {
    let length = varint(records, at)?;
    let end = *at + usize::try_from(length).ok()?;
    if end > records.len() {
        return None;
    }
    *at += 1; // attributes
    varint(records, at)?; // timestamp delta
    let offset_delta = varint(records, at)?;
    let key = field(records, at, end)?;
    let value = field(records, at, end)?;
    *at = end; // headers are not read
    Some(RecordAt { offset_delta, key, value })
}

/// A key or value at `*at` (a varint length, -1 for null, then the bytes), which must end by
/// `end`; moves `*at` past it.
#[inline]
fn field(records: &[u8], at: &mut usize, end: usize) -> Option<Option<Range<usize>>> {
    let length = varint(records, at)?;
    if length < 0 {
        return Some(None);
    }
    let range = *at..at.checked_add(usize::try_from(length).ok()?)?;
    if range.end > end {
        return None;
    }
    *at = range.end;
    Some(Some(range))
}

/// A zig-zag variable-length integer.
#[inline]
fn varint(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let mut raw = 0u64;
    let mut shift = 0;
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        raw |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

fn be_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(bytes[at..at + 2].try_into().expect("two bytes"))
}

fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, value: i64) {
        let mut raw = ((value << 1) ^ (value >> 63)) as u64;
        while raw >= 0x80 {
            out.push((raw as u8) | 0x80);
            raw >>= 7;
        }
        out.push(raw as u8);
    }

    /// A record of a batch, as a producer writes it.
    pub fn record(offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![0u8];
        put_varint(&mut body, 0);
        put_varint(&mut body, offset_delta);
        for part in [key, value] {
            match part {
                Some(bytes) => {
                    put_varint(&mut body, bytes.len() as i64);
                    body.extend_from_slice(bytes);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, 0);
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        out
    }

    /// `records` compressed as the Java producer does with `codec` (5: snappy in xerial framing,
    /// the Java client's, as 2 on the wire).
    fn compress(codec: u8, records: Vec<u8>) -> Vec<u8> {
        use std::io::Write;
        match codec {
            0 => records,
            1 => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&records).unwrap();
                encoder.finish().unwrap()
            }
            2 => snap::raw::Encoder::new().compress_vec(&records).unwrap(),
            3 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(&records).unwrap();
                encoder.finish().unwrap()
            }
            4 => zstd::stream::encode_all(&records[..], 1).unwrap(),
            5 => {
                let mut framed = b"\x82SNAPPY\x00".to_vec();
                framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
                // Two blocks, as a stream of several writes makes.
                for half in records.chunks(records.len().div_ceil(2)) {
                    let block = snap::raw::Encoder::new().compress_vec(half).unwrap();
                    framed.extend_from_slice(&(block.len() as i32).to_be_bytes());
                    framed.extend_from_slice(&block);
                }
                framed
            }
            other => panic!("no codec {other}"),
        }
    }

    /// A batch of `values` at `base_offset` (offset deltas 0, 1, ...), compressed with `codec`
    /// (see `compress`).
    pub fn batch(base_offset: i64, values: &[&[u8]], codec: u8, producer: i64, flags: i16) -> Vec<u8> {
        let mut records: Vec<u8> =
            values.iter().enumerate().flat_map(|(i, v)| record(i as i64, None, Some(v))).collect();
        records = compress(codec, records);
        let mut out = Vec::new();
        out.extend_from_slice(&base_offset.to_be_bytes());
        out.extend_from_slice(&((HEADER - PREFIX + records.len()) as i32).to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.push(2);
        out.extend_from_slice(&0u32.to_be_bytes());
        let wire_codec = if codec == 5 { 2 } else { codec as i16 }; // xerial framing is snappy on the wire
        out.extend_from_slice(&(wire_codec | flags).to_be_bytes());
        out.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes());
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&producer.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&(values.len() as i32).to_be_bytes());
        out.extend_from_slice(&records);
        out
    }

    /// A control batch at `offset` with an abort (0) or commit (1) marker.
    fn marker(offset: i64, producer: i64, kind: i16) -> Vec<u8> {
        let key = [0u8, 0, (kind >> 8) as u8, kind as u8];
        let mut out = batch(offset, &[b"x"], 0, producer, 0x30);
        let body = record(0, Some(&key), Some(&[0, 0, 0, 0, 0, 0]));
        out.truncate(HEADER);
        out[8..12].copy_from_slice(&((HEADER - PREFIX + body.len()) as i32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn values(buffers: &[Vec<u8>], batch: &Batch) -> Vec<(i64, Vec<u8>)> {
        let records = &buffers[batch.buffer][batch.records.clone()];
        let mut at = 0;
        let mut out = Vec::new();
        while at < records.len() {
            let record = next_record(records, &mut at).expect("a well-formed record");
            out.push((batch.base_offset + record.offset_delta, records[record.value.unwrap()].to_vec()));
        }
        out
    }

    fn unpack_all(response: Vec<u8>, aborted: Vec<(i64, i64)>, position: i64) -> (Vec<Vec<u8>>, Vec<Batch>) {
        let headers = scan(&response, 0..response.len()).unwrap();
        let mut buffers = vec![response];
        let mut batches = Vec::new();
        let mut transactions = AbortedTransactions::new(aborted);
        unpack(0, &headers, position, &mut transactions, &mut buffers, &mut batches).unwrap();
        (buffers, batches)
    }

    #[test]
    fn plain_and_lz4_batches_read_back_their_records_at_their_offsets() {
        let mut response = batch(10, &[b"a", b"bb"], 0, -1, 0);
        response.extend(batch(12, &[b"ccc"], 3, -1, 0));
        let (buffers, batches) = unpack_all(response, vec![], 0);
        assert_eq!(batches.len(), 2);
        assert_eq!(values(&buffers, &batches[0]), vec![(10, b"a".to_vec()), (11, b"bb".to_vec())]);
        assert_eq!(values(&buffers, &batches[1]), vec![(12, b"ccc".to_vec())]);
        assert_eq!(batches[1].buffer, 1, "the lz4 batch is decompressed into a buffer of its own");
        assert_eq!(next_position(&scan(&buffers[0], 0..buffers[0].len()).unwrap(), 0), 13);
    }

    #[test]
    fn every_codec_of_the_java_producer_reads_back() {
        let owned: Vec<Vec<u8>> = (0..50).map(|i| format!("{{\"sensor_id\":\"S{i}\"}}").into_bytes()).collect();
        let payloads: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        for (codec, name) in [(1, "gzip"), (2, "snappy"), (4, "zstd"), (5, "snappy (xerial)")] {
            let (buffers, batches) = unpack_all(batch(100, &payloads, codec, -1, 0), vec![], 0);
            let read = values(&buffers, &batches[0]);
            assert_eq!(read.len(), 50, "{name}");
            assert_eq!(read[49], (149, owned[49].clone()), "{name}");
        }
    }

    #[test]
    fn a_batch_cut_off_by_the_response_size_is_left_for_the_next_fetch() {
        let mut response = batch(0, &[b"a"], 0, -1, 0);
        let whole = response.len();
        response.extend(batch(1, &[b"b"], 0, -1, 0));
        let headers = scan(&response, 0..response.len() - 3).unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].end, whole);
        assert_eq!(next_position(&headers, 0), 1);
    }

    #[test]
    fn batches_below_the_position_are_dropped() {
        let mut response = batch(0, &[b"a"], 0, -1, 0);
        response.extend(batch(1, &[b"b", b"c"], 0, -1, 0));
        let (_, batches) = unpack_all(response, vec![], 2);
        assert_eq!(batches.len(), 1, "the batch holding offset 2 is kept, whole");
        assert_eq!(batches[0].base_offset, 1);
    }

    #[test]
    fn aborted_transactions_and_markers_are_not_delivered() {
        let mut response = batch(0, &[b"kept"], 0, 7, 0x10);
        response.extend(marker(1, 7, 1));
        response.extend(batch(2, &[b"aborted"], 0, 8, 0x10));
        response.extend(batch(3, &[b"other"], 0, 9, 0x10));
        response.extend(marker(4, 8, 0));
        response.extend(batch(5, &[b"later"], 0, 8, 0x10));
        let (_, batches) = unpack_all(response, vec![(8, 2)], 0);
        let delivered: Vec<_> = batches.iter().map(|b| (b.base_offset, b.deliver)).collect();
        assert_eq!(delivered, vec![(0, true), (1, false), (2, false), (3, true), (4, false), (5, true)]);
    }

    #[test]
    fn malformed_records_and_batches_are_errors_not_panics() {
        let mut at = 0;
        assert!(next_record(&[0x10, 0, 0], &mut at).is_none(), "a record longer than its batch");
        let mut short = batch(0, &[b"a"], 0, -1, 0);
        short[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(scan(&short, 0..short.len()).is_err());
        // A negative length once passed the check as a huge unsigned one, and the header was
        // then read past the response.
        let mut negative = batch(0, &[b"a"], 0, -1, 0)[..14].to_vec();
        negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(scan(&negative, 0..negative.len()).is_err());
        let mut old = batch(0, &[b"a"], 0, -1, 0);
        old[16] = 1;
        assert!(scan(&old, 0..old.len()).unwrap_err().to_string().contains("TRAFFIC_KAFKA_READER"));
    }
}
