//! The cluster: processes of Timely workers, how they are placed, started and kept fail-stop.

pub mod board;
pub mod catalog;
pub mod connect;
pub mod control;
pub mod execute;
pub mod failstop;
pub mod hostfile;
pub mod launcher;
pub mod processes;
pub mod runtime;
pub mod signals;
pub mod spec;
pub mod supervisor;

pub use execute::run_job;
pub use failstop::{fail_stop, install_panic_hook};
pub use launcher::launch_local;
pub use spec::{ClusterArgs, ClusterSpec};
