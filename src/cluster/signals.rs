//! SIGINT and SIGTERM as a request to stop cleanly; a second signal, a second or more after the
//! first, ends the process at once (signals repeated within a second count once: some tools
//! signal both a process and its group).

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicUsize = AtomicUsize::new(0);
static FIRST_AT_MS: AtomicI64 = AtomicI64::new(0);

fn monotonic_ms() -> i64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime is async-signal-safe and only writes the `timespec` borrowed here.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}

extern "C" fn on_signal(signal: libc::c_int) {
    LAST.store(signal as usize, Ordering::SeqCst);
    let now = monotonic_ms();
    if RECEIVED.fetch_add(1, Ordering::SeqCst) == 0 {
        FIRST_AT_MS.store(now, Ordering::SeqCst);
    } else if now - FIRST_AT_MS.load(Ordering::SeqCst) >= 1000 {
        // SAFETY: The user insists. _exit is async-signal-safe and takes a plain integer; only
        // async-signal-safe calls here.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Routes SIGINT and SIGTERM to [`stop_requested`].
pub fn install_stop_handlers() {
    // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that only touches atomics and calls
    // async-signal-safe functions (clock_gettime, _exit), so it is a sound signal handler.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether a stop was requested by a signal.
pub fn stop_requested() -> bool {
    RECEIVED.load(Ordering::SeqCst) > 0
}

/// The last signal received (0 if none).
pub fn last_signal() -> i32 {
    LAST.load(Ordering::SeqCst) as i32
}
