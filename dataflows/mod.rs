//! The named dataflows users submit, and the registry that maps each name to its arguments and
//! constructor.

pub mod batch;
pub mod stream;

use std::sync::Arc;

use anyhow::{anyhow, Result};

use crate::job::Dataflow;

/// A dataflow known by name: its description, typed arguments and constructor.
pub struct Registration {
    /// The name users submit it by.
    pub name: &'static str,
    /// One line on what it does.
    pub about: &'static str,
    /// Its arguments, as a clap command named after it.
    pub command: fn() -> clap::Command,
    /// Builds it from parsed arguments (validating them).
    pub build: fn(&clap::ArgMatches) -> Result<Arc<dyn Dataflow>>,
}

impl Registration {
    /// Parses `args` (without the name) and builds the dataflow.
    pub fn parse(&self, args: &[String]) -> Result<Arc<dyn Dataflow>> {
        let matches =
            (self.command)().no_binary_name(true).try_get_matches_from(args).map_err(|e| anyhow!("{}", e.render()))?;
        (self.build)(&matches)
    }
}

/// Every registered dataflow, in the order `traffic dataflows` lists them.
pub fn registry() -> Vec<Registration> {
    vec![batch::registration(), stream::registration()]
}

/// The dataflow called `name`.
pub fn find(name: &str) -> Option<Registration> {
    registry().into_iter().find(|r| r.name == name)
}

/// The dataflow called `name`, built from `args`.
pub fn build(name: &str, args: &[String]) -> Result<Arc<dyn Dataflow>> {
    find(name).ok_or_else(|| anyhow!("no dataflow named '{name}'"))?.parse(args)
}
