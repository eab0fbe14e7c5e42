//! The process-wide async runtime that drives object-store and network I/O for worker threads.

use std::future::Future;
use std::sync::OnceLock;

/// Returns the shared Tokio runtime, creating it on first use.
///
/// Timely workers are plain threads: they hand their I/O to this runtime and wait for it, so
/// object-store requests from all workers of a process share one connection pool.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("traffic-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread.
///
/// Must not be called from inside the runtime itself.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
