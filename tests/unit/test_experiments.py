"""The experiments' pure parts: alice's loop script, the parsing of her timeline, the scenarios and the registry."""
import pytest

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
    assert "tick=$((tick + 500))" in script        # one read every 0.5 s, counted from the loop's start
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


def test_every_reader_experiment_is_registered():
    from lab.experiments import READER_EXPERIMENTS
    assert set(READER_EXPERIMENTS) <= set(EXPERIMENTS)


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


# ---- the timing the experiment controls: the generated shell, run for real in a local directory ----------------

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

#: the guest's /bin/sh (alice's loop) is dash and root's login shell (every remote command) bash; both use coreutils'
#: date, whose %N and %3N the scripts need (busybox's own date applet has neither)
SHELLS = [shell for shell in (["dash"], ["bash"]) if shutil.which(shell[0])]


def local_scenario(tmp_path: Path) -> race.Scenario:
    for name, text in rename.FILES.items():
        (tmp_path / name).write_text(text + "\n")
    return dataclasses.replace(rename.SCENARIO, workdir=str(tmp_path))


def test_timing_is_one_place_and_sane():
    timing = race.Timing()
    assert timing.dir_changed > timing.dir_fetched > 0
    assert race.Settings(duration=30, interval=0.5).timing == timing
    with pytest.raises(ValueError, match="needs 0 < dir_fetched < dir_changed"):
        race.Timing(dir_changed=2, dir_fetched=3)


def test_alice_opens_the_directory_at_the_planned_time_before_reading():
    script = race.alice_script(rename.SCENARIO, SETTINGS, stat_before_open=False)
    assert 'wait_until "$1"' in script and race.WAIT_UNTIL in script
    assert "true < ." in script                               # open(2) of the directory: a forced GETATTR
    assert script.index("true < .") < script.index("exec 3< test1.txt") < script.index("while")
    git = race.alice_script(gitrefs.scenario(OLD_SHA, NEW_SHA), SETTINGS, stat_before_open=False)
    assert "true < .git" in git


