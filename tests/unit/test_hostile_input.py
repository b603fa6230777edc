"""Hostile input, end to end through `lab`: no file the lab reads or writes can make it crash, hang or step outside
the directories it was given. One row per kind of damage: the command exits 2 with one line on stderr that names the
file (and line) and what is wrong, or, for a damaged results line, exits 0 having skipped it with one warning for
the file. Never a traceback.

Like test_bad_input.py, every row runs the real command line in a subprocess from a scratch directory holding the
row's files, with stand-ins for the host tools on PATH and an unprivileged uid: a row whose check failed to fire
fails on its message, it never reaches a VM.
"""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lab import hostdeps
from lab.errors import BadFile
from lab.outcome import Verdict
from lab.results import ResultRecord
from lab.safeload import cut, link_target
from tests import CHECKOUT
from tests.unit.test_bad_input import KERNEL as KERNEL_TEMPLATE, KERNELS, MATRIX

# the same scratch matrix and build-kernel spec as test_bad_input.py's rows
KERNEL = KERNEL_TEMPLATE.format(name="k")


class Special:
    """A file that is not text: a FIFO, a directory, a symlink (to an unreadable file, or to nothing)."""

    def __init__(self, kind: str, target: str = ""):
        self.kind, self.target = kind, target

    def make(self, path: Path) -> None:
        if self.kind == "fifo":
            os.mkfifo(path)
        elif self.kind == "dir":
            path.mkdir()
        else:
            path.symlink_to(self.target)


FIFO, DIRECTORY = Special("fifo"), Special("dir")
UNREADABLE = Special("link", "/proc/self/mem")   # a regular file whose read fails (EIO), for root too
DANGLING = Special("link", "/nonexistent/k.yaml")


def matrix(old: str, new: str) -> dict:
    assert old in MATRIX
    return {"matrix.yaml": MATRIX.replace(old, new)}


def kernel(content: str | bytes | Special | None = None, old: str = "", new: str = "") -> dict:
    """kernels/k.yaml (a valid build row with one mistake put in, or other content), the matrix's only row."""
    if content is None:
        assert old in KERNEL
        content = KERNEL.replace(old, new)
    return {"kernels/k.yaml": content, "matrix.yaml": MATRIX.replace("kernels: [ok-deb]", "kernels: [k]")}


BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
kernels: *d
"""
DEEP = "kernels: " + "[" * 600 + "]" * 600 + "\n"
LONG = "x" * 500
CUT = "x" * 79 + "…"


def row(name: str, files: dict, args: list[str], message: str, code: int = 2):
    return pytest.param(files, args, message, code, id=name)


SPEC_ROWS = [
    # ---- matrix.yaml: text, size, structure ----------------------------------------------------------------------
    row("matrix-not-utf8", {"matrix.yaml": MATRIX.encode().replace(b"server: ok-deb", b"server: ok-\xffdeb")},
        ["list"], "matrix.yaml:2: not UTF-8 text (byte 0xff)"),
    row("matrix-nul-byte", {"matrix.yaml": MATRIX.encode().replace(b"axes:", b"axes:\0")},
        ["list"], "matrix.yaml:3: a NUL byte (not a text file)"),
    row("matrix-control-character", matrix("server: ok-deb", "server: ok\x07deb"),
        ["list"], "matrix.yaml:2: not YAML: unacceptable character #x0007: special characters are not allowed"),
    row("matrix-deep-nesting", {"matrix.yaml": DEEP}, ["list"], "matrix.yaml:1: nested more than 32 levels deep"),
    row("matrix-alias-bomb", {"matrix.yaml": BILLION_LAUGHS}, ["list"],
        "matrix.yaml:2: YAML alias '*a' (aliases are not allowed in specs; write the value out)"),
    row("matrix-yaml-tag", matrix("server: ok-deb", "server: !!python/object:os.system ok-deb"), ["list"],
        "matrix.yaml:2: YAML tag 'tag:yaml.org,2002:python/object:os.system' (tags are not allowed in specs)"),
    row("matrix-complex-key", {"matrix.yaml": "? [kernels]\n: [ok-deb]\n"}, ["list"],
        "matrix.yaml:1: a list or mapping as a mapping key (`? [a]`): keys are plain names"),
    row("matrix-too-large", {"matrix.yaml": MATRIX + "#" * (1 << 20) + "\n"}, ["list"],
        "matrix.yaml: too large (over 1 MiB; is it the right file?)"),
    row("matrix-fifo", {"m.yaml": FIFO}, ["list", "-m", "m.yaml"], "m.yaml: is a FIFO, not a regular file"),
    row("matrix-unreadable", {"m.yaml": UNREADABLE}, ["list", "-m", "m.yaml"],
        "m.yaml: cannot read it: Input/output error"),
    # ---- matrix.yaml: wrong types and values ---------------------------------------------------------------------
    row("kernels-list-in-list", matrix("kernels: [ok-deb]", "kernels: [[ok-deb]]"), ["list"],
        "matrix.yaml:1: kernels entries must be kernel names, not a list (allowed: bad-base, "),
    row("kernels-mapping-in-list", matrix("kernels: [ok-deb]", "kernels: [{name: ok-deb}]"), ["list"],
        "matrix.yaml:1: kernels entries must be kernel names, not a mapping"),
    row("server-mapping", matrix("server: ok-deb", "server: {name: ok-deb}"), ["list"],
        "matrix.yaml:2: server must be a string (quote it)"),
    row("axes-list", matrix('  vers: ["4.0", "4.1"]\n  leases: [on, off]', "  - vers"), ["list"],
        "matrix.yaml:4: axes must be a mapping (allowed: acdirmin, actimeo, leases, lookupcache, reader, stat_before_open, vers)"),
    row("vers-number", matrix('["4.0", "4.1"]', '[4.0, "4.1"]'), ["list"],
        'matrix.yaml:4: vers value 4.0 is a number: quote it ("4.0")'),
    row("vers-date", matrix('["4.0", "4.1"]', '[2026-11-30]'), ["list"],
        "matrix.yaml:4: vers value '2026-11-30' is not a plain value: quote it"),
    row("repeats-3x", matrix("repeats: 1", "repeats: 3x"), ["list"],
        "matrix.yaml:10: bad repeats '3x' (allowed: a whole number from 1 to 1000)"),
    row("repeats-absurd", matrix("repeats: 1", "repeats: 100000"), ["list"],
        "matrix.yaml:10: bad repeats '100000' (allowed: a whole number from 1 to 1000)"),
    row("repeats-float", matrix("repeats: 1", "repeats: 1.5"), ["list"],
        "matrix.yaml:10: bad repeats '1.5' (allowed: a whole number from 1 to 1000)"),
    row("duration-true", matrix("duration: 30s", "duration: true"), ["list"],
        "matrix.yaml:7: bad duration 'true' for duration (allowed: e.g. 30s, 500ms, 1.5s, 2m, or seconds, up to a "
        "day)"),
    row("duration-nan", matrix("duration: 30s", "duration: .nan"), ["list"],
        "matrix.yaml:7: bad duration 'nan' for duration"),
    row("interval-inf", matrix("interval: 0.5s", "interval: .inf"), ["list"],
        "matrix.yaml:8: bad duration 'inf' for interval"),
    row("interval-negative", matrix("interval: 0.5s", "interval: -1"), ["list"],
        "matrix.yaml:8: bad duration '-1' for interval"),
    row("interval-zero", matrix("interval: 0.5s", "interval: 0s"), ["list"],
        "matrix.yaml:6: experiment needs interval > 0 and pass_within <= duration"),
    row("duration-over-a-day", matrix("duration: 30s", "duration: 25h"), ["list"],
        "matrix.yaml:7: bad duration '25h' for duration"),
    row("duration-mapping", matrix("duration: 30s", "duration: {s: 30}"), ["list"],
        "matrix.yaml:7: bad duration '{'s': 30}' for duration"),
    row("duration-bad-date", matrix("duration: 30s", "duration: 2026-13-45"), ["list"],
        "matrix.yaml:7: bad value '2026-13-45': month must be in 1..12"),
    row("duration-huge-number", matrix("duration: 30s", "duration: 1" + "0" * 5000), ["list"],
        "matrix.yaml:7: bad value '1000000000000000000000000000000000000000000000000000000000000000000000000000000…'"),
    row("timeout-inf", {"matrix.yaml": MATRIX + "timeouts: {boot: .inf}\n"}, ["list"],
        "matrix.yaml:11: bad timeout 'inf' for boot"),
    row("long-value-is-cut", matrix("kernels: [ok-deb]", f"kernels: [{LONG}]"), ["list"],
        f"matrix.yaml:1: unknown kernel '{CUT}' (allowed: bad-base, "),
    row("newline-in-value-stays-one-line", matrix("server: ok-deb", 'server: "ok\\ndeb"'), ["list"],
        "matrix.yaml:2: unknown server kernel 'ok\\ndeb'"),
    # ---- kernels/*.yaml beside the matrix ------------------------------------------------------------------------
    row("kernel-not-utf8", kernel(KERNEL.encode().replace(b"A row", b"A \xfe row")), ["list"],
        "kernels/k.yaml:2: not UTF-8 text (byte 0xfe)"),
    row("kernel-nul-byte", kernel(KERNEL.encode().replace(b"expect:", b"\0expect:")), ["list"],
        "kernels/k.yaml:8: a NUL byte (not a text file)"),
    row("kernel-fifo", kernel(FIFO), ["list"], "kernels/k.yaml: is a FIFO, not a regular file"),
    row("kernel-directory", kernel(DIRECTORY), ["list"], "kernels/k.yaml: is a directory, not a file"),
    row("kernel-unreadable", kernel(UNREADABLE), ["list"], "kernels/k.yaml: cannot read it: Input/output error"),
    row("kernel-missing", kernel(DANGLING), ["list"], "kernels/k.yaml: no such file"),
    row("kernel-too-large", kernel(KERNEL + "#" * (1 << 20) + "\n"), ["list"],
        "kernels/k.yaml: too large (over 1 MiB; is it the right file?)"),
    row("kernel-alias", kernel(None, "    tree: linux-source-6.1", "    tree: &t linux-source-6.1\n    config: *t"),
        ["list"], "kernels/k.yaml:7: YAML alias '*t' (aliases are not allowed in specs; write the value out)"),
    row("kernel-deep-nesting", kernel(KERNEL + "notes: " + "{a: " * 100 + "1" + "}" * 100 + "\n"), ["list"],
        "kernels/k.yaml:11: nested more than 32 levels deep"),
    row("kernel-title-mapping", kernel(None, 'title: "A row under test"', "title: {a: 1}"), ["list"],
        "kernels/k.yaml:2: title must be a string (quote it)"),
    row("kernel-patches-string", kernel(None, "    scope:", "    patches: x.patch\n    scope:"), ["list"],
        "kernels/k.yaml:7: patches must be a list"),
    row("kernel-verdict-list", kernel(None, "verdict: fail", "verdict: [fail]"), ["list"],
        "kernels/k.yaml:10: unknown verdict '['fail']', did you mean 'fail'? (allowed: pass, fail, unknown)"),
    row("kernel-when-number", kernel(None, '{vers: "4.0"}', "{vers: 4.0}"), ["list"],
        'kernels/k.yaml:9: vers value 4.0 is a number: quote it ("4.0")'),
    row("kernel-expect-scalar", kernel(None, '  - when: {vers: "4.0"}\n    verdict: fail', "  - fail"), ["list"],
        "kernels/k.yaml:9: an expectation must be a mapping"),
]


# ---- results, run.json, outputs ------------------------------------------------------------------------------------

def record(cell: str = "ok-deb/vers=4.0/leases=on", status: str = "pass", **change) -> dict:
    kernel_name, *pairs = cell.split("/")
    verdict = Verdict("pass", first_new_after=0.5) if status == "pass" else Verdict("fail", reason="stale-data")
    data = json.loads(ResultRecord(
        run_id="r1", cell_id=cell, kernel=kernel_name, params=dict(p.split("=") for p in pairs),
        verdict=verdict.to_dict(), expected="pass", started="2026-11-30T10:00:00+00:00", duration_s=9.0,
        worker="w0", observation=None, logs=f"logs/{cell.replace('/', '__')}").to_json())
    return {**data, **change}


GOOD = json.dumps(record())


def results(*lines: str | bytes, run: str = "runs/r1") -> dict:
    """A run directory whose results file holds one good record, then the given lines."""
    raw = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in (GOOD, *lines)) + b"\n"
    return {f"{run}/results-w0.jsonl": raw}


def damaged(name: str, line: str | bytes, why: str):
    """A row for one damaged results line: skipped with one warning, the good record still in the table."""
    return pytest.param(results(line), ["table", "runs/r1"],
                        f"runs/r1/results-w0.jsonl: 1 damaged line skipped (first: line 2: {why})", 0, id=name)


DAMAGED_ROWS = [
    damaged("results-line-list", "[]", "not a JSON object (found a list)"),
    damaged("results-line-null", "null", "not a JSON object (found null)"),
    damaged("results-line-empty-object", "{}", "run_id: missing"),
    damaged("results-line-truncated", GOOD[:60], "not valid JSON (column 58: Unterminated string starting at)"),
    damaged("results-line-not-utf8", GOOD.encode().replace(b"r1", b"r\xff", 1), "not UTF-8 text (byte 0xff)"),
    damaged("results-line-nul", GOOD.encode().replace(b"w0", b"w\0", 1), "a NUL byte (not a text file)"),
    damaged("results-line-nan", GOOD.replace("9.0", "NaN"), "NaN is not a number JSON allows"),
    damaged("results-line-inf", GOOD.replace("9.0", "1e999"), "1e999 is too large a number"),
    damaged("results-line-deep", "[" * 5000 + "]" * 5000, "nested more than 32 levels deep"),
    damaged("results-duration-string", json.dumps(record(duration_s="9")),
            "duration_s: input should be a valid number, found '9'"),
    damaged("results-kernel-number", json.dumps(record(kernel=5)), "kernel: input should be a valid string, found 5"),
    damaged("results-params-list", json.dumps(record(params=["vers=4.0"])),
            "params: input should be a valid dictionary, found a list"),
    damaged("results-unknown-status", json.dumps(record(verdict={"status": "maybe"})),
            "verdict.status: unknown status 'maybe' (allowed: pass, fail, error, skip)"),
    damaged("results-verdict-null", json.dumps(record(verdict=None)),
            "verdict: input should be a valid dictionary or instance of StoredVerdict, found null"),
    damaged("results-unknown-expected", json.dumps(record(expected="flaky")),
            "expected: unknown expected verdict 'flaky' (allowed: pass, fail, unknown)"),
    damaged("results-stale-for-string", json.dumps(record(verdict={"status": "fail", "stale_for": "long"})),
            "verdict.stale_for: input should be a valid number, found 'long'"),
    damaged("results-observation-garbage", json.dumps(record(observation={"reads": [{"t": "soon", "kind": "new"}]})),
            "observation.reads.0.t: input should be a valid number, found 'soon'"),
    damaged("results-trace-garbage", json.dumps(record(observation={"meta": {"trace": {"alice": {"after": {
        "first_s": {"LOOKUP": "soon"}}}}}})),
            "observation.meta.trace.alice.after.first_s.LOOKUP: input should be a valid number, found 'soon'"),
    damaged("results-repeat-string", json.dumps(record(repeat="2")), "repeat: input should be a valid integer, found '2'"),
    damaged("results-repeats-absurd", json.dumps(record(repeats=10 ** 9)),
            "repeats: input should be less than or equal to 1000"),
    damaged("results-pass-within-string", json.dumps(record(verdict={"status": "pass", "pass_within": "2s"})),
            "verdict.pass_within: input should be a valid number, found '2s'"),
    damaged("results-ages-garbage", json.dumps(record(observation={"meta": {"ages": {
        "dir_touched_before_change_s": "long ago"}}})),
            "observation.meta.ages.dir_touched_before_change_s: input should be a valid number, found 'long ago'"),
    damaged("results-mounts-list", json.dumps(record(observation={"meta": {"mounts": ["alice"]}})),
            "observation.meta.mounts: input should be a valid dictionary, found a list"),
    damaged("results-logs-climb-out", json.dumps(record(logs="../../etc")),
            "logs: '../../etc' is not a path inside the run directory (it climbs out with '..')"),
    damaged("results-logs-absolute", json.dumps(record(logs="/etc")),
            "logs: '/etc' is not a path inside the run directory (an absolute path)"),
    damaged("results-long-value-cut", json.dumps(record(verdict={"status": LONG})),
            f"verdict.status: unknown status '{CUT}' (allowed: pass, fail, error, skip)"),
    pytest.param(results("[]", "null", GOOD[:10]), ["table", "runs/r1"],
                 "runs/r1/results-w0.jsonl: 3 damaged lines skipped (first: line 2: not a JSON object (found a list))",
                 0, id="results-three-damaged-lines-one-warning"),
]

RUN_JSON = "runs/r1/run.json"
FILE_ROWS = [
    # ---- results files and run.json that cannot be read at all --------------------------------------------------
    row("results-file-is-a-directory", {"runs/r1/results-w0.jsonl": DIRECTORY}, ["table", "runs/r1"],
        "runs/r1/results-w0.jsonl: is a directory, not a file"),
    row("results-file-is-a-fifo", {"runs/r1/results-w0.jsonl": FIFO}, ["table", "runs/r1"],
        "runs/r1/results-w0.jsonl: is a FIFO, not a regular file"),
    row("run-json-list", {**results(), RUN_JSON: "[1, 2]"}, ["table", "runs/r1"],
        "runs/r1/run.json: not a JSON object (found a list)"),
    row("run-json-started-number", {**results(), RUN_JSON: '{"started": 12}'}, ["table", "runs/r1"],
        "runs/r1/run.json: started: input should be a valid string, found 12"),
    row("run-json-kernels-string", {**results(), RUN_JSON: '{"kernels": "ok-deb"}'}, ["table", "runs/r1"],
        "runs/r1/run.json: kernels: input should be a valid list, found 'ok-deb'"),
    row("run-json-repeats-string", {**results(), RUN_JSON: '{"repeats": "3"}'}, ["table", "runs/r1"],
        "runs/r1/run.json: repeats: input should be a valid integer, found '3'"),
    row("run-json-pass-within-string", {**results(), RUN_JSON: '{"experiment": {"pass_within": "2s"}}'},
        ["table", "runs/r1"], "runs/r1/run.json: experiment.pass_within: input should be a valid number, found '2s'"),
    row("run-json-nan", {**results(), RUN_JSON: '{"wall_s": NaN}'}, ["table", "runs/r1"],
        "runs/r1/run.json: NaN is not a number JSON allows"),
    row("run-json-syntax", {**results(), RUN_JSON: '{\n"started": "x",\n}'}, ["table", "runs/r1"],
        "runs/r1/run.json:3: not valid JSON (column 1: Expecting property name enclosed in double quotes)"),
    row("run-json-deep", {**results(), RUN_JSON: '{"a": ' * 100 + "1" + "}" * 100}, ["table", "runs/r1"],
        "runs/r1/run.json: nested more than 32 levels deep"),
    row("run-json-too-large", {**results(), RUN_JSON: '{"a": "' + "x" * (2 << 20) + '"}'}, ["table", "runs/r1"],
        "runs/r1/run.json: too large (over 1 MiB; is it the right file?)"),
    row("run-json-not-utf8", {**results(), RUN_JSON: b'{"server": "\xc3"}'}, ["table", "runs/r1"],
        "runs/r1/run.json:1: not UTF-8 text (byte 0xc3)"),
    row("run-json-directory", {**results(), RUN_JSON: DIRECTORY}, ["table", "runs/r1"],
        "runs/r1/run.json: is a directory, not a file"),
    row("run-json-fifo", {**results(), RUN_JSON: FIFO}, ["table", "runs/r1"],
        "runs/r1/run.json: is a FIFO, not a regular file"),
    row("run-json-too-many-columns", {**results(), RUN_JSON: json.dumps(
        {"axes": {name: [str(i) for i in range(10)] for name in "abcd"}})}, ["table", "runs/r1"],
        "runs/r1/run.json: axes: the axes make 10000 columns (at most 4096)"),
    row("compare-damaged-run-json", {**results(), **results(run="runs/r2"), "runs/r2/run.json": "[]"},
        ["compare", "runs/r1", "runs/r2"], "runs/r2/run.json: not a JSON object (found a list)"),
    # ---- outputs -------------------------------------------------------------------------------------------------
    row("table-output-missing-directory", results(), ["table", "runs/r1", "-o", "nodir/t.md"],
        "--output nodir/t.md: no directory nodir (fix: create it first, e.g. mkdir -p nodir)"),
    row("table-output-is-a-directory", results(), ["table", "runs/r1", "-o", "runs"],
        "--output runs: is a directory (fix: name a file in it, e.g. runs/table.md)"),
    row("table-output-is-a-fifo", {**results(), "out.md": FIFO}, ["table", "runs/r1", "-o", "out.md"],
        "--output out.md: not a regular file"),
    row("merge-dest-is-a-file", {**results(), "merged": "x"}, ["merge", "merged", "runs/r1"],
        "merged: is a file, not a run directory (fix: name a new or existing directory)"),
    row("merge-dest-missing-parent", results(), ["merge", "nodir/merged", "runs/r1"],
        "nodir/merged: no directory nodir to create it in (fix: mkdir -p nodir first)"),
    row("compare-output-is-a-directory", results(), ["compare", "runs/r1", "runs/r1", "-o", "runs"],
        "--output runs: is a directory (fix: name a file in it, e.g. runs/changes.json)"),
    row("compare-output-missing-directory", results(), ["compare", "runs/r1", "runs/r1", "-o", "nodir/c.json"],
        "--output nodir/c.json: no directory nodir (fix: create it first, e.g. mkdir -p nodir)"),
    row("fetch-baseline-dest-is-a-file", {"dest": "x"}, ["fetch-baseline", "file:///nonexistent.zip", "--dest",
                                                        "dest"],
        "dest: is a file, not a directory to unpack into (fix: name a new or existing directory)"),
]


# ---- changes.json for `lab bisect versions --from-changes` ---------------------------------------------------------

def changes(*entries: dict) -> str:
    return json.dumps({"changes": list(entries)})


def change(params=None, terms="regression", kernels=("ok-box", "ok-deb"), **more) -> dict:
    return {"cell": "x", "params": params if params is not None else {"vers": "4.0", "leases": "on"},
            "bisect": {"terms": terms, "kernels": list(kernels)}, **more}


NOT_CHANGES = "not a changes file from `lab compare`"
CHANGES_ROWS = [row(name, {"changes.json": content}, ["bisect", "versions", "--from-changes", "changes.json"],
                    f"changes.json{message}") for name, content, message in [
    ("changes-list", "[]", f": {NOT_CHANGES}: not a JSON object (found a list)"),
    ("changes-not-json", "changes", f":1: {NOT_CHANGES}: not valid JSON (column 1: Expecting value)"),
    ("changes-not-utf8", b'{"changes": ["\xff"]}', ":1: not UTF-8 text (byte 0xff)"),
    ("changes-fifo", FIFO, ": is a FIFO, not a regular file"),
    ("changes-directory", DIRECTORY, ": is a directory, not a file"),
    ("changes-missing", DANGLING, ": no such file"),
    ("changes-deep", '{"changes": ' + "[" * 3000 + "]" * 3000 + "}", f": {NOT_CHANGES}: nested more than 32 levels "
                                                                        "deep"),
    ("changes-nan", '{"changes": [], "unchanged": NaN}', f": {NOT_CHANGES}: NaN is not a number JSON allows"),
    ("changes-string", '{"changes": "all"}', f": {NOT_CHANGES}: changes: input should be a valid list, found 'all'"),
    ("changes-params-number", changes(change(params={"vers": 4.0, "leases": "on"})),
     f": {NOT_CHANGES}: changes.0.params.vers: input should be a valid string, found 4.0"),
    ("changes-unknown-terms", changes(change(terms="sideways")),
     f": {NOT_CHANGES}: changes.0.bisect.terms: unknown terms 'sideways' (allowed: regression, "
     "fixed/unfixed)"),
    ("changes-one-kernel", changes(change(kernels=["ok-deb"])),
     f": {NOT_CHANGES}: changes.0.bisect.kernels: list should have at least 2 items after validation, not 1"),
    ("changes-kernel-twice", changes(change(kernels=["ok-deb", "ok-deb"])),
     f": {NOT_CHANGES}: changes.0.bisect.kernels: a kernel is listed twice"),
    ("changes-kernel-path", changes(change(kernels=["ok-deb", "../../etc/passwd"])),
     ": changes for another matrix: unknown kernel '../../etc/passwd' (allowed: bad-base, "),
    ("changes-cell-of-another-matrix", changes(change(params={"vers": "4.3", "leases": "on"})),
     ": changes for another matrix: bad cell 'vers=4.3/leases=on': unknown mount option 'vers=4.3' (allowed: 3, "
     "4.0, 4.1, 4.2)"),
    ("changes-unknown-axis", changes(change(params={"vers": "4.0", "leases": "on", "evil": "1"})),
     ": changes for another matrix: bad cell 'vers=4.0/leases=on/evil=1': unknown axis 'evil' (allowed: vers, "
     "leases)"),
]]


# ---- baseline archives ---------------------------------------------------------------------------------------------

def archive(*members: tuple[str, bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    import io
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compress) as z:
        for name, data in members:
            z.writestr(name, data)
    return buffer.getvalue()


BASELINE_ROWS = [row(name, {"a.zip": content}, ["fetch-baseline", "file://{cwd}/a.zip", "--dest", "baseline"],
                     f"file://{{cwd}}/a.zip: {message}") for name, content, message in [
    ("baseline-not-a-zip", b"<html>login</html>", "not a usable zip archive (18 bytes: File is not a zip file)"),
    ("baseline-member-climbs-out", archive(("../evil", b"x")),
     "member '../evil' would land outside the destination (it climbs out with '..')"),
    ("baseline-member-absolute", archive(("/tmp/evil", b"x")),
     "member '/tmp/evil' would land outside the destination (an absolute path)"),
    ("baseline-zip-bomb", archive(("merged/results-w0.jsonl", b"\0" * (20 << 20)), compress=zipfile.ZIP_DEFLATED),
     "member 'merged/results-w0.jsonl' expands 20 MiB from 20387 bytes (a zip bomb?)"),
]]


# ---- running them --------------------------------------------------------------------------------------------------

def lab(cwd: Path, args: list[str]) -> subprocess.CompletedProcess:
    """`lab ARGS` as an unprivileged user with stand-ins for every host tool: nothing real can start."""
    tools = cwd / ".bin"
    tools.mkdir(exist_ok=True)
    for tool in hostdeps.commands():
        (tools / tool).write_text("#!/bin/sh\nexit 1\n")
        (tools / tool).chmod(0o755)
    code = "import os; os.geteuid = lambda: 1000; from lab.cli import main; main()"
    env = {**os.environ, "PATH": str(tools), "PYTHONPATH": str(CHECKOUT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          errors="replace", timeout=60)


def scratch(tmp_path: Path, files: dict) -> Path:
    """A matrix, the test kernels and the row's files (which may replace either)."""
    (tmp_path / "kernels").mkdir(parents=True)
    for spec in KERNELS.glob("*.yaml"):
        (tmp_path / "kernels" / spec.name).write_text(spec.read_text())
    (tmp_path / "matrix.yaml").write_text(MATRIX)
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        if isinstance(content, Special):
            content.make(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return tmp_path


@pytest.mark.parametrize("files, args, message, code",
                         SPEC_ROWS + DAMAGED_ROWS + FILE_ROWS + CHANGES_ROWS + BASELINE_ROWS)
def test_hostile_input_is_one_line_never_a_traceback(tmp_path, files, args, message, code):
    cwd = scratch(tmp_path, files)
    r = lab(cwd, [a.replace("{cwd}", str(cwd)) for a in args])
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == code, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert message.replace("{cwd}", str(cwd)) in lines[0]


def test_a_damaged_line_costs_only_itself(tmp_path):
    """The table is built from the intact records only, and says nothing built from the damaged line."""
    cwd = scratch(tmp_path, results(json.dumps(record("ok-deb/vers=4.1/leases=on", verdict={"status": "maybe"})),
                                    json.dumps(record("ok-deb/vers=4.0/leases=off", status="fail"))))
    r = lab(cwd, ["table", "runs/r1", "-f", "json"])
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert sorted(rec["cell_id"] for rec in json.loads(r.stdout)["records"]) == [
        "ok-deb/vers=4.0/leases=off", "ok-deb/vers=4.0/leases=on"]


def test_merge_reads_and_writes_only_inside_its_runs(tmp_path):
    """A record whose logs climb out is skipped when read; a log directory that is a symlink out of its run is not
    copied; a symlink inside a log directory is copied as a link, not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    cwd = scratch(tmp_path / "lab", {
        **results(json.dumps(record("ok-deb/vers=4.1/leases=on", logs="../../outside")),
                  json.dumps(record("ok-deb/vers=4.0/leases=off", logs="logs/escape"))),
        "runs/r1/logs/escape": Special("link", str(outside)),
        "runs/r1/logs/ok-deb__vers=4.0__leases=on/alice.log": "cat test1.txt\n",
        "runs/r1/logs/ok-deb__vers=4.0__leases=on/link": Special("link", str(outside / "secret"))})
    r = lab(cwd, ["merge", "merged", "runs/r1"])
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "runs/r1/results-w0.jsonl: 1 damaged line skipped (first: line 2: logs: '../../outside' is not a path " \
           "inside the run directory (it climbs out with '..'))" in r.stderr
    assert ("merged: 1 log directory not copied (first: ok-deb/vers=4.0/leases=off: runs/r1/logs/escape leads "
            "outside runs/r1)") in r.stderr
    merged = cwd / "merged" / "logs"
    assert sorted(p.name for p in merged.iterdir()) == ["ok-deb__vers=4.0__leases=on"]
    assert (merged / "ok-deb__vers=4.0__leases=on" / "link").is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("logs", ["javascript:alert(1)", 'x"><script>alert(1)</script>', "logs/a?b", "logs/%2e%2e",
                                  "logs/./x"])
def test_html_links_only_plain_paths_inside_the_run(tmp_path, logs):
    cwd = scratch(tmp_path, results(json.dumps(record("ok-deb/vers=4.1/leases=on", logs=logs))))
    r = lab(cwd, ["table", "runs/r1", "-f", "html"])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert 'href="logs/ok-deb__vers=4.0__leases=on/"' in r.stdout       # the good record keeps its link
    assert len(re.findall(r'href="(?!#)', r.stdout)) == 1                  # the cells' own anchors aside
    assert "<script>alert" not in r.stdout and r.stdout.count("<script") == 1   # the page's own filters only
    assert "logs: " in r.stdout                                          # the other one's logs shown as text


def test_step_log_skips_damaged_steps_with_one_warning(tmp_path, caplog):
    """No command reads a step log without VMs (`lab bisect git` does, after `git bisect run`): StepLog directly."""
    from lab.bisect import GOOD as GOOD_STEP, Step, StepLog
    log = StepLog(tmp_path / "steps.jsonl")
    log.append(Step("k1", "search", GOOD_STEP, "good", "3 of 3", ["pass"] * 3, build={"result": "ok"}))
    with log.path.open("a") as f:
        f.write('[]\n{"candidate": "k2", "phase": "search", "result": "maybe", "term": "x", "why": ""}\n')
        f.write('{"candidate": "k3", "phase": "search", "result": "good", "term": "good", "why": "", '
                '"build": {"seconds": "long"}}\n')
    assert [s.candidate for s in log.steps()] == ["k1"]
    assert caplog.messages == [f"{log.path}: 3 damaged lines skipped (first: line 2: not a JSON object (found a "
                               "list))"]
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(BadFile, match="is a FIFO, not a regular file"):
        StepLog(fifo).steps()


def test_link_target_and_cut():
    assert link_target("logs/debian-6.1__vers=4.0__leases=on/") == "logs/debian-6.1__vers=4.0__leases=on/"
    assert link_target("logs/a/server-nfs.pcapng") == "logs/a/server-nfs.pcapng"
    for bad in ("javascript:alert(1)", "/etc/", "../x", "logs/../x", "logs//x", "logs/x y", "logs/%2e%2e/", "",
                None, "logs/\nx", "data:text/html,x", "//evil.example/x"):
        assert link_target(bad) is None, bad
    assert cut("a\nb") == "a\\nb"
    assert cut("x" * 200) == "x" * 79 + "…"
    assert cut(True) == "true" and cut(None) == "null"


def test_every_record_the_lab_writes_reads_back():
    """Backward compatibility: the records of the report's golden files (every kind of cell, a capture included)
    pass the stored schema unchanged."""
    from tests.unit.test_report import fixed_records
    for rec in fixed_records():
        assert ResultRecord.from_json(rec.to_json()) == rec
