#!/usr/bin/env python3
"""nfslab's concurrency benchmark (issue 15): the same cells run sequentially (one worker) and concurrently
(`--jobs N` workers, each with its own topology), in one benchmark run, side by side.

    python bench/concurrency.py --jobs 6                              # the default matrix, once a cell (as root)
    python bench/concurrency.py -k debian-6.1,debian-5.10 --jobs 4    # a shorter selection
    python bench/concurrency.py --repeats 3 --jobs auto --json c.json # the issue's goal: repeats 3, ≤ 20 min
    python bench/concurrency.py --dry-run -k debian-6.1 --jobs 4      # the plan and its estimate; starts nothing

It prints the wall time of each arm and their ratio (goal ≥ 3.5×), the verdict of every cell in each arm and
whether they agree, the host's CPU (busy time of all cores, load average) and memory (peak RSS of all the lab's
VMs at once, lowest MemAvailable, swap) per arm, how well alice's reads kept their period in the passing runs of
each arm (the largest gap between two reads, from the records), how long the arm's boots took (`vagrant up`,
which yields the CPU to running cells: lab/cpushare.py) and how long boots, resets and NFS set-ups waited for the
other workers' cells (lab/quiet.py), and writes all of it as JSON. Both arms go through
lab/parallel.py `Workers`, exactly as `lab run --jobs` does, each into its own run directory under the benchmark's
directory; everything is torn down at the end, also on Ctrl-C or SIGTERM (after a SIGKILL, `lab clean` removes
it). docs/performance.md ("Concurrency") explains the figures.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: python bench/concurrency.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lab_bench import MIB, meminfo, qemu_processes, vmstat  # noqa: E402
from lab import quiet as quiet_phases, schedule  # noqa: E402
from lab.paths import DEFAULT_MATRIX, LabHome  # noqa: E402

RATIO_GOAL = 3.5
ARMS = ("sequential", "concurrent")


# ---- pure parts (unit-tested) ------------------------------------------------------------------------------------

def ratio(sequential_s: float, concurrent_s: float) -> float | None:
    """How many times faster the concurrent arm was (None without a usable measurement)."""
    if not sequential_s or not concurrent_s or concurrent_s <= 0:
        return None
    return sequential_s / concurrent_s


def agreement(sequential: list, concurrent: list) -> list[dict]:
    """Cell by cell: the status each arm's runs add up to (lab/aggregate.py's rule, as in the table) and whether
    they agree. A cell missing from one arm (interrupted) does not agree."""
    from lab.aggregate import cells_of
    seq = {c.cell_id: c for c in cells_of(sequential)}
    con = {c.cell_id: c for c in cells_of(concurrent)}
    rows = []
    for cell in sorted(set(seq) | set(con)):
        a, b = seq.get(cell), con.get(cell)
        rows.append({"cell": cell, "sequential": a.status if a else "missing",
                     "concurrent": b.status if b else "missing",
                     "sequential_summary": a.summary() if a else "", "concurrent_summary": b.summary() if b else "",
                     "agree": bool(a and b and a.status == b.status)})
    return rows


def cpu_times(text: str) -> tuple[float, float]:
    """/proc/stat's first line → (busy, total) in clock ticks; busy is all but idle and iowait."""
    fields = [float(x) for x in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    total = sum(fields[:8])
    return total - idle, total


def cpu_figures(before: str, after: str, wall_s: float, cpus: int) -> dict:
    """Busy CPU seconds between two /proc/stat readings and the mean use of all cores."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    b0, t0 = cpu_times(before)
    b1, t1 = cpu_times(after)
    busy_s = (b1 - b0) / ticks
    return {"busy_s": round(busy_s, 1), "mean_cores_busy": round(busy_s / wall_s, 2) if wall_s else None,
            "utilisation": round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else None, "cpus": cpus}


def _reads(record) -> list[float]:
    observation = record.observation or {}
    return sorted(r["t"] for r in observation.get("reads", []) if isinstance(r, dict) and "t" in r)


def read_gaps(records: list) -> dict:
    """How well alice's reads kept their period in the passing runs of one arm: the largest gap between two
    consecutive reads of any run (and which run), the median of each run's largest gap, and the median of all
    gaps. Passing runs only: they are the short ones near their criterion, whose verdict a stretched gap can
    decide (docs/performance.md, "Concurrency"); a failing run reads for a minute and says less."""
    per_run, every = [], []
    for r in records:
        if r.status != "pass":
            continue
        times = _reads(r)
        gaps = [b - a for a, b in zip(times, times[1:])]
        if gaps:
            per_run.append((max(gaps), f"{r.cell_id}#{r.repeat}"))
            every += gaps
    if not per_run:
        return {"passing_runs": 0, "max_s": None, "max_in": None, "median_of_max_s": None, "median_s": None}
    largest, where = max(per_run)
    return {"passing_runs": len(per_run), "max_s": round(largest, 3), "max_in": where,
            "median_of_max_s": round(statistics.median(g for g, _ in per_run), 3),
            "median_s": round(statistics.median(every), 3)}


def boot_times(records: list) -> dict:
    """`vagrant up` of every boot of one arm, from the records: a topology's first run has no revert in its timings
    (lab/kernellab.py: the first cell needs none), so its up_s is that boot's. Booting topologies yield the CPU
    (lab/cpushare.py): this is what the yielding costs them."""
    ups = [float(t["up_s"]) for t in map(_timings, records) if "up_s" in t and "revert_s" not in t]
    if not ups:
        return {"boots": 0, "median_up_s": None, "max_up_s": None}
    return {"boots": len(ups), "median_up_s": round(statistics.median(ups), 1), "max_up_s": round(max(ups), 1)}


def _timings(record) -> dict:
    return ((record.observation or {}).get("meta") or {}).get("timings") or {}


def quiet_waits(records: list) -> dict:
    """How long the arm's boots, resets and NFS set-ups waited for other workers' cells (lab/quiet.py): each
    phase's total and the longest single wait. A boot's wait, like its up_s, counts in its topology's first run."""
    waits = {p: [float(t.get(quiet_phases.timing_key(p)) or 0) for t in map(_timings, records)
                 if p != "boot" or "revert_s" not in t] for p in quiet_phases.PHASES}
    return {**{f"{p}_s": round(sum(w), 1) for p, w in waits.items()},
            "max_s": round(max((x for w in waits.values() for x in w), default=0.0), 2)}


def swap_pages(before: dict, after: dict) -> dict:
    """Pages swapped in and out between two /proc/vmstat readings."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in ("pswpin", "pswpout")}


def verdict_lines(rows: list[dict]) -> list[str]:
    width = max((len(r["cell"]) for r in rows), default=10)
    lines = [f"{'cell':{width}}  {'sequential':12} {'concurrent':12} agree"]
    for r in rows:
        lines.append(f"{r['cell']:{width}}  {r['sequential']:12} {r['concurrent']:12} "
                     f"{'yes' if r['agree'] else 'NO'}")
    return lines


def estimate_s(todo: list, jobs: int, seconds) -> tuple[float, float]:
    """The scheduler's expected wall time of each arm (lab/schedule.py; CPU contention not counted)."""
    return (schedule.makespan(schedule.make_shards(todo, 1, seconds), 1),
            schedule.makespan(schedule.make_shards(todo, jobs, seconds), jobs))


# ---- memory, sampled all along --------------------------------------------------------------------------------

class Sampler:
    """Every `interval` s: the RSS of all the benchmark's VMs together (kept: the peak of the sum), MemAvailable
    (kept: its minimum), the 1-minute load average (kept: its maximum), and other qemu processes seen."""

    def __init__(self, owned, interval: float = 2.0):
        self.owned, self.interval = owned, interval
        self.peak_rss_kib = self.peak_vms = self.foreign = 0
        self.min_available_kib = meminfo().get("MemAvailable", 0)
        self.max_load = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=10)
        return {"peak_vm_rss_sum_mib": round(self.peak_rss_kib / MIB), "peak_vms": self.peak_vms,
                "min_mem_available_mib": round(self.min_available_kib / MIB),
                "max_load_1m": self.max_load, "foreign_qemu_seen": self.foreign}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        procs = qemu_processes()
        mine = {d: rss for d, (_pid, rss) in procs.items() if self.owned(d)}
        self.foreign = max(self.foreign, len(procs) - len(mine))
        if sum(mine.values()) > self.peak_rss_kib:
            self.peak_rss_kib, self.peak_vms = sum(mine.values()), len(mine)
        self.min_available_kib = min(self.min_available_kib, meminfo().get("MemAvailable", 0))
        self.max_load = max(self.max_load, float(Path("/proc/loadavg").read_text().split()[0]))


