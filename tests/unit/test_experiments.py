"""The experiments' pure parts: alice's loop script, the parsing of her timeline, the scenarios and the registry."""
import pytest

from lab import spec
from lab.experiments import EXPERIMENTS, gitrefs, race, rename

SETTINGS = race.Settings(duration=30, interval=0.5)
OLD_SHA, NEW_SHA = "a" * 40, "b" * 40


def test_timeline_is_relative_to_the_change_on_the_host_clock():
    # alice's clock runs 100 s ahead of the host; the rename happened at host time 1000.0
    text = ("R\t1099.5\t0\t1 - Old file\n"
            "R\t1100.6\t0\t2 - New file\n"
            "R\t1101.2\t1\tcat: test1.txt: Stale file handle\n"
            "R\t1101.9\t0\n"
            "A\t1131.0\t0\t2 - New file\n")
    reads, after_ls = race.parse_timeline(text, offset=100.0, t0=1000.0, scenario=rename.SCENARIO)
    assert [(r.t, r.kind) for r in reads] == [(-0.5, "old"), (0.6, "new"), (1.2, "estale"), (1.9, "error")]
    assert after_ls.kind == "new" and after_ls.t == pytest.approx(31.0)


def test_torn_last_line_is_ignored():
    reads, after_ls = race.parse_timeline("R\t10.0\t0\t1 - Old file\nR\t10.5", offset=0, t0=10.0,
                                          scenario=rename.SCENARIO)
    assert len(reads) == 1 and after_ls is None


def test_alice_holds_the_file_open_and_reads_by_name():
    script = race.alice_script(rename.SCENARIO, SETTINGS, stat_before_open=False)
    assert "exec 3< test1.txt" in script           # the long-lived open of the seed
    assert "out=$(cat test1.txt 2>&1)" in script   # each read opens by name
    assert "sleep 0.5" in script
    assert "stat test1.txt" not in script
    assert "ls -l . >" in script                   # the ls of the file's directory that clears it in the seed


def test_stat_before_open_axis_changes_the_loop():
    assert "stat test1.txt >/dev/null" in race.alice_script(rename.SCENARIO, SETTINGS, stat_before_open=True)
    git = gitrefs.scenario(OLD_SHA, NEW_SHA)
    assert "stat .git/packed-refs >/dev/null" in race.alice_script(git, SETTINGS, stat_before_open=True)


def test_git_scenario_reads_the_branch_and_packs_refs_like_gc():
    git = gitrefs.scenario(OLD_SHA, NEW_SHA)
    script = race.alice_script(git, SETTINGS, stat_before_open=False)
    assert "cd /mnt/nfs/repo" in script and "exec 3< .git/packed-refs" in script
    assert "git rev-parse refs/heads/nfslab" in script
    assert "ls -l .git >" in script   # packed-refs lives in .git: that is the directory to list
    assert git.change == f"git update-ref refs/heads/nfslab {NEW_SHA} && git pack-refs --all"


def test_git_reads_are_judged_by_commit_id():
    git = gitrefs.scenario(OLD_SHA, NEW_SHA)
    text = (f"R\t9.0\t0\t{OLD_SHA}\nR\t11.0\t0\t{OLD_SHA}\n"
            "R\t12.0\t128\tfatal: couldn't read .git/packed-refs: Stale file handle\n"
            f"R\t13.0\t0\t{NEW_SHA}\n")
    reads, _ = race.parse_timeline(text, offset=0, t0=10.0, scenario=git)
    assert [r.kind for r in reads] == ["old", "old", "estale", "new"]


def test_git_server_script_packs_every_ref_and_prints_both_commits():
    script = gitrefs.server_script()
    assert "git pack-refs --all" in script and "git rev-parse HEAD~1 HEAD" in script
    assert "GIT_COMMITTER_DATE=2018-08-01T00:00:00Z" in script   # the same commit ids in every cell
    assert "chmod -R a+rwX /srv/nfs/repo" in script              # bob's writes arrive root-squashed


def test_every_experiment_the_spec_accepts_exists():
    assert set(spec.EXPERIMENTS) == set(EXPERIMENTS)


def reads(*pairs):
    from lab.outcome import Read
    return [Read(t, kind) for t, kind in pairs]


def test_settled_needs_unbroken_new_data_for_settle_seconds():
    assert race.settled(reads((-0.5, "old"), (0.5, "new"), (3.0, "new"), (5.6, "new")), settle=5)
    assert not race.settled(reads((0.5, "new"), (3.0, "new")), settle=5)
    # ESTALE in between restarts the clock
    assert not race.settled(reads((0.5, "new"), (3.0, "estale"), (5.6, "new"), (8.0, "new")), settle=5)
    assert race.settled(reads((0.5, "estale"), (3.0, "new"), (8.1, "new")), settle=5)
    assert not race.settled(reads((0.5, "old"), (30.0, "old")), settle=5)
    assert not race.settled(reads((0.5, "new"), (30.0, "new")), settle=0)   # early stop off
