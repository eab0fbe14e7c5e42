#!/usr/bin/env python3
"""Batch benchmark: CSV -> Parquet partitioned by month with `traffic` on W workers, against
DuckDB, Polars and Spark (local[W]) limited to W threads, on the same files; plus scaling of
`traffic` over workers and processes. Prints a JSON document of results.

Usage: batch_bench.py [--sizes 1000000,10000000] [--workers 2] [--repeat 3] [--skip-spark]
                      [--shapes 1x1,1x2,2x1] [--scaling-sizes 10000000,40000000] [--scaling-only]
                      [--junction-ordered-sizes 10000000]
Each of --sizes runs against the peers on time-ordered input, and each of
--junction-ordered-sizes (by default the largest of --sizes) on the same rows ordered by
junction, then time, the order of the public data set.
The scaling series runs on each of --scaling-sizes (by default the largest of --sizes): a run's
fixed part (start, the trend views, exit) weighs less on a larger input.
On a bigger machine, e.g. 16 cores: batch_bench.py --scaling-only --shapes 1x1,1x2,1x4,1x8,1x16,2x8,4x4
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
from measure import PeakMemory, children_cpu_seconds, in_turns, paired_speedups, parse_shapes, with_base  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAFFIC = os.environ.get("TRAFFIC_BIN", os.path.join(ROOT, "target/release/traffic"))
CORES = os.path.join(ROOT, "target/release/examples/cores")
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("TRAFFIC_BENCH_DATA", "/tmp/traffic-bench-data")


def dataset(rows, order="time"):
    """A generated CSV: hourly counts of rows/20,000 junctions over about 2.3 years, hour by hour
    (`time`, as most exports are) or junction by junction (`junction`, as the public Kaggle
    export is); both orders hold the same rows."""
    path = os.path.join(DATA, f"counts_{rows}_by_{order}.csv")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        junctions = max(1, rows // 20_000)
        command = [TRAFFIC, "gen", "counts", "--rows", str(rows), "--junctions", str(junctions), "--order", order]
        subprocess.run(command + ["--output", path + ".tmp"], check=True)
        os.replace(path + ".tmp", path)
    return path


def timed(command, parse=None):
    """Runs `command`, returns (seconds, peak MB, stdout, CPU seconds of the process tree); seconds
    from the tool's own report if parsed."""
    seconds, peak, outputs, cpu = timed_together([command])
    return (parse(outputs[0]) if parse else seconds), peak, outputs[0], cpu


def timed_together(commands):
    """Runs `commands` at once, each with its own `{out}` directory; returns (seconds until the
    last exits, sum of their peak MB, their stdouts, CPU seconds of all their process trees)."""
    outputs = [tempfile.mkdtemp(prefix="traffic-bench-batch-") for _ in commands]
    commands = [[c.replace("{out}", output + "/out") for c in command] for command, output in zip(commands, outputs)]
    # Flush the previous run's output first: its write-back would otherwise compete with this run.
    os.sync()
    before = children_cpu_seconds()
    start = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for c in commands]
    memories = [PeakMemory(process.pid, every=0.05) for process in processes]
    stdouts = [process.communicate()[0] for process in processes]
    wall = time.perf_counter() - start
    peak = sum(memory.stop() for memory in memories)
    cpu = children_cpu_seconds() - before
    for output in outputs:
        shutil.rmtree(output, ignore_errors=True)
    for command, process in zip(commands, processes):
        if process.returncode != 0:
            raise RuntimeError(f"{command} failed")
    return wall, peak // 1024, stdouts, cpu


def traffic_command(path, processes, workers):
    return [TRAFFIC, "run", "batch", "--input", path, "--output", "{out}", "-n", str(processes), "-w", str(workers)]


def traffic(path, processes, workers):
    return timed(traffic_command(path, processes, workers))


def split(path, parts):
    """The CSV cut at line ends into `parts` files of about equal size, each with the header;
    made once, beside it."""
    stem = os.path.splitext(path)[0]
    names = [f"{stem}.part{i + 1}of{parts}.csv" for i in range(parts)]
    if all(os.path.exists(name) for name in names):
        return names
    size = os.path.getsize(path)
    with open(path, "rb") as source:
        header = source.readline()
        for i, name in enumerate(names):
            end = size * (i + 1) // parts
            with open(name + ".tmp", "wb") as part:
                part.write(header)
                while source.tell() < end:
                    part.write(source.readline())
            os.replace(name + ".tmp", name)
    return names


