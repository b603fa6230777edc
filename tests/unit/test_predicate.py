"""predicate.py and --bad-if: parsing expressions, the figures of real-shaped timelines (a pass, a short and a long
ESTALE window, a client that never recovers, a lab error), the probe that turns them into a bisect's statuses, the
step command that carries the option to `lab bisect-step`, and the commands end to end with the lab replaced."""
from __future__ import annotations

import json
import math
import sys

import pytest

from lab.bisect import FIX, Settings, StepLog
from lab.outcome import Criteria, Observation, Verdict, classify
from lab.paths import DEFAULT_MATRIX
from lab.bisect.predicate import FIGURES, Comparison, figures, parse
from lab.results import ResultRecord, RunDir
from tests import CHECKOUT
from tests.unit.test_outcome import timeline

CRITERIA = Criteria(pass_within=2.0, settle=5.0)


def judged(*phases) -> Verdict:
    return classify(Observation(timeline(*phases)), CRITERIA)


#: the timelines the issue is about, as the lab records them
PASS = judged(("old", -2, -0.5), ("new", 0, 30))
SHORT_ESTALE = judged(("old", -2, -0.5), ("new", 0, 0.5), ("estale", 0.6, 0.6), ("new", 1.1, 30))  # 4.19.1+fix
LONG_ESTALE = judged(("old", -2, -0.5), ("estale", 0, 25), ("new", 25.5, 40))                       # 6.1 at 4.1
STALE_THEN_ESTALE = judged(("old", -2, 3), ("estale", 3.5, 20), ("new", 20.5, 40))
NEVER = judged(("old", -2, -0.5), ("estale", 0, 60))
ERROR = Verdict.error("mount", "mount.nfs: Connection timed out", "logs/alice.log")


# ---- parsing -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ("window > 5s", "window > 5s"),
    ("window>5s", "window > 5s"),
    ("window >= 500ms", "window >= 0.5s"),
    ("first_new < 1.5s", "first_new < 1.5s"),
    ("estale <= 2m", "estale <= 120s"),
    ("window > 5", "window > 5s"),                    # a plain number is seconds, as in matrix.yaml
    ("window > 5 s", "window > 5s"),
    ("stale > 1s and estale > 1s or window > 30s", "stale > 1s and estale > 1s or window > 30s"),
    ("window > 5s AND first_new > 1s", "window > 5s and first_new > 1s"),
])
def test_parse_and_its_canonical_text_round_trips(text, canonical):
    predicate = parse(text)
    assert str(predicate) == canonical
    assert parse(str(predicate)) == predicate


def test_and_binds_tighter_than_or():
    predicate = parse("stale > 1s and estale > 1s or window > 30s")
    assert predicate.alternatives == ((Comparison("stale", ">", 1.0), Comparison("estale", ">", 1.0)),
                                      (Comparison("window", ">", 30.0),))


@pytest.mark.parametrize("text, message", [
    ("windw > 5s", "unknown figure 'windw' (allowed: window, stale, estale, first_new)"),
    ("window", "'window' needs a comparison"),
    ("window == 5s", "unknown operator '==' (allowed: > >= < <=)"),
    ("window = 5s", "unknown operator '='"),
    ("window >", "'window >' needs a duration"),
    ("window > five", "bad duration 'five'"),
    ("window > 5sec", "bad duration '5sec'"),
    ("window > -5s", "bad duration '-'"),
    ("window > 5s stale > 1s", "expected 'and' or 'or' after \"window > 5s\", got 'stale'"),
    ("window > 5s or", "nothing after 'or'"),
    ("", "empty expression"),
    ("   ", "empty expression"),
])
def test_bad_expressions_say_what_is_wrong(text, message):
    with pytest.raises(ValueError) as e:
        parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


# ---- figures and statuses ----------------------------------------------------------------------------------------

def test_the_figures_of_each_timeline():
    assert figures(PASS) == {"window": 0.0, "stale": 0.0, "estale": 0.0, "first_new": 0.0}
    assert figures(SHORT_ESTALE) == pytest.approx({"window": 0.5, "stale": 0.0, "estale": 0.5, "first_new": 0.0})
    assert figures(LONG_ESTALE) == pytest.approx({"window": 25.5, "stale": 0.0, "estale": 25.5, "first_new": 25.5})
    # stale counts to the last old read (3 s), estale from its first read (3.5 s): the gap of one read interval
    # between them is not in the window, which is why it reads 20 s where the bad phases ended at 20.5 s
    assert figures(STALE_THEN_ESTALE) == pytest.approx({"window": 20.0, "stale": 3.0, "estale": 17.0,
                                                        "first_new": 20.5})
    never = figures(NEVER)
    assert math.isinf(never["window"]) and math.isinf(never["first_new"]) and never["estale"] == 60.0
    assert list(FIGURES) == ["window", "stale", "estale", "first_new"]


