"""No input or output can crash the lab: text the lab does not control (command output, paths, error details,
kernel, cell and commit names) is printed as it is on every path — progress lines, ERROR cells, the terminal table,
bisect steps, `lab compare` — and never read as rich markup; a failed build is a skipped bisect step; and a bug is
one line, its own exit code (70; 128 for `git bisect run`) and a traceback file, never a result."""
import json
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from lab import log as logs
from lab.bisect import Build, Step, StepLog
from lab.outcome import Verdict
from lab.results import ResultRecord, RunDir

# what broke `lab run` and `lab bisect-step`: a make error, markup look-alikes, HTML and quotes, an emoji code
HOSTILE = ["[bold]x[/bold]", "[/oops]", "[/p/Makefile:1: y]", "<script>alert('x')</script>", '"quoted"', "it's",
           'Revert "[media] v4l2: fix"', ":thumbs_up:", "100%", "%s"]
LINE = " ".join(HOSTILE)
MAKE_ERROR = "make[1]: *** [$NFSLAB_HOME/kernels/build-x/src/scripts/kconfig/Makefile:123: tinyconfig] Error 2"


def assert_literal(text: str, *extra: str) -> None:
    for piece in [*HOSTILE, *extra]:
        assert piece in text, f"{piece!r} not printed as it is in:\n{text}"


def record(kernel="debian-6.1", params=None, verdict=None, expected="pass", run_id="r1") -> ResultRecord:
    params = params or {"vers": "4.0", "leases": "on"}
    return ResultRecord(run_id=run_id, cell_id="/".join([kernel, *(f"{k}={v}" for k, v in params.items())]),
                        kernel=kernel, params=params, verdict=(verdict or Verdict(status="pass")).to_dict(),
                        expected=expected, started="2026-11-30T00:00:00+00:00", duration_s=1.0, worker="main",
                        observation=None, logs="logs/x")


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    """Wide enough that rich never wraps a line: the assertions look for whole pieces of text."""
    monkeypatch.setenv("COLUMNS", "2000")
    yield
    logs.setup()


# ---- markup: every output path -----------------------------------------------------------------------------------

@pytest.mark.parametrize("terminal", [False, True], ids=["plain", "rich"])
def test_progress_lines_print_any_text_as_it_is(terminal, capsys):
    logs.setup(terminal=terminal)
    logs.log.info(LINE)                  # as Runner, boxes and kernels call their `progress`
    logs.log.info("step %s: %s", LINE, MAKE_ERROR)
    logs.log.warning(LINE)
    err = capsys.readouterr().err
    assert_literal(err, MAKE_ERROR)
    if not terminal:
        lines = err.splitlines()
        assert len(lines) == 3 and lines[2].split(" ", 1)[1].startswith("WARNING: "), err


def test_usage_errors_print_what_was_typed(lab_cli):
    r = lab_cli("--[/oops]")
    assert r.returncode == 2 and "--[/oops]" in r.stderr
    r = lab_cli("list", "--kernels", "[/oops],[bold]x[/bold]")
    assert r.returncode == 2 and "unknown kernel '[/oops]'" in r.stderr


def test_quiet_and_verbose(capsys):
    logs.setup(logs.QUIET, terminal=False)
    logs.log.info("progress")
    logs.log.warning("warned")
    logs.setup(logs.VERBOSE, terminal=False)
    logs.log.debug("detail")
    from lab.proc import run
    run(["echo", "[/oops]"], step="an [bold]x[/bold] step", timeout=10)
    err = capsys.readouterr().err
    assert "progress" not in err and "warned" in err and "detail" in err
    assert "an [bold]x[/bold] step: $ echo '[/oops]' (rc=0, " in err


def test_lab_minus_q_and_minus_v(lab_cli, tmp_path):
    (tmp_path / "src").mkdir()
    assert "cells in" in lab_cli("merge", tmp_path / "a", tmp_path / "src").stderr
    assert lab_cli("-q", "merge", tmp_path / "b", tmp_path / "src").stderr == ""
    r = lab_cli("-v", "-q", "list")
    assert r.returncode == 2 and "--verbose and --quiet" in r.stderr


def test_results_print_any_text_as_it_is(capsys):
    from lab.cli import common as cli
    cli.out.print(LINE)
    cli.out.print(f"run directory: /runs/{LINE}")
    assert_literal(capsys.readouterr().out, f"run directory: /runs/{LINE}")


def test_terminal_table_cells_kernels_and_columns_are_text():
    from lab.render import render_terminal
    error = Verdict.error(f"build {LINE}", MAKE_ERROR, "logs/[/oops]/build.log")
    records = [record(kernel=f"k-{LINE}", params={"vers": "[/oops]", "leases": "[bold]x[/bold]"}, verdict=error),
               record(kernel="[/p/Makefile:1: y]", verdict=Verdict.skip(LINE))]
    console = Console(width=2000, record=True, color_system=None)
    console.print(render_terminal(records, title=LINE))
    out = console.export_text()
    assert_literal(out, MAKE_ERROR, "vers=[/oops] leases=[bold]x[/bold]", "logs/[/oops]/build.log")


