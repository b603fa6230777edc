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


@pytest.fixture
def two_up(home):
    """debian-6.1 with a second topology up beside its kept aaa111: eee555, whose run (`lab run --jobs 2`, the
    kernel's runs split over two workers) is still going; its server answers elsewhere."""
    topology_state(home, "eee555", "debian-6.1", os.getpid())
    StateFile(home.topologies / "eee555" / "state.json").set("targets", {"server": {"address": "10.0.0.1",
                                                                                     "port": 2222}})
    return home


def test_status_lists_both_topologies_of_one_kernel_by_their_ids(two_up, lab_cli):
    r = lab_cli("status")
    assert r.returncode == 0, r.stderr
    ours = [line for line in r.stdout.splitlines() if line.startswith("debian-6.1: ")]
    assert [line.split(",")[0] for line in ours] == ["debian-6.1: topology aaa111", "debian-6.1: topology eee555"]
    assert "kept" in ours[0] and f"not kept, run pid {os.getpid()} running" in ours[1]
    listed = json.loads(lab_cli("status", "--json").stdout)["topologies"]
    assert [(t["kernel"], t["lab_id"]) for t in listed] == [("debian-6.1", "aaa111"), ("debian-5.10", "bbb222"),
                                                            ("debian-6.1", "eee555")]


@pytest.mark.parametrize("second_kept", [False, True])
def test_ssh_picks_none_of_a_kernels_two_topologies_by_itself(two_up, execs, lab_cli, second_kept):
    """Kept and running (a `--jobs 2` run), or both kept (two `lab run --keep`): one line naming each as KERNEL@ID,
    exit 2, no ssh."""
    StateFile(two_up.topologies / "eee555" / "state.json").set("kept", second_kept)
    r = lab_cli("ssh", "debian-6.1", "server")
    assert (r.returncode, execs) == (2, []), r.stderr
    second = "kept" if second_kept else f"run pid {os.getpid()} running"
    assert r.stderr == (f"lab: kernel debian-6.1 has 2 topologies up, name one: debian-6.1@aaa111 (kept), "
                        f"debian-6.1@eee555 ({second}) (e.g. lab ssh debian-6.1@aaa111 server)\n")


def test_ssh_to_kernel_at_topology_logs_into_that_one(two_up, execs, lab_cli):
    assert lab_cli("ssh", "debian-6.1@eee555", "server", "--", "exportfs", "-v").returncode == 0
    assert execs[0][1][-5:] == ["-p", "2222", "root@10.0.0.1", "exportfs", "-v"]
    assert lab_cli("ssh", "debian-6.1@aaa111", "server").returncode == 0
    assert execs[1][1][-3:] == ["-p", "22", "root@192.168.100.10"]
    assert lab_cli("ssh", "debian-5.10@bbb222", "bob").returncode == 0     # the id also fits a kernel with one
    assert execs[2][1][-1] == "root@192.168.100.12"


def test_down_kernel_removes_each_of_its_kept_topologies_and_kernel_at_topology_one(two_up, monkeypatch, lab_cli):
    destroyed = []
    monkeypatch.setattr(status, "destroy_recorded", lambda host, topo: destroyed.append(topo.name) or [topo.name])
    monkeypatch.setattr(status, "clean_everything", lambda home: [])
    topology_state(two_up, "fff666", "debian-6.1", dead_pid(), kept=True)
    topology_state(two_up, "ggg777", "debian-6.1", dead_pid(), kept=True)
    r = lab_cli("down", "debian-6.1@ggg777")
    assert r.returncode == 0, r.stderr
    assert destroyed == ["ggg777"] and (two_up.topologies / "aaa111").exists()
    r = lab_cli("down", "debian-6.1")
    assert r.returncode == 0, r.stderr
    assert sorted(destroyed) == ["aaa111", "fff666", "ggg777"]                # both kept ones; not eee555 (running)
    assert (two_up.topologies / "eee555").exists() and (two_up.topologies / "bbb222").exists()


@pytest.mark.parametrize("args, message", [
    (["ssh", "debian-6.12", "alice"], "no topology of kernel debian-6.12 is up (up: debian-6.1 (topology aaa111, "
                                      "kept); debian-5.10 (topology bbb222, run pid"),
    (["ssh", "debian-6.1", "carol"], "no machine carol in debian-6.1 (topology aaa111, kept) (machines: server, "
                                     "alice, bob)"),
    (["down", "debian-5.10"], "no kept topology of kernel debian-5.10 (up: debian-6.1 (topology aaa111, kept)"),
    (["ssh", "debian-6.1@bbb222", "alice"], "no topology bbb222 of kernel debian-6.1 is up (up: debian-6.1 (topology "
                                            "aaa111, kept); debian-5.10 (topology bbb222, run pid"),
    (["ssh", "debian-6.1@zzz999", "alice"], "no topology zzz999 of kernel debian-6.1 is up (up: "),
    (["down", "debian-5.10@bbb222"], "no kept topology bbb222 of kernel debian-5.10 (up: debian-6.1 (topology "
                                     "aaa111, kept)"),
    (["ssh", "debian-6.1\x1b[2J\nx", "alice"], "no topology of kernel debian-6.1\\x1b[2J\\nx is up (up: "),
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


@pytest.mark.parametrize("args, message", [
    (["ssh", "debian-6.1@", "alice"], "'debian-6.1@': '' is not a topology id (allowed: KERNEL, or KERNEL@TOPOLOGY"),
    (["ssh", "@ab12cd", "alice"], "'@ab12cd': no kernel before the @ (allowed: KERNEL, or KERNEL@TOPOLOGY with a "
                                  "topology id as `lab status` lists it, e.g. debian-6.1@ab12cd)"),
    (["ssh", "", "alice"], "'': no kernel (allowed: "),
    (["ssh", "debian-6.1@../../etc", "alice"], "'debian-6.1@../../etc': '../../etc' is not a topology id"),
    (["ssh", "debian-6.1@ab12cd@x", "server", "--", "id"], "'ab12cd@x' is not a topology id"),
    (["ssh", "debian-6.1@$(id>pwned)", "bob"], "'$(id>pwned)' is not a topology id"),
    (["ssh", "debian-6.1@ab\n12cd", "alice"], "'debian-6.1@ab\\n12cd': 'ab\\n12cd' is not a topology id"),
    (["ssh", "debian-6.1@" + "a" * 5000, "alice"], "…' is not a topology id"),
    (["down", "debian-6.1@a b"], "'debian-6.1@a b': 'a b' is not a topology id"),
    (["down", "@"], "'@': no kernel before the @"),
])
def test_a_bad_kernel_at_topology_is_one_line_and_exit_2_before_anything_else(tmp_path, args, message):
    """Through the real command line, as an unprivileged user with stand-ins for every host tool: the argument is
    checked first (not `run as root`), nothing runs, nothing is written."""
    from tests.unit.test_hostile_input import lab as hostile_lab
    r = hostile_lab(tmp_path, args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr and len(lines[0]) < 400 and r.stdout == ""
    assert not (tmp_path / "pwned").exists()
