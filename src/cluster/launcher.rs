//! Starting the processes of a local cluster and supervising them: if one fails, all stop.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

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

/// Runs this program `processes` times on this host as one cluster, passing each process the
/// same arguments plus `--process-index i --hostfile F`, and waits for all of them.
///
/// Process 0 keeps the terminal; the others' output is prefixed with `[pN]`. When a process
/// fails, the others are stopped and the error names the failing process and its last error line.
/// Children die with this launcher (`PR_SET_PDEATHSIG`), so killing it stops the whole cluster.
pub fn launch_local(args: &[String], processes: usize) -> Result<()> {
    let addresses = free_addresses(processes)?;
    let hostfile = std::env::temp_dir().join(format!("traffic-hosts-{}", std::process::id()));
    std::fs::write(&hostfile, format_hostfile(&addresses)).context("cannot write the hostfile")?;
    let exe = std::env::current_exe().context("cannot find this program")?;
    super::signals::install_stop_handlers();
    let mut children = Vec::new();
    let last_errors: Vec<Arc<Mutex<String>>> = (0..processes).map(|_| Arc::default()).collect();
    for (index, last_error) in last_errors.iter().enumerate() {
        let mut command = Command::new(&exe);
        command
            .args(args)
            .arg("--process-index")
            .arg(index.to_string())
            .arg("--hostfile")
            .arg(&hostfile)
            .env("TRAFFIC_PROCESS_LABEL", format!("p{index}"));
        if index > 0 {
            command.stderr(Stdio::piped()).stdout(Stdio::null());
        }
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // A group of its own: a terminal's Ctrl-C reaches the launcher only, which passes
                // it on once (a second signal would make a process exit at once).
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| format!("cannot start process {index}"))?;
        if let Some(stderr) = child.stderr.take() {
            let last = last_error.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if line.contains("ERROR") || line.contains("panicked") {
                        *last.lock().expect("error line") = line;
                    }
                }
            });
        }
        children.push(child);
    }
    let outcome = supervise(&mut children);
    let _ = std::fs::remove_file(&hostfile);
    match outcome {
        Supervised::AllSucceeded => Ok(()),
        Supervised::Interrupted(signal) => {
            bail!("interrupted by signal {signal}; the cluster was stopped")
        }
        Supervised::Failed(index, status) => {
            std::thread::sleep(Duration::from_millis(100));
            let last = last_errors[index].lock().expect("error line").clone();
            let detail = if last.is_empty() { String::new() } else { format!(": {last}") };
            bail!("process {index} failed ({status}); the cluster was stopped{detail}")
        }
    }
}

enum Supervised {
    AllSucceeded,
    Failed(usize, ExitStatus),
    Interrupted(i32),
}

fn supervise(children: &mut [Child]) -> Supervised {
    let mut finished = vec![false; children.len()];
    let mut forwarded = false;
    loop {
        if super::signals::stop_requested() && !forwarded {
            // Pass the request on: each process closes its current unit of work and exits 0.
            let signal = super::signals::last_signal();
            for (child, done) in children.iter().zip(&finished) {
                if !done {
                    unsafe { libc::kill(child.id() as i32, signal) };
                }
            }
            forwarded = true;
        }
        for (index, child) in children.iter_mut().enumerate() {
            if finished[index] {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                finished[index] = true;
                if !status.success() {
                    // A Timely cluster cannot go on without a process: stop the rest now.
                    stop_all(children, &finished);
                    return if forwarded {
                        Supervised::Interrupted(super::signals::last_signal())
                    } else {
                        Supervised::Failed(index, status)
                    };
                }
            }
        }
        if finished.iter().all(|f| *f) {
            return Supervised::AllSucceeded;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the processes still running and reaps them all.
fn stop_all(children: &mut [Child], finished: &[bool]) {
    for (child, done) in children.iter_mut().zip(finished) {
        if !done {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_distinct_ports() {
        let addresses = free_addresses(3).unwrap();
        assert_eq!(addresses.len(), 3);
        assert!(addresses.iter().all(|a| a.starts_with("127.0.0.1:")));
        let mut unique = addresses.clone();
        unique.dedup();
        assert_eq!(unique.len(), 3);
    }
}
