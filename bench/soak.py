#!/usr/bin/env python3
"""Soak (issue 8): the same cell N times on one topology, reverted between runs. A lab whose verdicts wobble on an
unchanged kernel cannot be trusted to bisect, so this reports the flake rate: how many runs disagree with the
most common verdict, and how many were lab ERRORs.

    python bench/soak.py                                   # debian-6.1/vers=4.1/leases=on, 20 runs (≈ 10–20 min)
    python bench/soak.py --cell debian-6.1/vers=4.0/leases=off --runs 10 --json soak.json

Every run is a real cell (`Runner.run_cell`) written to its own run directory; teardown is in a `finally`, as for
`lab run` (Ctrl-C safe; `lab clean` after a SIGKILL).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.cleanup import release  # noqa: E402
from lab.paths import DEFAULT_MATRIX  # noqa: E402
from lab.results import RunDir  # noqa: E402
from lab.runner import Runner  # noqa: E402
from lab.spec import Cell, load_matrix  # noqa: E402


def flake_rate(outcomes: list[str]) -> tuple[str, int, float]:
    """(the most common outcome, how many runs differ from it, their share); ERRORs count as differing."""
    if not outcomes:
        return "", 0, 0.0
    mode, count = Counter(outcomes).most_common(1)[0]
    return mode, len(outcomes) - count, round((len(outcomes) - count) / len(outcomes), 3)


def outcome(record) -> str:
    """What a run said, coarse enough that equal kernels behaviour gives equal outcomes: status + failure kind."""
    verdict = record.verdict
    return verdict["status"] if verdict["status"] in ("pass", "error", "skip") else \
        f"fail:{verdict.get('reason', '')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="debian-6.1/vers=4.1/leases=on")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    matrix = load_matrix(args.matrix)
    cell = Cell.from_id(args.cell)
    run_dir = RunDir.create(args.out)
    runner = Runner(matrix, run_dir, progress=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    records, started = [], time.monotonic()
    try:
        for i in range(1, args.runs + 1):
            record = runner.run_cell(cell)
            records.append(record)
            print(f"[{i}/{args.runs}] {record.verdict_obj.summary()} ({record.duration_s:.0f}s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted: tearing down", flush=True)
    finally:
        runner.close()
        release(runner.host, run_dir.path)
    outcomes = [outcome(r) for r in records]
    mode, differing, rate = flake_rate(outcomes)
    summary = {"cell": args.cell, "runs": len(records), "outcomes": dict(Counter(outcomes)), "mode": mode,
               "differing": differing, "flake_rate": rate,
               "summaries": [r.verdict_obj.summary() for r in records],
               "durations_s": [r.duration_s for r in records], "wall_s": round(time.monotonic() - started),
               "run_dir": str(run_dir.path)}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if len(records) == args.runs else 130


if __name__ == "__main__":
    sys.exit(main())
