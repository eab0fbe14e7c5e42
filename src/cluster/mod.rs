//! The cluster: processes of Timely workers, how they are placed, started and kept fail-stop.

mod board;
pub mod catalog;
mod connect;
pub(crate) mod control;
mod execute;
pub(crate) mod failstop;
pub(crate) mod hostfile;
pub mod launcher;
pub mod processes;
pub(crate) mod runtime;
pub mod signals;
mod spec;
pub mod supervisor;
mod worker_loop;

pub use execute::run_job;
pub use failstop::{fail_stop, install_panic_hook};
pub use launcher::launch_local;
pub use spec::{ClusterArgs, ClusterSpec};
