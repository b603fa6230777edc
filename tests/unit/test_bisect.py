"""The bisect search with fake probes (flaky, erroring and unbuildable candidates), its terms, confirmation, step
log and report; `git bisect` driven for real on a tiny repository with a fake step; and the commands' bad input."""
import json
import math
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from lab.bisect import (BAD, FIX, GOOD, REGRESSION, SKIP, Bisection, Build, Probe, Report, Settings, Step,
                        StepLog, Trial, VersionsRequest, bisect, bisect_versions, judge, next_index, parse_cell,
                        parse_flaky, parse_terms, render_markdown, requests_from_changes, run_step, search,
                        step_bound, versions_range, write_report)
from lab.paths import DEFAULT_MATRIX
from tests import CHECKOUT

AXES = {"vers": ["4.0", "4.1"], "leases": ["on", "off"]}


class FakeLab:
    """Candidates `k0`…`kN`; from `first_new` on the cell is like the new end. `script` overrides a candidate's
    statuses run by run (a flaky or erroring kernel), `unbuildable` fails its build. Counts every call."""

    def __init__(self, count: int, first_new: int, terms=REGRESSION, script=None, unbuildable=()):
        self.candidates = [f"k{i}" for i in range(count)]
        self.first_new = first_new
        self.terms = terms
        self.script = {name: list(statuses) for name, statuses in (script or {}).items()}
        self.unbuildable = set(unbuildable)
        self.runs: list[str] = []
        self.builds: list[str] = []

    def prepare(self, candidate):
        self.builds.append(candidate)
        if candidate in self.unbuildable:
            return Build("failed", 12.0, "make: *** [bzImage] Error 2 (log: build.log)")
        return Build("ok", 3.0)

    def run(self, candidate):
        self.runs.append(candidate)
        if self.script.get(candidate):
            return Trial(self.script[candidate].pop(0), "scripted", 7.0)
        new = self.candidates.index(candidate) >= self.first_new
        status = self.terms.new_status if new else self.terms.old_status
        return Trial(status, "✓ new after 0.2s" if status == "pass" else "✗ ESTALE never recovers", 7.0)

    def probe(self):
        return Probe(run=self.run, prepare=self.prepare, title=lambda c: f"kernel {c}")


# ---- one step ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("statuses, flaky, expected", [
    (["pass", "pass", "pass"], "skip", GOOD),
    (["fail", "fail", "fail"], "skip", BAD),
    (["pass", "fail", "fail"], "skip", SKIP),
    (["pass", "fail", "fail"], "bad", BAD),
    (["pass", "fail", "fail"], "good", GOOD),
    (["pass", "fail", "fail"], "majority", BAD),
    (["pass", "pass", "fail"], "majority", GOOD),
    (["pass", "fail"], "majority", SKIP),            # a tie is no answer
    (["pass", "error"], "majority", SKIP),           # a lab error is never a guess, whatever the policy
    (["fail", "fail", "error"], "bad", SKIP),
    (["skip"], "skip", SKIP),                        # kernel unavailable
    ([], "skip", SKIP),
])
def test_judge_applies_the_flaky_policy_and_never_guesses_on_errors(statuses, flaky, expected):
    result, why = judge(statuses, Settings(flaky=flaky))
    assert result == expected, why


def test_judge_says_k_of_n():
    assert judge(["pass", "fail", "fail"], Settings())[1] == "flaky, 2 of 3 failed: skipped (--flaky skip)"
    assert "lab error in 1 of 2 runs" in judge(["pass", "error"], Settings())[1]


def test_step_stops_repeating_once_the_result_cannot_change():
    lab = FakeLab(4, 2, script={"k1": ["pass", "fail", "pass"], "k3": ["error", "fail", "fail"]})
    flaky = run_step("k1", lab.probe(), Settings(repeat=3))
    assert (flaky.result, flaky.statuses) == (SKIP, ["pass", "fail"])
    error = run_step("k3", lab.probe(), Settings(repeat=3, flaky="majority"))
    assert (error.result, error.statuses) == (SKIP, ["error"])
    steady = run_step("k2", lab.probe(), Settings(repeat=3))
    assert (steady.result, steady.statuses, steady.term) == (BAD, ["fail"] * 3, "bad")
    assert steady.build == {"result": "ok", "seconds": 3.0, "detail": ""} and steady.title == "kernel k2"


