//! Reading a set of partitions from explicit offsets, with no consumer group assignment.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;

/// One message, borrowed from the consumer's buffers.
pub struct Record<'a> {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Payload (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
}

/// A consumer assigned by hand to some partitions of one topic, tracking the next offset of each.
pub struct PartitionReader {
    consumer: BaseConsumer,
    topic: String,
    next: BTreeMap<i32, i64>,
}

impl PartitionReader {
    /// Opens a reader of `topic` that starts each partition of `start` at its offset.
    ///
    /// `group` is only used when offsets are committed for monitoring; the reader never joins it.
    pub fn open(brokers: &str, topic: &str, group: &str, start: BTreeMap<i32, i64>) -> Result<PartitionReader> {
        let consumer: BaseConsumer = super::client_config(brokers)?
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .set("queued.max.messages.kbytes", "32768")
            .create()
            .context("cannot create a Kafka consumer")?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for (&partition, &offset) in &start {
            assignment.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
        }
        consumer.assign(&assignment).with_context(|| format!("cannot assign partitions of '{topic}'"))?;
        Ok(PartitionReader { consumer, topic: topic.to_string(), next: start })
    }

    /// The next offset to read in each assigned partition.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.next
    }

    /// Calls `each` for the messages available now, up to `max` of them or until `budget` runs out;
    /// returns how many were read. Transient broker errors are logged and retried by librdkafka.
    pub fn poll(&mut self, max: usize, budget: Duration, mut each: impl FnMut(Record<'_>)) -> Result<usize> {
        let deadline = Instant::now() + budget;
        let mut count = 0;
        while count < max {
            let wait = if count == 0 { deadline.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
            let Some(result) = self.consumer.poll(wait) else { break };
            match result {
                Ok(message) => {
                    let partition = message.partition();
                    let offset = message.offset();
                    if let Some(next) = self.next.get_mut(&partition) {
                        *next = offset + 1;
                    }
                    each(Record { partition, offset, payload: message.payload() });
                    count += 1;
                }
                Err(KafkaError::MessageConsumption(code)) if is_fatal(code) => {
                    bail!("cannot read topic '{}': {code:?}", self.topic)
                }
                Err(error) => log::warn!(target: "traffic", "Kafka: {error} (retrying)"),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(count)
    }

    /// Messages not yet read: the sum over assigned partitions of high watermark minus next offset.
    pub fn lag(&self) -> Result<u64> {
        let mut lag = 0;
        for (&partition, &next) in &self.next {
            let (_, high) = self.consumer.fetch_watermarks(&self.topic, partition, Duration::from_secs(5))?;
            lag += (high - next).max(0) as u64;
        }
        Ok(lag)
    }
}

fn is_fatal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
    )
}
