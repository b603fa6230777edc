"""The scheduled pipeline's chain, run locally on recorded results: shards → `lab merge` → `lab compare` with the
last baseline → `lab bisect versions --from-changes`, the last with a fake step function instead of VMs. Plus what
`lab compare` and `lab fetch-baseline` do on their own."""
import io
import json
import zipfile

import pytest

from lab.bisect import FIX, REGRESSION, Probe, Settings, Trial, bisect_versions, requests_from_changes
from lab.compare import compare, series_of
from lab.outcome import Verdict
from lab.results import ResultRecord, RunDir

SERIES = ["mainline-4.19", "debian-6.1", "debian-5.10", "debian-6.12"]
PARAMS = [{"vers": vers, "leases": leases} for vers in ("4.0", "4.1") for leases in ("on", "off")]


def verdict(status: str) -> dict:
    if status == "pass":
        return Verdict("pass", first_new_after=0.4).to_dict()
    if status == "fail":
        return Verdict("fail", reason="estale", first_new_after=25.5, estale_for=25.5).to_dict()
    if status == "error":
        return Verdict.error("boot", "alice did not answer ssh in 120s").to_dict()
    return Verdict.skip("box not found").to_dict()


def record(kernel, params, status, run_id, started, release="6.1.0-50-cloud-amd64") -> ResultRecord:
    cell_id = "/".join([kernel, *(f"{k}={v}" for k, v in params.items())])
    return ResultRecord(run_id=run_id, cell_id=cell_id, kernel=kernel, params=dict(params), verdict=verdict(status),
                        expected="pass", started=started, duration_s=9.0, worker="main", observation=None,
                        logs=f"logs/{cell_id.replace('/', '__')}", kernel_release=release)


def baseline_status(kernel, params):
    """Yesterday's table: the 4.19 row fails vers=4.0, every modern kernel fails vers=4.1."""
    if kernel == "mainline-4.19":
        return "fail" if params["vers"] == "4.0" else "pass"
    return "fail" if params["vers"] == "4.1" else "pass"


#: tonight's differences: debian-6.12 regressed on vers=4.0/leases=on, passes vers=4.1/leases=off again,
#: and one cell could not be observed (a lab error is no data, not a change)
TONIGHT = {("debian-6.12", "4.0", "on"): "fail", ("debian-6.12", "4.1", "off"): "pass",
           ("debian-5.10", "4.0", "off"): "error"}


def tonight_status(kernel, params):
    return TONIGHT.get((kernel, params["vers"], params["leases"]), baseline_status(kernel, params))


def write_run(path, status_of, run_id, day, kernels=SERIES):
    run = RunDir(path)
    run.path.mkdir(parents=True)
    for n, kernel in enumerate(kernels):
        for m, params in enumerate(PARAMS):
            started = f"2026-11-{day}T03:{n:02d}:{m:02d}+00:00"
            run.append(record(kernel, params, status_of(kernel, params), run_id, started))
    run.write_meta({"kernels": SERIES, "run_id": run_id})   # `lab run --kernels X` records every row of the matrix
    return run


@pytest.fixture
def chain(tmp_path):
    baseline = write_run(tmp_path / "baseline", baseline_status, "night-1", 22)
    shards = [write_run(tmp_path / "shards" / k / "night-2", tonight_status, "night-2", 23, [k]) for k in SERIES]
    return tmp_path, baseline, shards


def test_shard_merge_compare_bisect(chain, lab_cli):
    tmp_path, baseline, shards = chain
    merged = tmp_path / "merged"
    r = lab_cli("merge", str(merged), *(str(s.path) for s in shards))
    assert r.returncode == 0, r.stderr
    assert len(RunDir(merged).records()) == len(SERIES) * len(PARAMS)

    changes = tmp_path / "changes.json"
    r = lab_cli("compare", str(baseline.path), str(merged), "--output", str(changes))
    assert r.returncode == 1, r.stderr            # a real change: the CI job is marked, the bisect job starts
    assert "CHANGED debian-6.12/vers=4.0/leases=on: ✓ new after 0.4s → ✗ ESTALE 25.5s" in r.stdout
    assert "NO DATA debian-5.10/vers=4.0/leases=off" in r.stdout
    assert "2 changed, 0 flaky, 1 without data, 0 added, 0 removed, 13 unchanged" in r.stdout
    doc = json.loads(changes.read_text())
    plans = {c["cell"]: c["bisect"] for c in doc["changes"]}
    # vers=4.0/leases=on: debian-5.10 still passes tonight, so the regression lies between it and debian-6.12
    assert plans["debian-6.12/vers=4.0/leases=on"] == {"terms": "regression", "kernels": ["debian-5.10", "debian-6.12"]}
    # vers=4.1/leases=off now passes: a fix; debian-5.10 still fails it
    assert plans["debian-6.12/vers=4.1/leases=off"] == {"terms": "fixed/unfixed",
                                                        "kernels": ["debian-5.10", "debian-6.12"]}

    # the bisect job, with a fake step function that answers from tonight's recorded results
    tonight = {r.cell_id: r.status for r in RunDir(merged).records()}
    runs = []

    def run_cell(kernel, params):
        runs.append(kernel)
        cell = "/".join([kernel, *(f"{k}={v}" for k, v in params.items())])
        return Trial(tonight[cell], "recorded", 9.0)

    requests, notes = requests_from_changes(doc)
    assert notes == [] and [r.terms for r in requests] == [REGRESSION, FIX]
    for request in requests:
        report = bisect_versions(request, Probe(run=lambda k, p=request.params: run_cell(k, p)), Settings(repeat=3))
        assert report.bisection.culprit == "debian-6.12" and report.outcome == "confirmed", report.to_dict()
    assert runs.count("debian-6.12") == 6 and runs.count("debian-5.10") == 6, "only the reruns of confirmation"


