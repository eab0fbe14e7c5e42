//! A real S3-compatible server for the tests: SeaweedFS (`weed mini`) on 127.0.0.1, with SigV4
//! credentials and conditional writes, started once per test process.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running S3 server.
pub struct S3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The access key the server accepts.
    pub access_key: String,
    /// The secret key the server accepts.
    pub secret_key: String,
}

/// Buckets created at start-up.
pub const BUCKETS: &str = "traffic-batch-data,traffic-streaming-data,traffic-raw";

impl S3 {
    /// Environment variables that point the `traffic` binary at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    }
}

fn weed_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TRAFFIC_WEED") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/traffic-ci/bin/weed");
    if cached.exists() {
        return cached;
    }
    panic!(
        "no SeaweedFS server: {} does not exist and TRAFFIC_WEED is not set (tests/run builds it; or run .ci/install-seaweedfs)",
        cached.display()
    )
}

/// The server, started on first use; it stops when the test process exits.
pub fn server() -> &'static S3 {
    static SERVER: OnceLock<S3> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> S3 {
    let ports = traffic::cluster::launcher::free_addresses(10).unwrap();
    let port = |i: usize| ports[i].rsplit(':').next().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("traffic-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let (access_key, secret_key) = ("trafficTestKey".to_string(), format!("trafficTestSecret{}", std::process::id()));
    let config = format!(
        r#"{{"identities":[{{"name":"traffic","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    );
    std::fs::write(dir.join("s3.json"), config).unwrap();
    let args: Vec<String> = vec![
        "mini".into(),
        format!("-dir={}", dir.join("data").display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-master.port={}", port(0)),
        format!("-master.port.grpc={}", port(1)),
        format!("-volume.port={}", port(2)),
        format!("-volume.port.grpc={}", port(3)),
        format!("-filer.port={}", port(4)),
        format!("-filer.port.grpc={}", port(5)),
        format!("-s3.port={}", port(6)),
        format!("-s3.port.grpc={}", port(7)),
        format!("-admin.port={}", port(8)),
        format!("-admin.port.grpc={}", port(9)),
        "-admin.ui=false".into(),
        "-admin.port.legacy=0".into(),
        "-webdav=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        format!("-s3.config={}", dir.join("s3.json").display()),
        format!("-bucket={BUCKETS}"),
    ];
    let log = std::fs::File::create(dir.join("weed.log")).unwrap();
    crate::common::spawn_for_life(
        Command::new(weed_binary()).args(&args).current_dir(&dir).stdout(log.try_clone().unwrap()).stderr(log),
    );
    let endpoint = format!("http://127.0.0.1:{}", port(6));
    let server = S3 { endpoint, access_key, secret_key };
    wait_until_ready(&server, &ports[6], &dir);
    traffic::lake::configure_s3(&[
        ("aws_endpoint", server.endpoint.as_str()),
        ("aws_access_key_id", server.access_key.as_str()),
        ("aws_secret_access_key", server.secret_key.as_str()),
        ("aws_region", "us-east-1"),
    ]);
    server
}

fn wait_until_ready(server: &S3, address: &str, dir: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if TcpStream::connect(address).is_ok() {
            // The buckets exist once a signed listing of each succeeds.
            let ready = BUCKETS.split(',').all(|bucket| {
                let output = Command::new("python3")
                    .args(["-c", LIST_BUCKET, &server.endpoint, &server.access_key, &server.secret_key, bucket])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                output.is_ok_and(|s| s.success())
            });
            if ready {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
    panic!("SeaweedFS did not start within 90 s; its log:\n{log}");
}

const LIST_BUCKET: &str = "import sys, boto3
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1')
s3.list_objects_v2(Bucket=sys.argv[4], MaxKeys=1)";