def test_failed_build_is_a_skip_and_runs_nothing():
    lab = FakeLab(4, 2, unbuildable={"k1"})
    step = run_step("k1", lab.probe(), Settings())
    assert step.result == SKIP and step.statuses == [] and lab.runs == []
    assert step.why.startswith("build failed: make: *** [bzImage] Error 2")


# ---- the search --------------------------------------------------------------------------------------------------

def test_next_index_takes_the_middle_and_steps_around_skips():
    assert next_index(0, 10, set()) == 5
    assert next_index(0, 10, {5}) == 4
    assert next_index(0, 10, {5, 4}) == 6
    assert next_index(3, 4, set()) is None
    assert next_index(0, 3, {1, 2}) is None


@pytest.mark.parametrize("first_new", range(1, 17))
def test_search_names_the_first_new_candidate_within_log2_steps(first_new):
    lab = FakeLab(17, first_new)
    found = bisect(lab.candidates, lab.probe(), Settings(repeat=3))
    assert found.culprit == f"k{first_new}"
    assert found.parent == f"k{first_new - 1}"
    assert len(found.steps) <= math.ceil(math.log2(16)) == step_bound(16)
    assert found.confirmed is True
    assert [s.candidate for s in found.confirm_steps] == [f"k{first_new}", f"k{first_new - 1}"]
    assert "k0" not in {s.candidate for s in found.steps}, "the ends are taken as given"


def test_flaky_and_erroring_candidates_are_stepped_around():
    lab = FakeLab(11, 2, script={"k5": ["pass", "fail"], "k6": ["error"]}, unbuildable={"k4"})
    found = bisect(lab.candidates, lab.probe(), Settings(repeat=3))
    results = {s.candidate: s.result for s in found.steps}
    assert results["k5"] == SKIP and results["k4"] == SKIP and results["k6"] == SKIP
    assert found.culprit == "k2" and found.confirmed
    assert lab.runs.count("k4") == 0 and lab.runs.count("k6") == 1, "no runs on a failed build, one on an error"


def test_skips_next_to_the_culprit_leave_every_suspect_named():
    lab = FakeLab(9, 5, script={"k4": ["fail", "pass"], "k5": ["error"]})
    found = bisect(lab.candidates, lab.probe(), Settings(repeat=3))
    assert found.culprit is None
    assert found.suspects == ["k4", "k5", "k6"]
    assert found.confirm_steps == [] and found.confirmed is None
    report = Report("versions", "vers=4.0/leases=on", "k0", "k8", Settings(), found)
    assert report.outcome == "ambiguous" and report.exit_code == 1
    assert "one of `k4`, `k5`, `k6`" in render_markdown(report)


def test_terms_fixed_unfixed_find_the_fix():
    lab = FakeLab(10, 7, terms=FIX)      # k0..k6 fail (unfixed), k7.. pass (fixed)
    settings = Settings(terms=parse_terms("fixed/unfixed"), flaky=parse_flaky("unfixed", FIX))
    found = bisect(lab.candidates, lab.probe(), settings)
    assert found.culprit == "k7" and found.confirmed
    assert {s.term for s in found.steps} <= {"fixed", "unfixed"}
    assert settings.flaky == GOOD and settings.terms.git_start_args == ["--term-old=unfixed", "--term-new=fixed"]
    # the same kernels under regression terms: k7 is where it starts to *pass*, so the search is told it is bad
    assert FIX.result_of("pass") == BAD and REGRESSION.result_of("pass") == GOOD


def test_regression_terms_on_a_fix_history_are_not_confirmed():
    """Asking the wrong question must not produce a confident answer: the ends contradict the terms."""
    lab = FakeLab(10, 7, terms=FIX)
    found = bisect(lab.candidates, lab.probe(), Settings(terms=REGRESSION))
    assert found.confirmed is not True


