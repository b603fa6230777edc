#!/usr/bin/env python3
"""nfslab's benchmark (issue 7): every performance figure of the lab, each beside its goal and, where there is one,
a baseline measured in the same run, so the ratio says what the lab's design buys on this machine today.

    python bench/lab_bench.py                       # everything (as root; ≈ 15 min, ≈ 23 min the first time)
    python bench/lab_bench.py --only up --runs 3    # one part, three samples (the median is reported)
    python bench/lab_bench.py --dry-run             # the plan only: nothing is built, booted or started

Parts (run in this order; `--only` picks some):
- kvm:    what lab.host.detect_accel finds (a real KVM probe) and what the lab's topologies use;
- build:  the module-only variant (kernels/debian-6.1-nofix.yaml) cold and warm (ccache), and the 4.19 mainline
          rebuild after an edit in fs/nfs; built into a separate lab home (--build-home), never the user's cache;
- up:     3-VM cold up → all reachable over ssh, the lab's own boot path (lab.kernellab.boot_lab, stopped once
          every VM answers) against a stock systemd box with Vagrant's defaults (bench/stock_box.py);
- reset:  between two cells of one kernel: snapshot revert, ssh, NFS ready (nfsd + 2 mounts), against a fresh
          topology per cell (destroy + up + ssh + NFS);
- cell:   one rename cell end to end through Runner.run_cell on debian-6.1 (passing), on a reused topology;
- reuse:  N cells of one kernel with one topology against a fresh topology per cell (wall time);
- memory: the RSS of every qemu of the benchmark's topologies (sampled all along), MemAvailable, swap.

Everything the benchmark creates is recorded in the lab's state files before it exists and is removed in a
`finally`, also on Ctrl-C or SIGTERM; after a SIGKILL, `lab clean` removes it. docs/performance.md explains every
figure and holds the recorded results.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: python bench/lab_bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.text import Text                           # noqa: E402

from bench import figures as F                      # noqa: E402
from bench import stock_box                         # noqa: E402
from lab import cpushare                              # noqa: E402  (one parser of qemu's `-name guest=`)
from lab.paths import DEFAULT_MATRIX, KERNELS, LabHome  # noqa: E402

PARTS = ("kvm", "build", "up", "reset", "cell", "reuse", "memory")
VM_PARTS = ("up", "reset", "cell", "reuse", "memory")
KERNEL = "debian-6.1"
#: debian-6.1 passes with vers=4.0 (vers=4.1 shows ESTALE for ~25 s there: README, Findings)
CELL_AXES = {"vers": ["4.0"], "leases": ["on", "off"]}
NOFIX = KERNELS / "debian-6.1-nofix.yaml"
MAINLINE = KERNELS / "mainline-4.19.yaml"
#: the file the 4.19 rebuild edits (a comment line appended): what a developer changes in fs/nfs
EDITED = "fs/nfs/dir.c"
EDIT_MARK = "/* nfslab bench edit"
BUILD_HOME = Path(os.environ.get("NFSLAB_BENCH_BUILD_HOME", "/var/lib/nfslab-bench"))
MIB = 1024

GOALS = {
    "up": F.Goal("<=", 20, "s"), "up_ratio": F.Goal(">=", 5, "x"),
    "revert": F.Goal("<=", 3, "s"), "nfs_ready": F.Goal("<=", 10, "s"),
    "cell": F.Goal("<=", 30, "s"), "reuse_ratio": F.Goal(">=", 4, "x"),
    "module_cold": F.Goal("<=", 90, "s"), "module_warm": F.Goal("<=", 15, "s"),
    "mainline_rebuild": F.Goal("<=", 60, "s"), "rss": F.Goal("<=", 400, "MiB"), "swap": F.Goal("==", False),
}
#: rough durations on this machine (2 cores, TCG), for the plan and the ETA; first-time costs in parentheses
ESTIMATES = {
    "kvm": (20, "a KVM probe boots the lab kernel for at most 20 s"),
    "build": (200, "module build cold ≈ 90 s + warm ≈ 15 s; 4.19 rebuild ≈ 60 s (+ ≈ 5 min the first time, to "
                   "fill the benchmark's own ccache)"),
    "up": (190, "per run: lab ≈ 30 s + stock baseline ≈ 120 s + 2 destroys (+ ≈ 3 min once to build the stock "
                "box)"),
    "reset": (110, "boot + snapshot ≈ 40 s, per run ≈ 15 s, fresh topology ≈ 50 s"),
    "cell": (60, "boot ≈ 40 s + one cell per run ≈ 15 s"),
    "reuse": (330, "N=4: one topology ≈ 100 s, a fresh one per cell ≈ 4 × 55 s"),
    "memory": (0, "sampled during the other parts (≈ 60 s on its own)"),
}


# ---- pure helpers (unit-tested) ----------------------------------------------------------------------------------

def parse_parts(text: str | None) -> list[str]:
    """`up,reset` → the parts in run order; unknown names are an error that lists the allowed ones."""
    if not text:
        return list(PARTS)
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown part {', '.join(unknown)} (allowed: {', '.join(PARTS)})")
    return [p for p in PARTS if p in wanted]


def estimate(parts: list[str], runs: int, reuse_cells: int) -> float:
    per_run = {"up": 170, "reset": 15, "cell": 15}
    total = 0.0
    for p in parts:
        base = ESTIMATES[p][0]
        if p in per_run:
            base += per_run[p] * (runs - 1)
        if p == "reuse":
            base = 40 + reuse_cells * 15 + reuse_cells * 55
        if p == "memory" and not set(parts) & {"up", "reset", "cell", "reuse"}:
            base = 60
        total += base
    return total


def step_times(log_text: str, marker: str) -> list[float]:
    """Durations of the logged commands whose line contains `marker` (lab.proc.run logs `$ cmd` … `[rc=N Xs]`)."""
    times, waiting = [], False
    for line in log_text.splitlines():
        if line.startswith("$ "):
            waiting = marker in line
            continue
        m = re.search(r"\[rc=-?\d+ ([\d.]+)s\]$", line)   # output without a final newline runs into it
        if m and waiting:
            times.append(float(m.group(1)))
            waiting = False
    return times


def up_detail(lab: list[dict], stock: list[dict], failures: dict[str, list]) -> str:
    """What the two cold-up figures are made of, and what was not stock about the baseline."""
    def med(key: str, ts: list[dict]) -> str:
        value = F.median([t[key] for t in ts])
        return "—" if value is None else f"{value:.1f}s"
    parts = []
    if lab:
        parts.append(f"lab: vagrant up {med('vagrant_up_s', lab)} + networks/ssh-config "
                     f"{med('networks_and_ssh_config_s', lab)} + ssh {med('ssh_wait_s', lab)}, box upload in "
                     f"{sum(t['box_upload_included'] for t in lab)}/{len(lab)} runs")
    if stock:
        parts.append(f"stock: vagrant up {med('vagrant_up_s', stock)} + ssh {med('ssh_wait_s', stock)}, box upload "
                     f"in {sum(t['box_upload_included'] for t in stock)}/{len(stock)} runs; it boots its own kernel "
                     f"and initramfs-tools initrd via libvirt kernel boot (no bootloader)")
    for which, errors in failures.items():
        if errors:
            parts.append(f"{which} failed {len(errors)}×: {errors[0]}")
    return "; ".join(parts)


def cycle_cells(cells: list, n: int) -> list:
    return [cells[i % len(cells)] for i in range(n)]


def strip_marks(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(EDIT_MARK))


def bench_matrix(axes: dict[str, list[str]] = CELL_AXES):
    """The default matrix's experiment and timeouts, narrowed to debian-6.1's passing cells."""
    from lab import spec
    m = spec.load_matrix(DEFAULT_MATRIX)
    return dataclasses.replace(m, kernels=[m.kernel(KERNEL)], axes=dict(axes))


# ---- memory, sampled all along ---------------------------------------------------------------------------------

def meminfo() -> dict[str, int]:
    """/proc/meminfo in KiB."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0])
    return out