# ---- driving ----------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, matrix, cells):
        self.args, self.matrix, self.cells = args, matrix, cells
        self.home = LabHome.default()
        self.run_id = time.strftime("%Y%m%d-%H%M%S")
        self.out = (self.home.root / "bench" / "concurrency" / self.run_id).resolve()
        self.arms: dict[str, dict] = {}
        self.pools: list = []
        self.log = logging.getLogger("lab")
        self.started = time.monotonic()

    def owned(self, domain: str) -> bool:
        """A domain of one of this benchmark's topologies (its state file names a run under self.out)."""
        from lab.topology import read_state
        parts = domain.split("-")
        if len(parts) < 3 or parts[0] != "nfslab":
            return False
        return str(read_state(self.home.topologies / parts[1]).get("run", "")).startswith(str(self.out))

    def arm(self, name: str, jobs: int, todo: list) -> None:
        from lab.parallel import Workers
        from lab.progress import RunProgress
        from lab.results import RunDir
        run_dir = RunDir.create(self.out, name)
        self.log.info("%s: %d runs with %d worker(s)", name, len(todo), jobs)
        shown = RunProgress(todo, self.args.repeats, self.log, jobs=jobs)
        pool = Workers(self.matrix, run_dir, jobs, shown, home=self.home)
        self.pools.append(pool)
        stat_before, swap_before = Path("/proc/stat").read_text(), vmstat()
        sampler = Sampler(self.owned).start()
        started = time.monotonic()
        try:
            pool.run(todo, self.args.repeats)
        finally:
            wall = time.monotonic() - started
            memory = sampler.stop()
            pool.close()
            records = run_dir.runs()
            self.arms[name] = {"jobs": jobs, "wall_s": round(wall, 1), "run_dir": str(run_dir.path),
                               "cpu": cpu_figures(stat_before, Path("/proc/stat").read_text(), wall,
                                                  os.cpu_count() or 1),
                               "memory": memory, "swap_pages": swap_pages(swap_before, vmstat()),
                               "read_gaps": read_gaps(records), "boots": boot_times(records),
                               "quiet_waits": quiet_waits(records), "records": records}

    def report(self, interrupted: bool, swap_before: dict) -> dict:
        swap_after = vmstat()
        seq, con = (self.arms.get(a, {}) for a in ARMS)
        rows = agreement(seq.get("records", []), con.get("records", []))
        r = ratio(seq.get("wall_s"), con.get("wall_s"))
        swapped = swap_pages(swap_before, swap_after)
        return {"bench": "nfslab-concurrency", "version": 1, "run_id": self.run_id,
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "interrupted": interrupted,
                "cells": [c.id for c in self.cells], "repeats": self.args.repeats, "jobs": con.get("jobs"),
                "arms": {a: {k: v for k, v in self.arms[a].items() if k != "records"} for a in self.arms},
                "ratio": round(r, 2) if r else None, "ratio_goal": RATIO_GOAL,
                "agreement": rows, "all_agree": bool(rows) and all(row["agree"] for row in rows),
                "swap": {"pages": swapped, "swap_total_mib": meminfo().get("SwapTotal", 0) // MIB,
                         "used": swapped["pswpout"] > 0},
                "wall_s": round(time.monotonic() - self.started, 1), "out": str(self.out)}


