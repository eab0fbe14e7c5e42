//! One Kafka message as every reader hands it over.

/// One message, borrowed from the reader's buffers.
pub struct Record<'a> {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Payload (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
}
