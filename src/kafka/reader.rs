//! A reader of some partitions of a topic from explicit offsets: the fetching reader, or
//! librdkafka's where the connection needs TLS or SASL (or the user asks for it).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Result};
use rdkafka::ClientConfig;

use super::fetch::FetchReader;
use super::librdkafka_reader::{reader_config, LibrdkafkaReader};
use super::record::Record;

/// The client a reader reads with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderKind {
    /// The Kafka fetch protocol spoken directly, over plaintext connections.
    Fetch,
    /// librdkafka's consumer.
    Librdkafka,
}

impl ReaderKind {
    /// The kind `TRAFFIC_KAFKA_READER` names (`fetch` or `librdkafka`); without it, `fetch`
    /// unless `config` asks for a security protocol other than plaintext.
    pub fn configured(config: &ClientConfig) -> Result<ReaderKind> {
        match std::env::var("TRAFFIC_KAFKA_READER").as_deref() {
            Ok("fetch") => Ok(ReaderKind::Fetch),
            Ok("librdkafka") => Ok(ReaderKind::Librdkafka),
            Ok(other) => bail!("TRAFFIC_KAFKA_READER={other}: expected fetch or librdkafka"),
            Err(_) => match config.get("security.protocol").map(str::to_ascii_lowercase).as_deref() {
                None | Some("plaintext") => Ok(ReaderKind::Fetch),
                Some(_) => Ok(ReaderKind::Librdkafka),
            },
        }
    }
}

/// A reader of some partitions of one topic, tracking the next offset of each.
pub enum PartitionReader {
    /// Fetching on a thread of its own, records read in place.
    Fetch(FetchReader),
    /// Through librdkafka's consumer.
    Librdkafka(LibrdkafkaReader),
}

impl PartitionReader {
    /// Opens a reader of `topic` that starts each partition of `start` at its offset, with the
    /// platform's consumer settings and the user's properties (`TRAFFIC_KAFKA_PROPERTIES`).
    ///
    /// `group` is only used when offsets are committed for monitoring; the reader never joins it.
    pub fn open(brokers: &str, topic: &str, group: &str, start: BTreeMap<i32, i64>) -> Result<PartitionReader> {
        let mut config = reader_config(brokers, group)?;
        super::apply_user_properties(&mut config)?;
        Ok(match ReaderKind::configured(&config)? {
            ReaderKind::Fetch => PartitionReader::Fetch(FetchReader::open(&config, topic, start)?),
            ReaderKind::Librdkafka => PartitionReader::Librdkafka(LibrdkafkaReader::open(&config, topic, start)?),
        })
    }

    /// The next offset to read in each assigned partition.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        match self {
            PartitionReader::Fetch(reader) => reader.next_offsets(),
            PartitionReader::Librdkafka(reader) => reader.next_offsets(),
        }
    }

    /// Calls `each` for the messages available now (waiting up to `budget` for the first), up to
    /// about `max` of them; returns how many were read. Transient broker errors are logged and
    /// retried.
    pub fn poll(&mut self, max: usize, budget: Duration, each: impl FnMut(Record<'_>)) -> Result<usize> {
        match self {
            PartitionReader::Fetch(reader) => reader.poll(max, budget, each),
            PartitionReader::Librdkafka(reader) => reader.poll(max, budget, each),
        }
    }

    /// Messages not yet read, from the high watermarks of the latest fetches.
    pub fn lag(&self) -> u64 {
        match self {
            PartitionReader::Fetch(reader) => reader.lag(),
            PartitionReader::Librdkafka(reader) => reader.lag(),
        }
    }

    /// Whether every assigned partition has been read up to its offset in `ends` (partitions
    /// without one count as read).
    pub fn reached(&self, ends: &BTreeMap<i32, i64>) -> bool {
        match self {
            PartitionReader::Fetch(reader) => reader.reached(ends),
            PartitionReader::Librdkafka(reader) => reader.reached(ends),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secured_connections_go_through_librdkafka() {
        let mut config = ClientConfig::new();
        if std::env::var("TRAFFIC_KAFKA_READER").is_ok() {
            return; // the user's choice wins, and is what this test would see
        }
        assert_eq!(ReaderKind::configured(&config).unwrap(), ReaderKind::Fetch);
        config.set("security.protocol", "PLAINTEXT");
        assert_eq!(ReaderKind::configured(&config).unwrap(), ReaderKind::Fetch);
        config.set("security.protocol", "SASL_SSL");
        assert_eq!(ReaderKind::configured(&config).unwrap(), ReaderKind::Librdkafka);
    }
}
