//! The supervisor of a local cluster: starts its worker processes, restarts them all (with
//! back-off) when one dies, and stops them cleanly when asked.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::processes::{GroupState, ProcessGroup};

/// Restarts wait 1 s, then twice as long each time, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A cluster that ran this long without failing is healthy again: back-off starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a clean stop may take before the processes are killed.
const STOP_GRACE: Duration = Duration::from_secs(120);

/// Runs the process group that `start` creates until all its processes exit successfully (a
/// cluster stop through the API) or `stop()` turns true (then each gets SIGTERM and stops
/// cleanly). A failed process brings the group down, and the group is started again.
pub fn supervise(start: &dyn Fn() -> Result<ProcessGroup>, stop: &dyn Fn() -> bool) -> Result<()> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let mut group = start()?;
        let mut stopping: Option<Instant> = None;
        let failure = loop {
            if stopping.is_none() && stop() {
                group.signal(libc::SIGTERM);
                stopping = Some(Instant::now());
            }
            match group.poll() {
                GroupState::Running => {
                    if stopping.is_some_and(|since| since.elapsed() > STOP_GRACE) {
                        group.kill();
                        bail!("the cluster did not stop within {} s and was killed", STOP_GRACE.as_secs());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                GroupState::Succeeded => return Ok(()),
                GroupState::Failed(index, status, last) => break (index, status, last),
            }
        };
        group.kill();
        if stopping.is_some() {
            bail!("process {} failed while stopping ({}): {}", failure.0, failure.1, failure.2);
        }
        if started.elapsed() > HEALTHY_AFTER {
            backoff = Duration::from_secs(1);
        }
        log::error!(
            target: "traffic",
            "process {} died ({}){}; restarting the cluster in {} s",
            failure.0,
            failure.1,
            if failure.2.is_empty() { String::new() } else { format!(": {}", failure.2) },
            backoff.as_secs()
        );
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
