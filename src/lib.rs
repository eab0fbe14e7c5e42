//! traffic: a city-traffic data platform on Timely and Differential Dataflow.
//!
//! Historical count CSVs and live Kafka sensor readings become Parquet datasets in an object
//! store, exactly once, with progress frontiers as checkpoints. This crate is the platform (one
//! module per concern) and never names a dataflow: the `traffic` binary (crate
//! `traffic-dataflows`) hands it a [`registry::Registry`] of the dataflows users run.

/// jemalloc for the whole process, librdkafka's C code included (its `malloc` is jemalloc's).
///
/// A stream allocates one message object per Kafka record in librdkafka's fetch thread and frees
/// it on a worker thread; glibc's arenas took about a tenth of the CPU on that and, over long
/// runs, let resident memory creep. Every binary that links this crate (the examples' raw
/// consumer too, so that benchmark ceilings are measured alike) uses it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (`MALLOC_CONF` in the environment adds to
/// them). `oversize_threshold:0`: by default an allocation over 8 MiB comes from an arena that
/// returns its pages to the kernel as soon as it is freed, so every batch chunk (its lines,
/// its columns) faulted its pages in afresh: 200,000 page faults and a fifth of the run's CPU
/// time on 10 M rows. Now large blocks are kept for reuse like small ones, and given back after
/// jemalloc's usual ten seconds of disuse.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static malloc_conf: Option<&'static u8> = Some(&b"oversize_threshold:0\0"[0]);

pub mod calendar;
pub mod checkpoint;
pub mod cli;
pub mod cluster;
#[cfg(test)]
mod count_dataflow;
pub mod datetime;
pub mod http;
pub mod input;
pub mod job;
pub mod kafka;
pub mod lake;
mod logging;
pub mod parquet_sink;
pub mod prefault;
pub mod progress;
pub mod registry;
pub mod runtime;
pub mod time_stash;
pub mod units;
