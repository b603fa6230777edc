"""What the workers of `lab run --jobs N` share, without VMs: the host lease (a count per process), the slot and
state file of a new topology, the lock around a box's first upload, the flock that threads honour, and the
release at the end of a run that leaves a host alone while a lease of this process still holds it."""
from __future__ import annotations

import fcntl
import os
import threading
import time

from lab import cleanup, topology
from lab.host import Host, HostLease
from lab.paths import LabHome
from lab.state import StateFile, locked


def test_the_lease_is_counted_per_process_one_pid_file_for_all_holders(tmp_path):
    host = Host(LabHome(tmp_path))
    pid_file = tmp_path / "state" / "users" / str(os.getpid())
    a, b = HostLease(host), HostLease(Host(LabHome(tmp_path)))
    a.acquire()
    b.acquire()
    assert pid_file.exists() and HostLease.holders(host) == 2
    a.release()
    assert pid_file.exists()                     # the first worker to finish does not unregister the process
    a.release()                                  # idempotent: a released lease releases nothing twice
    assert HostLease.holders(host) == 1
    with HostLease(host):
        assert HostLease.holders(host) == 2
    b.release()
    assert not pid_file.exists() and HostLease.holders(host) == 0


def test_release_leaves_the_host_alone_while_this_process_holds_a_lease(tmp_path, monkeypatch):
    host = Host(LabHome(tmp_path))
    torn_down = []
    monkeypatch.setattr(cleanup, "clean_topologies", lambda *a, **kw: [])
    monkeypatch.setattr(cleanup, "clean_everything", lambda home: torn_down.append(home) or ["host"])
    with HostLease(host):
        assert cleanup.release(host, tmp_path / "run") == [] and torn_down == []
    assert cleanup.release(host, tmp_path / "run") == ["host"]


def test_concurrent_reservations_get_distinct_slots_and_state_first(tmp_path):
    home = LabHome(tmp_path)
    home.topologies.mkdir(parents=True)
    got = []

    def reserve():
        got.append(topology.reserve(home, tmp_path / "run"))
    threads = [threading.Thread(target=reserve) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.slot for r in got) == list(range(12))
    assert len({r.lab_id for r in got}) == 12
    state = StateFile(got[0].dir / "state.json")
    assert state.get("pid") == os.getpid() and state.get("run") == str(tmp_path / "run")


def test_flock_excludes_threads_of_one_process(tmp_path):
    lock = tmp_path / "x.lock"
    inside, order = threading.Event(), []

    def holder():
        with locked(lock):
            inside.set()
            time.sleep(0.3)
            order.append("holder done")
    t = threading.Thread(target=holder)
    t.start()
    inside.wait(5)
    with locked(lock):
        order.append("second in")
    t.join()
    assert order == ["holder done", "second in"]


class Pool:
    def __init__(self, home, volumes):
        self.home, self.volumes = home, volumes

    def virsh(self, *args, **kw):
        return "".join(f" {v} /pool/{v}\n" for v in self.volumes)


def lock_is_free(path) -> bool:
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_the_first_up_of_a_box_holds_the_upload_lock_later_ones_do_not(tmp_path):
    home = LabHome(tmp_path)
    lock = home.state / "box-upload.lock"
    with topology.box_upload_guard(Pool(home, []), ["nfslab-bookworm-abc"]):
        assert not lock_is_free(lock)            # no volume yet: a second up waits for this upload
    uploaded = Pool(home, ["nfslab-bookworm-abc_vagrant_box_image_0_1.img", "nfslab-x-server.img"])
    with topology.box_upload_guard(uploaded, ["nfslab-bookworm-abc"]):
        assert lock_is_free(lock)                # uploaded: ups run side by side
    with topology.box_upload_guard(uploaded, ["nfslab-bookworm-abc", "centos/7"]):
        assert not lock_is_free(lock)            # a distribution box not uploaded yet
    assert topology.pool_volumes(uploaded) == ["nfslab-bookworm-abc_vagrant_box_image_0_1.img",
                                               "nfslab-x-server.img"]