def test_a_change_without_a_range_is_reported_not_bisected(tmp_path):
    """Every earlier kernel also fails: the change is within the kernel itself (a new package), nothing to halve."""
    base = write_run(tmp_path / "a", lambda k, p: "pass", "n1", 22)
    new = write_run(tmp_path / "b", lambda k, p: "fail" if k == "mainline-4.19" else "pass", "n2", 23)
    result = compare(base.records(), new.records(), series_of(new.records(), new.meta()))
    change = next(c for c in result.changes if c["cell"] == "mainline-4.19/vers=4.0/leases=on")
    assert change["bisect"] is None and "mainline-4.19 itself, same kernel release" in change["note"]
    requests, notes = requests_from_changes(result.to_dict())
    assert requests == [] and len(notes) == 4


def test_compare_added_removed_and_no_change(tmp_path, lab_cli):
    base = write_run(tmp_path / "a", baseline_status, "n1", 22, SERIES[:3])
    new = write_run(tmp_path / "b", baseline_status, "n2", 23, SERIES[1:])
    result = compare(base.records(), new.records(), SERIES)
    assert not result.changed and result.unchanged == 8
    assert {c["kernel"] for c in result.added} == {"debian-6.12"}
    assert {c["kernel"] for c in result.removed} == {"mainline-4.19"}
    r = lab_cli("compare", str(base.path), str(new.path))
    assert r.returncode == 0, r.stderr


