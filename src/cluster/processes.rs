//! A group of this program's processes on this host forming one cluster: started together,
//! watched together, stopped together.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::hostfile::format_hostfile;

/// Reserves `count` free TCP ports on 127.0.0.1 and returns them as `host:port` addresses.
pub fn free_addresses(count: usize) -> Result<Vec<String>> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("cannot reserve local ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.to_string()))
        .collect::<std::io::Result<_>>()
        .context("cannot read local ports")
}

/// How a group is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupState {
    /// Every process is running (or some finished successfully).
    Running,
    /// Every process exited successfully.
    Succeeded,
    /// A process failed: its index, status and last error line.
    Failed(usize, ExitStatus, String),
}

/// The processes of one cluster incarnation.
pub struct ProcessGroup {
    children: Vec<Child>,
    statuses: Vec<Option<ExitStatus>>,
    last_errors: Vec<Arc<Mutex<String>>>,
    hostfile: Option<PathBuf>,
}

impl ProcessGroup {
    /// Starts `processes` copies of this program with `args` plus `--process-index i --hostfile F`
    /// (a hostfile of fresh loopback ports). Process 0 keeps the terminal; the others' error
    /// output is passed through. Each process gets its own process group (a terminal's Ctrl-C
    /// reaches the caller only, which passes it on once) and dies with the caller's thread.
    pub fn start(args: &[String], processes: usize) -> Result<ProcessGroup> {
        let addresses = free_addresses(processes)?;
        let hostfile = std::env::temp_dir().join(format!(
            "traffic-hosts-{}-{}",
            std::process::id(),
            addresses[0].replace([':', '.'], "-")
        ));
        std::fs::write(&hostfile, format_hostfile(&addresses)).context("cannot write the hostfile")?;
        let per_process = (0..processes)
            .map(|index| {
                let mut own = args.to_vec();
                own.extend(["--process-index".to_string(), index.to_string(), "--hostfile".to_string()]);
                own.push(hostfile.display().to_string());
                own
            })
            .collect();
        ProcessGroup::spawn(per_process, Some(hostfile))
    }

    /// Starts one copy of this program per entry of `per_process`, with those arguments.
    pub fn spawn(per_process: Vec<Vec<String>>, hostfile: Option<PathBuf>) -> Result<ProcessGroup> {
        let exe = std::env::current_exe().context("cannot find this program")?;
        let processes = per_process.len();
        let mut group =
            ProcessGroup { children: Vec::new(), statuses: vec![None; processes], last_errors: Vec::new(), hostfile };
        for (index, args) in per_process.into_iter().enumerate() {
            let mut command = Command::new(&exe);
            command.args(args).env("TRAFFIC_PROCESS_LABEL", format!("p{index}"));
            if index > 0 {
                command.stderr(Stdio::piped()).stdout(Stdio::null());
            }
            // SAFETY: Between fork and exec the hook only calls prctl and setpgid with plain integers;
            // both are raw system calls that neither allocate nor take locks.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    libc::setpgid(0, 0);
                    Ok(())
                });
            }
            let mut child = command.spawn().with_context(|| format!("cannot start process {index}"))?;
            let last = Arc::new(Mutex::new(String::new()));
            if let Some(stderr) = child.stderr.take() {
                let last = last.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        eprintln!("{line}");
                        if line.contains("ERROR") || line.contains("panicked") {
                            *last.lock().expect("error line") = line;
                        }
                    }
                });
            }
            group.children.push(child);
            group.last_errors.push(last);
        }
        Ok(group)
    }

    /// Checks on the processes without waiting.
    pub fn poll(&mut self) -> GroupState {
        for (index, child) in self.children.iter_mut().enumerate() {
            if self.statuses[index].is_some() {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                self.statuses[index] = Some(status);
                if !status.success() {
                    // Give the error-output relay a moment to see the last lines.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    let last = self.last_errors[index].lock().expect("error line").clone();
                    return GroupState::Failed(index, status, last);
                }
            }
        }
        if self.statuses.iter().all(Option::is_some) {
            GroupState::Succeeded
        } else {
            GroupState::Running
        }
    }

    /// Sends `signal` to every process still running.
    pub fn signal(&self, signal: i32) {
        for (child, status) in self.children.iter().zip(&self.statuses) {
            if status.is_none() {
                // SAFETY: kill takes plain integers; the child has not been reaped (no status yet), so
                // its pid still names it.
                unsafe { libc::kill(child.id() as i32, signal) };
            }
        }
    }

    /// Kills every process still running and reaps them all.
    pub fn kill(&mut self) {
        for (child, status) in self.children.iter_mut().zip(&mut self.statuses) {
            if status.is_none() {
                let _ = child.kill();
            }
            if let Ok(done) = child.wait() {
                *status = Some(done);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
        if let Some(hostfile) = &self.hostfile {
            let _ = std::fs::remove_file(hostfile);
        }
    }
}
