#!/usr/bin/env python3
"""Two builds of traffic against each other, in turns on the same files and topic: the batch on a
generated CSV and the stream draining a preloaded topic, for a change that must not cost speed.

Usage: ab.py --baseline BIN --candidate BIN [--rows N] [--messages N] [--rounds R] [--workers W]
Prints a JSON document: per build the median batch seconds and stream sustained rate, each with
its range, and the candidate's ratio to the baseline (paired by round).
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
import batch_bench  # noqa: E402
import stream_bench  # noqa: E402
from kafka_broker import Broker  # noqa: E402
from measure import in_turns  # noqa: E402


def summary(values):
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": [round(v, 3) for v in values]}


def paired(baseline, candidate, higher_is_better):
    ratios = [(c / b if higher_is_better else b / c) for b, c in zip(baseline, candidate)]
    return {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    builds = {"baseline": args.baseline, "candidate": args.candidate}
    arms = list(builds)

    path = batch_bench.dataset(args.rows)

    def batch(arm):
        command = batch_bench.traffic_command(path, 1, args.workers)
        command[0] = builds[arm]
        return batch_bench.timed(command)[0]

    batch_runs = in_turns(arms, args.rounds, batch)

    broker = Broker()
    try:
        topic = "ab-readings"
        broker.create_topic(topic, 4)
        stream_bench.TRAFFIC = args.candidate
        stream_bench.produce(broker.bootstrap, topic, args.messages, 0)

        def stream(arm):
            stream_bench.TRAFFIC = builds[arm]
            return stream_bench.run_traffic(broker.bootstrap, topic, args.workers, args.messages)["sustained_rate"]

        stream_runs = in_turns(arms, args.rounds, stream)
    finally:
        broker.stop()

    print(json.dumps({
        "rows": args.rows, "messages": args.messages, "rounds": args.rounds, "workers": args.workers,
        "batch_seconds": {arm: summary(batch_runs[arm]) for arm in arms},
        "batch_candidate_speed_vs_baseline": paired(batch_runs["baseline"], batch_runs["candidate"], False),
        "stream_sustained_per_s": {arm: summary(stream_runs[arm]) for arm in arms},
        "stream_candidate_vs_baseline": paired(stream_runs["baseline"], stream_runs["candidate"], True),
    }, indent=2))


if __name__ == "__main__":
    main()
