"""The rename experiment's pure parts: alice's loop script and the parsing of her timeline."""
import pytest

from lab.experiments import rename


def test_timeline_is_relative_to_the_rename_on_the_host_clock():
    # alice's clock runs 100 s ahead of the host; the rename happened at host time 1000.0
    text = ("R\t1099.5\t0\t1 - Old file\n"
            "R\t1100.6\t0\t2 - New file\n"
            "R\t1101.2\t1\tcat: test1.txt: Stale file handle\n"
            "R\t1101.9\t0\n"
            "A\t1131.0\t0\t2 - New file\n")
    reads, after_ls = rename.parse_timeline(text, offset=100.0, t0=1000.0)
    assert [(r.t, r.kind) for r in reads] == [(-0.5, "old"), (0.6, "new"), (1.2, "estale"), (1.9, "error")]
    assert after_ls.kind == "new" and after_ls.t == pytest.approx(31.0)


def test_torn_last_line_is_ignored():
    reads, after_ls = rename.parse_timeline("R\t10.0\t0\t1 - Old file\nR\t10.5", offset=0, t0=10.0)
    assert len(reads) == 1 and after_ls is None


def test_alice_holds_the_file_open_and_reads_by_name():
    script = rename.alice_script(rename.RenameSettings(duration=30, interval=0.5), stat_before_open=False)
    assert "exec 3< test1.txt" in script           # the long-lived open of the seed
    assert "cat test1.txt" in script                # each read opens by name
    assert "sleep 0.5" in script
    assert "stat test1.txt" not in script
    assert "ls -l" in script                        # the ls that clears stale state in the seed


def test_stat_before_open_axis_changes_the_loop():
    script = rename.alice_script(rename.RenameSettings(duration=30, interval=0.5), stat_before_open=True)
    assert "stat test1.txt >/dev/null" in script


def reads(*pairs):
    from lab.outcome import Read
    return [Read(t, kind) for t, kind in pairs]


def test_settled_needs_unbroken_new_data_for_settle_seconds():
    assert rename.settled(reads((-0.5, "old"), (0.5, "new"), (3.0, "new"), (5.6, "new")), settle=5)
    assert not rename.settled(reads((0.5, "new"), (3.0, "new")), settle=5)
    # ESTALE in between restarts the clock
    assert not rename.settled(reads((0.5, "new"), (3.0, "estale"), (5.6, "new"), (8.0, "new")), settle=5)
    assert rename.settled(reads((0.5, "estale"), (3.0, "new"), (8.1, "new")), settle=5)
    assert not rename.settled(reads((0.5, "old"), (30.0, "old")), settle=5)
    assert not rename.settled(reads((0.5, "new"), (30.0, "new")), settle=0)   # early stop off