def vmstat(keys=("pswpin", "pswpout")) -> dict[str, int]:
    out = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        k, _, v = line.partition(" ")
        if k in keys:
            out[k] = int(v)
    return out


def qemu_processes() -> dict[str, tuple[int, int]]:
    """domain name → (pid, RSS KiB) for every running qemu (libvirt names it with `-name guest=<domain>,…`)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"qemu-system" not in cmdline.split(b"\0")[0]:
                continue
            domain = cpushare.guest_name(cmdline)
            rss = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
        found[domain or f"pid-{proc.name}"] = (int(proc.name), rss)
    return found


class MemorySampler:
    """Every `interval` s: the RSS of each qemu (kept: its maximum), MemAvailable (kept: its minimum), and how
    many qemu processes that are not the benchmark's were running (another user's VMs skew every figure)."""

    def __init__(self, owner, interval: float = 2.0):
        self.owner = owner              # domain → "lab" | "stock" | None (not the benchmark's)
        self.interval = interval
        self.rss_max: dict[str, int] = {}
        self.kind: dict[str, str] = {}
        self.foreign_max = 0
        self.mem_before = meminfo()
        self.vm_before = vmstat()
        self.mem_min_available = self.mem_before.get("MemAvailable", 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "MemorySampler":
        if self._thread is None:
            self.mem_before, self.vm_before = meminfo(), vmstat()
            self.mem_min_available = self.mem_before.get("MemAvailable", 0)
            self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        foreign = 0
        for domain, (_pid, rss) in qemu_processes().items():
            kind = self.owner(domain)
            if kind is None:
                foreign += 1
                continue
            self.kind[domain] = kind
            self.rss_max[domain] = max(rss, self.rss_max.get(domain, 0))
        self.foreign_max = max(self.foreign_max, foreign)
        self.mem_min_available = min(self.mem_min_available, meminfo().get("MemAvailable", 0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.mem_after, self.vm_after = meminfo(), vmstat()

    @property
    def running(self) -> bool:
        return self._thread is not None


def memory_figures(sampler: MemorySampler) -> list[F.Figure]:
    """RSS per VM (the largest lab qemu against the largest stock one), MemAvailable, swap, and whether two
    kernels in parallel (`pytest -n 2`, six VMs) fit in what was available before the benchmark booted any."""
    lab = {d: kib for d, kib in sampler.rss_max.items() if sampler.kind.get(d) == "lab"}
    stock = {d: kib for d, kib in sampler.rss_max.items() if sampler.kind.get(d) == "stock"}
    per_role: dict[str, int] = {}
    for d, kib in lab.items():
        role = d.rsplit("-", 1)[-1]
        per_role[role] = max(kib, per_role.get(role, 0))
    rss = F.Figure("rss", "RSS per VM (largest lab qemu)", unit="MiB",
                   samples=[max(lab.values()) / MIB] if lab else [], goal=GOALS["rss"],
                   baseline_samples=[max(stock.values()) / MIB] if stock else [],
                   baseline_name="stock box, QEMU's default TCG cache",
                   detail=(f"{len(lab)} lab qemu processes sampled every {sampler.interval:.0f}s; largest per role: "
                           + ", ".join(f"{r} {k / MIB:.0f}" for r, k in sorted(per_role.items())) + " MiB"
                           if lab else "no lab VM ran"))
    before = sampler.mem_before.get("MemAvailable", 0) / MIB
    after = getattr(sampler, "mem_after", sampler.mem_before).get("MemAvailable", 0) / MIB
    avail = F.Figure("mem_available", "host MemAvailable, lowest while VMs ran", unit="MiB",
                     samples=[sampler.mem_min_available / MIB],
                     detail=f"before any VM {before:.0f} MiB, at the end {after:.0f} MiB, "
                            f"MemTotal {sampler.mem_before.get('MemTotal', 0) / MIB:.0f} MiB")
    vm_after = getattr(sampler, "vm_after", sampler.vm_before)
    swapped = {k: vm_after.get(k, 0) - sampler.vm_before.get(k, 0) for k in ("pswpin", "pswpout")}
    swap_total = sampler.mem_before.get("SwapTotal", 0)
    swap = F.Figure("swap", "swap used while VMs ran", unit="", samples=[swapped["pswpout"] > 0],
                    goal=GOALS["swap"],
                    detail=f"pages swapped out {swapped['pswpout']}, in {swapped['pswpin']}; "
                           f"SwapTotal {swap_total / MIB:.0f} MiB")
    out = [rss, avail, swap]
    if lab:
        six = 6 * max(lab.values()) / MIB
        out.append(F.Figure("parallel_fit", "2 kernels in parallel: 6 VMs × largest RSS (projected)", unit="MiB",
                            samples=[six], goal=F.Goal("<=", round(before), "MiB"),
                            detail="goal: what MemAvailable was before the benchmark booted anything"))
    if sampler.foreign_max:
        rss.detail += f"; WARNING: up to {sampler.foreign_max} other qemu processes were running"
    return out


# ---- the benchmark -------------------------------------------------------------------------------------------------

class Bench:
    """Runs the selected parts; owns everything it boots (state files under its own run directory)."""

    def __init__(self, args, console):
        self.args = args
        self.console = console
        self.home = LabHome.default()
        self.build_home = LabHome(Path(args.build_home))
        self.run_id = time.strftime("%Y%m%d-%H%M%S")
        self.out = (stock_box.bench_dir(self.home) / "runs" / self.run_id).resolve()
        self.figures: list[F.Figure] = []
        self.raw: dict = {}
        self.notes: list[str] = []
        self.started = time.monotonic()
        self.host = None
        self.lease = None
        self.box = None
        self.kernel = None
        self.matrix = None
        self.stock = None
        self.sampler = MemorySampler(self.owner)
        self._owner_cache: dict[str, str] = {}

    # ---- output ----
    def say(self, msg: str, style: str = "") -> None:
        """A progress line with the time since the start; `msg` is plain text (lab messages hold brackets), shown
        as it is."""
        self.console.log(Text.assemble((f"{time.monotonic() - self.started:6.0f}s ", "dim"), (msg, style)),
                         highlight=False)

    def add(self, *figs: F.Figure) -> None:
        for f in figs:
            self.figures.append(f)
            state = {True: " — met", False: " — missed", None: ""}[f.met]
            self.say(f"{f.name}: {F.fmt(f.measured, f.unit) if not f.error else 'error: ' + f.error}"
                     f"{' (goal ' + f.goal_text + ')' if f.goal or f.ratio_goal else ''}"
                     f"{', ratio ' + F.fmt(f.ratio, 'x') if f.ratio else ''}{state}",
                     style={True: "green", False: "red", None: "bold"}[f.met])

    # ---- ownership: which domains and topologies are this run's ----
    def owner(self, domain: str) -> str | None:
        if domain in self._owner_cache:
            return self._owner_cache[domain]
        parts = domain.split("-")
        if len(parts) < 3 or parts[0] != "nfslab":
            return None
        from lab.topology import read_state
        state = read_state(self.home.topologies / parts[1])
        if not str(state.get("run", "")).startswith(str(self.out)):
            return None
        kind = state.get("bench_kind", "lab")
        self._owner_cache[domain] = kind
        return kind

    def our_topologies(self) -> list[Path]:
        from lab.cleanup import topology_dirs
        from lab.topology import read_state
        return [d for d in topology_dirs(self.home, include_destroyed=True)
                if str(read_state(d).get("run", "")).startswith(str(self.out))]

    # ---- preparation ----
    def lab_box(self):
        if self.box is None:
            from lab.boxes import ensure_box
            self.say("lab box (cached by its inputs; ≈ 90 s if it must be built)")
            self.box = ensure_box(self.home, progress=self.say)
        return self.box

    def prepare_host(self) -> None:
        """What Runner.prepare does (box, namespace, libvirtd, pool), plus the kernel every topology boots."""
        if self.host is not None:
            return
        from lab import kernels
        from lab.results import RunDir
        from lab.runner import Runner
        self.matrix = bench_matrix()
        from lab.host import HostLease
        prep = Runner(self.matrix, RunDir.create(self.out, "prepare"), self.home, progress=self.say)
        self.say("lab host: namespace, libvirtd, storage pool")
        prep.prepare()
        self.host, self.box = prep.host, prep.box
        self.lease = HostLease(self.host).acquire()     # the benchmark's own hold, across its runners' lives
        self.kernel = kernels.check_files(kernels.resolve(self.matrix.kernel(KERNEL), self.home, self.box))
        self.raw["accel"] = self.host.accel

    def runner(self, tag: str):
        from lab.results import RunDir
        from lab.runner import Runner
        return Runner(self.matrix, RunDir.create(self.out, tag), self.home, progress=self.say)

    def close_runner(self, runner) -> None:
        runner.close()                  # its lease goes; the benchmark's own (self.lease) keeps the host

    # ---- topologies ----
    def boot_lab(self, tag: str):
        """The lab's cold up through its own boot path (lab.kernellab.boot_lab), stopped once every VM answers over
        ssh; returns the KernelLab and its timings. `finish_boot` does the rest of a boot for the parts that run
        cells on it."""
        from lab.kernellab import boot_lab
        upload = not self.box_volume_present(self.box.name)
        started = time.monotonic()
        lab = boot_lab(self.host, box=self.box.name, kernel_name=KERNEL, server=self.kernel, client=self.kernel,
                       timeouts=self.matrix.timeouts, run=self.out / tag, progress=self.say, ready_only=True)
        total = time.monotonic() - started
        tm = lab.timings
        return lab, {"up_to_ssh_s": round(total, 2), "vagrant_up_s": tm["up_s"],
                     "networks_and_ssh_config_s": round(tm["create_s"] - tm["up_s"], 2), "ssh_wait_s": tm["ssh_s"],
                     "box_upload_included": upload, "lab_id": lab.live.topology.lab_id}

    @staticmethod
    def finish_boot(lab) -> None:
        """The rest of a boot (kernel check, NFS preloaded, the boot snapshot); every reset() then really reverts."""
        lab.prepare_for_cells()
        lab.fresh = False

    def boot_stock(self, tag: str):
        from lab import topology
        reserved = topology.reserve(self.home, self.out / tag)
        t = stock_box.plan(lab_id=reserved.lab_id, slot=reserved.slot, box=self.stock.name,
                           kernel=self.stock.kernel_files(), driver="kvm" if self.host.accel == "kvm" else "qemu",
                           netns=self.host.netns)
        live = stock_box.StockTopology(t, self.host, reserved.dir)
        upload = not self.box_volume_present(self.stock.name)
        started = time.monotonic()
        try:
            live.create(progress=self.say)
            created = time.monotonic()
            ssh_s = each([lambda m=m: live.wait_ssh(m, self.matrix.timeouts.ssh) for m in live.targets])
        except BaseException:
            live.destroy()
            raise
        total = time.monotonic() - started
        return live, {"up_to_ssh_s": round(total, 2), "vagrant_up_s": round(live.timings["up"], 2),
                      "networks_and_ssh_config_s": round(created - started - live.timings["up"], 2),
                      "ssh_wait_s": round(ssh_s, 2), "box_upload_included": upload, "lab_id": reserved.lab_id}

    def destroy(self, live) -> float:
        started = time.monotonic()
        live.destroy()
        return round(time.monotonic() - started, 2)

    def box_volume_present(self, box_name: str) -> bool:
        from lab.topology import pool_volumes
        return any(name.startswith(box_name) for name in pool_volumes(self.host))

    # ---- parts ----
    def part_kvm(self) -> None:
        from lab.host import detect_accel
        box = self.lab_box()
        self.out.mkdir(parents=True, exist_ok=True)
        log = self.out / "kvm-probe.log"
        started = time.monotonic()
        found = detect_accel(box.dir / "vmlinuz", log)
        took = time.monotonic() - started
        self.prepare_host()
        used = self.host.accel
        forced = os.environ.get("NFSLAB_ACCEL")
        dev = "present" if os.path.exists("/dev/kvm") else "absent"
        self.raw["kvm"] = {"found": found, "used": used, "probe_s": round(took, 2), "dev_kvm": dev,
                           "forced": forced, "log": str(log)}
        self.add(F.Figure("kvm", "KVM: accelerator detected (probe)", unit="", samples=[found],
                          goal=F.Goal("==", used),
                          detail=f"/dev/kvm {dev}; probe {took:.1f}s (boots the lab kernel under KVM, waits ≤ 20 s "
                                 f"for its banner); topologies use {used}"
                                 + (f"; NFSLAB_ACCEL={forced} overrides the probe" if forced else "")))

    def part_build(self) -> None:
        from lab import kernels, spec
        home = self.build_home.ensure()
        box = self.lab_box()
        nofix = spec.load_kernel(NOFIX)
        ccache = home.root / "ccache-module"
        log = home.kernels / f"build-{nofix.name}.log"
        # cold: nothing of this build in the benchmark's home: no output, no linux-source, no headers, empty ccache
        for d in [*home.kernels.glob(f"build-{nofix.name}-*"), home.kernels / "src", home.kernels / "headers",
                  ccache]:
            shutil.rmtree(d, ignore_errors=True)
        ccache.mkdir(parents=True)
        log.unlink(missing_ok=True)
        with environ(CCACHE_DIR=str(ccache)):
            self.say(f"build: {nofix.name} cold (downloads linux-source and headers, empty ccache)")
            cold, files = timed(lambda: kernels.module_build(nofix, home, box))
            cold_make = step_times(log.read_text(), " M=")
            shutil.rmtree(files.initrd.parent)
            self.say(f"build: {nofix.name} warm (output removed, ccache kept)")
            warm, _ = timed(lambda: kernels.module_build(nofix, home, box))
            warm_make = step_times(log.read_text(), " M=")[len(cold_make):]
        self.raw["module_build"] = {"cold_s": cold, "warm_s": warm, "cold_make_s": cold_make,
                                    "warm_make_s": warm_make, "log": str(log)}
        self.add(F.Figure("module_cold", f"module build cold ({nofix.name})", samples=[cold],
                          goal=GOALS["module_cold"],
                          detail=f"make {sum(cold_make):.1f}s, the rest is apt, download, unpack, initramfs"),
                 F.Figure("module_warm", "module build warm (ccache)", samples=[warm], goal=GOALS["module_warm"],
                          baseline_samples=[cold], baseline_name="cold",
                          detail=f"make {sum(warm_make):.1f}s"))
        self.part_mainline(home)

    def part_mainline(self, home: LabHome) -> None:
        """4.19 as a developer works on it: a source directory (NFSLAB_LINUX_TREE), built once, then one file in
        fs/nfs edited and the kernel rebuilt through the lab's own path (new key → copy, config, ccache build)."""
        from lab import kernels, spec
        k = spec.load_kernel(MAINLINE)
        tree = home.root / "trees" / "linux-4.19.1"
        edited = tree / EDITED
        stamp = tree.with_name(tree.name + ".mtime")      # outside the tree: the tree's listing is its identity
        if not stamp.exists():
            self.say("build: unpacking the 4.19 tree for the benchmark (once)")
            shutil.rmtree(tree, ignore_errors=True)
            tree.parent.mkdir(parents=True, exist_ok=True)
            kernels.unpack_tree(kernels.linux_tree(k, home), None, tree, home.root / "trees" / "unpack.log")
            stamp.write_text(str(edited.stat().st_mtime_ns))
        ccache_was_empty = not any((home.root / "ccache").glob("*/*")) if (home.root / "ccache").exists() else True

        def restore() -> None:
            edited.write_text(strip_marks(edited.read_text()))
            mtime = int(stamp.read_text())
            os.utime(edited, ns=(mtime, mtime))

        rebuilt_dir = kept_dir = None
        try:
            restore()
            with environ(NFSLAB_LINUX_TREE=str(tree)):
                self.say("build: mainline-4.19 before the edit (cached after the first benchmark run)")
                before, files = timed(lambda: kernels.full_build(k, home))
                kept_dir = files.vmlinuz.parent
                with edited.open("a") as f:
                    f.write(f"{EDIT_MARK} {time.time_ns()} */\n")
                self.say(f"build: mainline-4.19 after editing {EDITED}")
                rebuild, files2 = timed(lambda: kernels.full_build(k, home))
                rebuilt_dir = files2.vmlinuz.parent
            make = step_times((rebuilt_dir / "build.log").read_text(), "bzImage")
        finally:
            restore()
            if rebuilt_dir is not None and rebuilt_dir != kept_dir:   # one build per benchmark run: not kept
                shutil.rmtree(rebuilt_dir, ignore_errors=True)
        self.raw["mainline_rebuild"] = {"before_s": before, "rebuild_s": rebuild, "make_s": make,
                                        "ccache_was_empty": ccache_was_empty}
        self.add(F.Figure("mainline_before", "4.19 full build before the edit", samples=[before],
                          detail=("cold: the benchmark's ccache was empty" if ccache_was_empty else
                                  "cached or ccache-warm from an earlier benchmark run")),
                 F.Figure("mainline_rebuild", f"4.19 rebuild after an edit in {EDITED} (warm)", samples=[rebuild],
                          goal=GOALS["mainline_rebuild"],
                          detail=f"new tree key → copy + config + ccache build; make bzImage {sum(make):.1f}s"))

    def part_up(self) -> None:
        from lab.errors import LabError
        self.prepare_host()
        self.stock = stock_box.ensure(self.home, progress=self.say)
        timings: dict[str, list] = {"lab": [], "stock": []}
        failures: dict[str, list] = {"lab": [], "stock": []}
        destroy_s = []
        for i in range(self.args.runs):
            for which in (("lab", "stock") if i % 2 == 0 else ("stock", "lab")):   # load drift favours neither
                self.say(f"up run {i + 1}/{self.args.runs}: {which}")
                try:
                    if which == "lab":
                        lab, tm = self.boot_lab("up")
                        for r in lab.remotes.values():
                            r.close()
                        destroy_s.append(self.destroy(lab.live))
                    else:
                        live, tm = self.boot_stock("up")
                        self.destroy(live)
                except LabError as e:   # one side failing must not hide the other side's figure
                    self.say(f"up run {i + 1}: {which} failed: {e}", style="red")
                    failures[which].append(str(e)[:300])
                    continue
                timings[which].append(tm)
        lab_t, stock_t = timings["lab"], timings["stock"]
        self.raw["up"] = {"lab": lab_t, "stock": stock_t, "failures": failures, "destroy_s": destroy_s,
                          "stock_box": self.stock.name, "stock_release": self.stock.release,
                          "lab_release": self.kernel.release}
        self.add(F.Figure(
            "up", "3-VM cold up → all ssh", samples=[t["up_to_ssh_s"] for t in lab_t], goal=GOALS["up"],
            baseline_samples=[t["up_to_ssh_s"] for t in stock_t], baseline_name="stock systemd box, Vagrant defaults",
            ratio_goal=GOALS["up_ratio"], detail=up_detail(lab_t, stock_t, failures),
            error=f"every lab up failed: {failures['lab'][0]}" if failures["lab"] and not lab_t else None),
            F.Figure("destroy", "destroy 3 VMs", samples=destroy_s))

    def part_reset(self) -> None:
        from lab import nfs, topology
        from lab.axes import cell_setup
        self.prepare_host()
        setup = cell_setup({k: v[0] for k, v in CELL_AXES.items()})

        def nfs_ready(lab) -> float:
            started = time.monotonic()
            nfs.start_server(lab.server, setup, lab.live.topology.nfs.cidr, timeout=lab.timeouts.nfsd)
            for name in (topology.ALICE, topology.BOB):
                nfs.mount(lab.remotes[name], lab.server_ip, setup, timeout=lab.timeouts.mount)
            took = time.monotonic() - started
            for name in (topology.ALICE, topology.BOB):
                nfs.umount(lab.remotes[name])
            return round(took, 2)

        lab, _ = self.boot_lab("reset")
        self.finish_boot(lab)
        first = nfs_ready(lab)                       # the previous cell: leaves nfsd running, client state
        reverts, readies, nfs_s = [], [], []
        for i in range(self.args.runs):
            self.say(f"reset run {i + 1}/{self.args.runs}: revert, ssh, nfsd + 2 mounts")
            lab.reset()
            reverts.append(lab.timings["revert_s"])
            readies.append(lab.timings["ready_s"])
            nfs_s.append(nfs_ready(lab))
        self.say("reset: the alternative, a fresh topology for the next cell")
        for r in lab.remotes.values():
            r.close()
        destroy_s = self.destroy(lab.live)
        fresh, tm = self.boot_lab("reset")
        try:
            fresh_nfs = nfs_ready(fresh)
        finally:
            fresh.close()
        fresh_total = destroy_s + tm["up_to_ssh_s"] + fresh_nfs
        between = [r + s + n for r, s, n in zip(reverts, readies, nfs_s)]
        self.raw["reset"] = {"revert_s": reverts, "ssh_ready_s": readies, "nfs_ready_s": nfs_s,
                             "first_nfs_ready_s": first, "fresh": {"destroy_s": destroy_s, **tm,
                                                                    "nfs_ready_s": fresh_nfs}}
        self.add(F.Figure("revert", "reset: snapshot revert, 3 VMs", samples=reverts, goal=GOALS["revert"],
                          detail=f"then ssh answers on all three after {F.median(readies):.1f}s (median)"),
                 F.Figure("nfs_ready", "NFS ready for the next cell (nfsd + 2 mounts)", samples=nfs_s,
                          goal=GOALS["nfs_ready"], baseline_samples=[fresh_nfs],
                          baseline_name="fresh VMs, nothing preloaded",
                          detail=f"first cell after the boot snapshot: {first:.1f}s"),
                 F.Figure("between_cells", "between two cells: revert + ssh + NFS", samples=between,
                          baseline_samples=[round(fresh_total, 2)],
                          baseline_name="fresh topology: destroy + up + ssh + NFS",
                          detail=f"fresh: destroy {destroy_s:.1f}s + up→ssh {tm['up_to_ssh_s']:.1f}s + "
                                 f"NFS {fresh_nfs:.1f}s"))

    def part_cell(self) -> None:
        self.prepare_host()
        cells = self.matrix.cells()
        runner = self.runner("cell")
        records, timings = [], []
        try:
            for i, cell in enumerate(cycle_cells(cells, self.args.runs + 1)):
                self.say(f"cell {i + 1}/{self.args.runs + 1}: {cell.id}" + (" (boots the topology)" if i == 0
                                                                               else ""))
                records.append(runner.run_cell(cell))
                timings.append(dict(runner.lab.timings) if runner.lab else {})
        finally:
            self.close_runner(runner)
        measured = records[1:]
        errors = [r for r in records if r.status == "error"]
        verdicts = ", ".join(f"{r.cell_id.split('/', 1)[1]} {r.status} {r.duration_s:.0f}s" for r in records)
        self.raw["cell"] = [{"cell": r.cell_id, "status": r.status, "duration_s": r.duration_s, "lab_timings": t}
                            for r, t in zip(records, timings)]
        self.add(F.Figure("cell", f"one rename cell ({KERNEL}, reused topology)",
                          samples=[r.duration_s for r in measured if r.status != "error"], goal=GOALS["cell"],
                          detail=f"first cell incl. boot {records[0].duration_s:.0f}s; packet capture "
                                 f"{'on' if getattr(self.matrix.experiment, 'capture', False) else 'off'} "
                                 f"(matrix.yaml); {verdicts}",
                          error=(f"{errors[0].cell_id}: {errors[0].verdict.get('reason')} "
                                 f"{errors[0].verdict.get('detail', '')}"[:200] if errors else None)))

    def part_reuse(self) -> None:
        self.prepare_host()
        n = self.args.reuse_cells
        cells = cycle_cells(self.matrix.cells(), n)
        self.say(f"reuse: {n} cells on one topology")
        started = time.monotonic()
        runner = self.runner("reuse-one")
        one = []
        try:
            for cell in cells:
                one.append(runner.run_cell(cell))
        finally:
            self.close_runner(runner)
        reuse = round(time.monotonic() - started, 1)
        self.say(f"reuse: the same {n} cells, a fresh topology for each")
        started = time.monotonic()
        fresh_records = []
        for i, cell in enumerate(cells):
            runner = self.runner(f"reuse-fresh-{i}")
            try:
                fresh_records.append(runner.run_cell(cell))
            finally:
                self.close_runner(runner)
        fresh = round(time.monotonic() - started, 1)
        errors = [r for r in one + fresh_records if r.status == "error"]
        self.raw["reuse"] = {"cells": [c.id for c in cells], "reuse_s": reuse, "fresh_s": fresh,
                             "reuse_cell_s": [r.duration_s for r in one],
                             "fresh_cell_s": [r.duration_s for r in fresh_records],
                             "statuses": [r.status for r in one + fresh_records]}
        self.add(F.Figure("reuse", f"{n} cells of one kernel, one topology", samples=[reuse],
                          baseline_samples=[fresh], baseline_name="a fresh topology per cell",
                          ratio_goal=GOALS["reuse_ratio"],
                          detail=f"per cell: reused {reuse / n:.1f}s, fresh {fresh / n:.1f}s (both include "
                                 f"boot and destroy)",
                          error=(f"{len(errors)} cell(s) ended in ERROR, e.g. {errors[0].cell_id}: "
                                 f"{errors[0].verdict.get('reason')}" if errors else None)))

    def part_memory(self) -> None:
        if not set(self.raw["parts"]) & {"up", "reset", "cell", "reuse"}:
            self.prepare_host()
            self.say("memory: no other VM part ran; one cell on a topology of its own")
            runner = self.runner("memory")
            try:
                runner.run_cell(self.matrix.cells()[0])
                time.sleep(5)
                self.sampler.sample()
            finally:
                self.close_runner(runner)
        self.sampler.stop()
        self.add(*memory_figures(self.sampler))

    # ---- driving ----
    def run(self, parts: list[str]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.raw["machine"] = machine_info()
        self.raw["parts"] = parts
        for i, part in enumerate(parts, 1):
            left = estimate(parts[i - 1:], self.args.runs, self.args.reuse_cells)
            self.say(f"part {i}/{len(parts)}: {part} (≈ {left / 60:.0f} min left)", style="bold")
            if part in VM_PARTS and not self.sampler.running:
                self.sampler.start()
            try:
                getattr(self, f"part_{part}")()
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # a lab failure in one part: recorded, its VMs removed, the next part runs
                self.say(f"part {part} failed: {e}", style="red")
                self.add(F.Figure(part, f"{part} (part failed)", error=str(e)[:300]))
                self.remove_topologies()

    def remove_topologies(self) -> list[str]:
        from lab.topology import destroy_recorded
        removed = []
        if self.host is None:
            return removed
        for d in self.our_topologies():
            removed += destroy_recorded(self.host, d)
            shutil.rmtree(d, ignore_errors=True)
        return removed

    def cleanup(self) -> list[str]:
        """Every topology of this run, the stock box's volume, then the host if nobody else uses it."""
        if self.sampler.running:
            self.sampler.stop()
        if self.host is None:
            return []
        from lab.cleanup import release
        from lab.host import POOL
        from lab.topology import pool_volumes
        removed = self.remove_topologies()
        if self.stock is not None and self.host.libvirtd_running():
            for name in pool_volumes(self.host):
                if name.startswith(self.stock.name):
                    self.host.virsh("vol-delete", "--pool", POOL, name, check=False)
                    removed.append(f"volume {name}")
        if self.lease is not None:
            self.lease.release()
        removed += release(self.host, self.out, keep_host=self.args.keep_host)
        return removed

    def report(self, interrupted: bool) -> dict:
        return {"bench": "nfslab", "version": 1, "run_id": self.run_id, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                "wall_s": round(time.monotonic() - self.started, 1), "interrupted": interrupted,
                "run_dir": str(self.out), "runs": self.args.runs, "summary": F.summary(self.figures),
                "figures": [f.to_dict() for f in self.figures], "raw": self.raw, "notes": self.notes}


def timed(fn):
    started = time.monotonic()
    value = fn()
    return round(time.monotonic() - started, 1), value


def each(fns) -> float:
    """Run the callables in parallel; the wall time until the last is done."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(fns)) as pool:
        for f in [pool.submit(fn) for fn in fns]:
            f.result()
    return time.monotonic() - started


@contextmanager
def environ(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _first_line(argv: list[str]) -> str:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (cp.stdout or cp.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine_info() -> dict:
    mem = meminfo()
    return {"hostname": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "mem_total_mib": mem.get("MemTotal", 0) // MIB, "swap_total_mib": mem.get("SwapTotal", 0) // MIB,
            "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
            "qemu": _first_line(["qemu-system-x86_64", "--version"]), "vagrant": _first_line(["vagrant", "--version"]),
            "libvirt": _first_line(["libvirtd", "--version"]),
            "other_qemu_at_start": len(qemu_processes())}


def plan_text(args, parts: list[str]) -> str:
    """What a run would do, with no side effect (`--dry-run`)."""
    from lab.host import missing_tools
    home = LabHome.default()
    stock = stock_box.cached(home)
    lines = [f"nfslab benchmark plan: parts {', '.join(parts)}; --runs {args.runs}; reuse cells {args.reuse_cells}",
             f"lab home {home.root} (VMs, boxes); build home {args.build_home} (the build part empties and "
             f"refills its module-build caches there; the user's {home.kernels} is never touched)",
             f"stock baseline box {stock_box.box_name()}: "
             + (f"cached in {stock.dir}" if stock else "not built yet (≈ 3 min of debootstrap, once)"),
             f"results: {stock_box.bench_dir(home) / 'runs' / '<run-id>'}/bench.json"
             + (f" and {args.json}" if args.json else "")]
    for p in parts:
        alone = estimate([p], args.runs, args.reuse_cells) if p != "memory" else 0
        lines.append(f"  {p:7} ≈ {alone / 60:4.1f} min  {ESTIMATES[p][1]}")
    lines.append(f"estimated total: ≈ {estimate(parts, args.runs, args.reuse_cells) / 60:.0f} min "
                 f"(+ first-time builds)")
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: the benchmark needs root (namespaces, libvirtd, debootstrap)")
    if missing_tools():
        problems.append(f"missing packages: {' '.join(missing_tools())}")
    others = [d for d in qemu_processes()]
    if others:
        problems.append(f"{len(others)} qemu processes are running now ({', '.join(sorted(others)[:6])}): "
                        f"they would skew every timing")
    lines += [f"warning: {p}" for p in problems] or ["checks: root, tools, no other VM running: ok"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="lab_bench.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Parts: " + ", ".join(PARTS) + ". Exit codes: 0 every judged goal met, 1 a goal "
                                       "missed, 2 bad arguments, 3 a part failed, 130 interrupted.")
    p.add_argument("--only", metavar="PARTS", help=f"comma-separated parts to run (default: all: {','.join(PARTS)})")
    p.add_argument("--runs", type=int, default=1, help="samples of up, reset and cell (the median is reported; "
                                                      "use 3 for recorded results)")
    p.add_argument("--reuse-cells", type=int, default=4, help="cells per arm of the reuse part (default 4: a kernel "
                                                              "row of the default matrix)")
    p.add_argument("--json", type=Path, help="also write the results here (always written to the run directory)")
    p.add_argument("--build-home", default=str(BUILD_HOME),
                   help=f"lab home for the build part (default {BUILD_HOME}; env NFSLAB_BENCH_BUILD_HOME)")
    p.add_argument("--keep-host", action="store_true", help="leave the namespace and libvirtd up afterwards")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the checks; build, boot, start nothing")
    args = p.parse_args(argv)
    try:
        parts = parse_parts(args.only)
    except ValueError as e:
        p.error(str(e))
    if args.runs < 1 or args.reuse_cells < 1:
        p.error("--runs and --reuse-cells must be at least 1")
    if Path(args.build_home).resolve() == LabHome.default().root.resolve():
        p.error("--build-home must not be the lab's own home: the build part empties its build caches")
    return args, parts


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    args, parts = parse_args(argv)
    console = Console(stderr=True, log_path=False)
    if args.dry_run:
        print(plan_text(args, parts))
        return 0
    if os.geteuid() != 0:
        console.print("lab_bench: needs root (namespaces, libvirtd, debootstrap); --dry-run shows the plan")
        return 2
    bench = Bench(args, console)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    interrupted = False
    try:
        bench.run(parts)
    except KeyboardInterrupt:
        interrupted = True
        bench.say("interrupted: tearing down what the benchmark created", style="yellow")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):   # a second Ctrl-C must not leave VMs behind
            signal.signal(sig, signal.SIG_IGN)
        try:
            removed = bench.cleanup()
            if removed:
                bench.say(f"removed: {', '.join(removed[:12])}{' …' if len(removed) > 12 else ''}")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
    result = bench.report(interrupted)
    text = json.dumps(result, indent=1, default=str) + "\n"
    bench.out.mkdir(parents=True, exist_ok=True)
    (bench.out / "bench.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    out = Console()
    out.print(F.table(bench.figures, title=f"nfslab benchmark {bench.run_id} ({result['wall_s'] / 60:.0f} min)"))
    for line in F.notes(bench.figures):
        out.print(line, highlight=False, markup=False)
    out.print(f"results: {bench.out / 'bench.json'}" + (f", {args.json}" if args.json else ""), highlight=False,
              markup=False)
    if interrupted:
        return 130
    if any(f.error for f in bench.figures):
        return 3
    return 1 if result["summary"]["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