def test_confirmation_reruns_and_is_strict_whatever_the_policy():
    # the search sees k6 fail twice of three (majority: bad), the reruns see it pass once: not confirmed
    lab = FakeLab(10, 6, script={"k6": ["fail", "fail", "pass", "fail", "pass", "fail"]})
    found = bisect(lab.candidates, lab.probe(), Settings(repeat=3, flaky="majority"))
    assert found.culprit == "k6"
    assert found.confirm_steps[0].result == SKIP and found.confirmed is False
    report = Report("versions", "vers=4.0/leases=on", "k0", "k9", Settings(flaky="majority"), found)
    assert report.outcome == "unconfirmed" and report.exit_code == 1
    assert "**not confirmed**" in render_markdown(report)


def test_search_needs_two_ends():
    with pytest.raises(ValueError):
        search(["k0"], FakeLab(1, 0).probe(), Settings())


# ---- options and requests ----------------------------------------------------------------------------------------

def test_parse_terms_and_flaky_name_what_is_allowed():
    with pytest.raises(ValueError, match=r"allowed: regression, fixed/unfixed"):
        parse_terms("fixed")
    with pytest.raises(ValueError, match=r"allowed: skip, good, bad, majority\)"):
        parse_flaky("fixed", REGRESSION)
    assert parse_flaky("fixed", FIX) == BAD
    with pytest.raises(ValueError, match="repeat"):
        Settings(repeat=0)


def test_parse_cell():
    assert parse_cell("mainline-4.19/vers=4.0/leases=on", AXES) == ("mainline-4.19", {"vers": "4.0", "leases": "on"})
    assert parse_cell("leases=off/vers=4.1", AXES) == (None, {"vers": "4.1", "leases": "off"})
    for bad, message in [("vers=4.3/leases=on", "unknown mount option 'vers=4.3'"),
                         ("vers=4.0", "no value for leases"), ("vers=4.0/leases", "not axis=value"),
                         ("vers=4.0/leases=on/colour=red", "unknown axis 'colour'")]:
        with pytest.raises(ValueError, match=message):
            parse_cell(bad, AXES)


def test_versions_range():
    series = ["debian-5.10", "debian-6.1", "debian-6.12"]
    assert versions_range(series, "debian-5.10", "debian-6.12") == series
    with pytest.raises(ValueError, match="must come before"):
        versions_range(series, "debian-6.12", "debian-5.10")
    with pytest.raises(ValueError, match="--bad debian-7 is not in the kernel series"):
        versions_range(series, "debian-5.10", "debian-7")


def test_requests_from_changes_keep_ranges_and_terms_and_note_the_rest():
    doc = {"changes": [
        {"cell": "debian-6.12/vers=4.1/leases=on", "params": {"vers": "4.1", "leases": "on"},
         "bisect": {"terms": "fixed/unfixed", "kernels": ["debian-5.10", "debian-6.12"]}},
        {"cell": "debian-5.10/vers=4.0/leases=on", "params": {"vers": "4.0", "leases": "on"}, "bisect": None,
         "note": "no earlier kernel"}]}
    requests, notes = requests_from_changes(doc)
    assert requests == [VersionsRequest({"vers": "4.1", "leases": "on"}, ["debian-5.10", "debian-6.12"], FIX)]
    assert notes == ["debian-5.10/vers=4.0/leases=on: no bisect: no earlier kernel"]


def test_bisect_versions_reports_with_the_requests_terms():
    lab = FakeLab(5, 3, terms=FIX)
    request = VersionsRequest({"vers": "4.0", "leases": "on"}, lab.candidates, FIX)
    report = bisect_versions(request, lab.probe(), Settings(), command="lab bisect versions …")
    assert report.settings.terms == FIX and report.bisection.culprit == "k3" and report.outcome == "confirmed"
    assert report.titles["k3"] == "kernel k3"
    assert set(lab.builds) == set(lab.runs), "every run was on a prepared kernel"


# ---- log and report ----------------------------------------------------------------------------------------------

def test_step_log_survives_a_torn_line(tmp_path):
    log = StepLog(tmp_path / "b" / "steps.jsonl")
    step = Step("k1", "search", GOOD, "good", "3 of 3", ["pass"] * 3, ["✓"] * 3, [7.0] * 3, {"result": "ok"})
    log.append(step)
    with log.path.open("a") as f:
        f.write('{"candidate": "k2", "pha')
    log.append(replace(step, candidate="k3"))
    assert [s.candidate for s in log.steps()] == ["k1", "k3"]


