//! The fetch thread of a reader: keeps one fetch in flight per leader broker, and hands the
//! responses, decompressed and split into batches, to the reader's worker.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::batch::{self, AbortedTransactions, Batch};
use super::wire::{self, FetchLimits, FETCH_VERSION};

/// What one round of fetches brought: the buffers (responses and decompressed records), the
/// batches in partition order, and the partitions' high watermarks.
#[derive(Default)]
pub struct Fetched {
    /// Responses and decompressed records; batches point into them.
    pub buffers: Vec<Vec<u8>>,
    /// The batches, in offset order within each partition.
    pub batches: Vec<Batch>,
    /// High watermark of every partition that answered.
    pub high_watermarks: Vec<(i32, i64)>,
}

/// Error codes after which the partition's leader is looked up again.
const LEADER_MOVED: [i16; 5] = [5, 6, 74, 75, 56];
/// Error codes that end the reader, as they do the librdkafka one.
const FATAL: [i16; 2] = [3, 29];

/// The state of a fetch thread.
pub struct Fetcher {
    topic: String,
    client_id: String,
    limits: FetchLimits,
    /// The next offset to fetch, per partition.
    positions: BTreeMap<i32, i64>,
    leaders: BTreeMap<i32, i32>,
    addresses: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    metadata: BaseConsumer,
    looked_up: Instant,
}

struct Connection {
    stream: TcpStream,
    in_flight: Option<(i32, Vec<i32>)>,
    next_correlation: i32,
}

impl Fetcher {
    /// A fetcher of `positions` of `topic`; `metadata` finds the partitions' leaders.
    pub fn new(
        topic: &str,
        client_id: &str,
        limits: FetchLimits,
        positions: BTreeMap<i32, i64>,
        metadata: BaseConsumer,
    ) -> Result<Fetcher> {
        let mut fetcher = Fetcher {
            topic: topic.to_string(),
            client_id: client_id.to_string(),
            limits,
            positions,
            leaders: BTreeMap::new(),
            addresses: HashMap::new(),
            connections: HashMap::new(),
            metadata,
            looked_up: Instant::now(),
        };
        fetcher.find_leaders()?;
        Ok(fetcher)
    }

