//! End-to-end tests of the cluster runtime: the control API, restarts after kill -9, rescaling,
//! two "hosts" on two loopback addresses, and token authentication. Real Kafka and S3 servers.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Int32Array, Int64Array};
use common::kafka::broker;
use common::reference::{count_rows, shipped_rows};
use common::{column, list, read_parquet, run, run_ok, temp_dir};
use serde_json::{json, Value};
use traffic::http::request;

fn free_port_address(host: &str) -> String {
    let port = traffic::cluster::launcher::free_addresses(1).unwrap()[0].rsplit(':').next().unwrap().to_string();
    format!("{host}:{port}")
}

fn api(control: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let response = request(control, method, path, body, None).unwrap();
    assert!((200..300).contains(&response.status), "{method} {path}: {} {}", response.status, response.body);
    response.body
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn job(control: &str, id: u64) -> Value {
    api(control, "GET", &format!("/v1/jobs/{id}"), None)
}

/// Starts `traffic cluster start` in the foreground (its own supervisor), with the S3 settings.
fn start_cluster(processes: u32, control: &str, state: &str, env: &[(&str, String)]) -> Child {
    let child = common::traffic()
        .args([
            "cluster",
            "start",
            "-n",
            &processes.to_string(),
            "-w",
            "1",
            "--control",
            control,
            "--state",
            state,
            "--lake",
            "s3://",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the control API", Duration::from_secs(60), || request(control, "GET", "/v1/cluster", None, None).is_ok());
    child
}

fn stop_cluster(control: &str, mut supervisor: Child) {
    api(control, "POST", "/v1/cluster/stop", None);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = supervisor.try_wait().unwrap() {
            assert!(status.success(), "the cluster did not stop cleanly: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the cluster did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Worker processes of a supervisor (its children).
fn worker_pids(supervisor: u32) -> Vec<i32> {
    let out = std::process::Command::new("pgrep").args(["-P", &supervisor.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(|p| p.parse().unwrap()).collect()
}

fn stream_keys(output: &str) -> Vec<(i32, i64)> {
    let mut keys = Vec::new();
    for prefix in ["readings", "quarantine"] {
        for b in read_parquet(output, prefix) {
            let (p, o) = (column::<Int32Array>(&b, "kafka_partition"), column::<Int64Array>(&b, "kafka_offset"));
            keys.extend((0..b.num_rows()).map(|i| (p.value(i), o.value(i))));
        }
    }
    keys
}

#[test]
fn a_cluster_runs_jobs_by_name_survives_kill_minus_nine_and_rescales() {
    let kafka = broker();
    let s3 = common::s3::server();
    let env = s3.env();
    let topic = "cluster-stream";
    kafka.create_topic(topic, 4);
    let pid = std::process::id();
    let dir = temp_dir("cluster");
    let state = dir.join("state");
    let control = free_port_address("127.0.0.1");
    let batch_out = format!("s3://traffic-batch-data/cluster-{pid}");
    let stream_out = format!("s3://traffic-streaming-data/cluster-{pid}");
    let producer =
        kafka.produce_in_background(topic, &["--rate", "4000", "--count", "40000", "--bad-fraction", "0.01"]);

    let supervisor = start_cluster(2, &control, state.to_str().unwrap(), &env);
    let data = common::data_dir();
    let batch = api(
        &control,
        "POST",
        "/v1/jobs",
        Some(&json!({"name": "batch", "args": ["--input", data.to_str().unwrap(), "--output", batch_out]})),
    );
    let stream_args = json!(["--brokers", kafka.bootstrap, "--topic", topic, "--output", stream_out, "--epoch", "1s"]);
    let stream = api(&control, "POST", "/v1/jobs", Some(&json!({"name": "stream", "args": stream_args})));
    let (batch_id, stream_id) = (batch["id"].as_u64().unwrap(), stream["id"].as_u64().unwrap());

    // A job that could only fail is refused when submitted: on a worker its failure would stop
    // the cluster, and the stream with it.
    let missing = dir.join("no-history");
    let bad =
        json!({"name": "batch", "args": ["--input", missing.to_str().unwrap(), "--output", format!("{batch_out}-x")]});
    let refused = request(&control, "POST", "/v1/jobs", Some(&bad), None).unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["error"].as_str().is_some_and(|e| e.contains("does not exist")), "{}", refused.body);

    // `list` shows both, with live figures; the batch finishes with the right dataset.
    wait_for("the batch job to finish", Duration::from_secs(60), || job(&control, batch_id)["state"] == "finished");
    wait_for("live stream figures", Duration::from_secs(60), || {
        job(&control, stream_id)["figures"]["read"].as_u64() > Some(0)
    });
    // The control address also as the URL `traffic up` prints.
    let listed = run_ok(&["list", "--control", &format!("http://{control}/")], &[]);
    assert!(
        listed.contains("batch")
            && listed.contains("finished")
            && listed.contains("stream")
            && listed.contains("running"),
        "{listed}"
    );
    assert_eq!(api(&control, "GET", "/v1/jobs", None).as_array().map(Vec::len), Some(2), "the refused job is listed");
    assert_eq!(job(&control, stream_id)["starts"].as_u64(), Some(1), "the cluster restarted");
    let rows = count_rows(&read_parquet(&batch_out, "counts"));
    assert!(rows == shipped_rows(), "batch dataset differs ({} rows)", rows.len());

    // kill -9 one worker process: the supervisor restarts the cluster and the stream resumes.
    let workers = worker_pids(supervisor.id());
    assert_eq!(workers.len(), 2, "{workers:?}");
    // SAFETY: kill takes plain integers; the pid is a live child of the supervisor just listed.
    unsafe { libc::kill(workers[1], libc::SIGKILL) };
    wait_for("the stream to resume", Duration::from_secs(90), || {
        request(&control, "GET", &format!("/v1/jobs/{stream_id}"), None, None)
            .is_ok_and(|r| r.body["starts"].as_u64() == Some(2) && r.body["figures"]["read"].as_u64() > Some(0))
    });
    assert_eq!(job(&control, batch_id)["starts"].as_u64(), Some(1), "a finished batch job was run again");

    // Restart with three processes on the same state: the stream goes on.
    stop_cluster(&control, supervisor);
    let supervisor = start_cluster(3, &control, state.to_str().unwrap(), &env);
    assert_eq!(api(&control, "GET", "/v1/cluster", None)["cluster"]["processes"], 3);
    producer.join().unwrap();
    let ends = kafka.end_offsets(topic);
    let total: i64 = ends.iter().sum();
    wait_for("the stream to drain the topic", Duration::from_secs(120), || {
        job(&control, stream_id)["figures"]["read"].as_u64() == Some(total as u64)
    });
    let stopped = run_ok(&["stop", "--control", &control, &stream_id.to_string()], &[]);
    assert!(stopped.contains("stopping"), "{stopped}");
    wait_for("the stream to stop", Duration::from_secs(60), || job(&control, stream_id)["state"] == "stopped");
    stop_cluster(&control, supervisor);

    let keys = stream_keys(&stream_out);
    let unique: HashSet<(i32, i64)> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "records written twice");
    assert_eq!(keys.len() as i64, total, "records lost");
    let per_partition: HashMap<i32, usize> = keys.iter().fold(HashMap::new(), |mut m, (p, _)| {
        *m.entry(*p).or_default() += 1;
        m
    });
    for (p, end) in ends.iter().enumerate() {
        assert_eq!(per_partition.get(&(p as i32)).copied().unwrap_or(0) as i64, *end, "partition {p}");
    }
    assert!(list(&stream_out, "_staging").is_empty());
}

#[test]
fn two_hosts_on_two_loopback_addresses_form_one_cluster() {
    let dir = temp_dir("two-hosts");
    let hosts = [free_port_address("127.0.0.1"), free_port_address("127.0.0.2")];
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, format!("{}\n{}\n", hosts[0], hosts[1])).unwrap();
    let control = free_port_address("127.0.0.1");
    let state = dir.join("state");
    let lake = dir.join("lake");
    let workers: Vec<Child> = (0..2)
        .map(|index| {
            common::traffic()
                .args([
                    "worker",
                    "--hostfile",
                    hostfile.to_str().unwrap(),
                    "--process-index",
                    &index.to_string(),
                    "-w",
                    "2",
                ])
                .args(["--control", &control, "--state", state.to_str().unwrap(), "--lake", lake.to_str().unwrap()])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_for("the control API", Duration::from_secs(60), || {
        request(&control, "GET", "/v1/cluster", None, None).is_ok()
    });
    let info = api(&control, "GET", "/v1/cluster", None);
    assert_eq!((info["cluster"]["processes"].as_u64(), info["cluster"]["workers"].as_u64()), (Some(2), Some(2)));
    let out = lake.join("batch");
    let data = common::data_dir();
    let id = run_ok(
        &[
            "submit",
            "--control",
            &control,
            "batch",
            "--input",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--chunk-size",
            "64KiB",
        ],
        &[],
    );
    let id: u64 = id.trim().parse().unwrap();
    wait_for("the batch job", Duration::from_secs(60), || job(&control, id)["state"] == "finished");
    assert!(count_rows(&read_parquet(out.to_str().unwrap(), "counts")) == shipped_rows());
    api(&control, "POST", "/v1/cluster/stop", None);
    for mut worker in workers {
        let status = worker.wait().unwrap();
        assert!(status.success(), "a worker did not stop cleanly: {status}");
    }
}

#[test]
fn the_control_api_needs_a_token_beyond_loopback() {
    let dir = temp_dir("token");
    let state = dir.join("state");
    let lake = dir.join("lake");
    let open = free_port_address("0.0.0.0");
    let refused = run(
        &["cluster", "start", "--control", &open, "--state", state.to_str().unwrap(), "--lake", lake.to_str().unwrap()],
        &[],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("token"), "{}", String::from_utf8_lossy(&refused.stderr));

    let guarded = free_port_address("0.0.0.0");
    let local = format!("127.0.0.1:{}", guarded.rsplit(':').next().unwrap());
    let mut supervisor = common::traffic()
        .args([
            "cluster",
            "start",
            "--control",
            &guarded,
            "--state",
            state.to_str().unwrap(),
            "--lake",
            lake.to_str().unwrap(),
        ])
        .env("TRAFFIC_TOKEN", "correct-horse")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the control API", Duration::from_secs(60), || request(&local, "GET", "/v1/cluster", None, None).is_ok());
    assert_eq!(request(&local, "GET", "/v1/jobs", None, None).unwrap().status, 401);
    assert_eq!(request(&local, "GET", "/v1/jobs", None, Some("wrong")).unwrap().status, 401);
    assert_eq!(request(&local, "GET", "/v1/jobs", None, Some("correct-horse")).unwrap().status, 200);
    // Arguments are validated: unknown options and outputs outside the lake are refused.
    let bad = request(
        &local,
        "POST",
        "/v1/jobs",
        Some(&json!({"name": "batch", "args": ["--input", "data", "--output", "/etc/x"]})),
        Some("correct-horse"),
    )
    .unwrap();
    assert_eq!(bad.status, 403, "{}", bad.body);
    let unknown =
        request(&local, "POST", "/v1/jobs", Some(&json!({"name": "batch", "args": ["--nope"]})), Some("correct-horse"))
            .unwrap();
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let listed = run(&["list", "--control", &local], &[("TRAFFIC_TOKEN", "correct-horse")]);
    assert!(listed.status.success());
    request(&local, "POST", "/v1/cluster/stop", None, Some("correct-horse")).unwrap();
    assert!(supervisor.wait().unwrap().success());
}

#[test]
fn help_after_a_dataflow_name_shows_the_dataflow_options() {
    // Nothing listens on port 1: submit's help is answered locally, never by the API.
    for (command, options) in [("run", &[][..]), ("submit", &["--control", "127.0.0.1:1"][..])] {
        let args: Vec<&str> = [command].iter().chain(options).chain(&["batch", "--help"]).copied().collect();
        let out = run_ok(&args, &[]);
        assert!(out.contains(&format!("Usage: traffic {command} batch")), "{out}");
        assert!(out.contains("--input <INPUTS>") && out.contains("--chunk-size"), "{out}");
        let general = run_ok(&[command, "--help"], &[]);
        assert!(general.contains(&format!("Usage: traffic {command}")) && general.contains("<DATAFLOW>"), "{general}");
    }
    let out = run_ok(&["run", "stream", "-h"], &[]);
    assert!(out.contains("--brokers <BROKERS>") && out.contains("--processes"), "{out}");
    let refused = run(&["list", "--control", "https://127.0.0.1:7077"], &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("plain HTTP"), "{refused:?}");
}
