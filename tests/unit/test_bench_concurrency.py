"""bench/concurrency.py's pure parts: the ratio, verdict agreement cell by cell, CPU figures from /proc/stat, the
plan of --dry-run. Nothing here boots or starts anything."""
import pytest

from bench import concurrency as C
from lab.outcome import Verdict
from lab.results import ResultRecord


def rec(cell, status, k=1, n=1):
    v = {"pass": Verdict("pass", first_new_after=0.5), "fail": Verdict("fail", reason="estale", estale_for=27.5),
         "error": Verdict.error("boot", "x")}[status]
    return ResultRecord(run_id="r", cell_id=cell, kernel=cell.split("/")[0], params={}, verdict=v.to_dict(),
                        expected="pass", started=f"2026-11-23T10:00:0{k}+00:00", duration_s=1.0, worker="w1",
                        observation=None, logs="", repeat=k, repeats=n)


def test_ratio():
    assert C.ratio(1800, 450) == 4.0
    assert C.ratio(1800, 0) is None and C.ratio(None, 450) is None


def test_agreement_cell_by_cell_by_the_tables_rule():
    seq = [rec("a/x", "pass"), rec("b/x", "fail", 1, 2), rec("b/x", "fail", 2, 2), rec("c/x", "pass")]
    con = [rec("a/x", "pass"), rec("b/x", "fail", 1, 2), rec("b/x", "pass", 2, 2)]
    rows = {r["cell"]: r for r in C.agreement(seq, con)}
    assert rows["a/x"]["agree"] and rows["a/x"]["sequential"] == rows["a/x"]["concurrent"] == "pass"
    assert not rows["b/x"]["agree"] and rows["b/x"]["concurrent"] == "flaky"
    assert rows["c/x"]["concurrent"] == "missing" and not rows["c/x"]["agree"]
    lines = C.verdict_lines(list(rows.values()))
    assert lines[0].split()[:3] == ["cell", "sequential", "concurrent"] and lines[2].endswith("NO")


def test_cpu_figures_from_proc_stat():
    before = "cpu  100 0 100 1000 50 0 0 0 0 0\ncpu0 1 1 1 1\n"
    after = "cpu  300 0 300 1300 50 0 0 0 0 0\n"
    busy, total = C.cpu_times(before)
    assert (busy, total) == (200, 1250)
    fig = C.cpu_figures(before, after, wall_s=2.0, cpus=2)
    assert fig["utilisation"] == pytest.approx(400 / 700, abs=1e-3)
    assert fig["busy_s"] > 0 and fig["cpus"] == 2


def test_dry_run_prints_the_plan_and_starts_nothing(capsys, monkeypatch):
    monkeypatch.setattr(C, "qemu_processes", lambda: {})
    assert C.main(["--dry-run", "-k", "debian-6.1", "--jobs", "3", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 cells × 2 = 8 runs per arm" in out and "concurrent (3 workers)" in out
    assert "model ratio" in out and "debian-6.1:" in out


def test_bad_arguments_are_refused(capsys):
    for argv in (["--jobs", "0"], ["--repeats", "0"], ["-k", "no-such-kernel"], ["--cell", "vers=9"]):
        with pytest.raises(SystemExit) as e:
            C.parse_args(argv)
        assert e.value.code == 2


def test_estimate_of_both_arms():
    from lab.session import runs_to_do
    from lab.spec import Cell
    cells = [Cell(k, {"vers": v}) for k in "ab" for v in ("4.0", "4.1")]
    seq, con = C.estimate_s(runs_to_do(cells, 2, set()), 4, lambda c: 20.0)
    assert seq > con > 0
