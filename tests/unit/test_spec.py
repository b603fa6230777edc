"""spec.py and axes.py: the default matrix expands as documented, every mistake points at its line."""
from __future__ import annotations

from pathlib import Path

import pytest

from lab import axes
from lab.experiments import EXPERIMENTS
from lab.paths import DEFAULT_MATRIX
from lab.spec import (Cell, SpecError, kernel_files, load_kernel, load_matrix, parse_duration)

DATA = Path(__file__).resolve().parent / "data"
KERNELS = DATA / "kernels"

EXPECTED_KERNELS = ["centos7-3.10", "ubuntu1604-4.4", "mainline-4.19", "mainline-4.19-fix", "debian-6.1",
                    "debian-6.1-nofix", "debian-6.1-nofix-lookup", "debian-5.10", "debian-6.12"]


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(DEFAULT_MATRIX)


# ---- the default matrix --------------------------------------------------------------------------------------------

def test_default_matrix_has_every_kernel_in_order(matrix):
    assert matrix.kernel_names == EXPECTED_KERNELS
    assert matrix.server == "debian-6.1"
    assert matrix.axes == {"vers": ["4.0", "4.1"], "leases": ["on", "off"]}


def test_default_matrix_expands_to_36_cells_kernel_major(matrix):
    cells = matrix.cells()
    assert len(cells) == 36
    assert {c.kernel for c in cells} == set(EXPECTED_KERNELS)
    assert [c.id for c in cells[:4]] == [
        "centos7-3.10/vers=4.0/leases=on", "centos7-3.10/vers=4.0/leases=off",
        "centos7-3.10/vers=4.1/leases=on", "centos7-3.10/vers=4.1/leases=off"]
    assert len({c.id for c in cells}) == 36


def test_default_experiment_durations_are_seconds(matrix):
    e = matrix.experiment
    assert (e.name, e.duration, e.interval, e.pass_within, e.repeats, e.settle) == ("rename", 60, 0.5, 2, 1, 5)
    assert e.name in EXPERIMENTS


def test_history_is_encoded_in_expectations(matrix):
    v40 = {"vers": "4.0", "leases": "on"}
    v41 = {"vers": "4.1", "leases": "off"}
    fails = {k.name for k in matrix.kernels if k.expected(v40) == "fail"}
    assert fails == {"centos7-3.10", "ubuntu1604-4.4", "mainline-4.19", "debian-6.1-nofix",
                     "debian-6.1-nofix-lookup"}
    assert all(k.expected(v41) == "pass" for k in matrix.kernels)


def test_kernel_sources_of_the_default_specs(matrix):
    assert matrix.kernel("centos7-3.10").source == {
        "name": "centos/7", "version": "1809.01", "kernel_package": "kernel-3.10.0-862.11.6.el7",
        "provider": "libvirt"}
    nofix = matrix.kernel("debian-6.1-nofix-lookup")
    assert nofix.source_kind == "build" and nofix.base == "debian-6.1"
    assert nofix.source["patches"] == ["patches/revert-be189f7e-6.1.patch",
                                       "patches/revert-c7944ebb-lookup-6.1.patch"]
    assert matrix.kernel("mainline-4.19-fix").source["scope"] == "full"
    assert all(k.notes and k.title for k in matrix.kernels)


def test_only_filters_by_kernel_and_unknown_names_are_errors(matrix):
    cells = matrix.cells(only=["debian-6.12", "centos7-3.10"])
    assert [c.kernel for c in cells] == ["centos7-3.10"] * 4 + ["debian-6.12"] * 4
    with pytest.raises(SpecError, match=r"unknown kernel 'centos-7', did you mean 'centos7-3.10'\?.*debian-6.12\)$"):
        matrix.cells(only=["centos-7"])


def test_cell_identity_and_group():
    cell = Cell("debian-6.1", {"vers": "4.0", "leases": "on"})
    assert cell.id == "debian-6.1/vers=4.0/leases=on"
    assert cell.label == "vers=4.0 leases=on"
    assert cell.group == "debian-6.1"
    assert Cell.from_id(cell.id) == cell
    assert len({cell, Cell("debian-6.1", {"vers": "4.0", "leases": "on"})}) == 1


# ---- YAML 1.1 booleans and axis values ---------------------------------------------------------------------------

def test_yaml11_on_off_are_normalised():
    m = load_matrix(DATA / "matrix-ok.yaml", KERNELS)
    assert m.axes == {"vers": ["4.0", "4.1"], "leases": ["on", "off"], "stat_before_open": ["off"]}
    assert m.experiment.interval == 0.5 and m.experiment.pass_within == 1.5 and m.experiment.settle == 2
    assert len(m.cells()) == 3 * 2 * 2
    assert set(m.known) == {"ok-box", "ok-deb", "ok-build"}


