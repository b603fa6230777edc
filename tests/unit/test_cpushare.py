"""lab/cpushare.py: which domains, processes and threads a booting topology lowers, that it finds new ones while it
boots, that it puts every one back, and that nothing it meets (a vanished thread, a refusal) reaches the boot.
Fake /proc trees, except one test that lowers and restores a real child process of its own (two threads)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab import cpushare
from lab.cpushare import Procs, Yielding, guest_name, lab_domains, stat_nice

SERVER, ALICE, BOB = (f"nfslab-abc123-{m}" for m in ("server", "alice", "bob"))


def cmdline(domain: str) -> bytes:
    return b"\0".join([b"/usr/bin/qemu-system-x86_64", b"-name", f"guest={domain},debug-threads=on".encode(), b"-S",
                       b"-accel", b"tcg,tb-size=128", b""])


class FakeProc:
    """A /proc tree and a libvirt pid directory; setpriority writes the nice into the thread's stat line, as the
    kernel would show it."""

    def __init__(self, tmp_path: Path):
        self.root, self.pid_dir = tmp_path / "proc", tmp_path / "run"
        self.root.mkdir()
        self.pid_dir.mkdir()
        self.calls: list[tuple[int, int]] = []
        self.gone: set[int] = set()        # tids that end just before they are set (ESRCH)

    def process(self, pid: int, domain: str | None, tids=(), nice: int = 0, pid_file: bool = True,
                argv: bytes | None = None):
        d = self.root / str(pid)
        (d / "task").mkdir(parents=True)
        (d / "cmdline").write_bytes(argv if argv is not None else cmdline(domain))
        for tid in (pid, *tids):
            self.thread(pid, tid, nice)
        if domain and pid_file:
            (self.pid_dir / f"{domain}.pid").write_text(f"{pid}\n")

    def thread(self, pid: int, tid: int, nice: int = 0, comm: str = "CPU 0/TCG"):
        t = self.root / str(pid) / "task" / str(tid)
        t.mkdir(exist_ok=True)
        # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
        # cstime priority nice …
        (t / "stat").write_text(f"{tid} ({comm}) S 1 1 1 0 -1 4194560 1 0 0 0 5 3 0 0 {20 + nice} {nice} 8 0\n")

    def nice(self, pid: int, tid: int) -> int:
        return stat_nice((self.root / str(pid) / "task" / str(tid) / "stat").read_text())

    def setpriority(self, tid: int, nice: int):
        if tid in self.gone:
            raise ProcessLookupError(3, "No such process")
        self.calls.append((tid, nice))
        for stat in self.root.glob(f"*/task/{tid}/stat"):
            self.thread(int(stat.parent.parent.parent.name), tid, nice)

    def procs(self) -> Procs:
        return Procs(self.root, self.pid_dir)

    def yielding(self, domains, **kw) -> Yielding:
        return Yielding(domains, procs=self.procs(), setpriority=self.setpriority, **kw)


@pytest.fixture
def fake(tmp_path):
    return FakeProc(tmp_path)


# ---- the pure parts ---------------------------------------------------------------------------------------------

def test_the_domain_of_a_qemu_command_line():
    assert guest_name(cmdline(ALICE)) == ALICE
    assert guest_name(b"qemu\0-name\0guest=nfslab-x-bob\0") == "nfslab-x-bob"
    assert guest_name(b"qemu\0-name\0nfslab-x-bob\0") is None           # not libvirt's form
    assert guest_name(b"sleep\0guest=nfslab-x-bob\0") is None           # not after -name
    assert guest_name(b"") is None


def test_the_nice_of_a_stat_line_whatever_the_thread_is_called():
    assert stat_nice("6487 (CPU 0/TCG) S 1 1 1 0 -1 0 1 0 0 0 5 3 0 0 39 19 8 0\n") == 19
    assert stat_nice("7 (a) b (c) S 1 1 1 0 -1 0 1 0 0 0 5 3 0 0 20 0 1 0\n") == 0
    assert stat_nice("7 (truncated) S 1") is None


def test_only_the_labs_own_domains_are_touched():
    assert lab_domains([SERVER, "debian12", "other-nfslab-x", ALICE]) == [SERVER, ALICE]


def test_a_yielding_nice_lowers_the_priority():
    for bad in (0, -5, 20):
        with pytest.raises(ValueError):
            Yielding([SERVER], nice=bad)


# ---- finding the processes --------------------------------------------------------------------------------------

def test_processes_are_found_by_pid_file_or_by_name_and_never_another_ones(fake):
    fake.process(100, SERVER)                          # a pid file that names it
    fake.process(200, ALICE, pid_file=False)           # no pid file (yet): found by its command line
    fake.process(300, "nfslab-ffffff-bob")             # another topology's
    fake.process(400, "debian12")                      # not the lab's
    (fake.pid_dir / f"{BOB}.pid").write_text("400\n")  # stale: the pid is another process now
    fake.process(500, None, argv=b"sleep\0600\0")
    assert fake.procs().find([SERVER, ALICE, BOB, "debian12"]) == {SERVER: 100, ALICE: 200}


def test_a_tree_that_is_not_there_finds_nothing(tmp_path):
    procs = Procs(tmp_path / "none", tmp_path / "none")
    assert procs.find([SERVER]) == {} and procs.threads(1) == [] and procs.nice(1, 1) is None


# ---- yielding and restoring -------------------------------------------------------------------------------------

def test_every_thread_is_lowered_and_put_back(fake):
    fake.process(100, SERVER, tids=(101, 102))
    fake.process(200, ALICE, tids=(201,))
    fake.process(300, "nfslab-ffffff-bob", tids=(301,))    # another worker's cell: untouched
    y = fake.yielding([SERVER, ALICE, BOB])
    assert y.apply() == 5
    assert {fake.nice(p, t) for p, t in ((100, 100), (100, 101), (100, 102), (200, 200), (200, 201))} == {19}
    assert fake.nice(300, 301) == 0
    assert y.apply() == 0                                   # nothing left to lower
    assert y.restore() == 5
    assert {fake.nice(p, t) for p, t in ((100, 100), (100, 101), (100, 102), (200, 200), (200, 201))} == {0}
    assert all(tid < 300 for tid, _ in fake.calls)


def test_new_processes_and_threads_are_found_on_the_next_pass(fake):
    y = fake.yielding([SERVER, ALICE])
    assert y.apply() == 0                      # vagrant up has not started any qemu yet
    fake.process(100, SERVER, tids=(101,))
    assert y.apply() == 2
    fake.thread(100, 103, nice=0)              # made by a thread not yet lowered
    fake.thread(100, 104, nice=19)             # made by a lowered one: inherits the nice
    fake.process(200, ALICE, pid_file=False)   # a reload: a new qemu under a new pid
    assert y.apply() == 2
    assert y.restore() == 5                    # 104 too: it is lower only because of us
    assert all(fake.nice(100, t) == 0 for t in (100, 101, 103, 104)) and fake.nice(200, 200) == 0


def test_each_thread_gets_back_its_own_nice_and_a_changed_one_is_left_alone(fake):
    fake.process(100, SERVER, tids=(101, 102, 103), nice=5)   # the lab itself runs under `nice -n 5`
    fake.thread(100, 101, nice=2)
    fake.thread(100, 102, nice=19)                            # already as low as it gets: not ours
    y = fake.yielding([SERVER])
    assert y.apply() == 3
    fake.thread(100, 103, nice=7)                             # someone else changed it meanwhile
    fake.thread(100, 104, nice=19)                            # born from a lowered thread
    y.restore()
    assert [fake.nice(100, t) for t in (100, 101, 102, 103, 104)] == [5, 2, 19, 7, 5]


def test_a_lower_yielding_nice_leaves_lower_threads_alone(fake):
    fake.process(100, SERVER, tids=(101,))
    fake.thread(100, 101, nice=15)
    y = fake.yielding([SERVER], nice=10)
    assert y.apply() == 1 and fake.nice(100, 101) == 15
    y.restore()
    assert (fake.nice(100, 100), fake.nice(100, 101)) == (0, 15)


def test_vanished_threads_and_failures_never_reach_the_boot(fake, monkeypatch):
    fake.process(100, SERVER, tids=(101, 102))
    fake.gone.add(101)                                        # ends between being listed and being set
    y = fake.yielding([SERVER])
    assert y.apply() == 2
    assert y.restore() == 2 and (101, 0) not in fake.calls

    def broken(domains):
        raise RuntimeError("a /proc that makes no sense")
    monkeypatch.setattr(y.procs, "find", broken)
    assert y.apply() == 0 and y.restore() == 0

    def refused(tid, nice):
        raise PermissionError(1, "Operation not permitted")
    fake.process(200, ALICE)
    assert Yielding([ALICE], procs=fake.procs(), setpriority=refused).apply() == 0


def test_as_a_context_it_keeps_finding_until_it_is_left(fake):
    fake.process(100, SERVER)
    with fake.yielding([SERVER, ALICE], interval=0.01) as y:
        assert fake.nice(100, 100) == 19                      # the first pass is done on entry
        fake.process(200, ALICE, tids=(201,))                 # starts while the boot goes on
        deadline = time.monotonic() + 5
        while fake.nice(200, 201) != 19 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.nice(200, 201) == 19
    assert not y._thread.is_alive()
    assert (fake.nice(100, 100), fake.nice(200, 200), fake.nice(200, 201)) == (0, 0, 0)


def test_no_domain_of_the_lab_starts_no_thread(fake):
    with fake.yielding(["debian12"]) as y:
        assert y._thread is None


# ---- a real process ---------------------------------------------------------------------------------------------

CHILD = """
import sys, threading, time
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def thread_nices(pid: int) -> dict[int, int]:
    task = Path(f"/proc/{pid}/task")
    return {int(t.name): stat_nice((t / "stat").read_text()) for t in task.iterdir()}


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority back needs CAP_SYS_NICE (root)")
def test_a_real_two_thread_process_is_lowered_thread_by_thread_and_put_back(tmp_path):
    domain = f"nfslab-unit{os.getpid()}-server"        # matched by its command line, as libvirt names a qemu
    child = subprocess.Popen([sys.executable, "-c", CHILD, "-name", f"guest={domain},debug-threads=on"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))   # pytest may run niced
    try:
        assert child.stdout.readline().strip() == "ready"
        nices = thread_nices(child.pid)
        assert len(nices) == 2 and set(nices.values()) == {0}
        # why every thread: setpriority on the pid changes its main thread only
        os.setpriority(os.PRIO_PROCESS, child.pid, 5)
        assert sorted(thread_nices(child.pid).values()) == [0, 5]
        os.setpriority(os.PRIO_PROCESS, child.pid, 0)

        procs = Procs(Path("/proc"), tmp_path)         # no pid file: found in /proc by its name
        assert procs.find([domain]) == {domain: child.pid}
        with Yielding([domain], procs=procs, interval=0.05):
            assert set(thread_nices(child.pid).values()) == {19}
        assert set(thread_nices(child.pid).values()) == {0}
    finally:
        child.kill()
        child.wait()