def test_lab_run_prints_error_cells_and_progress_as_they_are(lab_cli, monkeypatch, tmp_path):
    """`lab run` end to end, with the lab replaced: a cell whose build failed with make's words."""
    from lab import cleanup, preflight, runner
    from lab.cli import common as cli
    monkeypatch.setattr(preflight, "check", lambda *args, **kwargs: None)
    monkeypatch.setattr(cleanup, "release", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner.Runner, "close", lambda self: None)
    monkeypatch.setattr(cli.out, "width", 2000)

    def run_cell(self, cell, repeat=1, repeats=1):
        done = record(kernel=f"kernel {LINE}", params=dict(cell.params), run_id=self.run_dir.run_id,
                      verdict=Verdict.error(f"build {LINE}", MAKE_ERROR, "logs/[/oops]/build.log"))
        self.run_dir.append(done)
        return done
    monkeypatch.setattr(runner.Runner, "run_cell", run_cell)
    r = lab_cli("run", "--kernels", "mainline-4.19", "--runs", tmp_path / "runs")
    assert r.returncode == 3, r.stderr           # lab errors, not a crash (70) nor a regression (1)
    assert_literal(r.stderr, MAKE_ERROR)          # the progress line of each cell
    assert_literal(r.stdout, MAKE_ERROR)          # the table
    assert "Traceback" not in r.stdout + r.stderr


def test_bisect_step_lines_print_any_text_as_it_is(capsys):
    from lab.cli.bisect import _show_step
    logs.setup(terminal=False)
    for candidate in ("1" * 40, f"kernel-{LINE}"):
        _show_step(Step(candidate=candidate, phase="search", result="skip", term="skip",
                        why=f"build failed: {MAKE_ERROR}", build={"result": "failed", "seconds": 12.0},
                        title=LINE))
    _show_step(Step(candidate="2" * 40, phase="confirm", result="bad", term="bad", why=f"3 of 3 failed: {LINE}",
                    statuses=["fail"] * 3, build={"result": "ok", "seconds": 1.0}, title=LINE))
    err = capsys.readouterr().err
    assert_literal(err, MAKE_ERROR, f"kernel-{LINE}", "111111111111 " + LINE)
    assert len(err.splitlines()) == 3


def _run_dir(path: Path, records: list[ResultRecord], kernels: list[str]) -> Path:
    run = RunDir(path)
    path.mkdir(parents=True)
    run.write_meta({"kernels": kernels})
    for r in records:
        run.append(r)
    return path


def test_lab_compare_and_its_changes_file_print_names_and_notes_as_they_are(lab_cli, tmp_path):
    evil, other = f"kernel {LINE}", "[/p/Makefile:1: y]"
    params = {"vers": "[/oops]", "leases": "[bold]x[/bold]"}
    fail = Verdict(status="fail", reason="stale-data")
    base = _run_dir(tmp_path / "base", [record(evil, params), record(other, params, Verdict.skip(LINE))],
                    [evil, other])
    new = _run_dir(tmp_path / "new", [record(evil, params, fail), record(other, params, Verdict.error(LINE, LINE))],
                   [evil, other])
    changes = tmp_path / "changes.json"
    r = lab_cli("compare", base, new, "--output", changes, "--kernels", "nope")
    assert r.returncode == 1, r.stderr
    assert_literal(r.stdout, f"CHANGED {evil}/vers=[/oops]/leases=[bold]x[/bold]",
                   f"no bisect: {evil} is not in the kernel series", f"NO DATA {other}")
    # the note comes back out of changes.json through `lab bisect versions --from-changes`
    assert json.loads(changes.read_text())["changes"][0]["cell"].startswith(evil)
    r = lab_cli("bisect", "versions", "--from-changes", changes)
    assert r.returncode == 0, r.stderr
    assert_literal(r.stderr, f"no bisect: {evil} is not in the kernel series", "nothing to bisect")


# ---- a failed build is a skipped step ----------------------------------------------------------------------------

def _repo(path: Path, subject: str) -> Path:
    path.mkdir()
    git = lambda *a: subprocess.run(["git", "-C", str(path), *a], check=True, capture_output=True, text=True)
    git("init", "-q")
    git("config", "user.email", "lab@example.org")
    git("config", "user.name", "lab")
    (path / "Makefile").write_text("all:\n")
    git("add", "-A")
    git("commit", "-q", "-m", subject)
    return path


