//! Live job counters and the reporter that shows them: a bar on a terminal, log lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters updated by a job's operators, read by the reporter and the control API.
#[derive(Debug, Default)]
pub struct Progress {
    /// Records parsed so far on this process.
    pub records: AtomicU64,
    /// Input bytes processed so far on this process.
    pub bytes: AtomicU64,
    /// Input bytes the job plans to process (all processes).
    pub total_bytes: AtomicU64,
    /// Units (chunks, epochs) committed.
    pub committed: AtomicU64,
    /// Units planned (0 when open-ended).
    pub planned: AtomicU64,
    /// Committed figures, kept by the committer (on the first process): records read...
    pub read: AtomicU64,
    /// ... written to the lake...
    pub written: AtomicU64,
    /// ... and quarantined.
    pub quarantined: AtomicU64,
    /// The last committed epoch or chunk time.
    pub frontier: AtomicU64,
    /// Messages waiting in Kafka when the last epoch closed.
    pub lag: AtomicU64,
}

impl Progress {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Sets a figure.
    pub fn set(figure: &AtomicU64, value: u64) {
        figure.store(value, Ordering::Relaxed);
    }

    /// The committed figures as JSON, for the control API.
    pub fn to_json(&self) -> serde_json::Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "read": get(&self.read),
            "written": get(&self.written),
            "quarantined": get(&self.quarantined),
            "frontier": get(&self.frontier),
            "kafka_lag": get(&self.lag),
            "committed_units": get(&self.committed),
            "planned_units": get(&self.planned),
            "parsed_here": get(&self.records),
            "bytes_here": get(&self.bytes),
        })
    }

    fn line(&self, elapsed: Duration) -> String {
        let records = self.records.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let total = self.total_bytes.load(Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64().max(1e-3);
        let mut line = format!(
            "{} records | {}{} | {}/s",
            human_count(records),
            human_bytes(bytes),
            if total > 0 { format!(" of {}", human_bytes(total)) } else { String::new() },
            human_bytes((bytes as f64 / seconds) as u64)
        );
        let planned = self.planned.load(Ordering::Relaxed);
        if planned > 0 {
            line.push_str(&format!(" | committed {}/{}", self.committed.load(Ordering::Relaxed), planned));
        }
        line
    }
}

/// Shows progress until dropped.
pub struct Reporter {
    /// Dropped to stop the thread at once, rather than at its next tick.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts reporting `progress` for a job called `name`: redrawn every 200 ms on a terminal,
    /// a log line every 10 s otherwise.
    pub fn start(name: &str, progress: Arc<Progress>) -> Reporter {
        let (stop, stopped) = mpsc::channel::<()>();
        let name = name.to_string();
        let terminal = std::io::stderr().is_terminal();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let period = if terminal { Duration::from_millis(200) } else { Duration::from_secs(10) };
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                let line = progress.line(started.elapsed());
                if terminal {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K{name}: {line}");
                } else {
                    log::info!(target: "traffic", "{name}: {line}");
                }
            }
            if terminal {
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            }
        });
        Reporter { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `1234567` as `1.23 M`.
pub fn human_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", n as f64 / 1e6),
        _ => format!("{:.2} G", n as f64 / 1e9),
    }
}

/// `1536` as `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_figures() {
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(48_120), "48.1 k");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10), "10 B");
        let progress = Progress::default();
        Progress::add(&progress.records, 10);
        Progress::add(&progress.planned, 4);
        assert!(progress.line(Duration::from_secs(1)).contains("committed 0/4"));
    }
}