# ---- where the lab yields -----------------------------------------------------------------------------------------

@pytest.fixture
def recorded(monkeypatch):
    """cpushare.yielding replaced by a recorder: which domains, and what happened inside."""
    events = []

    class Recorder:
        def __init__(self, domains, **kw):
            self.domains = list(domains)

        def __enter__(self):
            events.append(("enter", self.domains))

        def __exit__(self, *exc):
            events.append(("exit", self.domains))

    monkeypatch.setattr(cpushare, "yielding", Recorder)
    return events


def test_a_boot_yields_from_before_vagrant_up_until_the_lab_is_ready(recorded, tmp_path, monkeypatch):
    from lab import topology
    from lab.host import Host
    from lab.kernellab import boot_lab
    from lab.paths import LabHome
    from lab.remote import Remote

    def create(live, progress=None):
        recorded.append(("create", live.topology.domains))
        live.timings["up"] = 1.0
        live.targets = {m.name: topology.SshTarget(m.name, "192.0.2.1", 22) for m in live.topology.machines}
        return live

    monkeypatch.setattr(topology.LiveTopology, "create", create)
    monkeypatch.setattr(Remote, "wait_ready", lambda remote, timeout: recorded.append(("ssh", remote.name)))
    files = topology.KernelFiles(tmp_path / "vmlinuz", None, "6.1.0-test")
    lab = boot_lab(Host(LabHome(tmp_path / "home")), box="b", kernel_name="k", server=files, client=files,
                   run=tmp_path / "run", ready_only=True)
    domains = lab.live.topology.domains
    assert recorded[0] == ("enter", domains) and recorded[1] == ("create", domains)
    assert recorded[-1] == ("exit", domains) and sum(1 for e in recorded if e[0] == "ssh") == 3


def test_a_reset_yields_around_the_revert_and_the_ssh_checks(recorded):
    from lab.kernellab import KernelLab
    live = SimpleNamespace(topology=SimpleNamespace(domains=[SERVER, ALICE, BOB]),
                           revert=lambda timeout: recorded.append(("revert", timeout)) or 0.1)
    ssh = SimpleNamespace(close=lambda: None, wait_ready=lambda timeout: recorded.append(("ssh", timeout)))
    lab = KernelLab(live, {"server": ssh}, client_files=None, fresh=False)
    lab.reset()
    assert [e[0] for e in recorded] == ["enter", "revert", "ssh", "exit"]
    assert recorded[0][1] == [SERVER, ALICE, BOB]
