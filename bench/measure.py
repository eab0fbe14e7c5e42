"""Measuring helpers for the benchmarks: peak memory of a process tree, CPU time, percentiles,
tables."""
import os
import resource
import threading
import time


def _children(pid):
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def _tree_rss_kb(pid):
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
        stack.extend(_children(p))
    return total


class PeakMemory:
    """Samples the resident memory of a process and its descendants every 100 ms."""

    def __init__(self, pid, every=0.1):
        self.pid, self.peak_kb, self.samples = pid, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every):
        start = time.time()
        while not self._stop.is_set():
            kb = _tree_rss_kb(self.pid)
            if kb:
                self.peak_kb = max(self.peak_kb, kb)
                self.samples.append((time.time() - start, kb))
            time.sleep(every)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def children_cpu_seconds():
    """User and system CPU seconds of this process's waited-for children so far: the difference
    around a run is the CPU time of the run's process tree."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid):
    """User and system CPU seconds of a running process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_turns(arms, rounds, run):
    """Runs `run(arm)` for every arm once per round, each round starting one arm later, so a slow
    spell of the machine falls on all arms alike; returns each arm's results in round order."""
    runs = {arm: [] for arm in arms}
    for turn in range(rounds):
        for arm in arms[turn % len(arms):] + arms[: turn % len(arms)]:
            runs[arm].append(run(arm))
    return runs


def parse_shapes(text):
    """`1x1,1x2,2x1` as [(1, 1), (1, 2), (2, 1)]: processes x workers per process ('' for none)."""
    return [tuple(int(n) for n in shape.split("x")) for shape in text.split(",") if shape]


def with_base(shapes):
    """Scaling shapes (processes, workers) with the 1x1 shape first (added if missing): the
    ratios are to it."""
    return [(1, 1)] + [shape for shape in shapes if shape != (1, 1)]


def paired_speedups(base, seconds):
    """Per-round ratios of the base shape's time to another shape's."""
    return [one / s for one, s in zip(base, seconds)]


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
