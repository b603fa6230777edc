"""Debugging in place without VMs: `lab run --keep` marks a topology kept, the next run's orphan cleanup leaves it,
and `lab status`, `lab ssh` and `lab down` read the state files (virsh, ssh and the teardown are faked)."""
import json
import os
import subprocess

import pytest

from lab import cleanup, preflight, status
from lab.host import Host
from lab.paths import LabHome
from lab.state import StateFile


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def topology_state(home: LabHome, lab_id: str, kernel: str, pid: int, kept: bool = False) -> None:
    state = StateFile(home.topologies / lab_id / "state.json")
    state.set("slot", 0)
    state.set("run", f"/runs/{lab_id}")
    state.set("pid", pid)
    state.set("topology", {"lab_id": lab_id, "kernel": kernel, "dir": str(home.topologies / lab_id)})
    for octet, machine in ((10, "server"), (11, "alice"), (12, "bob")):
        state.record("domain", f"nfslab-{lab_id}-{machine}")
    state.set("targets", {m: {"name": m, "address": f"192.168.100.{o}", "port": 22}
                          for o, m in ((10, "server"), (11, "alice"), (12, "bob"))})
    if kept:
        state.set("kept", True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """NFSLAB_HOME with a kept debian-6.1 topology (its run is gone) and a running debian-5.10 one; libvirtd up,
    every domain running; no root or host tools needed."""
    home = LabHome(tmp_path / "home").ensure()
    topology_state(home, "aaa111", "debian-6.1", dead_pid(), kept=True)
    topology_state(home, "bbb222", "debian-5.10", os.getpid())
    (home.run / "libvirtd.pid").write_text(f"{os.getpid()}\n")
    monkeypatch.setenv("NFSLAB_HOME", str(home.root))
    monkeypatch.setattr(Host, "virsh", lambda self, *args, **kw: "running\n" if args[0] == "domstate" else "")
    monkeypatch.setattr(Host, "netns_exists", lambda self: True)
    monkeypatch.setattr(preflight, "check", lambda *args, **kw: None)
    return home


@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(status.os, "execvp", lambda file, argv: calls.append((file, argv)))
    return calls


def test_status_lists_the_host_and_each_topology(home, lab_cli):
    r = lab_cli("status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"host: namespace nfslab up, libvirtd pid {os.getpid()}"
    assert lines[1].startswith("debian-6.1: topology aaa111, kept, run pid ")
    assert "gone, run /runs/aaa111; server running 192.168.100.10:22, alice running 192.168.100.11:22" in lines[1]
    assert lines[2].startswith(f"debian-5.10: topology bbb222, not kept, run pid {os.getpid()} running")
    assert len(lines) == 3


def test_status_json(home, lab_cli):
    r = lab_cli("status", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["host"]["up"] and data["host"]["libvirtd_running"]
    kept, running = data["topologies"]
    assert (kept["lab_id"], kept["kernel"], kept["kept"], kept["alive"]) == ("aaa111", "debian-6.1", True, False)
    assert (running["kept"], running["alive"]) == (False, True)
    assert [(m["name"], m["state"]) for m in kept["machines"]] == [("server", "running"), ("alice", "running"),
                                                                   ("bob", "running")]


def test_status_with_nothing_up_says_so(tmp_path, monkeypatch, lab_cli):
    monkeypatch.setenv("NFSLAB_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(Host, "netns_exists", lambda self: False)
    monkeypatch.setattr(preflight, "check", lambda *args, **kw: None)
    r = lab_cli("status")
    assert (r.returncode, r.stdout) == (0, "nothing is up\n")


def test_kept_topologies_survive_the_orphan_cleanup_and_lab_clean_removes_them(home, monkeypatch):
    destroyed = []
    monkeypatch.setattr(cleanup, "destroy_recorded", lambda host, topo: destroyed.append(topo.name) or [topo.name])
    topology_state(home, "ccc333", "debian-6.1", dead_pid())          # a killed run's: an orphan
    assert cleanup.clean_orphans(Host(home)) == ["ccc333"]
    assert sorted(p.name for p in home.topologies.iterdir() if p.is_dir()) == ["aaa111", "bbb222"]
    monkeypatch.setattr(Host, "libvirtd_running", lambda self: False)
    monkeypatch.setattr(Host, "down", lambda self: [])
    cleanup.clean_everything(home)
    assert sorted(destroyed) == ["aaa111", "bbb222", "ccc333"]


def test_the_end_of_a_run_leaves_its_kept_topology_and_the_host(home, monkeypatch):
    destroyed, host_down = [], []
    monkeypatch.setattr(cleanup, "destroy_recorded", lambda host, topo: destroyed.append(topo.name) or [])
    monkeypatch.setattr(cleanup, "clean_everything", lambda *args, **kw: host_down.append(1) or [])
    cleanup.release(Host(home), "/runs/aaa111")
    assert destroyed == [] and host_down == []
    assert (home.topologies / "aaa111" / "state.json").exists()


def test_a_runner_closed_with_keep_marks_its_topology_kept(tmp_path):
    from types import SimpleNamespace

    from lab.paths import DEFAULT_MATRIX
    from lab.results import RunDir
    from lab.runner import Runner
    from lab.spec import load_matrix
    home = LabHome(tmp_path / "home")
    topology_state(home, "ddd444", "debian-6.1", os.getpid())
    disconnected = []
    live = SimpleNamespace(state=StateFile(home.topologies / "ddd444" / "state.json"),
                           topology=SimpleNamespace(kernel_name="debian-6.1", lab_id="ddd444"))
    r = Runner(load_matrix(DEFAULT_MATRIX), RunDir.create(tmp_path / "runs"), home=home)
    r.lab = SimpleNamespace(live=live, disconnect=lambda: disconnected.append(1),
                            close=lambda: pytest.fail("a kept topology is not destroyed"))
    kept = r.close(keep=True)
    assert (kept.kernel_name, kept.lab_id) == ("debian-6.1", "ddd444")
    assert disconnected == [1] and r.lab is None
    assert live.state.get("kept") is True


def test_ssh_argv_goes_through_the_namespace_as_root_with_the_lab_key(home, execs, lab_cli):
    r = lab_cli("ssh", "debian-6.1", "alice")
    assert r.returncode == 0, r.stderr
    assert execs == [("ip", ["ip", "netns", "exec", "nfslab", "ssh", "-i", str(home.ssh_key),
                             "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                             "-p", "22", "root@192.168.100.11"])]


def test_ssh_runs_a_command_given_after_the_double_dash(home, execs, lab_cli):
    r = lab_cli("ssh", "debian-5.10", "bob", "--", "cat", "/proc/mounts", "-x")
    assert r.returncode == 0, r.stderr
    assert execs[0][1][-4:] == ["root@192.168.100.12", "cat", "/proc/mounts", "-x"]
    assert lab_cli("ssh", "debian-5.10", "bob", "ls", "-l").returncode == 0
    assert execs[1][1][-3:] == ["root@192.168.100.12", "ls", "-l"]


def test_ssh_prefers_a_kept_topology_of_the_kernel(home, execs):
    topology_state(home, "eee555", "debian-6.1", os.getpid())
    StateFile(home.topologies / "eee555" / "state.json").set("targets", {"server": {"address": "10.0.0.1",
                                                                                     "port": 2222}})
    status.ssh(Host(home), "debian-6.1", "server")
    assert execs[0][1][-3:] == ["-p", "22", "root@192.168.100.10"]


@pytest.mark.parametrize("args, message", [
    (["ssh", "debian-6.12", "alice"], "no topology of kernel debian-6.12 is up (up: debian-6.1 (topology aaa111, "
                                      "kept); debian-5.10 (topology bbb222, run pid"),
    (["ssh", "debian-6.1", "carol"], "no machine carol in debian-6.1 (topology aaa111, kept) (machines: server, "
                                     "alice, bob)"),
    (["down", "debian-5.10"], "no kept topology of kernel debian-5.10 (up: debian-6.1 (topology aaa111, kept)"),
])
def test_bad_input_is_one_line_naming_what_is_up_and_exit_2(home, execs, lab_cli, args, message):
    r = lab_cli(*args)
    assert r.returncode == 2
    assert r.stderr.startswith(f"lab: {message}") and r.stderr.count("\n") == 1
    assert execs == [] and "Traceback" not in r.stderr


def test_ssh_with_nothing_up_is_exit_2(tmp_path, monkeypatch, execs, lab_cli):
    monkeypatch.setenv("NFSLAB_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(preflight, "check", lambda *args, **kw: None)
    r = lab_cli("ssh", "debian-6.1", "alice")
    assert (r.returncode, r.stderr) == (2, "lab: no topology of kernel debian-6.1 is up (no topology is up)\n")


def test_down_destroys_the_kept_topology_then_the_host_when_nothing_else_uses_it(home, monkeypatch, lab_cli):
    destroyed, host_down = [], []
    monkeypatch.setattr(status, "destroy_recorded", lambda host, topo: destroyed.append(topo.name) or [topo.name])
    monkeypatch.setattr(status, "clean_everything", lambda home: host_down.append(1) or ["daemon libvirtd"])
    r = lab_cli("down", "debian-6.1")
    assert r.returncode == 0, r.stderr
    assert destroyed == ["aaa111"] and not (home.topologies / "aaa111").exists()
    assert host_down == []                      # debian-5.10's run still uses the host
    StateFile(home.topologies / "bbb222" / "state.json").set("kept", True)
    assert lab_cli("down").returncode == 0
    assert destroyed == ["aaa111", "bbb222"] and host_down == [1]


def test_down_with_nothing_kept_removes_nothing(home, monkeypatch, lab_cli):
    StateFile(home.topologies / "aaa111" / "state.json").set("kept", False)
    monkeypatch.setattr(status, "destroy_recorded", lambda host, topo: pytest.fail("nothing is kept"))
    r = lab_cli("down")
    assert r.returncode == 0, r.stderr
    assert (home.topologies / "aaa111").exists() and (home.topologies / "bbb222").exists()
