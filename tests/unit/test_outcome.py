"""outcome.py: the timelines seen in the lab and in history, and the verdicts they must get."""
from __future__ import annotations

import pytest

from lab.outcome import Criteria, Observation, Read, Verdict, classify, classify_text

CRITERIA = Criteria(pass_within=2.0, settle=5.0)


def timeline(*phases: tuple[str, float, float], step: float = 0.5) -> list[Read]:
    """Reads every `step` seconds: ("old", -2, 5) = old contents read from t=-2 s to t=5 s."""
    reads = []
    for kind, start, end in phases:
        count = round((end - start) / step) + 1
        reads += [Read(round(start + i * step, 3), kind, kind) for i in range(count)]
    return reads


def test_classify_text():
    assert classify_text("2 - New file\n", 0) == "new"
    assert classify_text("1 - Old file", 0) == "old"
    assert classify_text("cat: test1.txt: Stale file handle", 1) == "estale"
    assert classify_text("cat: test1.txt: Input/output error", 1) == "error"
    assert classify_text("", 0) == "error"


def test_immediate_pass():
    v = classify(Observation(timeline(("old", -2, -0.5), ("new", 0, 30))), CRITERIA)
    assert (v.status, v.reason, v.first_new_after, v.stale_for, v.recovered, v.ls_clears) == \
        ("pass", "", 0.0, 0.0, True, None)
    assert v.summary() == "✓ new after 0s"


def test_new_within_pass_within_is_a_pass():
    v = classify(Observation(timeline(("old", -2, 1.5), ("new", 2, 30))), CRITERIA)
    assert v.status == "pass"
    assert v.first_new_after == 2.0
    assert v.stale_for == 1.5
    assert v.summary() == "✓ new after 2.00s ≤ 2s"   # on the criterion: hundredths, and the side it lies on


def test_new_just_after_pass_within_fails_as_stale_data():
    v = classify(Observation(timeline(("old", -2, 2.5), ("new", 3, 30))), CRITERIA)
    assert (v.status, v.reason, v.stale_for, v.recovered) == ("fail", "stale-data", 2.5, True)
    assert v.summary() == "✗ stale 2.5s"


def test_the_seed_old_forever_and_ls_clears():
    obs = Observation(timeline(("old", -2, 30)), ls_output="-rw-r--r-- 1 root root 13 test1.txt",
                      after_ls=Read(30.6, "new", "2 - New file"))
    v = classify(obs, CRITERIA)
    assert (v.status, v.reason, v.first_new_after, v.stale_for, v.recovered, v.ls_clears) == \
        ("fail", "stale-data", None, 30.0, False, True)
    assert v.summary() == "✗ stale never recovers, ls clears"


def test_old_forever_and_ls_does_not_clear():
    v = classify(Observation(timeline(("old", 0, 30)), after_ls=Read(31, "old")), CRITERIA)
    assert v.ls_clears is False
    assert v.summary() == "✗ stale never recovers, ls does not clear"


def test_stale_then_estale_then_new():
    obs = Observation(timeline(("old", -2, 5), ("estale", 5.5, 23), ("new", 23.5, 30)),
                      after_ls=Read(31, "new"))
    v = classify(obs, CRITERIA)
    assert (v.status, v.reason) == ("fail", "stale-data+estale")
    assert (v.stale_for, v.estale_for, v.first_new_after, v.recovered) == (5.0, 18.0, 23.5, True)
    assert v.ls_clears is None  # it recovered on its own: nothing for ls to clear
    assert v.summary() == "✗ stale 5s→ESTALE 18s"


def test_stale_then_estale_forever_ls_clears():
    obs = Observation(timeline(("old", 0, 5), ("estale", 5.5, 30)), after_ls=Read(31, "new"))
    v = classify(obs, CRITERIA)
    assert (v.reason, v.recovered, v.ls_clears, v.estale_for) == ("stale-data+estale", False, True, 24.5)
    assert v.summary() == "✗ stale 5s→ESTALE never recovers, ls clears"