def _s(value, unit: str = "s") -> str:
    return "—" if value is None else f"{value}{unit}"


def summary_lines(result: dict) -> list[str]:
    lines = []
    for name, arm in result["arms"].items():
        cpu, mem = arm["cpu"], arm["memory"]
        gaps, boots = arm.get("read_gaps") or read_gaps([]), arm.get("boots") or boot_times([])
        quiet = arm.get("quiet_waits") or quiet_waits([])
        swap = arm.get("swap_pages") or {}
        lines.append(f"{name:10} jobs {arm['jobs']:2}  wall {arm['wall_s'] / 60:6.1f} min  "
                     f"CPU busy {cpu['busy_s']:.0f}s (mean {cpu['mean_cores_busy']} of {cpu['cpus']} cores), "
                     f"max load {mem['max_load_1m']:.1f}  "
                     f"VM RSS peak {mem['peak_vm_rss_sum_mib']} MiB ({mem['peak_vms']} VMs), MemAvailable min "
                     f"{mem['min_mem_available_mib']} MiB, swapped out {swap.get('pswpout', 0)} pages")
        lines.append(f"{'':10} read gaps of {gaps['passing_runs']} passing runs: max {_s(gaps['max_s'])}"
                     f"{' (' + gaps['max_in'] + ')' if gaps['max_in'] else ''}, median of each run's max "
                     f"{_s(gaps['median_of_max_s'])}, median {_s(gaps['median_s'])}  "
                     f"boots {boots['boots']}: vagrant up median {_s(boots['median_up_s'])}, "
                     f"max {_s(boots['max_up_s'])}")
        lines.append(f"{'':10} waited for other workers' cells (lab/quiet.py): boots {quiet['boot_s']}s, resets "
                     f"{quiet['reset_s']}s, NFS set-ups {quiet['nfs_s']}s; longest wait {quiet['max_s']}s")
    r = result["ratio"]
    lines.append(f"ratio {r if r is not None else '—'}× (goal ≥ {RATIO_GOAL}×: "
                 f"{'met' if r and r >= RATIO_GOAL else 'missed'}); verdicts "
                 f"{'agree in every cell' if result['all_agree'] else 'DIFFER (see below)'}; swap "
                 f"{'USED' if result['swap']['used'] else 'none'}")
    lines += verdict_lines(result["agreement"])
    return lines


