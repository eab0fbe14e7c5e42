#!/usr/bin/env python3
"""Batch benchmark: CSV -> Parquet partitioned by month with `traffic` on W workers, against
DuckDB, Polars and Spark (local[W]) limited to W threads, on the same files; plus scaling of
`traffic` over workers and processes. Prints a JSON document of results.

Usage: batch_bench.py [--sizes 1000000,10000000] [--workers 2] [--repeat 3] [--skip-spark]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from measure import PeakMemory  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAFFIC = os.path.join(ROOT, "target/release/traffic")
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("TRAFFIC_BENCH_DATA", "/tmp/traffic-bench-data")


def dataset(rows):
    """A generated CSV: hourly counts of rows/20,000 junctions over about 2.3 years."""
    path = os.path.join(DATA, f"counts_{rows}.csv")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        junctions = max(1, rows // 20_000)
        subprocess.run([TRAFFIC, "gen", "counts", "--rows", str(rows), "--junctions", str(junctions), "--output", path], check=True)
    return path


def timed(command, parse=None):
    """Runs `command`, returns (seconds, peak MB, stdout); seconds from the tool's own report if parsed."""
    output = tempfile.mkdtemp(prefix="traffic-bench-batch-")
    command = [c.replace("{out}", output + "/out") for c in command]
    # Flush the previous run's output first: its write-back would otherwise compete with this run.
    os.sync()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    memory = PeakMemory(process.pid, every=0.05)
    stdout = process.communicate()[0]
    wall = time.perf_counter() - start
    peak = memory.stop()
    shutil.rmtree(output, ignore_errors=True)
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed")
    seconds = parse(stdout) if parse else wall
    return seconds, peak // 1024, stdout


def traffic(path, processes, workers):
    return timed([TRAFFIC, "run", "batch", "--input", path, "--output", "{out}", "-n", str(processes), "-w", str(workers)])


def peer(tool, path, workers):
    return timed(
        [sys.executable, os.path.join(HERE, "batch_tool.py"), tool, path, "{out}", str(workers)],
        parse=lambda out: json.loads(out.strip().splitlines()[-1])["seconds"],
    )


def best(runs):
    seconds = [r[0] for r in runs]
    return {"seconds": round(statistics.median(seconds), 3), "runs": [round(s, 3) for s in seconds], "peak_mb": max(r[1] for r in runs)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args()
    w = args.workers
    results = {"workers": w, "sizes": {}}
    for rows in [int(s) for s in args.sizes.split(",")]:
        path = dataset(rows)
        entry = {"bytes": os.path.getsize(path)}
        entry["traffic"] = best([traffic(path, 1, w) for _ in range(args.repeat)])
        for tool in ["duckdb", "polars"] + ([] if args.skip_spark else ["spark"]):
            repeat = 1 if tool == "spark" else args.repeat
            entry[tool] = best([peer(tool, path, w) for _ in range(repeat)])
        for tool in ["duckdb", "polars", "spark"]:
            if tool in entry:
                entry[tool]["traffic_speedup"] = round(entry[tool]["seconds"] / entry["traffic"]["seconds"], 2)
        results["sizes"][rows] = entry
    largest = dataset(max(int(s) for s in args.sizes.split(",")))
    # Shapes take turns, so that a slow spell of the machine does not fall on one shape only.
    shapes = [(1, 1), (1, 2), (2, 1)]
    runs = {shape: [] for shape in shapes}
    for _ in range(max(args.repeat, 5)):
        for processes, workers in shapes:
            runs[(processes, workers)].append(traffic(largest, processes, workers))
    scaling = {f"{p}x{w}": best(runs[(p, w)]) for p, w in shapes}
    base = scaling["1x1"]["seconds"]
    for shape in scaling.values():
        shape["speedup_vs_1x1"] = round(base / shape["seconds"], 2)
    results["scaling"] = scaling
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
