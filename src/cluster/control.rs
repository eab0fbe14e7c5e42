//! The control API (HTTP + JSON, on process 0): submit dataflows by name, list, stop them, and
//! stop the cluster. Beyond loopback it requires a bearer token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use serde_json::json;

use super::board::{Board, ClusterCommand};
use super::catalog::{now_ms, Catalog, JobRecord, JobState};
use crate::http::{constant_time_eq, serve as serve_http, Reply, Request};
use crate::lake::Location;
use crate::registry::Registry;

/// Where the control API listens, and the token it requires (if any).
#[derive(Clone, Debug)]
pub struct ControlOptions {
    /// Listening address.
    pub address: SocketAddr,
    /// Bearer token; required when `address` is not a loopback address.
    pub token: Option<String>,
}

impl ControlOptions {
    /// Checks that an address beyond loopback has a token.
    pub fn validate(&self) -> Result<()> {
        if !self.address.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            bail!(
                "the control API on {} would be reachable from other hosts: give a token (--token or TRAFFIC_TOKEN)",
                self.address
            );
        }
        Ok(())
    }
}

/// Starts serving the API; returns the bound address.
pub fn serve(
    options: &ControlOptions,
    board: Arc<Board>,
    catalog: Catalog,
    registry: Arc<Registry>,
) -> Result<SocketAddr> {
    options.validate()?;
    let token = options.token.clone().filter(|t| !t.is_empty());
    let submit_lock = Arc::new(Mutex::new(()));
    serve_http(
        options.address,
        Arc::new(move |request: Request| {
            if let Some(token) = &token {
                let given = request.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
                if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                    return Reply::error(401, "missing or wrong bearer token");
                }
            }
            handle(&request, &board, &catalog, &registry, &submit_lock)
        }),
    )
}

fn handle(request: &Request, board: &Board, catalog: &Catalog, registry: &Registry, submit_lock: &Mutex<()>) -> Reply {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["v1", "cluster"]) => {
            let jobs = board.jobs();
            let running = jobs.iter().filter(|j| j.state == JobState::Running).count();
            Reply::ok(json!({ "cluster": board.info, "jobs": jobs.len(), "running": running }))
        }
        ("POST", ["v1", "cluster", "stop"]) => {
            board.send(ClusterCommand::Shutdown);
            Reply::ok(json!({ "stopping": true }))
        }
        ("GET", ["v1", "dataflows"]) => {
            let list: Vec<_> = registry.iter().map(|r| json!({ "name": r.name, "about": r.about })).collect();
            Reply::ok(json!(list))
        }
        ("GET", ["v1", "jobs"]) => Reply::ok(json!(board.jobs().iter().map(|j| view(j, board)).collect::<Vec<_>>())),
        ("POST", ["v1", "jobs"]) => submit(request, board, catalog, registry, submit_lock),
        ("GET", ["v1", "jobs", id]) => match id.parse().ok().and_then(|id| board.job(id)) {
            Some(job) => Reply::ok(view(&job, board)),
            None => Reply::error(404, format!("no job {id}")),
        },
        ("POST", ["v1", "jobs", id, "stop"]) => stop(id, board, catalog),
        _ => Reply::error(404, format!("no route {} {}", request.method, request.path)),
    }
}

fn submit(request: &Request, board: &Board, catalog: &Catalog, registry: &Registry, submit_lock: &Mutex<()>) -> Reply {
    let body: serde_json::Value = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(e) => return Reply::error(400, format!("body must be JSON {{\"name\": ..., \"args\": [...]}}: {e}")),
    };
    let Some(name) = body["name"].as_str() else { return Reply::error(400, "missing \"name\"") };
    let args: Vec<String> = match serde_json::from_value(body["args"].clone()) {
        Ok(args) => args,
        Err(_) if body["args"].is_null() => Vec::new(),
        Err(_) => return Reply::error(400, "\"args\" must be a list of strings"),
    };
    let registration = match registry.find(name) {
        Ok(registration) => registration,
        Err(e) => return Reply::error(404, format!("{e:#}")),
    };
    let dataflow = match registration.parse(&args) {
        Ok(dataflow) => dataflow,
        Err(e) => return Reply::error(400, format!("{e:#}")),
    };
    for output in dataflow.outputs() {
        if let Err(e) = inside_lake(&output, &board.info.lake) {
            return Reply::error(403, format!("{e:#}"));
        }
    }
    // Refused here rather than failed on a worker, where a failure stops every job (fail-stop).
    if let Err(e) = dataflow.check() {
        return Reply::error(400, format!("{} job refused: {}", name, super::failstop::describe(&e)));
    }
    let _guard = submit_lock.lock().expect("submit lock");
    let id = match catalog.next_id() {
        Ok(id) => id,
        Err(e) => return Reply::error(500, format!("cannot read the catalog: {e:#}")),
    };
    let record = JobRecord::new(id, name, args.clone());
    if let Err(e) = catalog.put(&record) {
        return Reply::error(500, format!("cannot write the catalog: {e:#}"));
    }
    board.set_job(record);
    board.send(ClusterCommand::Start { id, name: name.to_string(), args });
    Reply { status: 201, body: json!({ "id": id }) }
}