def test_compare_first_run_without_baseline(tmp_path, lab_cli):
    new = write_run(tmp_path / "b", baseline_status, "n2", 23)
    r = lab_cli("compare", str(tmp_path / "missing"), str(new.path), "--allow-missing-baseline", "-o",
            str(tmp_path / "changes.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "changes.json").read_text())["changes"] == []
    r = lab_cli("compare", str(tmp_path / "missing"), str(new.path))
    assert r.returncode == 2 and "--allow-missing-baseline" in r.stderr


def test_fetch_baseline_unpacks_an_artifact_zip_and_a_missing_one_is_fine(tmp_path, lab_cli):
    run = write_run(tmp_path / "merged", baseline_status, "n1", 22)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for f in run.path.iterdir():
            z.write(f, f"merged/{f.name}")
        z.writestr("compatibility.md", "# table\n")
    archive = tmp_path / "artifacts.zip"
    archive.write_bytes(buffer.getvalue())
    r = lab_cli("fetch-baseline", archive.as_uri(), "--dest", str(tmp_path / "baseline"), "-H", "JOB-TOKEN: x")
    assert r.returncode == 0, r.stderr
    assert len(RunDir(tmp_path / "baseline" / "merged").records()) == len(SERIES) * len(PARAMS)
    r = lab_cli("fetch-baseline", (tmp_path / "nothing.zip").as_uri(), "--dest", str(tmp_path / "none"))
    assert r.returncode == 3 and r.stderr.count("\n") == 1   # a file:// that is not there is not an HTTP 404


# ---- the series by kernel version, and flaky cells -----------------------------------------------------------

def test_series_is_ordered_by_release_version_not_table_order():
    from lab.compare import series_of, version_key
    assert version_key("6.1.0-28-amd64") == (6, 1, 0) and version_key("4.19.1") == (4, 19, 1)
    assert version_key("centos7-3.10") == (3, 10, 0) and version_key("debian-6.12") == (6, 12, 0)
    assert version_key("3.10.0-862.11.6.el7.x86_64") == (3, 10, 0) and version_key("nfslab-box") is None
    table = ["debian-6.12", "debian-6.1", "mainline-4.19-fix", "mainline-4.19", "debian-5.10", "odd", "centos7-3.10"]
    releases = {"debian-6.12": "6.12.9-amd64", "debian-6.1": "6.1.0-28-cloud-amd64", "mainline-4.19": "4.19.1",
                "mainline-4.19-fix": "4.19.1", "debian-5.10": "5.10.0-33-cloud-amd64", "odd": ""}
    records = [record(k, PARAMS[0], "pass", "n", "2026-11-23T03:00:00+00:00", release=r) for k, r in releases.items()]
    series = series_of(records, {"kernels": table})
    # centos7-3.10 was skipped (no release): its name gives 3.10; 4.19 ± fix tie, so table order decides
    assert series == ["centos7-3.10", "mainline-4.19-fix", "mainline-4.19", "debian-5.10", "debian-6.1",
                      "debian-6.12", "odd"]


def test_a_regression_is_bisected_along_versions(tmp_path):
    """Table order puts debian-6.12 first; by version, debian-6.1 is the nearest older kernel that still passes."""
    table = ["debian-6.12", "debian-5.10", "debian-6.1"]
    release = {"debian-6.12": "6.12.9-amd64", "debian-5.10": "5.10.0-33-amd64", "debian-6.1": "6.1.0-28-amd64"}

    def run(path, status_of, run_id, day):
        r = RunDir(path)
        r.path.mkdir(parents=True)
        for n, kernel in enumerate(table):
            r.append(record(kernel, PARAMS[0], status_of(kernel), run_id, f"2026-11-{day}T03:0{n}:00+00:00",
                            release=release[kernel]))
        r.write_meta({"kernels": table})
        return r
    base = run(tmp_path / "a", lambda k: "pass", "n1", 22)
    new = run(tmp_path / "b", lambda k: "fail" if k == "debian-6.12" else "pass", "n2", 23)
    result = compare(base.runs(), new.runs(), series_of(new.runs(), new.meta()))
    [change] = result.changes
    assert change["bisect"] == {"terms": "regression", "kernels": ["debian-6.1", "debian-6.12"]}


def flaky_run(path, statuses_of, run_id, day, kernels=SERIES):
    """Three runs per cell; statuses_of(kernel, params) gives the three statuses."""
    run = RunDir(path)
    run.path.mkdir(parents=True)
    for n, kernel in enumerate(kernels):
        for m, params in enumerate(PARAMS):
            for k, status in enumerate(statuses_of(kernel, params), 1):
                r = record(kernel, params, status, run_id, f"2026-11-{day}T03:{n:02d}:{m * 3 + k:02d}+00:00")
                r.repeat, r.repeats = k, 3
                run.append(r)
    run.write_meta({"kernels": kernels, "run_id": run_id})
    return run


def test_a_flaky_cell_is_not_a_change_unless_asked(tmp_path, lab_cli):
    base = flaky_run(tmp_path / "a", lambda k, p: ["pass"] * 3, "n1", 22)
    new = flaky_run(tmp_path / "b", lambda k, p: ["pass", "fail", "fail"] if k == "debian-6.12" and
                    p == PARAMS[0] else ["pass"] * 3, "n2", 23)
    result = compare(base.runs(), new.runs(), SERIES)
    assert not result.changed and [c["cell"] for c in result.flaky] == ["debian-6.12/vers=4.0/leases=on"]
    assert result.flaky[0]["after"]["summary"].startswith("⚠ flaky 2/3 fail")
    r = lab_cli("compare", base.path, new.path)
    assert r.returncode == 0 and "FLAKY   debian-6.12/vers=4.0/leases=on" in r.stdout
    assert "0 changed, 1 flaky" in r.stdout
    # counted as failing (or by majority: 2 of 3 failed), it is a regression with a bisect from debian-5.10
    for policy in ("fail", "majority"):
        result = compare(base.runs(), new.runs(), SERIES, flaky=policy)
        [change] = result.changes
        assert change["bisect"] == {"terms": "regression", "kernels": ["debian-5.10", "debian-6.12"]}
    assert not compare(base.runs(), new.runs(), SERIES, flaky="pass").changed
    r = lab_cli("compare", base.path, new.path, "--flaky", "fail", "--output", tmp_path / "changes.json")
    assert r.returncode == 1 and json.loads((tmp_path / "changes.json").read_text())["flaky_policy"] == "fail"
    assert lab_cli("compare", base.path, new.path, "--flaky", "maybe").returncode == 2
