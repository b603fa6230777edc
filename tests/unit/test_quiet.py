"""lab/quiet.py and its hooks in lab/runner.py, without VMs: a heavy phase waits while another worker's cell is in
its critical seconds and goes on when they end, never waits for its own, gives up after the cap, stops with the
run, waits for a window announced ahead that it would still be running in, and never waits with one worker. Fake
clocks where the decision is tested, short real waits where the waking is."""
from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest

from lab import quiet, runner as runners
from lab.outcome import Observation
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.quiet import Quiet
from lab.results import RunDir
from lab.spec import load_matrix

A, B = object(), object()          # two workers (in the lab: two Runners)


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def fake(**kw):
    clock, wall = Clock(1000.0), Clock(1_800_000_000.0)
    return Quiet(clock=clock, wall=wall, **kw), clock, wall


def in_thread(fn):
    """Run fn in a thread; returns (thread, result dict with 'value' once it returned)."""
    out = {}
    t = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    t.start()
    return t, out


def no_sleeping(q: Quiet):
    def refuse(timeout=None):
        raise AssertionError("waited")
    q._cond.wait = refuse


# ---- the registry -------------------------------------------------------------------------------------------

def test_a_phase_waits_for_another_workers_open_window_and_resumes_when_it_closes():
    q, clock, _ = fake()
    q.announce(B, 999.0, 1003.0, "w2 debian-5.10/vers=4.0/leases=off")
    noticed = threading.Event()
    seen = []
    t, out = in_thread(lambda: q.wait(A, "reset", notice=lambda w: (seen.append(w.label), noticed.set())))
    assert noticed.wait(2)
    time.sleep(0.1)
    assert t.is_alive()                              # the window is still open: still waiting
    clock.t = 1003.0                                 # … until it closes
    q.poke()
    t.join(2)
    assert not t.is_alive() and out["value"] == 3.0
    assert seen == ["w2 debian-5.10/vers=4.0/leases=off"]


def test_the_wait_ends_when_the_window_ends_without_being_told():
    q = Quiet()
    now = time.monotonic()
    q.announce(B, now - 1, now + 0.3)
    waited = q.wait(A, "nfs")
    assert 0.25 <= waited < 2.0


def test_a_withdrawn_window_lets_the_phase_go_at_once():
    q = Quiet()
    now = time.monotonic()
    q.announce(B, now - 1, now + 60)
    threading.Timer(0.2, q.withdraw, [B]).start()
    waited = q.wait(A, "reset")
    assert 0.15 <= waited < 2.0


def test_a_phase_never_waits_for_its_own_worker():
    q, clock, _ = fake()
    q.announce(A, 999.0, 1003.0)
    no_sleeping(q)
    assert q.blocking(A, lead=60) == [] and q.wait(A, "reset") == 0.0
    q.announce(B, 999.0, 1003.0)
    assert [w.owner for w in q.blocking(A, lead=0)] == [B] and [w.owner for w in q.blocking(B, lead=0)] == [A]


def test_the_wait_is_capped():
    assert quiet.MAX_WAIT_S <= 10
    q, clock, _ = fake()
    q.announce(B, 999.0, 1100.0)                     # far longer than the cap
    noticed = threading.Event()
    t, out = in_thread(lambda: q.wait(A, "boot", notice=lambda w: noticed.set()))
    assert noticed.wait(2)
    clock.t = 1000.0 + quiet.MAX_WAIT_S
    q.poke()
    t.join(2)
    assert not t.is_alive() and out["value"] == quiet.MAX_WAIT_S
    real = Quiet(max_wait=0.3)
    now = time.monotonic()
    real.announce(B, now - 1, now + 60)
    assert 0.3 <= real.wait(A, "boot") < 2.0


def test_the_run_stopping_ends_the_wait_within_a_poll():
    q = Quiet()
    now = time.monotonic()
    q.announce(B, now - 1, now + 60)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    q.wait(A, "reset", stop=stop)
    assert time.monotonic() - started < 2.0                 # the window had 60 s to go
    assert q.wait(A, "reset", stop=stop) == 0.0     # a stopped run does not wait at all


def test_a_window_announced_ahead_blocks_a_phase_that_would_still_run_in_it():
    q, clock, wall = fake()
    # bob's change planned 5 s ahead (host clock); critical from 0.5 s before it to 2.5 s after
    w = q.announce_change(B, wall.t + 5, before=0.5, after=2.5, label="w2 cell")
    assert (w.start, w.end) == (1004.5, 1007.5)
    assert q.lead("reset") == float("inf")           # not measured yet: any announced window
    assert q.blocking(A, q.lead("reset")) == [w]
    q.took("reset", 3.0)                             # a reset takes 3 s: one starting now ends before the window
    assert q.blocking(A, q.lead("reset")) == []
    no_sleeping(q)
    assert q.wait(A, "reset") == 0.0
    clock.t = 1002.0                                 # one starting now would still run at 1004.5
    assert q.blocking(A, q.lead("reset")) == [w]
    clock.t = 1005.0                                 # inside the window
    assert q.blocking(A, 0.0) == [w]
    clock.t = 1007.5                                 # over
    assert q.blocking(A, q.lead("reset")) == []


def test_a_turn_times_its_phase_for_the_next_lead():
    q, clock, _ = fake()
    with q.turn(A, "nfs") as waited:
        clock.t += 6.2
    assert waited == 0.0 and q.lead("nfs") == pytest.approx(6.2)


# ---- the hooks in the runner --------------------------------------------------------------------------------