@pytest.fixture
def fake_build(monkeypatch):
    """`lab bisect-step`'s lab replaced: no host, no VM; the build result is what the test puts in `built`."""
    from lab import host, probes
    built = {}
    monkeypatch.setattr(host, "require_root", lambda: None)
    monkeypatch.setattr(probes.CellProbe, "close", lambda self, keep_host=False: None)
    monkeypatch.setattr(probes.CellProbe, "prepare", lambda self, kernel: built["build"](kernel))

    def run(self, kernel):
        raise AssertionError("a kernel that did not build must not run")
    monkeypatch.setattr(probes.CellProbe, "run", run)
    monkeypatch.setenv("NFSLAB_LINUX_TREE", "/elsewhere")   # bisect-step points it at the repository
    return built


def bisect_step(lab_cli, repo: Path, directory: Path):
    return lab_cli("bisect-step", "--repo", repo, "--cell", "vers=4.0/leases=on", "--base", "mainline-4.19",
                   "--log", directory / "steps.jsonl", "--runs", directory / "cells")


def test_a_failed_build_is_a_skip_whatever_it_printed(fake_build, lab_cli, tmp_path):
    repo = _repo(tmp_path / "repo", f"Revert \"[media] v4l2: fix\" {LINE}")
    fake_build["build"] = lambda kernel: Build("failed", 12.0, f"build: {kernel}: `make` exited 2: {MAKE_ERROR} "
                                                             f"{LINE} (log: /p/[/oops]/build.log)")
    r = bisect_step(lab_cli, repo, tmp_path / "bisect")
    assert r.returncode == 125, r.stderr       # skip: never 128 (abort), never a crash
    steps = StepLog(tmp_path / "bisect" / "steps.jsonl").steps()
    assert [(s.result, s.build["result"]) for s in steps] == [("skip", "failed")]
    assert MAKE_ERROR in steps[0].why
    assert_literal(r.stderr, MAKE_ERROR, "(log: /p/[/oops]/build.log)")
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_a_build_that_fails_on_files_is_a_skip_too(monkeypatch, tmp_path):
    """The real probe: a build that stops on an OSError (a tree that cannot be unpacked) skips the commit."""
    from lab import kernels, probes
    from lab.paths import DEFAULT_MATRIX
    from lab.spec import load_matrix

    def resolve(*args, **kwargs):
        raise OSError(28, "No space left on device", "/p/[/oops]")
    monkeypatch.setattr(kernels, "resolve", resolve)
    probe = probes.CellProbe(load_matrix(DEFAULT_MATRIX), {"vers": "4.0", "leases": "on"},
                             RunDir(tmp_path / "cells"), home=None)
    probe.runner.box = object()   # prepared
    built = probe.prepare("mainline-4.19")
    assert built.result == "failed" and "[/oops]" in built.detail


# ---- a crash is never a result -----------------------------------------------------------------------------------

def boom(*args, **kwargs):
    raise RuntimeError("[/oops] boom\n<second line> [bold]x[/bold]")


def crash_file(line: str) -> Path:
    assert "(traceback saved to " in line, line
    return Path(line.split("(traceback saved to ", 1)[1].split("; please report it)")[0])


def test_a_crash_is_one_line_exit_70_and_a_traceback_file(lab_cli, monkeypatch):
    import os

    from lab.cli import setup as cli
    monkeypatch.setattr(cli, "load_cells", boom)
    r = lab_cli("list")
    assert r.returncode == 70
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("lab: internal error: RuntimeError: [/oops] boom <second line> [bold]x[/bold] ")
    assert lines[0].endswith("; please report it)")
    path = crash_file(lines[0])
    assert path.parent == Path(os.environ["NFSLAB_HOME"]) / "crashes"
    text = path.read_text()
    assert "command: lab list" in text and "Traceback (most recent call last)" in text
    assert 'in boom\n    raise RuntimeError("[/oops] boom' in text and "RuntimeError: [/oops] boom" in text


def test_verbose_shows_the_traceback_too(lab_cli, monkeypatch):
    from lab.cli import setup as cli
    monkeypatch.setattr(cli, "load_cells", boom)
    r = lab_cli("-v", "list")
    assert r.returncode == 70
    assert "Traceback (most recent call last)" in r.stderr
    assert r.stderr.splitlines()[-1].startswith("lab: internal error: RuntimeError: ")


def test_a_crash_during_a_run_leaves_its_traceback_in_the_run_directory_and_no_table(lab_cli, monkeypatch,
                                                                                     tmp_path):
    from lab import cleanup, preflight, runner
    monkeypatch.setattr(preflight, "check", lambda *args, **kwargs: None)
    monkeypatch.setattr(cleanup, "release", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner.Runner, "close", lambda self: None)
    monkeypatch.setattr(runner.Runner, "run_cell", boom)
    r = lab_cli("run", "--kernels", "mainline-4.19", "--runs", tmp_path / "runs")
    assert r.returncode == 70
    assert r.stdout == "", "a crash is not a result: no table"
    path = crash_file(r.stderr.splitlines()[-1])
    run_dir = next((tmp_path / "runs").iterdir())
    assert path.parent == run_dir and path.name.startswith("crash-")
    assert "RuntimeError: [/oops] boom" in path.read_text()


