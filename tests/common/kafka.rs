//! A real Apache Kafka broker for the tests: one KRaft node (broker and controller) from the
//! Maven Central jars, on 127.0.0.1, started once per test process; plus kafka-python helpers,
//! the independent client the tests produce and consume with.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running broker.
pub struct Kafka {
    /// `127.0.0.1:PORT`.
    pub bootstrap: String,
}

fn libs() -> PathBuf {
    if let Ok(path) = std::env::var("TRAFFIC_KAFKA_LIBS") {
        return PathBuf::from(path);
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/traffic-ci/kafka-libs")
}

/// The broker, started on first use; it stops when the test process exits.
pub fn broker() -> &'static Kafka {
    static BROKER: OnceLock<Kafka> = OnceLock::new();
    BROKER.get_or_init(start)
}

fn start() -> Kafka {
    let libs = libs();
    assert!(
        libs.join("kafka_2.13-4.4.0.jar").exists(),
        "no Kafka jars in {} (tests/run installs them; or run .ci/install-kafka)",
        libs.display()
    );
    let ports = traffic::cluster::launcher::free_addresses(2).unwrap();
    let dir = std::env::temp_dir().join(format!("traffic-kafka-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let properties = format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{controller}
listeners=PLAINTEXT://{broker},CONTROLLER://{controller}
advertised.listeners=PLAINTEXT://{broker}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={logs}
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
",
        broker = ports[0],
        controller = ports[1],
        logs = dir.join("logs").display()
    );
    let config = dir.join("server.properties");
    std::fs::write(&config, properties).unwrap();
    let classpath = format!("{}/*", libs.display());
    let format = Command::new("java")
        .args(["-cp", &classpath, "kafka.tools.StorageTool", "format", "-t", "dHJhZmZpYy10ZXN0LWNsdQ", "-c"])
        .arg(&config)
        .output()
        .expect("cannot run java");
    assert!(format.status.success(), "kafka storage format failed: {}", String::from_utf8_lossy(&format.stderr));
    let log = std::fs::File::create(dir.join("kafka.log")).unwrap();
    super::spawn_for_life(
        Command::new("java")
            .args(["-Xmx768m", "-XX:+UseSerialGC", "-Dlog4j2.level=WARN", "-cp", &classpath, "kafka.Kafka"])
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let kafka = Kafka { bootstrap: ports[0].clone() };
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if TcpStream::connect(&kafka.bootstrap).is_ok() && python(&kafka, "admin.list_topics()").status.success() {
            return kafka;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("Kafka did not start within 90 s:\n{}", std::fs::read_to_string(dir.join("kafka.log")).unwrap_or_default());
}

/// Runs Python `code` with kafka-python's `admin` (and `bootstrap`) at hand.
pub fn python(kafka: &Kafka, code: &str) -> std::process::Output {
    let script = format!(
        "import sys, json\nfrom kafka import KafkaProducer, KafkaConsumer, TopicPartition\nfrom kafka.admin import KafkaAdminClient, NewTopic\nbootstrap = '{}'\nadmin = KafkaAdminClient(bootstrap_servers=bootstrap)\n{code}\n",
        kafka.bootstrap
    );
    Command::new("python3").args(["-c", &script]).stdin(Stdio::null()).output().expect("cannot run python3")
}

impl Kafka {
    /// Runs Python `code` (see [`python`]) and returns its standard output; panics on failure.
    pub fn python_ok(&self, code: &str) -> String {
        let output = python(self, code);
        assert!(output.status.success(), "python failed:\n{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.python_ok(&format!(
            "admin.create_topics([NewTopic('{topic}', num_partitions={partitions}, replication_factor=1)])"
        ));
    }

    /// Sends `(key, payload)` messages with kafka-python, to `partition` if given.
    pub fn send(&self, topic: &str, messages: &[(&str, Vec<u8>)], partition: Option<i32>) {
        let list: Vec<String> =
            messages.iter().map(|(key, payload)| format!("({:?}, bytes.fromhex('{}'))", key, hex(payload))).collect();
        let partition = partition.map_or("None".to_string(), |p| p.to_string());
        self.python_ok(&format!(
            "p = KafkaProducer(bootstrap_servers=bootstrap, acks='all')\nfor k, v in [{}]:\n    p.send('{topic}', key=k.encode(), value=v, partition={partition})\np.flush()",
            list.join(",")
        ));
    }

    /// Runs `traffic produce` against this broker in a thread (`args` after the topic); the
    /// thread returns the command's output.
    pub fn produce_in_background(&self, topic: &str, args: &[&str]) -> std::thread::JoinHandle<String> {
        let mut full: Vec<String> =
            ["produce", "--brokers", &self.bootstrap, "--topic", topic].map(String::from).to_vec();
        full.extend(args.iter().map(|a| a.to_string()));
        std::thread::spawn(move || {
            let refs: Vec<&str> = full.iter().map(String::as_str).collect();
            super::run_ok(&refs, &[])
        })
    }

    /// Every message of `topic` as `(partition, offset, payload)`, read with kafka-python.
    pub fn read_all(&self, topic: &str) -> Vec<(i32, i64, Vec<u8>)> {
        let out = self.python_ok(&format!(
            "c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
parts = [TopicPartition('{topic}', p) for p in sorted(c.partitions_for_topic('{topic}'))]
c.assign(parts)
c.seek_to_beginning()
ends = c.end_offsets(parts)
out = sys.stdout
while any(c.position(tp) < ends[tp] for tp in parts):
    for tp, records in c.poll(timeout_ms=1000, max_records=50000).items():
        for r in records:
            out.write('%d %d %s\\n' % (r.partition, r.offset, (r.value or b'').hex()))"
        ));
        out.lines()
            .map(|line| {
                let mut parts = line.split(' ');
                let partition = parts.next().unwrap().parse().unwrap();
                let offset = parts.next().unwrap().parse().unwrap();
                (partition, offset, unhex(parts.next().unwrap_or("")))
            })
            .collect()
    }

    /// End offset of each partition of `topic`.
    pub fn end_offsets(&self, topic: &str) -> Vec<i64> {
        let out = self.python_ok(&format!(
            "c = KafkaConsumer(bootstrap_servers=bootstrap)
parts = [TopicPartition('{topic}', p) for p in sorted(c.partitions_for_topic('{topic}'))]
print(' '.join(str(v) for _, v in sorted(c.end_offsets(parts).items(), key=lambda kv: kv[0].partition)))"
        ));
        out.split_whitespace().map(|v| v.parse().unwrap()).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}
