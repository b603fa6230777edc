"""bench/stability.py: two runs of a matrix compared cell by cell (the criterion of docs/stability.md)."""
import importlib.util
import json
import sys
from pathlib import Path

from lab.aggregate import aggregate
from lab.results import RunDir
from tests.unit.test_aggregate import estale, passing, run, stale_forever

SPEC = importlib.util.spec_from_file_location("stability", Path(__file__).parents[2] / "bench" / "stability.py")
stability = importlib.util.module_from_spec(SPEC)
sys.modules["stability"] = stability   # dataclasses look their module up
SPEC.loader.exec_module(stability)


def cell(*verdicts, name="k/vers=4.1/leases=on", expected="pass"):
    return aggregate([run(v, i, len(verdicts), expected, cell=name) for i, v in enumerate(verdicts, 1)])


def test_same_status_in_both_runs_holds():
    rows = stability.compare_runs([cell(estale(28), estale(28.5), estale(27.9))],
                                  [cell(estale(28.2), estale(28), estale(28.1))])
    assert [r.agreement for r in rows] == ["same"]
    assert stability.holds(rows)


def test_pass_in_one_run_and_fail_in_the_other_breaks_the_criterion():
    rows = stability.compare_runs([cell(passing(0.6), passing(0.7), passing(0.6))],
                                  [cell(estale(1.5), estale(1.6), estale(2.0))])
    assert rows[0].agreement == "changed"
    assert not stability.holds(rows)


def test_a_cell_flaky_in_one_run_is_listed_not_counted_as_a_change():
    rows = stability.compare_runs([cell(passing(0.6), estale(1.5), estale(1.6))],
                                  [cell(estale(1.5), estale(1.6), estale(2.0))])
    assert rows[0].agreement == "flaky"
    assert stability.holds(rows)
    assert "⚠ flaky" in stability.markdown(rows, "a", "b")


def test_a_cell_missing_from_one_run_breaks_the_criterion():
    rows = stability.compare_runs([cell(passing(0.6)), cell(passing(0.6), name="k/vers=4.0/leases=on")],
                                  [cell(passing(0.5))])
    assert [r.agreement for r in rows] == ["same", "missing"]
    assert not stability.holds(rows)


def test_spread_text_gives_min_max_of_each_figure_and_never_recovers():
    text = stability.spread_text(cell(estale(27.5), estale(28.5), stale_forever()))
    assert "ESTALE" in text and "never recovers ×1" in text


def test_markdown_escapes_pipes_in_cell_ids():
    rows = stability.compare_runs([cell(passing(0.6), name="k|x/vers=4.1")], [cell(passing(0.6), name="k|x/vers=4.1")])
    assert "k\\|x/vers=4.1" in stability.markdown(rows, "a", "b")


def test_cli_on_two_run_directories(tmp_path, capsys):
    for name, verdict in (("a", estale(28)), ("b", passing(0.6))):
        rd = RunDir(tmp_path / name)
        rd.path.mkdir()
        rd.append(run(verdict, 1, 1))
    out = tmp_path / "cmp.json"
    assert stability.main([str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(out)]) == 1
    assert json.loads(out.read_text())["counts"]["changed"] == 1
    assert "does not hold" in capsys.readouterr().out


def test_cli_rejects_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert stability.main([str(tmp_path), str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
