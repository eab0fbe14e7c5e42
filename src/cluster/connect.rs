//! Connecting the processes of a cluster to one another, then handing the sockets to Timely.
//!
//! Timely's own setup retries a refused connection, and polls for incoming ones, once a second;
//! connecting here with retries from 1 ms up to 20 ms makes a cluster of fresh processes ready
//! in milliseconds (a two-process batch load lasts well under a second).
//! The handshake is Timely's: each process dials every lower-indexed one and sends its index.

use std::any::Any;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::Hooks;

use super::spec::ClusterSpec;

/// How long a process waits for its peers.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);
/// The first wait before a refused connection is retried (doubled at each retry, up to `RETRY`).
const FIRST_RETRY: Duration = Duration::from_millis(1);
/// The longest wait between retries of a refused connection.
const RETRY: Duration = Duration::from_millis(20);
/// How often the listener looks for connections from higher-indexed processes.
const ACCEPT_POLL: Duration = Duration::from_millis(1);

/// The Timely allocators for this process of `spec`, and what must live as long as they do.
pub fn allocators(spec: &ClusterSpec) -> Result<(Vec<AllocatorBuilder>, Box<dyn Any + Send>)> {
    if spec.addresses.len() <= 1 {
        return timely::CommunicationConfig::Process(spec.workers).try_build().map_err(|e| anyhow!(e));
    }
    let sockets = connect(&spec.addresses, spec.process)?;
    let hooks = Hooks::default();
    let local = ProcessBuilder::new_typed_vector(spec.workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) = initialize_networking_from_sockets(local, sockets, spec.process, spec.workers, hooks)
        .context("cannot start the cluster's network threads")?;
    Ok((builders.into_iter().map(AllocatorBuilder::Tcp).collect(), Box::new(guard)))
}

/// One socket to every other process (`None` at `me`).
fn connect(addresses: &[String], me: usize) -> Result<Vec<Option<TcpStream>>> {
    let listener = TcpListener::bind(&addresses[me]).with_context(|| format!("cannot listen on {}", addresses[me]))?;
    let higher = addresses.len() - me - 1;
    let acceptor = std::thread::spawn(move || accept(listener, me, higher));
    let deadline = Instant::now() + PEER_TIMEOUT;
    let mut sockets: Vec<Option<TcpStream>> = Vec::with_capacity(addresses.len());
    for (index, address) in addresses.iter().enumerate().take(me) {
        let mut wait = FIRST_RETRY;
        let mut stream = loop {
            match TcpStream::connect(address) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY);
                }
                Err(e) => return Err(e).with_context(|| format!("process {index} at {address} did not answer")),
            }
        };
        stream.set_nodelay(true)?;
        stream.write_all(&(me as u64).to_be_bytes())?;
        sockets.push(Some(stream));
    }
    sockets.push(None);
    sockets.extend(acceptor.join().map_err(|_| anyhow!("the connection acceptor panicked"))??);
    Ok(sockets)
}

/// Accepts the `count` processes above `me`, each announcing its index.
fn accept(listener: TcpListener, me: usize, count: usize) -> Result<Vec<Option<TcpStream>>> {
    let mut accepted: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + PEER_TIMEOUT;
    while accepted.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                let mut index = [0u8; 8];
                stream.read_exact(&mut index)?;
                let index = u64::from_be_bytes(index) as usize;
                if index <= me || index > me + count || accepted[index - me - 1].is_some() {
                    bail!("unexpected connection claiming to be process {index}");
                }
                accepted[index - me - 1] = Some(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => std::thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::WouldBlock => bail!("processes above {me} did not connect in time"),
            Err(e) => return Err(e).context("cannot accept a peer connection"),
        }
    }
    Ok(accepted)
}
