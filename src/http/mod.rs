//! A small HTTP/1.1 layer for the control API: a server on the I/O runtime and a blocking client.
//! One request per connection, JSON bodies, bearer-token authentication.

mod client;
mod server;

pub use client::{request, Response};
pub use server::{serve, Reply, Request};

/// Largest request or response body accepted, in bytes.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
