"""lab/results/: append-only records survive crashes, merge across workers and shards, and drive resume."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from lab.outcome import Verdict
from lab.results import ResultRecord, RunDir, merge, new_run_id


def record(cell_id: str, status: str = "pass", started: str = "2026-11-23T10:45:00+00:00", expected: str = "pass",
           worker: str = "main") -> ResultRecord:
    kernel, *pairs = cell_id.split("/")
    verdict = Verdict.error("mount", "timed out") if status == "error" else Verdict(status=status)
    return ResultRecord(run_id="r1", cell_id=cell_id, kernel=kernel, params=dict(p.split("=") for p in pairs),
                        verdict=verdict.to_dict(), expected=expected, started=started, duration_s=31.5,
                        worker=worker, observation=None, logs=f"logs/{cell_id.replace('/', '__')}")


def test_run_id_shape_and_create(tmp_path):
    run_id = new_run_id(datetime(2026, 11, 23, 10, 45, 0, tzinfo=timezone.utc))
    assert re.fullmatch(r"20261123-104500-[0-9a-f]{4}", run_id)
    run = RunDir.create(tmp_path / "runs")
    assert run.path.parent == tmp_path / "runs" and run.path.is_dir()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run.run_id)
    assert RunDir.create(tmp_path / "runs", "fixed").path == tmp_path / "runs" / "fixed"


def test_record_round_trip_and_mismatch():
    r = record("debian-6.1/vers=4.0", status="fail", expected="pass")
    assert ResultRecord.from_json(r.to_json()) == r
    assert r.mismatch == "regression"
    assert record("a/vers=4.0", status="pass", expected="fail").mismatch == "unexpected-pass"
    assert record("a/vers=4.0", status="fail", expected="fail").mismatch is None
    assert record("a/vers=4.0", status="error", expected="fail").mismatch is None
    assert record("a/vers=4.0", status="skip", expected="pass").mismatch is None


def test_append_writes_one_line_per_record_to_the_worker_file(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path, "r1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    path = run.append(record("a/vers=4.0"))
    run.append(record("a/vers=4.1"))
    assert path.name == "results-gw1.jsonl"
    lines = path.read_text().splitlines()
    assert [json.loads(line)["cell_id"] for line in lines] == ["a/vers=4.0", "a/vers=4.1"]
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert run.append(record("b/vers=4.0")).name == "results-main.jsonl"
    assert {r.cell_id for r in run.records()} == {"a/vers=4.0", "a/vers=4.1", "b/vers=4.0"}


def test_torn_last_line_is_skipped_with_a_warning_and_the_next_append_survives(tmp_path, caplog):
    run = RunDir.create(tmp_path, "r1")
    run.append(record("a/vers=4.0"))
    with run.results_file().open("a") as f:
        f.write(record("a/vers=4.1").to_json()[:40])  # a crash in the middle of a write
    assert [r.cell_id for r in run.records()] == ["a/vers=4.0"]
    [warning] = caplog.messages
    assert re.fullmatch(r".*results-main.jsonl: 1 damaged line skipped \(first: line 2: not valid JSON .*\)", warning)
    caplog.clear()
    run.append(record("a/vers=4.1"))  # the resumed run appends after the torn line
    assert sorted(r.cell_id for r in run.records()) == ["a/vers=4.0", "a/vers=4.1"]
    assert len(caplog.messages) == 1


def test_latest_started_wins_whatever_the_file_order(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    run.append(record("a/vers=4.0", status="fail", started="2026-11-23T11:00:00+00:00"), worker="gw0")
    run.append(record("a/vers=4.0", status="error", started="2026-11-23T10:00:00+00:00"), worker="gw1")
    [only] = run.records()
    assert only.status == "fail"
    assert len(run.all_records()) == 2


def test_finished_cells_leave_errors_for_resume(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    run.append(record("a/vers=4.0", status="pass"))
    run.append(record("a/vers=4.1", status="fail"))
    run.append(record("b/vers=4.0", status="skip"))
    run.append(record("b/vers=4.1", status="error"))
    run.append(record("c/vers=4.0", status="pass", started="2026-11-23T10:00:00+00:00"))
    run.append(record("c/vers=4.0", status="error", started="2026-11-23T11:00:00+00:00"))  # re-run broke
    assert run.finished_cells() == {"a/vers=4.0", "a/vers=4.1", "b/vers=4.0"}


def test_meta_is_written_atomically(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    assert run.meta() == {}
    run.write_meta({"matrix": "matrix.yaml", "command": "lab run"})
    run.write_meta({"matrix": "matrix.yaml", "command": "lab run", "finished": "2026-11-23T11:00:00+00:00"})
    assert run.meta()["finished"] == "2026-11-23T11:00:00+00:00"
    assert [p.name for p in run.path.iterdir()] == ["run.json"]  # no temporary file left behind


def test_merge_two_partial_runs(tmp_path):
    shard1 = RunDir.create(tmp_path, "shard1")
    shard2 = RunDir.create(tmp_path, "shard2")
    shard1.append(record("a/vers=4.0", status="pass"))
    shard1.append(record("a/vers=4.1", status="error", started="2026-11-23T10:00:00+00:00"))
    shard2.append(record("a/vers=4.1", status="fail", started="2026-11-23T10:30:00+00:00"))
    shard2.append(record("b/vers=4.0", status="pass"), worker="gw3")
    (shard2.path / "logs" / "a__vers=4.1").mkdir(parents=True)
    (shard2.path / "logs" / "a__vers=4.1" / "alice.log").write_text("cat test1.txt\n")
    shard1.write_meta({"matrix": "matrix.yaml"})

    merged = merge(tmp_path / "merged", [shard1.path, shard2.path])
    by_cell = {r.cell_id: r.status for r in merged.records()}
    assert by_cell == {"a/vers=4.0": "pass", "a/vers=4.1": "fail", "b/vers=4.0": "pass"}
    assert len((merged.path / "results-merged.jsonl").read_text().splitlines()) == 3
    assert (merged.path / "logs" / "a__vers=4.1" / "alice.log").read_text() == "cat test1.txt\n"
    assert merged.meta()["matrix"] == "matrix.yaml"
    assert len(merged.meta()["merged_from"]) == 2
    assert merged.finished_cells() == {"a/vers=4.0", "a/vers=4.1", "b/vers=4.0"}

    again = merge(tmp_path / "merged", [shard1.path, shard2.path])  # idempotent
    assert len((again.path / "results-merged.jsonl").read_text().splitlines()) == 3


def test_reading_does_not_warn_on_clean_files(tmp_path, caplog):
    run = RunDir.create(tmp_path, "r1")
    run.append(record("a/vers=4.0"))
    assert len(run.records()) == 1
    assert caplog.messages == []


def test_meta_keeps_the_matrix_axis_order(tmp_path):
    from lab.results import RunDir
    run = RunDir.create(tmp_path)
    run.write_meta({"axes": {"vers": ["4.0", "4.1"], "leases": ["on", "off"]}, "kernels": ["b", "a"]})
    assert list(run.meta()["axes"]) == ["vers", "leases"]
    assert run.meta()["kernels"] == ["b", "a"]


# ---- repeats: one record per run of a cell --------------------------------------------------------------------

def run_record(cell_id: str, repeat: int, repeats: int, status: str = "pass",
               started: str = "2026-11-23T10:45:00+00:00") -> ResultRecord:
    r = record(cell_id, status=status, started=started)
    r.repeat, r.repeats = repeat, repeats
    return r


def test_a_record_without_repeat_fields_is_run_1_of_1():
    line = json.loads(record("a/vers=4.0").to_json())
    del line["repeat"], line["repeats"]
    old = ResultRecord.from_json(json.dumps(line))
    assert (old.repeat, old.repeats) == (1, 1)
    again = run_record("a/vers=4.0", 2, 3)
    assert ResultRecord.from_json(again.to_json()) == again


def test_runs_keep_every_repeat_and_the_latest_of_each(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    run.append(run_record("a/vers=4.0", 1, 3, "pass", "2026-11-23T10:00:00+00:00"))
    run.append(run_record("a/vers=4.0", 2, 3, "error", "2026-11-23T10:01:00+00:00"))
    run.append(run_record("a/vers=4.0", 3, 3, "fail", "2026-11-23T10:02:00+00:00"))
    run.append(run_record("a/vers=4.0", 2, 3, "pass", "2026-11-23T10:03:00+00:00"), worker="gw1")  # resumed
    assert [(r.repeat, r.status) for r in run.runs()] == [(1, "pass"), (3, "fail"), (2, "pass")]
    assert len(run.records()) == 1


def test_resume_counts_a_cell_done_only_when_all_its_repeats_have_a_kernel_result(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    run.append(run_record("a/vers=4.0", 1, 3, "pass"))
    run.append(run_record("a/vers=4.0", 2, 3, "error"))
    run.append(run_record("a/vers=4.0", 3, 3, "fail"))
    run.append(run_record("b/vers=4.0", 1, 3, "skip"))
    run.append(run_record("b/vers=4.0", 2, 3, "skip"))
    run.append(run_record("b/vers=4.0", 3, 3, "skip"))
    run.append(record("c/vers=4.0"))                                  # an old run with one repeat
    assert run.finished_cells(repeats=3) == {"b/vers=4.0"}
    assert run.finished_cells(repeats=1) == {"a/vers=4.0", "b/vers=4.0", "c/vers=4.0"}
    assert ("a/vers=4.0", 2) not in run.finished_runs() and ("a/vers=4.0", 3) in run.finished_runs()


def test_merge_keeps_every_repeat(tmp_path):
    shard = RunDir.create(tmp_path, "shard")
    for k in (1, 2, 3):
        shard.append(run_record("a/vers=4.0", k, 3, "pass", f"2026-11-23T10:0{k}:00+00:00"))
    merged = merge(tmp_path / "merged", [shard.path])
    assert sorted(r.repeat for r in merged.runs()) == [1, 2, 3]


def test_each_run_of_several_has_its_own_log_directory(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    assert run.log_dir("a/vers=4.0") == run.path / "logs" / "a__vers=4.0"
    assert run.log_dir("a/vers=4.0", 2, 3) == run.path / "logs" / "a__vers=4.0" / "run-2"