def parse_args(argv):
    p = argparse.ArgumentParser(prog="concurrency.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 ratio goal met and verdicts agree, 1 not, 2 bad arguments or "
                                       "not root, 130 interrupted.")
    p.add_argument("--matrix", "-m", type=Path, default=DEFAULT_MATRIX, help="matrix file (default: nfslab's own)")
    p.add_argument("--kernels", "-k", help="only these kernel rows, comma-separated")
    p.add_argument("--cell", action="append", help="only the cells with these axis values, e.g. vers=4.1 (repeatable)")
    p.add_argument("--repeats", type=int, default=1, help="runs per cell in each arm (default 1)")
    p.add_argument("--jobs", "-j", default="auto", help="workers of the concurrent arm: a number or auto (default)")
    p.add_argument("--json", type=Path, help="also write the results here (always written to the benchmark's dir)")
    p.add_argument("--keep-host", action="store_true", help="leave the namespace and libvirtd up afterwards")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the estimate; start nothing")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    try:
        args.jobs = schedule.parse_jobs(args.jobs)
    except ValueError as e:
        p.error(f"--jobs {e}")
    from lab.spec import SpecError, load_matrix, parse_cell_filter
    try:
        matrix = load_matrix(args.matrix)
        where = [parse_cell_filter(text, matrix.axes) for text in args.cell or []]
        cells = matrix.cells(args.kernels.split(",") if args.kernels else None, where)
    except (SpecError, ValueError) as e:
        p.error(str(e))
    if not cells:
        p.error("no cell selected")
    return args, matrix, cells


