"""`pytest --matrix` collection: one test per cell, grouped by kernel, expected failures strict-xfail."""
import subprocess
import sys

from lab.paths import DEFAULT_MATRIX


def collect(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_matrix_collects_one_test_per_cell(tmp_path):
    r = collect(f"--matrix={DEFAULT_MATRIX}", "--kernels", "debian-6.1,mainline-4.19", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    ids = [l for l in r.stdout.splitlines() if "vers=" in l]
    assert len(ids) == 8
    assert any(l.endswith("debian-6.1/vers=4.0/leases=on") for l in ids)
    assert "8 tests collected" in r.stdout


def test_without_matrix_no_cells_are_collected(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    r = collect(cwd=tmp_path)
    assert "vers=" not in r.stdout and "1 test collected" in r.stdout


def test_bad_kernel_is_a_usage_error(tmp_path):
    r = collect(f"--matrix={DEFAULT_MATRIX}", "--kernels", "nope", cwd=tmp_path)
    assert r.returncode == 4
    assert "unknown kernel 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_cells_carry_group_and_strict_xfail(pytester_items):
    by_id = {item.cell.id: item for item in pytester_items}
    item = by_id["mainline-4.19/vers=4.0/leases=on"]
    assert item.get_closest_marker("xdist_group").args == ("mainline-4.19",)
    xfail = item.get_closest_marker("xfail")
    assert xfail.kwargs["strict"] is True and xfail.kwargs["raises"] is AssertionError
    assert by_id["mainline-4.19/vers=4.1/leases=on"].get_closest_marker("xfail") is None
