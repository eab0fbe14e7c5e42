//! A batching, compressing producer that counts failed deliveries and waits for delivery on flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

/// Counts deliveries that failed after librdkafka's retries.
#[derive(Default)]
pub struct DeliveryReport {
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryReport {}

impl ProducerContext for DeliveryReport {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().expect("delivery error") = Some(error.to_string());
        }
    }
}

/// A producer to one cluster; messages are batched (`linger.ms`) and compressed (lz4).
pub struct Producer {
    inner: ThreadedProducer<DeliveryReport>,
}

impl Producer {
    /// Connects to `brokers`; `idempotent` asks the broker to drop duplicates of retried batches.
    pub fn new(brokers: &str, idempotent: bool) -> Result<Producer> {
        let mut config = super::client_config(brokers)?;
        config
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "500000")
            .set("enable.idempotence", if idempotent { "true" } else { "false" })
            .set("message.timeout.ms", "60000");
        super::apply_user_properties(&mut config)?;
        let inner = config.create_with_context(DeliveryReport::default()).context("cannot create a Kafka producer")?;
        Ok(Producer { inner })
    }

    /// Queues one message, waiting while the local queue is full.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<()> {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("cannot send to '{topic}': {error}"),
            }
        }
    }

    /// Waits until every queued message is delivered; fails if any delivery failed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout).context("messages not delivered in time")?;
        let report = self.inner.context();
        let failed = report.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let last = report.last_error.lock().expect("delivery error").clone().unwrap_or_default();
            bail!("{failed} messages could not be delivered (last error: {last})");
        }
        Ok(())
    }
}