def test_bob_resets_the_ages_of_the_directory_and_the_files():
    assert race.bob_touch_script(rename.SCENARIO) == (
        "cd /mnt/nfs && touch -c -- test1.txt test2.txt && date +%s.%N && true > .nfslab-dir-marker && "
        "rm -f .nfslab-dir-marker && date +%s.%N")
    git = race.bob_touch_script(gitrefs.scenario(OLD_SHA, NEW_SHA))
    assert "touch -c -- .git/packed-refs" in git and "true > .git/.nfslab-dir-marker" in git
    change = race.bob_change_script(rename.SCENARIO, 1_700_000_000_123)
    assert change.startswith(race.WAIT_UNTIL)
    assert "cd /mnt/nfs && wait_until 1700000000123 && { mv -f test2.txt test1.txt ; }; rc=$?; date" in change


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_bob_scripts_run_in_a_posix_shell(tmp_path, shell):
    scenario = local_scenario(tmp_path)
    old = time.time() - 100
    for name in ("test1.txt", "test2.txt"):
        os.utime(tmp_path / name, (old, old))
    os.utime(tmp_path, (old, old))
    r = subprocess.run([*shell, "-c", race.bob_touch_script(scenario)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    touched, changed = map(float, r.stdout.split())
    assert time.time() - 5 < touched <= changed <= time.time()
    assert (tmp_path / "test1.txt").stat().st_mtime > old + 90 and tmp_path.stat().st_mtime > old + 90
    assert not (tmp_path / race.MARKER).exists()

    at = time.time() + 0.4
    started = time.monotonic()
    r = subprocess.run([*shell, "-c", race.bob_change_script(scenario, int(at * 1000))], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started >= 0.35                 # it waited for the planned moment
    assert at - 0.01 <= float(r.stdout.split()[-1]) < at + 1          # and stamped right after the change
    assert (tmp_path / "test1.txt").read_text() == rename.NEW_TEXT + "\n"
    r = subprocess.run([*shell, "-c", race.bob_change_script(scenario, 0)], capture_output=True, text=True)
    assert r.returncode != 0 and float(r.stdout.split()[-1]) > 0   # a failed change: its exit code, still a stamp


def run_alice_here(shell, script, stamps, work, change_at, then):
    """Alice's loop on this machine: start it with `stamps` (epoch seconds, passed as milliseconds), make bob's
    change (test2.txt renamed over test1.txt) at `change_at`, let her read `then` seconds more, stop her; returns
    (t0, her stderr)."""
    alice = subprocess.Popen([*shell, str(script), *(str(int(t * 1000)) for t in stamps)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(max(0.0, change_at - time.time()))
        os.replace(work / "test2.txt", work / "test1.txt")      # bob's change, here on the same machine
        t0 = time.time()
        time.sleep(then)
        Path(race.TIMELINE + ".stop").touch()
        assert alice.wait(timeout=15) == 0, alice.stderr.read()
        return t0, alice.stderr.read()
    finally:
        alice.kill()


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_alice_script_runs_in_a_posix_shell(tmp_path, monkeypatch, shell):
    work = tmp_path / "export"
    work.mkdir()
    scenario = local_scenario(work)
    monkeypatch.setattr(race, "TIMELINE", str(tmp_path / "timeline"))
    monkeypatch.setattr(race, "DONE", str(tmp_path / "done"))
    script = tmp_path / "alice.sh"
    script.write_text(race.alice_script(scenario, race.Settings(duration=3, interval=0.2), stat_before_open=False))
    start = time.time() + 0.5
    t0, _ = run_alice_here(shell, script, [start], work, change_at=start + 0.7, then=0.7)
    text = Path(race.TIMELINE).read_text()
    before, after, rc = race.parse_fetch(text)
    assert rc == 0 and start - 0.05 <= before <= after < start + 2   # the directory opened when planned
    reads, after_ls = race.parse_timeline(text, offset=0.0, t0=t0, scenario=scenario)
    kinds = [r.kind for r in reads]
    assert kinds[0] == "old" and kinds[-1] == "new" and set(kinds) == {"old", "new"}, text
    assert reads[0].t >= after - t0                             # reading starts after the directory is fresh
    assert after_ls.kind == "new" and Path(race.DONE).read_text() == "done\n"


def test_ages_are_measured_against_the_plan():
    timing = race.Timing()
    got = race.ages(timing, t0=1005.1, touched=999.95, changed=1000.0, fetch=(1002.9, 1003.0, 0))
    assert got["dir_touched_before_change_s"] == 5.1
    assert got["file_written_before_change_s"] == 5.15
    assert got["dir_attrs_fetched_before_change_s"] == 2.1
    assert (got["dir_open_s"], got["dir_open_rc"], got["off_plan_s"]) == (0.1, 0, 0.15)
    assert got["planned"] == {"dir_touched_before_change_s": 5.0, "file_written_before_change_s": 5.0,
                              "dir_attrs_fetched_before_change_s": 2.0}
    assert "dir_attrs_fetched_before_change_s" not in race.ages(timing, 1005.0, 1000.0, 1000.0, None)


def test_the_fetch_stamp_is_not_a_read():
    text = "F\t100.0\t0\t100.2\nR\t101.0\t0\t1 - Old file\n"
    reads, _ = race.parse_timeline(text, offset=0, t0=100.0, scenario=rename.SCENARIO)
    assert [r.kind for r in reads] == ["old"]
    assert race.parse_fetch(text) == (100.0, 100.2, 0)
    assert race.parse_fetch("R\t101.0\t0\tx\n") is None


class FakeGuest:
    """A Remote that answers race.run's commands from a script, on a clock `offset` seconds from the host's."""

    def __init__(self, name, offset, answers):
        self.name, self.offset, self.answers, self.log, self.command_timeout = name, offset, answers, "log", 60
        self.commands = []

    def clock_offset(self):
        return self.offset

    def write(self, path, content, mode="644"):
        self.commands.append(("write", path))

    def run(self, command, **kw):
        from lab.remote import Result
        self.commands.append(command)
        for prefix, answer in self.answers.items():
            if command.startswith(prefix) or prefix in command:
                return Result(answer(command) if callable(answer) else answer, "", 0)
        return Result("", "", 0)


def test_run_plans_the_steps_on_each_guests_clock_and_records_the_ages():
    from lab.axes import CellSetup
    host_now = time.time() - 100                 # everything lies in the past: no real waiting
    alice_offset, bob_offset = 100.0, -50.0
    touched, changed = host_now, host_now + 0.01  # host clock
    planned_change = changed + race.Timing().dir_changed
    t0 = planned_change + 0.12                   # bob's command returned a little after the planned moment
    fetched = planned_change - race.Timing().dir_fetched + 0.03
    timeline = (f"F\t{fetched - 0.01 + alice_offset}\t0\t{fetched + alice_offset}\n"
                f"R\t{t0 - 1 + alice_offset}\t0\t1 - Old file\nR\t{t0 + 0.4 + alice_offset}\t0\t2 - New file\n"
                f"A\t{t0 + 9 + alice_offset}\t0\t2 - New file\n")
    bob = FakeGuest("bob", bob_offset, {
        "touch -c": f"{touched + bob_offset:.3f}\n{changed + bob_offset:.3f}\n",
        "wait_until() {": f"{t0 + bob_offset:.3f}\n"})
    alice = FakeGuest("alice", alice_offset, {"cd /mnt/nfs && cat test1.txt": "1 - Old file\n",
                                              f"cat {race.TIMELINE}": timeline})
    planned, changes = [], []
    obs = race.run(alice, bob, rename.SCENARIO, race.Settings(duration=1, interval=0.5), CellSetup(),
                   on_change=changes.append, on_planned=lambda at: planned.append((at, len(bob.commands))))
    (planned_at, bob_commands_then), = planned          # told once, on the host clock, before bob's change ran
    assert planned_at == pytest.approx(planned_change, abs=0.002)
    assert not any(c.startswith("wait_until() {") for c in bob.commands[:bob_commands_then])
    assert changes == [pytest.approx(t0, abs=0.002)]
    start = next(c for c in alice.commands if isinstance(c, str) and c.startswith("setsid"))
    assert start.split()[2] == str(round((planned_change - 2.0 + alice_offset) * 1000))   # alice's clock, in ms
    change = next(c for c in bob.commands if c.startswith("wait_until() {"))
    assert f"wait_until {round((planned_change + bob_offset) * 1000)} &&" in change        # bob's clock
    assert bob.commands.index(next(c for c in bob.commands if "touch -c" in c)) < bob.commands.index(change)
    ages = obs.meta["ages"]
    assert ages["dir_touched_before_change_s"] == pytest.approx(5.12, abs=0.002)
    assert ages["file_written_before_change_s"] == pytest.approx(5.13, abs=0.002)
    assert ages["dir_attrs_fetched_before_change_s"] == pytest.approx(2.09, abs=0.002)
    assert ages["off_plan_s"] == pytest.approx(0.13, abs=0.002)
    assert [r.kind for r in obs.reads] == ["old", "new"] and obs.after_ls.kind == "new"


def test_reads_keep_their_period_when_a_read_is_slow(tmp_path):
    """The loop sleeps until the next tick, not a fixed 0.5 s after each read: a read that takes 0.3 s (NFS under
    TCG, more on a loaded host) must not stretch the period, which is the resolution of every window. Runs the
    real script in sh, with its /tmp paths moved into tmp_path."""
    import dataclasses
    import subprocess
    import time
    (tmp_path / "test1.txt").write_text("1 - Old file")
    scenario = dataclasses.replace(rename.SCENARIO, workdir=str(tmp_path), read="sleep 0.3; cat test1.txt")
    script = race.alice_script(scenario, race.Settings(duration=2, interval=0.5, trace_syscalls=False),
                               stat_before_open=False)
    timeline = tmp_path / "timeline"
    script = script.replace(race.TIMELINE, str(timeline)).replace(race.DONE, str(tmp_path / "done"))
    (tmp_path / "alice.sh").write_text(script)
    start_ms = int(time.time() * 1000)
    proc = subprocess.Popen(["sh", str(tmp_path / "alice.sh"), str(start_ms)])
    time.sleep(4)
    (tmp_path / "timeline.stop").touch()
    assert proc.wait(timeout=30) == 0
    times = [float(line.split("\t")[1]) for line in timeline.read_text().splitlines() if line.startswith("R\t")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) >= 3, times
    assert max(gaps) < 0.6 and min(gaps) > 0.4, gaps      # a fixed sleep after each read would give ≈ 0.8 s
