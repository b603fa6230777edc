"""bench/concurrency.py's pure parts: the ratio, verdict agreement cell by cell, CPU figures from /proc/stat, the
read gaps and boot times taken from the records, the summary, the teardown by arm, the plan of --dry-run. Nothing
here boots or starts anything."""
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


def observed(cell, status, times, k=1, timings=None):
    r = rec(cell, status, k, 2)
    r.observation = {"reads": [{"t": t, "kind": "new", "text": ""} for t in times],
                     "meta": {"timings": timings or {}}}
    return r


def test_read_gaps_of_the_passing_runs():
    records = [observed("a/x", "pass", [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5]),                 # 0.5 s all along
               observed("b/x", "pass", [-2.0, -1.5, -0.2, 0.3, 0.8], k=2),                   # one 1.3 s gap
               observed("c/x", "fail", [-2.0, 3.0]),                                          # failing: not counted
               rec("d/x", "pass"), observed("e/x", "pass", [0.1])]                            # no reads, one read
    gaps = C.read_gaps(records)
    assert gaps["passing_runs"] == 2
    assert gaps["max_s"] == 1.3 and gaps["max_in"] == "b/x#2"
    assert gaps["median_of_max_s"] == pytest.approx(0.9) and gaps["median_s"] == 0.5
    assert C.read_gaps([rec("c/x", "fail")])["max_s"] is None


def test_boot_times_are_the_first_runs_of_each_topology():
    records = [observed("a/x", "pass", [], timings={"up_s": 30.0, "create_s": 34.0}),                 # a boot
               observed("a/y", "pass", [], timings={"up_s": 30.0, "revert_s": 3.1, "ready_s": 2.0}),  # reverted
               observed("b/x", "fail", [], timings={"up_s": 52.5}), rec("c/x", "error")]
    assert C.boot_times(records) == {"boots": 2, "median_up_s": 41.2, "max_up_s": 52.5}
    assert C.boot_times([])["boots"] == 0


def test_quiet_waits_add_up_each_phase_and_count_a_boot_once():
    records = [observed("a/x", "pass", [], timings={"up_s": 30.0, "quiet_boot_s": 4.0, "quiet_nfs_s": 1.5}),
               observed("a/y", "pass", [], timings={"up_s": 30.0, "quiet_boot_s": 4.0, "revert_s": 3.1,
                                                    "quiet_reset_s": 9.5, "quiet_nfs_s": 0.0}),
               observed("b/x", "fail", [], timings={"up_s": 52.5}), rec("c/x", "error")]
    assert C.quiet_waits(records) == {"boot_s": 4.0, "reset_s": 9.5, "nfs_s": 1.5, "max_s": 9.5}
    assert C.quiet_waits([]) == {"boot_s": 0.0, "reset_s": 0.0, "nfs_s": 0.0, "max_s": 0.0}


def test_swap_pages_between_two_readings():
    assert C.swap_pages({"pswpin": 5, "pswpout": 7}, {"pswpin": 5, "pswpout": 19}) == {"pswpin": 0, "pswpout": 12}


def test_the_summary_names_every_figure_of_each_arm():
    arm = {"jobs": 3, "wall_s": 1871.0, "cpu": {"busy_s": 3000.0, "mean_cores_busy": 1.6, "cpus": 2},
           "memory": {"peak_vm_rss_sum_mib": 3100, "peak_vms": 9, "min_mem_available_mib": 19000,
                      "max_load_1m": 4.2},
           "swap_pages": {"pswpin": 0, "pswpout": 0},
           "read_gaps": C.read_gaps([observed("b/x", "pass", [-2.0, -1.5, -0.2], k=2)]),
           "boots": C.boot_times([observed("b/x", "pass", [], timings={"up_s": 30.0})]),
           "quiet_waits": C.quiet_waits([observed("b/x", "pass", [], timings={"quiet_reset_s": 2.5})])}
    result = {"arms": {"sequential": {**arm, "jobs": 1}, "concurrent": arm}, "ratio": 2.4, "all_agree": True,
              "swap": {"used": False}, "agreement": []}
    text = "\n".join(C.summary_lines(result))
    assert "read gaps of 1 passing runs: max 1.3s (b/x#2)" in text and "vagrant up median 30.0s" in text
    assert "boots 0.0s, resets 2.5s, NFS set-ups 0.0s; longest wait 2.5s" in text
    assert "VM RSS peak 3100 MiB (9 VMs)" in text and "swapped out 0 pages" in text and "ratio 2.4×" in text
    old = {k: v for k, v in arm.items() if k not in ("read_gaps", "boots", "swap_pages")}   # an interrupted arm
    assert "read gaps of 0 passing runs: max —" in "\n".join(C.summary_lines({**result, "arms": {"c": old}}))


def test_teardown_removes_each_arms_topologies_by_its_run_directory(tmp_path):
    from types import SimpleNamespace
    calls = []
    pools = [SimpleNamespace(host="h", run_dir=SimpleNamespace(path=tmp_path / arm),
                             close=lambda arm=arm: calls.append(("close", arm))) for arm in C.ARMS]
    C.teardown(pools, lambda host, run_dir, keep_host: calls.append((run_dir.name, keep_host)) or [])
    assert calls == [("close", "sequential"), ("close", "concurrent"), ("sequential", True), ("concurrent", False)]
    calls.clear()
    C.teardown(pools, lambda host, run_dir, keep_host: calls.append((run_dir.name, keep_host)) or [], keep_host=True)
    assert [c[1] for c in calls if c[0] != "close"] == [True, True]