def test_a_crash_in_bisect_step_aborts_the_bisect(fake_build, lab_cli, tmp_path):
    """git bisect run reads 1-127 (but 125) as a bad commit: a bug must exit 128, which aborts the bisect."""
    repo = _repo(tmp_path / "repo", "a commit")
    fake_build["build"] = boom
    r = bisect_step(lab_cli, repo, tmp_path / "bisect")
    assert r.returncode == 128
    line = r.stderr.splitlines()[-1]
    assert line.startswith("lab bisect-step: internal error: RuntimeError: [/oops] boom")
    assert line.endswith("(aborting the bisect)")
    path = crash_file(line)
    assert path.parent == tmp_path / "bisect" and "Traceback" in path.read_text()


def test_a_crash_before_bisect_step_runs_aborts_too(lab_cli, monkeypatch):
    from lab import crash
    save_into = crash.save_into
    # a bug outside the step's own try (where the command points crash files at the bisect's directory)
    monkeypatch.setattr(crash, "save_into", lambda directory: save_into(None) if directory is None else boom())
    r = lab_cli("bisect-step", "--repo", "r", "--cell", "c", "--base", "b", "--log", "l", "--runs", "r")
    assert r.returncode == 128
    assert r.stderr.splitlines()[-1].startswith("lab: internal error: RuntimeError: [/oops] boom")


def test_the_traceback_falls_back_to_a_private_temp_file(monkeypatch, tmp_path):
    import tempfile

    from lab import crash
    blocked = tmp_path / "file"
    blocked.write_text("")            # a file where a directory should be: mkdir fails
    monkeypatch.setenv("NFSLAB_HOME", str(blocked))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    crash.save_into(blocked / "run")
    try:
        raise ValueError("x")
    except ValueError as e:
        path = crash.save(e)
    crash.save_into(None)
    assert path.parent == tmp_path and path.name.startswith("nfslab-crash-")
    assert path.stat().st_mode & 0o077 == 0 and "ValueError: x" in path.read_text()
    assert crash.one_line(ValueError(""), None) == ("internal error: ValueError (the traceback could not be saved; "
                                                    "please report it)")


def test_a_crash_in_a_cell_is_a_pytest_error_not_a_failure(monkeypatch, tmp_path):
    from lab import runner
    from lab.paths import DEFAULT_MATRIX
    monkeypatch.setattr(runner.Runner, "run_cell", boom)
    monkeypatch.setattr(runner.Runner, "close", lambda self: None)
    reports = []

    class Collect:
        def pytest_runtest_logreport(self, report):
            reports.append(report)

    code = pytest.main(["-p", "no:cacheprovider", "-q", f"--matrix={DEFAULT_MATRIX}", "--kernels",
                        "mainline-4.19", "--run-dir", str(tmp_path / "run"), str(tmp_path)], plugins=[Collect()])
    assert code == pytest.ExitCode.TESTS_FAILED
    failed = [(r.when, r.nodeid.rsplit("/", 2)[-2:]) for r in reports if r.failed]
    assert failed and all(when == "setup" for when, _ in failed), failed    # setup failures are ERRORs
    assert not any(r.when == "call" for r in reports)
    assert "[/oops] boom" in str(next(r for r in reports if r.failed).longrepr)


def test_a_kernel_failure_is_still_a_failure(monkeypatch, tmp_path):
    """…while a verdict of fail stays FAILED in the test phase (the xfail of history applies there)."""
    from lab import runner
    from lab.paths import DEFAULT_MATRIX
    monkeypatch.setattr(runner.Runner, "close", lambda self: None)

    def run_cell(self, cell, repeat=1, repeats=1):
        done = record(cell.kernel, dict(cell.params), Verdict(status="fail", reason="estale"),
                      run_id=self.run_dir.run_id)
        self.run_dir.append(done)
        return done
    monkeypatch.setattr(runner.Runner, "run_cell", run_cell)
    reports = []

    class Collect:
        def pytest_runtest_logreport(self, report):
            reports.append(report)

    pytest.main(["-p", "no:cacheprovider", "-q", f"--matrix={DEFAULT_MATRIX}", "--kernels",
                 "mainline-4.19-fix", "--run-dir", str(tmp_path / "run"), str(tmp_path)], plugins=[Collect()])
    calls = [r for r in reports if r.when == "call"]
    assert calls and all(r.failed for r in calls)
    assert not any(r.failed for r in reports if r.when == "setup")
