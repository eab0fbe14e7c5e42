#!/usr/bin/env python3
"""Stream benchmark on a real Kafka broker: sustained events/s of `traffic run stream` against the
raw consume rate with librdkafka and with traffic's native Fetch reader (W readers against W
workers, and one against one; traffic on either reader) and Spark
Structured Streaming doing the seed's job; drains by 1x1, 1x2 and 2x1 (processes x workers);
produce-to-visible latency at a fixed rate; and an optional soak run for memory.

Usage: stream_bench.py [--messages N] [--workers W] [--rounds R] [--latency-rate R] [--latency-seconds S]
                       [--soak SECONDS [--soak-lateness 10m]] [--skip-spark] [--no-one-reader]
                       [--shapes 1x1,1x2,2x1]
Prints a JSON document of results.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from kafka_broker import Broker  # noqa: E402
from measure import (  # noqa: E402
    PeakMemory, children_cpu_seconds, in_turns, paired_speedups, parse_shapes, percentile, process_cpu_seconds, with_base,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAFFIC = os.environ.get("TRAFFIC_BIN", os.path.join(ROOT, "target/release/traffic"))
RAW = os.path.join(ROOT, "target/release/examples/raw_consume")
HERE = os.path.dirname(os.path.abspath(__file__))


def produce(bootstrap, topic, count, rate, seed=1, bad=0.0, sensors=5):
    out = subprocess.run(
        [TRAFFIC, "produce", "--brokers", bootstrap, "--topic", topic, "--rate", str(rate), "--count", str(count),
         "--seed", str(seed), "--bad-fraction", str(bad), "--sensors", str(sensors)],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def latest_checkpoint(output):
    files = sorted(glob.glob(f"{output}/_checkpoints/*.json"))
    for path in reversed(files):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return None


def reader_env(reader):
    """The environment that makes `traffic` and `raw_consume` read Kafka with `reader` (`fetch`, the
    native Fetch reader and the default, or `librdkafka`)."""
    return dict(os.environ, TRAFFIC_KAFKA_READER=reader)


def run_traffic(bootstrap, topic, workers, expected, epoch="1s", processes=1, reader="fetch"):
    """Drains `expected` messages with `traffic run stream --until-caught-up`, as Spark's
    `availableNow` trigger does: the run reads up to the topic's end, commits and exits.

    Returns the drain rate (process start to exit: start-up, the last epoch's commit and shutdown
    included) and the sustained rate: the median of the records read per epoch over the epochs in
    which the stream was busy from start to end (every epoch with data but the first and the last).
    """
    output = tempfile.mkdtemp(prefix="traffic-bench-stream-")
    epoch_seconds = float(epoch.rstrip("s"))
    start = time.perf_counter()
    process = subprocess.Popen(
        [TRAFFIC, "run", "stream", "--brokers", bootstrap, "--topic", topic, "--output", output, "--epoch", epoch,
         "-n", str(processes), "-w", str(workers), "--until-caught-up"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=reader_env(reader),
    )
    memory = PeakMemory(process.pid)
    per_epoch, seen, read = {}, set(), 0
    while True:
        exited = process.poll() is not None
        # Only the last ten checkpoints are kept: poll often enough to see every one.
        for path in glob.glob(f"{output}/_checkpoints/*.json"):
            if path in seen:
                continue
            try:
                with open(path) as f:
                    checkpoint = json.load(f)
            except (OSError, ValueError):
                continue
            seen.add(path)
            per_epoch[checkpoint["epoch"]] = checkpoint["epoch_totals"]["read"]
            read = max(read, checkpoint["totals"]["read"])
        if exited:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    peak = memory.stop()
    if process.returncode != 0 or read != expected:
        raise RuntimeError(f"traffic stream exited with {process.returncode} after reading {read} of {expected}")
    busy = [n for _, n in sorted(per_epoch.items()) if n > 0][1:-1]
    sustained = statistics.median(busy) / epoch_seconds if busy else expected / seconds
    shutil.rmtree(output, ignore_errors=True)
    return {"tool": "traffic", "reader": reader, "seconds": round(seconds, 3), "rate": round(expected / seconds),
            "sustained_rate": round(sustained), "busy_epochs": len(busy), "peak_mb": peak // 1024}


def scaling(bootstrap, topic, expected, shapes, rounds=3):
    """Whole drains of the topic by each shape (processes, workers per process), in turns, for
    `rounds` rounds: per shape, the median drain time and the median of per-round ratios to 1x1."""
    shapes = with_base(shapes)
    runs = in_turns(
        shapes, rounds, lambda shape: run_traffic(bootstrap, topic, shape[1], expected, processes=shape[0])["seconds"]
    )
    return {
        f"{p}x{w}": {
            "seconds": statistics.median(runs[(p, w)]),
            "runs": runs[(p, w)],
            "paired_speedup_vs_1x1": round(statistics.median(paired_speedups(runs[(1, 1)], runs[(p, w)])), 2),
        }
        for p, w in shapes
    }


def run_raw(bootstrap, topic, workers, reader):
    out = subprocess.run([RAW, bootstrap, topic, str(workers)], check=True, capture_output=True, text=True,
                         env=reader_env(reader)).stdout
    return dict(json.loads(out), reader=reader)


# The arms set against each other: the raw consume rate with each reader, and the stream dataflow
# on each. `raw` (librdkafka) is the baseline; `raw_fetch` is the ceiling of the reader
# traffic uses by default.
ARMS = {
    "raw": lambda b, t, w, n: run_raw(b, t, w, "librdkafka"),
    "raw_fetch": lambda b, t, w, n: run_raw(b, t, w, "fetch"),
    "traffic": lambda b, t, w, n: run_traffic(b, t, w, n, reader="fetch"),
    "traffic_librdkafka": lambda b, t, w, n: run_traffic(b, t, w, n, reader="librdkafka"),
}


def against_raw(broker, topic, workers, expected, rounds):
    """Raw consumes and traffic drains of one topic (the `ARMS`), in turns for `rounds` rounds: a
    drain takes seconds and this shared VM drifts 20-40 % from minute to minute, so each traffic
    run is set against the raw runs beside it. Returns the median run of each arm (by time) and,
    for each traffic arm against each raw reader, the ratios of traffic's sustained and
    whole-drain rates to raw's, per round and their medians.

    One run of each arm goes first, unmeasured: the broker's first reads of a topic after
    producing it are slower (its JIT and page cache warm up; here the first raw read ran at 3.1
    M/s and later ones at 5.4-5.8 M/s), which would flatter whichever tool ran against a cold
    broker. Each run also reports the CPU seconds of its own process tree and of the broker: where
    both tools are bound by the machine's CPU, the ratio of their CPU time per message (broker
    included) predicts the ratio of their rates."""
    def run(arm):
        own, served = children_cpu_seconds(), process_cpu_seconds(broker.process.pid)
        result = ARMS[arm](broker.bootstrap, topic, workers, expected)
        result["cpu_seconds"] = round(children_cpu_seconds() - own, 2)
        result["broker_cpu_seconds"] = round(process_cpu_seconds(broker.process.pid) - served, 2)
        return result

    for arm in ARMS:
        run(arm)
    runs = in_turns(list(ARMS), rounds, run)
    median = {tool: dict(sorted(results, key=lambda r: r["seconds"])[len(results) // 2],
                         runs=[r["seconds"] for r in results],
                         cpu_seconds=statistics.median(r["cpu_seconds"] for r in results),
                         broker_cpu_seconds=statistics.median(r["broker_cpu_seconds"] for r in results))
              for tool, results in runs.items()}
    cpu = {arm: median[arm]["cpu_seconds"] + median[arm]["broker_cpu_seconds"] for arm in runs}
    median["cpu_us_per_message"] = {arm: round(seconds * 1e6 / expected, 3) for arm, seconds in cpu.items()}
    for stream in ("traffic", "traffic_librdkafka"):
        for raw in ("raw", "raw_fetch"):
            sustained = [t["sustained_rate"] / r["rate"] for r, t in zip(runs[raw], runs[stream])]
            drain = [t["rate"] / r["rate"] for r, t in zip(runs[raw], runs[stream])]
            median[f"{stream}_vs_{raw}"] = {
                "sustained": round(statistics.median(sustained), 3),
                "sustained_by_round": [round(x, 3) for x in sustained],
                "drain": round(statistics.median(drain), 3), "drain_by_round": [round(x, 3) for x in drain],
                "cpu_bound_ratio": round(cpu[raw] / cpu[stream], 3),
            }
    return median


def run_spark(bootstrap, topic, workers, expected):
    output = tempfile.mkdtemp(prefix="traffic-bench-spark-") + "/out"
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "spark_stream_tool.py"), "throughput", bootstrap, topic, output, str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    memory = PeakMemory(process.pid)
    result = json.loads(process.stdout.read().strip().splitlines()[-1])
    process.wait()
    result["peak_mb"] = memory.stop() // 1024
    result["rate"] = round(expected / result["seconds"])
    shutil.rmtree(os.path.dirname(output), ignore_errors=True)
    return result


class FileWatcher:
    """Records when each Parquet file under a directory first becomes visible to a lister."""

    def __init__(self, root):
        self.root, self.first_seen = root, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            now = time.time()
            for path in glob.glob(f"{self.root}/**/*.parquet", recursive=True):
                self.first_seen.setdefault(os.path.abspath(path), now)
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()


def visible_latencies(watcher, pattern):
    import duckdb

    rows = duckdb.sql(
        f"SELECT filename, epoch_us(timestamp) / 1e6 AS t FROM read_parquet('{pattern}', filename = true)"
    ).fetchall()
    return [watcher.first_seen[os.path.abspath(f)] - t for f, t in rows if os.path.abspath(f) in watcher.first_seen]


def latency(broker, tool, workers, rate, seconds):
    topic = f"latency-{tool}"
    broker.create_topic(topic, 4)
    root = tempfile.mkdtemp(prefix=f"traffic-bench-latency-{tool}-")
    # The tool's log, to say why if it left no files (a run of `bench/run --quick` once did).
    log = tempfile.TemporaryFile(mode="w+")
    if tool == "traffic":
        output = root
        process = subprocess.Popen(
            [TRAFFIC, "run", "stream", "--brokers", broker.bootstrap, "--topic", topic, "--output", output,
             "--epoch", "10s", "-w", str(workers), "--start", "earliest"],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        time.sleep(3)
        pattern = f"{output}/readings/*/*.parquet"
    else:
        output = root + "/out"
        process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "spark_stream_tool.py"), "latency", broker.bootstrap, topic, output,
             str(workers), str(seconds + 40)],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        process.stdout.readline()  # ready
        time.sleep(10)
        pattern = f"{output}/*.parquet"
    watcher = FileWatcher(root)
    produce(broker.bootstrap, topic, int(rate * seconds), rate, seed=5)
    time.sleep(25)
    watcher.stop()
    if tool == "traffic":
        process.send_signal(signal.SIGTERM)
    process.wait()
    result = {"tool": tool, "rate": rate}
    if glob.glob(pattern):
        values = visible_latencies(watcher, pattern)
        result.update(records=len(values), p50_s=round(percentile(values, 50), 2), p99_s=round(percentile(values, 99), 2))
    else:
        # Reported, not raised: the rest of the run's results are still worth keeping.
        log.seek(0)
        result.update(records=0, error=f"no files (exit status {process.returncode})",
                      log_tail=log.read().strip().splitlines()[-5:])
        print(f"latency run of {tool} wrote no files: {result}", file=sys.stderr)
    log.close()
    shutil.rmtree(root, ignore_errors=True)
    return result


def soak(broker, workers, seconds, lateness):
    """A producer at 100,000 msg/s and the stream together for `seconds`: achieved rate and memory
    over time. Window state grows until event time passes one window plus the allowed lateness,
    then windows retire as fast as they open: memory should be flat from there on."""
    topic = "soak"
    broker.create_topic(topic, 4)
    output = tempfile.mkdtemp(prefix="traffic-bench-soak-")
    process = subprocess.Popen(
        [TRAFFIC, "run", "stream", "--brokers", broker.bootstrap, "--topic", topic, "--output", output, "--epoch", "10s",
         "-w", str(workers), "--allowed-lateness", lateness],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    memory = PeakMemory(process.pid, every=5)
    producer = subprocess.Popen(
        [TRAFFIC, "produce", "--brokers", broker.bootstrap, "--topic", topic, "--rate", "100000", "--duration",
         f"{seconds}s", "--sensors", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    sent = producer.communicate()[0].strip()
    time.sleep(15)
    checkpoint = latest_checkpoint(output) or {"totals": {"read": 0}}
    process.send_signal(signal.SIGTERM)
    process.wait()
    memory.stop()
    shutil.rmtree(output, ignore_errors=True)
    by_minute = {}
    for t, kb in memory.samples:
        low, high = by_minute.get(int(t // 60), (kb, kb))
        by_minute[int(t // 60)] = (min(low, kb), max(high, kb))
    return {"seconds": seconds, "allowed_lateness": lateness, "producer": sent, "read": checkpoint["totals"]["read"],
            "rate": round(checkpoint["totals"]["read"] / seconds),
            "rss_mb_by_minute": [[minute, low // 1024, high // 1024] for minute, (low, high) in sorted(by_minute.items())],
            "samples_mb": [kb // 1024 for _, kb in memory.samples]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-rate", type=int, default=2000)
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument("--soak", type=int, default=0)
    parser.add_argument("--soak-lateness", default="10m", help="--allowed-lateness of the soak run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of raw and traffic drains, in turns")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--no-one-reader", dest="one_reader", action="store_false",
                        help="skip the comparison of one raw reader with one traffic worker")
    parser.add_argument("--shapes", default="1x1,1x2,2x1",
                        help="scaling shapes of the drain, processes x workers ('' for none)")
    args = parser.parse_args()
    broker = Broker()
    results = {"messages": args.messages, "workers": args.workers}
    try:
        broker.create_topic("throughput", 4)
        started = time.perf_counter()
        # A city's worth of sensors: messages are keyed by sensor, so with the seed's five sensors
        # the four partitions would hold very unequal shares and one worker would finish alone.
        results["producer"] = produce(broker.bootstrap, "throughput", args.messages, 0, bad=0.001, sensors=1000)
        results["produce_seconds"] = round(time.perf_counter() - started, 2)
        results.update(against_raw(broker, "throughput", args.workers, args.messages, args.rounds))
        if args.workers > 1 and args.one_reader:
            # One reader and one worker on the same cores: neither tool is then short of CPU (the
            # second core takes librdkafka's fetch thread and the broker), so the ratio is what
            # traffic's work costs a reader that has a core to spare.
            results["one_reader"] = against_raw(broker, "throughput", 1, args.messages, args.rounds)
        if args.shapes:
            results["scaling"] = scaling(broker.bootstrap, "throughput", args.messages, parse_shapes(args.shapes))
        if not args.skip_spark:
            results["spark"] = run_spark(broker.bootstrap, "throughput", args.workers, args.messages)
        if args.latency_seconds > 0:
            results["latency"] = [latency(broker, "traffic", args.workers, args.latency_rate, args.latency_seconds)]
            if not args.skip_spark:
                results["latency"].append(latency(broker, "spark", args.workers, args.latency_rate, args.latency_seconds))
        if args.soak:
            results["soak"] = soak(broker, args.workers, args.soak, args.soak_lateness)
    finally:
        broker.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
