"""Timeouts: matrix.yaml's optional `timeouts:` section, its errors, and that the runner hands each value to the
wait it bounds (spec → runner → topology / remote / nfs / kernels / experiment), without VMs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab import kernels, nfs, runner as runner_module, topology
from lab.boxes import Box
from lab.errors import LabError
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.remote import Remote, Result
from lab.results import RunDir
from lab.runner import Runner
from lab.spec import TIMEOUT_KEYS, SpecError, Timeouts, load_matrix

KERNELS = Path(__file__).resolve().parent / "data" / "kernels"
MATRIX = """\
kernels: [ok-deb]
server: ok-deb
axes:
  vers: ["4.0"]
experiment: {duration: 30s, interval: 0.5s, pass_within: 2s}
"""


def load(tmp_path, extra: str = ""):
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX + extra)
    return load_matrix(path, KERNELS)


# ---- parsing ---------------------------------------------------------------------------------------------------

def test_without_a_section_every_timeout_has_its_default(tmp_path):
    assert load(tmp_path).timeouts == Timeouts()
    assert load(tmp_path, "timeouts:\n").timeouts == Timeouts()       # an empty section is no section
    assert load_matrix(DEFAULT_MATRIX).timeouts == Timeouts()


def test_defaults_are_the_values_the_lab_was_tuned_with_under_tcg():
    assert dataclasses.asdict(Timeouts()) == {"boot": 300, "revert": 120, "ssh": 120, "command": 60, "nfsd": 90,
                                              "mount": 60, "experiment": 60, "build": 3600}
    assert TIMEOUT_KEYS == ["boot", "revert", "ssh", "command", "nfsd", "mount", "experiment", "build"]


def test_a_section_sets_some_keys_in_any_duration_form(tmp_path):
    t = load(tmp_path, "timeouts:\n  boot: 10m\n  ssh: 90\n  mount: 1.5m\n  command: 500ms\n").timeouts
    assert (t.boot, t.ssh, t.mount, t.command) == (600, 90, 90, 0.5)
    assert (t.revert, t.nfsd, t.experiment, t.build) == (120, 90, 60, 3600)   # the rest keep their defaults


def test_flow_style_works_too(tmp_path):
    assert load(tmp_path, "timeouts: {build: 2h}\n").timeouts.build == 7200


@pytest.mark.parametrize("section, message", [
    ("timeouts:\n  boot: 0s\n", ":7: bad timeout '0s' for boot (allowed: a duration > 0 and up to a day, e.g. 300s)"),
    ("timeouts:\n  ssh: soon\n", ":7: bad timeout 'soon' for ssh (allowed: a duration > 0 and up to a day, e.g. 120s)"),
    ("timeouts:\n  mount: -5\n", ":7: bad timeout '-5' for mount (allowed: a duration > 0 and up to a day, e.g. 60s)"),
    ("timeouts:\n  build: true\n", ":7: bad timeout 'true' for build (allowed: a duration > 0 and up to a day, e.g. 3600s)"),
    ("timeouts:\n  nfsd: 1m\n  bot: 5m\n",
     ":8: unknown timeout 'bot', did you mean 'boot'? (allowed: boot, revert, ssh, command, nfsd, mount, "
     "experiment, build)"),
    ("timeouts: 5m\n", ":6: timeouts must be a mapping (allowed: boot, revert, ssh, command, nfsd, mount, "
                       "experiment, build)"),
])
def test_errors_point_at_the_line(tmp_path, section, message):
    with pytest.raises(SpecError) as info:
        load(tmp_path, section)
    assert str(info.value).endswith("matrix.yaml" + message)


# ---- threading: each value reaches its wait --------------------------------------------------------------------

CUSTOM = Timeouts(boot=301, revert=121, ssh=122, command=61, nfsd=91, mount=62, experiment=63, build=3601)


@pytest.fixture
def runner(tmp_path):
    matrix = dataclasses.replace(load_matrix(DEFAULT_MATRIX), timeouts=CUSTOM)
    r = Runner(matrix, RunDir.create(tmp_path / "runs"), home=LabHome(tmp_path / "home"))
    r.box = Box("nfslab-test", tmp_path)   # prepared: no host, no box build
    return r


def test_the_runner_hands_every_timeout_to_its_wait(runner, tmp_path, monkeypatch):
    """Everything below the runner is faked at its edge (vagrant, virsh, ssh); the cell stops at nfsd's start."""
    seen: dict[str, list] = {}
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_text("")
    files = topology.KernelFiles(vmlinuz, None, "6.1.0-test")

    def resolve(kernel, home, box, progress=None, build_timeout=None):
        seen.setdefault("build", []).append(build_timeout)
        return files

    def create(live, progress=None):
        seen["boot"] = [live.topology.boot_timeout]
        live.timings["up"] = 1.0
        live.targets = {m.name: topology.SshTarget(m.name, "192.0.2.1", 22) for m in live.topology.machines}
        return live

    def remote_run(remote, command, *, timeout=None, check=True, step=None):
        seen.setdefault("command", []).append(remote.command_timeout)
        seen.setdefault(step or command.split()[0], []).append(timeout)
        return Result("6.1.0-test\n", "", 0)

    def start_server(server, setup, subnet, timeout):
        seen["start nfsd"] = [timeout]
        raise LabError("nfs: start server", "stopped here by the test")

    monkeypatch.setattr(kernels, "resolve", resolve)
    monkeypatch.setattr(topology.LiveTopology, "create", create)
    monkeypatch.setattr(topology.LiveTopology, "snapshot", lambda live: None)
    monkeypatch.setattr(topology.LiveTopology, "destroy", lambda live: None)
    monkeypatch.setattr(runner_module.KernelLab, "healthy", lambda lab: True)
    monkeypatch.setattr(Remote, "wait_ready", lambda remote, timeout: seen.setdefault("ssh", []).append(timeout))
    monkeypatch.setattr(Remote, "run", remote_run)
    monkeypatch.setattr(nfs, "start_server", start_server)

    record = runner.run_cell(runner.matrix.cells(["debian-6.1"])[0])
    assert record.status == "error" and record.verdict["reason"] == "nfs: start server"
    assert seen["build"] == [3601, 3601]                # the row's kernel and the server's
    assert seen["boot"] == [301]
    assert seen["ssh"] == [122] * 3
    assert set(seen["command"]) == {61}
    assert seen["nfs: preload server"] == [91] and seen["start nfsd"] == [91]
    assert seen["nfs: preload alice"] == seen["nfs: preload bob"] == [62]
    assert runner.lab.timeouts == CUSTOM                # what the next cell's revert, mount and experiment use


def test_a_command_without_its_own_timeout_gets_the_remotes(monkeypatch, tmp_path):
    asked = []

    class Connection:
        def run(self, command, hide, warn, timeout, in_stream):
            asked.append(timeout)
            return type("R", (), {"stdout": "", "stderr": "", "exited": 0})()

    remote = Remote("alice", "192.0.2.1", 22, tmp_path / "key", None, tmp_path / "alice.log", command_timeout=61)
    monkeypatch.setattr(Remote, "_connection", lambda self, timeout=10: Connection())
    remote.run("true")
    remote.run("true", timeout=5)
    assert asked == [61, 5]


def test_the_planned_topology_carries_the_boot_timeout_into_the_vagrantfile():
    kernel = topology.KernelFiles(Path("/k/vmlinuz"), Path("/k/initrd"), "6.1.0-test")
    t = topology.plan(lab_id="abc123", slot=3, kernel_name="k", box="b", server_kernel=kernel, client_kernel=kernel,
                      ssh_key=Path("/k/id"), boot_timeout=450.4)
    assert t.boot_timeout == 450
    assert "config.vm.boot_timeout = 450\n" in topology.render_vagrantfile(t)