@pytest.fixture
def make_runner(tmp_path):
    matrix = load_matrix(DEFAULT_MATRIX)
    matrix = dataclasses.replace(matrix, experiment=dataclasses.replace(matrix.experiment, capture=False))
    registry = Quiet()

    def make(worker):
        r = runners.Runner(matrix, RunDir.create(tmp_path / f"runs-{worker}"), home=LabHome(tmp_path / "home"),
                           worker=worker)
        r.quiet, r.stop, r.said = registry, threading.Event(), []
        r.progress = r.said.append
        return r
    return make


def test_a_cell_announces_its_critical_seconds_from_the_matrix(make_runner):
    r = make_runner("w1")
    r.quiet = Quiet(*fake()[1:])
    cell = r.matrix.cells(["debian-6.1"])[0]
    w = r._critical(cell)(r.quiet.wall() + 5)
    exp = r.matrix.experiment
    assert (w.start, w.end) == (1005 - exp.interval, 1005 + exp.pass_within + exp.interval) == (1004.5, 1007.5)
    assert w.owner is r and w.label == f"w1 {cell.id}"


def test_one_worker_never_waits(make_runner):
    r = make_runner(None)
    cell = r.matrix.cells(["debian-6.1"])[0]
    r._critical(cell)(time.time())                   # its own cell's window, open now
    no_sleeping(r.quiet)
    for phase in quiet.PHASES:
        with r._quiet_turn(phase, cell.id) as waited:
            assert waited == 0.0
    assert r.said == []


def test_another_workers_cell_holds_a_reset_back_until_it_is_over(make_runner):
    w1, w2 = make_runner("w1"), make_runner("w2")
    cell = w1.matrix.cells(["debian-5.10"])[0]
    w1._critical(cell)(time.time() + 0.2)            # its change in 0.2 s: critical already (0.5 s before)
    threading.Timer(0.3, w1.quiet.withdraw, [w1]).start()
    with w2._quiet_turn("reset", "debian-6.1/vers=4.0/leases=on") as waited:
        pass
    assert 0.25 <= waited < 2.0
    assert w2.said[0] == f"debian-6.1/vers=4.0/leases=on: reset waits for the critical seconds of w1 {cell.id}"
    assert w2.said[1].startswith("debian-6.1/vers=4.0/leases=on: reset (after 0.")


def test_a_boot_waiting_for_quiet_stops_with_the_run(make_runner):
    w1, w2 = make_runner("w1"), make_runner("w2")
    w1._critical(w1.matrix.cells(["debian-5.10"])[0])(time.time())
    threading.Timer(0.2, w2.stop.set).start()
    started = time.monotonic()
    with pytest.raises(runners.Cancelled):
        with w2._boot_turn("debian-6.1"):
            pytest.fail("the boot started although the run stopped")
    assert time.monotonic() - started < 2.0
    assert runners.BOOTS.acquire(blocking=False)     # the boot's turn was given back
    runners.BOOTS.release()


class FakeLab:
    def __init__(self, fresh, events):
        self.fresh, self.events, self.timings = fresh, events, {}
        answer = SimpleNamespace(stdout="6.1.0\n")
        node = SimpleNamespace(run=lambda *a, **kw: answer)
        self.server, self.server_ip, self.remotes = node, "10.0.0.1", {"alice": node, "bob": node, "server": node}
        self.live = SimpleNamespace(topology=SimpleNamespace(nfs=SimpleNamespace(cidr="10.0.0.0/24")))
        self.timeouts = SimpleNamespace(nfsd=1, mount=1, experiment=1)
        self.client_files = SimpleNamespace(nfs_modules=None)

    def reset(self):
        self.events.append("reset")
        self.fresh = False


@pytest.mark.parametrize("fresh", [False, True])
def test_run_on_waits_before_reset_and_nfs_and_announces_the_change(make_runner, monkeypatch, tmp_path, fresh):
    events = []
    r = make_runner("w1")

    class Recording(Quiet):
        def wait(self, owner, phase, lead=None, stop=None, notice=None):
            events.append(f"wait {phase}")
            return {"reset": 1.25, "nfs": 0.5}[phase]
    r.quiet = Recording()

    def fake_race(alice, bob, scenario, settings, setup, on_change, on_planned):
        on_planned(time.time() + 5)               # planned: announced for the future
        events.append(f"announced {len(r.quiet.blocking(object(), lead=10))}")
        on_change(time.time() - 0.1)              # done: announced again around the real t = 0
        events.append(f"announced {len(r.quiet.blocking(object(), lead=0))}")
        return Observation(reads=[], meta={})
    monkeypatch.setattr(runners.race, "run", fake_race)
    monkeypatch.setattr(runners.nfs, "start_server", lambda *a, **kw: events.append("nfsd") or {})
    monkeypatch.setattr(runners.nfs, "mount", lambda *a, **kw: {})
    monkeypatch.setattr(runners.nfs, "client_module", lambda *a, **kw: "")
    monkeypatch.setattr(runners.nfs, "umount", lambda *a, **kw: None)
    monkeypatch.setitem(runners.EXPERIMENTS, "rename", lambda server: None)
    lab = FakeLab(fresh, events)
    obs, release = r._run_on(lab, r.matrix.cells(["debian-6.1"])[0], tmp_path)
    reset = [] if fresh else ["wait reset"]
    assert events == [*reset, "reset", "wait nfs", "nfsd", "announced 1", "announced 1"]
    expected = {"quiet_nfs_s": 0.5, **({} if fresh else {"quiet_reset_s": 1.25})}
    assert {k: v for k, v in obs.meta["timings"].items() if k.startswith("quiet_")} == expected
    assert r.quiet.blocking(object(), lead=60) == []   # withdrawn once the experiment is over
