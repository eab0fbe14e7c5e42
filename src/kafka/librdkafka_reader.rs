//! Reading a set of partitions from explicit offsets through librdkafka, with no consumer group
//! assignment: the reader for brokers the fetching reader cannot reach (TLS, SASL).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::bindings as ffi;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use super::record::Record;

/// The consumer settings of a reader (also used by the raw-consume benchmark, for a fair ceiling).
pub fn reader_config(brokers: &str, group: &str) -> Result<rdkafka::ClientConfig> {
    let mut config = super::client_config(brokers)?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Large fetches: with the defaults the broker round trip bounds a consumer (measured here:
        // 240k messages/s with them, 600k-900k with these). The local queue stays modest; the
        // fetch size drives memory while a backlog drains (about 400 MB per process at 4 MiB
        // per partition, 800 MB at 8 MiB), and TRAFFIC_KAFKA_PROPERTIES can lower it.
        .set("fetch.wait.max.ms", "50")
        .set("fetch.min.bytes", "1048576")
        .set("fetch.max.bytes", "16777216")
        .set("max.partition.fetch.bytes", "8388608")
        .set("queued.min.messages", "200000")
        .set("queued.max.messages.kbytes", "32768")
        // When the local queue is full, fetch again soon after it drains (the default waits 1 s).
        .set("fetch.queue.backoff.ms", "10");
    Ok(config)
}

/// A consumer assigned by hand to some partitions of one topic, tracking the next offset of each.
pub struct LibrdkafkaReader {
    // Declared before the consumer: the queue handle must be released first.
    queue: ConsumerQueue,
    consumer: BaseConsumer,
    topic: String,
    next: BTreeMap<i32, i64>,
}

/// The consumer's message queue, read in batches (`rd_kafka_consume_batch_queue`): one call per
/// thousand messages instead of a poll, a clock read and a lock per message.
struct ConsumerQueue(*mut ffi::rd_kafka_queue_t);

// SAFETY: The queue handle is only used by the reader that owns it; librdkafka queues are
// thread-safe.
unsafe impl Send for ConsumerQueue {}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: The handle came from `rd_kafka_queue_get_consumer` and is released only here, once,
        // before the consumer it belongs to (the reader declares `queue` before `consumer`).
        unsafe { ffi::rd_kafka_queue_destroy(self.0) };
    }
}

/// Messages taken from librdkafka per call.
const BATCH: usize = 1024;

impl LibrdkafkaReader {
    /// Opens a reader of `topic` with `config` (the user's properties applied) that starts each
    /// partition of `start` at its offset. The configuration's group is only used when offsets
    /// are committed for monitoring; the reader never joins it.
    pub fn open(config: &rdkafka::ClientConfig, topic: &str, start: BTreeMap<i32, i64>) -> Result<LibrdkafkaReader> {
        let consumer: BaseConsumer = config.create().context("cannot create a Kafka client")?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for (&partition, &offset) in &start {
            assignment.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
        }
        consumer.assign(&assignment).with_context(|| format!("cannot assign partitions of '{topic}'"))?;
        // SAFETY: `native_ptr` is the live handle of `consumer`, which the reader keeps for as long as
        // the queue; a null result is checked below.
        let queue = unsafe { ffi::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        if queue.is_null() {
            bail!("librdkafka gave no consumer queue");
        }
        Ok(LibrdkafkaReader { queue: ConsumerQueue(queue), consumer, topic: topic.to_string(), next: start })
    }

    /// The next offset to read in each assigned partition.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.next
    }

