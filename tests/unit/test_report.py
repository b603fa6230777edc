"""report.py: the compatibility table in every format, from a fixed set of records (golden files)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from lab.aggregate import aggregate, cells_of
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
         "open_by_name": 1, "reply_attrs": {"OPEN": {"0": {"1234": 1}}, "GETATTR": {"0": {"1234": 38}}}}
SYSCALLS = {"reader": "open-fstat-read", "file": "test1.txt", "traced": 8,
            "after": {"reads": 8, "first_s": 0.2,
                      "sequences": {"openat → fd 4 · fstat → ESTALE": 7, "openat → fd 4 · fstat → 0 · read → new "
                                                                        "(13 bytes) · read → EOF": 1},
                      "failed_at": {"fstat → ESTALE": 7}}}
TRACED = Observation(SEED.reads, after_ls=SEED.after_ls,
                     meta={"trace": {"pcap": "server-nfs.pcapng", "alice": {"before": {}, "after": AFTER}},
                           "syscalls": SYSCALLS})


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
    by_id = {c.cell_id: c for c in cells_of(records)}
    seed = by_id["centos7-3.10/vers=4.0/leases=on"]
    assert category(seed) == "expected-fail"
    assert cell_text(seed) == "✗ (expected) stale never recovers, ls clears"
    assert cell_text(by_id["mainline-4.19-fix/vers=4.0/leases=on"]) == "⚠ regression ✗ stale 5s→ESTALE 18s"
    assert cell_text(by_id["debian-6.1-nofix/vers=4.0/leases=on"]) == "★ unexpected pass ✓ new after 0s"
    assert cell_text(by_id["centos7-3.10/vers=4.1/leases=off"]) == "✓ new after 1s"
    assert cell_text(by_id["debian-6.1-nofix/vers=4.1/leases=on"]).startswith("ERROR mount: mount.nfs")
    assert cell_text(None) == "—"


def test_counts_keep_errors_and_skips_apart(records):
    assert counts(cells_of(records)) == {"pass": 7, "expected-fail": 3, "regression": 1, "unexpected-pass": 1,
                                         "flaky": 0, "error": 1, "skip": 4, "total": 17}


def test_grid_order_comes_from_meta_then_first_appearance(records):
    grid = build_grid(records, META)
    assert grid.rows == META["kernels"]
    assert grid.columns == ["vers=4.0 leases=on", "vers=4.0 leases=off", "vers=4.1 leases=on", "vers=4.1 leases=off"]
    assert grid.get("mainline-4.19-fix", "vers=4.1 leases=on") is None  # not run
    assert grid.get("debian-6.1", "vers=4.0 leases=on").runs == [r for r in records
                                                                 if r.cell_id == "debian-6.1/vers=4.0/leases=on"]
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
    assert lines[2].startswith("**Criterion:** pass: every read from 2s after the rename shows the new contents")
    assert lines[4] == "| kernel | vers=4.0 leases=on | vers=4.0 leases=off | vers=4.1 leases=on | vers=4.1 leases=off |"
    assert lines[6].startswith("| centos7-3.10 | ✗ (expected) stale never recovers, ls clears |")
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
    # as pytest reports them: regression and unexpected pass fail, expected failures are skipped (xfail)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("17", "2", "1", "7")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 17
    regression = cases[("mainline-4.19-fix", "vers=4.0 leases=on")]
    assert regression.find("failure").get("message") == "✗ stale 5s→ESTALE 18s"
    xfail = cases[("centos7-3.10", "vers=4.0 leases=on")]
    assert xfail.find("failure") is None
    assert xfail.find("skipped").get("type") == "pytest.xfail"
    assert xfail.find("skipped").get("message") == "expected failure: ✗ stale never recovers, ls clears"
    xpass = cases[("debian-6.1-nofix", "vers=4.0 leases=on")].find("failure")
    assert (xpass.get("type"), xpass.get("message")) == ("unexpected-pass",
                                                         "[XPASS(strict)] ✓ new after 0s (expected: fail)")
    assert suite.find("properties/property").get("name") == "criterion"
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
    assert "pass: every read from 2s after the rename" in out


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
    assert grid.get("k", "vers=4.0 leases=on").runs == [rec]


def test_captured_cells_show_their_nfs_operations(records):
    md, html = render(records, "md"), render(records, "html")
    line = ("OPEN 1 (by name 1) · LOOKUP 1 (first at +24.1s) · GETATTR 39 · READ 1 · CLOSE 1 · NFS4ERR_STALE replies 0"
            " · OPEN replies: numlinks 0 ×1 (fileid 1234) · GETATTR replies: numlinks 0 ×38 (fileid 1234)")
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


# ---- cells of several runs -------------------------------------------------------------------------------------

def repeated(kernel: str, vers: str, expected: str, *observations: Observation, leases: str = "on",
             base: int = 0) -> list[ResultRecord]:
    runs = []
    for k, obs in enumerate(observations, 1):
        r = make(kernel, vers, leases, expected, obs=obs, index=base + k)
        r.repeat, r.repeats = k, len(observations)
        r.logs += f"/run-{k}"
        runs.append(r)
    return runs


ESTALE_RACE = Observation([Read(-0.5, "old"), Read(0.1, "new"), Read(0.7, "estale"), *reads(("new", 1.2, 10))])
ESTALE_25 = Observation(reads(("old", -1, -0.5), ("estale", 0, 24.5), ("new", 25, 31)))
ESTALE_24 = Observation(reads(("old", -1, -0.5), ("estale", 0, 23.5), ("new", 24, 30)))


def repeated_records() -> list[ResultRecord]:
    return (repeated("mainline-4.19-fix", "4.1", "pass", PASS, ESTALE_RACE, PASS)            # flaky, pass expected
            + repeated("mainline-4.19", "4.0", "fail", PASS, SEED, SEED, base=10)            # flaky, fail expected
            + repeated("debian-6.1", "4.1", "pass", ESTALE_25, ESTALE_24, ESTALE_25, base=20)  # consistent fail
            + repeated("debian-6.1", "4.0", "pass", PASS, LATE_PASS, PASS, base=30))           # consistent pass


def test_cells_of_several_runs_say_how_many_agreed():
    by_id = {c.cell_id: c for c in cells_of(repeated_records())}
    flaky = by_id["mainline-4.19-fix/vers=4.1/leases=on"]
    assert category(flaky) == "flaky" and flaky.mismatch == "flaky"
    assert cell_text(flaky) == ("⚠ flaky 1/3 fail · ✗ ESTALE 0.5s, only within the 2s race window · "
                                "✓ new after 0s")
    expected = by_id["mainline-4.19/vers=4.0/leases=on"]
    assert category(expected) == "flaky" and expected.mismatch is None
    assert cell_text(expected).endswith("(fail expected)")
    assert cell_text(by_id["debian-6.1/vers=4.1/leases=on"]) == "⚠ regression ✗ 3/3 ESTALE 24.0–25.0s"
    assert cell_text(by_id["debian-6.1/vers=4.0/leases=on"]) == "✓ 3/3 new after 0.0–1.0s"


def test_a_table_of_repeated_runs(golden):
    meta = {"kernels": ["mainline-4.19", "mainline-4.19-fix", "debian-6.1"], "axes": {"vers": ["4.0", "4.1"],
            "leases": ["on"]}, "experiment": {"pass_within": 2.0, "repeats": 3}}
    records = repeated_records()
    golden.check("table-repeats.md", render(records, "md", meta=meta))
    text = render(records, "md", meta=meta)
    assert "3 runs per cell" in text and "2 flaky" in text
    html = render(records, "html", meta=meta)
    assert html.count("<strong>run 2/3</strong>") == 4
    assert '<a href="logs/debian-6.1__vers=4.1__leases=on/run-3/">logs</a>' in html
    document = json.loads(render(records, "json", meta=meta))
    assert len(document["cells"]) == 4 and len(document["records"]) == 12
    cell = next(c for c in document["cells"] if c["cell_id"] == "debian-6.1/vers=4.1/leases=on")
    assert cell["spread"]["estale_for"] == [24.0, 25.0] and cell["category"] == "regression"


def test_junit_reports_flaky_cells_as_pytest_does():
    root = ET.fromstring(render(repeated_records(), "junit"))
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    flaky = cases[("mainline-4.19-fix", "vers=4.1 leases=on")].find("failure")
    assert flaky.get("type") == "flaky" and flaky.get("message").startswith("flaky 1/3 fail")
    assert "run 2/3: " in flaky.text
    xfail = cases[("mainline-4.19", "vers=4.0 leases=on")].find("skipped")
    assert xfail.get("type") == "pytest.xfail" and xfail.get("message").startswith("expected failure: flaky 2/3 fail")
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("2", "1", "0")


def test_fail_on_names_the_categories_present():
    from lab.report import fail_on_hits
    cells = cells_of(fixed_records())
    assert fail_on_hits(cells, {"regression", "unexpected-pass", "flaky", "error"}) == \
        {"regression": 1, "unexpected-pass": 1, "error": 1}
    assert fail_on_hits(cells, set()) == {}
    assert fail_on_hits(cells_of(repeated_records()), {"flaky"}) == {"flaky": 2}


def test_the_terminal_never_parses_record_text_as_markup():
    bad = make("k", "4.0", "on", "pass", verdict=Verdict.error("mount", "[bold red]boom[/] [link=x]"))
    console = Console(width=300, record=True, color_system=None)
    console.print(render_terminal([bad]))
    assert "[bold red]boom[/] [link=x]" in console.export_text()


def test_conditions_show_the_ages_achieved_and_the_cache_timeouts():
    from lab.report import conditions_text
    meta = {"ages": {"dir_touched_before_change_s": 5.12, "dir_attrs_fetched_before_change_s": 2.09},
            "mounts": {"alice": {"cache": {"acregmin": 3, "acregmax": 60, "acdirmin": 30, "acdirmax": 60,
                                           "lookupcache": "all"}}}}
    assert conditions_text({"meta": meta}) == ("dir changed 5.1s, alice fetched its attributes 2.1s before the "
                                               "change · alice: acdirmin=30 acdirmax=60 acregmin=3 acregmax=60 "
                                               "lookupcache=all")
    assert conditions_text({"meta": {}}) == "" and conditions_text(None) == ""


# ---- syscalls beside the wire ----------------------------------------------------------------------------------

def test_traced_cells_show_alice_s_calls_beside_the_wire_operations(records):
    html = render(records, "html")
    assert ("alice's reads after t=0, open-fstat-read: openat → fd 4 · fstat → ESTALE ×7; openat → fd 4 · "
            "fstat → 0 · read → new (13 bytes) · read → EOF ×1") in html
    assert html.count("alice's reads after t=0") == 1   # only the traced cell


def test_markdown_has_one_failed_at_line_per_failing_traced_cell(records):
    md = render(records, "md")
    assert md.endswith("\n**Failed at** (alice's traced reads after the change, the commonest failing call):\n\n"
                       "- debian-6.1-nofix vers=4.0 leases=off: fstat → ESTALE (open-fstat-read)\n")


def test_failed_at_line_leaves_out_the_reader_column_and_passing_runs():
    from lab.report import failed_at_line, syscall_line
    obs = Observation(SEED.reads, meta={"syscalls": dict(SYSCALLS, reader="busybox-cat", after={
        "reads": 6, "sequences": {"openat → fd 4 · read → old (13 bytes) · read → EOF": 6},
        "failed_at": {"read → old": 6}})})
    rec = make("debian-6.1", "4.1", "on", "pass", obs)
    rec.params["reader"] = "busybox-cat"
    assert failed_at_line(rec) == "debian-6.1 vers=4.1 leases=on: read → old (busybox-cat)"
    assert failed_at_line(make("debian-6.1", "4.1", "on", "pass", PASS)) == ""
    skipped = Observation(PASS.reads, meta={"syscalls": {"reader": "cat", "skipped": "strace is not installed"}})
    assert syscall_line(skipped.to_dict()) == "cat: not traced (strace is not installed)"
    assert syscall_line(PASS.to_dict()) == ""
