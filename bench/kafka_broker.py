"""A one-node Apache Kafka broker (KRaft) on 127.0.0.1 for the benchmarks, from the cached jars."""
import os
import socket
import subprocess
import tempfile
import time

LIBS = os.environ.get("TRAFFIC_KAFKA_LIBS", os.path.expanduser("~/.cache/traffic-ci/kafka-libs"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="traffic-bench-kafka-")
        port, controller = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        config = os.path.join(self.dir, "server.properties")
        with open(config, "w") as f:
            f.write(
                f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={self.dir}/logs
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""
            )
        classpath = f"{LIBS}/*"
        subprocess.run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", "dHJhZmZpYy1iZW5jaC1jbHU", "-c", config],
            check=True,
            capture_output=True,
        )
        log = open(os.path.join(self.dir, "kafka.log"), "w")
        self.process = subprocess.Popen(
            ["java", "-Xmx1g", "-cp", classpath, "kafka.Kafka", config], stdout=log, stderr=log
        )
        from kafka.admin import KafkaAdminClient

        deadline = time.time() + 90
        while True:
            try:
                KafkaAdminClient(bootstrap_servers=self.bootstrap).list_topics()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def create_topic(self, name, partitions):
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        # Returned once every partition has a leader: a reader started at once may otherwise find
        # the topic without partitions and stop.
        deadline = time.time() + 30
        while time.time() < deadline:
            described = admin.describe_topics([name])[0]
            ready = [p for p in described.get("partitions", []) if p.get("leader_id", -1) >= 0]
            if described.get("error_code", 0) == 0 and len(ready) == partitions:
                break
            time.sleep(0.05)
        admin.close()

    def stop(self):
        self.process.kill()
        self.process.wait()