fn stop(id: &str, board: &Board, catalog: &Catalog) -> Reply {
    let Some(mut job) = id.parse().ok().and_then(|id| board.job(id)) else {
        return Reply::error(404, format!("no job {id}"));
    };
    if job.state != JobState::Running {
        return Reply::error(409, format!("job {} is {:?}, not running", job.id, job.state));
    }
    job.state = JobState::Stopping;
    job.updated_ms = now_ms();
    if let Err(e) = catalog.put(&job) {
        return Reply::error(500, format!("cannot write the catalog: {e:#}"));
    }
    board.set_job(job.clone());
    board.send(ClusterCommand::Stop(job.id));
    Reply::ok(json!({ "id": job.id, "state": "stopping" }))
}

/// The canonical form of a cluster's lake: a storage URL, or `s3://` for any bucket.
pub fn lake_root(spec: &str) -> Result<String> {
    if spec == "s3://" {
        return Ok(spec.to_string());
    }
    Ok(Location::parse(spec, false)?.url)
}

/// Refuses outputs outside the cluster's lake.
fn inside_lake(output: &str, lake: &str) -> Result<()> {
    let url = Location::parse(output, false)?.url;
    let root = lake.trim_end_matches('/');
    let inside = url == root || url.starts_with(&format!("{root}/")) || (root.ends_with(':') && url.starts_with(lake));
    if !inside {
        bail!("output {} is outside the cluster's lake {lake}", crate::lake::redact(&url));
    }
    Ok(())
}

/// A job as the API shows it: arguments with secrets hidden, live figures while it runs.
fn view(job: &JobRecord, board: &Board) -> serde_json::Value {
    let figures = match (job.state, &job.summary) {
        (JobState::Running | JobState::Stopping, _) => board.progress(job.id).to_json(),
        (_, Some(summary)) => json!(summary),
        _ => serde_json::Value::Null,
    };
    json!({
        "id": job.id,
        "name": job.name,
        "args": redact_args(&job.args),
        "state": job.state,
        "starts": job.starts,
        "submitted_ms": job.submitted_ms,
        "updated_ms": job.updated_ms,
        "figures": figures,
        "error": job.error,
    })
}

/// Hides the values of options that look secret, and credentials inside URLs.
pub fn redact_args(args: &[String]) -> Vec<String> {
    const SECRET: [&str; 5] = ["secret", "token", "password", "credential", "key"];
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        let secret_flag = |flag: &str| SECRET.iter().any(|s| flag.to_ascii_lowercase().contains(s));
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
        } else if let Some((flag, _)) = arg.split_once('=').filter(|(f, _)| f.starts_with("--") && secret_flag(f)) {
            out.push(format!("{flag}=***"));
        } else {
            hide_next = arg.starts_with("--") && secret_flag(arg);
            out.push(crate::lake::redact(arg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let args: Vec<String> =
            ["--output", "s3://user:pw@bucket/x", "--api-token", "abc", "--secret-key=xyz", "--topic", "t"]
                .map(String::from)
                .to_vec();
        assert_eq!(
            redact_args(&args),
            vec!["--output", "s3://***@bucket/x", "--api-token", "***", "--secret-key=***", "--topic", "t"]
        );
    }

    #[test]
    fn outputs_must_stay_in_the_lake() {
        assert!(inside_lake("/tmp/lake/a", "file:///tmp/lake").is_ok());
        assert!(inside_lake("/tmp/lake", "file:///tmp/lake").is_ok());
        assert!(inside_lake("/tmp/lake/../etc", "file:///tmp/lake").is_err());
        assert!(inside_lake("/tmp/lakeside", "file:///tmp/lake").is_err());
        assert!(inside_lake("s3://traffic-batch-data/x", "s3:").is_ok());
        assert!(inside_lake("s3://other/x", "s3://traffic-batch-data").is_err());
    }

    #[test]
    fn remote_addresses_need_a_token() {
        let open = ControlOptions { address: "0.0.0.0:7077".parse().unwrap(), token: None };
        assert!(open.validate().is_err());
        assert!(ControlOptions { token: Some("t".into()), ..open }.validate().is_ok());
        assert!(ControlOptions { address: "127.0.0.1:7077".parse().unwrap(), token: None }.validate().is_ok());
    }
}
