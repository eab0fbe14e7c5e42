//! Starting the processes of a local cluster and supervising them: if one fails, all stop.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn remember_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
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
    unsafe {
        libc::signal(libc::SIGINT, remember_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, remember_signal as *const () as libc::sighandler_t);
    }
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
    loop {
        let signal = SIGNAL.load(Ordering::SeqCst);
        if signal != 0 {
            stop_all(children, &finished, signal);
            return Supervised::Interrupted(signal);
        }
        for (index, child) in children.iter_mut().enumerate() {
            if finished[index] {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                finished[index] = true;
                if !status.success() {
                    stop_all(children, &finished, libc::SIGTERM);
                    return Supervised::Failed(index, status);
                }
            }
        }
        if finished.iter().all(|f| *f) {
            return Supervised::AllSucceeded;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` to the processes still running, then kills any left after a grace period.
fn stop_all(children: &mut [Child], finished: &[bool], signal: i32) {
    for (child, done) in children.iter().zip(finished) {
        if !done {
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for child in children.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
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
