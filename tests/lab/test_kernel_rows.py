"""The rows that prove the fix, built and booted for real: mainline 4.19.1 without and with be189f7e (full builds
from kernel.org or a mirror), and Debian 6.1 with be189f7e reverted (module-only build). Only the cells that prove the
difference run (vers=4.0, leases on), to keep CI's real-VM time within budget; `lab run` runs them all."""
from __future__ import annotations

import pytest

from lab.cleanup import clean_everything
from lab.paths import DEFAULT_MATRIX
from lab.results import RunDir
from lab.runner import Runner
from lab.spec import Cell, load_matrix

from .conftest import leftovers


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    matrix = load_matrix(DEFAULT_MATRIX)
    runner = Runner(matrix, RunDir.create(tmp_path_factory.mktemp("rows")), progress=print)
    try:
        runner.prepare()
        cells = ["mainline-4.19/vers=4.0/leases=on", "mainline-4.19-fix/vers=4.0/leases=on",
                 "debian-6.1-nofix/vers=4.0/leases=on"]
        yield {c: runner.run_cell(Cell.from_id(c)) for c in cells}
    finally:
        runner.close()
        clean_everything()
    assert leftovers() == []


def test_mainline_419_serves_stale_state_on_vers40(records):
    r = records["mainline-4.19/vers=4.0/leases=on"]
    assert r.status == "fail", r.verdict
    assert r.kernel_release == "4.19.1"
    assert r.observation["meta"]["mounts"]["alice"]["vers"] == "4.0"


def test_be189f7e_alone_makes_vers40_pass_on_419(records):
    r = records["mainline-4.19-fix/vers=4.0/leases=on"]
    assert r.status == "pass", r.verdict
    assert r.kernel_release == "4.19.1"


def test_reverting_be189f7e_on_61_brings_the_bug_back(records):
    r = records["debian-6.1-nofix/vers=4.0/leases=on"]
    assert r.status == "fail", r.verdict
    assert "/updates/" in r.observation["meta"]["nfs_module"]    # the rebuilt module, not the stock one