def _fixed_report() -> Report:
    def step(candidate, phase, result, term, statuses, why):
        return Step(candidate, phase, result, term, why, statuses, [""] * len(statuses), [30.0] * len(statuses),
                    {"result": "ok" if statuses else "failed", "seconds": 18.0, "detail": ""}, "",
                    "2026-11-23T12:00:00+00:00", 140.0)
    commits = [f"{i:x}" * 40 for i in range(1, 11)]
    base = "0" * 40
    found = Bisection([base, *commits], [
        step(commits[4], "search", GOOD, "unfixed", ["fail"] * 3, "3 of 3 failed: unfixed"),
        step(commits[7], "search", BAD, "fixed", ["pass"] * 3, "0 of 3 failed: fixed"),
        step(commits[5], "search", SKIP, "skip", [], "build failed: make: *** Error 2 | see log"),
        step(commits[6], "search", BAD, "fixed", ["pass", "pass", "pass"], "0 of 3 failed: fixed"),
    ], [commits[6]], first_parent=commits[5])
    found.confirm_steps = [step(commits[6], "confirm", BAD, "fixed", ["pass"] * 3, "0 of 3 failed: fixed"),
                           step(commits[5], "confirm", GOOD, "unfixed", ["fail"] * 3, "3 of 3 failed: unfixed")]
    return Report("git", "mainline-4.19/vers=4.0/leases=on", base, commits[-1], Settings(terms=FIX), found,
                  wall_s=1234.4, command="lab bisect git --terms fixed/unfixed …",
                  titles={commits[6]: "NFS: Fix dentry revalidation on NFSv4 lookup (be189f7e)"})


def test_report_markdown_golden(golden):
    golden.check("bisect-report.md", render_markdown(_fixed_report()))


def test_report_json_and_files(tmp_path):
    report = _fixed_report()
    md, js = write_report(report, tmp_path / "bisect")
    data = json.loads(js.read_text())
    assert data["outcome"] == "confirmed" and data["confirmed"] is True
    assert data["culprit"] == "7" * 40 and data["parent"] == "6" * 40
    assert data["terms"] == "fixed/unfixed" and data["old"] == {"term": "unfixed", "candidate": "0" * 40}
    assert data["search_steps"] == 4 and data["step_bound"] == 5 and data["skipped"] == ["6" * 40]
    assert [s["phase"] for s in data["steps"]] == ["search"] * 4 + ["confirm"] * 2
    text = md.read_text()
    assert "first fixed: `777777777777` NFS: Fix dentry revalidation" in text and "**confirmed**" in text
    assert "Error 2 \\| see log" in text, "a | in a reason must not break the table"
    assert report.exit_code == 0


# ---- git bisect, for real, on a tiny repository ------------------------------------------------------------------

STEP_SCRIPT = textwrap.dedent("""\
    # a fake `lab bisect-step`: judges the commit under test by the file `state`, logs the step, exits as git wants
    import subprocess, sys
    from lab.bisect import EXIT_CODES, FIX, Probe, Settings, StepLog, Trial, run_step
    from lab.bisect.git import Repo
    repo = Repo(sys.argv[1])
    commit = repo.under_test()
    state = subprocess.run(["git", "-C", sys.argv[1], "show", commit + ":state"], capture_output=True,
                           text=True).stdout.strip()
    status = {"fixed": "pass", "unfixed": "fail"}.get(state, "error")
    step = run_step(commit, Probe(run=lambda c: Trial(status)), Settings(terms=FIX))
    StepLog(sys.argv[2]).append(step)
    sys.exit(EXIT_CODES[step.result])
""")


def make_history(path, states):
    """A repository whose commit i has `state` = states[i]; returns the commits, oldest first."""
    path.mkdir()
    git = lambda *a: subprocess.run(["git", "-C", str(path), *a], check=True, capture_output=True, text=True)
    git("init", "-q")
    git("config", "user.email", "lab@example.org")
    git("config", "user.name", "lab")
    commits = []
    for i, state in enumerate(states):
        (path / "state").write_text(state + "\n")
        (path / "n").write_text(f"{i}\n")
        git("add", "-A")
        git("commit", "-q", "-m", f"commit {i}: {state}")
        commits.append(git("rev-parse", "HEAD").stdout.strip())
    return commits


