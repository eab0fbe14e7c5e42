//! A partition reader that speaks the Kafka fetch protocol itself: a thread per reader fetches
//! whole responses and decompresses them, and the worker reads the records in place, with no
//! message object, lock or allocation per record (librdkafka's cost, about half of the stream's
//! CPU when it read for the workers).

mod batch;
mod fetcher;
mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::ClientConfig;

use super::record::Record;
use fetcher::{Fetched, Fetcher};
use wire::FetchLimits;

/// Fetch rounds a reader's thread may run ahead of its worker.
const QUEUED_ROUNDS: usize = 2;

/// Reads some partitions of a topic from explicit offsets, fetching on a thread of its own.
pub struct FetchReader {
    next: BTreeMap<i32, i64>,
    high_watermarks: BTreeMap<i32, i64>,
    incoming: Option<Receiver<Result<Fetched, String>>>,
    current: Fetched,
    /// The batch being read in `current`, and where in its records.
    batch: usize,
    at: usize,
    stop: Arc<AtomicBool>,
}

impl FetchReader {
    /// Starts reading `topic` at `start` (the next offset per partition) with the consumer
    /// settings of `config` (librdkafka's names: `fetch.wait.max.ms`, `fetch.min.bytes`,
    /// `fetch.max.bytes`, `max.partition.fetch.bytes`, `isolation.level`, `client.id`).
    pub fn open(config: &ClientConfig, topic: &str, start: BTreeMap<i32, i64>) -> Result<FetchReader> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = FetchReader {
            next: start.clone(),
            high_watermarks: BTreeMap::new(),
            incoming: None,
            current: Fetched::default(),
            batch: 0,
            at: 0,
            stop: stop.clone(),
        };
        if start.is_empty() {
            return Ok(reader);
        }
        let limits = limits(config)?;
        let client_id = config.get("client.id").unwrap_or("traffic").to_string();
        let metadata = config.create().context("cannot create a Kafka metadata client")?;
        let fetcher = Fetcher::new(topic, &client_id, limits, start, metadata)?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUED_ROUNDS);
        std::thread::Builder::new()
            .name(format!("fetch-{topic}"))
            .spawn(move || fetcher.run(sender, stop))
            .context("cannot start a fetch thread")?;
        reader.incoming = Some(receiver);
        Ok(reader)
    }

    /// The next offset to read in each assigned partition.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.next
    }

    /// Calls `each` for the records fetched so far (waiting up to `budget` for some), up to about
    /// `max` of them; returns how many were read.
    pub fn poll(&mut self, max: usize, budget: Duration, mut each: impl FnMut(Record<'_>)) -> Result<usize> {
        let mut count = 0;
        let mut waited = false;
        while count < max {
            if self.batch == self.current.batches.len() {
                // A round may bring only high watermarks (the reader is caught up): take the next.
                if !self.receive(&mut waited, budget)? {
                    break;
                }
                continue;
            }
            count += self.read_batch(max - count, &mut each)?;
        }
        Ok(count)
    }

    /// Takes the next fetched round, waiting for it once per poll; false when none came.
    fn receive(&mut self, waited: &mut bool, budget: Duration) -> Result<bool> {
        let Some(incoming) = &self.incoming else { return Ok(false) };
        let received = if *waited || budget.is_zero() {
            incoming.try_recv().map_err(|e| matches!(e, TryRecvError::Disconnected))
        } else {
            *waited = true;
            incoming.recv_timeout(budget).map_err(|e| matches!(e, RecvTimeoutError::Disconnected))
        };
        match received {
            Ok(Ok(fetched)) => {
                self.high_watermarks.extend(fetched.high_watermarks.iter().copied());
                (self.current, self.batch, self.at) = (fetched, 0, 0);
                Ok(true)
            }
            Ok(Err(error)) => bail!("{error}"),
            Err(true) => bail!("the fetch thread has ended"),
            Err(false) => Ok(false),
        }
    }

    /// Reads up to `max` records of the current batch, moving to the next batch at its end.
    fn read_batch(&mut self, max: usize, each: &mut impl FnMut(Record<'_>)) -> Result<usize> {
        let batch = &self.current.batches[self.batch];
        let Some(next) = self.next.get_mut(&batch.partition) else {
            self.batch += 1;
            return Ok(0);
        };
        let mut count = 0;
        if batch.deliver {
            let records = &self.current.buffers[batch.buffer][batch.records.clone()];
            while count < max && self.at < records.len() {
                let Some(record) = batch::next_record(records, &mut self.at) else {
                    bail!("a malformed record in the batch at {}/{}", batch.partition, batch.base_offset)
                };
                let offset = batch.base_offset + record.offset_delta;
                // A fetch answers with whole batches: records below the position were read before.
                if offset < *next {
                    continue;
                }
                *next = offset + 1;
                each(Record { partition: batch.partition, offset, payload: record.value.map(|v| &records[v]) });
                count += 1;
            }
            if self.at < records.len() {
                return Ok(count);
            }
        }
        // Offsets the batch skips (compacted away, or a control marker) are read too.
        *next = (*next).max(batch.next_offset);
        (self.batch, self.at) = (self.batch + 1, 0);
        Ok(count)
    }

    /// Messages not yet read: the sum over assigned partitions of high watermark minus next
    /// offset, from the latest fetch responses (a partition not fetched yet counts as no lag).
    pub fn lag(&self) -> u64 {
        let behind = |(partition, next): (&i32, &i64)| self.high_watermarks.get(partition).map_or(0, |h| h - next);
        self.next.iter().map(behind).map(|lag| lag.max(0) as u64).sum()
    }

    /// Whether every assigned partition has been read up to its offset in `ends` (partitions
    /// without one count as read).
    pub fn reached(&self, ends: &BTreeMap<i32, i64>) -> bool {
        self.next.iter().all(|(partition, next)| ends.get(partition).is_none_or(|end| next >= end))
    }
}

impl Drop for FetchReader {
    fn drop(&mut self) {
        // The thread ends at its next round, or when its next hand-over finds no receiver.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The fetch limits and isolation level set in `config`.
fn limits(config: &ClientConfig) -> Result<FetchLimits> {
    let number = |key: &str, default: i32| -> Result<i32> {
        config.get(key).map_or(Ok(default), |v| v.parse().with_context(|| format!("{key}={v} is not a number")))
    };
    let read_committed = match config.get("isolation.level").unwrap_or("read_committed") {
        "read_committed" => true,
        "read_uncommitted" => false,
        other => bail!("isolation.level={other}: expected read_committed or read_uncommitted"),
    };
    Ok(FetchLimits {
        max_wait_ms: number("fetch.wait.max.ms", 500)?,
        min_bytes: number("fetch.min.bytes", 1)?,
        max_bytes: number("fetch.max.bytes", 52_428_800)?,
        partition_max_bytes: number("max.partition.fetch.bytes", 1_048_576)?,
        read_committed,
    })
}

#[cfg(test)]
mod tests {
    use super::batch::tests::batch;
    use super::*;
    use std::sync::mpsc::SyncSender;

    /// A reader that is handed one round per batch; the sender stands for a fetch thread still
    /// running.
    fn reader_of(
        batches: Vec<(i32, Vec<u8>)>,
        next: &[(i32, i64)],
    ) -> (FetchReader, SyncSender<Result<Fetched, String>>) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(batches.len());
        for (partition, bytes) in batches {
            let headers = batch::scan(&bytes, 0..bytes.len()).unwrap();
            let mut fetched = Fetched { buffers: vec![bytes], ..Fetched::default() };
            let mut transactions = batch::AbortedTransactions::new(vec![]);
            batch::unpack(partition, &headers, 0, &mut transactions, &mut fetched.buffers, &mut fetched.batches)
                .unwrap();
            fetched.high_watermarks.push((partition, batch::next_position(&headers, 0) + 5));
            sender.send(Ok(fetched)).unwrap();
        }
        let reader = FetchReader {
            next: next.iter().copied().collect(),
            high_watermarks: BTreeMap::new(),
            incoming: Some(receiver),
            current: Fetched::default(),
            batch: 0,
            at: 0,
            stop: Arc::default(),
        };
        (reader, sender)
    }

    fn read(reader: &mut FetchReader, max: usize) -> Vec<(i32, i64, Vec<u8>)> {
        let mut out = Vec::new();
        reader.poll(max, Duration::ZERO, |r| out.push((r.partition, r.offset, r.payload.unwrap().to_vec()))).unwrap();
        out
    }

    #[test]
    fn records_below_the_start_offset_are_skipped_and_polls_resume_mid_batch() {
        let (mut reader, fetching) = reader_of(
            vec![(0, batch(10, &[b"a", b"b", b"c"], 3, -1, 0)), (1, batch(0, &[b"x", b"y"], 0, -1, 0))],
            &[(0, 11), (1, 0)],
        );
        assert_eq!(read(&mut reader, 1), vec![(0, 11, b"b".to_vec())]);
        assert_eq!(reader.next_offsets()[&0], 12);
        let rest = read(&mut reader, 10);
        assert_eq!(rest, vec![(0, 12, b"c".to_vec()), (1, 0, b"x".to_vec()), (1, 1, b"y".to_vec())]);
        assert_eq!(reader.next_offsets(), &BTreeMap::from([(0, 13), (1, 2)]));
        assert_eq!(reader.lag(), 10, "five behind the high watermark of each partition");
        assert!(reader.reached(&BTreeMap::from([(0, 13), (1, 2)])));
        assert!(read(&mut reader, 10).is_empty());
        drop(fetching);
        assert!(reader.poll(10, Duration::ZERO, |_| {}).is_err(), "a fetch thread gone is an error");
    }

    /// Regression: a caught-up fetch thread sends rounds that hold only high watermarks, and a
    /// poll that took one indexed past the (empty) batch list.
    #[test]
    fn a_round_without_batches_does_not_end_or_break_a_poll() {
        let (mut reader, fetching) = reader_of(vec![(0, batch(0, &[b"a"], 0, -1, 0))], &[(0, 0)]);
        let (sender, receiver) = std::sync::mpsc::sync_channel(2);
        let watermarks_only = Fetched { high_watermarks: vec![(0, 1)], ..Fetched::default() };
        sender.send(Ok(watermarks_only)).unwrap();
        sender.send(reader.incoming.take().unwrap().recv().unwrap()).unwrap();
        reader.incoming = Some(receiver);
        assert_eq!(read(&mut reader, 10), vec![(0, 0, b"a".to_vec())]);
        drop(fetching);
    }

    #[test]
    fn a_fatal_error_of_the_fetch_thread_ends_the_poll_with_it() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        sender.send(Err("cannot read t/0: TOPIC_AUTHORIZATION_FAILED".to_string())).unwrap();
        let (mut reader, _) = reader_of(vec![], &[(0, 0)]);
        reader.incoming = Some(receiver);
        let error = reader.poll(10, Duration::ZERO, |_| {}).unwrap_err();
        assert!(error.to_string().contains("TOPIC_AUTHORIZATION_FAILED"));
    }

    #[test]
    fn librdkafka_setting_names_set_the_fetch_limits() {
        let mut config = ClientConfig::new();
        config.set("fetch.max.bytes", "1000").set("isolation.level", "read_uncommitted");
        let limits = limits(&config).unwrap();
        assert_eq!((limits.max_bytes, limits.read_committed, limits.max_wait_ms), (1000, false, 500));
        config.set("fetch.min.bytes", "lots");
        assert!(super::limits(&config).is_err());
    }
}