def plan_text(args, matrix, todo: list, jobs: int) -> str:
    seconds = lambda c: schedule.unit_seconds(c, matrix.expected(c), {})   # noqa: E731
    seq, con = estimate_s(todo, jobs, seconds)
    lines = [f"concurrency benchmark: {len({c.id for c, _ in todo})} cells × {args.repeats} = {len(todo)} runs per "
             f"arm; sequential (1 worker), then concurrent ({jobs} workers)",
             f"estimate: sequential ≈ {seq / 60:.0f} min + concurrent ≈ {con / 60:.0f} min (model ratio "
             f"{seq / con:.1f}×, CPU contention not counted) = ≈ {(seq + con) / 60:.0f} min"]
    lines += ["concurrent arm's plan:"] + schedule.plan_lines(schedule.make_shards(todo, jobs, seconds), jobs)[1:]
    others = list(qemu_processes())
    if os.geteuid() != 0:
        lines.append("warning: not root: the benchmark needs root")
    if others:
        lines.append(f"warning: {len(others)} qemu processes are running now: they would skew every figure")
    return "\n".join(lines)


def teardown(pools: list, release, keep_host: bool = False) -> list[str]:
    """Every arm's topologies destroyed, then removed by their run directory (a topology's state file names its
    arm's run directory, not the benchmark's: lab/cleanup.py matches it exactly); the host goes with the last arm,
    unless kept or still in use (lab/cleanup.py `release`)."""
    removed = []
    for pool in pools:
        pool.close()
    for i, pool in enumerate(pools):
        last = i == len(pools) - 1
        removed += release(pool.host, pool.run_dir.path, keep_host=keep_host or not last)
    return removed


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args, matrix, cells = parse_args(argv)
    from lab.parallel import resolve_jobs
    from lab.session import runs_to_do
    todo = runs_to_do(cells, args.repeats, set())
    jobs = resolve_jobs(args.jobs, len(todo))
    if args.dry_run:
        print(plan_text(args, matrix, todo, jobs))
        return 0
    if os.geteuid() != 0:
        print("concurrency: needs root (namespaces, libvirtd); --dry-run shows the plan", file=sys.stderr)
        return 2
    from lab import log as logs
    from lab import preflight
    from lab.cleanup import release
    logs.setup()
    preflight.check("run", capture=matrix.experiment.capture)
    preflight.check_kernels(matrix, list(dict.fromkeys(c.kernel for c in cells)))
    bench = Bench(args, matrix, cells)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    swap_before, interrupted = vmstat(), False
    try:
        bench.arm("sequential", 1, todo)
        bench.arm("concurrent", jobs, todo)
    except KeyboardInterrupt:
        interrupted = True
        bench.log.warning("interrupted: tearing down what the benchmark created")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):   # a second Ctrl-C must not leave VMs behind
            signal.signal(sig, signal.SIG_IGN)
        try:
            teardown(bench.pools, release, keep_host=args.keep_host)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
    result = bench.report(interrupted, swap_before)
    text = json.dumps(result, indent=1, default=str) + "\n"
    bench.out.mkdir(parents=True, exist_ok=True)
    (bench.out / "concurrency.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    for line in summary_lines(result):
        print(line)
    print(f"results: {bench.out / 'concurrency.json'}" + (f", {args.json}" if args.json else ""))
    if interrupted:
        return 130
    return 0 if result["ratio"] and result["ratio"] >= RATIO_GOAL and result["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