def git_probe(repo_path):
    def run(commit):
        state = subprocess.run(["git", "-C", str(repo_path), "show", commit + ":state"], capture_output=True,
                               text=True).stdout.strip()
        return Trial({"fixed": "pass", "unfixed": "fail"}.get(state, "error"))
    return Probe(run=run)


@pytest.mark.parametrize("states, culprit, outcome", [
    (["unfixed"] * 7 + ["fixed"] * 4, 7, "confirmed"),
    (["unfixed"] * 3 + ["broken", "broken"] + ["fixed"] * 4, None, "ambiguous"),   # skips hide the fix
    (["unfixed", "fixed"], 1, "confirmed"),                                          # git answers at once
])
def test_git_bisect_with_a_fake_step(tmp_path, states, culprit, outcome):
    from lab.bisect.git import Repo, bisect_commits
    commits = make_history(tmp_path / "repo", states)
    script = tmp_path / "step.py"
    script.write_text(STEP_SCRIPT)
    log = StepLog(tmp_path / "bisect" / "steps.jsonl")
    log.path.parent.mkdir()
    repo = Repo(tmp_path / "repo").check()
    head_before = repo.commit("HEAD")
    report = bisect_commits(repo, commits[0], commits[-1], Settings(terms=FIX),
                            [sys.executable, str(script), str(repo.path), str(log.path)], log, git_probe(repo.path),
                            cell="mainline-4.19/vers=4.0/leases=on",
                            env={"PYTHONPATH": str(CHECKOUT), "PATH": "/usr/bin:/bin"})
    assert report.outcome == outcome
    assert not repo.bisecting and repo.commit("HEAD") == head_before, "the bisect was reset, HEAD untouched"
    if culprit is not None:
        assert report.bisection.culprit == commits[culprit]
        assert report.bisection.parent == commits[culprit - 1]
        assert report.titles[commits[culprit]] == f"commit {culprit}: fixed"
        assert len(report.bisection.steps) <= step_bound(len(states) - 1) + 1
    else:
        assert set(report.bisection.suspects) == {commits[3], commits[4], commits[5]}
    assert all(s.phase == "search" for s in report.bisection.steps)
    assert (log.path.parent / "git-bisect.log").read_text().startswith("git bisect start")


def test_git_bisect_refuses_a_bisect_in_progress(tmp_path):
    from lab.bisect.git import GitError, Repo, start
    commits = make_history(tmp_path / "repo", ["unfixed", "unfixed", "fixed"])
    repo = Repo(tmp_path / "repo")
    start(repo, commits[0], commits[-1], FIX)
    with pytest.raises(GitError, match="already in progress"):
        start(repo, commits[0], commits[-1], FIX)


# ---- the commands' bad input -------------------------------------------------------------------------------------

def lab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, cwd=cwd or CHECKOUT)


CELL = "mainline-4.19/vers=4.0/leases=on"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("git") / "repo"
    make_history(path, ["unfixed", "unfixed", "fixed"])
    return path