def test_first_matching_expectation_wins_and_default_is_pass():
    box = load_kernel(KERNELS / "ok-box.yaml")
    assert box.expect[0].when == {"vers": "4.0", "leases": "on"}  # `on` (a YAML boolean) kept as "on"
    assert box.expect[0].note == "only with leases"
    assert box.expected({"vers": "4.0", "leases": "off"}) == "fail"
    assert box.expected({"vers": "4.1", "leases": "on"}) == "pass"


@pytest.mark.parametrize("name, raw, value", [
    ("leases", True, "on"), ("leases", False, "off"), ("leases", "on", "on"), ("leases", "OFF", "off"),
    ("stat_before_open", "true", "on"), ("vers", 4.1, "4.1"), ("vers", 3, "3"), ("actimeo", 0, "0")])
def test_axis_normalise(name, raw, value):
    handler = axes.axis(name)
    assert handler.normalise(raw) == value
    assert handler.validate(value) is None


@pytest.mark.parametrize("name, value, error", [
    ("vers", "4.3", "unknown mount option 'vers=4.3' (allowed: 3, 4.0, 4.1, 4.2)"),
    ("leases", "maybe", "unknown leases switch 'maybe' (allowed: on, off)"),
    ("actimeo", "-1", "bad mount option 'actimeo=-1' (allowed: a whole number of seconds >= 0)"),
    ("actimeo", "1.5", "bad mount option 'actimeo=1.5' (allowed: a whole number of seconds >= 0)")])
def test_axis_validate(name, value, error):
    assert axes.axis(name).validate(value) == error


def test_cell_setup_collects_what_the_lab_must_do():
    setup = axes.cell_setup({"vers": "4.0", "leases": "off", "actimeo": "0", "stat_before_open": "on"})
    assert setup.mount_options == ["vers=4.0", "actimeo=0"]
    assert setup.server_sysctls == {"fs.leases-enable": "0"}
    assert setup.alice_stat_before_open is True
    assert axes.cell_setup({"leases": "on"}).server_sysctls == {"fs.leases-enable": "1"}
    with pytest.raises(KeyError):
        axes.cell_setup({"nope": "1"})


def test_a_new_axis_is_one_class(monkeypatch, tmp_path):
    class Rsize(axes.Axis):
        name = "rsize"
        allowed = ("4096", "65536")
        what = "mount option"

        def apply(self, value, setup):
            setup.mount_options.append(f"rsize={value}")

    monkeypatch.setitem(axes.AXES, "rsize", Rsize())
    path = tmp_path / "matrix.yaml"
    path.write_text("kernels: [ok-deb]\nserver: ok-deb\naxes:\n  rsize: [4096, 65536]\n"
                    "experiment: {duration: 30s, interval: 0.5s, pass_within: 2s}\n")
    cells = load_matrix(path, KERNELS).cells()
    assert [c.id for c in cells] == ["ok-deb/rsize=4096", "ok-deb/rsize=65536"]
    assert axes.cell_setup(cells[0].params).mount_options == ["rsize=4096"]
    path.write_text(path.read_text().replace("65536", "1"))
    with pytest.raises(SpecError, match=r":4: unknown mount option 'rsize=1' \(allowed: 4096, 65536\)$"):
        load_matrix(path, KERNELS)


def test_matrix_kernel_lookup_and_expected(matrix):
    cell = matrix.cells(only=["mainline-4.19"])[0]
    assert matrix.expected(cell) == "fail"
    assert matrix.kernel("debian-6.1").source_kind == "deb"
    with pytest.raises(SpecError, match="unknown kernel 'nope'"):
        matrix.kernel("nope")


@pytest.mark.parametrize("raw, seconds", [("30s", 30), ("500ms", 0.5), ("1.5s", 1.5), ("2m", 120), (3, 3),
                                          (0.25, 0.25), ("7", 7)])
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["30 seconds", "1.5.0s", "-1s", "s", True, -2, float("nan"), float("inf"), None,
                                 [1]])
def test_parse_duration_rejects(raw):
    with pytest.raises(ValueError):
        parse_duration(raw)


# ---- every error, with its line ------------------------------------------------------------------------------------

