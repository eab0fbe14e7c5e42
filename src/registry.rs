//! The registry: the dataflows a binary offers, by name, with their arguments and constructors.
//!
//! The platform never names a dataflow. The binary assembles a [`Registry`] (one
//! [`Registration`] per dataflow) and hands it to the CLI, which hands it to the cluster runtime
//! and the control API.

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
        let matches = (self.command)().no_binary_name(true).try_get_matches_from(args).map_err(|e| {
            // clap's text: `error: ` and the message (on several lines when it lists arguments),
            // a blank line, then usage and a hint. One line of it.
            let text = e.render().to_string();
            let message: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let message = message.join(" ");
            let message = message.trim_start_matches("error: ");
            anyhow!("{} arguments: {message} (see `traffic run {} --help`)", self.name, self.name)
        })?;
        (self.build)(&matches)
    }
}

/// Every dataflow a binary offers, in the order `traffic dataflows` lists them.
#[derive(Default)]
pub struct Registry {
    registrations: Vec<Registration>,
}

impl Registry {
    /// A registry of `registrations`, in that order.
    pub fn new(registrations: Vec<Registration>) -> Registry {
        Registry { registrations }
    }

    /// Every registration, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.registrations.iter()
    }

    /// The dataflow called `name`, or an error listing the known ones.
    pub fn find(&self, name: &str) -> Result<&Registration> {
        self.registrations.iter().find(|r| r.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.registrations.iter().map(|r| r.name).collect();
            anyhow!("no dataflow named '{name}'; known: {}", names.join(", "))
        })
    }

    /// The dataflow called `name`, built from `args`.
    pub fn build(&self, name: &str, args: &[String]) -> Result<Arc<dyn Dataflow>> {
        self.find(name)?.parse(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_argument_is_one_line_naming_what_is_missing() {
        let registry = Registry::new(vec![crate::count_dataflow::registration()]);
        let error = registry.build("count", &["--input".into(), "x".into()]).err().expect("--to is missing");
        let text = error.to_string();
        assert!(!text.contains('\n') && !text.starts_with("error"), "{text:?}");
        assert!(text.starts_with("count arguments: the following required arguments were not provided"), "{text}");
        assert!(text.contains("--to <TO>") && text.contains("traffic run count --help"), "{text}");
    }
}