@pytest.mark.parametrize("verdict, strict, with_predicate", [
    (PASS, "pass", "pass"),
    (SHORT_ESTALE, "fail", "pass"),       # fails the strict verdict, but the window is short
    (LONG_ESTALE, "fail", "fail"),
    (STALE_THEN_ESTALE, "fail", "fail"),
    (NEVER, "fail", "fail"),              # never recovered: longer than any bound
    (ERROR, "error", "error"),            # a lab error stays a skip for the search, whatever the predicate
    (Verdict.skip("box centos/7 not found"), "skip", "skip"),
])
def test_window_over_5s_on_each_timeline(verdict, strict, with_predicate):
    assert verdict.status == strict
    assert parse("window > 5s").status(verdict) == with_predicate


def test_a_timeline_cut_short_after_its_window_closed_is_not_never():
    """`recovered` wants `settle` seconds of new data at the end; a window that did end is measured anyway."""
    cut = judged(("old", -2, -0.5), ("estale", 0, 20), ("new", 20.5, 23))
    assert (cut.recovered, cut.ended_in) == (False, "new")
    assert figures(cut)["window"] == pytest.approx(20.5)
    old_record = Verdict.from_dict({**NEVER.to_dict(), "ended_in": ""})     # before verdicts had ended_in
    assert math.isinf(figures(old_record)["window"])


def test_a_window_that_never_closes_is_longer_than_any_bound():
    assert parse("window > 1000000s").holds(NEVER)
    assert not parse("window < 60s").holds(NEVER)
    assert not parse("first_new <= 60s").holds(NEVER)


def test_explain_names_the_figures_it_used():
    assert parse("window > 5s").explain(LONG_ESTALE) == 'window 25.5s: "window > 5s" holds'
    assert parse("window > 5s").explain(SHORT_ESTALE) == 'window 0.5s: "window > 5s" does not hold'
    assert parse("window > 5s or first_new > 2s").explain(NEVER) == \
        'window never, first_new never: "window > 5s or first_new > 2s" holds'
    assert parse("window > 5s").explain(ERROR) == 'no figures (error): "window > 5s" not judged'


# ---- the probe: records become a bisect's trials ----------------------------------------------------------------

def record(cell, verdict: Verdict) -> ResultRecord:
    return ResultRecord("r", cell.id, cell.kernel, dict(cell.params), verdict.to_dict(), "pass", "", 61.0, "main",
                        None, "")


@pytest.mark.parametrize("verdict, status", [(SHORT_ESTALE, "pass"), (LONG_ESTALE, "fail"), (ERROR, "error")])
def test_the_probe_judges_runs_by_the_predicate(verdict, status, tmp_path, monkeypatch):
    from lab.probes import CellProbe
    from lab.spec import load_matrix
    cells = CellProbe(load_matrix(DEFAULT_MATRIX), {"vers": "4.1", "leases": "on"}, RunDir(tmp_path),
                      predicate=parse("window > 5s"))
    monkeypatch.setattr(cells.runner, "run_cell", lambda cell: record(cell, verdict))
    trial = cells.run("mainline-4.19-fix")
    assert trial.status == status
    assert trial.summary.startswith(verdict.summary()) and "window > 5s" in trial.summary
    cells.predicate = None
    assert cells.run("mainline-4.19-fix").status == verdict.status, "without --bad-if: the strict verdict"


# ---- the commands ------------------------------------------------------------------------------------------------

def test_the_step_command_carries_bad_if(tmp_path):
    """`lab bisect git` builds the command git runs per commit: the predicate must reach every step unchanged."""
    from lab.bisect.git import step_command
    from tests.unit.test_ci_files import parse as parse_argv
    predicate = parse("estale >= 500ms and first_new > 2s or window > 5s")
    argv = step_command(tmp_path, {"vers": "4.1", "leases": "on"}, "mainline-4.19", Settings(terms=FIX),
                        tmp_path / "s.jsonl", tmp_path / "cells", DEFAULT_MATRIX, None, str(predicate))
    params = parse_argv(argv[3:]).params
    assert parse(params["bad_if"]) == predicate
    without = step_command(tmp_path, {"vers": "4.1", "leases": "on"}, "mainline-4.19", Settings(),
                           tmp_path / "s.jsonl", tmp_path / "cells", DEFAULT_MATRIX, None)
    assert "--bad-if" not in without and parse_argv(without[3:]).params["bad_if"] is None


@pytest.mark.parametrize("args", [
    ["bisect", "versions", "--cell", "vers=4.1/leases=on", "--good", "debian-6.1", "--bad", "debian-6.12"],
    ["bisect", "git", "--repo", str(CHECKOUT), "--old", "HEAD~1", "--new", "HEAD", "--cell",
     "mainline-4.19/vers=4.1/leases=on"],
])
def test_a_bad_expression_is_one_line_and_exit_2(args, lab_cli):
    r = lab_cli(*args, "--bad-if", "windw > 5s")
    assert r.returncode == 2, r.stderr
    assert "--bad-if: unknown figure 'windw' (allowed: window, stale, estale, first_new)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr + r.stdout