@pytest.mark.parametrize("args, message", [
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "debian-5.10", "--bad", "nope"],
     "--bad nope is not in the kernel series"),
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "debian-6.12", "--bad", "debian-5.10"],
     "debian-6.12 must come before debian-5.10"),
    (["bisect", "versions", "--cell", "vers=4.3/leases=on", "--good", "debian-5.10", "--bad", "debian-6.12"],
     "--cell: bad cell 'vers=4.3/leases=on': unknown mount option 'vers=4.3'"),
    (["bisect", "versions", "--cell", "vers=4.0", "--good", "debian-5.10", "--bad", "debian-6.12"],
     "no value for leases"),
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "debian-5.10"], "needs --bad"),
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "x", "--bad", "y", "--kernels", "x,y,x"],
     "--kernels: a kernel is listed twice"),
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "x", "--bad", "y", "--kernels", "x,y"],
     "--kernels: unknown kernel 'x'"),
    (["bisect", "versions", "--from-changes", "/nonexistent/changes.json"], "no such file"),
    (["bisect", "versions", "--from-changes", "README.md"], "not a changes file from `lab compare`"),
    (["bisect", "versions", "--from-changes", "x.json", "--cell", "vers=4.0/leases=on"], "leave out --cell"),
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "debian-5.10", "--bad", "debian-6.12",
      "--repeat", "0"], "--repeat: bad repeat 0"),
    (["bisect", "versions", "--cell", "vers=4.0/leases=on", "--good", "debian-5.10", "--bad", "debian-6.12",
      "--flaky", "sometimes"], "--flaky: unknown flaky policy 'sometimes'"),
    (["bisect", "git", "--repo", "/nonexistent", "--good", "a", "--bad", "b", "--cell", CELL],
     "--repo: /nonexistent: no such directory"),
    (["bisect", "git", "--repo", "/", "--good", "a", "--bad", "b", "--cell", CELL], "not a git work tree"),
    (["bisect", "git", "--repo", "{repo}", "--good", "nosuchrev", "--bad", "HEAD", "--cell", CELL],
     "nosuchrev: not a commit"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD", "--bad", "HEAD~2", "--cell", CELL],
     "must be an ancestor of --bad"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD~2", "--bad", "HEAD", "--cell", CELL, "--terms", "fixed"],
     "--terms: unknown terms 'fixed'"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD~2", "--bad", "HEAD", "--cell", "vers=4.0/leases=on"],
     "needs --base"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD~2", "--bad", "HEAD", "--cell", CELL, "--base",
      "debian-6.1"], "--cell names kernel mainline-4.19 but --base is debian-6.1"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD~2", "--bad", "HEAD", "--cell",
      "debian-6.1/vers=4.0/leases=on"], "--base: --base debian-6.1 is a 'deb' kernel"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD~2", "--bad", "HEAD", "--cell", CELL, "--scope",
      "module:fs/nfs"], "mainline-4.19 names no base kernel whose headers"),
    (["bisect", "git", "--repo", "{repo}", "--good", "HEAD~2", "--bad", "HEAD", "--cell", CELL, "--scope", "half"],
     "--scope: unknown scope 'half'"),
    (["compare", "/nonexistent/a", "/nonexistent/b"], "/nonexistent/b: no such run directory"),
    (["fetch-baseline", "ftp://example.org/a.zip"], "bad URL 'ftp://example.org/a.zip'"),
    (["fetch-baseline", "file:///x.zip", "--header", "novalue"], "--header: bad header 'novalue'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, repo, lab_cli):
    r = lab_cli(*[a.replace("{repo}", str(repo)) for a in args])
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("args, message", [
    (["--repo", "/nonexistent", "--cell", "vers=4.0/leases=on", "--base", "mainline-4.19", "--log", "l",
      "--runs", "r"], "no such directory"),
    (["--repo", "{repo}", "--cell", "vers=4.0/leases=on", "--base", "mainline-4.19", "--log", "l", "--runs", "r",
      "--flaky", "often"], "unknown flaky policy"),
    (["--nosuchoption"], "No such option"),
])
def test_bisect_step_bad_input_aborts_the_bisect(args, message, repo, lab_cli):
    """git bisect run reads 2 as a bad commit: a step that cannot judge the commit must exit 128 instead."""
    r = lab_cli("bisect-step", *[a.replace("{repo}", str(repo)) for a in args])
    assert r.returncode == 128, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_versions_from_a_changes_file_without_changes_does_nothing(tmp_path):
    """Through `python -m lab`, the way `lab bisect git` has git call `lab bisect-step`."""
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"changes": [], "no_data": []}))
    r = lab("bisect", "versions", "--from-changes", str(changes))
    assert r.returncode == 0, r.stderr
    assert "nothing to bisect" in r.stderr


def test_the_step_command_is_one_bisect_step_accepts(tmp_path):
    """`lab bisect git` builds the command git runs per commit; a typo in it would make every step abort."""
    from lab.bisect.git import step_command
    from tests.unit.test_ci_files import parse
    settings = Settings(repeat=5, flaky=GOOD, terms=FIX)
    argv = step_command(tmp_path, {"vers": "4.0", "leases": "on"}, "mainline-4.19", settings, tmp_path / "s.jsonl",
                        tmp_path / "cells", DEFAULT_MATRIX, "full")
    assert argv[:4] == [sys.executable, "-m", "lab", "bisect-step"]
    params = parse(argv[3:]).params
    assert (params["cell"], params["base"], params["terms"], params["repeat"], params["flaky"], params["scope"]) == \
        ("vers=4.0/leases=on", "mainline-4.19", "fixed/unfixed", 5, "good", "full")
    assert params["keep_host"] is True and params["log"].is_absolute() and params["runs"].is_absolute()