def test_estale_window_then_recovered():
    v = classify(Observation(timeline(("estale", 0, 12), ("new", 12.5, 30))), CRITERIA)
    assert (v.status, v.reason, v.estale_for, v.stale_for, v.recovered) == ("fail", "estale", 12.5, 0.0, True)
    assert v.first_new_after == 12.5
    assert v.summary() == "✗ ESTALE 12.5s"


def test_flapping_old_and_new_is_stale_data():
    reads = timeline(("new", 0, 1), ("old", 1.5, 1.5), ("new", 2, 3), ("old", 3.5, 4), ("new", 4.5, 30))
    v = classify(Observation(reads), CRITERIA)
    assert (v.status, v.reason, v.first_new_after, v.stale_for, v.recovered) == \
        ("fail", "stale-data", 0.0, 4.0, True)


def test_recovered_means_steady_new_for_settle_seconds():
    reads = timeline(("old", 0, 27), ("new", 27.5, 28), ("old", 28.5, 29), ("new", 29.5, 30))
    v = classify(Observation(reads, after_ls=Read(31, "new")), CRITERIA)
    assert v.recovered is False  # a lucky last read is not recovery
    assert v.ls_clears is True
    assert v.status == "fail"


def test_read_errors_fail_with_their_own_reason():
    v = classify(Observation(timeline(("new", 0, 3), ("error", 3.5, 4), ("new", 4.5, 30))), CRITERIA)
    assert (v.status, v.reason) == ("fail", "read-error")
    assert v.summary() == "✗ read errors"


def test_new_data_late_after_a_gap_in_reads():
    v = classify(Observation([Read(-1, "old"), *timeline(("new", 3, 30))]), CRITERIA)
    assert (v.status, v.reason, v.first_new_after) == ("fail", "late-new-data", 3.0)
    assert v.summary() == "✗ new after 3s > 2s"
    old = Verdict.from_dict({k: v for k, v in v.to_dict().items() if k != "pass_within"})   # a record from before
    assert old.summary() == "✗ new only after 3s"


def test_never_new_with_only_read_errors():
    v = classify(Observation(timeline(("error", 0, 30))), CRITERIA)
    assert "read-error" in v.reason and v.recovered is False and v.first_new_after is None


def test_estale_only_forever():
    v = classify(Observation(timeline(("estale", 0, 30)), after_ls=Read(31, "estale")), CRITERIA)
    assert (v.reason, v.recovered, v.ls_clears) == ("estale", False, False)
    assert v.summary() == "✗ ESTALE never recovers, ls does not clear"


def test_reads_before_the_rename_do_not_count():
    v = classify(Observation(timeline(("estale", -3, -1), ("old", -0.5, -0.5), ("new", 0.5, 30))), CRITERIA)
    assert v.status == "pass" and v.first_new_after == 0.5


@pytest.mark.parametrize("obs, step", [
    (Observation([]), "read"),
    (Observation(timeline(("old", -2, -0.5))), "read"),
    (Observation(timeline(("new", 0, 30)), mv_ok=False), "mv"),
])
def test_lab_failures_are_errors_not_kernel_results(obs, step):
    v = classify(obs, CRITERIA)
    assert (v.status, v.reason) == ("error", step)
    assert v.summary().startswith(f"ERROR {step}: ")


def test_error_and_skip_constructors():
    v = Verdict.error("mount", "mount.nfs: Connection timed out", "logs/alice-mount.log")
    assert v.summary() == "ERROR mount: mount.nfs: Connection timed out (log: logs/alice-mount.log)"
    assert Verdict.skip("box centos/7 not present and Vagrant Cloud unreachable").summary() == \
        "SKIP box centos/7 not present and Vagrant Cloud unreachable"


