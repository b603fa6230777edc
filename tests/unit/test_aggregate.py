"""aggregate.py: a cell's runs → one cell result, the flaky rule, and the text the table shows."""
from __future__ import annotations

import pytest

from lab.aggregate import CellResult, Tally, aggregate, cells_of, resolve
from lab.outcome import Criteria, Observation, Read, Verdict, classify
from lab.results import ResultRecord

CRITERIA = Criteria(pass_within=2.0, settle=5.0)


def timeline(*phases, step=0.5):
    reads = []
    for kind, start, end in phases:
        reads += [Read(round(start + i * step, 3), kind) for i in range(round((end - start) / step) + 1)]
    return reads


def passing(first_new: float) -> Verdict:
    return classify(Observation([Read(-0.5, "old"), *timeline(("new", first_new, first_new + 8))]), CRITERIA)


def estale(window_end: float) -> Verdict:
    return classify(Observation([Read(-0.5, "old"), *timeline(("estale", 0.5, window_end - 0.5)),
                                 *timeline(("new", window_end, window_end + 6))]), CRITERIA)


def stale_forever() -> Verdict:
    return classify(Observation(timeline(("old", -1, 60)), after_ls=Read(61, "new")), CRITERIA)


def stale_then_new(last_old: float) -> Verdict:
    return classify(Observation([*timeline(("old", -1, last_old)), *timeline(("new", last_old + 0.5, last_old + 6))]),
                    CRITERIA)


def run(verdict: Verdict, repeat: int, repeats: int = 3, expected: str = "pass", cell: str = "k/vers=4.1/leases=on",
        release: str = "6.1.0-28-amd64") -> ResultRecord:
    kernel, *pairs = cell.split("/")
    return ResultRecord(run_id="r", cell_id=cell, kernel=kernel, params=dict(p.split("=") for p in pairs),
                        verdict=verdict.to_dict(), expected=expected,
                        started=f"2026-11-23T10:00:0{repeat}+00:00", duration_s=10.0, worker="main",
                        observation=None, logs=f"logs/x/run-{repeat}", kernel_release=release, repeat=repeat,
                        repeats=repeats)


def cell(*verdicts: Verdict, expected: str = "pass", repeats: int | None = None) -> CellResult:
    n = repeats or len(verdicts)
    return aggregate([run(v, i, n, expected) for i, v in enumerate(verdicts, 1)])


# ---- the status rule ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("statuses, status", [
    (["pass", "pass", "pass"], "pass"),
    (["fail", "fail", "fail"], "fail"),
    (["pass", "fail", "fail"], "flaky"),
    (["pass", "error", "pass"], "pass"),       # an error beside kernel results is counted, not voted
    (["fail", "error", "error"], "fail"),
    (["error", "error", "error"], "error"),    # no kernel result at all
    (["skip", "skip", "skip"], "skip"),
    (["skip", "error"], "error"),
    (["pass"], "pass"),
])
def test_status_of_a_cells_runs(statuses, status):
    assert Tally.of(statuses).status == status


@pytest.mark.parametrize("statuses, policy, resolved", [
    (["pass", "fail", "fail"], "skip", None),
    (["pass", "fail", "fail"], "fail", "fail"),
    (["pass", "fail", "fail"], "pass", "pass"),
    (["pass", "fail", "fail"], "majority", "fail"),
    (["pass", "pass", "fail"], "majority", "pass"),
    (["pass", "fail"], "majority", None),       # a tie is no verdict
    (["pass", "pass"], "skip", "pass"),         # a consistent cell needs no policy
    (["error", "error"], "fail", None),         # an error is never a kernel result
    (["skip"], "pass", None),
])
def test_resolve_applies_the_flaky_policy(statuses, policy, resolved):
    assert resolve(Tally.of(statuses), policy) == resolved


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown flaky policy 'maybe'"):
        resolve(Tally.of(["pass"]), "maybe")


@pytest.mark.parametrize("statuses, expected, mismatch", [
    (["fail", "fail"], "pass", "regression"),
    (["pass", "fail"], "pass", "flaky"),          # strictly, it failed in one run of two
    (["pass", "fail"], "fail", None),             # history says it fails: it did
    (["pass", "pass"], "fail", "unexpected-pass"),
    (["error", "error"], "pass", None),
    (["skip"], "fail", None),
])
def test_mismatch_against_history(statuses, expected, mismatch):
    verdicts = {"pass": passing(0.5), "fail": estale(25), "error": Verdict.error("boot", "x"),
                "skip": Verdict.skip("no box")}
    assert cell(*(verdicts[s] for s in statuses), expected=expected).mismatch == mismatch