    /// Calls `each` for the messages available now (waiting up to `budget` for the first), up to
    /// about `max` of them; returns how many were read. Transient broker errors are logged and
    /// retried by librdkafka.
    pub fn poll(&mut self, max: usize, budget: Duration, mut each: impl FnMut(Record<'_>)) -> Result<usize> {
        let mut batch = [std::ptr::null_mut::<ffi::rd_kafka_message_t>(); BATCH];
        let mut wait = budget.as_millis().min(i32::MAX as u128) as i32;
        let mut count = 0;
        while count < max {
            // SAFETY: The queue handle is live, and `batch` has room for the `BATCH` message pointers
            // librdkafka may write.
            let taken = unsafe { ffi::rd_kafka_consume_batch_queue(self.queue.0, wait, batch.as_mut_ptr(), BATCH) };
            if taken <= 0 {
                break;
            }
            wait = 0;
            let mut fatal = None;
            for &pointer in &batch[..taken as usize] {
                // SAFETY: The first `taken` pointers are non-null messages librdkafka handed over; each
                // stays valid until destroyed, right after its callback.
                let message = unsafe { &*pointer };
                if message.err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let payload = (!message.payload.is_null())
                        // SAFETY: A non-null payload points at `len` bytes owned by the message, which
                        // outlives the callback (`each` cannot keep the borrowed record past it).
                        .then(|| unsafe { std::slice::from_raw_parts(message.payload as *const u8, message.len) });
                    if let Some(next) = self.next.get_mut(&message.partition) {
                        *next = message.offset + 1;
                    }
                    each(Record { partition: message.partition, offset: message.offset, payload });
                    count += 1;
                } else if is_fatal(message.err.into()) {
                    fatal = Some(RDKafkaErrorCode::from(message.err));
                } else if message.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    log::warn!(target: "traffic", "Kafka: {:?} on {}/{} (retrying)", RDKafkaErrorCode::from(message.err), self.topic, message.partition);
                }
                // SAFETY: The message is ours to destroy, once; no borrow of it (`message`, the payload)
                // is used after this.
                unsafe { ffi::rd_kafka_message_destroy(pointer) };
            }
            if let Some(code) = fatal {
                bail!("cannot read topic '{}': {code:?}", self.topic);
            }
        }
        if count == 0 {
            self.pass_markers();
        }
        Ok(count)
    }

    /// Moves next offsets past records librdkafka read but never delivers (transaction commit
    /// and abort markers, aborted messages before a marker): its consume position has passed
    /// them. Without this a partition that ends in a marker would never look read to its end.
    /// Only called when nothing was delivered, so every delivered record has been handled.
    fn pass_markers(&mut self) {
        let Ok(positions) = self.consumer.position() else { return };
        for element in positions.elements() {
            if let (Some(next), rdkafka::Offset::Offset(position)) =
                (self.next.get_mut(&element.partition()), element.offset())
            {
                *next = (*next).max(position);
            }
        }
    }

    /// Messages not yet read: the sum over assigned partitions of high watermark minus next offset.
    ///
    /// The high watermarks are those of the latest fetch responses, cached by librdkafka: asking
    /// the broker instead would wait behind the connection's in-flight fetch, at every epoch.
    /// A partition not fetched yet counts as no lag.
    pub fn lag(&self) -> u64 {
        let topic = std::ffi::CString::new(self.topic.as_str()).expect("topic names have no NUL");
        let client = self.consumer.client().native_ptr();
        let mut lag = 0;
        for (&partition, &next) in &self.next {
            let (mut low, mut high) = (-1i64, -1i64);
            let error =
                // SAFETY: `client` is the consumer's live handle, `topic` a NUL-terminated string alive
                // for the call, and `low`/`high` valid places for librdkafka to write.
                unsafe { ffi::rd_kafka_get_watermark_offsets(client, topic.as_ptr(), partition, &mut low, &mut high) };
            if error == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 {
                lag += (high - next).max(0) as u64;
            }
        }
        lag
    }

    /// Whether every assigned partition has been read up to its offset in `ends` (partitions
    /// without one count as read).
    pub fn reached(&self, ends: &BTreeMap<i32, i64>) -> bool {
        self.next.iter().all(|(partition, next)| ends.get(partition).is_none_or(|end| next >= end))
    }
}

fn is_fatal(code: RDKafkaErrorCode) -> bool {
    // Everything else (broker down, leader moves, ...) librdkafka retries by itself.
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
    )
}