def test_a_bad_expression_in_a_step_aborts_the_bisect(lab_cli, tmp_path):
    r = lab_cli("bisect-step", "--repo", CHECKOUT, "--cell", "vers=4.1/leases=on", "--base", "mainline-4.19", "--log",
                tmp_path / "l", "--runs", tmp_path / "r", "--bad-if", "window = 5s")
    assert r.returncode == 128 and "--bad-if: unknown operator '='" in r.stderr


@pytest.fixture
def lab_of_windows(monkeypatch):
    """The lab replaced under the real commands, down to the Runner: each kernel's cell gets the verdict in
    `verdicts`, so the probe's own code turns it into a status."""
    from lab import host, probes, runner
    verdicts: dict[str, Verdict] = {}
    monkeypatch.setattr(host, "require_root", lambda: None)
    monkeypatch.setattr(runner.Runner, "prepare", lambda self: None)
    monkeypatch.setattr(probes.CellProbe, "prepare", lambda self, kernel: probes.Build("ok", 1.0))
    monkeypatch.setattr(probes.CellProbe, "close", lambda self, keep_host=False: None)
    monkeypatch.setattr(runner.Runner, "run_cell", lambda self, cell: record(cell, verdicts[cell.kernel]))
    return verdicts


def test_bisect_versions_on_the_window(lab_of_windows, lab_cli, tmp_path):
    """All three kernels fail the strict verdict at vers=4.1; only the last one's window is long."""
    lab_of_windows.update({"mainline-4.19-fix": SHORT_ESTALE, "debian-5.10": SHORT_ESTALE, "debian-6.1": LONG_ESTALE})
    report = tmp_path / "report"
    r = lab_cli("bisect", "versions", "--cell", "vers=4.1/leases=on", "--good", "mainline-4.19-fix", "--bad",
                "debian-6.1", "--kernels", "mainline-4.19-fix,debian-5.10,debian-6.1", "--bad-if", "window > 5s",
                "--report", report)
    assert r.returncode == 0, r.stderr
    data = json.loads((report / "report.json").read_text())
    assert (data["culprit"], data["outcome"]) == ("debian-6.1", "confirmed")
    assert any("`window > 5s` holds" in note for note in data["notes"])
    steps = StepLog(report / "steps.jsonl").steps()
    assert [(s.candidate, s.statuses) for s in steps][0] == ("debian-5.10", ["pass"] * 3)
    assert 'window 0.5s: "window > 5s" does not hold' in steps[0].summaries[0]


def test_bisect_versions_without_bad_if_cannot_tell_them_apart(lab_of_windows, lab_cli, tmp_path):
    lab_of_windows.update({"mainline-4.19-fix": SHORT_ESTALE, "debian-5.10": SHORT_ESTALE, "debian-6.1": LONG_ESTALE})
    r = lab_cli("bisect", "versions", "--cell", "vers=4.1/leases=on", "--good", "mainline-4.19-fix", "--bad",
                "debian-6.1", "--kernels", "mainline-4.19-fix,debian-5.10,debian-6.1", "--report", tmp_path / "r")
    assert r.returncode == 1, "the strict verdict fails everywhere: the 'good' end is not good"


def test_bisect_git_passes_the_predicate_to_its_steps(lab_of_windows, lab_cli, tmp_path, monkeypatch):
    """The step processes get --bad-if (checked above); the confirmation runs in this process with the probe,
    which must judge by the predicate too."""
    from lab.bisect import git as gitbisect
    from tests.unit.test_bisect import STEP_SCRIPT, make_history
    states = ["unfixed"] * 3 + ["fixed"] * 2          # the fake step: "fixed" = exit 1 (new), as the terms say
    commits = make_history(tmp_path / "repo", states)
    script = tmp_path / "step.py"
    script.write_text(STEP_SCRIPT)
    seen = {}

    def fake_step_command(repo, params, base, settings, log, runs, matrix, scope, bad_if=None):
        seen["bad_if"] = bad_if
        return [sys.executable, str(script), str(repo), str(log.resolve())]
    monkeypatch.setattr(gitbisect, "step_command", fake_step_command)
    for number, commit in enumerate(commits):
        lab_of_windows[f"mainline-4.19-g{commit[:12]}"] = LONG_ESTALE if states[number] == "fixed" else SHORT_ESTALE
    report = tmp_path / "report"
    r = lab_cli("bisect", "git", "--repo", tmp_path / "repo", "--old", commits[0], "--new", commits[-1],
                "--cell", "mainline-4.19/vers=4.1/leases=on", "--bad-if", "window>5s", "--report", report)
    assert r.returncode == 0, r.stderr
    assert seen["bad_if"] == "window > 5s"
    data = json.loads((report / "report.json").read_text())
    assert (data["culprit"], data["outcome"]) == (commits[3], "confirmed")
    confirm = [s for s in data["steps"] if s["phase"] == "confirm"]
    assert [s["statuses"] for s in confirm] == [["fail"] * 3, ["pass"] * 3]