@pytest.fixture
def no_lab(monkeypatch):
    """The lab replaced under the real commands: no host, no build, no VM. Cells are judged by `verdicts`."""
    from lab import host, probes, runner
    verdicts = {}
    monkeypatch.setattr(host, "require_root", lambda: None)
    monkeypatch.setattr(runner.Runner, "prepare", lambda self: None)
    monkeypatch.setattr(probes.CellProbe, "prepare", lambda self, kernel: Build("ok", 1.0))
    monkeypatch.setattr(probes.CellProbe, "close", lambda self, keep_host=False: None)
    monkeypatch.setattr(probes.CellProbe, "run", lambda self, kernel: Trial(verdicts[kernel], kernel, 1.0))
    return verdicts


def test_bisect_versions_command_end_to_end(no_lab, lab_cli, tmp_path):
    no_lab.update({"debian-6.1": "pass", "debian-5.10": "pass", "debian-6.12": "fail"})
    report = tmp_path / "report"
    r = lab_cli("bisect", "versions", "--cell", "vers=4.1/leases=on", "--good", "debian-6.1", "--bad", "debian-6.12",
                "--kernels", "debian-6.1,debian-5.10,debian-6.12", "--report", report)
    assert r.returncode == 0, r.stderr
    assert "first bad: `debian-6.12`" in r.stdout and "**confirmed**" in r.stdout
    steps = StepLog(report / "steps.jsonl").steps()
    assert [(s.phase, s.candidate, s.term) for s in steps] == [
        ("search", "debian-5.10", "good"), ("confirm", "debian-6.12", "bad"), ("confirm", "debian-5.10", "good")]
    assert json.loads((report / "report.json").read_text())["culprit"] == "debian-6.12"
    r = lab_cli("bisect", "versions", "--cell", "vers=4.1/leases=on", "--good", "debian-6.1", "--bad",
                "debian-6.12", "--report", report)
    assert r.returncode == 2 and "already holds a bisect" in r.stderr


def test_bisect_git_command_end_to_end(no_lab, lab_cli, tmp_path, monkeypatch):
    """`lab bisect git` for real on a tiny repository: git bisect run with a fake step, then the confirmation
    (in this process, by the patched probe), the report, and the reset."""
    import os

    from lab.bisect import git as gitbisect
    monkeypatch.setenv("NFSLAB_LINUX_TREE", "/elsewhere")   # the command points it at the repository; restored after
    states = ["unfixed"] * 4 + ["fixed"] * 3
    commits = make_history(tmp_path / "repo", states)
    script = tmp_path / "step.py"
    script.write_text(STEP_SCRIPT)
    monkeypatch.setattr(gitbisect, "step_command", lambda repo, params, base, settings, log, *rest:
                        [sys.executable, str(script), str(repo), str(log.resolve())])
    for number, commit in enumerate(commits):
        no_lab[f"mainline-4.19-g{commit[:12]}"] = "pass" if states[number] == "fixed" else "fail"
    report = tmp_path / "report"
    r = lab_cli("bisect", "git", "--repo", tmp_path / "repo", "--old", commits[0], "--new", commits[-1],
                "--terms", "fixed/unfixed", "--cell", CELL, "--report", report)
    assert r.returncode == 0, r.stderr
    data = json.loads((report / "report.json").read_text())
    assert (data["culprit"], data["parent"], data["outcome"]) == (commits[4], commits[3], "confirmed")
    assert data["search_steps"] <= data["step_bound"] == 4
    assert data["titles"][commits[4]] == "commit 4: fixed"
    assert not (tmp_path / "repo/.git/BISECT_START").exists()
    assert os.environ["NFSLAB_LINUX_TREE"] == str((tmp_path / "repo").resolve())
