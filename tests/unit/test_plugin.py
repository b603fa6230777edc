"""`pytest --matrix` collection: one test per cell, grouped by kernel, expected failures strict-xfail."""
import os
import subprocess
import sys

import pytest

from lab.paths import DEFAULT_MATRIX
from tests import CHECKOUT


def collect(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_matrix_collects_one_test_per_cell(tmp_path):
    r = collect(f"--matrix={DEFAULT_MATRIX}", "--kernels", "debian-6.1,mainline-4.19", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    ids = [l for l in r.stdout.splitlines() if "vers=" in l]
    assert len(ids) == 8
    assert any(l.endswith("debian-6.1/vers=4.0/leases=on") for l in ids)
    assert "8 tests collected" in r.stdout


@pytest.mark.parametrize("select", [["--cell", "vers=4.1,leases=on"], ["-k", "vers_4_1 and leases_on"],
                                    ["--cell", "vers=4.1", "-k", "leases_on"]])
def test_cells_are_chosen_by_axis_value(tmp_path, select):
    r = collect(f"--matrix={DEFAULT_MATRIX}", "--kernels", "debian-6.1,mainline-4.19", *select, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    ids = sorted(l.rpartition("::")[2] for l in r.stdout.splitlines() if "vers=" in l)
    assert ids == ["debian-6.1/vers=4.1/leases=on", "mainline-4.19/vers=4.1/leases=on"], r.stdout


def test_a_cells_node_id_reruns_it(tmp_path):
    first = collect(f"--matrix={DEFAULT_MATRIX}", "--kernels", "debian-6.1", cwd=tmp_path)
    node_id = next(l for l in first.stdout.splitlines() if l.endswith("debian-6.1/vers=4.1/leases=off"))
    r = collect(f"--matrix={DEFAULT_MATRIX}", node_id, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [l for l in r.stdout.splitlines() if "vers=" in l] == [node_id]
    bad = collect(f"--matrix={DEFAULT_MATRIX}", "matrix.yaml::debian-6.1/vers=9", cwd=tmp_path)
    assert bad.returncode == 4 and "matrix.yaml::debian-6.1/vers=9: no such cell" in bad.stderr


def test_a_bad_cell_filter_is_a_usage_error(tmp_path):
    r = collect(f"--matrix={DEFAULT_MATRIX}", "--cell", "vers=5", cwd=tmp_path)
    assert r.returncode == 4 and "--cell vers=5: unknown value '5' for axis vers (allowed: 4.0, 4.1)" in r.stderr


def test_without_matrix_no_cells_are_collected(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    r = collect(cwd=tmp_path)
    assert "vers=" not in r.stdout and "1 test collected" in r.stdout


def test_bad_kernel_is_a_usage_error(tmp_path):
    r = collect(f"--matrix={DEFAULT_MATRIX}", "--kernels", "nope", cwd=tmp_path)
    assert r.returncode == 4
    assert "unknown kernel 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_cells_carry_group_and_strict_xfail(pytester_items):
    by_id = {item.cell.id: item for item in pytester_items}
    item = by_id["mainline-4.19/vers=4.0/leases=on"]
    assert item.get_closest_marker("xdist_group").args == ("mainline-4.19",)
    xfail = item.get_closest_marker("xfail")
    assert xfail.kwargs["strict"] is True and xfail.kwargs["raises"] is AssertionError
    assert by_id["mainline-4.19/vers=4.1/leases=on"].get_closest_marker("xfail") is None


FAKE_RUNNER = '''
"""A Runner without VMs for `pytest --matrix`: each run's status comes from SCRIPT[(vers, leases)][repeat - 1]."""
from lab import runner
from lab.outcome import Verdict
from lab.results import ResultRecord, now_iso, worker_name

SCRIPT = {("4.0", "on"): "pass fail fail", ("4.0", "off"): "fail fail fail",
          ("4.1", "on"): "pass fail pass", ("4.1", "off"): "error error error"}
VERDICTS = {"pass": Verdict("pass", first_new_after=0.5, pass_within=2.0),
            "fail": Verdict("fail", reason="estale", first_new_after=25.0, estale_for=24.5, pass_within=2.0),
            "error": Verdict.error("boot", "alice did not answer ssh")}


class FakeRunner:
    def __init__(self, matrix, run_dir, progress=None, home=None, libvirt=None):
        self.matrix, self.run_dir = matrix, run_dir

    def run_cell(self, cell, repeat=1, repeats=1):
        status = SCRIPT[(cell.params["vers"], cell.params["leases"])].split()[repeat - 1]
        record = ResultRecord(run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel,
                              params=dict(cell.params), verdict=VERDICTS[status].to_dict(),
                              expected=self.matrix.kernel(cell.kernel).expected(cell.params), started=now_iso(),
                              duration_s=1.0, worker=worker_name(), observation=None,
                              logs=str(self.run_dir.log_dir(cell.id, repeat, repeats).relative_to(self.run_dir.path)),
                              repeat=repeat, repeats=repeats)
        self.run_dir.append(record)
        return record

    def close(self):
        pass


def pytest_configure(config):
    runner.Runner = FakeRunner
'''


@pytest.mark.parametrize("xdist", [[], ["-n", "2", "--dist", "loadgroup"]])
def test_repeats_add_up_by_the_same_rule_as_the_table(tmp_path, xdist):
    (tmp_path / "fake_runner.py").write_text(FAKE_RUNNER)
    run_dir = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "fake_runner", "-rA",
                        f"--matrix={DEFAULT_MATRIX}", "--kernels", "mainline-4.19", "--repeats", "3",
                        "--run-dir", str(run_dir), *xdist],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(CHECKOUT)])})
    out = r.stdout
    assert "1 failed" in out and "2 xfailed" in out and "1 error" in out, out + r.stderr
    assert "FAILED" in out and "flaky 1/3 fail" in out               # flaky where a pass is expected
    assert "vers=4.1/leases=off" in out and "boot: alice did not answer ssh (3/3 runs)" in out
    rerun = next(l for l in out.splitlines() if l.startswith("rerun: pytest"))   # the flaky cell's, by node id
    assert rerun.startswith(f"rerun: pytest --matrix={DEFAULT_MATRIX} ") and "--repeats 3" in rerun
    assert rerun.split()[3].endswith("matrix.yaml::mainline-4.19/vers=4.1/leases=on"), rerun
    from lab.results import RunDir
    runs = RunDir(run_dir).runs()
    assert len(runs) == 12 and {r.repeats for r in runs} == {3}
    assert RunDir(run_dir).meta()["repeats"] == 3
    junit = (run_dir / "junit.xml").read_text()
    assert 'type="flaky"' in junit and 'type="pytest.xfail"' in junit
    assert "⚠ flaky 2/3 fail" in (run_dir / "table.md").read_text()
    assert_provenance_as_lab_run(run_dir, out)