def _message(path: Path, kernels_dir: Path | None = KERNELS) -> str:
    with pytest.raises(SpecError) as info:
        if kernels_dir is None:
            load_kernel(path)
        else:
            load_matrix(path, kernels_dir)
    error = info.value
    text = str(error)
    assert "\n" not in text
    assert text.endswith(f":{error.line}: {error.message}" if error.line else f": {error.message}")
    return f"{error.path.name}:{error.line}: {error.message}" if error.line else f"{error.path.name}: {error.message}"


MATRIX_ERRORS = {
    "syntax": "syntax.yaml:2: YAML syntax error: expected ',' or ']', but got ':'",
    "unknown-key": "unknown-key.yaml:3: unknown key 'kernal', did you mean 'kernels'? "
                   "(allowed: kernels, server, axes, experiment, timeouts)",
    "unknown-kernel": "unknown-kernel.yaml:4: unknown kernel 'ok-bxo', did you mean 'ok-box'? "
                      "(allowed: bad-base, ok-box, ok-build, ok-deb)",
    "bad-axis-value": "bad-axis-value.yaml:12: unknown mount option 'vers=4.3' (allowed: 3, 4.0, 4.1, 4.2)",
    "unknown-axis": "unknown-axis.yaml:5: unknown axis 'versoin', did you mean 'vers'? "
                    "(allowed: acdirmin, actimeo, leases, lookupcache, reader, stat_before_open, vers)",
    "bad-duration": "bad-duration.yaml:6: bad duration '30 seconds' for duration "
                    "(allowed: e.g. 30s, 500ms, 1.5s, 2m, or seconds, up to a day)",
    "duplicate-kernel": "duplicate-kernel.yaml:4: kernel 'ok-deb' is listed twice",
    "unknown-server": "unknown-server.yaml:2: unknown server kernel 'debian-7.0' "
                      "(allowed: bad-base, ok-box, ok-build, ok-deb)",
    "bad-leases": "bad-leases.yaml:4: unknown leases switch 'maybe' (allowed: on, off)",
    "bad-actimeo": "bad-actimeo.yaml:4: bad mount option 'actimeo=-1' (allowed: a whole number of seconds >= 0)",
    "unknown-experiment": "unknown-experiment.yaml:5: unknown experiment 'renmae', did you mean 'rename'? "
                          "(allowed: rename, git-packed-refs)",
    "bad-repeats": "bad-repeats.yaml:8: bad repeats '0' (allowed: a whole number from 1 to 1000)",
    # the base is wrong in the kernel file, so that file's line is reported, not the matrix's
    "unknown-base": "bad-base.yaml:5: unknown base kernel 'no-such-kernel' "
                    "(allowed: bad-base, ok-box, ok-build, ok-deb)",
}


@pytest.mark.parametrize("case", sorted(MATRIX_ERRORS))
def test_matrix_errors_point_at_the_line(case):
    assert _message(DATA / "bad-matrix" / f"{case}.yaml") == MATRIX_ERRORS[case]


KERNEL_ERRORS = {
    "zero-sources": "zero-sources.yaml:3: source needs exactly one of deb, image, box, build (found 0)",
    "two-sources": "two-sources.yaml:4: source needs exactly one of deb, image, box, build (found 2)",
    "unknown-expect-key": "unknown-expect-key.yaml:9: unknown axis 'version', did you mean 'vers'? "
                          "(allowed: acdirmin, actimeo, leases, lookupcache, reader, stat_before_open, vers)",
    "bad-verdict": "bad-verdict.yaml:7: unknown verdict 'failed', did you mean 'fail'? (allowed: pass, fail, unknown)",
    "name-mismatch": "name-mismatch.yaml:2: name 'debian-6.1' does not match the file name "
                     "(expected: name-mismatch)",
    "unknown-source-key": "unknown-source-key.yaml:6: unknown key 'pakage', did you mean 'package'? "
                          "(allowed: suite, package, version, file, url, sha256)",
    "bad-scope": "bad-scope.yaml:6: unknown scope 'module:fs/nfsd', did you mean 'module:fs/nfs'? "
                 "(allowed: full, module:fs/nfs)",
    "missing-package": "missing-package.yaml:4: source.box needs 'kernel_package' (required: name, kernel_package)",
    "float-version": "float-version.yaml:6: version must be a string (quote it)",
    "bad-when-value": "bad-when-value.yaml:6: unknown mount option 'vers=4.3' (allowed: 3, 4.0, 4.1, 4.2)",
    # a box row's values end up in a Vagrantfile, a shell script and paths: only the plain names they are pass
    "box-name-injection": "box-name-injection.yaml:5: bad name 'centos/7\" ; system(\"id\") ; \"' (allowed: a box "
                          "name: NAME or ORG/NAME of letters, digits, '.', '_', '-')",
    "box-file-without-version": "box-file-without-version.yaml:6: file needs version (the version the box is added "
                                "as)",
    "box-suite-for-rpm": "box-suite-for-rpm.yaml:8: suite names a Debian suite to fetch the kernel package from, and "
                         "kernel-3.10.0-862.11.6.el7 is not a Debian package",
    "box-unknown-package": "box-unknown-package.yaml:6: no distribution family knows kernel package "
                           "'linux-lts; reboot' (allowed: kernel-*.elN, linux-image-*)",
    "box-file-path": "box-file-path.yaml:7: bad file '../../etc/shadow.box' (allowed: a .box file name, looked up in "
                     "the mirrors and the lab's box directory)",
}