def scaling(path, rounds, shapes):
    """Each round runs every shape (processes, workers per process) once, in turns, so a slow
    spell of the machine falls on all of them alike; per shape, the median wall time and CPU
    time, and the median of the per-round ratios to 1x1 (paired, the figure least moved by the
    machine's drift).

    For each total of N > 1 workers the rounds also run the machine's ceiling for N: N separate
    1x1 runs at once, each on 1/N of the file (no coordination, no exchange, no shared commit):
    what N cores give this job here. Each shape's `paired_of_ceiling` is its per-round time
    against that run's."""
    def run(arm):
        if arm[0] == "ceiling":
            seconds, _, _, cpu = timed_together([traffic_command(part, 1, 1) for part in split(path, arm[1])])
        else:
            seconds, _, _, cpu = traffic(path, *arm)
        return seconds, cpu

    shapes = with_base(shapes)
    ceilings = [("ceiling", n) for n in sorted({p * w for p, w in shapes} - {1})]
    runs = in_turns(shapes + ceilings, rounds, run)
    base = [r[0] for r in runs[(1, 1)]]
    result = {}
    for arm in shapes + ceilings:
        seconds = [r[0] for r in runs[arm]]
        paired = paired_speedups(base, seconds)
        entry = {
            "seconds": round(statistics.median(seconds), 3),
            "runs": [round(s, 3) for s in seconds],
            "cpu_seconds": round(statistics.median(r[1] for r in runs[arm]), 3),
            "speedup_vs_1x1": round(statistics.median(base) / statistics.median(seconds), 2),
            "paired_speedup_vs_1x1": round(statistics.median(paired), 2),
            "paired_speedups": [round(x, 2) for x in paired],
        }
        if arm[0] == "ceiling":
            result[f"ceiling_{arm[1]}"] = entry
            continue
        if arm[0] * arm[1] > 1:
            ceiling = [r[0] for r in runs[("ceiling", arm[0] * arm[1])]]
            entry["paired_of_ceiling"] = round(statistics.median(paired_speedups(ceiling, seconds)), 2)
        result[f"{arm[0]}x{arm[1]}"] = entry
    return result


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
    parser.add_argument("--shapes", default="1x1,1x2,2x1",
                        help="scaling shapes, processes x workers (e.g. 1x1,1x4,1x16,2x8,4x4 on 16 cores)")
    parser.add_argument("--scaling-sizes", help="rows of each scaling series (default: the largest of --sizes)")
    parser.add_argument("--scaling-only", action="store_true", help="only the scaling series (no peers)")
    parser.add_argument("--junction-ordered-sizes",
                        help="rows of the runs against the peers on input ordered by junction, then time "
                             "(default: the largest of --sizes; '' for none)")
    args = parser.parse_args()
    w = args.workers
    results = {"workers": w, "sizes": {}}
    largest = str(max(int(s) for s in args.sizes.split(",")))
    junction_sizes = largest if args.junction_ordered_sizes is None else args.junction_ordered_sizes
    runs = [(int(s), "time") for s in args.sizes.split(",")] + [(int(s), "junction") for s in junction_sizes.split(",") if s]
    for rows, order in [] if args.scaling_only else runs:
        key = rows if order == "time" else f"{rows}_by_junction"
        results["sizes"][key] = against_peers(dataset(rows, order), args)
    scaling_sizes = args.scaling_sizes or largest
    shapes = parse_shapes(args.shapes)
    results["scaling"] = {
        rows: scaling(dataset(rows), max(args.repeat, 7), shapes)
        for rows in [int(s) for s in scaling_sizes.split(",")]
    }
    results["cores"] = cores(sorted({p * w for p, w in shapes} - {1}))
    print(json.dumps(results, indent=2))


def against_peers(path, args):
    """traffic, DuckDB, Polars and (unless skipped) Spark on `path`, each on `args.workers` threads."""
    w = args.workers
    entry = {"bytes": os.path.getsize(path)}
    entry["traffic"] = best([traffic(path, 1, w) for _ in range(args.repeat)])
    for tool in ["duckdb", "polars"] + ([] if args.skip_spark else ["spark"]):
        repeat = 1 if tool == "spark" else args.repeat
        entry[tool] = best([peer(tool, path, w) for _ in range(repeat)])
    for tool in ["duckdb", "polars", "spark"]:
        if tool in entry:
            entry[tool]["traffic_speedup"] = round(entry[tool]["seconds"] / entry["traffic"]["seconds"], 2)
    return entry


def cores(totals):
    """What N of this machine's cores give together on in-cache and on memory-bound work
    (examples/cores.rs), for each N the scaling series used: the yardstick for its ratios."""
    if not os.path.exists(CORES):
        return {"error": f"{CORES} not built (cargo build --release --examples)"}
    runs = [subprocess.run([CORES, "--threads", str(n)], capture_output=True, text=True, check=True) for n in totals]
    return {n: json.loads(run.stdout) for n, run in zip(totals, runs)}


if __name__ == "__main__":
    main()