def assert_provenance_as_lab_run(run_dir, out):
    """run.json says where the run came from as `lab run`'s does (the same keys, in the same order), and so does
    table.md's header; the table in pytest's terminal summary stays as it was: no run facts above it."""
    import json
    import re

    from tests.unit.test_session import FINISH_KEYS, LAB_RUN_KEYS
    meta = json.loads((run_dir / "run.json").read_text())
    assert list(meta) == [*LAB_RUN_KEYS, *FINISH_KEYS], list(meta)
    assert (meta["run_id"], meta["server"]) == ("run", "debian-6.1")
    assert meta["command"].startswith("pytest -p no:cacheprovider -p fake_runner ")
    for key in ("started", "finished"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", meta[key]), meta
    assert isinstance(meta["wall_s"], int) and meta["wall_s"] >= 0
    header = (run_dir / "table.md").read_text().splitlines()[:3]
    assert header[0].startswith(f"# nfslab: 1 kernel × 4 cells, {meta['started'][:10]}, 3 runs/cell"), header
    assert "run_id: run · started: " in header[2] and "· server: debian-6.1 ·" in header[2], header
    section = out.split("nfslab compatibility table", 1)[1].splitlines()
    assert section[1].startswith("┏") and section[2].startswith("┃ ") and "┃ kernel " in "".join(section[:6])
    table = "\n".join(section[:section.index(next(l for l in section if l.startswith("run directory: ")))])
    assert not any(word in table for word in ("run_id", "started", "finished", "wall time", "server")), table


def test_a_resumed_cell_runs_only_the_repeats_it_lacks(tmp_path):
    (tmp_path / "fake_runner.py").write_text(FAKE_RUNNER)
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "fake_runner", "-q",
            f"--matrix={DEFAULT_MATRIX}", "--kernels", "mainline-4.19", "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(CHECKOUT)])}
    subprocess.run([*args, "--repeats", "1"], capture_output=True, text=True, cwd=tmp_path, env=env)
    from lab.results import RunDir
    assert len(RunDir(run_dir).all_records()) == 4
    r = subprocess.run([*args, "--repeats", "3"], capture_output=True, text=True, cwd=tmp_path, env=env)
    records = RunDir(run_dir).all_records()
    # run 1 of every cell is kept; the error cell's run 1 had no kernel result, so it runs again
    assert sorted((rec.cell_id.split("/", 1)[1], rec.repeat) for rec in records).count(("vers=4.0/leases=on", 1)) == 1
    assert len(records) == 4 + 4 * 2 + 1, r.stdout


def test_an_xdist_worker_leaves_the_runs_finish_to_the_controller():
    """A worker's terminal summary is not shown and its session never started the run: were it to finish it, its
    own `finished` and `wall_s` (and tables) would land in the controller's run.json."""
    from types import SimpleNamespace

    from lab import pytest_plugin
    session = SimpleNamespace(finish=lambda: pytest.fail("an xdist worker finished the run"),
                              run_dir=SimpleNamespace(runs=lambda: ["a record"]))
    config = SimpleNamespace(getoption=lambda name: "matrix.yaml", stash={pytest_plugin.SESSION_KEY: session},
                             workerinput={"nfslab_run_dir": "runs/x"})
    pytest_plugin.pytest_terminal_summary(terminalreporter=None, config=config)
