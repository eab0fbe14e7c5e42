//! The embedded demo broker: librdkafka's mock cluster, optionally reachable on a fixed port.
//!
//! The mock cluster speaks the Kafka protocol but keeps only a bounded log in memory; it is for
//! demos and quick tests. Integration tests use a real Apache Kafka broker.

use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use anyhow::{bail, Context, Result};
use rdkafka::bindings as ffi;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::ClientConfig;

/// A running single-node mock cluster.
pub struct EmbeddedBroker {
    cluster: *mut ffi::rd_kafka_mock_cluster_t,
    // Owns the librdkafka handle the cluster lives in; dropped after the cluster.
    _client: BaseProducer,
    bootstrap: String,
}

// SAFETY: The mock cluster runs on its own librdkafka thread and locks its state; the handle is
// only used to create topics and to destroy it.
unsafe impl Send for EmbeddedBroker {}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster. With `port`, clients reach it at `127.0.0.1:<port>`
    /// through a small TCP relay (the mock cluster itself listens on a random port).
    pub fn start(port: Option<u16>) -> Result<EmbeddedBroker> {
        let client: BaseProducer = ClientConfig::new().create().context("cannot create the mock cluster's client")?;
        // SAFETY: `native_ptr` is the live handle of `client`, which the broker keeps (and drops
        // after the cluster), so it outlives the mock cluster created in it.
        let cluster = unsafe { ffi::rd_kafka_mock_cluster_new(client.client().native_ptr(), 1) };
        if cluster.is_null() {
            bail!("cannot start librdkafka's mock cluster");
        }
        let internal =
            // SAFETY: `cluster` is non-null and live; librdkafka returns a NUL-terminated string it
            // owns for the cluster's life, copied here before anything can destroy it.
            unsafe { CStr::from_ptr(ffi::rd_kafka_mock_cluster_bootstraps(cluster)) }.to_string_lossy().into_owned();
        let mut broker = EmbeddedBroker { cluster, _client: client, bootstrap: internal.clone() };
        if let Some(port) = port {
            let listener =
                TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            let host = CString::new("127.0.0.1").expect("no NUL");
            // SAFETY: `cluster` is live and `host` is a NUL-terminated string that outlives the call
            // (librdkafka copies it).
            unsafe { ffi::rd_kafka_mock_broker_set_host_port(cluster, 1, host.as_ptr(), port as i32) };
            std::thread::spawn(move || relay(listener, internal));
            broker.bootstrap = format!("127.0.0.1:{port}");
        }
        Ok(broker)
    }

    /// The `bootstrap.servers` value for clients.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let name = CString::new(topic).context("topic names cannot hold NUL")?;
        // SAFETY: `self.cluster` stays live until drop, and `name` is NUL-terminated and outlives the call.
        let error = unsafe { ffi::rd_kafka_mock_topic_create(self.cluster, name.as_ptr(), partitions, 1) };
        if error != ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            bail!("cannot create topic '{topic}': {error:?}");
        }
        Ok(())
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        // SAFETY: `self.cluster` came from `rd_kafka_mock_cluster_new`, is destroyed only here, once,
        // and its client handle (`_client`) is still alive: fields drop after this.
        unsafe { ffi::rd_kafka_mock_cluster_destroy(self.cluster) };
    }
}

/// Relays every connection accepted on `listener` to `target`, byte for byte, both ways.
fn relay(listener: TcpListener, target: String) {
    for client in listener.incoming().flatten() {
        let Ok(server) = TcpStream::connect(&target) else { continue };
        let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else { continue };
        std::thread::spawn(move || pipe(client_reader, server));
        std::thread::spawn(move || pipe(server_reader, client));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
