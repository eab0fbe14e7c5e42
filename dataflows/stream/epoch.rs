//! Epochs of processing time and the record counts each one reconciles.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Record counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Messages read.
    pub read: u64,
    /// Readings written.
    pub written: u64,
    /// Messages quarantined.
    pub quarantined: u64,
    /// Readings too late for their window (written, but left out of windows).
    pub late: u64,
}

impl Totals {
    /// Adds `other`.
    pub fn add(&mut self, other: &Totals) {
        self.read += other.read;
        self.written += other.written;
        self.quarantined += other.quarantined;
        self.late += other.late;
    }
}

/// The epoch that wall-clock time `now` falls in.
pub fn epoch_at(now: SystemTime, epoch: Duration) -> u64 {
    let millis = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    millis / (epoch.as_millis() as u64).max(1)
}
