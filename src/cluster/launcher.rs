//! `traffic run -n N`: one run of a job on N local processes; if one fails, all stop.

use std::time::Duration;

use anyhow::{bail, Result};

use super::processes::{GroupState, ProcessGroup};

pub use super::processes::free_addresses;

/// Runs this program `processes` times on this host as one cluster (see [`ProcessGroup`]) and
/// waits for all of them. SIGINT or SIGTERM is passed on once, so that every process stops
/// cleanly; when a process fails, the others are killed and the error names the failing process
/// and its last error line.
pub fn launch_local(args: &[String], processes: usize) -> Result<()> {
    super::signals::install_stop_handlers();
    let mut group = ProcessGroup::start(args, processes)?;
    let mut forwarded = false;
    loop {
        if super::signals::stop_requested() && !forwarded {
            group.signal(super::signals::last_signal());
            forwarded = true;
        }
        match group.poll() {
            // Polled often: the launcher's exit is the end of the job for whoever timed it.
            GroupState::Running => std::thread::sleep(Duration::from_millis(5)),
            GroupState::Succeeded => return Ok(()),
            GroupState::Failed(index, status, last) => {
                group.kill();
                if forwarded {
                    bail!(
                        "interrupted by signal {}; the processes did not stop cleanly",
                        super::signals::last_signal()
                    );
                }
                let detail = if last.is_empty() { String::new() } else { format!(": {last}") };
                bail!("process {index} failed ({status}); the cluster was stopped{detail}")
            }
        }
    }
}
