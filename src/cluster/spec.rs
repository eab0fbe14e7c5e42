//! The shape of a cluster (processes, workers per process, addresses) and its Timely configuration.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::hostfile::read_hostfile;

/// Command-line options that place a job on a cluster.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterArgs {
    /// Number of worker processes (started on this host unless --process-index is given).
    #[arg(short = 'n', long = "processes", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub processes: u32,
    /// Worker threads per process.
    #[arg(short = 'w', long = "workers", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// File listing every process's host:port, one per line, in process-index order.
    #[arg(long)]
    pub hostfile: Option<PathBuf>,
    /// This process's index in the hostfile (each host starts its own process).
    #[arg(long = "process-index")]
    pub process_index: Option<u32>,
}

/// A resolved cluster shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Worker threads per process.
    pub workers: usize,
    /// This process's index.
    pub process: usize,
    /// Addresses of all processes (empty for a single process).
    pub addresses: Vec<String>,
}

impl ClusterSpec {
    /// A single process with `workers` threads.
    pub fn local(workers: usize) -> Self {
        ClusterSpec { workers, process: 0, addresses: Vec::new() }
    }

    /// Number of processes.
    pub fn processes(&self) -> usize {
        self.addresses.len().max(1)
    }
}

impl ClusterArgs {
    /// Whether this invocation should start the processes itself (several, no process index).
    pub fn launches_locally(&self) -> bool {
        self.processes > 1 && self.process_index.is_none()
    }

    /// The spec for this process, once it knows its index.
    pub fn spec(&self) -> Result<ClusterSpec> {
        let workers = self.workers as usize;
        match (&self.hostfile, self.process_index) {
            (None, None) if self.processes == 1 => Ok(ClusterSpec::local(workers)),
            (None, None) => bail!("several processes need a launcher: run without --process-index"),
            (None, Some(_)) => bail!("--process-index needs --hostfile"),
            (Some(_), None) => bail!("--hostfile needs --process-index on each host"),
            (Some(path), Some(index)) => {
                let addresses = read_hostfile(path)?;
                if self.processes > 1 && addresses.len() != self.processes as usize {
                    bail!("-n {} but the hostfile lists {} processes", self.processes, addresses.len());
                }
                if index as usize >= addresses.len() {
                    bail!("--process-index {index} but the hostfile lists {} processes", addresses.len());
                }
                Ok(ClusterSpec { workers, process: index as usize, addresses })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_process_by_default() {
        let args = ClusterArgs { processes: 1, workers: 2, ..Default::default() };
        assert!(!args.launches_locally());
        assert_eq!(args.spec().unwrap(), ClusterSpec::local(2));
    }

    #[test]
    fn hostfile_processes_must_agree() {
        let path = std::env::temp_dir().join(format!("traffic-hosts-{}", std::process::id()));
        std::fs::write(&path, "127.0.0.1:1\n127.0.0.1:2\n").unwrap();
        let args = ClusterArgs { processes: 3, workers: 1, hostfile: Some(path.clone()), process_index: Some(0) };
        assert!(args.spec().is_err());
        let args = ClusterArgs { processes: 2, process_index: Some(1), ..args };
        let spec = args.spec().unwrap();
        assert_eq!((spec.process, spec.processes()), (1, 2));
        std::fs::remove_file(path).unwrap();
    }
}
