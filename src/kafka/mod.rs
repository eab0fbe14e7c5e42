//! Kafka connectors: partition readers at explicit offsets (the fetch protocol spoken directly,
//! or librdkafka), and through librdkafka a batching producer, topic metadata, and the embedded
//! mock broker.

mod fetch;
mod librdkafka_reader;
pub mod mock;
mod producer;
mod reader;
mod record;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

pub use producer::Producer;
pub use reader::{PartitionReader, ReaderKind};
pub use record::Record;

/// How long metadata requests may take before they count as failed.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// A client configuration for `brokers`.
pub fn client_config(brokers: &str) -> Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("client.id", "traffic");
    Ok(config)
}

/// Creates a client from `config` after applying the user's librdkafka properties, which win
/// over the platform's defaults: they come from the file named by `TRAFFIC_KAFKA_PROPERTIES`
/// (`key=value` lines), so that secrets (SASL, TLS) stay out of the command line.
pub fn create<T: rdkafka::config::FromClientConfig>(mut config: ClientConfig) -> Result<T> {
    apply_user_properties(&mut config)?;
    config.create().context("cannot create a Kafka client")
}

/// Applies the user's librdkafka properties (see [`create`]) to `config`.
pub fn apply_user_properties(config: &mut ClientConfig) -> Result<()> {
    if let Ok(path) = std::env::var("TRAFFIC_KAFKA_PROPERTIES") {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read Kafka properties {path}"))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let Some((key, value)) = line.split_once('=') else {
                bail!("{path}: expected key=value, got a line without '='")
            };
            config.set(key.trim(), value.trim());
        }
    }
    Ok(())
}

/// A consumer used for metadata, watermarks and offset commits, never for reading.
pub fn admin_consumer(brokers: &str, group: &str) -> Result<BaseConsumer> {
    let mut config = client_config(brokers)?;
    config.set("group.id", group).set("enable.auto.commit", "false");
    create(config)
}

/// The number of partitions of `topic`; an error if the topic does not exist.
pub fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("cannot read metadata of topic '{topic}'"))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else { bail!("no topic '{topic}'") };
    if let Some(error) = found.error() {
        bail!("topic '{topic}': {error:?}");
    }
    if found.partitions().is_empty() {
        bail!("topic '{topic}' does not exist (or has no partitions)");
    }
    Ok(found.partitions().len() as i32)
}

/// Low and high watermarks of every partition of `topic`.
pub fn watermarks(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<BTreeMap<i32, (i64, i64)>> {
    (0..partitions)
        .map(|p| {
            let marks = consumer
                .fetch_watermarks(topic, p, METADATA_TIMEOUT)
                .with_context(|| format!("cannot read offsets of {topic}/{p}"))?;
            Ok((p, marks))
        })
        .collect()
}

/// Records `offsets` (the next offset to read, per partition) as `group`'s position, for
/// monitoring tools; the platform's own checkpoints stay the source of truth.
pub fn commit_for_monitoring(consumer: &BaseConsumer, topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<()> {
    let mut list = rdkafka::TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        list.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
    }
    consumer.commit(&list, rdkafka::consumer::CommitMode::Async).context("cannot commit offsets")
}
