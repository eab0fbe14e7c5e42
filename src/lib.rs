//! traffic: a city-traffic data platform on Timely and Differential Dataflow.
//!
//! Historical count CSVs and live Kafka sensor readings become Parquet datasets in an object
//! store, exactly once, with progress frontiers as checkpoints. `src/` holds the platform (one
//! module per concern); `dataflows/` holds the named dataflows users run.

#![warn(missing_docs)]

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
