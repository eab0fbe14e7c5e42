//! traffic: a city-traffic data platform on Timely and Differential Dataflow.
//!
//! Historical count CSVs and live Kafka sensor readings become Parquet datasets in an object
//! store, exactly once, with progress frontiers as checkpoints. `src/` holds the platform (one
//! module per concern); `dataflows/` holds the named dataflows users run.

#![warn(missing_docs)]

/// jemalloc for the whole process, librdkafka's C code included (its `malloc` is jemalloc's).
///
/// A stream allocates one message object per Kafka record in librdkafka's fetch thread and frees
/// it on a worker thread; glibc's arenas took about a tenth of the CPU on that and, over long
/// runs, let resident memory creep. Every binary that links this crate (the examples' raw
/// consumer too, so that benchmark ceilings are measured alike) uses it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod calendar;
pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod csv;
pub mod datetime;
pub mod http;
pub mod job;
pub mod kafka;
pub mod lake;
pub mod logging;
pub mod parquet_sink;
pub mod progress;
pub mod runtime;
pub mod simulator;
pub mod time_stash;

#[path = "../dataflows/mod.rs"]
pub mod dataflows;