@pytest.mark.parametrize("case", sorted(KERNEL_ERRORS))
def test_kernel_errors_point_at_the_line(case):
    assert _message(DATA / "bad-kernels" / f"{case}.yaml", kernels_dir=None) == KERNEL_ERRORS[case]


def test_error_text_is_file_colon_line_relative_to_cwd(monkeypatch):
    monkeypatch.chdir(DATA)
    with pytest.raises(SpecError) as info:
        load_matrix(DATA / "bad-matrix" / "bad-axis-value.yaml", KERNELS)
    assert str(info.value) == ("bad-matrix/bad-axis-value.yaml:12: unknown mount option 'vers=4.3' "
                               "(allowed: 3, 4.0, 4.1, 4.2)")


def test_missing_files_say_no_such_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_matrix(tmp_path / "matrix.yaml")
    assert str(info.value) == f"{tmp_path / 'matrix.yaml'}: no such file"
    with pytest.raises(SpecError, match=r"nope\.yaml: no such file$"):
        load_kernel(tmp_path / "nope.yaml")


def test_duplicate_kernel_name_across_files(tmp_path):
    spec = (KERNELS / "ok-deb.yaml").read_text()
    (tmp_path / "ok-deb.yaml").write_text(spec)
    (tmp_path / "ok-deb.yml").write_text(spec)
    with pytest.raises(SpecError) as info:
        kernel_files(tmp_path)
    assert info.value.line == 1
    assert info.value.path.name == "ok-deb.yml"
    assert "kernel 'ok-deb' is defined twice" in info.value.message


def test_missing_required_key_and_empty_file(tmp_path):
    path = tmp_path / "matrix.yaml"
    path.write_text("kernels: [ok-deb]\nserver: ok-deb\naxes: {vers: ['4.0']}\n")
    with pytest.raises(SpecError) as info:
        load_matrix(path, KERNELS)
    assert (info.value.line, info.value.message) == (1, "a matrix needs 'experiment' "
                                                        "(required: kernels, server, axes, experiment)")
    path.write_text("")
    with pytest.raises(SpecError, match="a matrix must be a mapping"):
        load_matrix(path, KERNELS)


def test_a_cell_filter_names_axis_values_of_the_matrix():
    from lab.spec import parse_cell_filter
    axes = {"vers": ["4.0", "4.1"], "leases": ["on", "off"]}
    assert parse_cell_filter("vers=4.1,leases=on", axes) == {"vers": "4.1", "leases": "on"}
    assert parse_cell_filter("leases=on/vers=4.1", axes) == {"vers": "4.1", "leases": "on"}   # a cell id's spelling
    assert parse_cell_filter("vers=4.0", axes) == {"vers": "4.0"}
    for text, message in [("ver=4.1", "unknown axis 'ver', did you mean 'vers'? (allowed: vers, leases)"),
                          ("vers=4.2", "unknown value '4.2' for axis vers (allowed: 4.0, 4.1)"),
                          ("debian-6.1", "'debian-6.1' is not axis=value (e.g. vers=4.0,leases=on; kernels are "
                                         "chosen with -k)"),
                          ("vers=4.0,vers=4.1", "vers given twice (4.0, 4.1)"),
                          (" , ", "no axis=value in ' , '")]:
        with pytest.raises(ValueError) as e:
            parse_cell_filter(text, axes)
        assert message in str(e.value), text


def test_cells_where_any_filter_matches(matrix):
    cells = matrix.cells(["debian-6.1"], where=[{"vers": "4.1", "leases": "on"}, {"vers": "4.0", "leases": "off"}])
    assert [c.id for c in cells] == ["debian-6.1/vers=4.0/leases=off", "debian-6.1/vers=4.1/leases=on"]
    assert len(matrix.cells(where=[{"leases": "off"}])) == len(matrix.cells()) // 2
