//! The Kafka wire protocol, as much of it as a fetching reader needs: framing, ApiVersions v0 and
//! Fetch v11 (the newest version without tagged fields; brokers from 2.3 to 4.x serve it).

use std::ops::Range;

use anyhow::{bail, Result};

/// The Fetch API's key.
pub const API_FETCH: i16 = 1;
/// The ApiVersions API's key.
pub const API_VERSIONS: i16 = 18;
/// The Fetch version spoken.
pub const FETCH_VERSION: i16 = 11;

/// A request being encoded: size prefix, header (v1: key, version, correlation id, client id), body.
pub struct Request {
    bytes: Vec<u8>,
}

impl Request {
    /// Starts a request of `api_key` at `version`.
    pub fn new(api_key: i16, version: i16, correlation_id: i32, client_id: &str) -> Request {
        let mut request = Request { bytes: vec![0; 4] };
        request.i16(api_key).i16(version).i32(correlation_id).string(client_id);
        request
    }

    /// Appends a one-byte integer.
    pub fn i8(&mut self, value: i8) -> &mut Self {
        self.bytes.push(value as u8);
        self
    }

    /// Appends a big-endian two-byte integer.
    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a big-endian four-byte integer.
    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a big-endian eight-byte integer.
    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a string with its two-byte length.
    pub fn string(&mut self, value: &str) -> &mut Self {
        self.i16(value.len() as i16);
        self.bytes.extend_from_slice(value.as_bytes());
        self
    }

    /// The request's bytes, size prefix filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let size = (self.bytes.len() - 4) as i32;
        self.bytes[..4].copy_from_slice(&size.to_be_bytes());
        self.bytes
    }
}

/// A cursor over a response's bytes; every read checks the length.
pub struct Response<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Response<'a> {
    /// A cursor at the start of `bytes` (a response without its size prefix).
    pub fn new(bytes: &'a [u8]) -> Response<'a> {
        Response { bytes, at: 0 }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        let Some(slice) = self.bytes.get(self.at..self.at + count) else {
            bail!("truncated response: {count} bytes wanted at {} of {}", self.at, self.bytes.len())
        };
        self.at += count;
        Ok(slice)
    }

    /// Reads a big-endian two-byte integer.
    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")))
    }

    /// Reads a big-endian four-byte integer.
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    /// Reads a big-endian eight-byte integer.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    /// Reads a string with a two-byte length (a null one reads as empty).
    pub fn string(&mut self) -> Result<&'a str> {
        let length = self.i16()?;
        let bytes = self.take(length.max(0) as usize)?;
        std::str::from_utf8(bytes).map_err(|_| anyhow::anyhow!("a string in the response is not UTF-8"))
    }

    /// Reads an array's length (a null array reads as empty).
    pub fn array(&mut self) -> Result<usize> {
        Ok(self.i32()?.max(0) as usize)
    }

    /// Reads nullable bytes with a four-byte length; returns where they lie in the response.
    pub fn bytes(&mut self) -> Result<Range<usize>> {
        let length = self.i32()?.max(0) as usize;
        let start = self.at;
        self.take(length)?;
        Ok(start..start + length)
    }
}

/// The version range a broker serves for one API.
pub fn versions_request(correlation_id: i32, client_id: &str) -> Vec<u8> {
    Request::new(API_VERSIONS, 0, correlation_id, client_id).finish()
}

/// The Fetch versions a broker serves (`None` when it does not list Fetch), from an ApiVersions
/// v0 response; an error if the broker refused the request.
pub fn fetch_versions(response: &[u8], correlation_id: i32) -> Result<Option<(i16, i16)>> {
    let mut cursor = Response::new(response);
    expect_correlation(&mut cursor, correlation_id)?;
    let error = cursor.i16()?;
    if error != 0 {
        bail!("the broker refused ApiVersions: {}", error_name(error));
    }
    for _ in 0..cursor.array()? {
        let (key, min, max) = (cursor.i16()?, cursor.i16()?, cursor.i16()?);
        if key == API_FETCH {
            return Ok(Some((min, max)));
        }
    }
    Ok(None)
}

/// What a fetch asks of the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// How long the broker may wait for `min_bytes` to accumulate.
    pub max_wait_ms: i32,
    /// The bytes the broker waits for before answering.
    pub min_bytes: i32,
    /// The most bytes of one response.
    pub max_bytes: i32,
    /// The most bytes per partition.
    pub partition_max_bytes: i32,
    /// Whether to read only committed transactions (1) or everything (0).
    pub read_committed: bool,
}

/// A Fetch v11 request for `partitions` (partition, offset) of `topic`, without a fetch session.
pub fn fetch_request(
    correlation_id: i32,
    client_id: &str,
    topic: &str,
    partitions: &[(i32, i64)],
    limits: &FetchLimits,
) -> Vec<u8> {
    let mut request = Request::new(API_FETCH, FETCH_VERSION, correlation_id, client_id);
    request
        .i32(-1) // replica id: a consumer
        .i32(limits.max_wait_ms)
        .i32(limits.min_bytes)
        .i32(limits.max_bytes)
        .i8(limits.read_committed as i8)
        .i32(0) // session id: none
        .i32(-1) // session epoch: a full fetch, no session
        .i32(1)
        .string(topic)
        .i32(partitions.len() as i32);
    for &(partition, offset) in partitions {
        request.i32(partition).i32(-1).i64(offset).i64(-1).i32(limits.partition_max_bytes);
    }
    request.i32(0).string(""); // no forgotten topics, no rack
    request.finish()
}

