//! Client commands of the control API: `traffic submit`, `list`, `stop`, `cluster status`,
//! `cluster stop`.

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

use super::{is_help, print_help};
use crate::http::request;
use crate::registry::Registry;

/// Where the control API is, and the token it wants.
#[derive(Args, Debug, Clone)]
pub struct ControlArgs {
    /// Control API address (process 0 of the cluster): host:port, or http://host:port.
    #[arg(long, env = "TRAFFIC_CONTROL", default_value = "127.0.0.1:7077", value_parser = control_address)]
    pub control: String,
    /// Bearer token of the control API.
    #[arg(long, env = "TRAFFIC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ControlArgs {
    /// Calls the API; a non-2xx answer becomes an error carrying the API's message.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let response = request(&self.control, method, path, body, self.token.as_deref())?;
        if !(200..300).contains(&response.status) {
            let message =
                response.body["error"].as_str().map(str::to_string).unwrap_or_else(|| response.body.to_string());
            bail!("{} ({})", message, response.status);
        }
        Ok(response.body)
    }
}

/// A control address as `host:port`, also when given as the URL `traffic up` prints.
fn control_address(text: &str) -> Result<String, String> {
    let address = text.trim();
    if address.starts_with("https://") {
        return Err("the control API speaks plain HTTP: give host:port or http://host:port".into());
    }
    let address = address.strip_prefix("http://").unwrap_or(address).trim_end_matches('/');
    if address.is_empty() || address.contains('/') {
        return Err(format!("'{text}' is not host:port or http://host:port"));
    }
    Ok(address.to_string())
}

/// Options of `traffic submit`. Its own help flag is off, so that `--help` after the dataflow's
/// name reaches the dataflow's arguments (and prints their help).
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct SubmitArgs {
    #[command(flatten)]
    control: ControlArgs,
    /// The dataflow to run (see `traffic dataflows`).
    #[arg(allow_hyphen_values = true)]
    dataflow: String,
    /// Its arguments, as for `traffic run`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `traffic submit`: prints the new job's id; with `--help`, the dataflow's options.
pub fn submit(args: SubmitArgs, registry: &Registry) -> Result<()> {
    if is_help(&args.dataflow) {
        return print_help("submit");
    }
    if args.args.iter().any(|a| is_help(a)) {
        let registration = registry.find(&args.dataflow)?;
        let command = (registration.command)().bin_name(format!("traffic submit {}", registration.name));
        return Ok(command.about(registration.about).print_help()?);
    }
    let body = json!({ "name": args.dataflow, "args": args.args });
    let answer = args.control.call("POST", "/v1/jobs", Some(&body))?;
    println!("{}", answer["id"]);
    Ok(())
}

/// `traffic list`: one line per job.
pub fn list(control: ControlArgs) -> Result<()> {
    let jobs = control.call("GET", "/v1/jobs", None)?;
    println!(
        "{:<4} {:<8} {:<9} {:>12} {:>12} {:>11} {:>10} {:>14}  args",
        "id", "name", "state", "read", "written", "quarantined", "kafka lag", "frontier"
    );
    for job in jobs.as_array().into_iter().flatten() {
        let figure = |name: &str| job["figures"][name].as_u64().map_or("-".to_string(), |v| v.to_string());
        let args: Vec<&str> = job["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!(
            "{:<4} {:<8} {:<9} {:>12} {:>12} {:>11} {:>10} {:>14}  {}",
            job["id"],
            job["name"].as_str().unwrap_or(""),
            job["state"].as_str().unwrap_or(""),
            figure("read"),
            figure("written"),
            figure("quarantined"),
            figure("kafka_lag"),
            figure("frontier"),
            args.join(" ")
        );
        if let Some(error) = job["error"].as_str() {
            println!("     error: {error}");
        }
    }
    Ok(())
}

/// `traffic stop <id>`.
pub fn stop(control: ControlArgs, id: u64) -> Result<()> {
    control.call("POST", &format!("/v1/jobs/{id}/stop"), None)?;
    println!("job {id} is stopping (a stream writes its final checkpoint first)");
    Ok(())
}

/// `traffic cluster status`.
pub fn status(control: ControlArgs) -> Result<()> {
    let status = control.call("GET", "/v1/cluster", None)?;
    let cluster = &status["cluster"];
    println!(
        "cluster at {}: {} processes x {} workers, lake {}, state {}; {} jobs ({} running)",
        control.control,
        cluster["processes"],
        cluster["workers"],
        cluster["lake"].as_str().unwrap_or(""),
        cluster["state"].as_str().unwrap_or(""),
        status["jobs"],
        status["running"]
    );
    Ok(())
}

/// `traffic cluster stop`.
pub fn shutdown(control: ControlArgs) -> Result<()> {
    control.call("POST", "/v1/cluster/stop", None)?;
    println!("the cluster is stopping; running jobs checkpoint now and resume at the next start");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_addresses_are_host_port_or_a_plain_http_url() {
        assert_eq!(control_address("127.0.0.1:7077").unwrap(), "127.0.0.1:7077");
        assert_eq!(control_address("http://127.0.0.1:7077").unwrap(), "127.0.0.1:7077");
        assert_eq!(control_address("http://localhost:7077/").unwrap(), "localhost:7077");
        assert!(control_address("https://127.0.0.1:7077").unwrap_err().contains("plain HTTP"));
        assert!(control_address("http://host:1/v1/jobs").is_err());
        assert!(control_address("").is_err());
    }
}