# ---- the text of a cell --------------------------------------------------------------------------------------

def test_one_run_of_one_reads_as_before():
    assert cell(passing(0.5)).summary() == "✓ new after 0.5s"
    assert cell(estale(25.5)).summary() == "✗ ESTALE 25s"


def test_agreeing_runs_show_how_many_and_the_spread():
    assert cell(passing(0.5), passing(0.7), passing(0.6)).summary() == "✓ 3/3 new after 0.5–0.7s"
    assert cell(estale(24.6), estale(25.5), estale(25.1)).summary() == "✗ 3/3 ESTALE 24.1–25.0s"


def test_flaky_runs_show_both_sides():
    c = cell(passing(0.5), estale(1.2), estale(1.3))
    assert c.status == "flaky"
    assert c.summary() == "⚠ flaky 2/3 fail · ✗ ESTALE 0.7–0.8s, only within the 2s race window · ✓ new after 0.5s"


def test_failing_runs_of_different_shapes_are_listed_apart():
    """debian-6.12 vers=4.1 read 'stale 27.3s' one week and 'stale never recovers, ls clears' the next."""
    c = cell(stale_then_new(27.5), stale_forever(), stale_then_new(27.0))
    assert c.summary() == "✗ 3/3 stale 27.0–27.5s ×2 / stale never recovers, ls clears ×1"
    assert c.spread["never_recovers"] == 1


def test_near_the_criterion_the_spread_is_in_hundredths():
    late = classify(Observation([Read(-0.5, "old"), Read(2.04, "new"), *timeline(("new", 2.5, 9))]), CRITERIA)
    later = classify(Observation([Read(-0.5, "old"), Read(2.1, "new"), *timeline(("new", 2.5, 9))]), CRITERIA)
    assert cell(late, later).summary() == "✗ 2/2 new after 2.04–2.10s > 2s"
    on_time = classify(Observation([Read(-0.5, "old"), Read(1.96, "new"), *timeline(("new", 2.5, 9))]), CRITERIA)
    assert cell(on_time, late).summary() == "⚠ flaky 1/2 fail · ✗ new after 2.04s > 2s · ✓ new after 1.96s ≤ 2s"


def test_errors_and_runs_still_to_do_are_shown_not_voted():
    c = cell(passing(0.5), Verdict.error("ssh", "alice did not answer"), passing(0.6))
    assert (c.status, c.tally.errors) == ("pass", 1)
    assert c.summary() == "✓ 2/3 new after 0.5–0.6s (1 ERROR)"
    partial = aggregate([run(passing(0.5), 1, repeats=3)])
    assert partial.missing == 2 and partial.summary() == "✓ 1/3 new after 0.5s (2 not run)"
    errors = cell(Verdict.error("boot", "timed out"), Verdict.error("boot", "timed out"))
    assert errors.status == "error" and errors.summary() == "ERROR 2/2 boot: timed out"
    assert cell(Verdict.skip("no box"), Verdict.skip("no box")).summary() == "SKIP 2/2 no box"


def test_spread_of_the_figures():
    c = cell(passing(0.5), estale(1.2), estale(25.5))
    assert c.spread["first_new_after"] == [0.5, 25.5]
    assert c.spread["estale_for"] == [0.7, 25.0]
    assert c.spread["stale_for"] is None
    assert c.to_dict()["counts"] == {"pass": 1, "fail": 2, "error": 0, "skip": 0, "not_run": 0}


def test_cells_of_groups_runs_by_cell_in_order_of_appearance():
    records = [run(passing(0.5), 1, 2, cell="a/vers=4.0"), run(passing(0.5), 1, 2, cell="b/vers=4.0"),
               run(estale(3), 2, 2, cell="a/vers=4.0")]
    cells = cells_of(records)
    assert [c.cell_id for c in cells] == ["a/vers=4.0", "b/vers=4.0"]
    assert cells[0].status == "flaky" and cells[1].missing == 1
    assert cells[0].kernel_release == "6.1.0-28-amd64"


def test_old_records_without_repeats_are_one_run_of_one():
    old = run(passing(0.5), 1, 1)
    assert aggregate([old]).summary() == "✓ new after 0.5s" and aggregate([old]).planned == 1
