"""report.py: the compatibility table in every format, from a fixed set of records (golden files)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from lab.outcome import Criteria, Observation, Read, Verdict, classify
from lab.report import build_grid, category, cell_text, counts, render, render_terminal, timeline_text
from lab.results import ResultRecord

CRITERIA = Criteria(pass_within=2.0, settle=5.0)
META = {"run_id": "20261123-104500-ab12", "started": "2026-11-23T10:45:00+00:00", "server": "debian-6.1",
        "kernels": ["centos7-3.10", "debian-6.1-nofix", "mainline-4.19-fix", "debian-6.1", "ubuntu1604-4.4"],
        "axes": {"vers": ["4.0", "4.1"], "leases": ["on", "off"]}}


def reads(*phases: tuple[str, float, float]) -> list[Read]:
    out = []
    for kind, start, end in phases:
        out += [Read(start + i * 0.5, kind) for i in range(round((end - start) / 0.5) + 1)]
    return out


SEED = Observation(reads(("old", -1, 30)), after_ls=Read(30.5, "new"))
STALE_ESTALE_NEW = Observation(reads(("old", -1, 5), ("estale", 5.5, 23), ("new", 23.5, 30)))
PASS = Observation(reads(("old", -1, -0.5), ("new", 0, 30)))
LATE_PASS = Observation(reads(("old", -1, 0.5), ("new", 1, 30)))
AFTER = {"calls": 48, "ops": {"CLOSE": 1, "GETATTR": 39, "LOOKUP": 1, "OPEN": 1, "PUTFH": 47, "READ": 1},
         "open_claims": {"NULL": 1}, "stale_replies": 0, "delay_replies": 0, "first_s": {"LOOKUP": 24.1},
         "open_by_name": 1}
TRACED = Observation(SEED.reads, after_ls=SEED.after_ls,
                     meta={"trace": {"pcap": "server-nfs.pcapng", "alice": {"before": {}, "after": AFTER}}})


def make(kernel: str, vers: str, leases: str, expected: str, obs: Observation | None = None,
         verdict: Verdict | None = None, index: int = 0) -> ResultRecord:
    params = {"vers": vers, "leases": leases}
    cell_id = f"{kernel}/vers={vers}/leases={leases}"
    verdict = verdict or classify(obs, CRITERIA)
    return ResultRecord(run_id=META["run_id"], cell_id=cell_id, kernel=kernel, params=params,
                        verdict=verdict.to_dict(), expected=expected,
                        started=f"2026-11-23T10:{45 + index // 60:02d}:{index % 60:02d}+00:00", duration_s=34.0,
                        worker="gw0", observation=obs.to_dict() if obs else None,
                        logs=f"logs/{cell_id.replace('/', '__')}", kernel_release="")


def fixed_records() -> list[ResultRecord]:
    """Every kind of cell once: pass, expected fail, regression, unexpected pass, error, skip, not run."""
    rows = [
        ("centos7-3.10", "4.0", "on", "fail", SEED, None),
        ("centos7-3.10", "4.0", "off", "fail", STALE_ESTALE_NEW, None),
        ("centos7-3.10", "4.1", "on", "pass", PASS, None),
        ("centos7-3.10", "4.1", "off", "pass", LATE_PASS, None),
        ("debian-6.1-nofix", "4.0", "on", "fail", PASS, None),                    # unexpected pass
        ("debian-6.1-nofix", "4.0", "off", "fail", TRACED, None),
        ("debian-6.1-nofix", "4.1", "on", "pass", None,
         Verdict.error("mount", "mount.nfs: Connection timed out", "logs/debian-6.1-nofix__vers=4.1__leases=on")),
        ("mainline-4.19-fix", "4.0", "on", "pass", STALE_ESTALE_NEW, None),       # regression
        ("mainline-4.19-fix", "4.0", "off", "pass", PASS, None),
        ("debian-6.1", "4.0", "on", "pass", PASS, None),
        ("debian-6.1", "4.0", "off", "pass", PASS, None),
        ("debian-6.1", "4.1", "on", "pass", PASS, None),
        ("debian-6.1", "4.1", "off", "pass", PASS, None),
    ] + [("ubuntu1604-4.4", v, l, "fail" if v == "4.0" else "pass", None,
          Verdict.skip("box generic/ubuntu1604 not present and Vagrant Cloud unreachable"))
         for v in ("4.0", "4.1") for l in ("on", "off")]
    return [make(*row[:4], obs=row[4], verdict=row[5], index=i) for i, row in enumerate(rows)]


@pytest.fixture
def records():
    return fixed_records()


def test_categories_and_cell_texts(records):
    by_id = {r.cell_id: r for r in records}
    seed = by_id["centos7-3.10/vers=4.0/leases=on"]
    assert category(seed) == "expected-fail"
    assert cell_text(seed) == "✗ (expected) stale never recovers, ls clears"
    assert cell_text(by_id["mainline-4.19-fix/vers=4.0/leases=on"]) == "⚠ regression ✗ stale 5s→ESTALE 18s"
    assert cell_text(by_id["debian-6.1-nofix/vers=4.0/leases=on"]) == "★ unexpected pass ✓ new after 0s"
    assert cell_text(by_id["centos7-3.10/vers=4.1/leases=off"]) == "✓ new after 1s"
    assert cell_text(by_id["debian-6.1-nofix/vers=4.1/leases=on"]).startswith("ERROR mount: mount.nfs")
    assert cell_text(None) == "—"


def test_counts_keep_errors_and_skips_apart(records):
    assert counts(records) == {"pass": 7, "expected-fail": 3, "regression": 1, "unexpected-pass": 1,
                               "error": 1, "skip": 4, "total": 17}


def test_grid_order_comes_from_meta_then_first_appearance(records):
    grid = build_grid(records, META)
    assert grid.rows == META["kernels"]
    assert grid.columns == ["vers=4.0 leases=on", "vers=4.0 leases=off", "vers=4.1 leases=on", "vers=4.1 leases=off"]
    assert grid.get("mainline-4.19-fix", "vers=4.1 leases=on") is None  # not run
    plain = build_grid(list(reversed(records)))
    assert plain.rows[0] == "ubuntu1604-4.4" and plain.columns[0] == "vers=4.1 leases=off"


def test_timeline_is_folded_into_runs(records):
    assert timeline_text(STALE_ESTALE_NEW.to_dict()) == "old -1s…5s ×13, estale 5.5s…23s ×36, new 23.5s…30s ×14"
    assert timeline_text(SEED.to_dict()).endswith("old -1s…30s ×63, after ls: new")


@pytest.mark.parametrize("fmt, name", [("md", "table.md"), ("html", "table.html"), ("junit", "table.junit.xml")])
def test_rendered_tables_match_golden_files(records, golden, fmt, name):
    text = render(records, fmt, title="nfslab: rename over an open file", meta=META)
    golden.check(name, text)
    assert render(list(reversed(records)), fmt, title="nfslab: rename over an open file", meta=META) == text


def test_markdown_shape(records):
    text = render(records, "md", meta=META)
    lines = text.splitlines()
    assert lines[2] == "| kernel | vers=4.0 leases=on | vers=4.0 leases=off | vers=4.1 leases=on | vers=4.1 leases=off |"
    assert lines[4].startswith("| centos7-3.10 | ✗ (expected) stale never recovers, ls clears |")
    assert "| mainline-4.19-fix | ⚠ regression ✗ stale 5s→ESTALE 18s | ✓ new after 0s | — | — |" in lines
    assert "**Summary:** 7 pass · 3 expected fail · 1 regression · 1 unexpected pass · 1 error · 4 skip" in lines
    assert "- **★ unexpected pass**: expected to fail, passed" in lines


def test_html_is_self_contained_and_links_logs(records):
    text = render(records, "html", meta=META)
    assert "<link" not in text and "<script" not in text and "http" not in text
    assert '<td class="regression"' in text and '<td class="expected-fail"' in text
    assert '<a href="logs/centos7-3.10__vers=4.0__leases=on/">logs</a>' in text
    assert "old -1s…5s ×13, estale 5.5s…23s ×36, new 23.5s…30s ×14" in text
    assert "<details>" in text and "Legend" in text


def test_json_structure(records):
    document = json.loads(render(records, "json", title="t", meta=META))
    assert document["summary"]["regression"] == 1 and document["summary"]["total"] == 17
    assert len(document["records"]) == 17
    first = document["records"][0]
    assert first["cell_id"] == "centos7-3.10/vers=4.0/leases=on"
    assert first["category"] == "expected-fail"
    assert first["verdict"]["reason"] == "stale-data"
    assert document["meta"]["run_id"] == META["run_id"]


def test_junit_one_testcase_per_cell(records):
    root = ET.fromstring(render(records, "junit", title="nfslab", meta=META))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("17", "1", "1", "4")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 17
    regression = cases[("mainline-4.19-fix", "vers=4.0 leases=on")]
    assert regression.find("failure").get("message") == "✗ stale 5s→ESTALE 18s"
    xfail = cases[("centos7-3.10", "vers=4.0 leases=on")]
    assert xfail.find("failure") is None
    assert "expected" in xfail.find("system-out").text
    assert cases[("debian-6.1-nofix", "vers=4.1 leases=on")].find("error") is not None
    assert cases[("ubuntu1604-4.4", "vers=4.0 leases=on")].find("skipped") is not None


def test_terminal_table(records):
    table = render_terminal(records, title="nfslab", meta=META)
    assert [str(c.header) for c in table.columns][:2] == ["kernel", "vers=4.0 leases=on"]
    assert table.row_count == 5
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    out = console.export_text()
    assert "⚠ regression" in out and "✗ (expected)" in out and "SKIP box generic/ubuntu1604" in out


def test_unknown_format_is_refused(records):
    with pytest.raises(ValueError, match="unknown table format 'pdf'"):
        render(records, "pdf")


def test_columns_follow_the_matrix_axes_whatever_the_stored_param_order():
    from lab.report import build_grid
    from lab.results import ResultRecord
    rec = ResultRecord(run_id="r", cell_id="k/vers=4.0/leases=on", kernel="k", params={"leases": "on", "vers": "4.0"},
                       verdict={"status": "pass"}, expected="pass", started="2026-11-23T00:00:00Z", duration_s=1.0,
                       worker="main", observation=None, logs="logs/k")
    grid = build_grid([rec], {"axes": {"vers": ["4.0"], "leases": ["on"]}, "kernels": ["k"]})
    assert grid.columns == ["vers=4.0 leases=on"]
    assert grid.get("k", "vers=4.0 leases=on") is rec


def test_captured_cells_show_their_nfs_operations(records):
    md, html = render(records, "md"), render(records, "html")
    line = "OPEN 1 (by name 1) · LOOKUP 1 (first at +24.1s) · GETATTR 39 · READ 1 · CLOSE 1 · NFS4ERR_STALE replies 0"
    assert f"| debian-6.1-nofix/vers=4.0/leases=off | alice | {line} |" in md
    assert f"alice after t=0: {line}" in html
    assert '<a href="logs/debian-6.1-nofix__vers=4.0__leases=off/server-nfs.pcapng">pcap</a>' in html
    assert html.count(">pcap</a>") == 1   # only the captured cell links a capture


def test_timeline_plot_has_one_bar_per_run_in_its_colour():
    from lab.report import KIND_COLOURS, timeline_svg
    svg = timeline_svg(STALE_ESTALE_NEW.to_dict())
    assert svg.count("<rect") == 3
    for kind in ("old", "estale", "new"):
        assert f'fill="{KIND_COLOURS[kind]}"' in svg
    assert ">0</text>" in svg and ">30s</text>" in svg
    assert timeline_svg({"reads": []}) == ""