def test_verdict_and_observation_round_trip():
    obs = Observation(timeline(("old", 0, 5), ("estale", 5.5, 30)), ls_output="x", after_ls=Read(31, "new"),
                      meta={"vers": "4.0"})
    v = classify(obs, CRITERIA)
    assert Verdict.from_dict(v.to_dict()) == v
    assert Verdict.from_dict({**v.to_dict(), "added_later": 1}) == v
    assert Observation.from_dict(obs.to_dict()) == obs


# ---- figures near the criterion, and the relaxed reading --------------------------------------------------------

@pytest.mark.parametrize("first_new, text", [
    (2.04, "✗ new after 2.04s > 2s"),       # tenths would print "2s" next to a 2 s criterion
    (2.1, "✗ new after 2.10s > 2s"),        # one rounding step away: still shown in hundredths
    (2.3, "✗ new after 2.3s > 2s"),
])
def test_late_new_data_shows_the_precision_that_decides_it(first_new, text):
    v = classify(Observation([Read(-0.5, "old"), Read(first_new, "new"), *timeline(("new", 3, 10))]), CRITERIA)
    assert (v.status, v.reason) == ("fail", "late-new-data")
    assert v.summary() == text


@pytest.mark.parametrize("first_new, text", [
    (1.96, "✓ new after 1.96s ≤ 2s"),
    (1.9, "✓ new after 1.90s ≤ 2s"),
    (1.85, "✓ new after 1.9s"),            # tenths tell it apart already (1.85 rounds to 1.9 or 1.8)
    (0.5, "✓ new after 0.5s"),
])
def test_a_pass_near_the_criterion_says_so(first_new, text):
    v = classify(Observation([Read(0.0, "old"), Read(first_new, "new"), *timeline(("new", 2.5, 10))]), CRITERIA)
    assert v.status == "pass"
    assert v.summary() in (text, text.replace("1.9s", "1.8s"))


def test_stale_data_near_the_criterion():
    v = classify(Observation(timeline(("old", -1, 1.5)) + [Read(2.04, "old"), *timeline(("new", 2.5, 10))]),
                 CRITERIA)
    assert v.summary() == "✗ stale 2.04s > 2s"


def test_seconds_text_spreads():
    from lab.outcome import seconds_text
    assert seconds_text([0.5, 0.7]) == "0.5–0.7s"
    assert seconds_text([24.1, 25.0]) == "24.1–25.0s"
    assert seconds_text([25.0, 25.02]) == "25s"
    assert seconds_text([1.98, 2.04], 2.0, compare=True) == "1.98–2.04s"    # on both sides: no comparison
    assert seconds_text([2.04, 2.3], 2.0, compare=True) == "2.04–2.30s > 2s"
    assert seconds_text([0.4, 0.6], 2.0, compare=True) == "0.4–0.6s"


def test_a_single_estale_in_the_race_window_fails_strictly_with_the_relaxed_note():
    """The strict verdict is the status (an application's open() got ESTALE); the relaxed reading is a note."""
    reads = [Read(-0.5, "old"), Read(0.1, "new"), Read(0.6, "estale"), *timeline(("new", 1.1, 10))]
    v = classify(Observation(reads), CRITERIA)
    assert (v.status, v.reason, v.within_race_window) == ("fail", "estale", True)
    assert v.summary() == "✗ ESTALE 0.5s, only within the 2s race window"


def test_the_relaxed_note_needs_everything_after_the_window_to_be_new():
    late_estale = [Read(0.1, "new"), Read(0.6, "estale"), Read(2.5, "estale"), *timeline(("new", 3, 10))]
    assert not classify(Observation(late_estale), CRITERIA).within_race_window
    gap = [Read(-0.5, "old"), *timeline(("new", 3, 10))]          # late new data is not a race-window matter
    assert not classify(Observation(gap), CRITERIA).within_race_window
    assert not classify(Observation(timeline(("new", 0, 10))), CRITERIA).within_race_window   # a pass
