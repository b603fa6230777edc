"""The command line as a user meets it: lists, one-line errors with exit code 2, never a traceback."""
import json
import re
import subprocess
import sys

import pytest

from lab.paths import DEFAULT_MATRIX, KERNELS
from tests import CHECKOUT


def lab(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from lab.cli import main; main()", *args], capture_output=True,
                          text=True, cwd=cwd or CHECKOUT)


def test_list_json_covers_every_kernel():
    r = lab("list", "--json")
    assert r.returncode == 0, r.stderr
    cells = json.loads(r.stdout)
    assert len(cells) >= 32
    kernels = {c["kernel"] for c in cells}
    assert {"centos7-3.10", "ubuntu1604-4.4", "debian-6.1", "debian-6.1-nofix", "debian-5.10", "debian-6.12",
            "mainline-4.19", "mainline-4.19-fix"} <= kernels
    assert "debian-6.1/vers=4.0/leases=on" in {c["id"] for c in cells}


@pytest.mark.parametrize("args, message", [
    (["list", "--kernels", "nope"], "unknown kernel 'nope'"),
    (["list", "--matrix", "/nonexistent/matrix.yaml"], "/nonexistent/matrix.yaml: no such file"),
    (["table", "/nonexistent/run"], "/nonexistent/run: no such run directory"),
    (["table", str(CHECKOUT), "--format", "pdf"], "unknown format 'pdf'"),
    (["nosuchcommand"], "No such command"),
    (["run", "--repeats", "0"], "--repeats 0: a cell runs at least once"),
    (["list", "--cell", "vers=4.2"], "--cell vers=4.2: unknown value '4.2' for axis vers (allowed: 4.0, 4.1)"),
    (["run", "--cell", "ver=4.1,leases=on"], "--cell ver=4.1,leases=on: unknown axis 'ver', did you mean 'vers'? "
                                             "(allowed: vers, leases)"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    r = lab(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_bad_matrix_gives_file_and_line(tmp_path):
    bad = tmp_path / "matrix.yaml"
    bad.write_text(DEFAULT_MATRIX.read_text().replace('vers: ["4.0", "4.1"]', 'vers: ["4.0", "4.3"]'))
    (tmp_path / "kernels").symlink_to(KERNELS)
    r = lab("list", "--matrix", str(bad))
    assert r.returncode == 2
    line = next(i for i, l in enumerate(bad.read_text().splitlines(), 1) if "4.3" in l)
    assert f"matrix.yaml:{line}: unknown mount option 'vers=4.3'" in r.stderr


def test_list_selects_cells_by_axis_values(lab_cli):
    r = lab_cli("list", "-k", "debian-6.1,debian-5.10", "--cell", "vers=4.1,leases=on", "--cell", "vers=4.0/leases=off")
    assert r.returncode == 0, r.stderr
    ids = [line.split()[0] for line in r.stdout.splitlines()[:-1]]
    assert ids == ["debian-6.1/vers=4.0/leases=off", "debian-6.1/vers=4.1/leases=on",
                   "debian-5.10/vers=4.0/leases=off", "debian-5.10/vers=4.1/leases=on"]
    assert r.stdout.splitlines()[-1] == "4 cells, 2 kernels"


def test_help_explains_the_commands():
    r = lab("--help")
    for command in ("setup", "run", "list", "table", "merge", "clean", "box"):
        assert command in r.stdout


def test_the_matrix_is_the_option_else_the_local_file_else_nfslabs_own(lab_cli, tmp_path):
    r = lab_cli("list", "--json", cwd=tmp_path)                        # nothing here: the packaged matrix
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == len(json.loads(lab_cli("list", "--json", "-m", DEFAULT_MATRIX).stdout))
    # a matrix.yaml of its own, without kernels/: its rows come from nfslab's kernel specs
    (tmp_path / "matrix.yaml").write_text(DEFAULT_MATRIX.read_text().replace('leases: [on, off]', 'leases: [on]'))
    r = lab_cli("list", "--json", "--kernels", "debian-6.1", cwd=tmp_path)
    assert [c["id"] for c in json.loads(r.stdout)] == ["debian-6.1/vers=4.0/leases=on", "debian-6.1/vers=4.1/leases=on"]


@pytest.mark.parametrize("name", ["evidence.yaml", "git.yaml"])
def test_the_example_matrices_load_from_the_checkout(lab_cli, name):
    r = lab_cli("list", "-m", f"matrices/{name}", cwd=CHECKOUT)
    assert r.returncode == 0, r.stderr
    assert "debian-6.1/vers=4.0" in r.stdout


def test_kernel_specs_beside_or_above_the_matrix_else_nfslabs_own(tmp_path):
    from lab.paths import KERNELS
    from lab.spec import find_kernels_dir
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_kernels_dir(tmp_path / "a" / "b" / "matrix.yaml") == KERNELS
    (tmp_path / "a" / "kernels").mkdir()
    assert find_kernels_dir(tmp_path / "a" / "b" / "matrix.yaml") == tmp_path / "a" / "kernels"


def test_a_matrixs_own_kernel_specs_first_then_nfslabs(tmp_path):
    """One rule: the matrix's kernels/ (beside or above it), then nfslab's own; the first that has a name wins. So
    an experiment's specs can sit in its own kernels/ and still name packaged ones (the server, a base, more rows)."""
    from lab.probes import with_kernels
    from lab.spec import SpecError, kernel_dirs, load_matrix
    own = tmp_path / "matrices" / "kernels"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text("name: mine\ntitle: Mine\nsource:\n  build:\n    base: debian-6.1\n"
                                   "    tree: linux-source-6.1\n    scope: module:fs/nfs\n")
    (own / "debian-6.12.yaml").write_text((KERNELS / "debian-6.12.yaml").read_text().replace("Linux 6.12", "Ours"))
    matrix = tmp_path / "matrices" / "m.yaml"
    matrix.write_text("kernels: [mine, debian-6.12, mainline-4.19]\nserver: debian-6.1\naxes: {vers: ['4.1']}\n"
                      "experiment: {name: rename, duration: 60s, interval: 0.5s, pass_within: 2s}\n")
    assert kernel_dirs(matrix) == [own, KERNELS]
    assert kernel_dirs(DEFAULT_MATRIX) == [KERNELS]
    m = load_matrix(matrix)
    assert {name: k.path.parent for name, k in m.known.items()} == {
        "mine": own, "debian-6.12": own, "mainline-4.19": KERNELS, "debian-6.1": KERNELS}
    assert "Ours" in m.kernel("debian-6.12").title
    assert with_kernels(m, ["debian-6.1-nofix"]).kernel("debian-6.1-nofix").path.parent == KERNELS
    with pytest.raises(SpecError, match="unknown kernel 'mainline-4.19'"):   # a kernels_dir given is the only one
        load_matrix(matrix, own)


def test_version_is_one_line_and_exit_0(lab_cli):
    from lab.cli.common import version
    r = lab_cli("--version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"nfslab {version()}\n", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version())


def test_init_writes_a_starter_matrix_once(lab_cli, tmp_path):
    r = lab_cli("init", tmp_path)
    assert r.returncode == 0 and (tmp_path / "matrix.yaml").read_text() == DEFAULT_MATRIX.read_text()
    assert lab_cli("list", cwd=tmp_path).stdout.rstrip().endswith("36 cells, 9 kernels")
    r = lab_cli("init", tmp_path)
    assert r.returncode == 2 and "matrix.yaml: already exists" in r.stderr
def _run_dir(tmp_path):
    """A run directory with one regression, one flaky cell (3 runs) and one pass."""
    from lab.outcome import Verdict
    from lab.results import ResultRecord, RunDir
    run = RunDir.create(tmp_path, "r1")
    fail = Verdict("fail", reason="estale", first_new_after=25.0, estale_for=25.0, pass_within=2.0)
    ok = Verdict("pass", first_new_after=0.5, pass_within=2.0)

    def add(kernel, status_list, expected="pass"):
        for k, verdict in enumerate(status_list, 1):
            run.append(ResultRecord(run_id="r1", cell_id=f"{kernel}/vers=4.1", kernel=kernel, params={"vers": "4.1"},
                                    verdict=verdict.to_dict(), expected=expected,
                                    started=f"2026-11-23T10:00:0{k}+00:00", duration_s=9.0, worker="main",
                                    observation=None, logs="", repeat=k, repeats=len(status_list)))
    add("a", [fail, fail, fail])
    add("b", [ok, fail, ok])
    add("c", [ok, ok, ok])
    return run.path


@pytest.mark.parametrize("gate, code, said", [
    ([], 0, ""),                                          # default: render, exit 0
    (["--fail-on", "none"], 0, ""),
    (["--fail-on", "error,skip"], 0, ""),
    (["--fail-on", "regression"], 1, "--fail-on: 1 regression"),
    (["--fail-on", "flaky"], 1, "--fail-on: 1 flaky"),
    (["--fail-on", "regression,unexpected-pass,flaky,error"], 1, "1 regression, 1 flaky"),
])
def test_table_fail_on_is_a_gate_after_rendering(tmp_path, lab_cli, gate, code, said):
    out = tmp_path / "junit.xml"
    r = lab_cli("table", _run_dir(tmp_path), "--format", "junit", "--output", out, *gate)
    assert r.returncode == code, r.stderr
    assert said in r.stderr
    assert out.read_text().startswith("<?xml")             # rendered whatever the gate says


def test_table_fail_on_refuses_unknown_names(tmp_path, lab_cli):
    r = lab_cli("table", _run_dir(tmp_path), "--fail-on", "regresion")
    assert r.returncode == 2 and "--fail-on: unknown category 'regresion'" in r.stderr


def test_table_shows_every_run_of_a_cell(tmp_path, lab_cli):
    r = lab_cli("table", _run_dir(tmp_path))
    assert "⚠ regression ✗ 3/3 ESTALE 25s" in r.stdout and "⚠ flaky 1/3 fail" in r.stdout
    assert "✓ 3/3 new after 0.5s" in r.stdout


def test_table_against_a_baseline_marks_the_changed_cells(tmp_path, lab_cli):
    from lab.outcome import Verdict
    from lab.results import ResultRecord, RunDir
    new = _run_dir(tmp_path)
    base = RunDir.create(tmp_path, "base")
    for kernel in ("a", "c"):   # a passed in the baseline and fails now; c passes in both
        base.append(ResultRecord(run_id="base", cell_id=f"{kernel}/vers=4.1", kernel=kernel, params={"vers": "4.1"},
                                 verdict=Verdict("pass", first_new_after=0.5, pass_within=2.0).to_dict(),
                                 expected="pass", started="2026-11-22T10:00:00+00:00", duration_s=9.0,
                                 worker="main", observation=None, logs=""))
    r = lab_cli("table", new, "--baseline", base.path)
    assert r.returncode == 0, r.stderr
    assert "| a | Δ ⚠ regression ✗ 3/3 ESTALE 25s |" in r.stdout
    assert "**Changed since the baseline** `base`: 1 changed · 0 flaky · 0 without data · 1 added" in r.stdout
    assert "rerun: `lab run -k a --cell vers=4.1 --repeats 3`" in r.stdout
    html = lab_cli("table", new, "--baseline", base.path, "-f", "html").stdout
    assert 'data-tags="regression changed"' in html
    terminal = lab_cli("table", new, "--baseline", base.path, "-f", "terminal").stdout
    assert "Δ ⚠ regression ✗ 3/3 ESTALE 25s" in terminal and "Δ changed since the baseline base: 1 cell" in terminal
    assert "  lab run -k a --cell vers=4.1 --repeats 3   # a/vers=4.1: regression" in terminal
    bad = lab_cli("table", new, "--baseline", tmp_path / "nope")
    assert bad.returncode == 2 and "--baseline" in bad.stderr and "no such run directory" in bad.stderr


def test_table_for_docs_has_no_links_into_the_run(tmp_path, lab_cli):
    from lab.results import RunDir
    run = RunDir(_run_dir(tmp_path))
    run.write_meta({"matrix": str(tmp_path / "m.yaml"), "command": f"lab run --runs {tmp_path}", "wall_s": 75})
    linked = lab_cli("table", run.path, "-f", "html").stdout
    docs = lab_cli("table", run.path, "-f", "html", "--for-docs").stdout
    assert str(tmp_path) not in docs and "wall time: 1 min 15 s" in docs
    assert "lab run -m m.yaml -k a --cell vers=4.1 --repeats 3" in docs
    assert f"lab run -m {tmp_path / 'm.yaml'} -k a" in linked    # outside the cwd: as run.json says it


def test_tables_know_the_specs_of_the_run(tmp_path):
    from lab.render.tables import spec_facts
    facts = spec_facts({"kernels": ["debian-6.1", "../../etc/passwd", "nope"], "server": "debian-6.1"})
    assert list(facts) == ["debian-6.1"] and "be189f7e7f03" in facts["debian-6.1"]["notes"]
    kept = {"debian-6.1": {"title": "as run.json has it", "notes": ""}}
    assert spec_facts({"kernels": ["debian-6.1"], "specs": kept}) == kept


def test_lab_run_prints_the_rerun_command_of_each_mismatching_cell(tmp_path, lab_cli, scripted_run):
    """`lab run` without VMs: a Runner whose runs' statuses are scripted, the host checks and teardown off."""
    from lab.outcome import Verdict
    from lab.results import ResultRecord, now_iso

    script = {"on": ["pass", "fail", "pass"], "off": ["error"] * 3}
    verdicts = {"pass": Verdict("pass", first_new_after=0.5, pass_within=2.0),
                "fail": Verdict("fail", reason="estale", first_new_after=25.0, estale_for=24.5, pass_within=2.0),
                "error": Verdict.error("boot", "alice did not answer ssh")}

    class Scripted:
        host = None

        def __init__(self, matrix, run_dir, home=None, progress=None, worker=None, libvirt=None):
            self.matrix, self.run_dir = matrix, run_dir

        def run_cell(self, cell, repeat=1, repeats=1):
            status = script[cell.params["leases"]][repeat - 1]
            record = ResultRecord(run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel,
                                  params=dict(cell.params), verdict=verdicts[status].to_dict(),
                                  expected=self.matrix.expected(cell), started=now_iso(), duration_s=1.0,
                                  worker="main", observation=None, logs="", repeat=repeat, repeats=repeats)
            self.run_dir.append(record)
            return record

        def close(self, keep=False):
            pass

    scripted_run(Scripted)
    r = lab_cli("run", "-k", "mainline-4.19", "--cell", "vers=4.1", "--repeats", "3", "--runs", tmp_path / "runs",
                cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    tail = r.stdout[r.stdout.index("to rerun the cells"):].splitlines()
    assert tail[1:3] == [
        "  lab run -k mainline-4.19 --cell vers=4.1,leases=on --repeats 3   # mainline-4.19/vers=4.1/leases=on: flaky",
        "  lab run -k mainline-4.19 --cell vers=4.1,leases=off --repeats 3   # mainline-4.19/vers=4.1/leases=off: "
        "error"]
    run_dir = next((tmp_path / "runs").iterdir())
    assert "debian-6.1" in json.loads((run_dir / "run.json").read_text())["specs"]   # the server's spec kept too
    table = (run_dir / "table.md").read_text()
    assert "rerun: `lab run -k mainline-4.19 --cell vers=4.1,leases=on --repeats 3`" in table