    /// Fetches until `stop` is set or the receiver is gone; a fatal error is sent on, transient
    /// ones (a broker down, a leader moving) are logged and retried.
    pub fn run(mut self, out: SyncSender<Result<Fetched, String>>, stop: Arc<AtomicBool>) {
        let mut backoff = Duration::from_millis(50);
        while !stop.load(Ordering::Relaxed) {
            match self.round() {
                Ok(Some(fetched)) => {
                    backoff = Duration::from_millis(50);
                    if out.send(Ok(fetched)).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(Failure::Fatal(error)) => {
                    let _ = out.send(Err(format!("{error:#}")));
                    return;
                }
                Err(Failure::Transient(error)) => {
                    log::warn!(target: "traffic", "Kafka fetch of '{}': {error:#} (retrying)", self.topic);
                    self.connections.clear();
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    if let Err(error) = self.find_leaders() {
                        log::warn!(target: "traffic", "Kafka metadata of '{}': {error:#}", self.topic);
                    }
                }
            }
        }
    }

    /// Reads the answer of every broker with a fetch in flight, sends the next fetches right
    /// away (the brokers work while this thread decompresses), then unpacks the answers.
    fn round(&mut self) -> Result<Option<Fetched>, Failure> {
        self.send_fetches()?;
        let mut answers = Vec::new();
        for connection in self.connections.values_mut() {
            let Some((correlation, _)) = connection.in_flight.take() else { continue };
            let response = connection.receive().map_err(Failure::Transient)?;
            let parsed = wire::fetch_response(&response, correlation).map_err(Failure::Transient)?;
            answers.push((response, parsed));
        }
        if answers.is_empty() {
            return Err(Failure::Transient(anyhow::anyhow!("no partition has a leader")));
        }
        let mut fetched = Fetched::default();
        let mut plans = Vec::new();
        let mut leaders_moved = false;
        for (answer, (response, partitions)) in answers.iter_mut().enumerate() {
            for part in partitions {
                let Some(&position) = self.positions.get(&part.partition) else { continue };
                match part.error {
                    0 => {
                        fetched.high_watermarks.push((part.partition, part.high_watermark));
                        let headers = batch::scan(response, part.records.clone()).map_err(Failure::Fatal)?;
                        self.positions.insert(part.partition, batch::next_position(&headers, position));
                        plans.push((answer, part.partition, position, headers, std::mem::take(&mut part.aborted)));
                    }
                    1 => self.reset_to_earliest(part.partition, position).map_err(Failure::Transient)?,
                    code if FATAL.contains(&code) => {
                        let name = wire::error_name(code);
                        let error = anyhow::anyhow!("cannot read {}/{}: {name}", self.topic, part.partition);
                        return Err(Failure::Fatal(error));
                    }
                    code => {
                        leaders_moved |= LEADER_MOVED.contains(&code);
                        log::warn!(target: "traffic", "Kafka: {} on {}/{} (retrying)", wire::error_name(code), self.topic, part.partition);
                    }
                }
            }
        }
        if leaders_moved {
            self.find_leaders().map_err(Failure::Transient)?;
        }
        self.send_fetches()?;
        for (answer, (response, _)) in answers.into_iter().enumerate() {
            // The response is buffer 0 of its batches while they are unpacked.
            let mut buffers = vec![response];
            let mut batches = Vec::new();
            for (_, partition, position, headers, aborted) in plans.iter_mut().filter(|plan| plan.0 == answer) {
                let mut transactions = AbortedTransactions::new(std::mem::take(aborted));
                batch::unpack(*partition, headers, *position, &mut transactions, &mut buffers, &mut batches)
                    .map_err(Failure::Fatal)?;
            }
            let base = fetched.buffers.len();
            fetched.batches.extend(batches.into_iter().map(|b| Batch { buffer: base + b.buffer, ..b }));
            fetched.buffers.extend(buffers);
        }
        let empty = fetched.batches.is_empty() && fetched.high_watermarks.is_empty();
        Ok((!empty).then_some(fetched))
    }

    /// Sends a fetch to every leader of some partitions that has none in flight.
    fn send_fetches(&mut self) -> Result<(), Failure> {
        let leaderless = self.positions.keys().any(|p| !self.leaders.contains_key(p));
        if leaderless && self.looked_up.elapsed() > Duration::from_secs(1) {
            self.find_leaders().map_err(Failure::Transient)?;
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (&partition, &offset) in &self.positions {
            if let Some(&leader) = self.leaders.get(&partition) {
                by_leader.entry(leader).or_default().push((partition, offset));
            }
        }
        for (leader, partitions) in by_leader {
            if self.connections.get(&leader).is_some_and(|c| c.in_flight.is_some()) {
                continue;
            }
            if !self.connections.contains_key(&leader) {
                let address = self.addresses.get(&leader).cloned().unwrap_or_default();
                let connection = Connection::open(&address, &self.client_id, self.limits.max_wait_ms)
                    .map_err(|failure| failure.context(format!("broker {leader} at {address}")))?;
                self.connections.insert(leader, connection);
            }
            let connection = self.connections.get_mut(&leader).expect("a connection");
            let correlation = connection.correlation();
            let request = wire::fetch_request(correlation, &self.client_id, &self.topic, &partitions, &self.limits);
            connection.stream.write_all(&request).context("cannot send a fetch").map_err(Failure::Transient)?;
            connection.in_flight = Some((correlation, partitions.iter().map(|&(p, _)| p).collect()));
        }
        Ok(())
    }

    /// Looks up each partition's leader and the brokers' addresses.
    fn find_leaders(&mut self) -> Result<()> {
        self.looked_up = Instant::now();
        let metadata = self
            .metadata
            .fetch_metadata(Some(&self.topic), super::super::METADATA_TIMEOUT)
            .with_context(|| format!("cannot read metadata of topic '{}'", self.topic))?;
        self.addresses = metadata.brokers().iter().map(|b| (b.id(), format!("{}:{}", b.host(), b.port()))).collect();
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == self.topic) else {
            bail!("no topic '{}'", self.topic)
        };
        self.leaders = topic.partitions().iter().filter(|p| p.leader() >= 0).map(|p| (p.id(), p.leader())).collect();
        // Connections to brokers that lead nothing of ours any more are dropped with their fetch.
        let leaders: Vec<i32> = self.leaders.values().copied().collect();
        self.connections.retain(|broker, _| leaders.contains(broker));
        Ok(())
    }

    /// Moves a partition whose position the broker no longer holds to its earliest offset, as
    /// librdkafka does with `auto.offset.reset=earliest`: records deleted by retention are gone.
    fn reset_to_earliest(&mut self, partition: i32, position: i64) -> Result<()> {
        let (low, high) = self
            .metadata
            .fetch_watermarks(&self.topic, partition, super::super::METADATA_TIMEOUT)
            .with_context(|| format!("cannot read offsets of {}/{partition}", self.topic))?;
        log::warn!(
            target: "traffic",
            "Kafka: offset {position} of {}/{partition} is out of range ({low}..{high}); reading from {low}",
            self.topic
        );
        self.positions.insert(partition, low);
        Ok(())
    }
}

/// How a round failed.
enum Failure {
    /// Retried after a pause, with fresh connections and leaders.
    Transient(anyhow::Error),
    /// Ends the reader.
    Fatal(anyhow::Error),
}

impl Failure {
    fn context(self, context: String) -> Failure {
        match self {
            Failure::Transient(error) => Failure::Transient(error.context(context)),
            Failure::Fatal(error) => Failure::Fatal(error.context(context)),
        }
    }
}

impl Connection {
    /// Connects and checks that the broker serves Fetch v11: a broker that cannot is a fatal
    /// error (retrying would not change it), a network failure a transient one.
    fn open(address: &str, client_id: &str, max_wait_ms: i32) -> Result<Connection, Failure> {
        let versions = || -> Result<(Connection, Option<(i16, i16)>)> {
            let stream = TcpStream::connect(address).context("cannot connect")?;
            stream.set_nodelay(true)?;
            // A broker answers within max_wait; far beyond it, the connection counts as dead.
            stream.set_read_timeout(Some(Duration::from_millis(max_wait_ms as u64) + Duration::from_secs(30)))?;
            let mut connection = Connection { stream, in_flight: None, next_correlation: 0 };
            let correlation = connection.correlation();
            connection.stream.write_all(&wire::versions_request(correlation, client_id))?;
            let versions = wire::fetch_versions(&connection.receive()?, correlation)?;
            Ok((connection, versions))
        };
        match versions().map_err(Failure::Transient)? {
            (connection, Some((min, max))) if (min..=max).contains(&FETCH_VERSION) => Ok(connection),
            (_, versions) => Err(Failure::Fatal(anyhow::anyhow!(
                "the broker serves Fetch versions {versions:?}, not {FETCH_VERSION}; set TRAFFIC_KAFKA_READER=librdkafka"
            ))),
        }
    }

    fn correlation(&mut self) -> i32 {
        self.next_correlation = self.next_correlation.wrapping_add(1);
        self.next_correlation
    }

    /// Reads one response (without its size prefix).
    fn receive(&mut self) -> Result<Vec<u8>> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).context("the broker closed the connection")?;
        let size = i32::from_be_bytes(size);
        if size < 4 {
            bail!("a response of {size} bytes");
        }
        let mut response = vec![0u8; size as usize];
        self.stream.read_exact(&mut response).context("cannot read a response")?;
        Ok(response)
    }
}