/// One partition of a Fetch response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FetchedPartition {
    /// The partition.
    pub partition: i32,
    /// The partition's error code (0: none).
    pub error: i16,
    /// The offset after the last one written to the partition.
    pub high_watermark: i64,
    /// Producer id and first offset of every aborted transaction in the records.
    pub aborted: Vec<(i64, i64)>,
    /// Where the record batches lie in the response.
    pub records: Range<usize>,
}

/// The partitions of a Fetch v11 response for one topic.
pub fn fetch_response(response: &[u8], correlation_id: i32) -> Result<Vec<FetchedPartition>> {
    let mut cursor = Response::new(response);
    expect_correlation(&mut cursor, correlation_id)?;
    let _throttle_ms = cursor.i32()?;
    let error = cursor.i16()?;
    if error != 0 {
        bail!("the broker refused the fetch: {}", error_name(error));
    }
    let _session = cursor.i32()?;
    let mut partitions = Vec::new();
    for _ in 0..cursor.array()? {
        let _topic = cursor.string()?;
        for _ in 0..cursor.array()? {
            let partition = cursor.i32()?;
            let error = cursor.i16()?;
            let high_watermark = cursor.i64()?;
            let _last_stable = cursor.i64()?;
            let _log_start = cursor.i64()?;
            let aborted =
                (0..cursor.array()?).map(|_| Ok((cursor.i64()?, cursor.i64()?))).collect::<Result<Vec<_>>>()?;
            let _preferred_replica = cursor.i32()?;
            let records = cursor.bytes()?;
            partitions.push(FetchedPartition { partition, error, high_watermark, aborted, records });
        }
    }
    Ok(partitions)
}

fn expect_correlation(cursor: &mut Response<'_>, expected: i32) -> Result<()> {
    let found = cursor.i32()?;
    if found != expected {
        bail!("response to request {found} where {expected} was expected");
    }
    Ok(())
}

/// A Kafka error code's name, for messages.
pub fn error_name(code: i16) -> String {
    let name = match code {
        1 => "OFFSET_OUT_OF_RANGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        56 => "KAFKA_STORAGE_ERROR",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        _ => return format!("error code {code}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_request_has_the_v11_layout() {
        let limits = FetchLimits {
            max_wait_ms: 50,
            min_bytes: 1,
            max_bytes: 100,
            partition_max_bytes: 10,
            read_committed: true,
        };
        let bytes = fetch_request(7, "c", "t", &[(2, 40)], &limits);
        let size = i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(size, bytes.len() - 4);
        let mut cursor = Response::new(&bytes[4..]);
        assert_eq!((cursor.i16().unwrap(), cursor.i16().unwrap(), cursor.i32().unwrap()), (1, 11, 7));
        assert_eq!(cursor.string().unwrap(), "c");
        assert_eq!([cursor.i32().unwrap(), cursor.i32().unwrap(), cursor.i32().unwrap()], [-1, 50, 1]);
        assert_eq!(cursor.i32().unwrap(), 100);
        assert_eq!(cursor.take(1).unwrap(), [1]);
        assert_eq!((cursor.i32().unwrap(), cursor.i32().unwrap(), cursor.array().unwrap()), (0, -1, 1));
        assert_eq!((cursor.string().unwrap(), cursor.array().unwrap()), ("t", 1));
        assert_eq!((cursor.i32().unwrap(), cursor.i32().unwrap(), cursor.i64().unwrap()), (2, -1, 40));
        assert_eq!((cursor.i64().unwrap(), cursor.i32().unwrap()), (-1, 10));
        assert_eq!((cursor.array().unwrap(), cursor.string().unwrap()), (0, ""));
        assert_eq!(cursor.at, size);
    }

    #[test]
    fn a_fetch_response_yields_its_partitions_and_where_their_records_lie() {
        let mut response = Request { bytes: Vec::new() };
        response.i32(9).i32(0).i16(0).i32(0).i32(1).string("t").i32(1);
        response.i32(3).i16(0).i64(120).i64(120).i64(0).i32(1).i64(77).i64(100).i32(-1).i32(4);
        response.bytes.extend_from_slice(b"abcd");
        let partitions = fetch_response(&response.bytes, 9).unwrap();
        let end = response.bytes.len();
        assert_eq!(
            partitions,
            vec![FetchedPartition {
                partition: 3,
                error: 0,
                high_watermark: 120,
                aborted: vec![(77, 100)],
                records: end - 4..end
            }]
        );
        assert!(fetch_response(&response.bytes[..end - 1], 9).is_err(), "a truncated response is an error");
        assert!(fetch_response(&response.bytes, 8).is_err(), "a response to another request is an error");
    }
}
